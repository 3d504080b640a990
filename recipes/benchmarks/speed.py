"""The speed cases of the benchmark, each run on ours and transformers' model in turn after warm-up: a training step
(forward with labels, backward, AdamW step) and an inference forward in tokens/s, and greedy decoding in new tokens/s
after the prompt (at batch 1 also each model's share of its own matrix-vector bound)."""

import time

import torch

from .bounds import bound_timers
from .machine import training_flops_per_token
from .timing import autocast, measure_alternately, synchronize, time_alternately


def adamw(model, device) -> torch.optim.AdamW:
    """The optimizer of the training cases, the same for both models: AdamW, fused where torch has it for the
    device (as the recipes and Trainer's default `adamw_torch_fused` use it)."""
    fused = device.type in ("cuda", "cpu", "xpu")
    return torch.optim.AdamW(model.parameters(), lr=1e-5, fused=fused)


def speed_row(case: str, seconds: dict, tokens: int, length: int, batch: int, **extra) -> dict:
    """One measured case: `tokens` made per call, in tokens/s of each model."""
    speeds = {f"{name}_tokens_per_s": tokens / s for name, s in seconds.items()}
    return {"case": case, "seq_len": length, "batch_size": batch, **extra, **speeds}


def speed_cases(models: dict, config, device, dtype, seq_len, args, variants: dict | None = None):
    """Rows of one (family, dtype, seq_len): train and forward tokens/s of `models` (ours, reference), generation new
    tokens/s at each of `args.generate_batches` of them and of `variants` (the cases in `args.measured_cases`)."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (args.batch_size, seq_len), generator=generator).to(device)
    rows = train_and_forward_rows(models, config, device, dtype, ids, args)
    decoders = {**models, **(variants or {})}
    for generate_batch in args.generate_batches if "generate" in args.measured_cases else ():
        rows.append(generate_row(decoders, config, device, dtype, ids, generate_batch, args))
    return rows


def train_and_forward_rows(models: dict, config, device, dtype, ids, args) -> list[dict]:
    """The train and forward rows (those of `args.measured_cases`) of `models` on the (batch, seq_len) `ids`."""
    batch_size, seq_len = ids.shape
    warmup, repeats = args.warmup, args.repeats
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

    if "train" in cases:
        seconds = time_alternately({n: (lambda n=n: train_step(n)) for n in models}, device, warmup, repeats)
        flops = training_flops_per_token(config, seq_len)  # for the MFU (`report.add_utilisation`)
        rows.append(speed_row("train", seconds, batch_size * seq_len, seq_len, batch_size, flops_per_token=flops))
        optimizers.clear()

    def forward(name):
        runners[name].eval()
        with torch.inference_mode(), autocast(device, dtype):
            runners[name](input_ids=ids)

    if "forward" in cases:
        seconds = time_alternately({n: (lambda n=n: forward(n)) for n in models}, device, warmup, repeats)
        rows.append(speed_row("forward", seconds, batch_size * seq_len, seq_len, batch_size))
    return rows


def generate_row(decoders: dict, config, device, dtype, ids, generate_batch: int, args) -> dict:
    """Greedy decoding of each of `decoders` at `generate_batch` sequences of a prompt cut from `ids`: new tokens/s
    after the prompt, and at batch 1 each model's matrix-vector bound and its share of it."""
    new_tokens = args.new_tokens
    prompt_len = max(1, min(ids.shape[1], config.n_positions - new_tokens))
    prompt = ids[:1, :prompt_len].expand(generate_batch, -1).contiguous()

    def generate_seconds(model, count: int) -> float:
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
        # Each model's own matrix-vector products for one token, the bound of its weights on this machine, taken in
        # turn with the decoding runs (the machine's speed drifts): the median of 5 calls per round.
        functions.update(bound_timers(decoders, device))
    measured = measure_alternately(functions, 1, max(1, args.repeats // 2))
    seconds = {name: measured[name] for name in decoders}
    extra = {f"{name}_bound_tokens_per_s": 1 / measured[f"{name}_bound"] for name in decoders if generate_batch == 1}
    # One new token per sequence per step.
    row = speed_row(f"generate_b{generate_batch}", seconds, generate_batch, prompt_len, generate_batch, **extra)
    for name in decoders if generate_batch == 1 else ():
        row[f"{name}_bound_fraction"] = row[f"{name}_tokens_per_s"] / row[f"{name}_bound_tokens_per_s"]
    return row


__all__ = ["adamw", "generate_row", "speed_cases", "speed_row", "train_and_forward_rows"]
