"""Pre-train a GPT-2 or GPT-1 from scratch on a text corpus: one CPU, one GPU or many devices, with Accelerate.

Without a model option it is the README's main job, the CPU demo: a small GPT-2 (4 blocks of width 256, a 8,192-token
BPE learned first) trained for 400 steps on the complete works of Shakespeare, which ship with gpt-origins; on 2 CPU
cores it takes under 7 minutes, prints the validation perplexity as it falls, then samples, and says where the
model, the loss curve and the logs are.

    python -m recipes.pretrain                                      # the demo, into runs/pretrain-gpt2
    python -m recipes.pretrain --model_type gpt1                    # the same for GPT-1
    python -m recipes.pretrain --resume_from_checkpoint latest      # after a crash: continues exactly
    python -m recipes.pretrain --preset 124M --block_size 1024 --dataset_name HuggingFaceFW/fineweb-edu \\
        --dataset_config_name sample-10BT --dataset_split "train[:1%]" --max_steps 5000 --mixed_precision bf16
    accelerate launch --config_file recipes/configs/multi_gpu.yaml -m recipes.pretrain --preset 124M ...

What happens, in order:
1. The corpus is read (local files or a Hub dataset, see recipes/corpus.py), a tokenizer is loaded or trained
   (`--tokenizer`), the model config is built (`--preset`, `--config_name` or `--model_name_or_path`, then
   `--config_overrides`) and every input is checked: a bad one stops the run before any training time is spent.
2. Documents are tokenised with `datasets.map`, separated by the tokenizer's start/end token and packed into blocks
   of `--block_size`; the last `--validation_split_percentage` of the blocks are held out for validation.
3. AdamW (weight decay on matrices only, fused where torch has it) and a transformers scheduler (linear warm-up,
   then cosine by default); gradient accumulation, clipping, mixed precision, optional gradient checkpointing and
   torch.compile, all through Accelerate, so the same loop runs under DDP, FSDP and DeepSpeed.
4. Every `--eval_steps`: validation loss and perplexity. Every `--checkpointing_steps` and at the end: an atomic
   checkpoint (recipes/checkpointing.py); `--resume_from_checkpoint` continues bit for bit where it stopped.
5. At the end: the model and tokenizer saved with `save_pretrained` in `--output_dir` (loadable with the Auto
   classes, and as remote code without gpt-origins), `loss_curve.png`, a few sampled continuations, and with
   `--push_to_hub` the model on the Hub.
"""

import argparse
import inspect
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, GradientAccumulationPlugin, is_torch_xla_available, set_seed
from huggingface_hub.errors import StrictDataclassError
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, default_data_collator, get_scheduler

import modeling_gpt1
import modeling_gpt2
from modeling_gpt2 import load_gpt2_tokenizer

from .checkpointing import (
    check_same_model,
    checkpoint_step,
    complete_checkpoints,
    read_marker,
    resolve_checkpoint,
    save_checkpoint,
)
from .corpus import load_documents, pack_blocks, split_blocks
from .errors import RecipeError
from .plotting import save_loss_curve
from .train_tokenizer import check_vocab_size, load_tokenizer, train_tokenizer


@dataclass(frozen=True)
class Family:
    config_class: type
    model_class: type
    learning_rate: float
    betas: tuple
    weight_decay: float
    tokenizer: str
    vocab_size: int  # of a tokenizer trained with `--tokenizer train`


