"""The one training loop of the recipes: pre-training and fine-tuning both run through `TrainingLoop.run`.

The loop does what every recipe needs, the same way: gradient accumulation, clipping, the learning-rate schedule,
the running training loss (logged every `logging_steps`, carried by checkpoints so a resumed run logs exactly what an
uninterrupted one does), evaluation every `eval_steps` or after every epoch, atomic checkpoints with the full
training state, and on resume the skip to the exact micro-batch where the checkpoint was written. What differs
between recipes comes in through `Hooks`: the forward pass of a batch, the evaluation (pre-training computes the
perplexity; fine-tuning the task's metrics and keeps the best model), and what a checkpoint carries besides the
training state (config, tokenizer, the run's layout).
"""

import math
import os
import signal
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checkpointing import save_checkpoint
from .optim import apply_resume_changes
from .preemption import RunInterrupted, StopSignals
from .run_folder import RunFolder


@dataclass
class TrainingProgress:
    """What the loop has done, saved in every checkpoint (`accelerator.register_for_checkpointing`)."""

    step: int = 0
    tokens_seen: int = 0
    train_history: list = field(default_factory=list)  # [{"step", "epoch", "loss", "lr", "tokens_per_second"?}]
    eval_history: list = field(default_factory=list)  # [{"step", "epoch", "loss", ...}] on validation
    best: dict = field(default_factory=dict)  # the eval_history record of the kept model (fine-tuning)
    # The training loss summed since the last log (one sum per process) and the micro-batches it sums: a checkpoint
    # between two logs must carry them, or the next logged loss of a resumed run averages fewer steps.
    running_loss: list = field(default_factory=list)
    running_count: int = 0
    # The options a resumed run changed deliberately (--allow_resume_changes): [{"step", "option", "checkpoint",
    # "this_run"}], so the results say which steps ran with which value.
    resume_changes: list = field(default_factory=list)

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict):
        for key, value in state.items():
            setattr(self, key, value)


@dataclass
class RecipeRun:
    """What every recipe's run has once its inputs are checked; a recipe's run adds its own fields."""

    args: object  # the recipe's parsed options (a TrainingOptions)
    accelerator: object
    resume_dir: Path | None  # the checkpoint a resumed run continues, else None
    tokenizer: object
    layout: dict  # what a checkpoint's position in the data depends on: a resumed run must have the same
    folder: RunFolder = field(kw_only=True)  # the locked output folder
    resume_changes: list = field(default_factory=list, kw_only=True)  # options changed from the checkpoint's

    @property
    def output_dir(self) -> Path:
        return Path(self.args.output_dir)


class Hooks:
    """What a recipe adds to the loop. Every method has a default; a recipe overrides what it needs."""

    def __init__(self, run: RecipeRun):
        self.run = run

    def forward(self, model, batch):
        """The model's outputs on one training micro-batch; `.loss` is what is minimised."""
        return model(**batch)

    def evaluate(self, loop: "TrainingLoop") -> dict:
        """Evaluates `loop.model` at `loop.progress.step`; returns the record it appended to the eval history."""
        return {}

    def checkpoint_info(self, loop: "TrainingLoop") -> dict:
        """JSON-able facts for the checkpoint's marker: the run's layout and options, which a resumed run must match
        (recipes/core/run_folder.py `check_resume`)."""
        return {"layout": self.run.layout, "options": self.run.args.hyperparameters()}

    def after_checkpoint(self, loop: "TrainingLoop", folder: Path):
        """Runs once a checkpoint is complete: the earlier run's checkpoints set aside by --overwrite_output_dir are
        no longer needed."""
        if self.run is not None:
            self.run.folder.discard_replaced(loop.accelerator)

    def write_extra(self, loop: "TrainingLoop", folder: Path):
        """Files a checkpoint carries besides the training state: the model's config.json and the tokenizer."""
        bare_model(loop.accelerator, loop.model).config.to_json_file(Path(folder) / "config.json")
        self.run.tokenizer.save_pretrained(folder)


