"""Pre-train a GPT-2 or GPT-1 from scratch on a text corpus: one CPU, one GPU or many devices, with Accelerate.

Without a model option it is the README's main job, the CPU demo (run config
`recipes/configs/pretrain/pretrain-demo-gpt2.yaml`,
or `-gpt1` with `--model_type gpt1`): a small GPT-2 (4 blocks of width 256, a 8,192-token BPE learned first) trained
for 400 steps on the complete works of Shakespeare, which ship with gpt-origins; on 2 CPU cores it takes under 7
minutes, prints the validation perplexity as it falls, then samples, and says where the model, the loss curve and the
logs are.

    python -m recipes.pretrain                                      # the demo, into runs/pretrain-gpt2
    python -m recipes.pretrain --model_type gpt1                    # the same for GPT-1
    python -m recipes.pretrain --resume_from_checkpoint latest      # after a crash: continues exactly
    python -m recipes.pretrain --config gpt2-124M-fineweb           # a named run config (recipes/configs/)
    accelerate launch --config_file recipes/configs/launch/multi_gpu.yaml recipes/pretrain.py --config
    gpt2-124M-fineweb

What happens, in order:
1. The options are read (dataclass defaults, then `--config`, then the command line) and checked. The corpus is read
   (local files or a Hub dataset, see recipes/data/corpus.py), a tokenizer is loaded or trained (`--tokenizer`), the
   model
   config is built (`--preset`, `--config_name` or `--model_name_or_path`, then `--config_overrides`) and every
   input is checked: a bad one stops the run before any training time is spent.
2. Documents are tokenised with `datasets.map`, separated by the tokenizer's start/end token and packed into blocks
   of `--block_size`; the last `--validation_split_percentage` of the blocks are held out for validation.
3. AdamW (weight decay on matrices only, fused where torch has it) and a transformers scheduler (linear warm-up,
   then cosine by default); gradient accumulation, clipping, mixed precision, optional gradient checkpointing and
   torch.compile, all through Accelerate, so the same loop (recipes/core/engine.py) runs under DDP, FSDP and DeepSpeed.
4. Every `--eval_steps`: validation loss and perplexity. Every `--checkpointing_steps` and at the end: an atomic
   checkpoint (recipes/core/checkpointing.py); `--resume_from_checkpoint` continues bit for bit where it stopped.
5. At the end: the model and tokenizer saved with `save_pretrained` in `--output_dir` (loadable with the Auto
   classes, and as remote code without gpt-origins), `loss_curve.png`, a few sampled continuations, and with
   `--push_to_hub` the model on the Hub.
"""

if __name__ == "__main__" and not __package__:  # a script path: `accelerate launch recipes/pretrain.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)

import json
import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import set_seed
from huggingface_hub.errors import StrictDataclassError
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, AutoTokenizer, default_data_collator

from modeling_gpt2 import load_gpt2_tokenizer
from modeling_gpt2.compat import enable_activation_checkpointing

