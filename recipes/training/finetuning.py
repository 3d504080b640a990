"""GPT-1 fine-tuning on the shared training loop (recipes/core/engine.py `run_recipe`), as the paper did (Radford
et al. 2018, section 3.2): the run checked and built (`prepare_run`), the data, optimizer, schedule and loop
(`build_loop`), the task's validation metrics after every evaluation with the best model kept (`FinetuneHooks`), and at
the end the best model on the other evaluation splits, results.json and the report (`finish`). `--learning_rate auto`
runs the range test first (`find_learning_rate`, which recipes/training/finetuning_with_trainer.py calls too).
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate.utils import set_seed
from datasets import DatasetDict
from torch.utils.data import DataLoader
from transformers import AutoTokenizer

from modeling_gpt1 import GPT1TaskCollator

from ..core.accelerators import build_accelerator
from ..core.engine import (
    Hooks,
    RecipeRun,
    Schedule,
    TrainingLoop,
    bare_model,
    push_saved_model,
    restore_progress,
    run_recipe,
    save_model,
    steps_per_epoch,
)
from ..core.errors import RecipeError
from ..core.optim import build_optimizer, build_scheduler
from ..core.run_folder import (
    check_resume,
    checkpoints_root,
    fingerprint_rows,
    fingerprint_tokenizer,
    hub_repo_id,
    open_run_folder,
    read_marker,
)
from ..data.tasks import TaskData
from .finetune_options import FinetuneArguments, default_learning_rate
from .lr_range_test import AUTO, range_test
from .task_setup import (
    PositiveLabel,
    check_metric,
    encode_task,
    freeze_body,
    get_model,
    get_task_data,
    get_tokenizer,
    greater_is_better,
    load_saved_weights,
    majority_metrics,
    positive_label,
    predictions_from_logits,
    task_metrics,
    task_summary,
    trained_parameters,
)

RESULTS = "results.json"


def get_dataloaders(args, encoded: DatasetDict, collator) -> tuple[DataLoader, dict[str, DataLoader]]:
    train_dataloader = DataLoader(
        encoded["train"],
        shuffle=True,
        batch_size=args.per_device_train_batch_size,
        collate_fn=collator,
        # Its own generator: the loader must not draw from the global RNG, which a resumed run restores exactly.
        generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloaders = {
        split: DataLoader(rows, batch_size=args.per_device_eval_batch_size, collate_fn=collator)
        for split, rows in encoded.items()
        if split != "train"
    }
    return train_dataloader, eval_dataloaders


def evaluate(model, dataloader, accelerator, task: TaskData, positive: PositiveLabel | None) -> dict:
    """Mean losses (combined, task, LM) and the task's metrics over one evaluation split."""
    model.eval()
    logits, references, losses = [], [], {"loss": [], "task_loss": [], "lm_loss": []}
    for batch in dataloader:
        with torch.no_grad():
            outputs = model(**batch)
        batch_size = len(batch["labels"])
        for name in losses:
            value = outputs[name].detach().float().repeat(batch_size)
            losses[name].append(accelerator.gather_for_metrics(value).cpu())
        gathered_logits, gathered_labels = accelerator.gather_for_metrics((outputs.logits.float(), batch["labels"]))
        logits.append(gathered_logits.cpu())
        references.append(gathered_labels.cpu())
    model.train()
    references = torch.cat(references).tolist()
    predictions = predictions_from_logits(task, torch.cat(logits).numpy())
    metrics = {name: torch.cat(values).mean().item() for name, values in losses.items()}
    metrics.update(task_metrics(task, predictions.tolist(), references, positive))
    return metrics


