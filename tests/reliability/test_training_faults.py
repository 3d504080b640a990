"""Faults injected into training: the pre-training recipe SIGKILLed at random moments (during an optimizer step, an
evaluation, a checkpoint save) again and again in one run, and checkpoint saves that fail because the disk is full or
the folder read-only. Every resume starts from the newest complete checkpoint, the finished run equals one that was
never interrupted bit for bit (CPU, fixed seed), and no checkpoint is ever lost.

The kills reuse the recipe's own SIGKILL harness (tests/recipes/test_pretrain.py `run_recipe`). The fine-tuning
recipe gets the same test in tests/reliability/test_finetune_faults.py.
"""

import errno
import importlib
import json
import random
import signal
import sys
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from recipes import pretrain
from recipes.core import checkpointing
from recipes.core.checkpointing import MARKER, complete_checkpoints, latest_checkpoint, save_checkpoint
from recipes.core.errors import CheckpointWriteError

HARNESS = Path(__file__).resolve().parents[1] / "recipes"
if str(HARNESS) not in sys.path:
    sys.path.insert(0, str(HARNESS))
harness = importlib.import_module("test_pretrain")  # the pre-training recipe's run and SIGKILL harness

MAX_STEPS, EVERY = 8, 2  # checkpoint and evaluate every 2 steps: many places to be killed in
SCHEDULE_SEED = 20240607


def recipe_args(corpus: Path) -> list:
    return [
        *harness.FAST,
        *["--train_file", corpus, "--max_steps", MAX_STEPS, "--checkpointing_steps", EVERY, "--eval_steps", EVERY],
        *["--num_samples", "0", "--cpu"],  # on the CPU even where a GPU is: bitwise comparisons
    ]


def run_in_process(args) -> None:
    """`pretrain.main(args)` in this process, without an interpreter start-up: the reference run, the disk faults."""
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        pretrain.main([*map(str, args)])
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    tmp_path = tmp_path_factory.mktemp("reference")
    corpus = harness.small_corpus(tmp_path)
    run_in_process([*recipe_args(corpus), "--output_dir", tmp_path / "run"])
    return {"corpus": corpus, "output_dir": tmp_path / "run"}


def newest_step(output_dir: Path) -> int:
    newest = latest_checkpoint(output_dir / "checkpoints")
    return checkpointing.checkpoint_step(newest) if newest else 0


def draw_kill(rng: random.Random, kind: str, resumed_at: int) -> dict:
    """A moment of kind `kind` that a run resuming at step `resumed_at` is sure to reach."""
    if kind == "step":  # inside the k-th optimizer step of the process: after backward, before the update
        return {"kill_at_optimizer_step": rng.randint(1, MAX_STEPS - resumed_at)}
    if kind == "evaluation":  # one validation batch per evaluation; a fresh run also evaluates at step 0
        evaluations = (resumed_at == 0) + (MAX_STEPS - resumed_at) // EVERY
        return {"kill_in_evaluation_batch": rng.randint(1, evaluations)}
    step = rng.randrange(resumed_at + EVERY, MAX_STEPS + 1, EVERY)  # inside the save: weights written, rest not
    return {"kill_in_save_of": checkpointing.checkpoint_name(step)}


def assert_resumed_from_newest(stdout: str, resumed_at: int, checkpoints: Path):
    if resumed_at == 0:
        assert "No complete checkpoint" in stdout and "starting from scratch" in stdout, stdout[-2000:]
    else:
        expected = f"Resumed from {checkpoints / checkpointing.checkpoint_name(resumed_at)} at step {resumed_at}."
        assert expected in stdout, stdout[-2000:]


def check_checkpoints_after_kill(output_dir: Path, previous: dict, resumed_at: int, counts: dict, label: str) -> dict:
    """After a killed run: no complete checkpoint was damaged (those seen before are unchanged unless rotated out by a
    newer one; a lost one is counted), the newest did not go back, no partial folder is marked complete. Returns the
    complete checkpoints' weights, to compare after the next kill."""
    checkpoints = output_dir / "checkpoints"
    now = {path.name: harness.weights(path) for path in complete_checkpoints(checkpoints)}
    for name, tensors in previous.items():
        if name in now:
            harness.assert_bitwise_equal(now[name], tensors)
        elif not now or max(now) < name:
            counts["checkpoints_lost"] += 1
    assert newest_step(output_dir) >= resumed_at, f"{label}: the newest checkpoint went back"
    for path in checkpoints.glob(".step_*.tmp"):
        assert not (path / MARKER).exists(), f"{path.name} is marked complete"
    return now


