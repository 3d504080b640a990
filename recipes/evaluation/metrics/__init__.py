"""Metrics for the fine-tuning recipes: `evaluate` metric scripts shipped in this folder, so they load offline.

`evaluate.load("accuracy")` fetches its script from the Hub; `load("accuracy")` loads
`recipes/evaluation/metrics/accuracy/accuracy.py` with `evaluate.load(path)`, which needs no network. The scripts:
accuracy, f1 (binary, macro, micro, weighted), matthews_correlation (any number of classes), pearsonr and spearmanr
(ties get their mean rank).

    compute_task_metrics("classification", 2, predictions, references, positive_label=1)
    # {"accuracy": ..., "f1": ... (of class 1), "macro_f1": ..., "matthews_correlation": ...}
    compute_task_metrics("entailment", 3, predictions, references)
    # {"accuracy": ..., "macro_f1": ..., "matthews_correlation": ...}
    compute_task_metrics("similarity", 1, scores, gold_scores)  # {"pearson": ..., "spearman": ...}

"f1" is always the F1 of one class, the positive one, which the caller names (`positive_label`, a class id): a
binary F1 taken on whichever class has id 1 would depend on how the class names sort ("non-entailment" after
"entailment"). Without `positive_label` there is no "f1"; "macro_f1" (the mean of the per-class F1s) is always there.

`glue_metric(task_name)` is the Hub's GLUE metric where the Hub (or a cached copy) is there, else None.
"""

import functools
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import requests

from modeling_gpt1 import TASK_FAMILIES

logger = logging.getLogger(__name__)

METRICS_DIR = Path(__file__).resolve().parent
METRICS = ("accuracy", "f1", "matthews_correlation", "pearsonr", "spearmanr")
# Each script returns {name: value}; compute_task_metrics reports the correlations by the names GLUE uses.
REPORTED_AS = {"pearsonr": "pearson", "spearmanr": "spearman"}
_TRUE = {"1", "ON", "YES", "TRUE"}


def load(name: str, **kwargs):
    """`evaluate.load` of the metric script `name` shipped here; kwargs go to `evaluate.load` (keep_in_memory, ...)."""
    if name not in METRICS:
        raise ValueError(f"Unknown metric {name!r}: the metrics shipped in {METRICS_DIR} are {', '.join(METRICS)}.")
    import evaluate  # seconds to import (it pulls in transformers' pipelines); only loading a metric needs it

    return evaluate.load(str(METRICS_DIR / name), **kwargs)


@functools.cache
def _loaded(name: str):
    # compute() with predictions and references is stateless, so one in-memory module per metric serves every call.
    return load(name, keep_in_memory=True)


def matthews_correlation(predictions, references) -> float:
    """The shipped Matthews correlation of two sequences of labels, without `evaluate`'s Arrow round trip per call
    (the bootstrap of recipes/ablation.py and the zero-shot probe score thousands of resamples)."""
    return float(
        _loaded("matthews_correlation")._compute(predictions=predictions, references=references)[
            "matthews_correlation"
        ]
    )


def task_metrics(family: str, num_labels: int) -> list[str]:
    """The metric scripts for a GPT-1 task family: classes (classification, entailment, similarity with
    num_labels >= 2 as MRPC and QQP) get accuracy, f1 (binary F1 of the positive class for 2 classes, and macro F1)
    and matthews_correlation; similarity scores (num_labels 1, regression) get pearsonr and spearmanr;
    multiple_choice gets accuracy."""
    if family not in TASK_FAMILIES:
        raise ValueError(f"Unknown task family {family!r}: one of {', '.join(TASK_FAMILIES)}.")
    if family == "multiple_choice":
        return ["accuracy"]
    if family == "similarity" and num_labels == 1:
        return ["pearsonr", "spearmanr"]
    if num_labels < 2:
        raise ValueError(f"A {family} task needs num_labels >= 2 classes, got {num_labels}.")
    return ["accuracy", "f1", "matthews_correlation"]


def compute_task_metrics(
    family: str, num_labels: int, predictions: Sequence, references: Sequence, positive_label: int | None = None
) -> dict[str, float]:
    """All of `task_metrics(family, num_labels)` on class ids / choice indices or scores, as
    {"accuracy", "f1", "macro_f1", "matthews_correlation"} or {"pearson", "spearman"} -> float.

    Classes: "f1" is the F1 of the class id `positive_label` (2 classes only; without it, no "f1"), "macro_f1" the
    mean F1 over the classes in predictions or references (as scikit-learn's f1_score(average="macro"))."""
    names = task_metrics(family, num_labels)
    if positive_label is not None and ("f1" not in names or num_labels != 2):
        raise ValueError(f"positive_label is for tasks of 2 classes, not for {family} with num_labels={num_labels}.")
    if positive_label is not None and positive_label not in (0, 1):
        raise ValueError(f"positive_label={positive_label!r} is not a class id of a 2-class task (0 or 1).")
    results = {}
    for name in names:
        if name == "f1":
            f1 = _loaded("f1")
            if positive_label is not None:
                value = f1.compute(predictions=predictions, references=references, pos_label=positive_label)
                results["f1"] = float(value["f1"])
            value = f1.compute(predictions=predictions, references=references, average="macro")
            results["macro_f1"] = float(value["f1"])
            continue
        value = _loaded(name).compute(predictions=predictions, references=references)[name]
        results[REPORTED_AS.get(name, name)] = float(value)
    return results


def _offline() -> bool:
    import evaluate
    from huggingface_hub import constants

    from_env = any(os.environ.get(name, "").upper() in _TRUE for name in ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE"))
    return from_env or constants.HF_HUB_OFFLINE or evaluate.config.HF_EVALUATE_OFFLINE


def _hub_reachable(endpoint: str, timeout: float) -> bool:
    try:
        requests.head(endpoint, timeout=timeout)
    except requests.RequestException:
        return False
    return True


def glue_metric(task_name: str, timeout: float = 5.0):
    """The Hub's GLUE metric, `evaluate.load("glue", task_name)`, or None with a one-line warning when neither the Hub
    nor a cached copy has it. Offline (HF_HUB_OFFLINE or HF_EVALUATE_OFFLINE) only the cache is tried; otherwise the
    Hub must answer within `timeout` seconds (evaluate itself waits up to 100 s a request)."""
    import evaluate

    cache_only = _offline() or not _hub_reachable(evaluate.config.HF_ENDPOINT, timeout)
    saved = evaluate.config.HF_EVALUATE_OFFLINE
    evaluate.config.HF_EVALUATE_OFFLINE = cache_only
    try:
        return evaluate.load("glue", task_name, module_type="metric")
    except Exception as error:  # evaluate raises FileNotFoundError, ConnectionError, KeyError (task name), ...
        where = "offline or the Hub unreachable, and no cached copy" if cache_only else "failed on the Hub"
        logger.warning(
            f"GLUE metric {task_name!r} unavailable ({where}: {type(error).__name__}); "
            "using recipes.evaluation.metrics."
        )
        return None
    finally:
        evaluate.config.HF_EVALUATE_OFFLINE = saved


def perplexity(mean_nll: float) -> float:
    """exp of a mean negative log-likelihood in nats per token (infinity where exp would overflow a float): the
    perplexity of pre-training's validation loss and of zero-shot evaluation alike."""
    return math.exp(mean_nll) if mean_nll < 700 else float("inf")
