"""Accuracy: the fraction of predictions equal to their references (`evaluate` metric script, offline)."""

import datasets
import evaluate
import numpy as np

_INPUTS = """
Args:
    predictions (list of int): predicted class ids (or choice indices).
    references (list of int): the true class ids.
    normalize (bool): the fraction correct (default) or, when False, the number correct.
Returns:
    accuracy (float): in [0, 1], or a count when normalize is False.
Example:
    >>> evaluate.load("recipes/evaluation/metrics/accuracy").compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'accuracy': 0.6666666666666666}
"""


_FEATURES = datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")})


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description=__doc__, citation="", inputs_description=_INPUTS, features=_FEATURES)

    def _compute(self, predictions, references, normalize=True):
        correct = np.asarray(predictions) == np.asarray(references)
        return {"accuracy": float(correct.mean() if normalize else correct.sum())}
