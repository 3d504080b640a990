"""Pre-training from parsed options (recipes/pretrain.py): the run checked and built, the model, optimizer and loop,
the perplexity every `--eval_steps`, and at the end the saved model, its loss curve, history and samples.

`training_function(args)` runs it through the one engine (recipes/core/engine.py `run_recipe`): `prepare_run` checks
every input before any training time is spent, `build_loop` prepares the model, optimizer, scheduler and loaders with
Accelerate (and loads a resumed run's state), `describe` is the line printed before training, `finish` saves and
reports.
"""

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate.utils import set_seed
from huggingface_hub.errors import StrictDataclassError
from torch.utils.data import DataLoader

from modeling_gpt2.compat import enable_activation_checkpointing

from ..core.accelerators import build_accelerator
from ..core.engine import (
    Hooks,
    RecipeRun,
    Schedule,
    TrainingLoop,
    TrainingProgress,
    bare_model,
    push_saved_model,
    restore_progress,
    run_recipe,
    save_model,
    steps_per_epoch,
)
from ..core.errors import RecipeError
from ..core.optim import build_optimizer, build_scheduler
from ..core.plotting import save_loss_curve
from ..core.run_folder import (
    check_resume,
    check_resume_data,
    checkpoints_root,
    fingerprint_rows,
    fingerprint_tokenizer,
    hub_repo_id,
    open_run_folder,
)
from ..evaluation.metrics import perplexity
from ..models.families import MODEL_FAMILIES
from .pretraining_data import (
    check_shard_tokenizer,
    document_separator,
    get_block_size,
    get_dataloaders,
    get_tokenizer,
    read_corpus,
)
from .pretraining_samples import check_sample_length, draw_prompts, sample_continuations


def demo_config(given) -> str | None:
    """Without a --config and a model option, the run is the CPU demo of --model_type."""
    if given.preset or given.config_name or given.model_name_or_path or given.token_shards:
        return None
    if given.model_type not in MODEL_FAMILIES:
        return None  # an unknown --model_type is refused by the options' own check
    return f"pretrain-demo-{given.model_type}"


def get_model_config(args, tokenizer):
    """The model config from `--model_name_or_path`, `--config_name` or `--preset`, with `--config_overrides`; a
    preset's vocabulary is sized to the tokenizer, a given config's is checked against it."""
    family = MODEL_FAMILIES[args.model_type]
    try:
        if args.model_name_or_path or args.config_name:
            config = family.config_class.from_pretrained(args.model_name_or_path or args.config_name)
        else:
            config = family.config_class.from_preset(args.preset, vocab_size=len(tokenizer))
        if args.config_overrides:
            config.update_from_string(args.config_overrides)
        config.validate()
    except (ValueError, OSError, StrictDataclassError) as error:  # the last: a field of the wrong type
        raise RecipeError(f"Bad model configuration: {error}") from error
    if len(tokenizer) > config.vocab_size:
        raise RecipeError(
            f"The tokenizer has {len(tokenizer):,} tokens but the model's vocab_size is {config.vocab_size:,}: token "
            f"ids up to {len(tokenizer) - 1:,} would fall outside the embedding. Use a tokenizer of at most "
            f"{config.vocab_size:,} tokens or a larger vocab_size."
        )
    separator = document_separator(tokenizer)
    # The ids `generate` and the fine-tuning recipes read from the config.
    config.bos_token_id = separator
    config.eos_token_id = tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    for name, token in (("start", "bos"), ("delimiter", "sep"), ("extract", "cls")):
        if hasattr(config, f"{name}_token_id") and getattr(tokenizer, f"{token}_token_id", None) is not None:
            setattr(config, f"{name}_token_id", getattr(tokenizer, f"{token}_token_id"))
    return config


def evaluate(model, eval_dataloader, accelerator) -> tuple[float, float]:
    """Mean next-token loss over the validation blocks (every block has the same number of targets) and its exp."""
    model.eval()
    losses = []
    for batch in eval_dataloader:
        with torch.no_grad():
            outputs = model(input_ids=batch["input_ids"], labels=batch["input_ids"], use_cache=False)
        losses.append(accelerator.gather_for_metrics(outputs.loss.detach().float().repeat(len(batch["input_ids"]))))
    model.train()
    loss = torch.cat(losses).mean().item()
    return loss, perplexity(loss)


class PretrainHooks(Hooks):
    """Pre-training's part of the loop: next-token loss on the blocks, perplexity every --eval_steps."""

    def forward(self, model, batch):
        return model(input_ids=batch["input_ids"], labels=batch["input_ids"], use_cache=False)

    def evaluate(self, loop: TrainingLoop) -> dict:
        loss, ppl = evaluate(loop.model, self.run.eval_dataloader, loop.accelerator)
        record = {"step": loop.progress.step, "loss": loss, "perplexity": ppl}
        loop.log_evaluation(record, f"step {loop.progress.step:>6}: validation loss {loss:.4f}, perplexity {ppl:.2f}")
        return record

    def checkpoint_info(self, loop: TrainingLoop) -> dict:
        info = {**super().checkpoint_info(loop), "tokens_seen": loop.progress.tokens_seen}
        if loop.progress.eval_history:
            info["validation_loss"] = loop.progress.eval_history[-1]["loss"]
        return info


