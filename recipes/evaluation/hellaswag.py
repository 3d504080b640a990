"""Zero-shot HellaSwag (Zellers et al. 2019) posed and scored as lm-evaluation-harness's `hellaswag` task does.

The prompt is "activity_label: ctx_a Ctx_b", the choices are the four endings, each after a space, all cleaned of
WikiHow's tags; the answer is int(label). Scored as a multiple choice (multiple_choice.py), with the harness's two
accuracies: `acc` (summed log-likelihood) and `acc_norm` (per character of the cleaned ending).
"""

import re
from functools import partial

from datasets import Dataset

from ..core.errors import RecipeError
from .multiple_choice import Example, prepare_multiple_choice

# HellaSwag (Zellers et al. 2019): its Hub copy, and the split with answers (the test split's labels are held out).
HELLASWAG_DATASET, HELLASWAG_SPLIT = "Rowan/hellaswag", "validation"
HELLASWAG_COLUMNS = ("activity_label", "ctx_a", "ctx_b", "endings", "label")
# Its two accuracies, named as lm-evaluation-harness names them: the summed log-likelihood of each ending (acc) and
# that sum per character of the cleaned ending (acc_norm).
HELLASWAG_ACCURACIES = {"acc": "none", "acc_norm": "chars"}


def clean_hellaswag(text: str) -> str:
    """HellaSwag text cleaned as lm-evaluation-harness cleans it (its `hellaswag` task): stripped, then each
    " [title]" of the WikiHow rows' section tags made a sentence end (". "), every other bracketed tag ("[header]",
    "[step]", ...) deleted, and each pair of spaces made one, in a single pass (three spaces leave two)."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)  # shortest match: "[a] b [c]" keeps " b "
    return text.replace("  ", " ")


def hellaswag_query(row: dict) -> str:
    """The prompt of a HellaSwag row: "activity_label: ctx_a Ctx_b", cleaned. `str.capitalize` (as the harness
    does) upper-cases ctx_b's first letter and lower-cases the rest of it."""
    return clean_hellaswag(f"{row['activity_label']}: {row['ctx_a']} {row['ctx_b'].capitalize()}")


def has_no_label(label) -> bool:
    return label is None or (isinstance(label, str) and not label.strip())


def hellaswag_examples(rows: Dataset, source: str) -> list[Example]:
    """An Example for every HellaSwag row: the query, each cleaned ending after a space, gold = int(label). The
    query's trailing whitespace (left where a tag ended it) goes to the front of every ending, as the harness moves
    it; `lengths` are those of the cleaned endings, which the harness's acc_norm divides by."""
    missing = [column for column in HELLASWAG_COLUMNS if column not in rows.column_names]
    if missing:
        raise RecipeError(
            f"{source} is not HellaSwag data: it has no {', '.join(map(repr, missing))} column (columns: "
            f"{', '.join(rows.column_names)})."
        )
    labels = rows["label"]
    unlabelled = [index for index, label in enumerate(labels) if has_no_label(label)]
    if unlabelled:
        first = unlabelled[0]
        split = rows[first].get("split")
        split = f", split {split!r}" if isinstance(split, str) and split else ""
        raise RecipeError(
            f"{source}: {len(unlabelled)} of {len(labels)} rows have no label (row {first + 1}: "
            f"{labels[first]!r}{split}); HellaSwag's test split is unlabelled (its answers are held out): score the "
            f"{HELLASWAG_SPLIT} split (--dataset_split {HELLASWAG_SPLIT}, the default for --task hellaswag)."
        )
    examples = []
    for index, row in enumerate(rows):
        where = f"{source} row {index + 1}"
        for column in ("activity_label", "ctx_a", "ctx_b"):
            if not isinstance(row[column], str):
                raise RecipeError(f"{where}: {column} must be a text, got {row[column]!r}.")
        endings = row["endings"]
        if not isinstance(endings, list) or len(endings) < 2 or not all(isinstance(e, str) for e in endings):
            raise RecipeError(f"{where} has {endings!r} as endings: it needs a list of at least 2 texts.")
        cleaned = [clean_hellaswag(ending) for ending in endings]
        for number, (ending, text) in enumerate(zip(endings, cleaned), 1):
            if not text.strip():
                raise RecipeError(f"{where}: ending {number} ({ending!r}) is empty once cleaned.")
        label = row["label"]
        if isinstance(label, str) and re.fullmatch(r"\s*\d+\s*", label):
            label = int(label)
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(endings):
            raise RecipeError(
                f"{where}: label {row['label']!r} is not the index of one of its {len(endings)} endings "
                f"(0 to {len(endings) - 1})."
            )
        query = hellaswag_query(row)
        prompt = query.rstrip()
        if not prompt:
            raise RecipeError(f"{where}: the query is empty once cleaned.")
        moved = query[len(prompt) :]
        examples.append(Example(prompt, [moved + " " + text for text in cleaned], label, [len(t) for t in cleaned]))
    return examples


# HellaSwag is a multiple choice among the endings, scored the same way, with the harness's two accuracies.
prepare_hellaswag = partial(prepare_multiple_choice, accuracies=HELLASWAG_ACCURACIES)
