"""The benchmark of ours against transformers' GPT-2 and GPT-1 (recipes/benchmark.py): for each family, sequence
length and dtype, the speed cases, the training memory and the perplexity, each row printed as it is measured,
between two measurements of the machine's limits."""

import dataclasses
from pathlib import Path

import torch

from ..core.errors import RecipeError
from ..models.families import family_of, load_tokenizer_for
from .machine import device_name, machine_limits
from .memory import train_memory
from .model_pairs import build_pair, build_variant
from .perplexity import perplexity_row
from .report import add_ratios, add_utilisation, print_table, write_report
from .speed import speed_cases

CASES = ["train", "forward", "generate", "memory"]
DTYPES = ["fp32", "bf16"]


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
            "device": device_name(device),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            **limits,
        },
        "attention": attention,
        "rows": rows,
    }


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


def benchmark(args) -> dict:
    """The whole benchmark of `args` (a `BenchmarkArguments`): measured, then written to benchmark.json and
    benchmark.png in `args.output_dir` and printed as a table; returns the report."""
    resolve_model_path(args)
    report = run(args)
    write_report(report, Path(args.output_dir))
    return report


__all__ = ["CASES", "DTYPES", "benchmark", "resolve_model_path", "run"]