@dataclass
class PretrainRun(RecipeRun):
    """Everything a pre-training run is built from, checked before any training time is spent."""

    model_config: object
    block_size: int
    train_dataloader: DataLoader
    eval_dataloader: DataLoader
    sample_prompts: list[str]  # --sample_prompts, else drawn from the validation blocks


def prepare_run(args) -> PretrainRun:
    """1. Everything that can be wrong is checked before any training time is spent: the output folder (locked for
    this run), the checkpoints, the corpus, the tokenizer, the model config, the block size, the samples' length,
    the schedule and, for a resumed run, that it is the same run. Only then are earlier checkpoints set aside. The
    samples' prompts are --sample_prompts, else drawn from the validation blocks once they are packed."""
    output_dir = Path(args.output_dir)
    accelerator = build_accelerator(args, output_dir, steps_cross_epochs=True, torch_compile=args.torch_compile)
    set_seed(args.seed)
    with open_run_folder(accelerator, args) as folder:
        documents = read_corpus(args)
        tokenizer = get_tokenizer(accelerator, args, documents, folder.resume_dir)
        if args.token_shards:
            check_shard_tokenizer(documents, tokenizer, args.tokenizer)
        model_config = get_model_config(args, tokenizer)
        block_size = get_block_size(args, model_config)
        check_sample_length(args, tokenizer, model_config)
        layout = {
            "block_size": block_size,
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "num_processes": accelerator.num_processes,
            "seed": args.seed,
            "tokenizer": fingerprint_tokenizer(tokenizer),
        }
        changes = check_resume(folder, model_config, layout, args.hyperparameters(), args.allow_resume_changes)
        train_dataloader, eval_dataloader = get_dataloaders(accelerator, args, tokenizer, documents, block_size)
        # The blocks' fingerprint, once they are packed: a resume over an edited corpus is refused here.
        if args.token_shards:
            layout["data"] = documents.fingerprint()
        else:
            layout["data"] = fingerprint_rows(train_dataloader.dataset, eval_dataloader.dataset)
        check_resume_data(folder, layout["data"])
        validation_blocks = eval_dataloader.dataset
        if not args.token_shards:
            validation_blocks = validation_blocks.with_format(None)  # lists: faster to read one by one
        prompts = args.sample_prompts or draw_prompts(
            validation_blocks, tokenizer, document_separator(tokenizer), args.num_samples, args.seed
        )
        run = PretrainRun(
            args, accelerator, folder.resume_dir, tokenizer, layout, model_config, block_size, train_dataloader,
            eval_dataloader, prompts[: args.num_samples], folder=folder, resume_changes=changes,
        )  # fmt: skip
        args.warmup_steps(max_training_steps(run)[0])  # a warm-up longer than the run is refused here
        folder.replace_earlier_checkpoints(accelerator, args.overwrite_output_dir)
        return run


def max_training_steps(run: PretrainRun) -> tuple[int, int]:
    """(--max_steps, else --num_train_epochs passes over the training blocks; the optimizer steps per epoch): whole
    steps, since they cross epoch ends."""
    args = run.args
    per_epoch = steps_per_epoch(
        len(run.train_dataloader) // run.accelerator.num_processes, args.gradient_accumulation_steps, True
    )
    return args.max_steps or per_epoch * args.num_train_epochs, per_epoch


def build_model(run: PretrainRun):
    """The model of `run.model_config`: `--model_name_or_path`'s weights, else new ones; with
    `--gradient_checkpointing`, its activations recomputed in backward."""
    args, family = run.args, MODEL_FAMILIES[run.args.model_type]
    if args.model_name_or_path:
        model = family.lm_class.from_pretrained(
            args.model_name_or_path, config=run.model_config, attn_implementation=args.attn_implementation
        )
    else:
        model = family.lm_class._from_config(run.model_config, attn_implementation=args.attn_implementation)
    if args.gradient_checkpointing:
        enable_activation_checkpointing(model)
    return model


