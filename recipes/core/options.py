"""The options every training recipe shares (optimiser, schedule, loop, checkpoints, output), as one dataclass.

`pretrain` and `finetune` subclass `TrainingOptions` to set their own defaults (a field declared again in a subclass
keeps its place and takes the new default); the help texts and the range checks stay here, in one place. The checks
run when the options are parsed (`__post_init__`), before a recipe does any work.
"""

import math
from dataclasses import asdict, dataclass, field

from .arguments import at_least
from .errors import RecipeError

MIXED_PRECISION = ("no", "fp16", "bf16", "fp8")
# Where a run writes and how it reports, not what it computes: left out of the hyper-parameters a run records, so a
# resumed run (or one in another folder) records the same ones as an uninterrupted run.
RUN_FIELDS = ("output_dir", "overwrite_output_dir", "resume_from_checkpoint", "with_tracking", "report_to")
RUN_FIELDS += ("push_to_hub", "hub_model_id", "preprocessing_num_workers", "allow_resume_changes")
# What a resumed run may change without a word: how often it logs, evaluates and saves, what it prints at the end, and
# where it reads from (the data and the tokenizer are compared by their fingerprints, the model by its config).
RESUME_FREE = ("logging_steps", "eval_steps", "checkpointing_steps", "checkpoints_total_limit", "cpu")
RESUME_FREE += ("per_device_eval_batch_size", "max_eval_samples", "skip_initial_evaluation")
RESUME_FREE += ("num_samples", "sample_length", "sample_prompts")
RESUME_FREE += ("train_file", "validation_file", "test_file", "dataset_name", "dataset_config_name")
RESUME_FREE += ("dataset_data_dir", "model_name_or_path", "config_name", "tokenizer", "document_boundary")
RESUME_FREE += ("token_shards",)
# What a resumed run may change when `--allow_resume_changes` names it: the optimiser and schedule settings, which the
# resumed run applies (recipes/core/optim.py `apply_resume_changes`) and records. Anything else is refused on resume.
RESUME_CHANGEABLE = ("max_steps", "num_train_epochs", "learning_rate", "lr_scheduler_type", "num_warmup_steps")
RESUME_CHANGEABLE += ("warmup_ratio", "weight_decay", "adam_beta1", "adam_beta2", "max_grad_norm", "mixed_precision")
# Options added after checkpoints were written, with the behaviour those runs had: a checkpoint that records none
# of them resumes as if it had their defaults.
ADDED_OPTIONS = {"truncation_keep": "head", "positive_label": None, "embedding_lr_scale": 1.0}
EVAL_STRATEGIES = ("steps", "epoch")


