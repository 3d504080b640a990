"""recipes/ablation.py end to end on the committed task fixtures (split 16 / 4 / 4) with a tiny random "pre-trained"
GPT-1: every variant on two families, one epoch, then ablation.json and the plot; a second call reuses the runs."""

import json
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsLMHeadModel, train_gpt1_tokenizer_from_files
from recipes import ablation
from recipes.training import ablation_study

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture(autouse=True)
def restore_state():
    """The ablation sets the thread count (--threads) and leaves Accelerate's state behind: both restored."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    AcceleratorState._reset_state(reset_partial_state=True)


def folder_of(family: str) -> str:
    return dict(entry.split("=") for entry in ablation_study.DEFAULT_TASKS)[family]


def test_the_bootstrap_is_paired_and_its_intervals_hold_the_estimate():
    labels = ["a", "b"] * 50
    right = list(labels)
    wrong_fifth = [label if i % 5 else {"a": "b", "b": "a"}[label] for i, label in enumerate(labels)]
    result = ablation_study.bootstrap(labels, {"majority": [["a"] * 100], "paper": [right, wrong_fifth]}, rounds=200)
    accuracy = result["variants"]["paper"]["accuracy"]
    assert accuracy[0] == pytest.approx(0.9) and accuracy[1] <= 0.9 <= accuracy[2] and accuracy[2] <= 1.0
    assert result["variants"]["majority"]["accuracy"][0] == 0.5
    assert result["differences"]["paper - majority"]["accuracy"][0] == pytest.approx(0.4)
    assert result["differences"]["paper - majority"]["accuracy"][1] > 0  # beyond its interval


def test_ablation_end_to_end(tmp_path):
    data_dir = tmp_path / "tasks"
    for name in (entry.split("=")[1] for entry in ablation_study.DEFAULT_TASKS):
        rows = (FIXTURES / "tasks" / f"{name}.jsonl").read_text().splitlines(keepends=True)
        (data_dir / name).mkdir(parents=True)
        for split, part in (("train", rows[:16]), ("validation", rows[16:20]), ("test", rows[20:])):
            (data_dir / name / f"{split}.jsonl").write_text("".join(part))
    pretrained = tmp_path / "pretrained"
    tokenizer = train_gpt1_tokenizer_from_files(FIXTURES / "shakespeare_sample.txt", vocab_size=1000)
    GPT1OriginsLMHeadModel(GPT1OriginsConfig.from_preset("tiny", vocab_size=len(tokenizer))).save_pretrained(
        pretrained
    )
    tokenizer.save_pretrained(pretrained)

    output_dir = tmp_path / "ablation"
    argv = [
        "--pretrained", pretrained, "--data_dir", data_dir, "--output_dir", output_dir,
        "--families", "classification", "similarity", "--num_train_epochs", "1", "--batch_size", "4",
        "--max_length", "48", "--learning_rate", "1e-3",
    ]  # fmt: skip
    result = ablation.main([str(item) for item in argv])

    saved = json.loads((output_dir / "ablation.json").read_text())
    assert saved["summary"] == result["summary"]
    assert {(run["family"], run["variant"]) for run in saved["runs"]} == {
        (family, variant) for family in ("classification", "similarity") for variant in ablation_study.VARIANTS
    }
    for run in saved["runs"]:
        assert run["metric"] == "accuracy" and 0 <= run["test"] <= 1 and run["test_rows"] == 4
        # The saved test predictions give the run's own test accuracy.
        labels = [
            row["label"] for row in ablation_study.read_jsonl(data_dir / folder_of(run["family"]) / "test.jsonl")
        ]
        assert len(run["predictions"]) == 4
        assert sum(p == label for p, label in zip(run["predictions"], labels)) / 4 == pytest.approx(run["test"])
    for family in ("classification", "similarity"):
        summary = saved["summary"][family]
        assert set(summary["variants"]) == {"majority", *ablation_study.VARIANTS} and summary["test_rows"] == 4
        paper = [run for run in saved["runs"] if run["family"] == family and run["variant"] == "paper"][0]
        value, low, high = summary["variants"]["paper"]["accuracy"]
        assert value == pytest.approx(paper["test"]) and low <= value <= high
        assert summary["variants"]["majority"]["matthews_correlation"] == [0.0, 0.0, 0.0]
        difference = summary["differences"]["paper - random-init"]["accuracy"][0]
        random_init = summary["variants"]["random-init"]["accuracy"][0]
        assert difference == pytest.approx(value - random_init)
        assert set(summary["differences"]) >= {"paper - no-lm-loss", "paper - frozen-body", "paper - majority"}
    assert (output_dir / "ablation.png").read_bytes()[:4] == b"\x89PNG"
    assert (output_dir / "random-init" / "config.json").exists()
    assert not (output_dir / "runs" / "classification" / "paper-seed0" / "model.safetensors").exists()

    again = ablation.main([str(item) for item in argv])  # every results.json is reused: nothing trains
    assert all(run["seconds"] is None for run in again["runs"])
    assert again["summary"] == result["summary"]
