"""What a task learns and its classes, every row checked against them, and the rows cast to the layout's features."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from datasets import ClassLabel, Dataset, Features, List, Value

from modeling_gpt1 import ENTAILMENT_LABELS, TEXT_FIELDS

from ...core.errors import RecipeError
from .parts import Part, iter_rows
from .sources import HubTask


def task_target(family: str, parts: list[Part], spec: HubTask | None, similarity_target: str | None) -> str:
    """What the model learns: a class or a choice ("label"), or (similarity) a score by regression ("score")."""
    if family != "similarity":
        if similarity_target:
            raise RecipeError(f"--similarity_target is for similarity tasks, not {family}.")
        return "label"
    target = similarity_target or (spec.target if spec else None)
    if target is None:
        target = "score" if "score" in parts[0].rows.column_names else "label"
    if target not in ("score", "label"):
        raise RecipeError(f"--similarity_target must be score (regression) or label (classes), got {target!r}.")
    return target


def required_fields(family: str, target: str) -> tuple[str, ...]:
    """The fields a row of the family needs: its texts, then the target."""
    return (*TEXT_FIELDS[family], target)


def check_columns(part: Part, fields: Sequence[str]):
    """Every field the task needs is a column of the part (named before any row is read)."""
    missing = [name for name in fields if name not in part.rows.column_names]
    if missing:
        raise RecipeError(
            f"{part.where} has no field {', '.join(map(repr, missing))} (its fields: "
            f"{', '.join(part.rows.column_names)}); this task needs {', '.join(fields)} (rename columns with "
            f"--column_mapping old=new)."
        )


@dataclass(frozen=True)
class Classes:
    """The classes of a task with class labels, and where their names come from (for the messages)."""

    names: tuple[str, ...] | None  # in id order; None for integer labels without names
    num_labels: int
    source: str | None = None  # "--label_names", "the labels of --train_file train.jsonl", ...
    ids: bool = True  # whether an int label is a class id: not when the names are the training rows' strings


def task_classes(family, target, parts, spec, label_names, model_classes, num_labels) -> Classes | None:
    """The classes; None for a task without: a score, or one per choice (multiple choice)."""
    if family != "multiple_choice" and target != "score":
        return _class_names(family, parts, spec, label_names, model_classes, num_labels)
    if label_names:
        raise RecipeError(f"--label_names is for class labels; this {family} task learns {target}s.")
    return None


def _named(names: Sequence[str], source: str, num_labels: int | None, ids: bool = True) -> Classes:
    names = tuple(names)
    if len(set(names)) != len(names) or len(names) < 2:
        raise RecipeError(f"The class names {list(names)} ({source}) must be at least 2 and all different.")
    if num_labels is not None and num_labels != len(names):
        raise RecipeError(
            f"--num_labels {num_labels} does not match the {len(names)} class names {list(names)} ({source})."
        )
    return Classes(names, len(names), source, ids)


def _class_names(
    family: str,
    parts: list[Part],
    spec: HubTask | None,
    label_names: Sequence[str] | None,
    model_classes: Sequence[str] | None,
    num_labels: int | None,
) -> Classes:
    """The label set, from the first of: `label_names`, the training split's `ClassLabel`, the Hub table, the
    fine-tuned model's classes, the label strings of the training rows (exactly those present), integer labels."""
    train = [part for part in parts if part.split == "train"]
    feature = train[0].rows.features.get("label")
    if label_names:
        return _named(label_names, "--label_names", num_labels)
    if isinstance(feature, ClassLabel):
        return _named(feature.names, f"the classes of {train[0].where}", num_labels)
    if spec and spec.label_names:
        return _named(spec.label_names, f"the classes of {train[0].where}", num_labels)
    if model_classes:
        source = "the classes of the fine-tuned --model_name_or_path, its id2label; --label_names trains it for others"
        return _named(model_classes, source, num_labels)
    where = "; ".join(part.where for part in train)
    values = [row["label"] for part in train for _, row in iter_rows(part, ["label"])]
    strings = {value for value in values if isinstance(value, str)}
    if strings:
        if family == "entailment" and strings <= set(ENTAILMENT_LABELS):
            names = tuple(name for name in ENTAILMENT_LABELS if name in strings)  # GLUE's order, those present only
        else:
            names = tuple(sorted(strings))
        if len(names) < 2:
            raise RecipeError(
                f"Every training label of {where} is {names[0]!r}: a classifier needs at least 2 classes (give "
                f"--label_names to name the others)."
            )
        return _named(names, f"the labels of {where}", num_labels, ids=False)
    ints = [value for value in values if isinstance(value, int) and not isinstance(value, bool)]
    if num_labels is None:
        num_labels = max(ints, default=0) + 1
        if num_labels < 2:
            raise RecipeError(
                f"The training labels of {where} are all {ints[0] if ints else None}: a classifier needs at least 2 "
                f"classes (give --num_labels or --label_names)."
            )
    return Classes(None, num_labels)