def option(default, help: str, **metadata):
    """A dataclass field with its command-line help (transformers' HfArgumentParser reads `metadata`)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **metadata})
    return field(default=default, metadata={"help": help, **metadata})


@dataclass
class TrainingOptions:
    output_dir: str | None = option(None, "the run's folder: model, tokenizer, logs, checkpoints")
    overwrite_output_dir: bool = option(False, "delete the checkpoints of an earlier run in --output_dir")
    per_device_train_batch_size: int = option(8, "sequences (or examples) per device and micro-batch")
    per_device_eval_batch_size: int = option(16, "sequences (or examples) per device in evaluation")
    gradient_accumulation_steps: int = option(1, "micro-batches per optimizer step")
    learning_rate: float | None = option(None, "peak learning rate of AdamW")
    weight_decay: float | None = option(None, "decoupled weight decay, on matrices only (not biases or gains)")
    adam_beta1: float | None = option(None, "AdamW beta1")
    adam_beta2: float | None = option(None, "AdamW beta2")
    lr_scheduler_type: str = option("cosine", "any transformers scheduler name (linear, cosine, constant, ...)")
    embedding_lr_scale: float = option(
        1.0,
        "the token embedding's (and the tied LM head's) learning rate as a multiple of --learning_rate; post-LN "
        "GPT-1 below 768 wide needs about 10 to leave the unigram plateau (docs/RESULTS.md)",
    )
    num_warmup_steps: int | None = option(None, "linear warm-up steps (default: from --warmup_ratio)")
    warmup_ratio: float | None = option(None, "warm-up as a fraction of the training steps, rounded up")
    max_grad_norm: float = option(1.0, "clip the gradient norm to this (0: no clipping)")
    max_steps: int | None = option(
        None, "optimizer steps (default: --num_train_epochs epochs)", aliases=["--max_train_steps"]
    )
    num_train_epochs: int = option(1, "passes over the training data when --max_steps is not given")
    seed: int = option(0, "seed of the weights, the data order, dropout")
    mixed_precision: str | None = option(None, f"one of {MIXED_PRECISION} (default: Accelerate's config)")
    cpu: bool = option(False, "train on the CPU even if an accelerator is present")
    logging_steps: int = option(10, "log the training loss every N steps")
    eval_strategy: str = option("steps", "evaluate every --eval_steps ('steps') or after every epoch ('epoch')")
    eval_steps: int = option(100, "with --eval_strategy steps: evaluate every N steps (and at the end)")
    checkpointing_steps: str = option("200", '"epoch", or save a checkpoint every N steps (0: only at the end)')
    checkpoints_total_limit: int = option(2, "keep the newest N checkpoints")
    resume_from_checkpoint: str | None = option(None, '"latest", a checkpoint folder or a folder of them')
    allow_resume_changes: list[str] | None = option(
        None, f"options a resumed run may change from its checkpoint's (recorded in the results): {RESUME_CHANGEABLE}"
    )
    with_tracking: bool = option(False, "log to --report_to")
    report_to: str = option("tensorboard", "an Accelerate tracker: tensorboard, wandb, all, ...")
    push_to_hub: bool = option(False, "upload the model and tokenizer at the end")
    hub_model_id: str | None = option(None, "repository for --push_to_hub (default: the output folder's name)")

    def __post_init__(self):
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            at_least(name, getattr(self, name), 1)
        for name in ("logging_steps", "eval_steps", "max_steps", "num_train_epochs", "checkpoints_total_limit"):
            at_least(name, getattr(self, name), 1)
        if isinstance(self.learning_rate, (int, float)) and not 0 < self.learning_rate < math.inf:
            raise ValueError(f"--learning_rate must be a finite number > 0, got {self.learning_rate}")
        at_least("weight_decay", self.weight_decay, 0)
        if not 0 < self.embedding_lr_scale < math.inf:
            raise ValueError(f"--embedding_lr_scale must be a finite number > 0, got {self.embedding_lr_scale}")
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:  # NaN fails it too
                raise ValueError(f"--{name} must be in [0, 1), got {value}")
        at_least("num_warmup_steps", self.num_warmup_steps, 0)
        if self.warmup_ratio is not None and not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"--warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.num_warmup_steps is not None and self.max_steps is not None and self.num_warmup_steps > self.max_steps:
            raise ValueError(
                f"--num_warmup_steps {self.num_warmup_steps} is more than --max_steps {self.max_steps}: the learning "
                f"rate would never reach its peak"
            )
        at_least("max_grad_norm", self.max_grad_norm, 0)
        if self.mixed_precision is not None and self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"--mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        if self.eval_strategy not in EVAL_STRATEGIES:
            raise ValueError(f"--eval_strategy must be one of {EVAL_STRATEGIES}, got {self.eval_strategy!r}")
        steps = str(self.checkpointing_steps)
        if steps != "epoch" and not steps.isdigit():
            raise ValueError(f'--checkpointing_steps must be "epoch" or a number of steps >= 0, got {steps!r}')
        unknown = [name for name in self.allow_resume_changes or () if name not in RESUME_CHANGEABLE]
        if unknown:
            raise ValueError(
                f"--allow_resume_changes {' '.join(unknown)}: a resumed run can change only "
                f"{', '.join(RESUME_CHANGEABLE)} (the rest shapes the run from its first step)"
            )

    def hyperparameters(self) -> dict:
        """What the run computes with (results.json, history.json, the trackers): every option but `RUN_FIELDS`."""
        return {key: value for key, value in asdict(self).items() if key not in RUN_FIELDS}

    @property
    def checkpoint_every(self) -> int | str:
        """`--checkpointing_steps` as "epoch" or a number of steps (0: only at the end)."""
        steps = str(self.checkpointing_steps)
        return steps if steps == "epoch" else int(steps)

    def warmup_steps(self, max_steps: int) -> int:
        """The warm-up: `--num_warmup_steps`, else `--warmup_ratio` of the steps rounded up (as Trainer counts it).
        A warm-up longer than the run is an error: the learning rate would never reach its peak."""
        if self.num_warmup_steps is not None:
            if self.num_warmup_steps > max_steps:
                raise RecipeError(
                    f"--num_warmup_steps {self.num_warmup_steps} is more than the run's {max_steps} optimizer steps: "
                    f"the learning rate would never reach its peak"
                )
            return self.num_warmup_steps
        return math.ceil(max_steps * self.warmup_ratio) if self.warmup_ratio else 0
