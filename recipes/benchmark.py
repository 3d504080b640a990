"""Benchmark gpt-origins against transformers' own GPT-2 and GPT-1, side by side in one process.

For each model family, ours and the reference are built from the same config with the same weights (the parameter
names are the same, so it is a key copy, its Conv1D projections transposed into our nn.Linear), then every case runs
on both, alternately, after warm-up, and the report gives the median of each and the ratio ours / reference (> 1 is
faster for speeds, < 1 is leaner for memory):

- `train`: a training step (forward with labels, backward, AdamW step), tokens/s and model FLOPs utilisation;
- `forward`: an inference forward over the whole sequence, tokens/s;
- `generate`: greedy `generate()` at batch 1 and 8 (`--generate_batches`), new tokens/s after the prompt (the time
  of `--new_tokens` tokens less the time of the first, which holds the prompt's forward); at batch 1 also each
  model's share of its own matrix-vector bound: the time its projections and LM head (the modules, as the model calls
  them) take for one token's (1, in) inputs, measured in turn with the decoding runs;
- perplexity (with `--eval_file` and `--model_path`): each model's on that text, in blocks of the context;
- `train_memory`: the peak memory a training step adds to the model, its gradients and optimizer state (CUDA:
  allocator peak; CPU: growth of the peak RSS, reset before the step, in a fresh subprocess holding only that model).

Each runs in fp32 and under bf16 autocast (`--dtypes`). `--variants` adds CPU inference forms of our model to the
generate and perplexity cases: `int8` (torch's dynamic int8 quantisation of every nn.Linear,
`torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)`) and `onednn` (fp32 with the
weights packed for oneDNN, `torch.utils.mkldnn.to_mkldnn(model)`); each is compared with transformers' fp32 model.
`--model_path` measures a trained folder of ours (its config, weights and tokenizer) instead of random weights of
`--preset`. The machine's own limits are measured before and after the cases, and the better of the two counts:
peak matmul FLOP/s (fp32, bf16) and memory read bandwidth. Results: a table on stdout, `benchmark.json` and
`benchmark.png` in `--output_dir`.

    python -m recipes.benchmark                                   # 124M GPT-2 and GPT-1, sequence 128/512/1024
    python -m recipes.benchmark --device cuda --dtypes bf16 --seq_lens 1024 --attn_implementation sdpa
    python -m recipes.benchmark --preset tiny --seq_lens 32 --repeats 2   # a smoke run in seconds
    python -m recipes.benchmark --models gpt1 --cases generate --generate_batches 1 --new_tokens 32   # one case
    python -m recipes.benchmark --model_path runs/pretrain-gpt2 --variants int8 onednn --eval_file held_out.txt

`--cases` picks among train, forward, generate and memory; each row is printed as soon as it is measured. The runs
recorded in docs/BENCHMARKS.md are run configs: `python -m recipes.benchmark --config benchmark-gpt2-fp32` (also
benchmark-gpt1-fp32, benchmark-gpt2-bf16, and benchmark-gpu-bf16 for a CUDA device; recipes/configs/).

transformers' GPT-1 (OpenAIGPTLMHeadModel) has no KV cache: its `generate()` recomputes the whole prefix per token.
"""

if __name__ == "__main__" and not __package__:  # a script path: `python recipes/benchmark.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)

from dataclasses import dataclass
from pathlib import Path

from .benchmarks.comparison import CASES, DTYPES, benchmark
from .benchmarks.model_pairs import VARIANTS
from .core.arguments import at_least
from .core.command import run_cli
from .core.options import option
from .models.families import MODEL_FAMILIES

PROG = "python -m recipes.benchmark"


