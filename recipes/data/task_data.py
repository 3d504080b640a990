"""Labelled data for GPT-1 fine-tuning: local files or a Hub dataset, checked row by row, in one layout per family.

`load_task_data(family, ...)` returns a `TaskData` whose `dataset` is a `datasets.DatasetDict` (`train`,
`validation`, and `test` or other evaluation splits when there are any) with the fields of the project's task files
(docs/DATA.md), which are the fields `modeling_gpt1.GPT1TaskEncoder` reads:

| family            | fields                                   | target                                            |
|-------------------|------------------------------------------|---------------------------------------------------|
| `classification`  | text, label                              | class id (a `ClassLabel`: names in the features)  |
| `entailment`      | premise, hypothesis, label               | class id                                          |
| `similarity`      | text_a, text_b, score  or  ..., label    | a score (regression, STS-B) or a class id (MRPC)  |
| `multiple_choice` | context, choices, label                  | index of the right choice                         |

Sources:
- Local files, one or more per split: `.jsonl` / `.json` / `.csv` / `.tsv` / `.parquet` (compressed or not). A CSV
  holds multiple-choice `choices` as a JSON list in one cell. With no validation file, `validation_split_percentage`
  of the training rows (seeded) are held out.
- A Hub dataset by name (`datasets.load_dataset(name, config)`). The usual ones are mapped to the layout by
  `HUB_TASKS`: GLUE sst2, cola, rte, mnli, qnli, stsb, mrpc, qqp; snli; scitail; race; story_cloze (with
  `data_dir`: its data is a manual download). Any other dataset must have the layout's fields already, or get them
  with `column_mapping` ({"sentence": "text"}).

Class names (the label set) come from the option `label_names`, else the dataset's `ClassLabel` feature, else the
table, else the classes of the fine-tuned model trained further (`model_classes`, its id2label), else the label strings
of the training rows: exactly those present, sorted (entailment: in GLUE's order entailment, neutral, contradiction
when they are among those). A label of any split outside the set is an error, not a new class. Integer labels without
names are ids in [0, num_labels); integer labels next to class names taken from the training strings are refused
(their ids would depend on the sort order).

Every row is checked before any training time is spent; a bad one is a `RecipeError` naming the file (or Hub split),
the place (`line N`, 1-based, of a .jsonl / .csv / .tsv file; otherwise `row N`, counted from 0 as `dataset[row]`) and
what is wrong. A .jsonl, .json, .csv or .tsv file is read line by line first (`_scan_file`), so that what `datasets`
would fail on or misread is named with its line: bytes that are not UTF-8 (UTF-16 and UTF-32 files among them), a line
that is not a JSON object, a task field whose JSON type changes from row to row, a CSV row with more cells than its
header. Then each row: a missing field, a text that is not a string or is empty (only whitespace), a label that is out
of range or not a class name, a multiple-choice row with fewer than 2 choices or a label that is not the index of one
of them. Multiple-choice rows may have different numbers of choices (RACE has 4, other sets mix 4 and 5):
`GPT1TaskCollator` pads a batch with padding choices, which the model masks; `TaskData.num_choices` is the most
choices of a row in any split.
"""

import codecs
import csv
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import fsspec
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value, concatenate_datasets, load_dataset

from modeling_gpt1 import ENTAILMENT_LABELS, TASK_FAMILIES, TEXT_FIELDS

from ..core.errors import RecipeError
from .corpus import _COMPRESSIONS, builder_for, check_files_exist

# The metric a run is judged by when none is asked for (keys of recipes.evaluation.metrics.compute_task_metrics).
MAIN_METRICS = {
    "classification": "accuracy",
    "entailment": "accuracy",
    "similarity": "pearson",  # regression; similarity as classes (MRPC, QQP) is judged by f1
    "multiple_choice": "accuracy",
}


