"""`--learning_rate auto` (recipes/training/lr_range_test.py): the range test, the default rule, both fine-tuning
recipes."""

import json

import pytest
import torch
from accelerate.state import AcceleratorState
from helpers.task_fixtures import FIXTURES, POLARITY, rows
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from modeling_gpt1 import (
    GPT1OriginsConfig,
    GPT1OriginsDoubleHeadsModel,
    GPT1TaskCollator,
    GPT1TaskEncoder,
    train_gpt1_tokenizer_from_files,
)
from recipes import finetune, finetune_trainer
from recipes.core.optim import build_optimizer
from recipes.training import finetune_options, finetuning, finetuning_with_trainer, lr_range_test

CPU = torch.device("cpu")
FAST = [
    "--model_name_or_path", "tiny", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
    "--num_train_epochs", "2", "--max_length", "48", "--classifier_dropout", "0",
    "--config_overrides", "resid_pdrop=0,embd_pdrop=0,attn_pdrop=0",
]  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizer")
    train_gpt1_tokenizer_from_files(FIXTURES / "shakespeare_sample.txt", vocab_size=1000).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def polarity(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("polarity")
    records = rows("classification-movie-sentence-polarity")
    options = []
    for split, part in (("train", records[:16]), ("validation", records[16:20]), ("test", records[20:])):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(record) + "\n" for record in part))
        options += [f"--{split}_file", str(folder / f"{split}.jsonl")]
    return options


def run(*args, script=finetune) -> dict:
    """A recipe's main in this process, on a fresh Accelerate state."""
    AcceleratorState._reset_state(reset_partial_state=True)
    return script.main([str(arg) for arg in args])


def test_the_test_leaves_the_model_and_the_random_state_as_they_were_and_reads_its_curve(tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.add_special_tokens({"bos_token": "_start_", "sep_token": "_delimiter_", "cls_token": "_classify_"})
    torch.manual_seed(0)
    config = GPT1OriginsConfig.from_preset("tiny", vocab_size=len(tokenizer), task_type="classification", num_labels=2)
    model = GPT1OriginsDoubleHeadsModel(config)
    encoder = GPT1TaskEncoder(tokenizer, "classification", max_length=48, label_names=POLARITY)
    features = [encoder(row) for row in rows("classification-movie-sentence-polarity")]
    loader = DataLoader(features, batch_size=4, shuffle=True, collate_fn=GPT1TaskCollator(tokenizer))
    before = {key: value.clone() for key, value in model.state_dict().items()}
    rng = torch.random.get_rng_state()

    def make_optimizer(lr):
        return build_optimizer(model, lr, (0.9, 0.999), 0.01, CPU, embedding_lr_scale=3)

    found = lr_range_test.range_test(model, loader, make_optimizer, CPU, steps=40)
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert torch.equal(torch.random.get_rng_state(), rng)
    lrs = [point[0] for point in found.curve]
    assert lrs[0] == pytest.approx(lr_range_test.MIN_LR) and lrs == sorted(lrs)  # 6 batches, cycled
    assert found.steps == len(found.curve) <= 40
    lowest = min(found.curve, key=lambda point: point[2])
    assert found.lowest_loss_at == lowest[0] and found.learning_rate == pytest.approx(lowest[0] / 10)
    assert lr_range_test.MIN_LR / 10 <= found.learning_rate <= lr_range_test.MAX_LR / 10


def test_the_default_is_the_papers_rate_for_its_size_and_a_range_test_otherwise():
    assert finetune_options.default_learning_rate(GPT1OriginsConfig()) == 6.25e-5  # 12 x 768
    assert finetune_options.default_learning_rate(GPT1OriginsConfig.from_preset("tiny")) == "auto"
    assert (
        finetune_options.parse_learning_rate("AUTO") == "auto" and finetune_options.parse_learning_rate("5e-4") == 5e-4
    )
    args = finetune_options.parse_args(["--model_name_or_path", "tiny", "--task_type", "classification"])
    assert args.learning_rate is None  # resolved from the model's size once it is loaded
    paper = finetune_options.parse_args(
        ["--config", "finetune-paper", "--model_name_or_path", "m", "--task_type", "entailment"]
    )
    assert paper.learning_rate == 6.25e-5


BAD_RATES = [
    ("fast", "--learning_rate must be a number or \"auto\", got 'fast'"),
    ("0", "--learning_rate must be a finite number > 0, got 0.0"),
    ("-0.001", "--learning_rate must be a finite number > 0, got -0.001"),
]


@pytest.mark.parametrize(("value", "message"), BAD_RATES)
def test_a_bad_learning_rate_is_refused_at_parse_time(value, message, capsys):
    with pytest.raises(SystemExit) as raised:
        finetune_options.parse_args(
            ["--model_name_or_path", "tiny", "--task_type", "classification", "--learning_rate", value]
        )
    assert raised.value.code == 2 and message in capsys.readouterr().err


def test_auto_fine_tunes_exactly_as_a_run_given_the_rate_it_found(tokenizer_dir, polarity, tmp_path):
    common = [*FAST, "--tokenizer", tokenizer_dir, "--task_type", "classification", *polarity]
    auto = run(*common, "--output_dir", tmp_path / "auto")  # no --learning_rate: tiny is not the paper's size
    found = auto["hyperparameters"]["learning_rate_range_test"]
    assert auto["hyperparameters"]["learning_rate"] == "auto"
    assert auto["hyperparameters"]["peak_learning_rate"] == found["learning_rate"] > 0
    assert found["steps"] == len(found["curve"]) > 10
    given = run(*common, "--learning_rate", repr(found["learning_rate"]), "--output_dir", tmp_path / "given")
    assert given["hyperparameters"]["learning_rate_range_test"] is None
    assert [r["loss"] for r in given["validation"]] == [r["loss"] for r in auto["validation"]]
    assert given["test"] == auto["test"]
    ours, theirs = (
        load_file(tmp_path / "auto" / "model.safetensors"),
        load_file(tmp_path / "given" / "model.safetensors"),
    )
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)
    # The Trainer script runs the same test and trains at the same rate.
    trainer = run(*common, "--output_dir", tmp_path / "trainer", script=finetune_trainer)
    assert trainer["hyperparameters"]["learning_rate_range_test"]["curve"] == found["curve"]
    assert trainer["hyperparameters"]["peak_learning_rate"] == found["learning_rate"]


