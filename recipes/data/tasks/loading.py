"""`load_task_data`: a task's data read from its source, checked, in its family's layout, with validation held out."""

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from datasets import Dataset, DatasetDict, concatenate_datasets

from modeling_gpt1 import TASK_FAMILIES

from ...core.errors import RecipeError
from .readers import read_files
from .rows import (
    check_columns,
    check_float_labels,
    check_rows,
    required_fields,
    task_classes,
    task_target,
    to_layout,
)
from .sources import read_hub

# The metric a run is judged by when none is asked for (keys of recipes.evaluation.metrics.compute_task_metrics).
MAIN_METRICS = {
    "classification": "accuracy",
    "entailment": "accuracy",
    "similarity": "pearson",  # regression; similarity as classes (MRPC, QQP) is judged by f1
    "multiple_choice": "accuracy",
}


@dataclass
class TaskData:
    """A task's data in the layout of its family, and what the model and the metrics need to know about it."""

    dataset: DatasetDict
    family: str
    target: str  # the field the model learns: "label" (class or choice index) or "score" (regression)
    label_names: tuple[str, ...] | None  # class names in id order (classification, entailment, similarity classes)
    num_labels: int  # the task head's outputs: the classes, or 1 (regression, and one score per choice)
    num_choices: int | None  # multiple choice only: the most choices of a row, in any split (rows may have fewer)
    main_metric: str
    source: str  # where the data came from, for the results file

    @property
    def is_regression(self) -> bool:
        return self.target == "score"

    def summary(self) -> dict:
        return {
            "family": self.family,
            "source": self.source,
            "target": self.target,
            "label_names": list(self.label_names) if self.label_names else None,
            "num_labels": self.num_labels,
            "num_choices": self.num_choices,
            "rows": {split: rows.num_rows for split, rows in self.dataset.items()},
        }


def _check_family(family: str):
    if family not in TASK_FAMILIES:
        raise RecipeError(f"--task_type {family!r} is not one of {', '.join(TASK_FAMILIES)}.")


def load_task_data(
    family: str,
    train_files: Sequence[str] | None = None,
    validation_files: Sequence[str] | None = None,
    test_files: Sequence[str] | None = None,
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    data_dir: str | None = None,
    column_mapping: Mapping[str, str] | None = None,
    label_names: Sequence[str] | None = None,
    model_classes: Sequence[str] | None = None,
    num_labels: int | None = None,
    similarity_target: str | None = None,
    validation_split_percentage: float = 10.0,
    seed: int = 0,
    cache_dir: str | None = None,
) -> TaskData:
    """Loads, maps and checks a task's data (see the package docstring); `RecipeError` on any bad input.

    `model_classes` are the class names, in id order, of the fine-tuned model that is trained further (its id2label):
    the label set when neither `label_names` nor the dataset's features give one. Tasks without classes ignore it.
    """
    _check_family(family)
    column_mapping = dict(column_mapping or {})
    if bool(train_files) == bool(dataset_name):
        raise RecipeError("Give the training data as --train_file or --dataset_name (one of the two).")
    if dataset_name and (validation_files or test_files):
        raise RecipeError("--validation_file / --test_file go with --train_file, not with a Hub --dataset_name.")
    if dataset_name:
        spec, parts, source = read_hub(family, dataset_name, dataset_config_name, data_dir, cache_dir, column_mapping)
    else:
        spec, source = None, ", ".join(os.fspath(path) for path in train_files)
        parts = read_files(family, train_files, validation_files, test_files, column_mapping, cache_dir)

    target = task_target(family, parts, spec, similarity_target)
    fields = required_fields(family, target)
    for part in parts:
        check_columns(part, fields)
    if target == "label":
        for part in parts:
            check_float_labels(part, family)
    classes = task_classes(family, target, parts, spec, label_names, model_classes, num_labels)
    names, num_labels = (classes.names, classes.num_labels) if classes else (None, 1)  # 1: a score, per choice
    most_choices = [check_rows(part, family, target, classes) for part in parts]
    num_choices = max(most_choices) if family == "multiple_choice" else None

    splits: dict[str, list[Dataset]] = {}
    for part in parts:
        splits.setdefault(part.split, []).append(to_layout(part, family, target, names, num_labels))
    dataset = DatasetDict({split: concatenate_datasets(rows) for split, rows in splits.items()})
    if "validation" not in dataset:
        dataset = _hold_out(dataset, spec.holdout if spec else None, validation_split_percentage, seed)
    main_metric = spec.main_metric if spec and spec.main_metric else MAIN_METRICS[family]
    if family == "similarity" and target == "label" and not (spec and spec.main_metric):
        main_metric = "f1" if num_labels == 2 else "accuracy"
    return TaskData(dataset, family, target, names, num_labels, num_choices, main_metric, source)


def _hold_out(dataset: DatasetDict, rows: int | None, percentage: float, seed: int) -> DatasetDict:
    """Train without a validation split: a seeded sample of its rows becomes one."""
    train = dataset["train"]
    if rows is None:
        if not 0 < percentage < 100:
            raise RecipeError(f"--validation_split_percentage must be in (0, 100), got {percentage}.")
        rows = max(1, round(train.num_rows * percentage / 100))
    if rows >= train.num_rows:
        raise RecipeError(
            f"The training data has {train.num_rows} row(s): too few to hold out {rows} for validation. Give a "
            f"--validation_file."
        )
    held = train.train_test_split(test_size=rows, shuffle=True, seed=seed)
    return DatasetDict({"train": held["train"], "validation": held["test"], **{
        split: rows for split, rows in dataset.items() if split != "train"
    }})  # fmt: skip


def majority_baseline(task: TaskData) -> int | None:
    """The most frequent class (or right-choice index) of the training rows; None for regression."""
    if task.is_regression:
        return None
    counts = Counter(task.dataset["train"]["label"])
    return min(counts, key=lambda label: (-counts[label], label))