def kill_and_resume(reference: dict, output_dir: Path, kinds: list[str], seed: int) -> dict:
    """Runs the recipe, SIGKILLed once per entry of `kinds` (each run resuming with `latest`), then lets it finish.
    Returns the counts of the report."""
    rng = random.Random(seed)
    args = [*recipe_args(reference["corpus"]), "--output_dir", output_dir, "--resume_from_checkpoint", "latest"]
    checkpoints = output_dir / "checkpoints"
    counts = {"faults_injected": 0, "runs_recovered": 0, "checkpoints_lost": 0}
    previous = {}  # complete checkpoint -> its weights, as last seen
    for index, kind in enumerate(kinds):
        resumed_at = newest_step(output_dir)
        kill = draw_kill(rng, kind, resumed_at)
        result = harness.run_recipe(args, **kill)
        assert result.returncode == -signal.SIGKILL, (kind, kill, result.stderr[-3000:])
        counts["faults_injected"] += 1
        counts["runs_recovered"] += index > 0  # it started after a kill, from the newest checkpoint (checked below)
        assert_resumed_from_newest(result.stdout, resumed_at, checkpoints)
        previous = check_checkpoints_after_kill(output_dir, previous, resumed_at, counts, f"{kind} {kill}")

    resumed_at = newest_step(output_dir)
    final = harness.run_recipe(args)
    assert final.returncode == 0, final.stderr[-3000:]
    counts["runs_recovered"] += 1
    assert_resumed_from_newest(final.stdout, resumed_at, checkpoints)
    assert not list(checkpoints.glob(".step_*"))  # the killed saves' leftovers are cleared

    harness.assert_bitwise_equal(harness.weights(output_dir), harness.weights(reference["output_dir"]))
    name = checkpointing.checkpoint_name(MAX_STEPS)
    harness.assert_bitwise_equal(
        harness.weights(checkpoints / name), harness.weights(reference["output_dir"] / "checkpoints" / name)
    )
    history = json.loads((output_dir / "history.json").read_text())
    expected = json.loads((reference["output_dir"] / "history.json").read_text())
    assert [(r["step"], r["loss"]) for r in history["train_history"]] == [
        (r["step"], r["loss"]) for r in expected["train_history"]
    ]
    assert history["eval_history"] == expected["eval_history"]
    return counts


def test_two_kills_then_an_exact_resume(reference, tmp_path):
    """The default-run version: killed in a checkpoint save, then inside an optimizer step."""
    counts = kill_and_resume(reference, tmp_path / "run", ["save", "step"], seed=SCHEDULE_SEED)
    assert counts == {"faults_injected": 2, "runs_recovered": 2, "checkpoints_lost": 0}


@pytest.mark.slow
def test_many_kills_at_random_moments_then_an_exact_resume(reference, tmp_path):
    """Eight SIGKILLs on a seeded random schedule: at least two in each of optimizer steps, evaluations and saves."""
    rng = random.Random(SCHEDULE_SEED)
    kinds = ["step", "step", "evaluation", "evaluation", "save", "save"]
    kinds += rng.choices(["step", "evaluation", "save"], k=2)
    rng.shuffle(kinds)
    counts = kill_and_resume(reference, tmp_path / "run", kinds, seed=SCHEDULE_SEED + 1)
    assert counts == {"faults_injected": 8, "runs_recovered": 8, "checkpoints_lost": 0}


# ------------------------------------------------------------------------------------------ a disk that fails


def failing_in(name: str, error: OSError, original):
    """`original` (torch.save, Path.mkdir, ...) that raises `error` when its path argument names `name`."""

    def wrapper(*args, **kwargs):
        if any(name in str(arg) for arg in args):
            raise error
        return original(*args, **kwargs)

    return wrapper


