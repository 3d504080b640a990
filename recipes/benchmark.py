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

import copy
import dataclasses
import json
import math
import multiprocessing
import platform
import resource
import statistics
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear
from torch.utils import mkldnn as mkldnn_utils
from transformers import GPT2Config, GPT2LMHeadModel, OpenAIGPTConfig, OpenAIGPTLMHeadModel
from transformers.pytorch_utils import Conv1D

from modeling_gpt2.loading import swap_projection_layout  # the same names in both families

from .core.arguments import at_least, parse_arguments
from .core.errors import RecipeError, exit_with_error
from .core.options import option
from .models.families import MODEL_FAMILIES, family_of, load_causal_lm, load_tokenizer_for

PROG = "python -m recipes.benchmark"
# Fields both configs share (same names in transformers' GPT2Config / OpenAIGPTConfig and ours).
SHARED_FIELDS = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "layer_norm_epsilon")
CASES = ["train", "forward", "generate", "memory"]
VARIANTS = ["int8", "onednn"]
DTYPES = ["fp32", "bf16"]
# transformers' own model of each family: config class, LM class, and the config fields that make it ours.
REFERENCES = {
    "gpt2": (GPT2Config, GPT2LMHeadModel, {}),
    "gpt1": (OpenAIGPTConfig, OpenAIGPTLMHeadModel, {"afn": "gelu"}),  # ours is GELU (section 4.1), exact form
}


NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}  # dropout would make the work differ


def reference_config_of(family: str, config):
    """transformers' config of the same architecture as our `config`, dropout off."""
    reference_config_class, _, fields = REFERENCES[family]
    return reference_config_class(**{k: getattr(config, k) for k in SHARED_FIELDS}, **fields, **NO_DROPOUT)


def _configs(family: str, preset: str, vocab_size: int | None):
    """(our config, transformers' config, our class, transformers' class) of one size, dropout off."""
    overrides = {**NO_DROPOUT, **({"vocab_size": vocab_size} if vocab_size else {})}
    if family == "gpt1" and preset == "124M":
        preset = "gpt1"  # GPT-1 is the same 12 x 768 size
    ours = MODEL_FAMILIES[family]
    config = ours.config_class.from_preset(preset, **overrides)
    return config, reference_config_of(family, config), ours.lm_class, REFERENCES[family][1]


def _reference_class_built(reference_class, reference_config, attn_implementation: str):
    try:
        return reference_class._from_config(reference_config, attn_implementation=attn_implementation)
    except ValueError:  # transformers' GPT-1 has eager attention only: the reference runs what it has
        return reference_class._from_config(reference_config, attn_implementation="eager")


def build_one(family: str, preset: str, attn_implementation: str, vocab_size: int | None, which: str):
    """One model, "ours" or "reference", with its own random weights (for measurements where values do not matter)."""
    config, reference_config, ours_class, reference_class = _configs(family, preset, vocab_size)
    if which == "ours":
        return ours_class._from_config(config, attn_implementation=attn_implementation)
    return _reference_class_built(reference_class, reference_config, attn_implementation)


def copy_weights(source, target):
    """`source`'s weights into `target` (the same names), the projections turned between transformers' Conv1D
    (in, out) and our nn.Linear (out, in). The tied LM head is not stored: tied again."""
    missing, unexpected = target.load_state_dict(swap_projection_layout(source.state_dict()), strict=False)
    if unexpected or any(not name.startswith("lm_head") for name in missing):
        raise RecipeError(f"Weights do not map one to one: missing {missing}, unexpected {unexpected}.")
    target.tie_weights()


