"""The GPT-1 fine-tuning ablation (recipes/ablation.py): one fine-tuning run per task x variant x seed, each run's
test predictions, and per family each variant's test accuracy and Matthews correlation with 95% bootstrap intervals,
the majority class's, and the paired differences of the paper's comparisons (`summarize`), as ablation.json, a
Markdown table and a plot. The task folders, the majority class and the random-init model are shared with the
zero-shot probe (recipes/zero_shot_probe.py).
"""

import dataclasses
import json
import shutil
import time
from collections import Counter
from pathlib import Path

import matplotlib
import numpy as np
import torch
from transformers import AutoTokenizer

from modeling_gpt1 import TASK_FAMILIES, GPT1OriginsConfig, GPT1OriginsLMHeadModel

from ..core.arguments import read_config
from ..core.errors import RecipeError
from ..evaluation.metrics import matthews_correlation
from .finetune_options import FinetuneArguments
from .finetuning import RESULTS, training_function
from .task_setup import predict

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

# The default --tasks: the task sets of docs/RESULTS.md, one per family, by folder name under --data_dir.
DEFAULT_TASKS = [
    "classification=classification-movie-sentence-polarity",
    "entailment=entailment-presuppositions",
    "similarity=similarity-answer-vs-source",
    "multiple_choice=multiple-choice-social-iqa",
]
# Each run's test predictions (`task_setup.predict` of its best model), for the bootstrap intervals.
PREDICTIONS = "test_predictions.json"
# variant -> (weights, fine-tuning options)
VARIANTS = {
    "paper": ("pretrained", {"lm_coef": 0.5}),
    "random-init": ("random", {"lm_coef": 0.5}),
    "no-lm-loss": ("pretrained", {"lm_coef": 0.0}),
    "frozen-body": ("pretrained", {"lm_coef": 0.5, "freeze_body": True}),
}


def parse_tasks(entries: list[str]) -> dict[str, str]:
    """`family=folder` entries as {family: folder}."""
    tasks = {}
    for entry in entries:
        family, sep, folder = entry.partition("=")
        if not sep or not folder or family not in TASK_FAMILIES:
            raise ValueError(f"--tasks entry {entry!r} is not family=folder with a family of {list(TASK_FAMILIES)}")
        if family in tasks:
            raise ValueError(f"--tasks names the family {family!r} twice")
        tasks[family] = folder
    return tasks


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


def finetune_arguments(args, family: str, variant: str, seed: int, models: dict) -> FinetuneArguments:
    """The fine-tuning options of one run: the run config, then the ablation's options (`args`, recipes/ablation.py's
    AblationArguments), then the variant's."""
    task_dir = args.task_folders[family]
    weights, variant_options = VARIANTS[variant]
    values = read_config(args.finetune_config) if args.finetune_config else {}
    values.update(
        task_type=family,
        model_name_or_path=models[weights],
        train_file=[str(task_dir / "train.jsonl")],
        validation_file=[str(task_dir / "validation.jsonl")],
        test_file=[str(task_dir / "test.jsonl")],
        max_length=args.max_length,
        num_train_epochs=args.num_train_epochs,
        seed=seed,
        per_device_train_batch_size=args.batch_size,
        max_train_samples=args.max_train_samples,
        output_dir=str(Path(args.output_dir) / "runs" / family / f"{variant}-seed{seed}"),
        overwrite_output_dir=True,
        checkpoints_total_limit=1,
        **variant_options,
    )
    if args.learning_rate is not None:
        values["learning_rate"] = args.learning_rate
    if family == "similarity":
        values["similarity_target"] = args.similarity_target
    try:
        return FinetuneArguments(**values)
    except TypeError as error:  # a key of the run config that is not a fine-tuning option
        raise RecipeError(f"--finetune_config {args.finetune_config!r}: {error}") from None


