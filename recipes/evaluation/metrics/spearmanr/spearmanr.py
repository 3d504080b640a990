"""Spearman rank correlation between predicted and true scores (`evaluate` metric script, offline).

The Pearson correlation of the ranks, tied values sharing the mean of their ranks (as in scipy); NaN when either side
is constant.
"""

import datasets
import evaluate
import numpy as np

_INPUTS = """
Args:
    predictions (list of float): predicted scores.
    references (list of float): the true scores.
Returns:
    spearmanr (float): in [-1, 1], or NaN when predictions or references are constant.
Example:
    >>> metric = evaluate.load("recipes/evaluation/metrics/spearmanr")
    >>> metric.compute(predictions=[1.0, 5.0, 9.0], references=[0.1, 0.3, 0.2])
    {'spearmanr': 0.5}
"""


def ranks(values):
    """1-based ranks; tied values get the mean of the ranks they span."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2)[inverse]


# Copied from pearsonr/pearsonr.py (so are _FEATURES and _info below): a metric script is loaded alone, with no
# sibling to import.
def pearson(x, y):
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt((x @ x) * (y @ y))
    return float(np.clip((x @ y) / denominator, -1.0, 1.0)) if denominator > 0 else float("nan")


_FEATURES = datasets.Features({"predictions": datasets.Value("float64"), "references": datasets.Value("float64")})


class Spearmanr(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description=__doc__, citation="", inputs_description=_INPUTS, features=_FEATURES)

    def _compute(self, predictions, references):
        x, y = np.asarray(predictions, np.float64), np.asarray(references, np.float64)
        return {"spearmanr": pearson(ranks(x), ranks(y))}
