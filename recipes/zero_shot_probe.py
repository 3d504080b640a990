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

from dataclasses import dataclass
from pathlib import Path

from .core.command import run_cli
from .core.options import option
from .training.zero_shot_probe import PROBE_FAMILIES, PROBE_TASKS, check_probe_tasks, probe

PROG = "python -m recipes.zero_shot_probe"


@dataclass
class ProbeArguments:
    run: str | None = option(None, "a pre-training run folder (its checkpoints/ and final model)", required=True)
    data_dir: str = option(".", "the folder the --tasks folders are relative to")
    tasks: list[str] = option(
        PROBE_TASKS,
        f"family=folder per task (test.jsonl and train.jsonl in each); families: {', '.join(PROBE_FAMILIES)}",
    )
    output_dir: str | None = option(None, "probe.json and probe.png (default: <run>/zero-shot-probe)")
    random_seed: int = option(1234, "of the step-0 model's fresh weights")
    per_device_eval_batch_size: int = option(16, "sequences per batch")

    def __post_init__(self):
        check_probe_tasks(self.tasks)
        self.output_dir = self.output_dir or str(Path(self.run) / "zero-shot-probe")


def main(argv=None) -> dict:
    return run_cli(ProbeArguments, probe, argv, prog=PROG, description=__doc__)


if __name__ == "__main__":
    main()
