"""Hostile runs: two runs on one output folder, `--overwrite_output_dir` with a mistyped input, SIGTERM and SIGINT
from a scheduler or a user, resumes that are not the run that wrote the checkpoint (other options, an edited corpus,
other task labels, another output folder), damaged checkpoint state, and options out of range. Nothing is lost, no
result is silently wrong, and each case is a one-line error with exit status 2 (a stop on a signal: 128 + the
signal), raised before any training time is spent.

The pre-training runs are tests/recipes/test_pretrain.py's tiny ones (FAST), on the first 6,000 characters of the
Shakespeare sample; fine-tuning runs are tests/reliability/test_finetune_faults.py's.
"""

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import test_finetune_faults as finetune_faults
from test_training_faults import harness, run_in_process

from recipes import finetune, pretrain
from recipes.core import checkpointing
from recipes.core.checkpointing import latest_checkpoint
from recipes.core.errors import RecipeError
from recipes.core.run_lock import LOCK
from recipes.training import finetune_options, finetuning

MAX_STEPS, EVERY = 6, 2
CASES = set()  # the case ids tried here, for the table check at the end


def case(name: str):
    CASES.add(name)
    return name


def recipe_args(corpus: Path, output_dir: Path, *extra) -> list:
    return [
        *harness.FAST,
        *["--train_file", corpus, "--max_steps", MAX_STEPS, "--checkpointing_steps", EVERY, "--eval_steps", EVERY],
        *["--num_samples", "0", "--cpu", "--output_dir", output_dir, *extra],
    ]


def run_with_signal(args, signals_at_step: dict, recipe: str = "pretrain", wait_for: Path | None = None):
    """`python -m recipes.<recipe> ARGS` in a subprocess that sends itself `signals_at_step[k]` (a list of signal
    names) inside its k-th optimizer step (after backward, before the update); `wait_for`: the first step waits until
    that file exists (a run that is surely running while the test does something else)."""
    runner = textwrap.dedent(
        f"""
        import os, signal, sys, time, torch
        plan, wait_for, calls = {signals_at_step!r}, {os.fspath(wait_for) if wait_for else None!r}, 0
        original_step = torch.optim.AdamW.step
        def step(self, *args, **kwargs):
            global calls
            calls += 1
            while wait_for and calls == 1 and not os.path.exists(wait_for):
                time.sleep(0.05)
            for name in plan.get(calls, []):
                os.kill(os.getpid(), getattr(signal, name))
            return original_step(self, *args, **kwargs)
        torch.optim.AdamW.step = step
        from recipes import {recipe} as recipe
        recipe.main(sys.argv[1:])
        """
    )
    command = [sys.executable, "-c", runner, *map(str, args)]
    if wait_for is not None:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=harness.REPO)
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=harness.REPO)


def error_of(recipe_main, args, capsys) -> str:
    """The one-line error of a recipe run in this process that must stop with status 2."""
    with pytest.raises(SystemExit) as stopped:
        run_in_process_with(recipe_main, args)
    assert stopped.value.code == 2
    return capsys.readouterr().err


def run_in_process_with(recipe_main, args):
    return (run_in_process if recipe_main is pretrain.main else finetune_faults.run_in_process)(args)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return harness.small_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, corpus) -> Path:
    """An uninterrupted run: its checkpoints every 2 steps, its final model and history."""
    output_dir = tmp_path_factory.mktemp("reference") / "run"
    run_in_process(recipe_args(corpus, output_dir))
    return output_dir


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    (target / LOCK).unlink(missing_ok=True)
    return target


def history(output_dir: Path) -> dict:
    record = json.loads((output_dir / "history.json").read_text())
    for entry in record["train_history"]:
        entry.pop("tokens_per_second", None)
    return record


# Output folders ---------------------------------------------------------------------------------------------------


