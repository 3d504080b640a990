"""GPT-1 fine-tuning through transformers' Trainer (recipes/finetune_trainer.py): the data, tokenizer, model, encoder
and collator of recipes/training/finetuning.py, the paper's defaults as TrainingArguments, evaluations that report
the same three losses and task metrics, and a results.json in the same layout.
"""

import json
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import set_seed
from datasets import DatasetDict
from transformers import EvalPrediction, ProgressCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from modeling_gpt1 import GPT1TaskCollator

from ..core.accelerators import has_accelerator
from ..core.optim import build_optimizer
from ..core.run_folder import check_hub_upload, lock_output_dir
from ..data.tasks import TaskData
from . import task_setup
from .finetune_options import FinetuneArguments, default_learning_rate
from .finetuning import RESULTS, find_learning_rate, report
from .lr_range_test import AUTO
from .task_setup import PositiveLabel

LOSSES = ("task_loss", "lm_loss")  # beside `loss` (L3) in the model's output; Trainer's evaluation keeps only `loss`


def training_arguments(args: FinetuneArguments, metric: str) -> TrainingArguments:
    """recipes/finetune.py's options as TrainingArguments."""
    strategy = "epoch" if args.checkpoint_every == "epoch" else "steps"
    steps = None if strategy == "epoch" else args.checkpoint_every
    return TrainingArguments(
        output_dir=args.output_dir,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,  # Trainer decays every weight but biases and LayerNorm gains: the matrices
        adam_beta1=args.adam_beta1,
        adam_beta2=args.adam_beta2,
        max_grad_norm=args.max_grad_norm,
        lr_scheduler_type=args.lr_scheduler_type,
        warmup_steps=args.warmup_ratio,  # below 1: a fraction of the training steps, rounded up
        num_train_epochs=args.num_train_epochs,
        max_steps=args.max_steps or -1,
        # load_best_model_at_end needs an evaluation at every save.
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=steps,
        save_steps=steps,
        save_total_limit=args.checkpoints_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model=metric,
        greater_is_better=task_setup.greater_is_better(metric),
        logging_steps=args.logging_steps,
        seed=args.seed,
        data_seed=args.seed,
        bf16=args.mixed_precision == "bf16",
        fp16=args.mixed_precision == "fp16",
        use_cpu=args.cpu,
        dataloader_pin_memory=has_accelerator() and not args.cpu,
        report_to=[args.report_to] if args.with_tracking else "none",
        label_names=["labels"],  # so that evaluation returns the labels next to the task logits
        # Trainer keeps the dataset columns that are arguments of model.forward: input_ids, attention_mask,
        # mc_token_ids and labels, i.e. everything the encoder makes.
        remove_unused_columns=True,
        push_to_hub=args.push_to_hub,
        hub_model_id=args.hub_model_id,
    )


class TaskTrainer(Trainer):
    """Trainer whose evaluation also returns the task and LM losses, so that it reports the three losses of
    recipes/finetune.py's evaluation. Each batch's mean loss is repeated for its examples (as Trainer does for L3)
    and the repeats are gathered beside the task logits: their mean over a split is recipes/finetune.py's."""

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        if "labels" not in inputs or prediction_loss_only:  # no losses to add (trainer.predict on unlabelled rows)
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        inputs = self._prepare_inputs(inputs)
        labels = inputs["labels"]
        with torch.no_grad(), self.compute_loss_context_manager():
            loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
        losses = tuple(outputs[name].detach().float().repeat(len(labels)) for name in LOSSES)  # (B,) each
        return loss.detach().mean(), (outputs["logits"].detach(), *losses), labels.detach()


class TrainingLossAtEvaluation(TrainerCallback):
    """Logs the training loss whenever Trainer is about to evaluate, as recipes/finetune.py's loop does: every
    evaluation has the training loss beside it in train_history, whatever --logging_steps."""

    def on_step_end(self, args, state, control, **kwargs):
        control.should_log = control.should_log or control.should_evaluate

    on_epoch_end = on_step_end