@dataclass
class BenchmarkArguments:
    models: list[str] = option(list(MODEL_FAMILIES), f"families to measure: {', '.join(MODEL_FAMILIES)}")
    preset: str = option("124M", "124M (GPT-1: its 12 x 768, the same size) or tiny")
    vocab_size: int | None = option(None, "override (default: the family's)")
    seq_lens: list[int] = option([128, 512, 1024], "sequence lengths (train, forward; generate's prompt)")
    batch_size: int = option(1, "of the train and forward cases")
    new_tokens: int = option(128, "tokens each generate case makes")
    dtypes: list[str] = option(DTYPES, f"fp32 and / or bf16 autocast: {', '.join(DTYPES)}")
    device: str = option("cpu", "cpu, cuda, ...")
    attn_implementation: str = option("sdpa", "eager, sdpa, flash_attention_2 (transformers' GPT-1: eager only)")
    torch_compile: bool = option(False, "train and forward cases with both models compiled (torch.compile)")
    warmup: int = option(2, "untimed runs of each case first")
    repeats: int = option(5, "timed runs of each case (generation: half as many); the median counts")
    cases: list[str] = option(CASES, f"what to measure: {', '.join(CASES)}")
    generate_batches: list[int] = option([1, 8], "batch sizes of the generate case")
    skip_memory: bool = option(False, "the same as leaving memory out of --cases")
    variants: list[str] = option(
        [], f"CPU inference forms of ours, also in generate and perplexity: {', '.join(VARIANTS)}"
    )
    model_path: str | None = option(None, "a trained folder of ours to measure instead of --preset's random weights")
    eval_file: str | None = option(None, "a text file: each model's perplexity on it (needs --model_path)")
    eval_tokens: int = option(16384, "of --eval_file's tokens, at most")
    output_dir: str = option("runs/benchmark", "benchmark.json and benchmark.png go here")

    def __post_init__(self):
        for name, known in (
            ("models", list(MODEL_FAMILIES)),
            ("dtypes", DTYPES),
            ("cases", CASES),
            ("variants", VARIANTS),
        ):
            unknown = [value for value in getattr(self, name) if value not in known]
            if unknown:
                raise ValueError(f"--{name} takes {', '.join(known)}, got {', '.join(map(repr, unknown))}")
        for family in self.models:
            presets = (*MODEL_FAMILIES[family].presets, *(("124M",) if family == "gpt1" else ()))
            if self.preset not in presets:
                raise ValueError(f"--preset {self.preset!r} is not a {family} preset; known: {', '.join(presets)}")
        for name in ("seq_lens", "generate_batches"):
            if min(getattr(self, name)) < 1:
                raise ValueError(f"--{name} must be at least 1 each, got {getattr(self, name)}")
        for name in ("batch_size", "repeats", "vocab_size"):
            at_least(name, getattr(self, name), 1)
        at_least("new_tokens", self.new_tokens, 2)  # the first new token holds the prompt's forward: not counted
        at_least("eval_tokens", self.eval_tokens, 2)
        at_least("warmup", self.warmup, 0)
        if self.torch_compile and self.warmup < 1:
            raise ValueError("--torch_compile needs --warmup of at least 1: the first run compiles, it is not timed")
        if self.variants and self.device != "cpu":
            raise ValueError(
                f"--variants {' '.join(self.variants)} are CPU inference forms; --device is {self.device!r}"
            )
        if self.eval_file is not None and self.model_path is None:
            raise ValueError("--eval_file needs --model_path: the perplexity of random weights says nothing")
        if self.eval_file is not None and not Path(self.eval_file).is_file():
            raise ValueError(f"--eval_file {self.eval_file!r} is not a file")

    @property
    def measured_cases(self) -> list[str]:
        """`--cases` less memory under `--skip_memory` or with `--model_path` (memory is measured on `--preset`'s
        random weights, in a subprocess of their own)."""
        skip = self.skip_memory or self.model_path is not None
        return [case for case in self.cases if not (skip and case == "memory")]


def main(argv=None):
    return run_cli(BenchmarkArguments, benchmark, argv, prog=PROG, description=__doc__)


if __name__ == "__main__":
    main()