def run_one(args, family: str, variant: str, seed: int, models: dict) -> dict | None:
    """One fine-tuning run of the matrix and its test predictions (reused when its results.json exists), as the
    record ablation.json lists; None for a run not trained yet under --collect_only."""
    options = finetune_arguments(args, family, variant, seed, models)
    output_dir = Path(options.output_dir)
    results_file = output_dir / RESULTS
    seconds = None
    if not results_file.exists():
        if args.collect_only:
            return None
        start = time.time()
        training_function(options)
        seconds = round(time.time() - start, 1)
        test_rows = read_jsonl(Path(options.test_file[0]))
        predictions = predict(output_dir, test_rows, max_length=options.max_length, keep=options.truncation_keep)
        (output_dir / PREDICTIONS).write_text(json.dumps(predictions))
        if not args.keep_models:  # the numbers are the product; ~60 MB of weights per run are not
            shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)
            (output_dir / "model.safetensors").unlink(missing_ok=True)
    results = json.loads(results_file.read_text())
    metric = results["best"]["metric"]
    predictions_file = output_dir / PREDICTIONS
    return {
        "family": family,
        "variant": variant,
        "seed": seed,
        "metric": metric,
        "test": results["test"][metric],
        "test_matthews_correlation": results["test"].get("matthews_correlation"),
        "learning_rate": results["hyperparameters"].get(
            "peak_learning_rate", results["hyperparameters"]["learning_rate"]
        ),
        "predictions": json.loads(predictions_file.read_text()) if predictions_file.exists() else None,
        "validation_best": results["best"]["value"],
        "best_epoch": results["best"]["epoch"],
        "train_rows": results["task"]["rows"]["train"],
        "test_rows": results["task"]["rows"]["test"],
        "seconds": seconds,
        "results": str(results_file),
    }


# The paper's comparisons (section 5): pre-training, the auxiliary LM loss, full fine-tuning against a frozen body.
COMPARISONS = [("paper", "random-init"), ("paper", "no-lm-loss"), ("paper", "frozen-body")]


def _encode(values: list, vocabulary: dict) -> np.ndarray:
    return np.asarray([vocabulary.setdefault(str(value), len(vocabulary)) for value in values])


def bootstrap(labels: list, predictions: dict[str, list[list]], rounds: int, seed: int = 0) -> dict:
    """Test accuracy and Matthews correlation of each variant (the mean over its seeds), with 95% percentile
    intervals from `rounds` resamples of the test rows; every variant and seed is scored on the same resampled rows,
    so the differences between variants (`COMPARISONS`, and each variant against the majority class) are paired."""
    vocabulary = {}
    references = _encode(labels, vocabulary)
    encoded = {name: [_encode(run, vocabulary) for run in runs] for name, runs in predictions.items()}
    rng = np.random.default_rng(seed)
    samples = [np.arange(len(references)), *rng.integers(0, len(references), (rounds, len(references)))]
    scores = {name: {"accuracy": [], "matthews_correlation": []} for name in encoded}
    for rows in samples:
        truth = references[rows]
        for name, runs in encoded.items():
            scores[name]["accuracy"].append(np.mean([np.mean(run[rows] == truth) for run in runs]))
            mcc = [matthews_correlation(run[rows], truth) for run in runs]
            scores[name]["matthews_correlation"].append(float(np.mean(mcc)))

    def interval(values) -> list[float]:
        values = np.asarray(values)
        return [float(values[0]), *map(float, np.percentile(values[1:], [2.5, 97.5]))]

    summary = {name: {metric: interval(v) for metric, v in metrics.items()} for name, metrics in scores.items()}
    pairs = [pair for pair in COMPARISONS if all(name in scores for name in pair)]
    pairs += [(name, "majority") for name in scores if name != "majority" and "majority" in scores]
    differences = {
        f"{a} - {b}": {metric: interval(np.subtract(scores[a][metric], scores[b][metric])) for metric in scores[a]}
        for a, b in pairs
    }
    return {"variants": summary, "differences": differences}


def summarize(runs: list[dict], task_folders: dict[str, Path], rounds: int) -> dict:
    """Per family: each variant's seeds, its test accuracy and Matthews correlation as [value, low, high] (95%), the
    majority class's, and the paired differences; from the runs' saved test predictions."""
    summary = {}
    for family, folder in task_folders.items():
        test_rows = read_jsonl(folder / "test.jsonl")
        labels = [row["label"] for row in test_rows]
        majority = majority_accuracy(folder)["prediction"]
        predictions = {"majority": [[majority] * len(labels)]}
        seeds = {}
        for variant in VARIANTS:
            done = [run for run in runs if run["family"] == family and run["variant"] == variant]
            if done and all(run["predictions"] is not None for run in done):
                predictions[variant] = [run["predictions"] for run in done]
                seeds[variant] = [run["seed"] for run in done]
        summary[family] = {"test_rows": len(labels), "seeds": seeds, **bootstrap(labels, predictions, rounds)}
    return summary