@dataclass
class Schedule:
    """When the loop steps, logs, evaluates and saves, in optimizer steps."""

    max_steps: int
    steps_per_epoch: int  # optimizer steps per pass over the training data (per process)
    gradient_accumulation_steps: int
    logging_steps: int
    eval_every: int | str  # a number of steps, or "epoch"
    checkpoint_every: int | str  # a number of steps (0: only at the end), or "epoch"
    steps_cross_epochs: bool  # pre-training: accumulation runs across epoch ends (see recipes/core/accelerators.py)
    evaluate_at_start: bool = False
    tokens_per_step: int | None = None  # for tokens/s in the log (pre-training)

    @classmethod
    def from_options(cls, options, max_steps: int, steps_per_epoch: int, steps_cross_epochs: bool, **extra):
        """The schedule of a recipe's `TrainingOptions` (--eval_strategy, --eval_steps, --checkpointing_steps)."""
        return cls(
            max_steps=max_steps,
            steps_per_epoch=steps_per_epoch,
            gradient_accumulation_steps=options.gradient_accumulation_steps,
            logging_steps=options.logging_steps,
            eval_every="epoch" if options.eval_strategy == "epoch" else options.eval_steps,
            checkpoint_every=options.checkpoint_every,
            steps_cross_epochs=steps_cross_epochs,
            **extra,
        )

    def is_due(self, every: int | str, step: int) -> bool:
        at_epoch_end = step % self.steps_per_epoch == 0
        if every == "epoch":
            return at_epoch_end or step == self.max_steps
        return bool(every) and step % every == 0


