"""What the fine-tuning recipes report (recipes/training/task_setup.py, recipes/evaluation/metrics): the
majority-class baseline on every
evaluation split, F1 on a declared positive class (never on whichever class sorts second), macro-F1, the refused
positive labels, and recipes/finetune_trainer.py's results.json in the layout and types of recipes/finetune.py's.

The fixtures are split 16 / 4 / 4 as in test_finetune.py; every expected value is worked out by hand in a comment."""

import json
import math
from pathlib import Path

import pytest
from datasets import DatasetDict
from test_finetune import FAST, FIXTURES, TASK_FOLDERS, rows, run, write_jsonl

from modeling_gpt1 import train_gpt1_tokenizer_from_files
from recipes import finetune, finetune_trainer
from recipes.core.errors import RecipeError
from recipes.data import tasks as task_data
from recipes.evaluation.metrics import compute_task_metrics
from recipes.training import task_setup

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def split_files(folder: Path, records: list[dict]) -> list[str]:
    """--train_file, --validation_file, --test_file options over records[:16], [16:20], [20:]."""
    options = []
    for split, part in (("train", records[:16]), ("validation", records[16:20]), ("test", records[20:])):
        options += [f"--{split}_file", str(write_jsonl(folder / f"{split}.jsonl", part))]
    return options


def load_splits(family: str, folder: Path, records: list[dict], **kwargs) -> task_data.TaskData:
    files = split_files(folder, records)
    return task_data.load_task_data(family, train_files=[files[1]], validation_files=[files[3]], test_files=[files[5]],
                                    **kwargs)  # fmt: skip


def binary_entailment(records: list[dict]) -> list[dict]:
    """The entailment fixture as a 2-class task, entailment / non-entailment: the names sort entailment first."""
    return [{**row, "label": "entailment" if row["label"] == "entailment" else "non-entailment"} for row in records]


def classes(names, family="classification") -> task_data.TaskData:
    """A task with these class names (or 2 integer classes without names, for names=None) and no rows."""
    return task_data.TaskData(DatasetDict(), family, "label", names, len(names or (0, 1)), None, "accuracy", "here")


# ---------------------------------------------------------------------------------------------------------------------
# The positive class of a 2-class task.


@pytest.mark.parametrize(
    ("names", "positive", "chosen_by"),
    [
        (("negative", "positive"), "positive", "a class named 'positive'"),  # SST-2
        (("entailment", "not_entailment"), "entailment", "a class named 'entailment'"),  # RTE, QNLI: id 0
        (("entailment", "non-entailment"), "entailment", "a class named 'entailment'"),
        (("not_equivalent", "equivalent"), "equivalent", "a class named 'equivalent'"),  # MRPC
        (("entails", "neutral"), "entails", "a class named 'entails'"),  # SciTail
        (("Yes", "No"), "Yes", "a class named 'Yes'"),  # case aside
        (("false", "true"), "true", "a class named 'true'"),
        (("not spam", "spam"), "spam", "'not spam' negates 'spam'"),
        (("toxic", "non-toxic"), "toxic", "'non-toxic' negates 'toxic'"),
        (None, "1", "a class named '1'"),  # integer labels without names
    ],
)
def test_the_default_positive_class(names, positive, chosen_by):
    chosen = task_setup.positive_label(classes(names), None)
    assert (chosen.name, chosen.id) == (positive, list(task_setup.class_names(classes(names))).index(positive))
    assert chosen.chosen_by == f"the default rule: {chosen_by}"


@pytest.mark.parametrize(
    ("names", "why"),
    [
        (("ham", "spam"), "neither is positive by the default rule"),
        (("1", "2"), "neither is positive by the default rule"),  # Yelp polarity: "1" is its negative class
        (("contradiction", "neutral"), "neither is positive by the default rule"),
        (("true", "yes"), "both are positive by name"),
    ],
)
def test_no_guess_when_the_rule_cannot_tell(names, why):
    with pytest.raises(RecipeError, match=rf"2 classes, \['{names[0]}', '{names[1]}'\], and {why} \(the class named "):
        task_setup.positive_label(classes(names), None)
    given = task_setup.positive_label(classes(names), names[0])  # --positive_label decides
    assert given.as_dict() == {"name": names[0], "id": 0, "chosen_by": "--positive_label"}