@dataclass(frozen=True)
class HubTask:
    """How one Hub dataset maps to the layout of its family."""

    family: str
    columns: Mapping[str, str] = field(default_factory=dict)  # Hub column -> layout field
    splits: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "validation": "validation"})
    target: str = "label"  # "score" for regression
    label_names: tuple[str, ...] | None = None  # when the Hub features carry none
    main_metric: str | None = None  # the paper's metric when it is not the family's
    to_layout: Callable[[dict], dict] | None = None  # a batched map that builds the layout's fields
    unlabelled: int | None = None  # rows with this label have no gold label and are dropped (SNLI: -1)
    holdout: int | None = None  # rows of train held out for validation when the dataset has no such split


def _race(batch: dict) -> dict:
    """RACE: the passage then the question as context, the four options, the answer letter as an index."""
    return {
        "context": [f"{article} {question}" for article, question in zip(batch["article"], batch["question"])],
        "choices": batch["options"],
        "label": ["ABCD".index(answer.strip()) if answer.strip() in ("A", "B", "C", "D") else answer
                  for answer in batch["answer"]],
    }  # fmt: skip


def _story_cloze(batch: dict) -> dict:
    """Story Cloze: the four sentences of the story as context, the two endings, the right one (1 or 2) as 0 or 1."""
    sentences = zip(*(batch[f"input_sentence_{i}"] for i in range(1, 5)))
    return {
        "context": [" ".join(story) for story in sentences],
        "choices": [list(pair) for pair in zip(batch["sentence_quiz1"], batch["sentence_quiz2"])],
        "label": [answer - 1 for answer in batch["answer_right_ending"]],
    }


_GLUE_PAIR = {"sentence1": "premise", "sentence2": "hypothesis"}
_GLUE_SIMILARITY = {"sentence1": "text_a", "sentence2": "text_b"}
_RACE = HubTask("multiple_choice", splits={"train": "train", "validation": "validation", "test": "test"},
                to_layout=_race)  # fmt: skip
# Keyed by the dataset's name without its owner ("nyu-mll/glue" and "glue" alike), then by config. GLUE's test splits
# have no labels, so they are left out; MNLI's mismatched validation set is evaluated at the end as an extra split.
HUB_TASKS: dict[str, dict[str | None, HubTask]] = {
    "glue": {
        "sst2": HubTask("classification", {"sentence": "text"}),
        "cola": HubTask("classification", {"sentence": "text"}, main_metric="matthews_correlation"),
        "rte": HubTask("entailment", _GLUE_PAIR),
        "mnli": HubTask(
            "entailment",
            splits={
                "train": "train",
                "validation": "validation_matched",
                "validation_mismatched": "validation_mismatched",
            },
        ),
        "qnli": HubTask("entailment", {"question": "premise", "sentence": "hypothesis"}),
        "stsb": HubTask("similarity", {**_GLUE_SIMILARITY, "label": "score"}, target="score"),
        "mrpc": HubTask("similarity", _GLUE_SIMILARITY, main_metric="f1"),
        "qqp": HubTask("similarity", {"question1": "text_a", "question2": "text_b"}, main_metric="f1"),
    },
    "snli": {
        None: HubTask(
            "entailment", splits={"train": "train", "validation": "validation", "test": "test"}, unlabelled=-1
        )
    },
    "scitail": {
        "tsv_format": HubTask(
            "entailment",
            splits={"train": "train", "validation": "validation", "test": "test"},
            label_names=("entails", "neutral"),
        )
    },
    "race": {"all": _RACE, "high": _RACE, "middle": _RACE},
    # The released GPT-1 code trained on the 2016 validation set minus 374 held-out stories and tested on the test set.
    "story_cloze": {
        "2016": HubTask(
            "multiple_choice", splits={"train": "validation", "test": "test"}, to_layout=_story_cloze, holdout=374
        )
    },
}
DEFAULT_HUB_CONFIGS = {"scitail": "tsv_format", "race": "all", "story_cloze": "2016"}