from .core.accelerators import build_accelerator
from .core.arguments import at_least, parse_arguments
from .core.engine import (
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
from .core.errors import RecipeError, exit_with_error
from .core.optim import build_optimizer, build_scheduler
from .core.options import TrainingOptions, option
from .core.plotting import save_loss_curve
from .core.run_folder import (
    check_resume,
    check_resume_data,
    checkpoints_root,
    fingerprint_rows,
    fingerprint_tokenizer,
    hub_repo_id,
    open_run_folder,
)
from .data.corpus import DOCUMENT_BOUNDARIES, check_document_boundary, load_documents, pack_blocks, split_blocks
from .data.token_shards import ShardIndex, TokenBlocks
from .data.tokenizer import check_vocab_size, load_tokenizer, train_tokenizer
from .models.families import MODEL_FAMILIES

PAPER_WARMUP_STEPS = 2000  # GPT-1, section 4.1
# Without --sample_prompts, each sample's prompt is the first whole words of a line of the validation text, at most
# this many tokens: enough for the model to pick up the corpus, short enough to leave it the rest of its context.
PROMPT_TOKENS = 8


@dataclass
class PretrainArguments(TrainingOptions):
    # The model.
    model_type: str = option("gpt2", f"the model family: {', '.join(MODEL_FAMILIES)}")
    preset: str | None = option(None, "gpt2: tiny, 124M, 355M, 774M, 1.5B; gpt1: tiny, gpt1")
    config_name: str | None = option(None, "a config.json, model folder or Hub name (not --preset)")
    model_name_or_path: str | None = option(None, "continue pre-training these weights")
    config_overrides: str | None = option(None, 'fields over the config, e.g. "n_layer=4,n_embd=256"')
    attn_implementation: str = option("sdpa", "sdpa, eager, flash_attention_2, flex_attention")
    gradient_checkpointing: bool = option(False, "recompute activations in backward (less memory, more time)")
    torch_compile: bool = option(False, "compile the model with torch.compile (inductor)")
    # The data.
    train_file: list[str] | None = option(
        None, ".txt (documents: --document_boundary), .jsonl, .csv, .parquet, or a bundled corpus: shakespeare, sotu"
    )
    validation_file: list[str] | None = option(None, "validation documents (default: the last blocks held out)")
    token_shards: str | None = option(
        None, "a folder of token shards from recipes/prepare_data.py (instead of --train_file / --dataset_name)"
    )
    dataset_name: str | None = option(None, "a Hub dataset (instead of files)")
    dataset_config_name: str | None = option(None, "the Hub dataset's configuration")
    dataset_split: str = option("train", 'the training split, e.g. "train[:10%]"')
    validation_split_name: str | None = option(None, "a validation split of the Hub dataset")
    text_column: str = option("text", "the column of .jsonl/.csv/.parquet files and Hub datasets")
    document_boundary: str = option(
        "file",
        f"one of {', '.join(DOCUMENT_BOUNDARIES)}: a .txt file is one document (file), one per non-blank line (line) "
        "or one per paragraph between blank lines (paragraph, stripped); .jsonl/.csv/.parquet records and Hub rows "
        "are documents already (file only)",
    )
    validation_split_percentage: float = option(5.0, "held out when there is no validation set, in (0, 100)")
    max_eval_samples: int | None = option(None, "evaluate on at most this many blocks")
    block_size: int | None = option(None, "tokens per training sequence (default: n_positions)")
    preprocessing_num_workers: int | None = option(None, "processes that tokenise the corpus")
    tokenizer: str | None = option(
        None,
        '"gpt2" (OpenAI\'s vocabulary, offline), "train" (learn one from the corpus), or a tokenizer folder or Hub '
        "name (default: the --model_name_or_path one, else the family's: gpt2 for GPT-2, train for GPT-1)",
    )
    vocab_size: int | None = option(None, "of a trained tokenizer (default: the family's, 50,257 / 40,483)")
    # Pre-training's own defaults and options.
    learning_rate: float | None = option(None, "peak learning rate (default: the family's, gpt2 6e-4, gpt1 2.5e-4)")
    weight_decay: float | None = option(None, "on matrices only (default: the family's, gpt2 0.1, gpt1 0.01)")
    adam_beta2: float | None = option(None, "AdamW beta2 (default: the family's, gpt2 0.95, gpt1 0.999)")
    num_warmup_steps: int | None = option(None, "linear warm-up steps (default: 2,000 or a tenth of a shorter run)")
    with_tracking: bool = option(True, "log to --report_to (TensorBoard, in <output_dir>/logs)")
    skip_initial_evaluation: bool = option(False, "no evaluation before the first step")
    num_samples: int = option(3, "continuations printed at the end")
    sample_length: int = option(80, "new tokens per sample")
    sample_prompts: list[str] | None = option(
        None,
        f"prompts of the samples (default: the first words, at most {PROMPT_TOKENS} tokens, of a line in each of "
        "--num_samples validation blocks drawn with --seed)",
    )

    def __post_init__(self):
        """Checks every option and fills the model family's defaults: after this nothing changes."""
        super().__post_init__()
        if self.model_type not in MODEL_FAMILIES:
            raise ValueError(f"--model_type must be one of {list(MODEL_FAMILIES)}, got {self.model_type!r}")
        if not (self.preset or self.config_name or self.model_name_or_path):
            raise ValueError("give the model: --preset, --config_name or --model_name_or_path (or a --config)")
        if self.eval_strategy != "steps":
            raise ValueError(f"pre-training evaluates every --eval_steps; --eval_strategy {self.eval_strategy!r}")
        if self.checkpointing_steps == "epoch":
            raise ValueError('pre-training saves every --checkpointing_steps steps; "epoch" is fine-tuning\'s')
        if not 0 < self.validation_split_percentage < 100:
            raise ValueError(
                f"--validation_split_percentage must be in (0, 100), got {self.validation_split_percentage}"
            )
        for name in ("max_eval_samples", "preprocessing_num_workers", "sample_length"):
            at_least(name, getattr(self, name), 1)
        at_least("block_size", self.block_size, 2)  # one input and one target
        at_least("num_samples", self.num_samples, 0)
        check_document_boundary(self.document_boundary, self.train_file, self.validation_file, self.dataset_name)
        if self.token_shards:
            given = [name for name in ("train_file", "validation_file", "dataset_name") if getattr(self, name)]
            if given:
                raise ValueError(f"--token_shards is the corpus already: leave out --{' and --'.join(given)}")
            if self.tokenizer == "train":
                raise ValueError("--tokenizer train learns a vocabulary from text, but --token_shards are ids already")
        family = MODEL_FAMILIES[self.model_type]
        self.output_dir = self.output_dir or f"runs/pretrain-{self.model_type}"
        self.learning_rate = family.learning_rate if self.learning_rate is None else self.learning_rate
        self.adam_beta1 = family.betas[0] if self.adam_beta1 is None else self.adam_beta1
        self.adam_beta2 = family.betas[1] if self.adam_beta2 is None else self.adam_beta2
        self.weight_decay = family.weight_decay if self.weight_decay is None else self.weight_decay
        # Token shards were written with their own tokenizer, saved with them.
        self.tokenizer = self.tokenizer or self.token_shards or self.model_name_or_path or family.tokenizer
        self.vocab_size = self.vocab_size or family.vocab_size

    def warmup_steps(self, max_steps: int) -> int:
        if self.num_warmup_steps is None and self.warmup_ratio is None:
            return min(PAPER_WARMUP_STEPS, max_steps // 10)
        return super().warmup_steps(max_steps)


def demo_config(given) -> str | None:
    """Without a --config and a model option, the run is the CPU demo of --model_type."""
    if given.preset or given.config_name or given.model_name_or_path or given.token_shards:
        return None
    if given.model_type not in MODEL_FAMILIES:
        return None  # an unknown --model_type is refused by the options' own check
    return f"pretrain-demo-{given.model_type}"


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else float("inf")


def get_tokenizer(accelerator, args, documents, resume_dir):
    """`--tokenizer`: "gpt2" (OpenAI's vocabulary, offline), "train" (learned from the training documents), or a
    folder / Hub name. A resumed run takes the tokenizer saved in its checkpoint."""
    choice = args.tokenizer
    if resume_dir is not None and (Path(resume_dir) / "tokenizer_config.json").is_file():
        return load_tokenizer(resume_dir, "The checkpoint")
    if choice == "gpt2":
        return load_gpt2_tokenizer()
    if choice == "train":
        check_vocab_size(args.model_type, args.vocab_size)  # on every process, before the others wait for the main one
        # Learned once, by the main process, and read back by all: GPT-1 style BPE training is not reproducible from
        # run to run, so two processes could learn two different vocabularies.
        folder = Path(args.output_dir) / "tokenizer"
        if accelerator.is_main_process:
            train_tokenizer(args.model_type, documents["train"], args.vocab_size).save_pretrained(folder)
        accelerator.wait_for_everyone()
        return AutoTokenizer.from_pretrained(folder)
    return load_tokenizer(choice)  # a folder or a Hub name


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


def document_separator(tokenizer) -> int:
    """The token before every document: GPT-2's `<|endoftext|>`, GPT-1's `_start_` (the bos token, else eos)."""
    separator = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if separator is None:
        raise RecipeError("The tokenizer has neither a bos nor an eos token to separate documents with.")
    return separator


def get_block_size(args, config) -> int:
    """`--block_size`, default the model's context; never longer than it."""
    if args.block_size is not None and args.block_size > config.n_positions:
        raise RecipeError(
            f"--block_size {args.block_size} is larger than the model's n_positions={config.n_positions}: "
            f"the position table has no row for the tokens past {config.n_positions}."
        )
    return args.block_size or config.n_positions


def get_blocks(accelerator, args, tokenizer, documents, block_size: int):
    """(training, validation) blocks of `block_size` tokens: of the token shards (read by memory map), else of the
    documents, tokenised and packed with `datasets`."""
    if isinstance(documents, ShardIndex):
        return documents.blocks("train", block_size), documents.blocks("validation", block_size)
    separator = document_separator(tokenizer)
    with accelerator.main_process_first():  # the main process tokenises; the others read the datasets cache
        packed = {
            split: pack_blocks(texts, tokenizer, block_size, separator, args.preprocessing_num_workers, split)
            for split, texts in documents.items()
        }
    if "validation" in packed:
        return packed["train"], packed["validation"]
    return split_blocks(packed["train"], args.validation_split_percentage / 100)


def get_dataloaders(accelerator, args, tokenizer, documents, block_size: int):
    """Blocks of `--block_size` tokens (`get_blocks`): a shuffled training loader and an ordered validation loader."""
    train_blocks, validation_blocks = get_blocks(accelerator, args, tokenizer, documents, block_size)
    for name, blocks in (("training", train_blocks), ("validation", validation_blocks)):
        if blocks.num_rows == 0:
            raise RecipeError(
                f"The {name} corpus does not fill one block of --block_size {block_size} tokens: give more "
                f"text or a smaller --block_size."
            )
    if args.max_eval_samples is not None and isinstance(validation_blocks, TokenBlocks):
        validation_blocks = validation_blocks.select_first(args.max_eval_samples)
    elif args.max_eval_samples is not None:
        validation_blocks = validation_blocks.select(range(min(args.max_eval_samples, validation_blocks.num_rows)))
    per_step = args.per_device_train_batch_size * accelerator.num_processes
    if train_blocks.num_rows < per_step:
        raise RecipeError(
            f"The training corpus fills {train_blocks.num_rows} blocks of {block_size} tokens, fewer than one "
            f"batch of {args.per_device_train_batch_size} x {accelerator.num_processes} process(es)."
        )
    if not isinstance(train_blocks, TokenBlocks):  # token shards' blocks are tensors already
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


def block_prompt(tokenizer, ids: list[int], separator: int) -> str:
    """The first whole words of a line of a validation block, at most `PROMPT_TOKENS` tokens: of the first document
    that starts in the block, else of the first line after its first line break, else after its first word (a block
    starts anywhere, even inside a word). "" when the block has no such word or the first one alone is longer."""
    if separator in ids:
        ids = ids[ids.index(separator) + 1 :]
        document_ends = separator in ids
        text = tokenizer.decode(ids[: ids.index(separator)] if document_ends else ids, skip_special_tokens=True)
        text += "\n" if document_ends else ""  # its last word is whole
    else:
        text = tokenizer.decode(ids, skip_special_tokens=True)
        _, newline, rest = text.partition("\n")
        text = rest if newline else text.partition(" ")[2]
    line = re.search(r"\S[^\n]*\n?", text)  # the first line with text, from its first word, with its line break
    if line is None:
        return ""
    line = line.group()
    # A word followed by whitespace is whole (the last one may be cut by the block's end); a word is 1 token or more.
    ends = [word.end() for word in re.finditer(r"\S+(?=\s)", line)][:PROMPT_TOKENS]
    for end in reversed(ends):
        if len(tokenizer(line[:end], add_special_tokens=False)["input_ids"]) <= PROMPT_TOKENS:
            return line[:end]
    return ""


def draw_prompts(blocks, tokenizer, separator: int, count: int, seed: int) -> list[str]:
    """`count` distinct prompts (`block_prompt`) from the validation blocks, fewer if they hold fewer: the blocks are
    read in an order drawn from `seed` with a generator of their own (a resumed run restores the global RNG), and at
    most 100 of them per prompt."""
    prompts = []
    for index in np.random.default_rng(seed).permutation(len(blocks))[: 100 * count]:
        prompt = block_prompt(tokenizer, np.asarray(blocks[int(index)]["input_ids"]).tolist(), separator)
        if prompt and prompt not in prompts:
            prompts.append(prompt)
            if len(prompts) == count:
                break
    return prompts


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


def prepare_run(args: PretrainArguments) -> PretrainRun:
    """1. Everything that can be wrong is checked before any training time is spent: the output folder (locked for
    this run), the checkpoints, the corpus, the tokenizer, the model config, the block size, the samples' length,
    the schedule and, for a resumed run, that it is the same run. Only then are earlier checkpoints set aside. The
    samples' prompts are --sample_prompts, else drawn from the validation blocks once they are packed."""
    output_dir = Path(args.output_dir)
    accelerator = build_accelerator(args, output_dir, steps_cross_epochs=True, torch_compile=args.torch_compile)
    set_seed(args.seed)
    with open_run_folder(accelerator, args) as folder:
        documents = (
            ShardIndex.read(args.token_shards)
            if args.token_shards
            else load_documents(
                train_files=args.train_file,
                validation_files=args.validation_file,
                dataset_name=args.dataset_name,
                dataset_config_name=args.dataset_config_name,
                train_split=args.dataset_split,
                validation_split=args.validation_split_name,
                text_column=args.text_column,
                document_boundary=args.document_boundary,
            )
        )
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


def check_shard_tokenizer(index: ShardIndex, tokenizer, name: str):
    """The tokenizer is the one that wrote the token shards (the same vocabulary, merges and special tokens)."""
    if fingerprint_tokenizer(tokenizer) != index.content["tokenizer_fingerprint"]:
        raise RecipeError(
            f"The tokenizer ({name}) is not the one that wrote the token shards in {index.folder}: their ids would "
            f"mean other tokens. Leave out --tokenizer (the shards' own is used) or prepare the shards again with it."
        )


def check_sample_length(args, tokenizer, config):
    """The samples printed at the end fit the model's context: the longest prompt (a drawn one has at most
    `PROMPT_TOKENS`) plus --sample_length tokens."""
    if not args.num_samples:
        return
    if args.sample_prompts:
        prompts = args.sample_prompts[: args.num_samples]
        longest = max(len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) for prompt in prompts)
        what = f"the longest sample prompt's {longest} tokens"
    else:
        longest = PROMPT_TOKENS
        what = f"the {longest} tokens a prompt drawn from the validation text may have (no --sample_prompts given)"
    if longest + args.sample_length > config.n_positions:
        raise RecipeError(
            f"--sample_length {args.sample_length} plus {what} is more than the model's "
            f"n_positions={config.n_positions}: give --sample_length at most {config.n_positions - longest}."
        )


def max_training_steps(run: PretrainRun) -> tuple[int, int]:
    """(--max_steps, else --num_train_epochs passes over the training blocks; the optimizer steps per epoch): whole
    steps, since they cross epoch ends."""
    args = run.args
    per_epoch = steps_per_epoch(
        len(run.train_dataloader) // run.accelerator.num_processes, args.gradient_accumulation_steps, True
    )
    return args.max_steps or per_epoch * args.num_train_epochs, per_epoch


def build_model(run: PretrainRun):
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


def training_function(args: PretrainArguments) -> TrainingProgress:
    """Pre-training from parsed options (recipes/core/engine.py `run_recipe`); returns the loop's progress."""
    return run_recipe("pretrain", args, prepare_run, build_loop, describe, finish)


def parse_args(argv=None) -> PretrainArguments:
    (args,) = parse_arguments(
        [PretrainArguments], argv, prog="python -m recipes.pretrain", description=__doc__, default_config=demo_config
    )
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        return training_function(args)
    except RecipeError as error:
        exit_with_error("python -m recipes.pretrain", error)


if __name__ == "__main__":
    main()