def test_overwrite_with_a_mistyped_input_deletes_nothing(reference, tmp_path, capsys):
    output_dir = copy_run(reference, tmp_path / "run")
    before = sorted(path.name for path in (output_dir / "checkpoints").iterdir())
    args = recipe_args(tmp_path / "mistyped.txt", output_dir, "--overwrite_output_dir")
    message = error_of(pretrain.main, args, capsys)
    assert "mistyped.txt" in message and "does not exist" in message, message
    assert sorted(path.name for path in (output_dir / "checkpoints").iterdir()) == before
    assert not (output_dir / LOCK).exists()  # the failed run released its lock
    case("run-overwrite-bad-input")


def test_overwrite_sets_the_earlier_checkpoints_aside_until_its_own_first(reference, corpus, tmp_path):
    output_dir = copy_run(reference, tmp_path / "run")
    earlier = harness.weights(latest_checkpoint(output_dir / "checkpoints"))
    # Killed in its first step: the earlier run's checkpoints are set aside, not lost.
    result = harness.run_recipe(recipe_args(corpus, output_dir, "--overwrite_output_dir"), kill_at_optimizer_step=1)
    assert result.returncode == -signal.SIGKILL
    replaced = output_dir / "checkpoints.replaced"
    harness.assert_bitwise_equal(harness.weights(latest_checkpoint(replaced)), earlier)
    assert latest_checkpoint(output_dir / "checkpoints") is None  # `latest` never resumes the replaced run
    # The next overwriting run takes over the stale lock of the killed one and deletes them after its first save.
    result = harness.run_recipe(recipe_args(corpus, output_dir, "--overwrite_output_dir"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Taking over the stale lock" in result.stdout
    assert not replaced.exists()
    case("run-overwrite-sets-aside")
    case("run-lock-stale-killed")


def test_a_second_run_on_the_same_folder_is_refused_and_the_first_finishes(corpus, tmp_path, capsys):
    output_dir, go = tmp_path / "run", tmp_path / "go"
    first = run_with_signal(recipe_args(corpus, output_dir), {}, wait_for=go)
    try:
        for _ in range(600):  # the first run holds the lock once it has started
            if (output_dir / LOCK).exists():
                break
            first.poll()
            assert first.returncode is None, first.stderr.read()[-3000:]
            time.sleep(0.1)
        message = error_of(pretrain.main, recipe_args(corpus, output_dir, "--overwrite_output_dir"), capsys)
        assert "is in use by another run (process" in message and f"on {socket.gethostname()}" in message, message
    finally:
        go.touch()
        stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr[-3000:]
    assert (output_dir / "model.safetensors").is_file() and (output_dir / "history.json").is_file()
    assert checkpointing.checkpoint_step(latest_checkpoint(output_dir / "checkpoints")) == MAX_STEPS
    assert not (output_dir / LOCK).exists()
    case("run-two-on-one-folder")


def write_lock(output_dir: Path, **holder):
    output_dir.mkdir(parents=True, exist_ok=True)
    base = {"host": socket.gethostname(), "started_at": "2026-12-02T00:00:00", "command": "python -m recipes.pretrain"}
    (output_dir / LOCK).write_text(json.dumps({**base, **holder}))


def test_a_lock_of_another_host_is_refused_naming_the_file_to_delete(corpus, tmp_path, capsys):
    write_lock(tmp_path / "run", host="gpu-node-17", pid=1234)
    message = error_of(pretrain.main, recipe_args(corpus, tmp_path / "run"), capsys)
    assert "process 1234 on gpu-node-17" in message and f"delete '{tmp_path / 'run' / LOCK}'" in message, message
    case("run-lock-other-host")


def test_a_lock_of_a_live_process_is_refused(corpus, tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = Path(f"/proc/{holder.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        write_lock(tmp_path / "run", pid=holder.pid, process_start=start)
        message = error_of(pretrain.main, recipe_args(corpus, tmp_path / "run"), capsys)
        assert f"process {holder.pid} on {socket.gethostname()}" in message, message
    finally:
        holder.kill()
    case("run-lock-live")


def test_a_lock_whose_pid_was_reused_is_stale(tmp_path):
    from recipes.core.run_lock import RunLock

    write_lock(tmp_path, pid=os.getpid(), process_start="1")  # this pid, but not this process's start time
    said = []
    RunLock.acquire(tmp_path, say=said.append).release()
    assert said and "Taking over the stale lock" in said[0]
    case("run-lock-pid-reused")


def test_an_output_folder_that_cannot_be_written_is_refused_before_work(corpus, tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    message = error_of(pretrain.main, recipe_args(corpus, tmp_path / "a-file" / "run"), capsys)
    assert "cannot be written" in message and "a-file/run" in message, message
    case("run-output-not-writable")


def test_an_unreadable_lock_is_refused_while_fresh_and_stale_once_old(tmp_path):
    from recipes.core.run_lock import UNREADABLE_STALE_AFTER, RunLock

    (tmp_path / LOCK).write_text("")  # created, never written: its process died in between, or is writing it now
    with pytest.raises(RecipeError, match="is in use by another run \\(a run whose lock file cannot be read\\)"):
        RunLock.acquire(tmp_path)
    old = time.time() - UNREADABLE_STALE_AFTER - 1
    os.utime(tmp_path / LOCK, (old, old))
    said = []
    RunLock.acquire(tmp_path, say=said.append).release()
    assert said and "Taking over the unreadable lock" in said[0]
    case("run-lock-unreadable")


# Preemption -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "status"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_finishes_the_step_saves_it_and_the_resume_is_exact(name, status, reference, corpus, tmp_path):
    output_dir = tmp_path / "run"
    args = recipe_args(corpus, output_dir, "--resume_from_checkpoint", "latest")
    stopped = run_with_signal(args, {3: [name]})  # inside step 3: between the checkpoints of steps 2 and 4
    assert stopped.returncode == status, stopped.stderr[-3000:]
    assert f"{name} received: finishing the current optimizer step" in stopped.stderr
    assert f"Stopped by {name} after step 3 of {MAX_STEPS}" in stopped.stderr, stopped.stderr[-3000:]
    assert checkpointing.checkpoint_step(latest_checkpoint(output_dir / "checkpoints")) == 3
    assert not (output_dir / LOCK).exists()
    resumed = harness.run_recipe(args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 3." in resumed.stdout
    harness.assert_bitwise_equal(harness.weights(output_dir), harness.weights(reference))
    ours, theirs = history(output_dir), history(reference)
    assert ours["train_history"] == theirs["train_history"] and ours["eval_history"] == theirs["eval_history"]
    case(f"run-{name.lower()}")


def test_a_second_sigterm_stops_at_once_and_loses_no_checkpoint(corpus, tmp_path):
    output_dir = tmp_path / "run"
    stopped = run_with_signal(recipe_args(corpus, output_dir), {3: ["SIGTERM", "SIGTERM"]})
    assert stopped.returncode == -signal.SIGTERM, stopped.stderr[-3000:]
    assert checkpointing.checkpoint_step(latest_checkpoint(output_dir / "checkpoints")) == 2
    case("run-sigterm-twice")


# Resumes ----------------------------------------------------------------------------------------------------------


def resume_args(corpus, output_dir, *extra):
    return recipe_args(corpus, output_dir, "--resume_from_checkpoint", "latest", *extra)


def test_a_resume_with_other_options_is_refused_naming_each(reference, corpus, tmp_path, capsys):
    output_dir = copy_run(reference, tmp_path / "run")
    args = resume_args(corpus, output_dir, "--learning_rate", "1e-3", "--adam_beta1", "0.8")
    message = error_of(pretrain.main, args, capsys)
    assert "--learning_rate: checkpoint 0.003, this run 0.001" in message, message
    assert "--adam_beta1: checkpoint 0.9, this run 0.8" in message
    assert "--allow_resume_changes learning_rate adam_beta1" in message
    case("resume-other-options")


def test_a_resume_with_another_seed_or_batch_is_refused(reference, corpus, tmp_path, capsys):
    output_dir = copy_run(reference, tmp_path / "run")
    message = error_of(pretrain.main, resume_args(corpus, output_dir, "--seed", "1"), capsys)
    assert "seed: checkpoint 0, this run 1" in message, message
    case("resume-other-layout")


def test_a_deliberate_change_is_applied_and_recorded(reference, corpus, tmp_path):
    output_dir = copy_run(reference, tmp_path / "run")
    for later in (output_dir / "checkpoints").iterdir():  # resume from step 4 of 6, and run to 8
        if checkpointing.checkpoint_step(later) > 4:
            shutil.rmtree(later)
    changes = ["--max_steps", 8, "--learning_rate", "1e-3", "--allow_resume_changes", "learning_rate", "max_steps"]
    result = harness.run_recipe(resume_args(corpus, output_dir, *changes))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--learning_rate 0.003 -> 0.001" in result.stdout, result.stdout[-3000:]
    record = history(output_dir)
    assert {change["option"] for change in record["resume_changes"]} == {"learning_rate", "max_steps"}
    assert all(change["step"] == 4 for change in record["resume_changes"])
    # The cosine schedule over 8 steps from the new peak (no warm-up in so short a run): the logged learning rate.
    logged = {entry["step"]: entry["lr"] for entry in record["train_history"]}
    assert logged[6] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 6 / 8)))
    case("resume-allowed-change")


def test_allowing_a_change_that_shapes_the_run_is_refused(capsys):
    with pytest.raises(SystemExit):
        pretrain.parse_args(["--preset", "tiny", "--allow_resume_changes", "seed"])
    assert "--allow_resume_changes seed: a resumed run can change only" in capsys.readouterr().err
    case("resume-allow-unchangeable")


def test_a_resume_over_an_edited_corpus_is_refused(reference, corpus, tmp_path, capsys):
    output_dir = copy_run(reference, tmp_path / "run")
    edited = tmp_path / "edited.txt"
    text = corpus.read_text()
    edited.write_text(text.replace("the", "teh", 1))  # one word changed: the same size, other tokens
    message = error_of(pretrain.main, resume_args(edited, output_dir), capsys)
    assert "on other data (data: checkpoint " in message, message
    case("resume-edited-corpus")


@pytest.mark.parametrize(
    ("name", "damage", "file", "what"),
    [("resume-truncated-rng-state", "truncate", "random_states_0.pkl", "changed"),
     ("resume-damaged-optimizer", "flip", "optimizer.bin", "changed"),
     ("resume-missing-scheduler", "delete", "scheduler.bin", "missing"),
     ("resume-damaged-weights", "flip", "model.safetensors", "changed")],
)  # fmt: skip
def test_a_damaged_checkpoint_is_refused_naming_the_file(
    name, damage, file, what, reference, corpus, tmp_path, capsys
):
    output_dir = copy_run(reference, tmp_path / "run")
    path = latest_checkpoint(output_dir / "checkpoints") / file
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :])
    else:
        path.unlink()
    message = error_of(pretrain.main, resume_args(corpus, output_dir), capsys)
    assert f"is damaged: {file} ({what}) since it was saved" in message, message
    case(name)


def test_a_damaged_marker_is_refused_naming_the_checkpoint(reference, corpus, tmp_path, capsys):
    output_dir = copy_run(reference, tmp_path / "run")
    newest = latest_checkpoint(output_dir / "checkpoints")
    (newest / checkpointing.MARKER).write_text('{"step": 6, "fil')
    message = error_of(pretrain.main, resume_args(corpus, output_dir), capsys)
    assert f"The marker checkpoint_complete.json of checkpoint '{newest}' cannot be read" in message, message
    case("resume-damaged-marker")


# Fine-tuning resumes ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finetune_reference(tmp_path_factory):
    return finetune_faults.uninterrupted_run(tmp_path_factory.mktemp("finetune"))


def test_a_fine_tuning_resume_belongs_to_its_own_output_folder(finetune_reference, tmp_path, capsys):
    checkpoint = latest_checkpoint(finetune_reference["output_dir"] / "checkpoints")
    args = [*finetune_reference["args"], "--output_dir", tmp_path / "other", "--resume_from_checkpoint", checkpoint]
    message = error_of(finetune.main, args, capsys)
    assert "is not a checkpoint of --output_dir" in message and "Resume with that --output_dir" in message, message
    case("resume-finetune-other-output-dir")


def test_a_fine_tuning_resume_over_changed_labels_is_refused(finetune_reference, tmp_path, capsys):
    output_dir = copy_run(finetune_reference["output_dir"], tmp_path / "run")
    args = list(finetune_reference["args"])
    train = Path(args[args.index("--train_file") + 1])
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    rows[0]["label"] = next(row["label"] for row in rows if row["label"] != rows[0]["label"])
    changed = tmp_path / "train.jsonl"
    changed.write_text("".join(json.dumps(row) + "\n" for row in rows))
    args[args.index("--train_file") + 1] = changed
    message = error_of(
        finetune.main, [*args, "--output_dir", output_dir, "--resume_from_checkpoint", "latest"], capsys
    )
    assert "on other data (data: checkpoint " in message, message
    case("resume-finetune-changed-labels")


def test_a_sigterm_in_fine_tuning_saves_the_step_and_the_resume_is_exact(finetune_reference, tmp_path):
    output_dir = tmp_path / "run"
    args = [*finetune_reference["args"], "--output_dir", output_dir, "--resume_from_checkpoint", "latest"]
    stopped = run_with_signal(args, {5: ["SIGTERM"]}, recipe="finetune")  # step 5: after epoch 1, off the schedule
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert "Stopped by SIGTERM after step 5 of 8" in stopped.stderr, stopped.stderr[-3000:]
    resumed = harness.run_recipe(args, recipe="finetune")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 5." in resumed.stdout
    expected_dir = finetune_reference["output_dir"]
    harness.assert_bitwise_equal(harness.weights(output_dir), harness.weights(expected_dir))  # the best model
    expected = json.loads((expected_dir / finetuning.RESULTS).read_text())
    assert json.loads((output_dir / finetuning.RESULTS).read_text()) == expected
    case("run-sigterm-finetune")


def test_the_trainer_recipe_holds_the_lock_too(finetune_reference, tmp_path, capsys):
    from recipes import finetune_trainer

    write_lock(tmp_path / "run", host="gpu-node-17", pid=1234)
    with pytest.raises(SystemExit) as stopped:
        finetune_faults.run_in_process_main(
            finetune_trainer.main, [*finetune_reference["args"], "--output_dir", tmp_path / "run"]
        )
    assert stopped.value.code == 2
    assert "is in use by another run (process 1234 on gpu-node-17" in capsys.readouterr().err
    case("run-lock-trainer-recipe")


# Options ----------------------------------------------------------------------------------------------------------

BAD_OPTIONS = {
    "option-learning-rate-zero": (["--learning_rate", "0"], "--learning_rate must be a finite number > 0, got 0.0"),
    "option-learning-rate-nan": (["--learning_rate", "nan"], "--learning_rate must be a finite number > 0, got nan"),
    "option-learning-rate-inf": (["--learning_rate", "inf"], "--learning_rate must be a finite number > 0, got inf"),
    "option-embedding-lr-scale-zero": (
        ["--embedding_lr_scale", "0"],
        "--embedding_lr_scale must be a finite number > 0, got 0.0",
    ),
    "option-embedding-lr-scale-nan": (
        ["--embedding_lr_scale", "nan"],
        "--embedding_lr_scale must be a finite number > 0, got nan",
    ),
    "option-weight-decay-negative": (["--weight_decay", "-0.1"], "--weight_decay must be at least 0, got -0.1"),
    "option-weight-decay-nan": (["--weight_decay", "nan"], "--weight_decay must be a finite number, got nan"),
    "option-max-grad-norm-negative": (["--max_grad_norm", "-1"], "--max_grad_norm must be at least 0, got -1.0"),
    "option-max-grad-norm-nan": (["--max_grad_norm", "nan"], "--max_grad_norm must be a finite number, got nan"),
    "option-beta-one": (["--adam_beta2", "1"], "--adam_beta2 must be in [0, 1), got 1.0"),
    "option-beta-nan": (["--adam_beta1", "nan"], "--adam_beta1 must be in [0, 1), got nan"),
    "option-warmup-negative": (["--num_warmup_steps", "-1"], "--num_warmup_steps must be at least 0, got -1"),
    "option-warmup-longer-than-max-steps": (
        ["--num_warmup_steps", "50", "--max_steps", "10"],
        "--num_warmup_steps 50 is more than --max_steps 10",
    ),
    "option-warmup-ratio-out-of-range": (["--warmup_ratio", "1.5"], "--warmup_ratio must be in [0, 1), got 1.5"),
    "option-checkpointing-steps-negative": (["--checkpointing_steps", "-3"], "--checkpointing_steps must be"),
    "option-checkpoints-total-limit-zero": (
        ["--checkpoints_total_limit", "0"],
        "--checkpoints_total_limit must be at least 1, got 0",
    ),
    "option-max-steps-zero": (["--max_steps", "0"], "--max_steps must be at least 1, got 0"),
    "option-batch-size-zero": (["--per_device_train_batch_size", "0"], "must be at least 1, got 0"),
    "option-accumulation-zero": (["--gradient_accumulation_steps", "0"], "must be at least 1, got 0"),
    "option-logging-steps-zero": (["--logging_steps", "0"], "--logging_steps must be at least 1, got 0"),
}


@pytest.mark.parametrize("recipe", ["pretrain", "finetune"])
@pytest.mark.parametrize("name", sorted(BAD_OPTIONS))
def test_an_option_out_of_range_stops_the_recipe_before_any_work(recipe, name, capsys):
    options, message = BAD_OPTIONS[name]
    required = (
        ["--preset", "tiny"] if recipe == "pretrain" else ["--model_name_or_path", "tiny", "--task_type", "entailment"]
    )
    parse = pretrain.parse_args if recipe == "pretrain" else finetune_options.parse_args
    with pytest.raises(SystemExit) as stopped:
        parse([*required, *options])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    case(name)


def test_a_warmup_longer_than_the_epochs_is_refused_before_training(corpus, tmp_path, capsys):
    args = [*recipe_args(corpus, tmp_path / "run"), "--num_warmup_steps", "100"]
    args.remove("--max_steps")
    args.remove(MAX_STEPS)
    message = error_of(pretrain.main, args, capsys)
    assert "--num_warmup_steps 100 is more than the run's" in message, message
    assert not (tmp_path / "run" / "checkpoints").exists()
    case("option-warmup-longer-than-epochs")


def test_samples_longer_than_the_context_are_refused_before_training(corpus, tmp_path, capsys):
    args = [*recipe_args(corpus, tmp_path / "run"), "--num_samples", "1", "--sample_length", "1000"]
    args += ["--sample_prompts", "ROMEO.\n", "To be, or not to be", "The king"]  # given prompts are measured
    message = error_of(pretrain.main, args, capsys)
    assert "--sample_length 1000 plus the longest sample prompt's" in message, message
    assert not (tmp_path / "run" / "checkpoints").exists()
    case("option-sample-length-past-context")


def test_push_to_hub_without_a_token_or_with_a_bad_name_is_refused_before_training(
    corpus, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no stored token either
    args = [*recipe_args(corpus, tmp_path / "run"), "--push_to_hub"]
    message = error_of(pretrain.main, args, capsys)
    assert "--push_to_hub 'run' needs a Hub token, and none is set" in message, message
    message = error_of(pretrain.main, [*args, "--hub_model_id", "me/my model"], capsys)
    assert "--push_to_hub: 'me/my model' is not a Hub repository name" in message, message
    assert not (tmp_path / "run").exists()
    case("option-push-to-hub-no-token")
    case("option-push-to-hub-bad-name")


def test_every_run_case_is_in_the_reliability_table(documented_cases):
    assert CASES, "run the whole module"
    missing = sorted(CASES - documented_cases)
    assert not missing, f"docs/RELIABILITY.md has no row for {missing}"