def hub_task(dataset_name: str, config_name: str | None) -> tuple[HubTask | None, str | None]:
    """The mapping of a known Hub dataset (and the config to load), or (None, config_name) for any other."""
    short = dataset_name.rstrip("/").rsplit("/", 1)[-1].lower()
    if short not in HUB_TASKS:
        return None, config_name
    config_name = config_name or DEFAULT_HUB_CONFIGS.get(short)
    configs = HUB_TASKS[short]
    if config_name not in configs:
        known = ", ".join(str(name) for name in configs)
        raise RecipeError(
            f"--dataset_config_name {config_name!r} is not one this recipe maps for {dataset_name!r} (known: {known})."
        )
    return configs[config_name], config_name


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


@dataclass
class _Part:
    """One file, or one split of a Hub dataset, on its way into a split of the DatasetDict."""

    split: str
    where: str
    rows: Dataset
    lines: list[int] | None = None  # the 1-based line of each row of a .jsonl / .csv / .tsv file

    def at(self, index: int) -> str:
        """Where row `index` is, for a message: its line in the file, or its row index."""
        return f"{self.where}, line {self.lines[index]}" if self.lines else f"{self.where}, row {index}"


def _check_family(family: str):
    if family not in TASK_FAMILIES:
        raise RecipeError(f"--task_type {family!r} is not one of {', '.join(TASK_FAMILIES)}.")


def _file_format(path: str, where: str) -> str:
    """jsonl, json, csv, tsv or parquet, by extension (through a compression suffix)."""
    name = Path(path).name.lower()
    for suffix in _COMPRESSIONS:
        name = name.removesuffix(suffix)
    for known in ("jsonl", "tsv"):
        if name.endswith(f".{known}"):
            return known
    builder = builder_for(path)
    if builder == "text":
        raise RecipeError(f"{where}: a task needs fields per row; use .jsonl, .json, .csv, .tsv or .parquet.")
    return builder


def _read_file(path: str, split: str, option: str, cache_dir: str | None, fields: frozenset[str]) -> _Part:
    """One local file; `fields` are its columns that become the layout's (whose JSON types `_JsonTypes` checks)."""
    where = f"{option} {path}"
    with open(path, "rb") as file:
        if not file.read(1 << 16).strip():
            raise RecipeError(f"{where} is empty: a {split} file needs at least one row.")
    file_format = _file_format(path, where)
    lines = _scan_file(path, where, file_format, _JsonTypes(where, fields))
    builder, kwargs = ("csv", {"delimiter": "\t"}) if file_format == "tsv" else (builder_for(path), {})
    try:
        rows = load_dataset(builder, data_files=[os.fspath(path)], split="train", cache_dir=cache_dir, **kwargs)
    except Exception as error:  # datasets raises many types for a malformed file; all are bad input here
        raise RecipeError(f"{where} cannot be read as {builder}: {_innermost(error)}") from error
    if rows.num_rows == 0:
        raise RecipeError(f"{where} holds no rows.")
    if builder == "csv" and "choices" in rows.column_names and rows.features["choices"] == Value("string"):
        rows = rows.map(lambda row: {"choices": _json_list(row["choices"])}, desc="Reading choices")
    if lines is not None and len(lines) != rows.num_rows:  # read otherwise than the scan expected: no line numbers
        lines = None
    return _Part(split, where, rows, lines)


def _innermost(error: BaseException) -> str:
    """The reader's own error: datasets wraps it in "An error occurred while generating the dataset"."""
    while error.__cause__ is not None:
        error = error.__cause__
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


# ---------------------------------------------------------------------------------------------------------------------
# Text files read line by line before datasets reads them, so that a bad row is named by its line.

_OTHER_ENCODINGS = (  # byte-order marks of files that are not UTF-8; UTF-32's first: it starts like UTF-16's
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "list", dict: "object"}[type(value)]


