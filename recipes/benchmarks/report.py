"""What the benchmark reports: the ratios ours / transformers', model FLOPs utilisation, the table it prints, the bar
chart of the ratios (benchmark.png) and benchmark.json."""

import json
from pathlib import Path

from .model_pairs import VARIANTS

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


def add_utilisation(rows: list[dict], limits: dict[str, float]):
    """Model FLOPs utilisation of the training rows against the peak matmul rate of their dtype."""
    for row in rows:
        if "flops_per_token" in row:
            peak = limits[f"matmul_flops_{row['dtype']}"]
            for name in ("ours", "reference"):
                row[f"{name}_mfu"] = row[f"{name}_tokens_per_s"] * row["flops_per_token"] / peak
        add_ratios(row)


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


def write_report(report: dict, output_dir: Path):
    """benchmark.json and benchmark.png into `output_dir`, then the machine's limits, the table of every row and
    where the files are, on stdout."""
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


__all__ = ["add_ratios", "add_utilisation", "print_table", "save_chart", "write_report"]
