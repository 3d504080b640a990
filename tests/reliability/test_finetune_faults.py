"""Faults injected into fine-tuning: the GPT-1 fine-tuning recipe (`python -m recipes.finetune`) SIGKILLed at random
moments (during an optimizer step, an evaluation, a checkpoint save) again and again in one run. Every resume starts
from the newest complete checkpoint, no complete checkpoint is lost, and the finished run equals one that was never
interrupted bit for bit (CPU, fixed seed): the best model, the last checkpoint and results.json.

The model, tokenizer and data are tests/recipes/test_finetune.py's (the tiny preset with its dropout, a 1,000-token
tokenizer learned from the Shakespeare sample, the committed movie-sentence-polarity rows split 16 / 4 / 4: 4 steps an
epoch, 2 epochs); the kills are the pre-training recipe's SIGKILL harness (tests/recipes/test_pretrain.py
`run_recipe`), the schedule logic that of tests/reliability/test_training_faults.py.
"""

import importlib
import json
import random
import signal
from pathlib import Path

import pytest
from accelerate.state import AcceleratorState
from test_training_faults import assert_resumed_from_newest, check_checkpoints_after_kill, harness, newest_step

from recipes import finetune
from recipes.core import checkpointing
from recipes.training import finetuning

recipe_tests = importlib.import_module("test_finetune")  # tests/recipes is on sys.path once test_training_faults is

STEPS_PER_EPOCH, MAX_STEPS, EVERY = 4, 8, 2  # a checkpoint every 2 steps; validation at the end of each epoch
GATHERS_PER_EVALUATION = 4  # one validation (and test) batch; `evaluate` gathers 3 losses, then logits and labels
SCHEDULE_SEED = 20240611


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    return uninterrupted_run(tmp_path_factory.mktemp("finetune-faults"))


def uninterrupted_run(folder: Path) -> dict:
    """The uninterrupted run in `folder`, in this process: its recipe arguments (all but --output_dir) and folder."""
    tokenizer = folder / "tokenizer"
    recipe_tests.train_gpt1_tokenizer_from_files(
        recipe_tests.FIXTURES / "shakespeare_sample.txt", vocab_size=1000
    ).save_pretrained(tokenizer)
    records = recipe_tests.rows(recipe_tests.TASK_FOLDERS["classification"])
    data = []
    for split, part in (("train", records[:16]), ("validation", records[16:20]), ("test", records[20:])):
        data += [f"--{split}_file", recipe_tests.write_jsonl(folder / f"{split}.jsonl", part)]
    args = [*recipe_tests.FAST, "--tokenizer", tokenizer, "--task_type", "classification", *data,
            "--checkpointing_steps", EVERY, "--cpu"]  # fmt: skip
    run_in_process([*args, "--output_dir", folder / "reference"])
    return {"args": args, "output_dir": folder / "reference"}


def run_in_process(args) -> dict:
    return run_in_process_main(finetune.main, args)


def run_in_process_main(main, args) -> dict:
    """A fine-tuning recipe's `main(args)` in this process, with Accelerate's state reset before and after."""
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        return main([*map(str, args)])
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


