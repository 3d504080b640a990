"""The machine the benchmark runs on: its name, its measured peak matmul FLOP/s and memory read bandwidth, and the
model FLOPs utilisation of a training step against that peak."""

import platform
from pathlib import Path

import torch

from .timing import time_alternately


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


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, where `platform.processor()` is often empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """The GPU's name for a CUDA device, else the CPU's."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def training_flops_per_token(config, seq_len: int) -> float:
    """Forward + backward FLOPs per token: 6 per weight of the matrices plus attention's 12 * layers * seq * width
    (Kaplan et al. 2020; the PaLM paper's MFU convention)."""
    non_embedding = 12 * config.n_layer * config.n_embd**2
    matrices = non_embedding + config.vocab_size * config.n_embd  # the LM head is a matmul too
    return 6 * matrices + 12 * config.n_layer * seq_len * config.n_embd


__all__ = ["cpu_name", "device_name", "machine_limits", "training_flops_per_token"]
