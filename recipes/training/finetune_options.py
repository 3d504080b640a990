"""The options of GPT-1 fine-tuning (`FinetuneArguments`, the paper's defaults, section 4.1) and the rules that
resolve them: `--learning_rate` as given and its default for the model's size, `--column_mapping` as a dict. Both
fine-tuning recipes (recipes/finetune.py, the Accelerate loop, and recipes/finetune_trainer.py, transformers'
Trainer) and the ablation read these options.
"""

from dataclasses import dataclass

from modeling_gpt1 import TASK_FAMILIES
from modeling_gpt1.tasks import KEEP_MODES

from ..core.arguments import at_least, parse_arguments
from ..core.options import TrainingOptions, option
from .lr_range_test import AUTO
from .task_setup import POSITIVE_RULE, PRESETS

PROG = "python -m recipes.finetune"


def parse_column_mapping(text: str | None) -> dict | None:
    """`--column_mapping old=new,old2=new2` as a dict."""
    if not text:
        return None
    pairs = [pair.split("=", 1) for pair in text.split(",") if pair]
    if any(len(pair) != 2 or not all(pair) for pair in pairs):
        raise ValueError(f"--column_mapping {text!r} is not a list old=new,old2=new2")
    return dict(pairs)


# The paper's fine-tuning rate (section 4.1), the default for a model of its size (`default_learning_rate`).
PAPER_LEARNING_RATE = 6.25e-5
PAPER_SIZE = {"n_layer": 12, "n_embd": 768}


def parse_learning_rate(value) -> float | str | None:
    """`--learning_rate` as given: None (the default rule), "auto" or a number (a run config's float, or its text)."""
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f'--learning_rate must be a number or "auto", got {value!r}') from None


def default_learning_rate(config) -> float | str:
    """The rate of a run that gives none: the paper's for the paper's 12 x 768 model, a range test for any other."""
    is_paper_size = all(getattr(config, key, None) == value for key, value in PAPER_SIZE.items())
    return PAPER_LEARNING_RATE if is_paper_size else AUTO