class _JsonTypes:
    """Each row of a JSON file must be an object, and each of the task's `fields` keep its JSON type from row to row
    (null aside): datasets stores a field as one typed column, and fails on a change or turns a stray 1 among label
    names into "1". Other fields are datasets' business: they are dropped."""

    def __init__(self, where: str, fields: frozenset[str]):
        self.where, self.fields = where, fields
        self.seen: dict[str, tuple[str, str]] = {}  # field -> (its JSON type, the position it was first seen at)

    def check(self, record, position: str):
        """`position`: "line 3" of JSON Lines, "row 2" of a JSON array."""
        if not isinstance(record, dict):
            raise RecipeError(
                f"{self.where}, {position}: a JSON {_json_type(record)} ({record!r:.60}); each row is a JSON object "
                f"of fields."
            )
        for name in self.fields.intersection(record):
            value = record[name]
            kind = _json_type(value)
            if kind == "null":
                continue
            first_kind, first_position = self.seen.setdefault(name, (kind, position))
            if kind != first_kind:
                raise RecipeError(
                    f"{self.where}, {position}: {name!r} is a {kind} ({value!r:.60}), but a {first_kind} at "
                    f"{first_position}: a field must have the same type in every row."
                )


def _scan_file(path: str, where: str, file_format: str, types: _JsonTypes) -> list[int] | None:
    """The 1-based line of each row of a .jsonl / .csv / .tsv file (None for a JSON array or a Parquet file: their
    rows are named by index); a `RecipeError` naming the line for bytes that are not UTF-8 and for rows that datasets
    would fail on or misread (see `_json_rows`, `_JsonTypes`, `_csv_rows`)."""
    unreadable = Path(path).suffix.lower() in _COMPRESSIONS and not fsspec.utils.infer_compression(path)
    if file_format == "parquet" or unreadable:  # binary, or compressed as only datasets' extractors read (.zst, .lz4)
        return None
    lines = _text_lines(path, where)
    if file_format in ("csv", "tsv"):
        return _csv_rows(lines, where, "\t" if file_format == "tsv" else ",")
    if file_format == "jsonl":
        return _json_rows(lines, where, types)
    # A .json file: one JSON document (an array of rows: named by index) or, as datasets also reads it, JSON Lines.
    lines = list(lines)
    text = "".join(line for _, line in lines)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        if text.lstrip().startswith("["):
            raise RecipeError(
                f"{where}, line {error.lineno}, column {error.colno}: not JSON ({error.msg}): a .json file holds a "
                f"JSON array of rows, or one JSON object per line."
            ) from None
        return _json_rows(lines, where, types)
    if isinstance(document, list):
        for index, record in enumerate(document):
            types.check(record, f"row {index}")
    return None


def _text_lines(path: str, where: str):
    """(line number, text) of each line of a text file read as UTF-8 (a UTF-8 byte-order mark is dropped); a
    `RecipeError` naming the line and the byte for bytes that are not UTF-8, UTF-16 and UTF-32 files among them."""

    def advice(encoding: str, note: str = "") -> str:
        return f"save the file as UTF-8 (e.g. `iconv -f {encoding} -t UTF-8 in > out`{note})"

    with fsspec.open(path, "rb", compression="infer") as file:
        for number, raw in enumerate(file, 1):
            if number == 1:
                for mark, encoding in _OTHER_ENCODINGS:
                    if raw.startswith(mark):
                        raise RecipeError(
                            f"{where} is {encoding} (it starts with a {encoding} byte-order mark): {advice(encoding)}."
                        )
                raw = raw.removeprefix(codecs.BOM_UTF8)
            nul = raw.find(b"\x00")
            # NUL is valid UTF-8 but never in text; UTF-16 without a byte-order mark has one in every ASCII character.
            if nul >= 0:
                raise RecipeError(
                    f"{where}, line {number}: byte {nul + 1} is NUL (0x00), which text files do not hold: the file "
                    f"looks UTF-16 (or binary); {advice('UTF-16LE')}."
                )
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise RecipeError(
                    f"{where}, line {number}: byte {error.start + 1} (0x{raw[error.start]:02x}) is not UTF-8 "
                    f"({error.reason}); {advice('LATIN1', ' if it was Latin-1')}."
                ) from None


