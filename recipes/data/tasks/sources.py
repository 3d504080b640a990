"""Hub datasets known by name (`HUB_TASKS`): how each maps to the layout of its family, and reading its splits."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from datasets import DatasetDict, load_dataset

from ...core.errors import RecipeError
from .parts import Part, rename_columns


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


def read_hub(family, dataset_name, config_name, data_dir, cache_dir, column_mapping):
    """(the HubTask mapping or None, the parts of a Hub dataset, its name for the results file)."""
    spec, config_name = hub_task(dataset_name, config_name)
    if spec is not None and spec.family != family:
        raise RecipeError(
            f"{dataset_name} ({config_name}) is a {spec.family} task; run it with --task_type {spec.family}, not "
            f"{family}."
        )
    parts = _load_hub(dataset_name, config_name, spec, data_dir, cache_dir, column_mapping)
    return spec, parts, dataset_name + (f" ({config_name})" if config_name else "")


def _load_hub(
    dataset_name: str,
    config_name: str | None,
    spec: HubTask | None,
    data_dir: str | None,
    cache_dir: str | None,
    column_mapping: Mapping[str, str],
) -> list[Part]:
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
        rows = rename_columns(rows, renames, where)
        if rows.num_rows == 0:
            raise RecipeError(f"{where} holds no rows.")
        parts.append(Part(split, where, rows))
    return parts
