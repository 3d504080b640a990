"""The GPT-1 paper's central claims at small scale: pre-training helps fine-tuning, and so (sometimes) does the
auxiliary LM loss; full fine-tuning against a frozen body. One `recipes.finetune` run per family x variant x seed:

    paper        the pre-trained model, all weights fine-tuned, lambda (--lm_coef) 0.5
    random-init  the same architecture and tokenizer with fresh weights, lambda 0.5
    no-lm-loss   the pre-trained model, lambda 0
    frozen-body  the pre-trained model, only the task head and task-token embeddings trained, lambda 0.5

    python -m recipes.ablation --pretrained runs/pretrain-gpt1 --data_dir ../shared/data/tasks \\
        --output_dir runs/ablation --max_train_samples 1000 --max_length 64 --num_train_epochs 3

The data folder holds one folder per task with train / validation / test .jsonl (shared/DATA.md). The random model
is the pre-trained one's config and tokenizer with seeded fresh weights, saved once in `<output_dir>/random-init`.
Runs whose results.json exists are reused (so a matrix can be split over processes with --families and gathered by
a last call). Writes `<output_dir>/ablation.json` (every run's test and validation metrics, the majority-class
baseline on test) and `<output_dir>/ablation.png` (test metric per family and variant, majority baseline as lines).
"""

import argparse
import json
import shutil
import time
from collections import Counter
from pathlib import Path

import matplotlib
import numpy as np
import torch
from accelerate.state import AcceleratorState
from transformers import AutoTokenizer

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsLMHeadModel

from . import finetune

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

# family -> (task folder, --task_type, extra options); similarity as its four classes, so it has a majority baseline.
FAMILIES = {
    "classification": ("classification-movie-sentence-polarity", "classification", []),
    "entailment": ("entailment-presuppositions", "entailment", []),
    "similarity": ("similarity-answer-vs-source", "similarity", ["--similarity_target", "label"]),
    "multiple_choice": ("multiple-choice-social-iqa", "multiple_choice", []),
}
# variant -> (weights, extra options)
VARIANTS = {
    "paper": ("pretrained", ["--lm_coef", "0.5"]),
    "random-init": ("random", ["--lm_coef", "0.5"]),
    "no-lm-loss": ("pretrained", ["--lm_coef", "0"]),
    "frozen-body": ("pretrained", ["--lm_coef", "0.5", "--freeze_body"]),
}


def make_random_init(pretrained: Path, folder: Path, seed: int) -> Path:
    """The pre-trained model's config and tokenizer with fresh weights (the model's own init, seeded)."""
    if not (folder / "config.json").exists():
        torch.manual_seed(seed)
        GPT1OriginsLMHeadModel(GPT1OriginsConfig.from_pretrained(pretrained)).save_pretrained(folder)
        AutoTokenizer.from_pretrained(pretrained).save_pretrained(folder)
    return folder


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


def majority_accuracy(task_dir: Path, split: str = "test") -> dict:
    """Always answering the most frequent training label (ties: the smallest), scored on `split`."""
    counts = Counter(row["label"] for row in read_jsonl(task_dir / "train.jsonl"))
    majority = min(counts, key=lambda label: (-counts[label], str(label)))
    labels = [row["label"] for row in read_jsonl(task_dir / f"{split}.jsonl")]
    return {"prediction": majority, "accuracy": float(np.mean([label == majority for label in labels]))}