def test_bad_positive_labels():
    with pytest.raises(RecipeError, match=r"--positive_label 'Positive' is not one of the classes of this task: "
                                          r"\['negative', 'positive'\]. Did you mean 'positive'\?"):  # fmt: skip
        task_setup.positive_label(classes(("negative", "positive")), "Positive")
    with pytest.raises(RecipeError, match=r"--positive_label 'maybe' is not one of the classes of this task: \['0', "):
        task_setup.positive_label(classes(None), "maybe")
    three = classes(("entailment", "neutral", "contradiction"), "entailment")
    assert task_setup.positive_label(three, None) is None  # macro-F1 only
    with pytest.raises(RecipeError, match=r"'neutral': this entailment task has 3 classes .* macro_f1, the mean over"):
        task_setup.positive_label(three, "neutral")
    choices = task_data.TaskData(DatasetDict(), "multiple_choice", "label", None, 1, 3, "accuracy", "here")
    with pytest.raises(RecipeError, match=r"'0': this multiple_choice task has no classes \(its labels are choice"):
        task_setup.positive_label(choices, "0")
    scores = task_data.TaskData(DatasetDict(), "similarity", "score", None, 1, None, "pearson", "here")
    with pytest.raises(RecipeError, match=r"this similarity task has no classes \(its labels are scores \(regression"):
        task_setup.positive_label(scores, "1")


# ---------------------------------------------------------------------------------------------------------------------
# The majority-class baseline, F1 and macro-F1 on the fixtures.


def test_majority_baseline_on_validation_and_test(tmp_path):
    task = load_splits("classification", tmp_path, rows(TASK_FOLDERS["classification"]))
    positive = task_setup.positive_label(task, None)
    baseline = task_setup.majority_metrics(task, positive)
    # Training labels: 10 negative, 6 positive -> always "negative" (id 0). F1 of "positive": no TP -> 0; MCC of a
    # constant answer: 0.
    assert list(baseline) == ["prediction", "validation", "test"] and baseline["prediction"] == "negative"
    # validation: negative, negative, positive, positive -> 2 of 4 right; negative: TP 2, FP 2, FN 0 -> 4/6;
    # positive: 0 -> macro (2/3 + 0) / 2
    expected = {"accuracy": 2 / 4, "f1": 0.0, "macro_f1": 1 / 3, "matthews_correlation": 0.0}
    assert baseline["validation"] == pytest.approx(expected)
    # test: negative, negative, positive, negative -> 3 of 4; negative: TP 3, FP 1, FN 0 -> 6/7; macro (6/7 + 0) / 2
    expected = {"accuracy": 3 / 4, "f1": 0.0, "macro_f1": 3 / 7, "matthews_correlation": 0.0}
    assert baseline["test"] == pytest.approx(expected)
    # With the other class declared positive, f1 is its F1 (6/7 on test); the rest does not change.
    negative = task_setup.positive_label(task, "negative")
    assert task_setup.majority_metrics(task, negative)["test"] == pytest.approx({**expected, "f1": 6 / 7})


def test_f1_is_of_the_positive_class_not_the_one_that_sorts_second(tmp_path):
    """Always answering "non-entailment" (the training majority, 12 of 16) is not an F1 of 0.77."""
    task = load_splits("entailment", tmp_path, binary_entailment(rows(TASK_FOLDERS["entailment"])))
    assert task.label_names == ("entailment", "non-entailment")
    positive = task_setup.positive_label(task, None)
    assert (positive.name, positive.id) == ("entailment", 0)
    baseline = task_setup.majority_metrics(task, positive)
    assert baseline["prediction"] == "non-entailment"
    # test: entailment, non, non, non. entailment: TP 0 -> F1 0; non-entailment: TP 3, FP 1, FN 0 -> 6/7 (the F1
    # that class id 1 would give); macro (0 + 6/7) / 2
    assert baseline["test"] == pytest.approx({"accuracy": 3 / 4, "f1": 0.0, "macro_f1": 3 / 7,
                                              "matthews_correlation": 0.0})  # fmt: skip
    assert compute_task_metrics("entailment", 2, [1, 1, 1, 1], [0, 1, 1, 1], positive_label=1)["f1"] == 6 / 7


def test_macro_f1_of_three_classes(tmp_path):
    task = load_splits("entailment", tmp_path, rows(TASK_FOLDERS["entailment"]))
    baseline = task_setup.majority_metrics(task, task_setup.positive_label(task, None))
    assert baseline["prediction"] == "neutral"  # 8 of 16 training rows
    # test: entailment, contradiction, neutral, neutral, always neutral: neutral TP 2, FP 2, FN 0 -> 4/6; entailment
    # and contradiction: TP 0 -> 0; macro (2/3 + 0 + 0) / 3. No "f1": a 3-class task has no positive class.
    assert baseline["test"] == pytest.approx({"accuracy": 2 / 4, "macro_f1": 2 / 9, "matthews_correlation": 0.0})
    # A model's predictions: class ids entailment 0, neutral 1, contradiction 2, against the test rows 0, 2, 1, 1.
    # entailment: TP 1 -> 1; neutral: TP 1, FP 1 (row 1), FN 1 (row 3) -> 2/4; contradiction: FN 1, FP 1 (row 3) -> 0
    metrics = task_setup.task_metrics(task, [0, 1, 1, 2], [0, 2, 1, 1], None)
    assert metrics["macro_f1"] == pytest.approx((1 + 1 / 2 + 0) / 3) and "f1" not in metrics