class TrainingLoop:
    """One loop for every recipe. Build it after `accelerator.prepare` and after `accelerator.load_state` (the
    progress registered for checkpointing says where a resumed run is), then call `run()`."""

    def __init__(self, accelerator, model, optimizer, lr_scheduler, train_dataloader, progress, schedule, hooks,
                 checkpoints_root, checkpoints_total_limit, with_tracking=False, description="training"):  # fmt: skip
        self.accelerator, self.model, self.optimizer = accelerator, model, optimizer
        self.lr_scheduler, self.train_dataloader = lr_scheduler, train_dataloader
        self.progress, self.schedule, self.hooks = progress, schedule, hooks
        self.checkpoints_root, self.checkpoints_total_limit = Path(checkpoints_root), checkpoints_total_limit
        self.with_tracking, self.description = with_tracking, description
        self.max_grad_norm = 0.0

    @property
    def epoch(self) -> float:
        """Epochs done, fractional: what the histories record."""
        return self.progress.step / self.schedule.steps_per_epoch

    def start_position(self) -> tuple[int, int]:
        """(epoch, micro-batches of it already consumed) for the progress's step."""
        schedule, micro_batches_per_epoch = self.schedule, len(self.train_dataloader)
        if schedule.steps_cross_epochs:
            consumed = self.progress.step * schedule.gradient_accumulation_steps
            epoch = consumed // micro_batches_per_epoch
            return epoch, consumed - epoch * micro_batches_per_epoch
        epoch = self.progress.step // schedule.steps_per_epoch
        return epoch, (self.progress.step - epoch * schedule.steps_per_epoch) * schedule.gradient_accumulation_steps

    def run(self, max_grad_norm: float) -> TrainingProgress:
        self.max_grad_norm = max_grad_norm
        accelerator, progress = self.accelerator, self.progress
        self.model.train()
        self.bar = tqdm(
            total=self.schedule.max_steps,
            initial=progress.step,
            disable=not accelerator.is_local_main_process,
            desc=self.description,
        )
        if progress.step == 0 and self.schedule.evaluate_at_start:
            self.hooks.evaluate(self)
        running = progress.running_loss[accelerator.process_index] if progress.running_loss else 0.0
        self.running_loss = torch.tensor(running, device=accelerator.device)
        self.running_count = progress.running_count
        self.interval_tokens, self.interval_start = 0, time.perf_counter()
        epoch, skip = self.start_position()
        with StopSignals() as self.stop_signals:
            while progress.step < self.schedule.max_steps:
                self.train_dataloader.set_epoch(epoch)
                loader = accelerator.skip_first_batches(self.train_dataloader, skip) if skip else self.train_dataloader
                for batch in loader:
                    if self.train_micro_batch(batch):
                        self.after_step()
                        if progress.step >= self.schedule.max_steps:
                            break
                epoch, skip = epoch + 1, 0
        self.bar.close()
        return progress

    def train_micro_batch(self, batch) -> bool:
        """Forward and backward of one micro-batch; the optimizer steps on the last of a step. Returns whether it
        stepped."""
        accelerator = self.accelerator
        with accelerator.accumulate(self.model):
            outputs = self.hooks.forward(self.model, batch)
            accelerator.backward(outputs.loss)
            if accelerator.sync_gradients and self.max_grad_norm:
                accelerator.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.running_loss += outputs.loss.detach().float()
        self.running_count += 1
        if not accelerator.sync_gradients:
            return False
        self.lr_scheduler.step()
        self.progress.step += 1
        if self.schedule.tokens_per_step:
            self.progress.tokens_seen += self.schedule.tokens_per_step
            self.interval_tokens += self.schedule.tokens_per_step
        self.bar.update(1)
        return True

    def after_step(self):
        """Logs, evaluates and saves when they are due. The time they take is left out of the logged speed."""
        schedule, step = self.schedule, self.progress.step
        last = step == schedule.max_steps
        evaluate = schedule.is_due(schedule.eval_every, step) or last
        if step % schedule.logging_steps == 0 or evaluate:  # every evaluation has the training loss beside it
            self.log_training_loss()
        paused = time.perf_counter()
        if evaluate:
            self.hooks.evaluate(self)
        stop = self.stop_requested()
        if schedule.is_due(schedule.checkpoint_every, step) or last or stop:
            folder = self.save_checkpoint()
        if stop:
            self.bar.close()
            name = signal.Signals(stop).name
            raise RunInterrupted(
                f"Stopped by {name} after step {step} of {schedule.max_steps}: the checkpoint {os.fspath(folder)!r} "
                f"holds the full training state. Continue with --resume_from_checkpoint latest.",
                stop,
            )
        self.interval_start += time.perf_counter() - paused

    def stop_requested(self) -> int:
        """The signal that asked the run to stop (0: none), agreed by every process: all stop after the same step."""
        received = torch.tensor(self.stop_signals.received or 0, device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            received = self.accelerator.reduce(received, reduction="max")
        return int(received)

    def log_training_loss(self):
        accelerator, progress = self.accelerator, self.progress
        loss = accelerator.reduce(self.running_loss / self.running_count, reduction="mean").item()
        record = {"step": progress.step, "epoch": self.epoch, "loss": loss, "lr": self.lr_scheduler.get_last_lr()[0]}
        postfix = {"loss": f"{loss:.3f}"}
        if self.schedule.tokens_per_step:
            record["tokens_per_second"] = self.interval_tokens / (time.perf_counter() - self.interval_start)
            postfix["tok_s"] = f"{record['tokens_per_second']:,.0f}"
        progress.train_history.append(record)
        self.bar.set_postfix(**postfix)
        if self.with_tracking:
            accelerator.log({f"train/{k}": v for k, v in record.items() if k != "step"}, step=progress.step)
        self.running_loss, self.running_count = self.running_loss * 0, 0
        self.interval_tokens, self.interval_start = 0, time.perf_counter()

    def save_checkpoint(self) -> Path:
        """An atomic checkpoint of the full training state, the running loss included."""
        progress = self.progress
        progress.running_loss = self.accelerator.gather(self.running_loss.reshape(1)).tolist()
        progress.running_count = self.running_count
        folder = save_checkpoint(
            self.accelerator,
            self.checkpoints_root,
            progress.step,
            lambda folder: self.hooks.write_extra(self, folder),
            self.checkpoints_total_limit,
            self.hooks.checkpoint_info(self),
        )
        self.hooks.after_checkpoint(self, folder)
        return folder

    def log_evaluation(self, record: dict, message: str):
        """Appends an evaluation record, sends it to the trackers and prints `message` above the progress bar."""
        self.progress.eval_history.append(record)
        if self.with_tracking:
            self.accelerator.log({f"eval/{k}": v for k, v in record.items() if k != "step"}, step=self.progress.step)
        if self.accelerator.is_local_main_process:
            tqdm.write(message)


def run_recipe(name: str, args, prepare, build, describe, finish):
    """The shape of every training recipe: `prepare(args)` checks every input and returns the run (nothing trains
    before it is done), `build(run, hyperparameters)` the prepared `TrainingLoop`, `describe` the line printed before
    training, then the loop runs and `finish(run, loop, hyperparameters)` saves and reports; returns what it returns.
    `name` names the run for the trackers."""
    hyperparameters = args.hyperparameters()
    run = prepare(args)
    try:
        loop = build(run, hyperparameters)
        if args.with_tracking:
            scalars = {k: v for k, v in hyperparameters.items() if isinstance(v, (int, float, str, bool))}
            run.accelerator.init_trackers(name, scalars)
        run.accelerator.print(describe(run, loop, hyperparameters))
        try:
            loop.run(args.max_grad_norm)
        except RunInterrupted:
            if args.with_tracking:
                run.accelerator.end_training()  # the logs so far are flushed
            raise
        return finish(run, loop, hyperparameters)
    finally:
        run.folder.release()


def restore_progress(run: RecipeRun, optimizer, lr_scheduler) -> TrainingProgress:
    """The loop's progress, registered for checkpointing; for a resumed run, the checkpoint's full state loaded
    (weights, optimizer, scheduler, every RNG and the progress), then the options it changes deliberately
    (`run.resume_changes`) applied to the optimizer and schedule and recorded. Call it after `accelerator.prepare`."""
    accelerator, progress = run.accelerator, TrainingProgress()
    accelerator.register_for_checkpointing(progress)
    if run.resume_dir is not None:
        accelerator.load_state(os.fspath(run.resume_dir))
        accelerator.print(f"Resumed from {run.resume_dir} at step {progress.step}.")
    if run.resume_changes:
        apply_resume_changes(optimizer, lr_scheduler, run.args, getattr(run, "learning_rate", None))
        progress.resume_changes += [{"step": progress.step, **change} for change in run.resume_changes]
        changed = ", ".join(f"--{c['option']} {c['checkpoint']!r} -> {c['this_run']!r}" for c in run.resume_changes)
        accelerator.print(f"Changed from the checkpoint, as --allow_resume_changes allows: {changed}.")
    return progress


@contextmanager
def own_class(model):
    """The model with its own class while the block runs. FSDP2's `fully_shard` gives a sharded model a class made on
    the fly (`FSDPGPT2OriginsLMHeadModel`, a subclass defined in torch's FSDP module): `save_pretrained` would write
    that name into config.json's `auto_map` and copy torch's FSDP files as the model's code."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # a torch built without torch.distributed shards nothing
        FSDPModule = None
    sharded = type(model)
    if FSDPModule is None or not isinstance(model, FSDPModule):
        yield model
        return
    model.__class__ = next(cls for cls in sharded.__mro__ if not issubclass(cls, FSDPModule))
    try:
        yield model
    finally:
        model.__class__ = sharded


COMPILED_PREFIX = "_orig_mod."  # torch.compile's wrapper holds the model as `_orig_mod`


def bare_model(accelerator, model):
    """The model itself: out of DDP / FSDP wrappers and out of torch.compile's (`--torch_compile`)."""
    return accelerator.unwrap_model(model, keep_torch_compile=False)


def push_saved_model(model, folder: Path, repo_id: str, tokenizer):
    """Pushes the model as `save_model` saved it in `folder` (read back with the model's own class), with its
    tokenizer: not the live model, whose parameters are shards under FSDP."""
    with own_class(model):
        model_class = type(model)
    model_class.from_pretrained(folder).push_to_hub(repo_id, tokenizer=tokenizer)


def steps_per_epoch(micro_batches_per_process: int, gradient_accumulation_steps: int, steps_cross_epochs: bool) -> int:
    """Optimizer steps per pass over the data: whole steps when they cross epoch ends, else the last partial one
    counts."""
    if steps_cross_epochs:
        return max(1, micro_batches_per_process // gradient_accumulation_steps)
    return math.ceil(micro_batches_per_process / gradient_accumulation_steps)


def save_model(accelerator, model, tokenizer, folder: Path):
    """The (unwrapped, gathered) model and its tokenizer with `save_pretrained`, on the main process."""
    accelerator.wait_for_everyone()
    # Collective under FSDP: every process takes part. Accelerate's unwrapping keeps a torch.compile wrapper by
    # default, whose state dict names every weight "_orig_mod.<name>": the saved folder would not load.
    state_dict = {
        name.removeprefix(COMPILED_PREFIX): tensor for name, tensor in accelerator.get_state_dict(model).items()
    }
    unwrapped = bare_model(accelerator, model)
    with own_class(unwrapped):
        unwrapped.save_pretrained(
            folder, is_main_process=accelerator.is_main_process, save_function=accelerator.save, state_dict=state_dict
        )
    if accelerator.is_main_process:
        tokenizer.save_pretrained(folder)
    accelerator.wait_for_everyone()