class NumericProgressCallback(ProgressCallback):
    """Trainer's progress bar, with each evaluation printed as recipes/finetune.py prints it (`epoch 1 (step 4):
    validation loss 4.1719, task_loss 0.7343, ...`) and the other logs as numbers, not Trainer's dict of strings."""

    def __init__(self, reported: list[str]):
        super().__init__()
        self.reported = reported

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or self.training_bar is None:
            return
        if "eval_loss" in logs:
            shown = ", ".join(f"{name} {logs[f'eval_{name}']:.4f}" for name in self.reported)
            self.training_bar.write(f"epoch {state.epoch:g} (step {state.global_step}): validation {shown}")
            return
        shown = [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in logs.items() if k != "total_flos"]
        self.training_bar.write(f"step {state.global_step}: {', '.join(shown)}")


def build_trainer(
    hyperparameters: dict, args: FinetuneArguments
) -> tuple[Trainer, TaskData, DatasetDict, PositiveLabel | None]:
    """The Trainer, on the data, tokenizer and model of recipes/finetune.py, and the positive class (2 classes)."""
    set_seed(args.seed)
    task = task_setup.get_task_data(args)
    positive = task_setup.positive_label(task, args.positive_label)
    metric = args.metric_for_best_model or task.main_metric
    # What every evaluation reports: the losses L3, task and LM (TaskTrainer.prediction_step) and the task's metrics.
    hyperparameters["reported"] = task_setup.check_metric(task, metric, positive)
    tokenizer, added_tokens = task_setup.get_tokenizer(args, task)
    model, max_length = task_setup.get_model(args, task, tokenizer, added_tokens)
    hyperparameters.update(metric_for_best_model=metric, max_length=max_length, added_tokens=added_tokens)
    encoded = task_setup.encode_task(
        task, tokenizer, max_length, args.preprocessing_num_workers, keep=args.truncation_keep
    )
    collator = GPT1TaskCollator(  # every batch as wide as the most choices: Trainer concatenates the logits
        tokenizer,
        pad_to_multiple_of=8 if args.mixed_precision in ("fp16", "bf16") else None,
        pad_choices_to=task.num_choices,
    )
    if args.learning_rate is None:
        args.learning_rate = default_learning_rate(model.config)
    training_args = training_arguments(args, metric)
    no_decay = task_setup.freeze_body(model, tokenizer) if args.freeze_body else []
    betas = (args.adam_beta1, args.adam_beta2)

    def make_optimizer(learning_rate: float):
        scale = args.embedding_lr_scale
        return build_optimizer(model, learning_rate, betas, args.weight_decay, training_args.device, no_decay, scale)

    range_test = None
    if args.learning_rate == AUTO:
        range_test = find_learning_rate(
            args, model, encoded["train"], collator, make_optimizer, training_args.device, PartialState().print
        )
        training_args.learning_rate = range_test["learning_rate"]
    hyperparameters.update(
        learning_rate=args.learning_rate,
        peak_learning_rate=training_args.learning_rate,
        learning_rate_range_test=range_test,
    )
    optimizers = (None, None)
    if args.freeze_body or args.embedding_lr_scale != 1:
        # Trainer would decay the whole embedding, frozen rows included, and has one learning rate: the recipe's AdamW
        # leaves a frozen embedding undecayed and gives the embedding its --embedding_lr_scale.
        optimizers = (make_optimizer(training_args.learning_rate), None)

    def compute_metrics(prediction: EvalPrediction) -> dict:
        logits, *losses = prediction.predictions  # TaskTrainer.prediction_step: (N, C) logits, (N,) per loss
        metrics = {name: float(values.astype("float64").mean()) for name, values in zip(LOSSES, losses, strict=True)}
        predictions = task_setup.predictions_from_logits(task, logits).tolist()
        return {**metrics, **task_setup.task_metrics(task, predictions, prediction.label_ids.tolist(), positive)}

    trainer = TaskTrainer(
        model=model,
        args=training_args,
        data_collator=collator,
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        optimizers=optimizers,
        callbacks=[TrainingLossAtEvaluation()],
    )
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(NumericProgressCallback(hyperparameters["reported"]))
    return trainer, task, encoded, positive