def _json_rows(lines, where: str, types: _JsonTypes) -> list[int]:
    """The line of each row of a JSON Lines file (blank lines are skipped, as datasets skips them); a `RecipeError`
    naming the line and column of one that is not JSON, and the line of a row that `types` refuses."""
    rows = []
    for number, text in lines:
        if not text.strip():
            continue
        try:
            record = json.loads(text.rstrip("\r\n"))  # columns then count within the line
        except json.JSONDecodeError as error:
            raise RecipeError(
                f"{where}, line {number}, column {error.colno}: not JSON ({error.msg}): each line of a JSON Lines "
                f"file holds one JSON object."
            ) from None
        types.check(record, f"line {number}")
        rows.append(number)
    return rows


def _csv_rows(lines, where: str, delimiter: str) -> list[int] | None:
    """The first line of each row of a CSV / TSV file (a quoted cell may span lines; blank lines are skipped, as
    pandas skips them; the header is not a row); a `RecipeError` for a row with more cells than the header, which
    pandas refuses without naming the file. None if the csv module cannot read it (pandas may: rows by index then)."""
    reader = csv.reader((text for _, text in lines), delimiter=delimiter)
    header, rows, start = None, [], 1
    try:
        for record in reader:
            if record and (len(record) > 1 or record[0].strip()):
                if header is None:
                    header = (len(record), start)
                elif len(record) > header[0]:
                    raise RecipeError(
                        f"{where}, line {start}: {len(record)} cells, but the header (line {header[1]}) has "
                        f"{header[0]}: quote a cell that holds the delimiter {delimiter!r}."
                    )
                else:
                    rows.append(start)
            start = reader.line_num + 1
    except csv.Error:  # e.g. a cell over the csv module's field size limit
        return None
    return rows


def _json_list(cell):
    """A CSV cell holding a JSON list of choices; anything else is left for the row check to name."""
    try:
        value = json.loads(cell) if isinstance(cell, str) else cell
    except json.JSONDecodeError:
        return [cell]
    return value if isinstance(value, list) else [cell]


def _load_hub(
    dataset_name: str,
    config_name: str | None,
    spec: HubTask | None,
    data_dir: str | None,
    cache_dir: str | None,
    column_mapping: Mapping[str, str],
) -> list[_Part]:
    source = dataset_name + (f" ({config_name})" if config_name else "")
    try:
        hub = load_dataset(dataset_name, config_name, data_dir=data_dir, cache_dir=cache_dir)
    except Exception as error:  # no network, a wrong name, a manual download missing: all stop the run here
        raise RecipeError(f"--dataset_name {source} cannot be loaded: {type(error).__name__}: {error}") from error
    if not isinstance(hub, DatasetDict):
        hub = DatasetDict({"train": hub})
    splits = dict(spec.splits) if spec else {name: name for name in hub}
    missing = [hub_split for hub_split in splits.values() if hub_split not in hub]
    if missing or "train" not in splits:
        raise RecipeError(
            f"{source} has the splits {', '.join(hub)}; this recipe needs {', '.join(splits.values()) or 'train'}."
        )
    parts = []
    for split, hub_split in splits.items():
        rows = hub[hub_split]
        where = f"{source} split {hub_split!r}"
        if spec and spec.unlabelled is not None:
            rows = rows.filter(lambda labels: [label != spec.unlabelled for label in labels], input_columns="label")
        if spec and spec.to_layout:
            rows = rows.map(spec.to_layout, batched=True, remove_columns=rows.column_names, desc=f"Mapping {where}")
        renames = {**(spec.columns if spec else {}), **column_mapping}
        rows = _rename(rows, renames, where)
        if rows.num_rows == 0:
            raise RecipeError(f"{where} holds no rows.")
        parts.append(_Part(split, where, rows))
    return parts