def run_one(args, family: str, variant: str, seed: int, models: dict) -> dict:
    folder, task_type, extra = FAMILIES[family]
    task_dir = Path(args.data_dir) / folder
    weights, options = VARIANTS[variant]
    output_dir = Path(args.output_dir) / "runs" / family / f"{variant}-seed{seed}"
    results_file = output_dir / finetune.RESULTS
    seconds = None
    if not results_file.exists():
        if args.collect_only:
            return None
        argv = [
            "--task_type", task_type, "--model_name_or_path", models[weights], *extra, *options,
            "--train_file", task_dir / "train.jsonl", "--validation_file", task_dir / "validation.jsonl",
            "--test_file", task_dir / "test.jsonl",
            "--max_length", args.max_length, "--num_train_epochs", args.num_train_epochs, "--seed", seed,
            "--learning_rate", args.learning_rate, "--per_device_train_batch_size", args.batch_size,
            "--output_dir", output_dir, "--overwrite_output_dir", "--checkpoints_total_limit", 1,
        ]  # fmt: skip
        if args.max_train_samples:
            argv += ["--max_train_samples", args.max_train_samples]
        start = time.time()
        AcceleratorState._reset_state(reset_partial_state=True)
        finetune.main([str(item) for item in argv])
        seconds = round(time.time() - start, 1)
        if not args.keep_models:  # the numbers are the product; ~60 MB of weights per run are not
            shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)
            (output_dir / "model.safetensors").unlink(missing_ok=True)
    results = json.loads(results_file.read_text())
    metric = results["best"]["metric"]
    return {
        "family": family,
        "variant": variant,
        "seed": seed,
        "metric": metric,
        "test": results["test"][metric],
        "validation_best": results["best"]["value"],
        "best_epoch": results["best"]["epoch"],
        "train_rows": results["task"]["rows"]["train"],
        "test_rows": results["task"]["rows"]["test"],
        "seconds": seconds,
        "results": str(results_file),
    }


def summarize(runs: list[dict], baselines: dict) -> dict:
    summary = {}
    for family, baseline in baselines.items():
        summary[family] = {"majority": baseline["accuracy"]}
        for variant in VARIANTS:
            values = [run["test"] for run in runs if run["family"] == family and run["variant"] == variant]
            if values:
                summary[family][variant] = float(np.mean(values))
    return summary


def plot(summary: dict, path: Path, title: str) -> Path:
    families = list(summary)
    width = 0.8 / len(VARIANTS)
    figure, axis = plt.subplots(figsize=(9, 4.5), dpi=100)
    for i, variant in enumerate(VARIANTS):
        x = np.arange(len(families)) + (i - (len(VARIANTS) - 1) / 2) * width
        values = [summary[family].get(variant, np.nan) for family in families]
        axis.bar(x, values, width, label=variant)
    for j, family in enumerate(families):
        label = "majority class" if j == 0 else None
        axis.hlines(summary[family]["majority"], j - 0.45, j + 0.45, colors="black", linestyles="--", label=label)
    axis.set_xticks(np.arange(len(families)), [family.replace("_", " ") for family in families])
    axis.set_ylabel("test accuracy")
    axis.set_ylim(0, 1)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8, ncols=5, loc="upper center")
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recipes.ablation", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pretrained", required=True, help="a pretrain.py --model_type gpt1 folder (with tokenizer)")
    parser.add_argument("--data_dir", required=True, help="one folder per task with train/validation/test.jsonl")
    parser.add_argument("--output_dir", default="runs/ablation")
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--max_train_samples", type=int, default=None, help="default: every training row")
    parser.add_argument("--max_length", type=int, default=64)
    parser.add_argument("--num_train_epochs", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=6.25e-5, help="the same for every variant")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for small models)")
    parser.add_argument("--collect_only", action="store_true", help="train nothing: gather the finished runs")
    parser.add_argument("--keep_models", action="store_true", help="keep each run's weights and checkpoints")
    return parser


def main(argv=None) -> dict:
    args = get_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    models = {"pretrained": str(args.pretrained)}
    if "random-init" in args.variants:
        models["random"] = str(make_random_init(Path(args.pretrained), output_dir / "random-init", seed=1234))
    runs = [
        run_one(args, family, variant, seed, models)
        for family in args.families
        for variant in args.variants
        for seed in args.seeds
    ]
    runs = [run for run in runs if run is not None]  # --collect_only: runs not trained yet are left out
    baselines = {family: majority_accuracy(Path(args.data_dir) / FAMILIES[family][0]) for family in args.families}
    settings = {key: value for key, value in vars(args).items() if key not in ("families", "variants")}
    summary = summarize(runs, baselines)
    ablation = {"settings": settings, "majority_test": baselines, "summary": summary, "runs": runs}
    (output_dir / "ablation.json").write_text(json.dumps(ablation, indent=1, default=str))
    title = f"GPT-1 fine-tuning ablation (seeds {args.seeds}, {args.num_train_epochs} epochs, lr {args.learning_rate})"
    plot(summary, output_dir / "ablation.png", title)
    print(json.dumps(summary, indent=1))
    print(f"Results: {output_dir / 'ablation.json'}, plot: {output_dir / 'ablation.png'}")
    return ablation


if __name__ == "__main__":
    main()