def test_a_resumed_auto_run_keeps_the_rate_its_checkpoint_found(tokenizer_dir, polarity, tmp_path, monkeypatch):
    common = [*FAST, "--tokenizer", tokenizer_dir, "--task_type", "classification", *polarity, "--learning_rate",
              "auto", "--checkpointing_steps", "2", "--output_dir", tmp_path / "run"]  # fmt: skip
    first = run(*common, "--max_steps", "4")
    found = first["hyperparameters"]["learning_rate_range_test"]

    def no_second_test(*args, **kwargs):
        raise AssertionError("the resumed run ran the range test again")

    monkeypatch.setattr(finetuning, "range_test", no_second_test)
    resumed = run(*common, "--max_steps", "6", "--resume_from_checkpoint", "latest", "--allow_resume_changes",
                  "max_steps")  # fmt: skip
    assert resumed["hyperparameters"]["learning_rate_range_test"] == found
    assert resumed["hyperparameters"]["peak_learning_rate"] == found["learning_rate"]


def test_auto_cannot_resume_a_run_trained_at_a_given_rate(tokenizer_dir, polarity, tmp_path, capsys):
    common = [*FAST, "--tokenizer", tokenizer_dir, "--task_type", "classification", *polarity, "--checkpointing_steps",
              "2", "--output_dir", tmp_path / "run"]  # fmt: skip
    run(*common, "--learning_rate", "1e-3", "--max_steps", "4")
    with pytest.raises(SystemExit) as raised:
        run(*common, "--learning_rate", "auto", "--max_steps", "6", "--resume_from_checkpoint", "latest",
            "--allow_resume_changes", "learning_rate", "max_steps")  # fmt: skip
    assert raised.value.code == 2
    assert "records no range test to resume with (it was trained at a given rate)" in capsys.readouterr().err


def curve(losses: list[float]) -> list[list[float]]:
    """A range test's [lr, loss, smoothed] points for these smoothed losses, the rate rising as the test's does."""
    steps = len(losses)
    span = lr_range_test.MAX_LR / lr_range_test.MIN_LR
    return [[lr_range_test.MIN_LR * span ** (i / (steps - 1)), loss, loss] for i, loss in enumerate(losses)]


def test_the_rule_reads_a_valley_a_flat_curve_and_one_that_cannot_tell():
    noisy_start = [0.60] * 3  # within the first SKIP steps: never read, however low
    valley = curve(noisy_start + [1.0] * 60 + [0.8] * 5 + [0.9, 1.2, 2.0] + [4.0] * 32)
    rate, lowest_at, rule = lr_range_test.choose_rate(valley)
    assert rule == "valley" and lowest_at == valley[63][0] and rate == pytest.approx(lowest_at / 10)
    flat = curve(noisy_start + [0.70, 0.69, 0.695] * 25 + [0.76] * 22)  # noise, then a rise past 5% at step 78
    rate, _, rule = lr_range_test.choose_rate(flat)
    assert rule == "flat" and rate == pytest.approx(flat[78][0] / 10)
    rate, _, rule = lr_range_test.choose_rate(curve(noisy_start + [1.0986] * 97))  # ln 3 throughout
    assert (rule, rate) == ("undecided", lr_range_test.FALLBACK_LR)


def test_both_recipes_give_the_embedding_its_scaled_rate(tokenizer_dir, polarity, tmp_path):
    """--embedding_lr_scale reaches the Accelerate loop's optimizer and Trainer's (which then uses the recipe's)."""
    common = [*FAST, "--tokenizer", tokenizer_dir, "--task_type", "classification", *polarity, "--learning_rate",
              "1e-3", "--embedding_lr_scale", "10"]  # fmt: skip
    AcceleratorState._reset_state(reset_partial_state=True)
    args = finetune_options.parse_args([str(a) for a in [*common, "--output_dir", tmp_path / "trainer"]])
    trainer, *_ = finetuning_with_trainer.build_trainer({}, args)
    embedding = trainer.model.get_input_embeddings().weight
    groups = {id(p): g for g in trainer.optimizer.param_groups for p in g["params"]}
    assert groups[id(embedding)]["lr"] == pytest.approx(1e-2) and groups[id(embedding)]["lr_scale"] == 10
    assert sum(len(g["params"]) for g in trainer.optimizer.param_groups) == len(list(trainer.model.parameters()))
    results = run(*common, "--output_dir", tmp_path / "accelerate")
    assert results["hyperparameters"]["embedding_lr_scale"] == 10
    assert results["hyperparameters"]["peak_learning_rate"] == 1e-3
