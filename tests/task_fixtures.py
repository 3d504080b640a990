"""The fixture rows of the GPT-1 task families (tests/fixtures/tasks, docs/DATA.md names their sources)."""

import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def rows(name: str) -> list[dict]:
    """The rows of tests/fixtures/tasks/<name>.jsonl."""
    with open(FIXTURES / "tasks" / f"{name}.jsonl", encoding="utf-8") as file:
        return [json.loads(line) for line in file]


def body(tokenizer, text: str) -> list[int]:
    """The ids of a text without the task template."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]