def report(accelerator, results: dict, output_dir: Path, metric: str):
    best = results["best"]
    lines = [f"\nBest validation {metric}: {best['value']:.4f} (epoch {best['epoch']:g}, step {best['step']})"]
    evaluated = [split for split in results["task"]["rows"] if split not in ("train", "validation")]
    for split in evaluated:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in results[split].items())
        lines.append(f"{split} (best model): {shown}")
    if results["majority_baseline"]:
        baseline = results["majority_baseline"]
        for split in ("validation", *evaluated):
            value = baseline[split].get(metric, float("nan"))
            lines.append(f"Majority class ({baseline['prediction']}) on {split}: {metric} {value:.4f}")
    positive = results["task"]["positive_label"]
    if positive:
        lines.append(f"f1 is the F1 of the positive class {positive['name']!r} ({positive['chosen_by']}).")
    auto = "MultipleChoice" if results["task"]["family"] == "multiple_choice" else "SequenceClassification"
    lines.append(f"Model and tokenizer: {output_dir}/ (AutoModelFor{auto}.from_pretrained({str(output_dir)!r}))")
    lines.append(f"Results: {output_dir / RESULTS}")
    accelerator.print("\n".join(lines))


class FinetuneHooks(Hooks):
    """Fine-tuning's part of the loop: the task's validation metrics at every evaluation, the best model kept."""

    def checkpoint_info(self, loop: TrainingLoop) -> dict:
        # A run resumed with --learning_rate auto continues at the rate its range test found.
        return {**super().checkpoint_info(loop), "learning_rate_range_test": self.run.range_test}

    def evaluate(self, loop: TrainingLoop) -> dict:
        run, progress = self.run, loop.progress
        metrics = evaluate(loop.model, run.eval_dataloaders["validation"], loop.accelerator, run.task, run.positive)
        record = {"step": progress.step, "epoch": loop.epoch, **metrics}
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        message = f"epoch {loop.epoch:g} (step {progress.step}): validation {shown}"
        best = progress.best.get(run.metric)
        if best is None or (record[run.metric] > best if greater_is_better(run.metric) else record[run.metric] < best):
            progress.best = record
            save_model(loop.accelerator, loop.model, run.tokenizer, run.output_dir)
            message += f" | best {run.metric} so far: saved to {run.output_dir}"
        loop.log_evaluation(record, message)
        return record


@dataclass
class FinetuneRun(RecipeRun):
    """Everything a fine-tuning run is built from, checked before any training time is spent."""

    task: TaskData
    positive: PositiveLabel | None  # the class whose F1 is `f1`, for a 2-class task
    metric: str
    added_tokens: list
    model: torch.nn.Module
    max_length: int
    eval_dataloaders: dict = field(default_factory=dict)  # split -> prepared loader, set by build_loop
    learning_rate: float | None = None  # the peak rate: --learning_rate, or found by the range test (build_loop)
    range_test: dict | None = None  # `RangeTest.as_dict()` of --learning_rate auto (a resumed run: its checkpoint's)


def prepare_run(args: FinetuneArguments) -> FinetuneRun:
    """1. Everything that can be wrong is checked before any training time is spent: the output folder (locked for
    this run), the checkpoints, the task data, the tokenizer, the model, the schedule and, for a resumed run, that it
    is the same run, in its own folder. Only then are earlier checkpoints set aside."""
    accelerator = build_accelerator(args, Path(args.output_dir), steps_cross_epochs=False)
    set_seed(args.seed)
    with open_run_folder(accelerator, args) as folder:
        task = get_task_data(args)
        positive = positive_label(task, args.positive_label)
        metric = args.metric_for_best_model or task.main_metric
        check_metric(task, metric, positive)
        if folder.resume_dir is not None:
            tokenizer, added_tokens = AutoTokenizer.from_pretrained(folder.resume_dir), []
        else:
            tokenizer, added_tokens = get_tokenizer(args, task)
        model, max_length = get_model(args, task, tokenizer, added_tokens)
        if args.learning_rate is None:
            args.learning_rate = default_learning_rate(model.config)
        # Dropout draws the same numbers whatever the initialisation drew (Trainer seeds again after the model is
        # built).
        set_seed(args.seed)
        layout = {
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "num_processes": accelerator.num_processes,
            "seed": args.seed,
            "train_rows": task.dataset["train"].num_rows,
            "max_length": max_length,
            "tokenizer": fingerprint_tokenizer(tokenizer),
            "data": fingerprint_rows(*task.dataset.values(), extra=task.summary()),
        }
        changes = check_resume(
            folder, model.config, layout, args.hyperparameters(), args.allow_resume_changes, own_folder=True
        )
        run = FinetuneRun(
            args, accelerator, folder.resume_dir, tokenizer, layout, task, positive, metric, added_tokens, model,
            max_length, folder=folder, resume_changes=changes,
        )  # fmt: skip
        if args.learning_rate == AUTO and folder.resume_dir is not None:
            run.range_test = read_marker(folder.resume_dir).get("learning_rate_range_test")
            if run.range_test is None:
                raise RecipeError(
                    f"--learning_rate auto: checkpoint {str(folder.resume_dir)!r} records no range test to resume "
                    f"with (it was trained at a given rate): resume with that --learning_rate."
                )
        args.warmup_steps(max_training_steps(run)[0])  # a warm-up longer than the run is refused here
        folder.replace_earlier_checkpoints(accelerator, args.overwrite_output_dir)
        return run


