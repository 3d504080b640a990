"""recipes/zero_shot_probe.py: GPT-1's zero-shot probe over the checkpoints of a real (tiny) pre-training run."""

import json
from collections import Counter
from pathlib import Path

import pytest
from accelerate.state import AcceleratorState
from helpers.task_fixtures import FIXTURES, rows

from recipes import evaluate_zero_shot, pretrain, zero_shot_probe

TASKS = {
    "classification": "classification-movie-sentence-polarity",
    "entailment": "entailment-presuppositions",
    "multiple_choice": "multiple-choice-social-iqa",
}


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory) -> Path:
    """6 steps of GPT-1 pre-training with a checkpoint every 2, all kept."""
    folder = tmp_path_factory.mktemp("probe")
    corpus = folder / "corpus.txt"
    corpus.write_text((FIXTURES / "shakespeare_sample.txt").read_text()[:12000])
    AcceleratorState._reset_state(reset_partial_state=True)
    pretrain.main([
        "--model_type", "gpt1", "--preset", "tiny", "--tokenizer", "train", "--vocab_size", "600", "--block_size",
        "32", "--per_device_train_batch_size", "4", "--max_steps", "6", "--checkpointing_steps", "2",
        "--checkpoints_total_limit", "5", "--eval_steps", "6", "--max_eval_samples", "8", "--num_samples", "0",
        "--train_file", str(corpus), "--output_dir", str(folder / "run"), "--no-with_tracking",
    ])  # fmt: skip
    return folder / "run"


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tasks")
    for name in TASKS.values():
        (folder / name).mkdir()
        records = rows(name)
        for split, part in (("train", records[:12]), ("test", records[12:])):
            (folder / name / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    return folder


def test_the_probe_scores_every_checkpoint_and_the_random_start(pretrained_run, task_dir, tmp_path):
    tasks = [f"{family}={name}" for family, name in TASKS.items()]
    AcceleratorState._reset_state(reset_partial_state=True)
    results = zero_shot_probe.main(
        ["--run", str(pretrained_run), "--data_dir", str(task_dir), "--tasks", *tasks, "--output_dir", str(tmp_path)]
    )
    assert results["steps"] == [0, 2, 4, 6]  # fresh weights, the checkpoints (the last is the final model's step)
    assert set(results["tasks"]) == set(TASKS) and (tmp_path / "probe.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "probe.json").read_text()) == results
    for task in results["tasks"].values():
        assert task["test_rows"] == 12 and [point["step"] for point in task["by_step"]] == [0, 2, 4, 6]
        assert all(
            0 <= point["accuracy"] <= 1 and -1 <= point["matthews_correlation"] <= 1 for point in task["by_step"]
        )
    # Step 6 is the checkpoint of the final model: the zero-shot recipe on the run folder itself agrees.
    AcceleratorState._reset_state(reset_partial_state=True)
    direct = evaluate_zero_shot.main([
        "--task", "multiple_choice", "--model", str(pretrained_run), "--data_file",
        str(task_dir / TASKS["entailment"] / "test.jsonl"), "--output_file", str(tmp_path / "direct.json"),
    ])  # fmt: skip
    last = results["tasks"]["entailment"]["by_step"][-1]
    assert last["accuracy"] == direct["metrics"]["accuracy_tokens"]
    train, test = rows(TASKS["entailment"])[:12], rows(TASKS["entailment"])[12:]
    counts = Counter(row["label"] for row in train)
    majority = min(counts, key=lambda label: (-counts[label], label))
    assert results["majority"]["entailment"] == sum(row["label"] == majority for row in test) / len(test)


def test_a_family_without_a_heuristic_and_a_run_without_a_model_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        zero_shot_probe.main(["--run", str(tmp_path), "--tasks", "similarity=answers"])
    assert raised.value.code == 2 and "['similarity'] has no zero-shot heuristic" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:
        zero_shot_probe.main(["--run", str(tmp_path), "--tasks", "entailment=x"])
    assert raised.value.code == 2
    assert "is not a finished pre-training run: it has no config.json" in capsys.readouterr().err