def build_loop(run: PretrainRun, hyperparameters: dict) -> TrainingLoop:
    """2. The model, optimizer, scheduler and loop, prepared by Accelerate; a resumed run's state loaded."""
    args, accelerator = run.args, run.accelerator
    model = build_model(run)
    betas = (args.adam_beta1, args.adam_beta2)
    optimizer = build_optimizer(
        model, args.learning_rate, betas, args.weight_decay, accelerator.device, (), args.embedding_lr_scale
    )
    max_steps, per_epoch = max_training_steps(run)
    warmup = args.warmup_steps(max_steps)
    lr_scheduler = build_scheduler(args.lr_scheduler_type, optimizer, warmup, max_steps)
    hyperparameters.update(
        block_size=run.block_size, max_steps=max_steps, num_warmup_steps=warmup, num_parameters=model.num_parameters(),
        sample_prompts=run.sample_prompts,
    )  # fmt: skip
    model, optimizer, run.train_dataloader, run.eval_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, run.train_dataloader, run.eval_dataloader, lr_scheduler
    )
    if accelerator.gradient_accumulation_steps != args.gradient_accumulation_steps:
        raise RecipeError(
            f"The DeepSpeed config accumulates {accelerator.gradient_accumulation_steps} micro-batches per step but "
            f"--gradient_accumulation_steps is {args.gradient_accumulation_steps}: leave it out of the DeepSpeed "
            f"config."
        )
    progress = restore_progress(run, optimizer, lr_scheduler)
    tokens_per_step = run.block_size * args.per_device_train_batch_size * accelerator.num_processes
    schedule = Schedule.from_options(
        args,
        max_steps,
        per_epoch,
        steps_cross_epochs=True,
        evaluate_at_start=not args.skip_initial_evaluation,
        tokens_per_step=tokens_per_step * args.gradient_accumulation_steps,
    )
    return TrainingLoop(
        accelerator, model, optimizer, lr_scheduler, run.train_dataloader, progress, schedule, PretrainHooks(run),
        checkpoints_root(run.output_dir), args.checkpoints_total_limit, args.with_tracking, "pre-training",
    )  # fmt: skip


def describe(run: PretrainRun, loop: TrainingLoop, hyperparameters: dict) -> str:
    """The line printed before training: the model, the blocks, the steps and where they run."""
    args, config = run.args, run.model_config
    schedule = loop.schedule
    return (
        f"{args.model_type}: {config.n_layer} layers x {config.n_embd}, {hyperparameters['num_parameters']:,} "
        f"parameters, vocabulary {len(run.tokenizer):,} | {len(run.train_dataloader.dataset):,} training blocks of "
        f"{run.block_size} tokens, {len(run.eval_dataloader.dataset):,} validation blocks | {schedule.max_steps:,} "
        f"steps of {schedule.tokens_per_step:,} tokens ({run.accelerator.num_processes} process(es) x "
        f"{args.per_device_train_batch_size} x {args.gradient_accumulation_steps} accumulation) on "
        f"{run.accelerator.device}"
    )


def finish(run: PretrainRun, loop: TrainingLoop, hyperparameters: dict) -> TrainingProgress:
    """4. The model, the figure, the history, samples, and the paths of all of them."""
    args, accelerator, output_dir, progress = run.args, run.accelerator, run.output_dir, loop.progress
    save_model(accelerator, loop.model, run.tokenizer, output_dir)
    plot = output_dir / "loss_curve.png"
    if accelerator.is_main_process:
        title = f"{args.model_type} pre-training, {hyperparameters['num_parameters']:,} parameters"
        save_loss_curve(progress.train_history, progress.eval_history, plot, title=title)
        with open(output_dir / "history.json", "w") as file:
            json.dump({"hyperparameters": hyperparameters, **progress.state_dict()}, file, indent=1)
    accelerator.wait_for_everyone()
    if args.with_tracking:
        accelerator.end_training()
    first, last = progress.eval_history[0], progress.eval_history[-1]
    accelerator.print(
        f"\nValidation perplexity {first['perplexity']:.2f} (step {first['step']}) -> {last['perplexity']:.2f} "
        f"(step {last['step']}); {progress.tokens_seen:,} tokens seen."
    )
    if not accelerator.is_main_process:
        return progress
    if run.sample_prompts:
        samples = sample_continuations(
            output_dir, run.sample_prompts, accelerator.device, args.sample_length, args.seed
        )
        (output_dir / "samples.txt").write_text("\n\n".join(samples) + "\n")
        for text in samples:
            accelerator.print(f"\n--- sample ---\n{text}")
    tensorboard = f", TensorBoard: tensorboard --logdir {output_dir / 'logs'}" if args.with_tracking else ""
    prompt = f" --prompt {shlex.quote(run.sample_prompts[0])}" if run.sample_prompts else ""
    accelerator.print(
        f"\nModel and tokenizer: {output_dir}/ (AutoModelForCausalLM.from_pretrained({str(output_dir)!r}))\n"
        f"Loss curve:          {plot}\n"
        f"Logs:                {output_dir / 'history.json'}{tensorboard}\n"
        f"Checkpoints:         {checkpoints_root(output_dir)}/ (resume with --resume_from_checkpoint latest)\n"
        f"Generate:            python -m recipes.generate --model {output_dir} --do_sample{prompt}"
    )
    if args.push_to_hub:
        repo_id = hub_repo_id(args)
        push_saved_model(bare_model(accelerator, loop.model), output_dir, repo_id, run.tokenizer)
        accelerator.print(f"Pushed to https://huggingface.co/{repo_id}")
    return progress


def training_function(args) -> TrainingProgress:
    """Pre-training from parsed options (recipes/core/engine.py `run_recipe`); returns the loop's progress."""
    return run_recipe("pretrain", args, prepare_run, build_loop, describe, finish)


__all__ = [
    "PretrainHooks",
    "PretrainRun",
    "build_loop",
    "demo_config",
    "describe",
    "finish",
    "prepare_run",
    "training_function",
]