def build_pair(family: str, preset: str, attn_implementation: str, vocab_size: int | None, model_path=None):
    """(ours, reference) with identical weights, in eval mode: random weights of `preset`, or the trained folder of
    ours at `model_path` (transformers' model gets its weights)."""
    torch.manual_seed(0)
    if model_path is not None:
        ours = load_causal_lm(model_path, attn_implementation=attn_implementation)
        for module in ours.modules():  # dropout off, as in transformers' model built below
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        reference_class = REFERENCES[family][1]
        reference = _reference_class_built(
            reference_class, reference_config_of(family, ours.config), attn_implementation
        )
        copy_weights(ours, reference)
        return ours.eval(), reference.eval()
    reference = build_one(family, preset, attn_implementation, vocab_size, "reference")
    ours = build_one(family, preset, attn_implementation, vocab_size, "ours")
    copy_weights(reference, ours)
    return ours.eval(), reference.eval()


def build_variant(name: str, model):
    """A CPU inference form of our model (a copy; `model` stays as it is): "int8", torch's dynamic int8 quantisation
    of every nn.Linear (weights int8 per tensor, activations quantised per call), or "onednn", fp32 weights packed for
    oneDNN's matrix products. Both are one line of torch, as a user would write it."""
    model = copy.deepcopy(model).eval()
    if name == "int8":
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    with torch.no_grad():
        return mkldnn_utils.to_mkldnn(model)


# The modules that multiply by a weight matrix in a decoding step: ours (nn.Linear, and its int8 and oneDNN forms)
# and transformers' (Conv1D in the blocks, nn.Linear for the LM head).
PROJECTION_TYPES = (torch.nn.Linear, Conv1D, DynamicInt8Linear, mkldnn_utils.MkldnnLinear)


def _in_features(module) -> int:
    if isinstance(module, Conv1D):
        return module.weight.shape[0]  # (in, out)
    if isinstance(module, mkldnn_utils.MkldnnLinear):
        return module.weight.size(1)  # (out, in), an mkldnn tensor
    return module.in_features


def matvec_bound(model, device: torch.device):
    """A function that runs each projection and the LM head of `model` once on a (1, in) input, as a decoding step at
    batch 1 does: its time is the bound that reading the weights sets for this model's own matrix products here."""
    layers = [module for module in model.modules() if isinstance(module, PROJECTION_TYPES)]
    inputs = [torch.randn(1, _in_features(layer), device=device) for layer in layers]

    def products():
        with torch.inference_mode():
            for layer, x in zip(layers, inputs):
                layer(x)

    return products