FAMILIES = {
    # GPT-2 gives no optimiser settings; these are GPT-3's for its 125M model (Brown et al. 2020, table 2.1), which
    # nanoGPT and llm.c also use for GPT-2.
    "gpt2": Family(
        modeling_gpt2.GPT2OriginsConfig,
        modeling_gpt2.GPT2OriginsLMHeadModel,
        learning_rate=6e-4,
        betas=(0.9, 0.95),
        weight_decay=0.1,
        tokenizer="gpt2",
        vocab_size=50257,
    ),
    # GPT-1, section 4.1: Adam, max lr 2.5e-4, linear warm-up over 2,000 updates then cosine to 0, L2 w = 0.01 on
    # non-bias, non-gain weights; a BPE vocabulary of 40,000 merges (no released vocabulary ships: train one).
    "gpt1": Family(
        modeling_gpt1.GPT1OriginsConfig,
        modeling_gpt1.GPT1OriginsLMHeadModel,
        learning_rate=2.5e-4,
        betas=(0.9, 0.999),
        weight_decay=0.01,
        tokenizer="train",
        vocab_size=40483,
    ),
}
# Without --preset, --config_name or --model_name_or_path the recipe runs the README's CPU demo (under 10 minutes on
# 2 cores): the tiny preset widened to 4 blocks of 256 with a 256-token context and no dropout (a short run underfits,
# it cannot overfit), and these defaults for options not given. Measured on 2 CPU cores, 3 minutes each: a 4,096-token
# BPE learned from the corpus trains at 3,000 tokens/s to 2.40 bits per byte, OpenAI's 50,257 tokens at 490 tokens/s
# to 2.91 (its embedding and softmax dominate so small a model); hence "train" here, "gpt2" everywhere else.
DEMO_PRESET = "tiny"
DEMO_OVERRIDES = {"n_layer": 4, "n_embd": 256, "n_head": 4, "n_positions": 256}
DEMO_OVERRIDES.update(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
DEMO_DEFAULTS = {"tokenizer": "train", "vocab_size": 8192, "max_steps": 400, "max_eval_samples": 100}
# GPT-2 (pre-LN) takes 1e-3 at this size; post-LN GPT-1 does not (it stalls at the unigram loss, ~6.4 nats, for the
# whole run), so it keeps the paper's 2.5e-4.
DEMO_LEARNING_RATE = {"gpt2": 1e-3, "gpt1": 2.5e-4}
PAPER_WARMUP_STEPS = 2000  # GPT-1, section 4.1
CHECKPOINTS = "checkpoints"


@dataclass
class TrainingProgress:
    """What the loop has done, saved in every checkpoint (`accelerator.register_for_checkpointing`)."""

    step: int = 0
    tokens_seen: int = 0
    train_history: list = field(default_factory=list)  # [{"step", "loss", "lr", "tokens_per_second"}]
    eval_history: list = field(default_factory=list)  # [{"step", "loss", "perplexity"}]
    # The training loss summed since the last log (one sum per process) and the micro-batches it sums: a checkpoint
    # between two logs must carry them, or the next logged loss of a resumed run averages fewer steps.
    running_loss: list = field(default_factory=list)
    running_count: int = 0

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict):
        for key, value in state.items():
            setattr(self, key, value)


def has_accelerator() -> bool:
    if is_torch_xla_available():
        return True
    if hasattr(torch, "accelerator"):  # torch >= 2.6: CUDA, XPU, MPS, ...
        return torch.accelerator.is_available()
    return torch.cuda.is_available()


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else float("inf")


def resolve_hyperparameters(args) -> dict:
    """The run's hyperparameters: the options given, the model family's defaults for the others."""
    family = FAMILIES[args.model_type]
    return {
        "model_type": args.model_type,
        "learning_rate": args.learning_rate if args.learning_rate is not None else family.learning_rate,
        "adam_beta1": args.adam_beta1 if args.adam_beta1 is not None else family.betas[0],
        "adam_beta2": args.adam_beta2 if args.adam_beta2 is not None else family.betas[1],
        "weight_decay": args.weight_decay if args.weight_decay is not None else family.weight_decay,
        "lr_scheduler_type": args.lr_scheduler_type,
        "max_grad_norm": args.max_grad_norm,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "block_size": args.block_size,
        "seed": args.seed,
        "tokenizer": args.tokenizer or args.model_name_or_path or family.tokenizer,
    }


def get_tokenizer(accelerator, args, hyperparameters, documents, resume_dir):
    """`--tokenizer`: "gpt2" (OpenAI's vocabulary, offline), "train" (learned from the training documents), or a
    folder / Hub name. A resumed run takes the tokenizer saved in its checkpoint."""
    choice = hyperparameters["tokenizer"]
    if resume_dir is not None and (Path(resume_dir) / "tokenizer_config.json").is_file():
        return load_tokenizer(resume_dir, "The checkpoint")
    if choice == "gpt2":
        return load_gpt2_tokenizer()
    if choice == "train":
        vocab_size = args.vocab_size or FAMILIES[args.model_type].vocab_size
        check_vocab_size(args.model_type, vocab_size)  # on every process, before the others wait for the main one
        # Learned once, by the main process, and read back by all: GPT-1 style BPE training is not reproducible from
        # run to run, so two processes could learn two different vocabularies.
        folder = Path(args.output_dir) / "tokenizer"
        if accelerator.is_main_process:
            train_tokenizer(args.model_type, documents["train"], vocab_size).save_pretrained(folder)
        accelerator.wait_for_everyone()
        return AutoTokenizer.from_pretrained(folder)
    return load_tokenizer(choice)  # a folder or a Hub name


