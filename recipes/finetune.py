"""Fine-tune a GPT-1 on a labelled task, as the paper did (Radford et al. 2018, section 3.2), with Accelerate.

One script for the paper's four task families (`--task_type`): classification (SST-2, CoLA), entailment (SNLI,
MNLI, QNLI, RTE, SciTail), similarity (STS-B as regression; MRPC, QQP as classes of pairs) and multiple choice
(RACE, Story Cloze). The model is GPT1OriginsDoubleHeadsModel: the pre-trained transformer, its tied LM head and a new
linear head on the extract token, trained on L3 = L2(task) + lm_coef * L1(LM).

    python -m recipes.finetune --task_type classification --model_name_or_path runs/pretrain-gpt1 \\
        --dataset_name nyu-mll/glue --dataset_config_name sst2
    python -m recipes.finetune --task_type entailment --model_name_or_path openai-community/openai-gpt \\
        --train_file train.jsonl --validation_file validation.jsonl --test_file test.jsonl
    python -m recipes.finetune --task_type multiple_choice --model_name_or_path tiny --tokenizer train \\
        --train_file choices.jsonl --num_train_epochs 1          # random weights: a smoke test, not a model
    accelerate launch --config_file recipes/configs/launch/multi_gpu.yaml -m recipes.finetune ...

What happens, in order:
1. The data is loaded and every row checked (recipes/data/tasks/); the tokenizer is loaded (`--tokenizer`,
   default the model's) and given the task tokens `_start_`, `_delimiter_`, `_classify_` if it lacks them, the model's
   embedding growing to match (new rows N(0, 0.02)); the config gets the task type, the classes and the token ids.
2. Each example becomes the paper's input transformation (`modeling_gpt1.GPT1TaskEncoder`, `--max_length` tokens at
   most), batched by `GPT1TaskCollator`.
3. The paper's fine-tuning recipe, every value overridable: AdamW lr 6.25e-5, betas (0.9, 0.999), weight decay 0.01
   on matrices only, batch 32, 3 epochs, linear warm-up over 0.2% of the steps then linear decay to 0, gradient
   norm clipped at 1, classifier dropout 0.1, lambda (`--lm_coef`) 0.5. `--freeze_body` trains only what
   fine-tuning adds: the task head and the three task-token embeddings.
4. After every epoch: validation loss and the task's metrics (recipes/evaluation/metrics); the best model by
   `--metric_for_best_model` is saved with its tokenizer in `--output_dir` (Auto classes, or remote code). Atomic
   checkpoints as in pre-training (`--checkpointing_steps`, `--resume_from_checkpoint latest` continues bit for bit).
5. At the end: the best model on the test split (and any other evaluation split, e.g. MNLI mismatched), and
   `results.json`: hyper-parameters, per-epoch validation metrics, the majority-class baseline on every evaluation
   split, test metrics. Tasks of classes report accuracy, macro_f1 (the mean F1 over the classes) and
   matthews_correlation; a 2-class task also f1, the F1 of its positive class (`--positive_label`, else a class
   named positive, entailment, yes, true, 1, ..., else X against not_X; otherwise the run asks for
   --positive_label), which results.json records under task.positive_label.

`recipes/finetune_trainer.py` does the same through transformers' Trainer.
"""

if __name__ == "__main__" and not __package__:  # a script path: `accelerate launch recipes/finetune.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)

from .core.command import run_cli
from .training.finetune_options import PROG, FinetuneArguments
from .training.finetuning import training_function
from .training.task_setup import predict  # `recipes.finetune.predict(folder, rows)`, as recipes/README.md shows


def main(argv=None):
    return run_cli(FinetuneArguments, training_function, argv, prog=PROG, description=__doc__)


__all__ = ["FinetuneArguments", "main", "predict"]


if __name__ == "__main__":
    main()
