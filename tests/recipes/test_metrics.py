"""recipes/evaluation/metrics: each metric script against values worked out by hand (the arithmetic is in the
comments), its
edge cases, loading by path with no network, the metrics of each task family, and the Hub's GLUE metric giving way
quickly offline."""

import logging
import math
import os
import subprocess
import sys
import time

import evaluate
import numpy as np
import pytest

from recipes.evaluation import metrics
from recipes.evaluation.metrics import METRICS, compute_task_metrics, glue_metric, load, task_metrics


@pytest.fixture(scope="module")
def metric():
    """name -> the loaded metric script, loaded once (with evaluate's Hub access switched off)."""
    saved = evaluate.config.HF_EVALUATE_OFFLINE
    evaluate.config.HF_EVALUATE_OFFLINE = True
    try:
        return {name: load(name, keep_in_memory=True) for name in METRICS}
    finally:
        evaluate.config.HF_EVALUATE_OFFLINE = saved


def compute(module, predictions, references, **kwargs) -> float:
    (value,) = module.compute(predictions=predictions, references=references, **kwargs).values()
    return value


# ---------------------------------------------------------------------------------------------------------- accuracy


def test_accuracy(metric):
    # equal at positions 0, 1, 3: 3 of 5
    predictions, references = [0, 1, 2, 1, 0], [0, 1, 1, 1, 2]
    assert compute(metric["accuracy"], predictions, references) == pytest.approx(3 / 5)
    assert compute(metric["accuracy"], predictions, references, normalize=False) == 3


# ---------------------------------------------------------------------------------------------------------------- f1


def test_f1_binary_and_pos_label(metric):
    predictions, references = [1, 1, 1, 1, 0], [1, 1, 0, 0, 0]
    # class 1: TP = 2 (0, 1), FP = 2 (2, 3), FN = 0 -> 2·2 / (2·2 + 2 + 0) = 4/6
    assert compute(metric["f1"], predictions, references) == pytest.approx(4 / 6)
    # class 0: TP = 1 (4), FP = 0, FN = 2 (2, 3) -> 2·1 / (2·1 + 0 + 2) = 2/4
    assert compute(metric["f1"], predictions, references, pos_label=0) == pytest.approx(2 / 4)


def test_f1_macro_and_micro_on_three_classes(metric):
    predictions, references = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0]
    # class 0: TP 1 (0), FP 1 (1), FN 1 (5) -> 2/4;  class 1: TP 1 (2), FP 0, FN 1 (1) -> 2/3;
    # class 2: TP 2 (3, 4), FP 1 (5), FN 0 -> 4/5;  macro = (1/2 + 2/3 + 4/5) / 3 = (15 + 20 + 24) / 90
    assert compute(metric["f1"], predictions, references, average="macro") == pytest.approx(59 / 90)
    # micro: TP 4, FP 2, FN 2 over all classes -> 8 / 12 (the accuracy, 4 of 6)
    assert compute(metric["f1"], predictions, references, average="micro") == pytest.approx(8 / 12)


def test_f1_weighted_by_support(metric):
    predictions, references = [0, 0, 1, 2, 2, 1], [0, 1, 1, 2, 2, 2]
    # class 0: TP 1, FP 1, FN 0 -> 2/3, support 1;  class 1: TP 1 (2), FP 1 (5), FN 1 (1) -> 1/2, support 2;
    # class 2: TP 2, FP 0, FN 1 (5) -> 4/5, support 3;  (1·2/3 + 2·1/2 + 3·4/5) / 6 = (10 + 15 + 36) / 90
    assert compute(metric["f1"], predictions, references, average="weighted") == pytest.approx(61 / 90)
    # macro differs: (2/3 + 1/2 + 4/5) / 3 = (20 + 15 + 24) / 90
    assert compute(metric["f1"], predictions, references, average="macro") == pytest.approx(59 / 90)


