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
what is wrong. A .jsonl, .json, .csv or .tsv file is read line by line first (readers.py `_scan_file`), so that what
`datasets` would fail on or misread is named with its line: bytes that are not UTF-8 (UTF-16 and UTF-32 files among
them), a line that is not a JSON object, a task field whose JSON type changes from row to row, a CSV row with more
cells than its header. Then each row: a missing field, a text that is not a string or is empty (only whitespace), a
label that is out of range or not a class name, a multiple-choice row with fewer than 2 choices or a label that is not
the index of one of them. Multiple-choice rows may have different numbers of choices (RACE has 4, other sets mix 4 and
5): `GPT1TaskCollator` pads a batch with padding choices, which the model masks; `TaskData.num_choices` is the most
choices of a row in any split.

The package, by job: sources.py (the Hub datasets known by name and reading their splits), readers.py (local files and
their formats, read line by line), parts.py (a file or Hub split on its way into a split), rows.py (the target, the
class names and every row's checks), loading.py (`load_task_data`, `TaskData`, the held-out validation split).
"""

from modeling_gpt1 import TEXT_FIELDS

from .loading import MAIN_METRICS, TaskData, load_task_data, majority_baseline
from .sources import DEFAULT_HUB_CONFIGS, HUB_TASKS, HubTask, hub_task

__all__ = [
    "DEFAULT_HUB_CONFIGS",
    "HUB_TASKS",
    "TEXT_FIELDS",  # modeling_gpt1's, which the layout's fields are
    "MAIN_METRICS",
    "HubTask",
    "TaskData",
    "hub_task",
    "load_task_data",
    "majority_baseline",
]