def _metrics(record: dict, prefix: str, reported) -> dict:
    """Trainer's metrics `{prefix}name` as recipes/finetune.py's `name`, in its order (the losses, then the task's)."""
    return {name: float(record[f"{prefix}{name}"]) for name in reported}


def training_function(args: FinetuneArguments) -> dict:
    """Fine-tuning with Trainer, holding the output folder's lock (recipes/core/run_lock.py) from the first write to
    the last: a second run on the same folder is refused, naming this one."""
    hyperparameters = args.hyperparameters()
    check_hub_upload(args)
    trainer, task, encoded, positive = build_trainer(hyperparameters, args)
    lock = lock_output_dir(trainer.accelerator, Path(args.output_dir))
    try:
        results = train_and_report(trainer, task, encoded, positive, hyperparameters, args)
    finally:
        if lock is not None:
            lock.release()
    if args.push_to_hub:  # Trainer uploads the folder's files: the lock is gone by now
        trainer.push_to_hub()
    return results


def train_and_report(
    trainer, task, encoded, positive: PositiveLabel | None, hyperparameters: dict, args: FinetuneArguments
) -> dict:
    metric, reported = hyperparameters["metric_for_best_model"], hyperparameters.pop("reported")
    resume = args.resume_from_checkpoint
    if resume == "latest":
        resume = get_last_checkpoint(args.output_dir) if Path(args.output_dir).is_dir() else None
    trainer.train(resume_from_checkpoint=resume)
    output_dir = Path(args.output_dir)
    trainer.save_model(output_dir)  # the best model (load_best_model_at_end), its tokenizer and code

    validation, train_history = [], []
    for record in trainer.state.log_history:
        if f"eval_{metric}" in record:
            validation.append(
                {"step": record["step"], "epoch": record["epoch"], **_metrics(record, "eval_", reported)}
            )
        elif "loss" in record:  # recipes/finetune.py's record, with the learning rate as `lr`
            train_history.append(
                {key: record[key] for key in ("step", "epoch", "loss")} | {"lr": record["learning_rate"]}
            )
    best = max(validation, key=lambda r: r[metric] if task_setup.greater_is_better(metric) else -r[metric])
    final = {
        split: _metrics(trainer.evaluate(encoded[split], metric_key_prefix=split), f"{split}_", reported)
        for split in encoded
        if split not in ("train", "validation")
    }
    hyperparameters.update(
        max_train_steps=trainer.state.max_steps,
        num_warmup_steps=trainer.args.get_warmup_steps(trainer.state.max_steps),
        num_parameters=trainer.model.num_parameters(),
        trainable_parameters=task_setup.trained_parameters(trainer.model, args.freeze_body),
    )
    results = {
        "task": task_setup.task_summary(task, positive),
        "hyperparameters": hyperparameters,
        "majority_baseline": task_setup.majority_metrics(task, positive),
        "validation": validation,
        "best": {"metric": metric, "value": best[metric], "step": best["step"], "epoch": best["epoch"]},
        **final,
        "train_history": train_history,
        # recipes/finetune.py lists the options a resumed run changed (--allow_resume_changes); Trainer resumes with
        # whatever options it is given and keeps no such record: None, not an empty list that would claim none.
        "resume_changes": None,
    }
    if trainer.is_world_process_zero():
        (output_dir / RESULTS).write_text(json.dumps(results, indent=1))
    report(trainer.accelerator, results, output_dir, metric)
    return results


__all__ = ["TaskTrainer", "build_trainer", "training_arguments", "training_function"]