def test_f1_edge_cases(metric):
    # no positive prediction or reference: TP = FP = FN = 0, scored 0 (as scikit-learn)
    assert compute(metric["f1"], [0, 0, 0], [0, 0, 0]) == 0.0
    # a class only predicted, never true, counts in the macro mean: class 0: TP 1, FN 1 -> 2/3; class 1: FP 1 -> 0
    assert compute(metric["f1"], [0, 1], [0, 0], average="macro") == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="average='macro'"):
        compute(metric["f1"], [0, 1, 2], [0, 1, 1])  # binary on 3 classes
    with pytest.raises(ValueError, match="pos_label=1"):
        compute(metric["f1"], [2, 3], [2, 3])
    with pytest.raises(ValueError, match="average='samples'"):
        compute(metric["f1"], [0, 1], [0, 1], average="samples")


# ---------------------------------------------------------------------------------------------- matthews_correlation


def test_matthews_correlation_binary(metric):
    predictions, references = [1, 1, 1, 0, 0, 0, 1, 0], [1, 1, 0, 0, 0, 1, 1, 0]
    # TP 3 (0, 1, 6), FP 1 (2), TN 3 (3, 4, 7), FN 1 (5): (3·3 − 1·1) / √(4·4·4·4) = 8 / 16
    assert compute(metric["matthews_correlation"], predictions, references) == pytest.approx(0.5)
    # every answer flipped: TP = TN = 0, FP = FN = 2 -> (0 − 4) / √(2·2·2·2) = −1
    assert compute(metric["matthews_correlation"], [0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)


def test_matthews_correlation_multiclass(metric):
    predictions, references = [0, 1, 2, 0, 2], [0, 1, 1, 2, 2]
    # s = 5, c = 3 (0, 1, 4); predicted p = (2, 1, 2), true t = (1, 2, 2): Σpt = 2 + 2 + 4 = 8, Σp² = Σt² = 9
    # (3·5 − 8) / √((25 − 9)(25 − 9)) = 7 / 16
    assert compute(metric["matthews_correlation"], predictions, references) == pytest.approx(7 / 16)


def test_matthews_correlation_constant_is_zero(metric):
    # one predicted class: s² − Σp² = 16 − 16 = 0, undefined, reported as 0
    assert compute(metric["matthews_correlation"], [1, 1, 1, 1], [0, 1, 0, 1]) == 0.0
    assert compute(metric["matthews_correlation"], [0, 1, 0, 1], [1, 1, 1, 1]) == 0.0


# -------------------------------------------------------------------------------------------- pearsonr / spearmanr


def test_pearsonr(metric):
    x, y = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 5.0, 9.0]
    # dx = (−1.5, −.5, .5, 1.5), dy = (−3, −1, 0, 4): Σdxdy = 4.5 + .5 + 0 + 6 = 11, Σdx² = 5, Σdy² = 26
    assert compute(metric["pearsonr"], x, y) == pytest.approx(11 / math.sqrt(5 * 26))
    assert compute(metric["pearsonr"], x, [2 * v + 1 for v in x]) == pytest.approx(1.0)
    assert compute(metric["pearsonr"], x, [-v for v in x]) == pytest.approx(-1.0)
    # dx = (−1, 0, 1), dy = (−1, 1, 0): 1 / √(2·2), exactly, as the scores stay float64 (float32 gives 0.49999998)
    assert compute(metric["pearsonr"], [1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) == 0.5


def test_spearmanr_with_ties(metric):
    # ranks: x (1, 2.5, 2.5, 4), the tie sharing ranks 2 and 3; y (1, 3, 2, 4)
    # dx = (−1.5, 0, 0, 1.5), dy = (−1.5, .5, −.5, 1.5): Σdxdy = 4.5, Σdx² = 4.5, Σdy² = 5 -> 4.5 / √22.5 = 3 / √10
    assert compute(metric["spearmanr"], [1.0, 2.0, 2.0, 3.0], [10.0, 30.0, 20.0, 40.0]) == pytest.approx(
        3 / math.sqrt(10)
    )
    # any increasing relation has rank correlation 1, where Pearson's is below 1
    x, cubes = [1.0, 2.0, 3.0, 4.0], [1.0, 8.0, 27.0, 64.0]
    assert compute(metric["spearmanr"], x, cubes) == pytest.approx(1.0)
    assert compute(metric["pearsonr"], x, cubes) < 0.99


@pytest.mark.parametrize("name", ["pearsonr", "spearmanr"])
def test_correlation_of_a_constant_is_nan(metric, name):
    assert math.isnan(compute(metric[name], [2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))


def test_against_scipy(metric):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    y = x + rng.normal(size=50)
    y_ties = np.round(y)  # many ties
    assert compute(metric["pearsonr"], x.tolist(), y.tolist()) == pytest.approx(stats.pearsonr(x, y)[0])
    assert compute(metric["spearmanr"], x.tolist(), y_ties.tolist()) == pytest.approx(stats.spearmanr(x, y_ties)[0])


# ---------------------------------------------------------------------------------------------------- loading


def test_load_by_path_offline_in_a_fresh_process(tmp_path):
    """No Hub, no proxy that works, an empty modules cache: every script still loads and computes."""
    code = (
        "from recipes.evaluation.metrics import METRICS, load\n"
        "for name in METRICS:\n"
        "    (value,) = load(name).compute(predictions=[0, 1, 1], references=[0, 1, 1]).values()\n"
        "    print(name, value)\n"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "HF_HOME": str(tmp_path / "hf"),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    printed = dict(line.split() for line in result.stdout.splitlines())
    assert list(printed) == list(METRICS)
    assert all(float(value) == pytest.approx(1.0) for value in printed.values()), printed


def test_load_returns_the_scripts_module(metric):
    for name in METRICS:
        assert isinstance(metric[name], evaluate.Metric)
        assert metric[name].name == name


def test_unknown_metric_names_the_known_ones():
    with pytest.raises(ValueError, match="'bleu'.*accuracy, f1, matthews_correlation, pearsonr, spearmanr"):
        load("bleu")


# ------------------------------------------------------------------------------------------------ task families


@pytest.mark.parametrize(
    ("family", "num_labels", "expected"),
    [
        ("classification", 2, ["accuracy", "f1", "matthews_correlation"]),
        ("entailment", 3, ["accuracy", "f1", "matthews_correlation"]),
        ("similarity", 2, ["accuracy", "f1", "matthews_correlation"]),  # MRPC, QQP: paraphrase or not
        ("similarity", 1, ["pearsonr", "spearmanr"]),  # STS-B: a score
        ("multiple_choice", 1, ["accuracy"]),
        ("multiple_choice", 4, ["accuracy"]),
    ],
)
def test_task_metrics(family, num_labels, expected):
    assert task_metrics(family, num_labels) == expected


def test_task_metrics_refuses_bad_input():
    with pytest.raises(ValueError, match="'translation'"):
        task_metrics("translation", 2)
    with pytest.raises(ValueError, match="num_labels >= 2"):
        task_metrics("classification", 1)


def test_compute_task_metrics_binary_classification():
    # the binary example above: accuracy 3/5 (0, 1, 4), f1 of class 1 = 4/6, of class 0 = 2/4; macro (4/6 + 2/4) / 2;
    # MCC: TP 2, FP 2, TN 1, FN 0 -> (2·1 − 2·0) / √(4·2·3·1) = 2 / √24
    predictions, references = [1, 1, 1, 1, 0], [1, 1, 0, 0, 0]
    result = compute_task_metrics("classification", 2, predictions, references, positive_label=1)
    expected = {"accuracy": 3 / 5, "f1": 4 / 6, "macro_f1": 7 / 12, "matthews_correlation": 2 / math.sqrt(24)}
    assert result == pytest.approx(expected) and list(result) == list(expected)
    assert all(type(value) is float for value in result.values())
    result = compute_task_metrics("classification", 2, predictions, references, positive_label=0)
    assert result == pytest.approx({**expected, "f1": 2 / 4})
    # No positive class named, no "f1": never the F1 of whichever class has id 1.
    assert set(compute_task_metrics("classification", 2, predictions, references)) == {
        "accuracy", "macro_f1", "matthews_correlation"
    }  # fmt: skip


def test_compute_task_metrics_binary_constant_predictor():
    # always class 0, references 0, 0, 1, 1: F1 of class 1: TP 0 -> 0; of class 0: TP 2, FP 2, FN 0 -> 4/6
    result = compute_task_metrics("classification", 2, [0, 0, 0, 0], [0, 0, 1, 1], positive_label=1)
    assert result == pytest.approx({"accuracy": 1 / 2, "f1": 0.0, "macro_f1": 1 / 3, "matthews_correlation": 0.0})


def test_compute_task_metrics_three_classes_uses_macro_f1():
    # the 3-class example above: accuracy 4/6, macro f1 59/90; MCC: s = 6, c = 4, p = (2, 1, 3), t = (2, 2, 2):
    # Σpt = 12, Σp² = 14, Σt² = 12 -> (4·6 − 12) / √((36 − 14)(36 − 12)) = 12 / √528
    result = compute_task_metrics("entailment", 3, np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]))
    assert result == pytest.approx(
        {"accuracy": 4 / 6, "macro_f1": 59 / 90, "matthews_correlation": 12 / math.sqrt(528)}
    )


def test_compute_task_metrics_refuses_a_positive_label_it_cannot_use():
    with pytest.raises(
        ValueError, match="positive_label is for tasks of 2 classes, not for entailment with num_labels=3"
    ):
        compute_task_metrics("entailment", 3, [0, 1, 2], [0, 1, 2], positive_label=1)
    with pytest.raises(ValueError, match="not for multiple_choice with num_labels=1"):
        compute_task_metrics("multiple_choice", 1, [0, 1], [0, 1], positive_label=1)
    with pytest.raises(ValueError, match=r"positive_label=2 is not a class id of a 2-class task \(0 or 1\)"):
        compute_task_metrics("classification", 2, [0, 1], [0, 1], positive_label=2)


def test_compute_task_metrics_regression_and_multiple_choice():
    result = compute_task_metrics("similarity", 1, [1.0, 2.0, 2.0, 3.0], [10.0, 30.0, 20.0, 40.0])
    # Pearson of the raw scores: dx = (−1, 0, 0, 1), dy = (−15, 5, −5, 15): Σdxdy = 30, Σdx² = 2, Σdy² = 500
    assert result == pytest.approx({"pearson": 30 / math.sqrt(1000), "spearman": 3 / math.sqrt(10)})
    # choices 1, 2, 0 against 1, 2, 2: 2 of 3
    assert compute_task_metrics("multiple_choice", 1, [1, 2, 0], [1, 2, 2]) == pytest.approx({"accuracy": 2 / 3})


# ------------------------------------------------------------------------------------------------------- GLUE


@pytest.fixture
def glue_not_cached(monkeypatch):
    def not_cached(self):
        raise FileNotFoundError(f"Metric {self.name} is not cached")

    monkeypatch.setattr(evaluate.loading.CachedEvaluationModuleFactory, "get_module", not_cached)


def test_glue_metric_offline_is_none_at_once(monkeypatch, caplog, glue_not_cached):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(metrics, "_hub_reachable", lambda *args: pytest.fail("offline, the Hub must not be tried"))
    saved = evaluate.config.HF_EVALUATE_OFFLINE
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="recipes.evaluation.metrics"):
        assert glue_metric("sst2") is None
    assert time.perf_counter() - start < 5
    assert len(caplog.records) == 1 and "'sst2' unavailable" in caplog.records[0].getMessage()
    assert evaluate.config.HF_EVALUATE_OFFLINE == saved


def test_glue_metric_hub_unreachable_is_none_at_once(monkeypatch, glue_not_cached):
    for name in ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", False)
    monkeypatch.setattr(metrics, "_hub_reachable", lambda endpoint, timeout: False)
    start = time.perf_counter()
    assert glue_metric("cola") is None
    assert time.perf_counter() - start < 5
    assert evaluate.config.HF_EVALUATE_OFFLINE is False


def test_hub_reachable_gives_up_quickly():
    start = time.perf_counter()
    assert not metrics._hub_reachable("http://127.0.0.1:9", timeout=2.0)  # nothing listens on the discard port
    assert time.perf_counter() - start < 5