# ---------------------------------------------------------------------------------------------------------------------
# The command lines: refused before any training; results.json of both scripts.


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tokenizer")
    train_gpt1_tokenizer_from_files(FIXTURES / "shakespeare_sample.txt", vocab_size=1000).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("script", [finetune, finetune_trainer])
def test_a_bad_positive_label_stops_the_run_before_any_work(script, tmp_path, capsys):
    """Raised right after the data is read: before the tokenizer (the preset has none: that error would come next)."""
    data = split_files(tmp_path, rows(TASK_FOLDERS["classification"]))
    common = [*FAST, "--task_type", "classification", *data, "--output_dir", tmp_path / "out"]
    for extra, message in [
        (["--positive_label", "good"], "--positive_label 'good' is not one of the classes of this task: ['negative', "
                                       "'positive']."),
        (["--positive_label", "Positive"], "Did you mean 'positive'?"),
    ]:  # fmt: skip
        with pytest.raises(SystemExit) as exit_info:
            run(*common, *extra, script=script)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    names = {"positive": "spam", "negative": "ham"}
    spam = [{**row, "label": names[row["label"]]} for row in rows(TASK_FOLDERS["classification"])]
    with pytest.raises(SystemExit):
        run(*FAST, "--task_type", "classification", *split_files(tmp_path, spam), "--output_dir", tmp_path / "out",
            script=script)  # fmt: skip
    err = capsys.readouterr().err
    assert "['ham', 'spam'], and neither is positive by the default rule" in err
    assert "give --positive_label ham or --positive_label spam" in err
    assert not (tmp_path / "out" / "results.json").exists()


def test_help_states_the_positive_label_rule(capsys):
    with pytest.raises(SystemExit):
        finetune.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--positive_label" in help_text and "the class named positive, entailment, entails" in help_text
    assert "no other guess" in help_text


def structure(value):
    """A JSON value with every number, string and bool replaced by its type: what the two scripts must share."""
    if isinstance(value, dict):
        return {key: structure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [structure(item) for item in value]
    return type(value).__name__


def test_trainer_results_have_the_layout_and_types_of_the_accelerate_loop(tokenizer_dir, tmp_path, capsys):
    data = split_files(tmp_path, rows(TASK_FOLDERS["classification"]))
    args = [*FAST, "--tokenizer", tokenizer_dir, "--task_type", "classification", *data]
    ours = run(*args, "--output_dir", tmp_path / "accelerate")
    ours_printed = capsys.readouterr().out
    theirs = run(*args, "--output_dir", tmp_path / "trainer", script=finetune_trainer)
    theirs_printed = capsys.readouterr().out
    saved = json.loads((tmp_path / "trainer" / "results.json").read_text())
    assert saved == json.loads(json.dumps(theirs))

    # Trainer keeps no record of options changed on resume (recipes/finetune.py's list): None, the one difference.
    assert ours["resume_changes"] == [] and theirs["resume_changes"] is None
    ours, theirs = {**ours, "resume_changes": None}, {**theirs, "resume_changes": None}
    assert structure(theirs) == structure(ours)
    assert set(theirs["hyperparameters"]) == set(ours["hyperparameters"])
    for results in (ours, theirs):
        assert results["task"]["positive_label"] == {
            "name": "positive", "id": 1, "chosen_by": "the default rule: a class named 'positive'",
        }  # fmt: skip
        metrics = ["loss", "task_loss", "lm_loss", "accuracy", "f1", "macro_f1", "matthews_correlation"]
        for record in (*results["validation"], results["test"]):
            assert [key for key in record if key not in ("step", "epoch")] == metrics
            assert all(type(record[key]) is float for key in metrics)
            assert record["loss"] == pytest.approx(record["task_loss"] + 0.5 * record["lm_loss"], rel=1e-4)
        # The training loss beside each of the 2 evaluations (logging_steps 10 > the 8 steps).
        assert [(r["step"], r["epoch"]) for r in results["train_history"]] == [(4, 1.0), (8, 2.0)]
        # The same majority baseline (the data's, not the model's): always "negative", on validation and test.
        assert results["majority_baseline"]["test"] == pytest.approx(
            {"accuracy": 3 / 4, "f1": 0.0, "macro_f1": 3 / 7, "matthews_correlation": 0.0}
        )
    assert theirs["majority_baseline"] == ours["majority_baseline"] and theirs["task"] == ours["task"]

    # Both print the evaluations and the report with numbers, not Trainer's {'eval_loss': '4.171', ...}.
    for printed in (ours_printed, theirs_printed):
        assert "epoch 2 (step 8): validation loss " in printed and "'eval_loss'" not in printed
        assert "Majority class (negative) on validation: accuracy 0.5000" in printed
        assert "Majority class (negative) on test: accuracy 0.7500" in printed
        assert "f1 is the F1 of the positive class 'positive' (the default rule: a class named 'positive')" in printed
    assert math.isfinite(theirs["test"]["task_loss"]) and theirs["test"]["lm_loss"] > 0