def _is_missing(value) -> bool:
    """None, or NaN: what an empty cell of a numeric CSV column is read as."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def check_float_labels(part: Part, family: str):
    """Class ids and choice indices are ints. A column of them with an empty CSV cell is read as floats: the empty
    cell is named (not the first 1.0); so is the first float of a column of numbers that are not all ints."""
    if getattr(part.rows.features["label"], "dtype", None) not in ("float16", "float32", "float64"):
        return
    labels = part.rows["label"]
    empty = next((index for index, label in enumerate(labels) if _is_missing(label)), None)
    if empty is not None:
        raise RecipeError(f"{part.at(empty)}: the field 'label' is missing (every {family} row needs one).")
    raise RecipeError(f"{part.at(0)}: label {labels[0]!r} must be an int class id or a class name, not a float.")


def check_rows(part: Part, family: str, target: str, classes: Classes | None) -> int | None:
    """Every row of a part: non-empty string texts, a usable label or score, at least 2 choices; returns the most
    choices of a row (multiple choice), else None."""
    fields = required_fields(family, target)
    missing = f"(every {family} row needs {', '.join(fields)})"
    most_choices = None
    for index, row in iter_rows(part, fields):
        at = part.at(index)
        for name in TEXT_FIELDS[family]:
            if row[name] is None:
                raise RecipeError(f"{at}: the field {name!r} is missing {missing}.")
            _check_text(at, name, row[name])
        label = row[target]
        if _is_missing(label):
            raise RecipeError(f"{at}: the field {target!r} is missing {missing}.")
        if target == "score":
            if isinstance(label, bool) or not isinstance(label, (int, float)) or not math.isfinite(label):
                raise RecipeError(f"{at}: score {label!r} must be a finite number.")
        elif family == "multiple_choice":
            num_choices = len(row["choices"])
            if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < num_choices:
                raise RecipeError(
                    f"{at}: label {label!r} must be the index of the right choice, an int in [0, {num_choices})."
                )
            most_choices = max(most_choices or 0, num_choices)
        else:
            _check_class(at, label, classes)
    return most_choices


def _check_text(at: str, name: str, value):
    """A text field: a string with more than whitespace; `choices`: a list of at least 2 such strings."""
    if name != "choices":
        if not isinstance(value, str):
            raise RecipeError(f"{at}: {name!r} must be a string, got {type(value).__name__} {value!r:.60}.")
        if not value.strip():
            blank = " (only whitespace)" if value else ""
            raise RecipeError(
                f"{at}: {name!r} is empty{blank}: the model would read no text there; fix or drop the row."
            )
        return
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) < 2:
        raise RecipeError(f"{at}: 'choices' must be a list of at least 2 strings, got {value!r:.100}.")
    for number, choice in enumerate(value):
        if not isinstance(choice, str):
            raise RecipeError(f"{at}: every choice must be a string, got {choice!r:.60} (choice {number}).")
        if not choice.strip():
            blank = " (only whitespace)" if choice else ""
            raise RecipeError(f"{at}: choice {number} of 'choices' is empty{blank}; fix or drop the row.")


def _check_class(at: str, label, classes: Classes):
    """A class label: one of the class names, or an int id in [0, num_labels) where ints are ids."""
    names = classes.names
    if isinstance(label, str):
        if names is None:
            raise RecipeError(
                f"{at}: label {label!r} is a name, but the training labels are class ids (ints); give --label_names "
                f"to name the ids."
            )
        if label not in names:
            near = [name for name in names if name.casefold() == label.strip().casefold()]
            hint = f" Did you mean {near[0]!r}? Labels must match exactly." if near else ""
            raise RecipeError(
                f"{at}: label {label!r} is not one of the class names {list(names)} ({classes.source}).{hint}"
            )
        return
    if isinstance(label, bool) or not isinstance(label, int):
        raise RecipeError(
            f"{at}: label {label!r} must be a class name or an int class id, not {type(label).__name__}."
        )
    if not classes.ids:
        raise RecipeError(
            f"{at}: label {label} is an int, but the class names {list(names)} come from {classes.source}, which "
            f"gives them no ids: write the label as a name, or give --label_names (in id order)."
        )
    if not 0 <= label < classes.num_labels:
        shown = f" ({', '.join(names)})" if names else ""
        raise RecipeError(f"{at}: label {label} is out of range: class ids are in [0, {classes.num_labels}){shown}.")


def to_layout(part: Part, family: str, target: str, names: tuple[str, ...] | None, num_labels: int) -> Dataset:
    """The layout's fields only, labels as class ids with their names in a `ClassLabel`, one set of features."""
    rows = part.rows.select_columns(list(required_fields(family, target)))
    features = {name: Value("string") for name in TEXT_FIELDS[family]}
    if family == "multiple_choice":
        features["choices"] = List(Value("string"))
        features["label"] = Value("int64")
    elif target == "score":
        features["score"] = Value("float64")
    else:
        features["label"] = ClassLabel(names=list(names) if names else [f"LABEL_{i}" for i in range(num_labels)])
        if getattr(rows.features["label"], "dtype", None) in ("string", "large_string"):
            rows = rows.map(lambda row: {"label": names.index(row["label"])}, desc=f"Label ids of {part.where}")
    return rows.cast(Features(features))