@dataclass
class FinetuneArguments(TrainingOptions):
    """The fine-tuning options; the training defaults are the paper's (section 4.1 and the released train.py)."""

    # The model.
    model_name_or_path: str | None = option(
        None,
        f"a GPT-1 folder (a pre-training run, a LM or fine-tuned GPT-1, transformers' openai-gpt) or Hub name, or a "
        f"preset with random weights: {', '.join(PRESETS)}",
        required=True,
    )
    tokenizer: str | None = option(None, 'a tokenizer folder or Hub name (default: the model\'s), or "train"')
    vocab_size: int = option(8000, 'of a --tokenizer "train"')
    config_overrides: str | None = option(None, 'config fields, e.g. "resid_pdrop=0.0,attn_pdrop=0.0"')
    attn_implementation: str = option("sdpa", "sdpa, eager, flash_attention_2, flex_attention")
    lm_coef: float = option(0.5, "lambda, the weight of the auxiliary LM loss; 0: no LM loss")
    classifier_dropout: float = option(0.1, "dropout before the task head")
    freeze_body: bool = option(False, "train only the task head and the task tokens' embeddings (LM loss still on)")
    # The data.
    task_type: str | None = option(None, f"one of {', '.join(TASK_FAMILIES)}", required=True)
    train_file: list[str] | None = option(None, ".jsonl, .json, .csv, .tsv or .parquet")
    validation_file: list[str] | None = option(None, "validation rows (default: held out from the training rows)")
    test_file: list[str] | None = option(None, "test rows, evaluated with the best model at the end")
    dataset_name: str | None = option(None, "a Hub dataset: nyu-mll/glue, stanfordnlp/snli, ehovy/race")
    dataset_config_name: str | None = option(None, "e.g. sst2, mnli, stsb")
    dataset_data_dir: str | None = option(None, "data_dir of a manual download (story_cloze)")
    column_mapping: str | None = option(None, "rename columns: sentence=text,...")
    label_names: list[str] | None = option(None, "class names in id order")
    num_labels: int | None = option(None, "classes of integer labels without names")
    positive_label: str | None = option(
        None, f"the class of a 2-class task whose F1 is reported as f1 (default: {POSITIVE_RULE})"
    )
    similarity_target: str | None = option(None, "similarity as regression (score) or classes (label)")
    validation_split_percentage: float = option(10.0, "held out when there is no validation set, in (0, 100)")
    max_length: int | None = option(None, "tokens per sequence (default: min(n_positions, 512))")
    truncation_keep: str = option(
        "head", "tokens kept of a text too long: head, tail, or head_tail (1/4 head + 3/4 tail, Sun et al. 2019)"
    )
    max_train_samples: int | None = option(None, "use at most this many training rows")
    max_eval_samples: int | None = option(None, "use at most this many rows of each evaluation split")
    preprocessing_num_workers: int | None = option(None, "processes that encode the rows")
    metric_for_best_model: str | None = option(None, "default: the task's main metric (e.g. accuracy)")
    # The paper's training settings.
    per_device_train_batch_size: int = option(32, "examples per device and micro-batch")
    per_device_eval_batch_size: int = option(32, "examples per device in evaluation")
    learning_rate: str | None = option(
        None,
        'peak learning rate of AdamW: a number, or "auto", a learning-rate range test of 100 steps before training '
        "(recipes/training/lr_range_test.py); default: the paper's 6.25e-5 for its 12 x 768 model, auto for any other "
        "size (a 4 x 256 model hardly moves at 6.25e-5)",
    )
    weight_decay: float = option(0.01, "decoupled weight decay, on matrices only")
    adam_beta1: float = option(0.9, "AdamW beta1")
    adam_beta2: float = option(0.999, "AdamW beta2")
    lr_scheduler_type: str = option("linear", "any transformers scheduler name")
    warmup_ratio: float | None = option(0.002, '"linear learning rate decay schedule with warmup over 0.2%"')
    num_train_epochs: int = option(3, "passes over the training rows")
    eval_strategy: str = option("epoch", "evaluate (and keep the best model) after every epoch, or every --eval_steps")
    checkpointing_steps: str = option("epoch", '"epoch" or a number of steps')

    def __post_init__(self):
        self.learning_rate = parse_learning_rate(self.learning_rate)
        super().__post_init__()
        for name in ("model_name_or_path", "task_type"):
            if getattr(self, name) is None:
                raise ValueError(f"--{name} is required")
        if self.truncation_keep not in KEEP_MODES:
            raise ValueError(f"--truncation_keep must be one of {', '.join(KEEP_MODES)}, got {self.truncation_keep!r}")
        if self.task_type not in TASK_FAMILIES:
            raise ValueError(f"--task_type must be one of {list(TASK_FAMILIES)}, got {self.task_type!r}")
        if self.similarity_target not in (None, "score", "label"):
            raise ValueError(f"--similarity_target must be score or label, got {self.similarity_target!r}")
        if self.lm_coef < 0:
            raise ValueError(f"--lm_coef must be >= 0, got {self.lm_coef}")
        if not 0 <= self.classifier_dropout <= 1:
            raise ValueError(f"--classifier_dropout must be in [0, 1], got {self.classifier_dropout}")
        if not 0 < self.validation_split_percentage < 100:
            raise ValueError(
                f"--validation_split_percentage must be in (0, 100), got {self.validation_split_percentage}"
            )
        for name in ("vocab_size", "max_length", "max_train_samples", "max_eval_samples", "num_labels"):
            at_least(name, getattr(self, name), 1)
        if str(self.checkpointing_steps) == "0":
            raise ValueError('--checkpointing_steps must be "epoch" or a positive number, got 0')
        parse_column_mapping(self.column_mapping)
        self.output_dir = self.output_dir or f"runs/finetune-{self.task_type}"

    @property
    def columns(self) -> dict | None:
        return parse_column_mapping(self.column_mapping)


def parse_args(argv=None, prog: str = PROG, description: str | None = None) -> FinetuneArguments:
    """`argv` (default: the command line) as FinetuneArguments; a bad option exits with status 2."""
    (args,) = parse_arguments([FinetuneArguments], argv, prog=prog, description=description)
    return args


__all__ = [
    "PAPER_LEARNING_RATE",
    "PROG",
    "FinetuneArguments",
    "default_learning_rate",
    "parse_args",
    "parse_column_mapping",
    "parse_learning_rate",
]
