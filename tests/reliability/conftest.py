"""The reliability suite keeps docs/RELIABILITY.md honest: every case a test tries has its row in that table."""

import re
from pathlib import Path

import pytest

RELIABILITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md"


@pytest.fixture(scope="session")
def documented_cases() -> set[str]:
    """The case ids of docs/RELIABILITY.md: the first cell of each table row, in backticks."""
    return set(re.findall(r"^\| `([a-z0-9][a-z0-9._-]*)` \|", RELIABILITY_DOC.read_text(), flags=re.MULTILINE))
