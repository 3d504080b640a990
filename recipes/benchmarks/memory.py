"""The benchmark's `train_memory` case: the peak memory a training step adds to a model, its gradients and its
optimizer state, ours and transformers'. On CUDA the allocator's peak; on a CPU the growth of the peak RSS, reset
before the step, in a fresh subprocess holding only that model."""

import multiprocessing
import resource
from pathlib import Path

import torch

from .model_pairs import build_one, build_pair
from .speed import adamw
from .timing import autocast


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


__all__ = ["train_memory"]
