"""The options of zero-shot evaluation (`python -m recipes.evaluate_zero_shot`), with every check that needs no file,
model or tokenizer; the zero-shot probe (recipes/zero_shot_probe.py) builds them for each of its scorings."""

from dataclasses import MISSING, dataclass, field, fields

from ..core.arguments import at_least
from ..core.options import option
from ..data.corpus import builder_for
from .hellaswag import HELLASWAG_DATASET, HELLASWAG_SPLIT
from .multiple_choice import (
    ENTAILMENT_CHOICES,
    ENTAILMENT_TEMPLATE,
    MULTIPLE_CHOICE_TEMPLATE,
    NORMALIZATIONS,
    check_template,
    label_answers,
)
from .scoring import PADDING_SIDES
from .zero_shot import MIXED_PRECISION, TASK_OPTIONS, TASKS
from .zero_shot_data import DEFAULT_SPLIT, HUB_OPTIONS


@dataclass
class ZeroShotArguments:
    task: str = field(metadata={"help": f"one of {', '.join(TASKS)}"})
    model: str = field(
        metadata={"help": "a model folder (GPT-2 or GPT-1), a Hub name, or a GPT-2 preset (tiny, 124M, ...)"}
    )
    # data
    data_file: list[str] | None = option(None, ".txt, .jsonl, .json, .csv, .parquet", aliases=["--text_file"])
    dataset_name: str | None = option(
        None, f"a Hub dataset (instead of files; --task hellaswag: default {HELLASWAG_DATASET})"
    )
    dataset_config_name: str | None = option(None, "the Hub dataset's config")
    dataset_split: str | None = option(
        None,
        f'default {DEFAULT_SPLIT} ({HELLASWAG_SPLIT} for --task hellaswag), or e.g. "validation" or "test[:500]"',
    )
    text_column: str = option("text", "perplexity and lambada")
    max_samples: int | None = option(None, "the first N documents / rows only (lm-evaluation-harness's --limit)")
    join_with: str | None = option(
        None,
        "perplexity: join all documents with this text (escapes like \\n allowed) into one stream, instead of "
        "scoring each document on its own",
    )
    # multiple choice
    template: str | None = option(
        None,
        f"the prompt, fields of a row in braces (default {MULTIPLE_CHOICE_TEMPLATE!r}, entailment rows "
        f"{ENTAILMENT_TEMPLATE!r})",
    )
    label_choices: str | None = option(
        None,
        f"entailment and classification rows: JSON object of label name -> answer, in the order of integer labels "
        f"(default: entailment {ENTAILMENT_CHOICES}; classification: each class name its own answer)",
    )
    choices_column: str = option("choices", "multiple choice rows: the column of the choices")
    label_column: str = option("label", "the column of the right choice's index (or label name)")
    normalize: list[str] = option(
        list(NORMALIZATIONS),
        f"score = choice log-likelihood summed (none), per token (tokens) or per character (chars): {NORMALIZATIONS}",
    )
    # scoring
    max_length: int | None = option(None, "tokens per window (default: n_positions)")
    stride: int | None = option(None, "perplexity: new tokens per window (default: window)")
    add_start_token: bool = option(
        True, "start every sequence with the tokenizer's bos/eos token (<|endoftext|> for GPT-2, _start_ for GPT-1)"
    )
    per_device_eval_batch_size: int = option(8, "sequences per device and batch")
    padding_side: str = option("right", f"one of {PADDING_SIDES}")
    mixed_precision: str | None = option(None, f"one of {MIXED_PRECISION} (default: Accelerate's config)")
    cpu: bool = option(False, "stay on the CPU even where there is an accelerator")
    seed: int = option(0, "of a preset's random weights")
    output_file: str | None = option(None, "JSON results (default runs/zero-shot/<task>-<model>.json)")

    def __post_init__(self):
        """The checks that need no file, model or tokenizer."""
        for name, choices in (("task", TASKS), ("padding_side", PADDING_SIDES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"--{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if self.mixed_precision is not None and self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"--mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        unknown = [name for name in self.normalize if name not in NORMALIZATIONS]
        if unknown:
            raise ValueError(f"--normalize takes {', '.join(NORMALIZATIONS)}, got {', '.join(map(repr, unknown))}")
        for name in ("per_device_eval_batch_size", "max_samples", "stride", "max_length"):
            at_least(name, getattr(self, name), 1)
        if self.task == "hellaswag" and not self.data_file and not self.dataset_name:
            self.dataset_name = HELLASWAG_DATASET
        if bool(self.data_file) == bool(self.dataset_name):
            raise ValueError("Give the data with either --data_file (--text_file) or --dataset_name.")
        for path in self.data_file or []:
            if builder_for(path) == "text" and self.task in ("multiple_choice", "hellaswag"):
                rows = {"multiple_choice": "multiple-choice", "hellaswag": "HellaSwag"}[self.task]
                raise ValueError(f"--data_file {path!r}: {rows} rows need .jsonl/.json/.csv/.parquet.")
        defaults = {
            f.name: f.default if f.default_factory is MISSING else f.default_factory()
            for f in fields(self)
            if f.name in TASK_OPTIONS or f.name in HUB_OPTIONS
        }
        for name, tasks in TASK_OPTIONS.items():
            if self.task not in tasks and getattr(self, name) != defaults[name]:
                raise ValueError(
                    f"--{name} is read for --task {' and '.join(tasks)} only, not --task {self.task}: leave it out"
                )
        for name in HUB_OPTIONS if self.data_file else ():
            if getattr(self, name) != defaults[name]:
                raise ValueError(
                    f"--{name} picks from a Hub dataset (--dataset_name); --data_file is read whole (--max_samples "
                    f"takes its first rows): leave --{name} out"
                )
        if self.dataset_name and self.dataset_split is None:
            self.dataset_split = HELLASWAG_SPLIT if self.task == "hellaswag" else DEFAULT_SPLIT
        if not self.normalize:
            raise ValueError(f"--normalize needs at least one of {', '.join(NORMALIZATIONS)}")
        if not 0 <= self.seed < 2**64:
            raise ValueError(f"--seed must be in [0, 2**64), got {self.seed}")
        if self.template is not None:
            check_template(self.template)
        if self.label_choices is not None:
            label_answers(self.label_choices)  # read here too, so that bad JSON stops the run before any work
