"""Fine-tune a GPT-1 on a labelled task with transformers' Trainer: recipes/finetune.py's Trainer twin.

The same command line, data (recipes/data/tasks/), tokenizer, model, encoder and collator as recipes/finetune.py,
and the paper's defaults as TrainingArguments (linear schedule with a 0.2% warm-up, weight decay 0.01 on matrices,
max grad-norm 1, fused AdamW); on the same data and seed it gives the same metrics. Evaluation and checkpoints
follow `--checkpointing_steps` ("epoch" by default); the best model is loaded at the end, saved with its tokenizer in
`--output_dir`, evaluated on the test split, and `results.json` has the layout of recipes/finetune.py's: the three
losses (L3, the task loss, the LM loss) and the task's metrics of every evaluation as numbers, the majority-class
baseline on every evaluation split, the positive class of a 2-class task, and the training loss logged at every
evaluation (and every `--logging_steps`). Evaluations print as recipes/finetune.py's do, numbers and not Trainer's
dict of strings.

    python -m recipes.finetune_trainer --task_type classification --model_name_or_path runs/pretrain-gpt1 \\
        --dataset_name nyu-mll/glue --dataset_config_name sst2
"""

if __name__ == "__main__" and not __package__:  # a script path: `accelerate launch recipes/finetune_trainer.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)

from .core.command import run_cli
from .training.finetune_options import FinetuneArguments
from .training.finetuning_with_trainer import training_function

PROG = "python -m recipes.finetune_trainer"


def main(argv=None):
    return run_cli(FinetuneArguments, training_function, argv, prog=PROG, description=__doc__)


if __name__ == "__main__":
    main()