def test_disk_full_during_a_save_stops_the_recipe_clearly_and_resumes_exactly(reference, tmp_path, capsys):
    """torch.save raises ENOSPC inside the save of step 4: the recipe stops with one clear line (status 2), the partial
    folder is gone, step 2 is intact, and once the disk has room the run resumes from it and ends bit for bit where
    the uninterrupted run did."""
    output_dir = tmp_path / "run"
    args = [*recipe_args(reference["corpus"]), "--output_dir", output_dir]
    full = OSError(errno.ENOSPC, "No space left on device", str(output_dir / "checkpoints" / "x" / "optimizer.bin"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "save", failing_in(".step_00000004.tmp", full, torch.save))
        with pytest.raises(SystemExit) as exit_info:
            run_in_process(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error: Could not write checkpoint step_00000004 to '" in err
    assert "No space left on device (ENOSPC)" in err and "optimizer.bin" in err
    assert "The newest complete checkpoint, step_00000002, is intact" in err
    assert "continue with --resume_from_checkpoint latest" in err
    checkpoints = output_dir / "checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == ["step_00000002"]

    run_in_process([*args, "--resume_from_checkpoint", "latest"])
    assert "Resumed from" in capsys.readouterr().out
    harness.assert_bitwise_equal(harness.weights(output_dir), harness.weights(reference["output_dir"]))


@pytest.fixture
def accelerator():
    AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(4, 4)
    model, optimizer = accelerator.prepare(model, torch.optim.AdamW(model.parameters()))
    yield accelerator, model
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.mark.parametrize(
    "fault, where, message",
    [
        (OSError(errno.ENOSPC, "No space left on device"), "torch.save", r"No space left on device \(ENOSPC\)"),
        (OSError(errno.EROFS, "Read-only file system"), "mkdir", r"Read-only file system \(EROFS\)"),
        (PermissionError(errno.EACCES, "Permission denied"), "write_extra", r"Permission denied \(EACCES\)"),
        (OSError(errno.EIO, "Input/output error"), "rename", r"Input/output error \(EIO\)"),
    ],
)
def test_a_failed_save_leaves_the_previous_checkpoint_intact(
    accelerator, tmp_path, monkeypatch, fault, where, message
):
    accelerator, model = accelerator
    with torch.no_grad():
        model.weight.fill_(10)
    save_checkpoint(accelerator, tmp_path, 10, total_limit=1)
    with torch.no_grad():
        model.weight.fill_(20)
    write_extra = None
    if where == "torch.save":
        monkeypatch.setattr(torch, "save", failing_in(".step_00000020.tmp", fault, torch.save))
    elif where == "mkdir":
        monkeypatch.setattr(Path, "mkdir", failing_in(".step_00000020.tmp", fault, Path.mkdir))
    elif where == "write_extra":

        def write_extra(folder):
            raise fault

    else:
        monkeypatch.setattr(
            checkpointing.os, "replace", failing_in(".step_00000020.tmp", fault, checkpointing.os.replace)
        )
    with pytest.raises(CheckpointWriteError, match=rf"Could not write checkpoint step_00000020 to '.*': {message}"):
        save_checkpoint(accelerator, tmp_path, 20, write_extra=write_extra, total_limit=1)
    monkeypatch.undo()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["step_00000010"]  # the partial save is cleared
    with torch.no_grad():
        model.weight.zero_()
    accelerator.load_state(str(latest_checkpoint(tmp_path)))
    assert torch.all(model.weight == 10)


def test_resaving_a_step_that_fails_puts_the_old_checkpoint_back(accelerator, tmp_path, monkeypatch):
    """A resumed run saves a step again: the old folder is moved aside first, and restored if the rename fails."""
    accelerator, model = accelerator
    with torch.no_grad():
        model.weight.fill_(10)
    save_checkpoint(accelerator, tmp_path, 10)
    fault = OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(checkpointing.os, "replace", failing_in(".step_00000010.tmp", fault, checkpointing.os.replace))
    with pytest.raises(CheckpointWriteError, match=r"The newest complete checkpoint, step_00000010, is intact"):
        save_checkpoint(accelerator, tmp_path, 10)
    monkeypatch.undo()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["step_00000010"]
    with torch.no_grad():
        model.weight.zero_()
    accelerator.load_state(str(tmp_path / "step_00000010"))
    assert torch.all(model.weight == 10)


def test_every_fault_is_in_the_reliability_table(documented_cases):
    ids = {
        "fault-sigkill-step",
        "fault-sigkill-evaluation",
        "fault-sigkill-save",
        "fault-disk-full",
        "fault-read-only",
        "fault-permission-denied",
        "fault-io-error-on-rename",
        "fault-malicious-training-state",
    }
    assert not ids - documented_cases, f"docs/RELIABILITY.md has no row for {sorted(ids - documented_cases)}"