def draw_kill(rng: random.Random, kind: str, resumed_at: int) -> dict:
    """A moment of kind `kind` that a run resuming at step `resumed_at` (< MAX_STEPS) is sure to reach."""
    if kind == "step":  # inside the k-th optimizer step of the process: after backward, before the update
        return {"kill_at_optimizer_step": rng.randint(1, MAX_STEPS - resumed_at)}
    if kind == "evaluation":  # a validation at an epoch end, before that step's checkpoint
        evaluations = MAX_STEPS // STEPS_PER_EPOCH - resumed_at // STEPS_PER_EPOCH
        gather = (rng.randint(1, evaluations) - 1) * GATHERS_PER_EVALUATION + rng.randint(1, GATHERS_PER_EVALUATION)
        return {"kill_in_evaluation_batch": gather}
    if kind == "test-evaluation":  # the best model on the test split, after the last checkpoint
        gather = (MAX_STEPS // STEPS_PER_EPOCH - resumed_at // STEPS_PER_EPOCH) * GATHERS_PER_EVALUATION
        return {"kill_in_evaluation_batch": gather + rng.randint(1, GATHERS_PER_EVALUATION)}
    step = rng.randrange(resumed_at + EVERY, MAX_STEPS + 1, EVERY)  # inside the save: weights written, rest not
    return {"kill_in_save_of": checkpointing.checkpoint_name(step)}


def kill_and_resume(reference: dict, output_dir: Path, kinds: list[str], seed: int, capsys) -> dict:
    """Runs the recipe, SIGKILLed once per entry of `kinds` (each run resuming with `latest`), then lets it finish in
    this process. Returns the counts of the report."""
    rng = random.Random(seed)
    args = [*reference["args"], "--output_dir", output_dir, "--resume_from_checkpoint", "latest"]
    checkpoints = output_dir / "checkpoints"
    counts = {"faults_injected": 0, "runs_recovered": 0, "checkpoints_lost": 0, "resumed_at": []}
    previous = {}  # complete checkpoint -> its weights, as last seen
    for index, kind in enumerate(kinds):
        resumed_at = newest_step(output_dir)
        assert resumed_at < MAX_STEPS or kind == "test-evaluation", f"nothing left to kill in a {kind}"
        kill = draw_kill(rng, kind, resumed_at)
        result = harness.run_recipe(args, recipe="finetune", **kill)
        assert result.returncode == -signal.SIGKILL, (kind, kill, result.stderr[-3000:])
        counts["faults_injected"] += 1
        counts["runs_recovered"] += index > 0  # it started after a kill, from the newest checkpoint (checked below)
        counts["resumed_at"].append(resumed_at)
        assert_resumed_from_newest(result.stdout, resumed_at, checkpoints)
        previous = check_checkpoints_after_kill(output_dir, previous, resumed_at, counts, f"{kind} {kill}")

    resumed_at = newest_step(output_dir)
    capsys.readouterr()
    results = run_in_process(args)
    counts["runs_recovered"] += 1
    counts["resumed_at"].append(resumed_at)
    assert_resumed_from_newest(capsys.readouterr().out, resumed_at, checkpoints)
    assert not list(checkpoints.glob(".step_*"))  # the killed saves' leftovers are cleared

    expected_dir = reference["output_dir"]
    harness.assert_bitwise_equal(harness.weights(output_dir), harness.weights(expected_dir))  # the best model
    name = checkpointing.checkpoint_name(MAX_STEPS)
    harness.assert_bitwise_equal(
        harness.weights(checkpoints / name), harness.weights(expected_dir / "checkpoints" / name)
    )
    # results.json: validation after each epoch, the best, test metrics and the logged losses, all equal.
    expected = json.loads((expected_dir / finetuning.RESULTS).read_text())
    assert json.loads((output_dir / finetuning.RESULTS).read_text()) == expected
    assert json.loads(json.dumps(results)) == expected
    assert [record["step"] for record in expected["validation"]] == [4, 8] and "test" in expected
    return counts


def test_two_kills_then_an_exact_resume(reference, tmp_path, capsys):
    """The default-run version: killed inside an optimizer step, then in a checkpoint save."""
    counts = kill_and_resume(reference, tmp_path / "run", ["step", "save"], SCHEDULE_SEED, capsys)
    assert counts["faults_injected"] == 2 and counts["runs_recovered"] == 2 and counts["checkpoints_lost"] == 0
    # Killed in step 6 (steps 1-5 done, newest checkpoint step 4), then saving step 8 (steps 5-8 done, newest 6).
    assert counts["resumed_at"] == [0, 4, 6]


@pytest.mark.slow
def test_many_kills_at_random_moments_then_an_exact_resume(reference, tmp_path, capsys):
    """Eight SIGKILLs on a seeded random schedule: at least two in each of optimizer steps, evaluations and saves,
    the last one while the best model is evaluated on the test split (after the last checkpoint)."""
    rng = random.Random(SCHEDULE_SEED)
    kinds = ["step", "step", "evaluation", "evaluation", "save", "save", rng.choice(["step", "evaluation", "save"])]
    rng.shuffle(kinds)
    # The kill moments: a seed whose runs start from scratch and from every checkpoint (kills in steps 2 and 4, the
    # saves of steps 2, 6 and 8, the validations of steps 4 and 8, then the test evaluation).
    counts = kill_and_resume(reference, tmp_path / "run", [*kinds, "test-evaluation"], SCHEDULE_SEED + 25, capsys)
    assert counts["faults_injected"] == 8 and counts["runs_recovered"] == 8 and counts["checkpoints_lost"] == 0
    assert counts["resumed_at"] == [0, 0, 0, 2, 2, 4, 6, 6, MAX_STEPS]  # the last run had only the test left


def test_every_fine_tuning_fault_is_in_the_reliability_table(documented_cases):
    ids = {"fault-finetune-sigkill-step", "fault-finetune-sigkill-evaluation", "fault-finetune-sigkill-save"}
    assert not ids - documented_cases, f"docs/RELIABILITY.md has no row for {sorted(ids - documented_cases)}"
