"""The fixture rows of the GPT-1 task families (tests/fixtures/tasks, docs/DATA.md names their sources)."""

import json
from pathlib import Path

FIXTURES = Path(__file__).parents[1] / "fixtures"
POLARITY = ("negative", "positive")  # the class names of classification-movie-sentence-polarity
# (family, fixture file, GPT1TaskEncoder keyword arguments): a fixture of each family, both multiple-choice ones.
FAMILY_ROWS = [
    ("classification", "classification-movie-sentence-polarity", {"label_names": POLARITY}),
    ("entailment", "entailment-presuppositions", {}),
    ("similarity", "similarity-answer-vs-source", {}),
    ("multiple_choice", "multiple-choice-social-iqa", {}),
    ("multiple_choice", "multiple-choice-proverbs", {}),
]


def rows(name: str) -> list[dict]:
    """The rows of tests/fixtures/tasks/<name>.jsonl."""
    with open(FIXTURES / "tasks" / f"{name}.jsonl", encoding="utf-8") as file:
        return [json.loads(line) for line in file]


def body(tokenizer, text: str) -> list[int]:
    """The ids of a text without the task template."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]