def _rename(rows: Dataset, renames: Mapping[str, str], where: str) -> Dataset:
    renames = {old: new for old, new in renames.items() if old in rows.column_names and old != new}
    clashes = [new for old, new in renames.items() if new in rows.column_names and new not in renames]
    if clashes:
        raise RecipeError(f"{where}: renaming columns onto {clashes} would overwrite columns it already has.")
    return rows.rename_columns(renames) if renames else rows


def _required_fields(family: str, target: str) -> tuple[str, ...]:
    return (*TEXT_FIELDS[family], target)


def _check_columns(part: _Part, fields: Sequence[str]):
    missing = [name for name in fields if name not in part.rows.column_names]
    if missing:
        raise RecipeError(
            f"{part.where} has no field {', '.join(map(repr, missing))} (its fields: "
            f"{', '.join(part.rows.column_names)}); this task needs {', '.join(fields)} (rename columns with "
            f"--column_mapping old=new)."
        )


def _iter_rows(part: _Part, columns: Sequence[str], batch_size: int = 1000):
    """(row index, {column: value}) over a part, read a batch of columns at a time."""
    index = 0
    for batch in part.rows.select_columns(list(columns)).iter(batch_size=batch_size):
        for values in zip(*(batch[column] for column in columns)):
            yield index, dict(zip(columns, values))
            index += 1


@dataclass(frozen=True)
class _Classes:
    """The classes of a task with class labels, and where their names come from (for the messages)."""

    names: tuple[str, ...] | None  # in id order; None for integer labels without names
    num_labels: int
    source: str | None = None  # "--label_names", "the labels of --train_file train.jsonl", ...
    ids: bool = True  # whether an int label is a class id: not when the names are the training rows' strings


def _named(names: Sequence[str], source: str, num_labels: int | None, ids: bool = True) -> _Classes:
    names = tuple(names)
    if len(set(names)) != len(names) or len(names) < 2:
        raise RecipeError(f"The class names {list(names)} ({source}) must be at least 2 and all different.")
    if num_labels is not None and num_labels != len(names):
        raise RecipeError(
            f"--num_labels {num_labels} does not match the {len(names)} class names {list(names)} ({source})."
        )
    return _Classes(names, len(names), source, ids)


def _class_names(
    family: str,
    parts: list[_Part],
    spec: HubTask | None,
    label_names: Sequence[str] | None,
    model_classes: Sequence[str] | None,
    num_labels: int | None,
) -> _Classes:
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
    values = [row["label"] for part in train for _, row in _iter_rows(part, ["label"])]
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
    return _Classes(None, num_labels)


