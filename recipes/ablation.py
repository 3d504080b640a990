"""The GPT-1 paper's central claims at small scale: pre-training helps fine-tuning, and so (sometimes) does the
auxiliary LM loss; full fine-tuning against a frozen body. One fine-tuning run (`recipes.finetune`, called in
process) per task x variant x seed:

    paper        the pre-trained model, all weights fine-tuned, lambda (--lm_coef) 0.5
    random-init  the same architecture and tokenizer with fresh weights, lambda 0.5
    no-lm-loss   the pre-trained model, lambda 0
    frozen-body  the pre-trained model, only the task head and task-token embeddings trained, lambda 0.5

    python -m recipes.ablation --config ablation-demo --pretrained runs/pretrain-gpt1 --data_dir data/tasks
    python -m recipes.ablation --pretrained runs/pretrain-gpt1 --tasks classification=my/polarity \\
        entailment=my/rte --finetune_config my-finetune.yaml

`--tasks` names each task folder (train / validation / test .jsonl in the layout of docs/DATA.md) with its task family,
as `family=folder` (relative to `--data_dir`); `--finetune_config` is a fine-tuning run config
(recipes/configs/finetune/, e.g. `finetune-paper`) applied to every run, and the options below override it. The random
model is the pre-trained one's config and tokenizer with seeded fresh weights, saved once in
`<output_dir>/random-init`. Runs whose results.json exists are reused (so a matrix can be split over processes with
--families and gathered by a last call). Writes `<output_dir>/ablation.json` (every run's test and validation metrics
and test predictions; per family, each variant's and the majority class's test accuracy and Matthews correlation with
95% bootstrap intervals over the test rows, and the paired differences of the paper's comparisons) and
`<output_dir>/ablation.png` (both metrics per family and variant, with their intervals).
"""

if __name__ == "__main__" and not __package__:  # a script path: `accelerate launch recipes/ablation.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)

import math
from dataclasses import dataclass
from pathlib import Path

from .core.arguments import at_least, read_config
from .core.command import run_cli
from .core.options import option
from .training.ablation_study import DEFAULT_TASKS, VARIANTS, parse_tasks, run_ablation
from .training.finetune_options import parse_learning_rate

PROG = "python -m recipes.ablation"


@dataclass
class AblationArguments:
    """The ablation's options: the task folders, the variants and seeds, and the fine-tuning settings every run
    shares."""

    pretrained: str | None = option(None, "a pre-trained GPT-1 folder with its tokenizer", required=True)
    data_dir: str = option(".", "the folder the --tasks folders are relative to")
    tasks: list[str] = option(DEFAULT_TASKS, "family=folder per task (train/validation/test.jsonl in each)")
    families: list[str] | None = option(None, "run only these families of --tasks (default: all)")
    variants: list[str] = option(list(VARIANTS), f"any of {', '.join(VARIANTS)}")
    seeds: list[int] = option([0], "one run per seed")
    output_dir: str = option("runs/ablation", "runs, ablation.json and ablation.png")
    finetune_config: str | None = option(None, "a fine-tuning run config applied to every run")
    max_train_samples: int | None = option(None, "default: every training row")
    max_length: int = option(64, "tokens per fine-tuning input")
    num_train_epochs: int = option(3, "fine-tuning epochs")
    batch_size: int = option(32, "fine-tuning batch size")
    learning_rate: str | None = option(
        None, "the same for every variant: a number or \"auto\" (default: fine-tuning's, auto below the paper's size)"
    )
    similarity_target: str = option("label", "similarity as classes (label; has a majority baseline) or score")
    threads: int = option(1, "torch threads (1 is fastest for small models)")
    collect_only: bool = option(False, "train nothing: gather the finished runs")
    keep_models: bool = option(False, "keep each run's weights and checkpoints")
    bootstrap_rounds: int = option(2000, "resamples of the test rows for the 95% intervals (at least 100)")

    def __post_init__(self):
        tasks = parse_tasks(self.tasks)
        unknown = sorted(set(self.families or []) - set(tasks))
        if unknown:
            raise ValueError(f"--families {unknown} are not among the --tasks families {list(tasks)}")
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise ValueError(f"--variants {unknown} are not known; known: {list(VARIANTS)}")
        for name in ("max_train_samples", "max_length", "num_train_epochs", "batch_size", "threads"):
            at_least(name, getattr(self, name), 1)
        self.learning_rate = parse_learning_rate(self.learning_rate)
        if isinstance(self.learning_rate, float) and not 0 < self.learning_rate < math.inf:
            raise ValueError(f"--learning_rate must be a finite number > 0, got {self.learning_rate}")
        at_least("bootstrap_rounds", self.bootstrap_rounds, 100)
        if self.finetune_config is not None:
            read_config(self.finetune_config)  # exists and is a mapping, before any run starts

    @property
    def task_folders(self) -> dict[str, Path]:
        tasks = parse_tasks(self.tasks)
        return {family: Path(self.data_dir) / tasks[family] for family in (self.families or tasks)}


def main(argv=None) -> dict:
    return run_cli(AblationArguments, run_ablation, argv, prog=PROG, description=__doc__)


if __name__ == "__main__":
    main()
