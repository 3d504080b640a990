"""Pearson correlation coefficient between predicted and true scores (`evaluate` metric script, offline).

r = Σ(x − x̄)(y − ȳ) / √(Σ(x − x̄)² · Σ(y − ȳ)²); NaN when either side is constant (undefined, as in scipy).
"""

import datasets
import evaluate
import numpy as np

_INPUTS = """
Args:
    predictions (list of float): predicted scores.
    references (list of float): the true scores.
Returns:
    pearsonr (float): in [-1, 1], or NaN when predictions or references are constant.
Example:
    >>> metric = evaluate.load("recipes/evaluation/metrics/pearsonr")
    >>> metric.compute(predictions=[1.0, 2.0, 3.0], references=[1.0, 3.0, 2.0])
    {'pearsonr': 0.5}
"""


def pearson(x, y):
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt((x @ x) * (y @ y))
    return float(np.clip((x @ y) / denominator, -1.0, 1.0)) if denominator > 0 else float("nan")


_FEATURES = datasets.Features({"predictions": datasets.Value("float64"), "references": datasets.Value("float64")})


class Pearsonr(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description=__doc__, citation="", inputs_description=_INPUTS, features=_FEATURES)

    def _compute(self, predictions, references):
        return {"pearsonr": pearson(np.asarray(predictions, np.float64), np.asarray(references, np.float64))}