def max_training_steps(run: FinetuneRun) -> tuple[int, int]:
    """(--max_steps, else --num_train_epochs epochs; the optimizer steps per epoch), from the training rows: every
    process gets ceil(batches / processes) batches, and an epoch ends on a step."""
    args = run.args
    batches = math.ceil(run.task.dataset["train"].num_rows / args.per_device_train_batch_size)
    batches_per_process = math.ceil(batches / run.accelerator.num_processes)
    per_epoch = steps_per_epoch(batches_per_process, args.gradient_accumulation_steps, steps_cross_epochs=False)
    return args.max_steps or per_epoch * args.num_train_epochs, per_epoch


def find_learning_rate(args, model, train_rows, collator, make_optimizer, device, print=print) -> dict:
    """--learning_rate auto: the range test on the run's model, optimizer and training rows (batches of its own
    order, so that the run's data order, weights and random state stay as they would be without it). Both fine-tuning
    recipes call it."""
    loader = DataLoader(
        train_rows,
        shuffle=True,
        batch_size=args.per_device_train_batch_size,
        collate_fn=collator,
        generator=torch.Generator().manual_seed(args.seed + 1),
    )
    found = range_test(model.to(device), loader, make_optimizer, device, args.max_grad_norm).as_dict()
    how = {
        "valley": f"the smoothed training loss was lowest at {found['lowest_loss_at']:.3g}: that / "
        f"{found['safety']:g}",
        "flat": f"the training loss did not fall; it rose past {found['learning_rate'] * found['safety']:.3g}: that / "
        f"{found['safety']:g}",
        "undecided": "the training loss neither fell nor rose at any rate: the test cannot tell, so the fallback "
        "(give --learning_rate to choose)",
    }[found["rule"]]
    print(
        f"--learning_rate auto: over {found['steps']} range-test steps {how}; fine-tuning at "
        f"{found['learning_rate']:.3g}."
    )
    return found


def build_loop(run: FinetuneRun, hyperparameters: dict) -> TrainingLoop:
    """2. Data, optimizer, scheduler and loop, prepared by Accelerate; a resumed run's state loaded."""
    args, accelerator, model = run.args, run.accelerator, run.model
    with accelerator.main_process_first():
        encoded = encode_task(
            run.task, run.tokenizer, run.max_length, args.preprocessing_num_workers, keep=args.truncation_keep
        )
    pad_to = 8 if args.mixed_precision in ("fp16", "bf16", "fp8") else None
    # Every batch as wide as the task's most choices, so that logits concatenate across batches and processes.
    collator = GPT1TaskCollator(run.tokenizer, pad_to_multiple_of=pad_to, pad_choices_to=run.task.num_choices)
    train_dataloader, eval_dataloaders = get_dataloaders(args, encoded, collator)
    no_decay = freeze_body(model, run.tokenizer) if args.freeze_body else []
    betas = (args.adam_beta1, args.adam_beta2)

    def make_optimizer(learning_rate: float):
        scale = args.embedding_lr_scale
        return build_optimizer(model, learning_rate, betas, args.weight_decay, accelerator.device, no_decay, scale)

    if args.learning_rate == AUTO and run.range_test is None:
        device, say = accelerator.device, accelerator.print
        run.range_test = find_learning_rate(args, model, encoded["train"], collator, make_optimizer, device, say)
    run.learning_rate = run.range_test["learning_rate"] if args.learning_rate == AUTO else args.learning_rate
    optimizer = make_optimizer(run.learning_rate)
    max_steps, per_epoch = max_training_steps(run)
    warmup = args.warmup_steps(max_steps)
    lr_scheduler = build_scheduler(args.lr_scheduler_type, optimizer, warmup, max_steps)
    hyperparameters.update(
        learning_rate=args.learning_rate,  # as prepare_run resolved the default: the paper's rate or "auto"
        peak_learning_rate=run.learning_rate,
        learning_rate_range_test=run.range_test,
        metric_for_best_model=run.metric,
        max_length=run.max_length,
        added_tokens=run.added_tokens,
        max_train_steps=max_steps,
        num_warmup_steps=warmup,
        num_parameters=model.num_parameters(),
        trainable_parameters=trained_parameters(model, args.freeze_body),
    )
    splits = list(eval_dataloaders)
    model, optimizer, train_dataloader, lr_scheduler, *loaders = accelerator.prepare(
        model, optimizer, train_dataloader, lr_scheduler, *eval_dataloaders.values()
    )
    run.eval_dataloaders = dict(zip(splits, loaders))
    progress = restore_progress(run, optimizer, lr_scheduler)
    schedule = Schedule.from_options(args, max_steps, per_epoch, steps_cross_epochs=False)
    return TrainingLoop(
        accelerator, model, optimizer, lr_scheduler, train_dataloader, progress, schedule, FinetuneHooks(run),
        checkpoints_root(run.output_dir), args.checkpoints_total_limit, args.with_tracking, "fine-tuning",
    )  # fmt: skip


