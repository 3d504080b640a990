"""GPT-1's zero-shot probe (Radford et al. 2018, section 5, figure 2 right): every checkpoint of a pre-training run,
the final model and fresh weights (step 0), each scored zero-shot on the tasks' test rows by
recipes/evaluation/zero_shot.py, as a table and a plot against the pre-training step
(`python -m recipes.zero_shot_probe`, recipes/zero_shot_probe.py)."""

import json
from pathlib import Path

import matplotlib

from ..core.checkpointing import checkpoint_step, complete_checkpoints
from ..core.errors import RecipeError
from ..core.run_folder import checkpoints_root
from ..evaluation.metrics import matthews_correlation
from ..evaluation.zero_shot import evaluation_function
from ..evaluation.zero_shot_options import ZeroShotArguments
from .ablation_study import DEFAULT_TASKS, majority_accuracy, make_random_init, parse_tasks

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

PROBE_FAMILIES = ("classification", "entailment", "multiple_choice")  # the families with a zero-shot heuristic
NORMALIZE = "tokens"  # the mean log-likelihood per token of each choice
# The probe's default tasks: the ablation's task folders of the families above.
PROBE_TASKS = [task for task in DEFAULT_TASKS if task.split("=")[0] in PROBE_FAMILIES]


def check_probe_tasks(tasks: list[str]):
    """`--tasks` as family=folder, each of a family with a zero-shot heuristic (a ValueError naming the others)."""
    other = sorted(set(parse_tasks(tasks)) - set(PROBE_FAMILIES))
    if other:
        raise ValueError(f"--tasks: {other} has no zero-shot heuristic; the probe takes {', '.join(PROBE_FAMILIES)}")


def models_by_step(run: Path, output_dir: Path, seed: int) -> dict[int, Path]:
    """{pre-training step: folder}: fresh weights at 0, every complete checkpoint, the final model (its step from
    history.json)."""
    models = {0: make_random_init(run, output_dir / "step-0-random", seed)}
    for folder in complete_checkpoints(checkpoints_root(run)):
        models[checkpoint_step(folder)] = folder
    history = run / "history.json"
    final = json.loads(history.read_text())["step"] if history.is_file() else max(models) + 1
    models.setdefault(final, run)
    return dict(sorted(models.items()))


def probe(args) -> dict:
    run, output_dir = Path(args.run), Path(args.output_dir)
    if not (run / "config.json").is_file():
        raise RecipeError(f"--run {str(run)!r} is not a finished pre-training run: it has no config.json.")
    tasks = {family: Path(args.data_dir) / folder for family, folder in parse_tasks(args.tasks).items()}
    for family, folder in tasks.items():
        for split in ("train", "test"):
            if not (folder / f"{split}.jsonl").is_file():
                raise RecipeError(f"--tasks {family}={folder}: {folder / f'{split}.jsonl'} does not exist.")
    output_dir.mkdir(parents=True, exist_ok=True)
    models = models_by_step(run, output_dir, args.random_seed)
    results = {"run": str(run), "normalize": NORMALIZE, "majority": {}, "steps": list(models), "tasks": {}}
    for family, folder in tasks.items():
        majority = majority_accuracy(folder)
        results["majority"][family] = majority["accuracy"]
        per_step = []
        for step, model in models.items():
            options = ZeroShotArguments(
                task="multiple_choice",
                model=str(model),
                data_file=[str(folder / "test.jsonl")],
                normalize=[NORMALIZE],
                per_device_eval_batch_size=args.per_device_eval_batch_size,
                output_file=str(output_dir / f"{family}-step{step}.json"),
            )
            scored = evaluation_function(options)
            predicted, truth = scored["predictions"][NORMALIZE], scored["predictions"]["labels"]
            per_step.append(
                {
                    "step": step,
                    "accuracy": scored["metrics"][f"accuracy_{NORMALIZE}"],
                    "matthews_correlation": matthews_correlation(predicted, truth),
                    "chance": scored["metrics"]["chance"],
                }
            )
        results["tasks"][family] = {"folder": str(folder), "test_rows": len(truth), "by_step": per_step}
    (output_dir / "probe.json").write_text(json.dumps(results, indent=1))
    plot(results, output_dir / "probe.png")
    print(table(results))
    print(f"Results: {output_dir / 'probe.json'}, plot: {output_dir / 'probe.png'}")
    return results


def table(results: dict) -> str:
    families = list(results["tasks"])
    lines = ["| step | " + " | ".join(f"{f} acc / MCC" for f in families) + " |", "|---" * (len(families) + 1) + "|"]
    for i, step in enumerate(results["steps"]):
        cells = []
        for family in families:
            point = results["tasks"][family]["by_step"][i]
            cells.append(f"{point['accuracy']:.3f} / {point['matthews_correlation']:+.3f}")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    lines.append("| majority | " + " | ".join(f"{results['majority'][f]:.3f} / 0" for f in families) + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> Path:
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    for index, (family, task) in enumerate(results["tasks"].items()):
        color = f"C{index}"
        steps = [point["step"] for point in task["by_step"]]
        for axis, metric in zip(axes, ("accuracy", "matthews_correlation")):
            axis.plot(steps, [point[metric] for point in task["by_step"]], "o-", color=color, label=family)
        axes[0].axhline(results["majority"][family], color=color, linestyle="--", linewidth=0.8)
    axes[1].axhline(0, color="black", linewidth=0.8)
    for axis, label in zip(axes, ("zero-shot test accuracy (dashed: majority class)", "zero-shot test MCC")):
        axis.set_xlabel("pre-training step")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"GPT-1 zero-shot probe over pre-training: {results['run']}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


__all__ = ["PROBE_FAMILIES", "PROBE_TASKS", "check_probe_tasks", "models_by_step", "plot", "probe", "table"]