def plot(summary: dict, path: Path, title: str) -> Path:
    """Test accuracy and Matthews correlation per family and variant, with their 95% intervals."""
    families = list(summary)
    names = ["majority", *VARIANTS]
    width = 0.8 / len(names)
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    for axis, metric, label in zip(axes, ("accuracy", "matthews_correlation"), ("test accuracy", "test MCC")):
        for i, name in enumerate(names):
            x = np.arange(len(families)) + (i - (len(names) - 1) / 2) * width
            values = [summary[f]["variants"].get(name, {}).get(metric, [np.nan] * 3) for f in families]
            value, low, high = (np.array(column) for column in zip(*values))
            color = "lightgray" if name == "majority" else None
            axis.bar(x, value, width, yerr=[value - low, high - value], capsize=2, label=name, color=color)
        axis.axhline(0, color="black", linewidth=0.8)
        axis.set_xticks(np.arange(len(families)), [family.replace("_", " ") for family in families])
        axis.set_ylabel(label)
        axis.grid(axis="y", alpha=0.3)
    axes[0].set_ylim(0, 1)
    axes[1].set_ylim(-0.5, 1)
    axes[0].legend(fontsize=8, ncols=3, loc="upper center")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def table(summary: dict) -> str:
    """The summary as a Markdown table: accuracy and MCC with their 95% intervals, per family and variant."""
    lines = ["| family | variant | seeds | test accuracy (95%) | test MCC (95%) |", "|---|---|---|---|---|"]
    for family, result in summary.items():
        for name, metrics in result["variants"].items():
            cells = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in metrics.values()]
            seeds = len(result["seeds"].get(name, [])) or "-"
            lines.append(f"| {family} | {name} | {seeds} | {' | '.join(cells)} |")
    lines += ["", "| family | difference | accuracy (95%) | MCC (95%) |", "|---|---|---|---|"]
    for family, result in summary.items():
        for name, metrics in result["differences"].items():
            cells = [f"{v:+.3f} [{lo:+.3f}, {hi:+.3f}]" for v, lo, hi in metrics.values()]
            lines.append(f"| {family} | {name} | {' | '.join(cells)} |")
    return "\n".join(lines)


def run_ablation(args) -> dict:
    """The whole matrix, in this process, for recipes/ablation.py's options `args`; returns what ablation.json
    holds."""
    torch.set_num_threads(args.threads)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    models = {"pretrained": str(args.pretrained)}
    if "random-init" in args.variants:
        models["random"] = str(make_random_init(Path(args.pretrained), output_dir / "random-init", seed=1234))
    folders = args.task_folders
    runs = [
        run_one(args, family, variant, seed, models)
        for family in folders
        for variant in args.variants
        for seed in args.seeds
    ]
    runs = [run for run in runs if run is not None]  # --collect_only: runs not trained yet are left out
    baselines = {family: majority_accuracy(folder) for family, folder in folders.items()}
    settings = {key: value for key, value in dataclasses.asdict(args).items() if key not in ("families", "variants")}
    summary = summarize(runs, folders, args.bootstrap_rounds)
    ablation = {"settings": settings, "majority_test": baselines, "summary": summary, "runs": runs}
    (output_dir / "ablation.json").write_text(json.dumps(ablation, indent=1, default=str))
    rate = args.learning_rate or "fine-tuning's default"
    title = (
        f"GPT-1 fine-tuning ablation (seeds {args.seeds}, {args.num_train_epochs} epochs, lr {rate}; 95% intervals)"
    )
    plot(summary, output_dir / "ablation.png", title)
    print(table(summary))
    print(f"Results: {output_dir / 'ablation.json'}, plot: {output_dir / 'ablation.png'}")
    return ablation


__all__ = [
    "COMPARISONS",
    "DEFAULT_TASKS",
    "PREDICTIONS",
    "VARIANTS",
    "bootstrap",
    "majority_accuracy",
    "make_random_init",
    "parse_tasks",
    "read_jsonl",
    "run_ablation",
    "summarize",
]