def describe(run: FinetuneRun, loop: TrainingLoop, hyperparameters: dict) -> str:
    args, accelerator, schedule = run.args, run.accelerator, loop.schedule
    epochs = math.ceil(schedule.max_steps / schedule.steps_per_epoch)
    return (
        f"{run.task.family} on {run.task.source}: {run.task.summary()['rows']} rows | "
        f"{hyperparameters['num_parameters']:,} parameters ({hyperparameters['trainable_parameters']:,} trained) | "
        f"{schedule.max_steps} steps of {args.per_device_train_batch_size} x {accelerator.num_processes} "
        f"process(es) x {args.gradient_accumulation_steps} accumulation, {epochs} epoch(s), on {accelerator.device}"
    )


def finish(run: FinetuneRun, loop: TrainingLoop, hyperparameters: dict) -> dict:
    """4. The best model on the other evaluation splits, results.json, the report, the upload."""
    accelerator, progress, output_dir, metric = run.accelerator, loop.progress, run.output_dir, run.metric
    accelerator.wait_for_everyone()
    if progress.best["step"] != progress.step:
        load_saved_weights(bare_model(accelerator, loop.model), output_dir)
    final = {
        split: evaluate(loop.model, loader, accelerator, run.task, run.positive)
        for split, loader in run.eval_dataloaders.items()
        if split != "validation"
    }
    best = progress.best
    results = {
        "task": task_summary(run.task, run.positive),
        "hyperparameters": hyperparameters,
        "majority_baseline": majority_metrics(run.task, run.positive),
        "validation": progress.eval_history,
        "best": {"metric": metric, "value": best[metric], "step": best["step"], "epoch": best["epoch"]},
        **final,
        "train_history": progress.train_history,
        "resume_changes": progress.resume_changes,
    }
    if accelerator.is_main_process:
        (output_dir / RESULTS).write_text(json.dumps(results, indent=1))
    if run.args.with_tracking:
        accelerator.end_training()
    report(accelerator, results, output_dir, metric)
    if accelerator.is_main_process and run.args.push_to_hub:
        repo_id = hub_repo_id(run.args)
        push_saved_model(bare_model(accelerator, loop.model), output_dir, repo_id, run.tokenizer)
        accelerator.print(f"Pushed to https://huggingface.co/{repo_id}")
    return results


def training_function(args: FinetuneArguments) -> dict:
    """Fine-tuning from parsed options (recipes/core/engine.py `run_recipe`); returns the results."""
    return run_recipe("finetune", args, prepare_run, build_loop, describe, finish)


__all__ = ["RESULTS", "FinetuneRun", "find_learning_rate", "report", "training_function"]
