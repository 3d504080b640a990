"""The pytest marks transformers' common tests carry (registered in transformers' own conftest, which its sdist does
not ship), read from the fetched files, so that `--strict-markers` accepts them whichever release is installed."""

import re

from helpers.transformers_common import PACKAGE, fetch


def pytest_configure(config):
    marks = set()
    for path in (fetch() / PACKAGE).glob("test_*.py"):
        marks.update(re.findall(r"\bmark\.([a-z][a-z0-9_]*)\b", path.read_text()))
    for mark in sorted(marks - {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}):
        config.addinivalue_line("markers", f"{mark}: a mark of transformers' own tests")
