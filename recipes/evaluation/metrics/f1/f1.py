"""F1: the harmonic mean of precision and recall, F1 = 2·TP / (2·TP + FP + FN), per class and averaged
(`evaluate` metric script, offline; the same definitions and zero-division value, 0, as scikit-learn's f1_score)."""

import datasets
import evaluate
import numpy as np

_INPUTS = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): the true class ids.
    average (str): "binary" (default): the F1 of the class `pos_label`, for two classes;
        "macro": the mean of the per-class F1s; "weighted": their mean weighted by each class's count in references;
        "micro": one F1 over the TP, FP and FN of all classes (the accuracy, for single-label data).
        The classes are those in predictions or references.
    pos_label (int): the positive class of "binary" (default 1).
Returns:
    f1 (float): in [0, 1]; a class with no TP, FP or FN scores 0.
Example:
    >>> evaluate.load("recipes/evaluation/metrics/f1").compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 1])
    {'f1': 0.5}
"""

AVERAGES = ("binary", "macro", "micro", "weighted")


def _f1(tp, fp, fn):
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator, dtype=np.float64), where=denominator > 0)


_FEATURES = datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")})


class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description=__doc__, citation="", inputs_description=_INPUTS, features=_FEATURES)

    def _compute(self, predictions, references, average="binary", pos_label=1):
        if average not in AVERAGES:
            raise ValueError(f"average={average!r} is not one of {AVERAGES}.")
        predictions, references = np.asarray(predictions), np.asarray(references)
        labels = np.union1d(predictions, references)
        if average == "binary":
            if len(labels) > 2:
                raise ValueError(
                    f"average='binary' needs at most 2 classes, got {labels.tolist()}: use average='macro', "
                    "'micro' or 'weighted'."
                )
            if len(labels) == 2 and pos_label not in labels:
                raise ValueError(f"pos_label={pos_label} is not one of the classes {labels.tolist()}.")
            labels = np.array([pos_label])
        # (C,) counts per class
        predicted = predictions[None, :] == labels[:, None]
        true = references[None, :] == labels[:, None]
        tp = (predicted & true).sum(1)
        fp = (predicted & ~true).sum(1)
        fn = (~predicted & true).sum(1)
        if average == "micro":
            return {"f1": float(_f1(tp.sum(), fp.sum(), fn.sum()))}
        scores = _f1(tp, fp, fn)
        if average == "weighted":
            support = true.sum(1)
            return {"f1": float(np.average(scores, weights=support)) if support.sum() else 0.0}
        return {"f1": float(scores.mean())}