def synchronize(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_alternately(functions: dict, device, warmup: int, repeats: int, reduce=statistics.median) -> dict[str, float]:
    """Seconds per call of each function, the median of `repeats` (or another `reduce`, e.g. `min` for a machine's
    best case); the functions take turns so that drift hits all of them alike."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    synchronize(device)
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: reduce(values) for name, values in times.items()}


def machine_limits(device: torch.device, repeats: int) -> dict[str, float]:
    """Measured peak matmul FLOP/s (fp32, bf16) and memory read bandwidth (bytes/s) of `device`: the best run of
    `repeats` (at least 3), and for the matmul the best of a few square sizes, so that model FLOPs utilisation is
    measured against what the machine reaches, not against one unlucky shape."""
    limits, repeats = {}, max(repeats, 3)
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        # Large enough to reach the peak, small enough for CPUs without bf16 units (a 1024^3 bf16 matmul: seconds).
        sizes = (4096, 8192) if device.type == "cuda" else ((1024, 2048) if dtype == torch.float32 else (512,))
        best = 0.0
        for size in sizes:
            a = torch.randn(size, size, device=device, dtype=dtype)
            b = torch.randn(size, size, device=device, dtype=dtype)
            seconds = time_alternately({"mm": lambda: a @ b}, device, warmup=2, repeats=repeats, reduce=min)["mm"]
            best = max(best, 2 * size**3 / seconds)
        limits[f"matmul_flops_{name}"] = best
    data = torch.ones(256 * 2**20 // 4, device=device)  # 256 MiB of fp32, far beyond any cache
    seconds = time_alternately({"sum": lambda: data.sum()}, device, warmup=2, repeats=repeats, reduce=min)["sum"]
    limits["read_bandwidth"] = data.numel() * data.element_size() / seconds
    return limits


def training_flops_per_token(config, seq_len: int) -> float:
    """Forward + backward FLOPs per token: 6 per weight of the matrices plus attention's 12 * layers * seq * width
    (Kaplan et al. 2020; the PaLM paper's MFU convention)."""
    non_embedding = 12 * config.n_layer * config.n_embd**2
    matrices = non_embedding + config.vocab_size * config.n_embd  # the LM head is a matmul too
    return 6 * matrices + 12 * config.n_layer * seq_len * config.n_embd


def adamw(model, device) -> torch.optim.AdamW:
    """The optimizer of the training cases, the same for both models: AdamW, fused where torch has it for the
    device (as the recipes and Trainer's default `adamw_torch_fused` use it)."""
    fused = device.type in ("cuda", "cpu", "xpu")
    return torch.optim.AdamW(model.parameters(), lr=1e-5, fused=fused)


def autocast(device, dtype: str):
    return torch.autocast(device.type, dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()


def measure_alternately(functions: dict, warmup: int, repeats: int) -> dict[str, float]:
    """The median of what each function returns (seconds it measured itself); the functions take turns."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    measured = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            measured[name].append(function())
    return {name: statistics.median(values) for name, values in measured.items()}


def speed_cases(models: dict, config, device, dtype, seq_len, args, variants: dict | None = None):
    """Rows of one (family, dtype, seq_len): train and forward tokens/s of `models` (ours, reference), generation new
    tokens/s at each of `args.generate_batches` of them and of `variants` (the cases in `args.measured_cases`)."""
    batch_size, new_tokens, warmup, repeats = args.batch_size, args.new_tokens, args.warmup, args.repeats
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (batch_size, seq_len), generator=generator).to(device)
    rows = []
    cases = args.measured_cases
    optimizers = {name: adamw(model, device) for name, model in models.items()} if "train" in cases else {}
    # --torch_compile: the train and forward cases run each model compiled (inductor), compiled in the warm-up runs.
    runners = {name: torch.compile(model) if args.torch_compile else model for name, model in models.items()}

    def train_step(name):
        model, optimizer = runners[name], optimizers[name]
        model.train()
        with autocast(device, dtype):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def row(case: str, seconds: dict, tokens: int, length: int = seq_len, batch: int = batch_size, **extra) -> dict:
        """One measured case: `tokens` made per call, in tokens/s of each model."""
        speeds = {f"{name}_tokens_per_s": tokens / s for name, s in seconds.items()}
        return {"case": case, "seq_len": length, "batch_size": batch, **extra, **speeds}

    if "train" in cases:
        seconds = time_alternately({n: (lambda n=n: train_step(n)) for n in models}, device, warmup, repeats)
        flops = training_flops_per_token(config, seq_len)  # for the MFU (`add_utilisation`)
        rows.append(row("train", seconds, batch_size * seq_len, flops_per_token=flops))
        optimizers.clear()

    def forward(name):
        runners[name].eval()
        with torch.inference_mode(), autocast(device, dtype):
            runners[name](input_ids=ids)

    if "forward" in cases:
        seconds = time_alternately({n: (lambda n=n: forward(n)) for n in models}, device, warmup, repeats)
        rows.append(row("forward", seconds, batch_size * seq_len))

    decoders = {**models, **(variants or {})}
    prompt_len = max(1, min(seq_len, config.n_positions - new_tokens))
    for generate_batch in args.generate_batches if "generate" in cases else ():
        prompt = ids[:1, :prompt_len].expand(generate_batch, -1).contiguous()

        def generate_seconds(model, count: int, prompt=prompt) -> float:
            start = time.perf_counter()
            with torch.inference_mode(), autocast(device, dtype):
                model.generate(
                    prompt,
                    attention_mask=torch.ones_like(prompt),
                    max_new_tokens=count,
                    min_new_tokens=count,
                    do_sample=False,
                    pad_token_id=0,
                )
            synchronize(device)
            return time.perf_counter() - start

        def decode_seconds(name) -> float:
            """Seconds per new token after the prompt: `new_tokens` tokens less the first (the prompt's forward)."""
            model = decoders[name]
            return (generate_seconds(model, new_tokens) - generate_seconds(model, 1)) / (new_tokens - 1)

        functions = {n: (lambda n=n: decode_seconds(n)) for n in decoders}
        if generate_batch == 1:
            # Each model's own matrix-vector products for one token, the bound of its weights on this machine, taken
            # in turn with the decoding runs (the machine's speed drifts): the median of 5 calls per round.
            for name, model in decoders.items():
                products = matvec_bound(model, device)
                functions[f"{name}_bound"] = lambda products=products: time_alternately(
                    {"products": products}, device, warmup=0, repeats=5
                )["products"]
        measured = measure_alternately(functions, 1, max(1, repeats // 2))
        seconds = {name: measured[name] for name in decoders}
        extra = {
            f"{name}_bound_tokens_per_s": 1 / measured[f"{name}_bound"] for name in decoders if generate_batch == 1
        }
        # One new token per sequence per step.
        rows.append(row(f"generate_b{generate_batch}", seconds, generate_batch, prompt_len, generate_batch, **extra))
        for name in decoders if generate_batch == 1 else ():
            rows[-1][f"{name}_bound_fraction"] = (
                rows[-1][f"{name}_tokens_per_s"] / rows[-1][f"{name}_bound_tokens_per_s"]
            )
    return rows


def perplexity_row(models: dict, config, tokenizer, args, device) -> dict:
    """Each model's perplexity on `args.eval_file`: its first `args.eval_tokens` tokens in blocks of the context,
    every next-token loss counted once."""
    text = Path(args.eval_file).read_text(encoding="utf-8")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][: args.eval_tokens]
    blocks = [ids[i : i + config.n_positions] for i in range(0, len(ids), config.n_positions)]
    blocks = [block for block in blocks if len(block) > 1]
    if not blocks:
        raise RecipeError(f"--eval_file {args.eval_file!r} holds {len(ids)} token(s): perplexity needs at least 2.")
    row = {"case": "perplexity", "seq_len": config.n_positions, "batch_size": 1, "eval_tokens": len(ids)}
    for name, model in models.items():
        total, count = 0.0, 0
        with torch.inference_mode():
            for block in blocks:
                tensor = torch.tensor([block], device=device)
                total += float(model(input_ids=tensor, labels=tensor).loss) * (len(block) - 1)
                count += len(block) - 1
        row[f"{name}_perplexity"] = math.exp(total / count)
    return row


def _rss_bytes(field: str) -> int | None:
    """VmRSS (now) or VmHWM (peak) of this process from /proc (Linux), None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        return None
    return None


def _memory_worker(family, preset, attn_implementation, vocab_size, which, dtype, seq_len, batch_size, queue):
    """In a fresh process: the peak memory one training step adds to a built model with its gradients and optimizer
    state (both exist before the measured step, so the figure is the step's activations, logits and temporaries)."""
    torch.set_num_threads(1)
    model = build_one(family, preset, attn_implementation, vocab_size, which).train()
    device = torch.device("cpu")
    ids = torch.randint(0, model.config.vocab_size, (batch_size, seq_len))
    optimizer = adamw(model, device)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    try:  # Linux: reset the peak to the current RSS, so that the peak below is this step's
        Path("/proc/self/clear_refs").write_text("5")
        before, peak = _rss_bytes("VmRSS"), lambda: _rss_bytes("VmHWM")
    except OSError:  # elsewhere: the lifetime peak, which the build may already have set (then 0 is reported)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # noqa: E731
    with autocast(device, dtype):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    queue.put(max(0, peak() - before))


def train_memory(args, family, dtype, seq_len, device) -> dict:
    """Peak bytes a training step adds, ours and reference."""
    result = {"case": "train_memory", "seq_len": seq_len, "batch_size": args.batch_size}
    for which in ("ours", "reference"):
        if device.type == "cuda":
            pair = build_pair(family, args.preset, args.attn_implementation, args.vocab_size)
            models = dict(zip(("ours", "reference"), pair))
            model = models[which].to(device).train()
            ids = torch.randint(0, model.config.vocab_size, (args.batch_size, seq_len), device=device)
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            with autocast(device, dtype):
                model(input_ids=ids, labels=ids).loss.backward()
            result[f"{which}_bytes"] = torch.cuda.max_memory_allocated(device) - before
            del models, model, pair
            torch.cuda.empty_cache()
            continue
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        process = context.Process(
            target=_memory_worker,
            args=(family, args.preset, args.attn_implementation, args.vocab_size, which, dtype, seq_len),
            kwargs={"batch_size": args.batch_size, "queue": queue},
        )
        process.start()
        result[f"{which}_bytes"] = queue.get(timeout=1800)
        process.join()
    return result


def add_utilisation(rows: list[dict], limits: dict[str, float]):
    """Model FLOPs utilisation of the training rows against the peak matmul rate of their dtype."""
    for row in rows:
        if "flops_per_token" in row:
            peak = limits[f"matmul_flops_{row['dtype']}"]
            for name in ("ours", "reference"):
                row[f"{name}_mfu"] = row[f"{name}_tokens_per_s"] * row["flops_per_token"] / peak
        add_ratios(row)


RATIO_METRICS = ("tokens_per_s", "bytes", "perplexity")


def add_ratios(row: dict):
    """ours / reference for each metric; a variant (ours_int8_...) against transformers' fp32 model (speeds) and
    against our fp32 model (perplexity)."""
    for metric in RATIO_METRICS:
        reference = row.get(f"reference_{metric}")
        if reference and f"ours_{metric}" in row:
            row[f"ratio_{metric}"] = row[f"ours_{metric}"] / reference
        for variant in VARIANTS:
            value = row.get(f"ours_{variant}_{metric}")
            if value is None:
                continue
            base = row[f"ours_{metric}"] if metric == "perplexity" else reference
            if base:
                row[f"ratio_{variant}_{metric}"] = value / base


def print_table(rows: list[dict], header: bool = True):
    title = f"{'model':6} {'dtype':5} {'case':13} {'seq':>5} {'batch':>5} {'ours':>12} {'reference':>12} {'ratio':>7}"
    if header:
        print(title)
        print("-" * len(title))
    for row in rows:
        key = {"train_memory": "bytes", "perplexity": "perplexity"}.get(row["case"], "tokens_per_s")
        unit = (lambda v: f"{v / 2**20:,.0f} MiB") if key == "bytes" else (lambda v: f"{v:,.1f}")
        ratio = row.get(f"ratio_{key}")
        print(
            f"{row['family']:6} {row['dtype']:5} {row['case']:13} {row['seq_len']:>5} {row['batch_size']:>5} "
            f"{unit(row[f'ours_{key}']):>12} {unit(row[f'reference_{key}']):>12} "
            f"{'' if ratio is None else f'{ratio:.2f}x':>7}",
            flush=True,
        )
        share = row.get("ours_bound_fraction")
        if share is not None:
            print(f"{'':38}ours at {share:.0%} of its matrix-vector bound ({row['ours_bound_tokens_per_s']:,.1f}/s)")
        for variant in VARIANTS:
            if f"ours_{variant}_{key}" in row:
                against = "our fp32" if key == "perplexity" else "transformers"
                line = f"{'':38}{variant}: {unit(row[f'ours_{variant}_{key}'])}, "
                line += f"{row[f'ratio_{variant}_{key}']:.2f}x {against}"
                if f"ours_{variant}_bound_fraction" in row:
                    line += f", {row[f'ours_{variant}_bound_fraction']:.0%} of its bound"
                print(line, flush=True)


def save_chart(rows: list[dict], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, ratios = [], []
    for row in rows:
        key = "ratio_bytes" if row["case"] == "train_memory" else "ratio_tokens_per_s"
        if key in row:
            labels.append(f"{row['family']} {row['dtype']} {row['case']} T={row['seq_len']}")
            ratios.append(row[key])
    figure, axis = plt.subplots(figsize=(8, 0.3 * len(labels) + 1.5))
    axis.barh(range(len(labels)), ratios, color=["tab:green" if r >= 1 else "tab:red" for r in ratios])
    axis.axvline(1.0, color="black", linewidth=0.8)
    axis.set_yticks(range(len(labels)), labels, fontsize=7)
    axis.invert_yaxis()
    axis.set_xlabel("ours / transformers (speed: higher is better; memory: lower is better)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, where `platform.processor()` is often empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(args) -> dict:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RecipeError("--device cuda: no CUDA device is available here.")
    limits = machine_limits(device, args.repeats)
    rows, attention = [], {}
    for family in args.models:
        ours, reference = build_pair(family, args.preset, args.attn_implementation, args.vocab_size, args.model_path)
        models = {"ours": ours.to(device), "reference": reference.to(device)}
        variants = {f"ours_{name}": build_variant(name, ours) for name in args.variants}
        config = ours.config
        attention[family] = {
            "ours": ours.config._attn_implementation,
            "reference": reference.config._attn_implementation,
        }
        new_rows = []
        for seq_len in args.seq_lens:
            if seq_len > config.n_positions:
                print(f"{family}: sequence {seq_len} exceeds n_positions={config.n_positions}: skipped")
                continue
            for dtype in args.dtypes:
                measured = speed_cases(
                    models, config, device, dtype, seq_len, args, variants if dtype == "fp32" else None
                )
                if "memory" in args.measured_cases:
                    measured.append(train_memory(args, family, dtype, seq_len, device))
                new_rows += [{**row, "dtype": dtype} for row in measured]
        if args.eval_file is not None:
            tokenizer = load_tokenizer_for(args.model_path)
            new_rows.append(
                {**perplexity_row({**models, **variants}, config, tokenizer, args, device), "dtype": "fp32"}
            )
        for row in new_rows:
            row["family"] = family
            add_ratios(row)
            print_table([row], header=not rows)  # progress: a 124M run on CPUs takes a while
            rows.append(row)
        del models, variants, ours, reference
    # The machine's speed drifts over a long run (a shared host): its limits are measured again at the end and the
    # better of the two is the peak that utilisation is measured against.
    end_limits = machine_limits(device, args.repeats)
    limits = {key: max(value, end_limits[key]) for key, value in limits.items()}
    add_utilisation(rows, limits)
    return {
        "settings": {k: v for k, v in dataclasses.asdict(args).items() if k != "output_dir"},
        "machine": {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            **limits,
        },
        "attention": attention,
        "rows": rows,
    }


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


def resolve_model_path(args) -> None:
    """`--model_path`'s family becomes `--models`; a folder of another family than `--models` names, or no model of
    ours, is a RecipeError naming it (read when the run starts, not when a run config is parsed)."""
    if args.model_path is None:
        return
    family = family_of(args.model_path).name
    if family not in args.models:
        raise RecipeError(
            f"--model_path {args.model_path!r} holds a {family} model, not one of --models {args.models}"
        )
    args.models = [family]


def main(argv=None):
    (args,) = parse_arguments([BenchmarkArguments], argv, prog=PROG, description=__doc__)
    try:
        resolve_model_path(args)
        report = run(args)
    except RecipeError as error:
        exit_with_error(PROG, error)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "benchmark.json").write_text(json.dumps(report, indent=1))
    save_chart(report["rows"], output_dir / "benchmark.png")
    machine = report["machine"]
    print(
        f"{machine['device']} ({machine['threads']} threads): matmul {machine['matmul_flops_fp32'] / 1e9:,.1f} "
        f"GFLOP/s fp32, {machine['matmul_flops_bf16'] / 1e9:,.1f} bf16; read bandwidth "
        f"{machine['read_bandwidth'] / 1e9:,.1f} GB/s"
    )
    print_table(report["rows"])
    print(f"\n{output_dir / 'benchmark.json'}, {output_dir / 'benchmark.png'}")
    return report


if __name__ == "__main__":
    main()
