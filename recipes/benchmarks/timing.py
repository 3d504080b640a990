"""How the benchmark times things: functions that take turns, so that a machine whose speed drifts (a shared host)
slows all of them alike, and the bf16 autocast its cases run under."""

import statistics
import time
from contextlib import nullcontext

import torch


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


def autocast(device, dtype: str):
    return torch.autocast(device.type, dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()


__all__ = ["autocast", "measure_alternately", "synchronize", "time_alternately"]