def get_model_config(args, tokenizer):
    """The model config from `--model_name_or_path`, `--config_name` or `--preset`, with `--config_overrides`; a
    preset's vocabulary is sized to the tokenizer, a given config's is checked against it."""
    family = FAMILIES[args.model_type]
    try:
        if args.model_name_or_path or args.config_name:
            config = family.config_class.from_pretrained(args.model_name_or_path or args.config_name)
        elif args.preset is None:
            config = family.config_class.from_preset(DEMO_PRESET, vocab_size=len(tokenizer), **DEMO_OVERRIDES)
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


def document_separator(tokenizer) -> int:
    """The token before every document: GPT-2's `<|endoftext|>`, GPT-1's `_start_` (the bos token, else eos)."""
    separator = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if separator is None:
        raise RecipeError("The tokenizer has neither a bos nor an eos token to separate documents with.")
    return separator


def check_block_size(args, config):
    if args.block_size is None:
        args.block_size = config.n_positions
    if args.block_size < 2:
        raise RecipeError(f"--block_size must be at least 2 (one input and one target), got {args.block_size}.")
    if args.block_size > config.n_positions:
        raise RecipeError(
            f"--block_size {args.block_size} is larger than the model's n_positions={config.n_positions}: "
            f"the position table has no row for the tokens past {config.n_positions}."
        )