def _is_missing(value) -> bool:
    """None, or NaN: what an empty cell of a numeric CSV column is read as."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _check_float_labels(part: _Part, family: str):
    """Class ids and choice indices are ints. A column of them with an empty CSV cell is read as floats: the empty
    cell is named (not the first 1.0); so is the first float of a column of numbers that are not all ints."""
    if getattr(part.rows.features["label"], "dtype", None) not in ("float16", "float32", "float64"):
        return
    labels = part.rows["label"]
    empty = next((index for index, label in enumerate(labels) if _is_missing(label)), None)
    if empty is not None:
        raise RecipeError(f"{part.at(empty)}: the field 'label' is missing (every {family} row needs one).")
    raise RecipeError(f"{part.at(0)}: label {labels[0]!r} must be an int class id or a class name, not a float.")


def _check_rows(part: _Part, family: str, target: str, classes: _Classes | None) -> int | None:
    """Every row of a part: non-empty string texts, a usable label or score, at least 2 choices; returns the most
    choices of a row (multiple choice), else None."""
    fields = _required_fields(family, target)
    missing = f"(every {family} row needs {', '.join(fields)})"
    most_choices = None
    for index, row in _iter_rows(part, fields):
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


def _check_class(at: str, label, classes: _Classes):
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


def _to_layout(part: _Part, family: str, target: str, names: tuple[str, ...] | None, num_labels: int) -> Dataset:
    """The layout's fields only, labels as class ids with their names in a `ClassLabel`, one set of features."""
    rows = part.rows.select_columns(list(_required_fields(family, target)))
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
    """Loads, maps and checks a task's data (see the module docstring); `RecipeError` on any bad input.

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
        spec, parts, source = _read_hub(family, dataset_name, dataset_config_name, data_dir, cache_dir, column_mapping)
    else:
        spec, source = None, ", ".join(os.fspath(path) for path in train_files)
        parts = _read_files(family, train_files, validation_files, test_files, column_mapping, cache_dir)

    target = _target(family, parts, spec, similarity_target)
    fields = _required_fields(family, target)
    for part in parts:
        _check_columns(part, fields)
    if target == "label":
        for part in parts:
            _check_float_labels(part, family)
    classes = _classes(family, target, parts, spec, label_names, model_classes, num_labels)
    names, num_labels = (classes.names, classes.num_labels) if classes else (None, 1)  # 1: a score, per choice
    most_choices = [_check_rows(part, family, target, classes) for part in parts]
    num_choices = max(most_choices) if family == "multiple_choice" else None

    splits: dict[str, list[Dataset]] = {}
    for part in parts:
        splits.setdefault(part.split, []).append(_to_layout(part, family, target, names, num_labels))
    dataset = DatasetDict({split: concatenate_datasets(rows) for split, rows in splits.items()})
    if "validation" not in dataset:
        dataset = _hold_out(dataset, spec.holdout if spec else None, validation_split_percentage, seed)
    main_metric = spec.main_metric if spec and spec.main_metric else MAIN_METRICS[family]
    if family == "similarity" and target == "label" and not (spec and spec.main_metric):
        main_metric = "f1" if num_labels == 2 else "accuracy"
    return TaskData(dataset, family, target, names, num_labels, num_choices, main_metric, source)


def _read_hub(family, dataset_name, config_name, data_dir, cache_dir, column_mapping):
    """(the HubTask mapping or None, the parts of a Hub dataset, its name for the results file)."""
    spec, config_name = hub_task(dataset_name, config_name)
    if spec is not None and spec.family != family:
        raise RecipeError(
            f"{dataset_name} ({config_name}) is a {spec.family} task; run it with --task_type {spec.family}, not "
            f"{family}."
        )
    parts = _load_hub(dataset_name, config_name, spec, data_dir, cache_dir, column_mapping)
    return spec, parts, dataset_name + (f" ({config_name})" if config_name else "")


def _read_files(family, train_files, validation_files, test_files, column_mapping, cache_dir) -> list[_Part]:
    layout = {*TEXT_FIELDS[family], "label", "score"}
    # The files' names of the layout's fields: renamed by --column_mapping, or already the layout's.
    fields = frozenset(
        {old for old, new in column_mapping.items() if new in layout} | (layout - {*column_mapping.values()})
    )
    parts = []
    for split, files, option in (
        ("train", train_files, "--train_file"),
        ("validation", validation_files, "--validation_file"),
        ("test", test_files, "--test_file"),
    ):
        check_files_exist(files, option)
        for path in files or []:
            part = _read_file(os.fspath(path), split, option, cache_dir, fields)
            part.rows = _rename(part.rows, column_mapping, part.where)
            parts.append(part)
    return parts


def _target(family: str, parts: list[_Part], spec: HubTask | None, similarity_target: str | None) -> str:
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


def _classes(family, target, parts, spec, label_names, model_classes, num_labels) -> _Classes | None:
    """The classes; None for a task without: a score, or one per choice (multiple choice)."""
    if family != "multiple_choice" and target != "score":
        return _class_names(family, parts, spec, label_names, model_classes, num_labels)
    if label_names:
        raise RecipeError(f"--label_names is for class labels; this {family} task learns {target}s.")
    return None


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


__all__ = [
    "HUB_TASKS",
    "TEXT_FIELDS",  # modeling_gpt1's, which the layout's fields are
    "MAIN_METRICS",
    "HubTask",
    "TaskData",
    "hub_task",
    "load_task_data",
    "majority_baseline",
]
