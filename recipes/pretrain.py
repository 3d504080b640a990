"""Pre-train a GPT-2 or GPT-1 from scratch on a text corpus: one CPU, one GPU or many devices, with Accelerate.

Without a model option it is the README's main job, the CPU demo (run config
`recipes/configs/pretrain/pretrain-demo-gpt2.yaml`, or `-gpt1` with `--model_type gpt1`): a small GPT-2 (4 blocks of
width 256, a 8,192-token BPE learned first) trained for 800 steps on the complete works of Shakespeare and the US State
of the Union addresses, which ship with gpt-origins; on 2 CPU cores it takes about 9 minutes, prints the validation
perplexity as it falls, then samples, and says where the model, the loss curve and the logs are.

    python -m recipes.pretrain                                      # the demo, into runs/pretrain-gpt2
    python -m recipes.pretrain --model_type gpt1                    # the same for GPT-1
    python -m recipes.pretrain --resume_from_checkpoint latest      # after a crash: continues exactly
    python -m recipes.prepare_data --config prepare-fineweb-edu-10B  # the token shards pretrain-gpt2-124M reads
    python -m recipes.pretrain --config pretrain-gpt2-124M          # a named run config (recipes/configs/pretrain/)
    accelerate launch --config_file recipes/configs/launch/multi_gpu.yaml recipes/pretrain.py --config
    pretrain-gpt2-124M

What happens, in order:
1. The options are read (dataclass defaults, then `--config`, then the command line) and checked. The corpus is read
   (local files, a Hub dataset or token shards, see recipes/data/corpus.py), a tokenizer is loaded or trained
   (`--tokenizer`), the model config is built (`--preset`, `--config_name` or `--model_name_or_path`, then
   `--config_overrides`) and every input is checked: a bad one stops the run before any training time is spent.
2. Documents are tokenised with `datasets.map`, separated by the tokenizer's start/end token and packed into blocks
   of `--block_size`; the last `--validation_split_percentage` of the blocks are held out for validation (token
   shards are blocks of their memory-mapped ids, with their own validation shard).
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

from dataclasses import dataclass

from .core.arguments import at_least, parse_arguments
from .core.command import run_cli
from .core.options import TrainingOptions, option
from .data.corpus import DOCUMENT_BOUNDARIES, check_document_boundary
from .models.families import MODEL_FAMILIES
from .training.pretraining import demo_config, training_function
from .training.pretraining_samples import PROMPT_TOKENS

PROG = "python -m recipes.pretrain"
PAPER_WARMUP_STEPS = 2000  # GPT-1, section 4.1


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


def parse_args(argv=None) -> PretrainArguments:
    (args,) = parse_arguments([PretrainArguments], argv, prog=PROG, description=__doc__, default_config=demo_config)
    return args


def main(argv=None):
    return run_cli(
        PretrainArguments, training_function, argv, prog=PROG, description=__doc__, default_config=demo_config
    )


if __name__ == "__main__":
    main()
