"""The report of recipes/gpu_check.sh: the pre-training run's tokens/s and model FLOPs utilisation, and the
benchmark's ours / transformers ratio for a training step in the same settings, against the targets (>= 40% MFU,
>= 1.1x). MFU is measured against the GPU's bf16 matmul peak that the benchmark measured.
"""

import json
import statistics
from pathlib import Path

from transformers import AutoConfig

from ..core.errors import RecipeError
from ..models import families  # noqa: F401  (registers our model types with AutoConfig)
from .machine import training_flops_per_token

TARGET_MFU, TARGET_RATIO = 0.40, 1.10
SKIP_STEPS = 50  # the first steps hold torch.compile's compilation and the allocator's warm-up


def report_gpu_check(folder: Path) -> dict:
    """The GPU check's figures from `folder` (its pretrain/ run and its bench/benchmark.json), against the targets:
    written to gpu_check.json in `folder` and printed."""
    history_file, bench_file = folder / "pretrain" / "history.json", folder / "bench" / "benchmark.json"
    for path in (history_file, bench_file):
        if not path.is_file():
            raise RecipeError(f"{path} is missing: run `bash recipes/gpu_check.sh {folder}` first.")
    history, bench = json.loads(history_file.read_text()), json.loads(bench_file.read_text())
    block_size = history["hyperparameters"]["block_size"]
    last_step = max((r["step"] for r in history["train_history"]), default=0)
    skip = min(SKIP_STEPS, last_step // 2)  # a short (smoke) run: its second half
    speeds = [r["tokens_per_second"] for r in history["train_history"] if r["step"] > skip]
    if not speeds:
        raise RecipeError(f"{history_file} has no training log: the run made no logged step.")
    config = AutoConfig.from_pretrained(folder / "pretrain")
    peak = bench["machine"]["matmul_flops_bf16"]
    tokens_per_s = statistics.median(speeds)
    pretrain_mfu = tokens_per_s * training_flops_per_token(config, block_size) / peak
    (train,) = [row for row in bench["rows"] if row["case"] == "train"]
    result = {
        "device": bench["machine"]["device"],
        "bf16_matmul_peak_tflops": peak / 1e12,
        "pretrain_tokens_per_s": tokens_per_s,
        "pretrain_mfu": pretrain_mfu,
        "benchmark_ours_tokens_per_s": train["ours_tokens_per_s"],
        "benchmark_transformers_tokens_per_s": train["reference_tokens_per_s"],
        "benchmark_ours_mfu": train["ours_mfu"],
        "benchmark_transformers_mfu": train["reference_mfu"],
        "ratio_to_transformers": train["ratio_tokens_per_s"],
    }
    result["mfu_target_met"] = pretrain_mfu >= TARGET_MFU
    result["ratio_target_met"] = result["ratio_to_transformers"] >= TARGET_RATIO
    (folder / "gpu_check.json").write_text(json.dumps(result, indent=1))
    verdict = {True: "met", False: "MISSED"}
    print(
        f"{result['device']}, bf16 matmul peak {peak / 1e12:.0f} TFLOP/s (measured)\n"
        f"pre-training (recipe, steps > {skip}): {tokens_per_s:,.0f} tokens/s, MFU {pretrain_mfu:.1%} "
        f"(target >= {TARGET_MFU:.0%}: {verdict[result['mfu_target_met']]})\n"
        f"training step (benchmark): ours {train['ours_tokens_per_s']:,.0f} tokens/s (MFU {train['ours_mfu']:.1%}), "
        f"transformers {train['reference_tokens_per_s']:,.0f} (MFU {train['reference_mfu']:.1%}): "
        f"{result['ratio_to_transformers']:.2f}x (target >= {TARGET_RATIO}x: {verdict[result['ratio_target_met']]})\n"
        f"Results: {folder / 'gpu_check.json'}"
    )
    return result


__all__ = ["report_gpu_check"]
