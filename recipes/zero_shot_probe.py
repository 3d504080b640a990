"""GPT-1's zero-shot probe (Radford et al. 2018, section 5, figure 2 right): how well the pre-trained language model
does the tasks before any fine-tuning, and how that grows over pre-training.

For every checkpoint of a pre-training run (`<run>/checkpoints/step_*`, each a loadable folder), the final model, and
the same architecture with fresh weights (step 0), each task's test rows are scored by the zero-shot recipe
(`recipes.evaluate_zero_shot --task multiple_choice`, in process), with the paper's heuristics:

    classification   "text very", then the class names (" negative", " positive") as the choices
    entailment       "premise / Question: hypothesis True, False or Neither? / Answer:", " True" / " Neither" /
                     " False" (the zero-shot recipe's default; the paper does not give its entailment heuristic)
    multiple_choice  the context, then each choice; the choice with the highest mean log-likelihood per token

Similarity has no zero-shot heuristic in the paper and none here. Keep several checkpoints for a curve:

    python -m recipes.pretrain --model_type gpt1 --checkpointing_steps 100 --checkpoints_total_limit 8
    python -m recipes.zero_shot_probe --run runs/pretrain-gpt1 --data_dir <task folders>

Writes `<output_dir>/probe.json` (accuracy and Matthews correlation per step and task, the majority class's), each
scoring's own results with its predictions (`<family>-step<N>.json`), and `<output_dir>/probe.png` (both against the
pre-training step).
"""

if __name__ == "__main__" and not __package__:  # a script path: `python recipes/zero_shot_probe.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

from .ablation import DEFAULT_TASKS, majority_accuracy, make_random_init, parse_tasks
from .core.arguments import parse_arguments
from .core.checkpointing import checkpoint_step, complete_checkpoints
from .core.errors import RecipeError, exit_with_error
from .core.options import option
from .core.run_folder import checkpoints_root
from .evaluate_zero_shot import ZeroShotArguments, evaluation_function
from .evaluation.metrics import matthews_correlation

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

PROG = "python -m recipes.zero_shot_probe"
FAMILIES = ("classification", "entailment", "multiple_choice")  # the families with a zero-shot heuristic
NORMALIZE = "tokens"  # the mean log-likelihood per token of each choice


@dataclass
class ProbeArguments:
    run: str | None = option(None, "a pre-training run folder (its checkpoints/ and final model)", required=True)
    data_dir: str = option(".", "the folder the --tasks folders are relative to")
    tasks: list[str] = option(
        [task for task in DEFAULT_TASKS if task.split("=")[0] in FAMILIES],
        f"family=folder per task (test.jsonl and train.jsonl in each); families: {', '.join(FAMILIES)}",
    )
    output_dir: str | None = option(None, "probe.json and probe.png (default: <run>/zero-shot-probe)")
    random_seed: int = option(1234, "of the step-0 model's fresh weights")
    per_device_eval_batch_size: int = option(16, "sequences per batch")

    def __post_init__(self):
        tasks = parse_tasks(self.tasks)
        other = sorted(set(tasks) - set(FAMILIES))
        if other:
            raise ValueError(f"--tasks: {other} has no zero-shot heuristic; the probe takes {', '.join(FAMILIES)}")
        self.output_dir = self.output_dir or str(Path(self.run) / "zero-shot-probe")


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


def probe(args: ProbeArguments) -> dict:
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


def main(argv=None) -> dict:
    (args,) = parse_arguments([ProbeArguments], argv, prog=PROG, description=__doc__)
    try:
        return probe(args)
    except RecipeError as error:
        exit_with_error(PROG, error)


if __name__ == "__main__":
    main()


__all__ = ["FAMILIES", "ProbeArguments", "models_by_step", "probe"]
