"""Metrics for the fine-tuning recipes: `evaluate` metric scripts shipped in this folder, so they load offline.

`evaluate.load("accuracy")` fetches its script from the Hub; `load("accuracy")` loads `recipes/metrics/accuracy/
accuracy.py` with `evaluate.load(path)`, which needs no network. The scripts: accuracy, f1 (binary, macro, micro,
weighted), matthews_correlation (any number of classes), pearsonr and spearmanr (ties get their mean rank).

    compute_task_metrics("entailment", 3, predictions, references)
    # {"accuracy": ..., "f1": ... (macro), "matthews_correlation": ...}
    compute_task_metrics("similarity", 1, scores, gold_scores)  # {"pearson": ..., "spearman": ...}

`glue_metric(task_name)` is the Hub's GLUE metric where the Hub (or a cached copy) is there, else None.
"""

import functools
import logging
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


def task_metrics(family: str, num_labels: int) -> list[str]:
    """The metric scripts for a GPT-1 task family: classes (classification, entailment, similarity with
    num_labels >= 2 as MRPC and QQP) get accuracy, f1 (binary for 2 classes, else macro) and matthews_correlation;
    similarity scores (num_labels 1, regression) get pearsonr and spearmanr; multiple_choice gets accuracy."""
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
    family: str, num_labels: int, predictions: Sequence, references: Sequence
) -> dict[str, float]:
    """All of `task_metrics(family, num_labels)` on class ids / choice indices or scores, as
    {"accuracy", "f1", "matthews_correlation"} or {"pearson", "spearman"} -> float."""
    results = {}
    for name in task_metrics(family, num_labels):
        kwargs = {"average": "binary" if num_labels == 2 else "macro"} if name == "f1" else {}
        value = _loaded(name).compute(predictions=predictions, references=references, **kwargs)[name]
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
            f"GLUE metric {task_name!r} unavailable ({where}: {type(error).__name__}); using recipes.metrics."
        )
        return None
    finally:
        evaluate.config.HF_EVALUATE_OFFLINE = saved