def get_dataloaders(accelerator, args, tokenizer, documents):
    """Packed blocks of `--block_size` tokens: a shuffled training loader and an ordered validation loader."""
    separator = document_separator(tokenizer)
    with accelerator.main_process_first():  # the main process tokenises; the others read the datasets cache
        packed = {
            split: pack_blocks(texts, tokenizer, args.block_size, separator, args.preprocessing_num_workers, split)
            for split, texts in documents.items()
        }
    if "validation" in packed:
        train_blocks, validation_blocks = packed["train"], packed["validation"]
    else:
        train_blocks, validation_blocks = split_blocks(packed["train"], args.validation_split_percentage / 100)
    for name, blocks in (("training", train_blocks), ("validation", validation_blocks)):
        if blocks.num_rows == 0:
            raise RecipeError(
                f"The {name} corpus does not fill one block of --block_size {args.block_size} tokens: give more "
                f"text or a smaller --block_size."
            )
    if args.max_eval_samples is not None:
        validation_blocks = validation_blocks.select(range(min(args.max_eval_samples, validation_blocks.num_rows)))
    per_step = args.per_device_train_batch_size * accelerator.num_processes
    if train_blocks.num_rows < per_step:
        raise RecipeError(
            f"The training corpus fills {train_blocks.num_rows} blocks of {args.block_size} tokens, fewer than one "
            f"batch of {args.per_device_train_batch_size} x {accelerator.num_processes} process(es)."
        )
    train_blocks, validation_blocks = train_blocks.with_format("torch"), validation_blocks.with_format("torch")
    train_dataloader = DataLoader(
        train_blocks,
        shuffle=True,
        batch_size=args.per_device_train_batch_size,
        collate_fn=default_data_collator,
        drop_last=True,  # every micro-batch is full, so accumulation and data parallelism equal one large batch
        # Its own generator: the loader must not draw from the global RNG, which a resumed run restores exactly.
        generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloader = DataLoader(
        validation_blocks, batch_size=args.per_device_eval_batch_size, collate_fn=default_data_collator
    )
    return train_dataloader, eval_dataloader


def get_optimizer(model, hyperparameters, device, no_decay=()):
    """AdamW with weight decay on the matrices only (embeddings and linear weights), none on biases and LayerNorm
    gains (GPT-1, section 4.1); torch's fused kernel where the device has it. `no_decay`: matrices to leave undecayed
    too (fine-tuning's `--freeze_body` keeps the frozen rows of the embedding exactly as they are)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    undecayed = {id(p) for p in no_decay}
    decays = [p.dim() >= 2 and id(p) not in undecayed for p in parameters]
    groups = [
        {
            "params": [p for p, decay in zip(parameters, decays) if decay],
            "weight_decay": hyperparameters["weight_decay"],
        },
        {"params": [p for p, decay in zip(parameters, decays) if not decay], "weight_decay": 0.0},
    ]
    kwargs = {
        "lr": hyperparameters["learning_rate"],
        "betas": (hyperparameters["adam_beta1"], hyperparameters["adam_beta2"]),
    }
    if "fused" in inspect.signature(torch.optim.AdamW).parameters and device.type in ("cuda", "cpu", "xpu"):
        kwargs["fused"] = True
    return torch.optim.AdamW(groups, **kwargs)


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


def check_output_dir(args, accelerator, resume_dir):
    """A fresh run never deletes checkpoints silently; a resumed run never overwrites newer ones."""
    root = Path(args.output_dir) / CHECKPOINTS
    existing = complete_checkpoints(root)
    if resume_dir is None and existing:
        if not args.overwrite_output_dir:
            raise RecipeError(
                f"{os.fspath(root)!r} already holds checkpoints (newest: {existing[-1].name}). Continue that run with "
                f"--resume_from_checkpoint latest, or start over with --overwrite_output_dir."
            )
        if accelerator.is_main_process:
            shutil.rmtree(root)
        accelerator.wait_for_everyone()
    if resume_dir is not None and Path(resume_dir).parent.resolve() == root.resolve():
        newer = [path.name for path in existing if checkpoint_step(path) > checkpoint_step(resume_dir)]
        if newer:
            raise RecipeError(
                f"Resuming from {Path(resume_dir).name} would overwrite the newer checkpoints {', '.join(newer)}: "
                f"resume from the newest (--resume_from_checkpoint latest) or move them away."
            )


def run_layout(args, accelerator) -> dict:
    """What a checkpoint's data position depends on: a resumed run must have the same."""
    return {
        "block_size": args.block_size,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "num_processes": accelerator.num_processes,
        "seed": args.seed,
    }


def check_layout(resume_dir, layout):
    saved = read_marker(resume_dir).get("layout", {})
    differences = [
        f"{key}: checkpoint {saved.get(key)}, this run {value}"
        for key, value in layout.items()
        if saved.get(key) != value
    ]
    if differences:
        raise RecipeError(
            f"Checkpoint {os.fspath(resume_dir)!r} was written by a run laid out differently "
            f"({'; '.join(differences)}); resume with the same options to continue exactly."
        )


def sample_continuations(model_dir, prompts, device, max_new_tokens, seed) -> list[str]:
    """Continuations of `prompts` by the model saved in `model_dir`, loaded back with the Auto classes."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = []
    torch.manual_seed(seed)
    for prompt in prompts:
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
        with torch.no_grad():
            output = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=True,
                top_k=40,
                temperature=0.8,
                pad_token_id=model.config.pad_token_id,
            )
        texts.append(tokenizer.decode(output[0], skip_special_tokens=True))
    return texts


def training_function(config, args):
    """`config`: the resolved hyperparameters (logged to the trackers); `args`: everything else."""
    output_dir = Path(args.output_dir)
    checkpoints = output_dir / CHECKPOINTS
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        # A machine without an accelerator trains on its CPU; under torchrun or `accelerate launch --multi_gpu` its
        # processes then form a gloo group (Accelerate only does that with cpu=True).
        cpu=args.cpu or not has_accelerator(),
        log_with=args.report_to if args.with_tracking else None,
        project_dir=os.fspath(output_dir / "logs"),
        # The optimizer steps only every `gradient_accumulation_steps` micro-batches, also across epoch ends, so a
        # step is always the same amount of data and a checkpoint's position is `step * gradient_accumulation_steps`.
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=args.gradient_accumulation_steps, sync_with_dataloader=False
        ),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        step_scheduler_with_optimizer=False,  # stepped by hand, once per optimizer step whatever the process count
        dynamo_backend="inductor" if args.torch_compile else None,
    )
    set_seed(config["seed"])

    # 1. Everything that can be wrong is checked before any training time is spent.
    resume_dir = None
    if args.resume_from_checkpoint == "latest" and not complete_checkpoints(checkpoints):
        accelerator.print(f"No complete checkpoint in {checkpoints} yet: starting from scratch.")
    elif args.resume_from_checkpoint:
        resume_dir = resolve_checkpoint(args.resume_from_checkpoint, checkpoints)
    check_output_dir(args, accelerator, resume_dir)
    documents = load_documents(
        train_files=args.train_file,
        validation_files=args.validation_file,
        dataset_name=args.dataset_name,
        dataset_config_name=args.dataset_config_name,
        train_split=args.dataset_split,
        validation_split=args.validation_split_name,
        text_column=args.text_column,
    )
    tokenizer = get_tokenizer(accelerator, args, config, documents, resume_dir)
    model_config = get_model_config(args, tokenizer)
    check_block_size(args, model_config)
    config["block_size"] = args.block_size
    layout = run_layout(args, accelerator)
    if resume_dir is not None:
        check_same_model(resume_dir, model_config)
        check_layout(resume_dir, layout)

    # 2. Data, model, optimizer, scheduler.
    train_dataloader, eval_dataloader = get_dataloaders(accelerator, args, tokenizer, documents)
    family = FAMILIES[args.model_type]
    if args.model_name_or_path:
        model = family.model_class.from_pretrained(
            args.model_name_or_path, config=model_config, attn_implementation=args.attn_implementation
        )
    else:
        model = family.model_class._from_config(model_config, attn_implementation=args.attn_implementation)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    optimizer = get_optimizer(model, config, accelerator.device)

    micro_batches_per_epoch = len(train_dataloader)  # all processes together: prepare() shards it
    steps_per_epoch = max(1, micro_batches_per_epoch // accelerator.num_processes // args.gradient_accumulation_steps)
    max_steps = args.max_steps or steps_per_epoch * args.num_train_epochs
    warmup = args.num_warmup_steps if args.num_warmup_steps is not None else min(PAPER_WARMUP_STEPS, max_steps // 10)
    config.update(max_steps=max_steps, num_warmup_steps=warmup, num_parameters=model.num_parameters())
    lr_scheduler = get_scheduler(
        config["lr_scheduler_type"], optimizer=optimizer, num_warmup_steps=warmup, num_training_steps=max_steps
    )
    model, optimizer, train_dataloader, eval_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader, lr_scheduler
    )
    if accelerator.gradient_accumulation_steps != args.gradient_accumulation_steps:
        raise RecipeError(
            f"The DeepSpeed config accumulates {accelerator.gradient_accumulation_steps} micro-batches per step but "
            f"--gradient_accumulation_steps is {args.gradient_accumulation_steps}: leave it out of the DeepSpeed "
            f"config."
        )
    progress = TrainingProgress()
    accelerator.register_for_checkpointing(progress)
    if resume_dir is not None:
        accelerator.load_state(os.fspath(resume_dir))  # weights, optimizer, scheduler, every RNG, the progress
        accelerator.print(f"Resumed from {resume_dir} at step {progress.step}.")
    if args.with_tracking:
        accelerator.init_trackers("pretrain", {k: v for k, v in config.items() if not isinstance(v, (list, dict))})

    tokens_per_step = args.block_size * args.per_device_train_batch_size * accelerator.num_processes
    tokens_per_step *= args.gradient_accumulation_steps
    micro_batches_per_epoch = len(train_dataloader)
    accelerator.print(
        f"{args.model_type}: {model_config.n_layer} layers x {model_config.n_embd}, "
        f"{config['num_parameters']:,} parameters, vocabulary {len(tokenizer):,} | "
        f"{len(train_dataloader.dataset):,} training blocks of {args.block_size} tokens, "
        f"{len(eval_dataloader.dataset):,} validation blocks | {max_steps:,} steps of {tokens_per_step:,} tokens "
        f"({accelerator.num_processes} process(es) x {args.per_device_train_batch_size} x "
        f"{args.gradient_accumulation_steps} accumulation) on {accelerator.device}"
    )

    def write_extra(folder):
        accelerator.unwrap_model(model).config.to_json_file(Path(folder) / "config.json")
        tokenizer.save_pretrained(folder)

    def checkpoint(step):
        info = {"layout": layout, "tokens_seen": progress.tokens_seen}
        if progress.eval_history:
            info["validation_loss"] = progress.eval_history[-1]["loss"]
        return save_checkpoint(accelerator, checkpoints, step, write_extra, args.checkpoints_total_limit, info)

    def run_evaluation():
        loss, ppl = evaluate(model, eval_dataloader, accelerator)
        progress.eval_history.append({"step": progress.step, "loss": loss, "perplexity": ppl})
        if args.with_tracking:
            accelerator.log({"eval/loss": loss, "eval/perplexity": ppl}, step=progress.step)
        message = f"step {progress.step:>6}: validation loss {loss:.4f}, perplexity {ppl:.2f}"
        if accelerator.is_local_main_process:
            tqdm.write(message)
        return loss

    # 3. The loop. Position in the data = optimizer steps done x micro-batches per step.
    model.train()
    consumed = progress.step * args.gradient_accumulation_steps
    epoch = consumed // micro_batches_per_epoch
    bar = tqdm(
        total=max_steps, initial=progress.step, disable=not accelerator.is_local_main_process, desc="pre-training"
    )
    if progress.step == 0 and not args.skip_initial_evaluation:
        run_evaluation()
    # Loss averaged over the micro-batches since the last log; speed over the training time since then (evaluations
    # and checkpoints left out).
    running = progress.running_loss[accelerator.process_index] if progress.running_loss else 0.0
    running_loss, running_count = torch.tensor(running, device=accelerator.device), progress.running_count
    interval_tokens, interval_start = 0, time.perf_counter()
    while progress.step < max_steps:
        train_dataloader.set_epoch(epoch)
        skip = consumed - epoch * micro_batches_per_epoch
        active_dataloader = accelerator.skip_first_batches(train_dataloader, skip) if skip else train_dataloader
        for batch in active_dataloader:
            with accelerator.accumulate(model):
                outputs = model(input_ids=batch["input_ids"], labels=batch["input_ids"], use_cache=False)
                accelerator.backward(outputs.loss)
                if accelerator.sync_gradients and args.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            consumed += 1
            running_loss += outputs.loss.detach().float()
            running_count += 1
            if not accelerator.sync_gradients:
                continue
            lr_scheduler.step()
            progress.step += 1
            progress.tokens_seen += tokens_per_step
            interval_tokens += tokens_per_step
            bar.update(1)
            if progress.step % args.logging_steps == 0 or progress.step == max_steps:
                loss = accelerator.reduce(running_loss / running_count, reduction="mean").item()
                elapsed = time.perf_counter() - interval_start
                record = {
                    "step": progress.step,
                    "loss": loss,
                    "lr": lr_scheduler.get_last_lr()[0],
                    "tokens_per_second": interval_tokens / elapsed,
                }
                progress.train_history.append(record)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{record['tokens_per_second']:,.0f}")
                if args.with_tracking:
                    accelerator.log({f"train/{k}": v for k, v in record.items() if k != "step"}, step=progress.step)
                running_loss, running_count = running_loss * 0, 0
                interval_tokens, interval_start = 0, time.perf_counter()
            paused = time.perf_counter()
            if progress.step % args.eval_steps == 0 or progress.step == max_steps:
                run_evaluation()
            at_interval = args.checkpointing_steps and progress.step % args.checkpointing_steps == 0
            if at_interval or progress.step == max_steps:
                progress.running_loss = accelerator.gather(running_loss.reshape(1)).tolist()
                progress.running_count = running_count
                checkpoint(progress.step)
            interval_start += time.perf_counter() - paused
            if progress.step >= max_steps:
                break
        epoch += 1
    bar.close()

    # 4. The model, the figure, samples.
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.save_pretrained(
        output_dir,
        is_main_process=accelerator.is_main_process,
        save_function=accelerator.save,
        state_dict=accelerator.get_state_dict(model),
    )
    if accelerator.is_main_process:
        tokenizer.save_pretrained(output_dir)
        plot = save_loss_curve(
            progress.train_history,
            progress.eval_history,
            output_dir / "loss_curve.png",
            title=f"{args.model_type} pre-training, {config['num_parameters']:,} parameters",
        )
        with open(output_dir / "history.json", "w") as file:
            json.dump({"hyperparameters": config, **progress.state_dict()}, file, indent=1)
    accelerator.wait_for_everyone()
    if args.with_tracking:
        accelerator.end_training()
    first, last = progress.eval_history[0], progress.eval_history[-1]
    accelerator.print(
        f"\nValidation perplexity {first['perplexity']:.2f} (step {first['step']}) -> {last['perplexity']:.2f} "
        f"(step {last['step']}); {progress.tokens_seen:,} tokens seen."
    )
    if accelerator.is_main_process and args.num_samples:
        samples = sample_continuations(
            output_dir, args.sample_prompts[: args.num_samples], accelerator.device, args.sample_length, args.seed
        )
        (output_dir / "samples.txt").write_text("\n\n".join(samples) + "\n")
        for text in samples:
            accelerator.print(f"\n--- sample ---\n{text}")
    if accelerator.is_main_process:
        accelerator.print(
            f"\nModel and tokenizer: {output_dir}/ (AutoModelForCausalLM.from_pretrained({str(output_dir)!r}))\n"
            f"Loss curve:          {plot}\n"
            f"Logs:                {output_dir / 'history.json'}"
            + (f", TensorBoard: tensorboard --logdir {output_dir / 'logs'}" if args.with_tracking else "")
            + f"\nCheckpoints:         {checkpoints}/ (resume with --resume_from_checkpoint latest)\n"
            f"Generate:            python -m recipes.generate --model {output_dir} --do_sample --prompt 'ROMEO.'"
        )
        if args.push_to_hub:
            repo_id = args.hub_model_id or output_dir.name
            if "tokenizer" in inspect.signature(unwrapped.push_to_hub).parameters:
                unwrapped.push_to_hub(repo_id, tokenizer=tokenizer)
            else:
                unwrapped.push_to_hub(repo_id)
                tokenizer.push_to_hub(repo_id)
            accelerator.print(f"Pushed to https://huggingface.co/{repo_id}")
    return progress


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recipes.pretrain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model_type", choices=list(FAMILIES), default="gpt2")
    model.add_argument(
        "--preset",
        default=None,
        help="gpt2: tiny, 124M, 355M, 774M, 1.5B; gpt1: tiny, gpt1 (default: the CPU demo model, the tiny preset "
        "widened to 4 blocks x 256, context 256, no dropout)",
    )
    model.add_argument("--config_name", default=None, help="a config.json, model folder or Hub name (not --preset)")
    model.add_argument("--model_name_or_path", default=None, help="continue pre-training these weights")
    model.add_argument("--config_overrides", default=None, help='fields over the config, e.g. "n_layer=4,n_embd=256"')
    model.add_argument("--attn_implementation", default="sdpa", help="sdpa, eager, flash_attention_2, flex_attention")
    data = parser.add_argument_group("data")
    data.add_argument("--train_file", nargs="+", default=None, help=".txt (one document each), .jsonl, .csv, .parquet")
    data.add_argument("--validation_file", nargs="+", default=None)
    data.add_argument("--dataset_name", default=None, help="a Hub dataset (instead of files)")
    data.add_argument("--dataset_config_name", default=None)
    data.add_argument("--dataset_split", default="train", help='the training split, e.g. "train[:10%%]"')
    data.add_argument("--validation_split_name", default=None, help="a validation split of the Hub dataset")
    data.add_argument("--text_column", default="text")
    data.add_argument("--validation_split_percentage", type=float, default=5.0, help="held out when no validation set")
    data.add_argument(
        "--max_eval_samples", type=int, default=None, help="evaluate on at most this many blocks (demo: 100)"
    )
    data.add_argument(
        "--block_size", type=int, default=None, help="tokens per training sequence (default n_positions)"
    )
    data.add_argument("--preprocessing_num_workers", type=int, default=None)
    data.add_argument(
        "--tokenizer",
        default=None,
        help='"gpt2" (OpenAI\'s vocabulary, offline), "train" (learn one from the corpus), or a tokenizer folder or '
        "Hub name (default: the --model_name_or_path one, else gpt2 for GPT-2, train for GPT-1 and the demo)",
    )
    data.add_argument(
        "--vocab_size", type=int, default=None, help="of a trained tokenizer (50,257 / 40,483; demo: 8,192)"
    )
    train = parser.add_argument_group("training")
    train.add_argument("--per_device_train_batch_size", type=int, default=8)
    train.add_argument("--per_device_eval_batch_size", type=int, default=16)
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--learning_rate", type=float, default=None, help="gpt2: 6e-4 (demo: 1e-3), gpt1: 2.5e-4")
    train.add_argument("--weight_decay", type=float, default=None, help="on matrices only; gpt2: 0.1, gpt1: 0.01")
    train.add_argument("--adam_beta1", type=float, default=None)
    train.add_argument("--adam_beta2", type=float, default=None, help="gpt2: 0.95, gpt1: 0.999")
    train.add_argument("--lr_scheduler_type", default="cosine", help="any transformers scheduler name")
    train.add_argument("--num_warmup_steps", type=int, default=None, help="default: 2,000 or a tenth of a shorter run")
    train.add_argument("--max_grad_norm", type=float, default=1.0)
    train.add_argument(
        "--max_steps", type=int, default=None, help="optimizer steps (default: --num_train_epochs; demo: 400)"
    )
    train.add_argument("--num_train_epochs", type=int, default=1)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--mixed_precision", choices=["no", "fp16", "bf16", "fp8"], default=None)
    train.add_argument("--gradient_checkpointing", action="store_true")
    train.add_argument("--torch_compile", action="store_true")
    train.add_argument("--cpu", action="store_true", help="train on the CPU even if an accelerator is present")
    out = parser.add_argument_group("evaluation, checkpoints and output")
    out.add_argument("--output_dir", default=None, help="default: runs/pretrain-<model_type>")
    out.add_argument("--overwrite_output_dir", action="store_true", help="delete the checkpoints of an earlier run")
    out.add_argument("--logging_steps", type=int, default=10)
    out.add_argument("--eval_steps", type=int, default=100)
    out.add_argument("--skip_initial_evaluation", action="store_true", help="no evaluation before the first step")
    out.add_argument("--checkpointing_steps", type=int, default=200, help="save every N steps (0: only at the end)")
    out.add_argument("--checkpoints_total_limit", type=int, default=2, help="keep the newest N checkpoints")
    out.add_argument(
        "--resume_from_checkpoint", default=None, help='"latest", a checkpoint folder or a folder of them'
    )
    out.add_argument("--with_tracking", action=argparse.BooleanOptionalAction, default=True, help="trackers on")
    out.add_argument("--report_to", default="tensorboard", help="an Accelerate tracker: tensorboard, wandb, all, ...")
    out.add_argument("--num_samples", type=int, default=3, help="continuations printed at the end")
    out.add_argument("--sample_length", type=int, default=80, help="new tokens per sample")
    out.add_argument("--sample_prompts", nargs="+", default=["ROMEO.\n", "To be, or not to be", "The king"])
    out.add_argument("--push_to_hub", action="store_true")
    out.add_argument("--hub_model_id", default=None, help="repository for --push_to_hub (default: output_dir's name)")
    return parser


def parse_args(parser, argv=None) -> argparse.Namespace:
    """The options, with the demo's defaults filled in when no model option is given, and the plain range checks."""
    args = parser.parse_args(argv)
    args.output_dir = args.output_dir or f"runs/pretrain-{args.model_type}"
    args.demo = not (args.preset or args.config_name or args.model_name_or_path)
    if args.demo:
        for name, value in {**DEMO_DEFAULTS, "learning_rate": DEMO_LEARNING_RATE[args.model_type]}.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    positive = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps")
    for name in (*positive, "logging_steps", "eval_steps", "max_steps", "num_train_epochs"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not 0 < args.validation_split_percentage < 100:
        parser.error(f"--validation_split_percentage must be in (0, 100), got {args.validation_split_percentage}")
    return args


def main(argv=None):
    parser = get_parser()
    args = parse_args(parser, argv)
    try:
        return training_function(resolve_hyperparameters(args), args)
    except RecipeError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")


if __name__ == "__main__":
    main()
