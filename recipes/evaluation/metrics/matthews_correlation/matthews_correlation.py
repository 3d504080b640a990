"""Matthews correlation coefficient, for two or more classes (`evaluate` metric script, offline).

From the confusion matrix: MCC = (c·s − Σₖ pₖ·tₖ) / √((s² − Σₖ pₖ²)(s² − Σₖ tₖ²)), with s the number of examples,
c the number correct, pₖ the times class k was predicted and tₖ the times it is true (Gorodkin, 2004). For two
classes it is (TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)). Undefined (a zero denominator: all predictions or
all references one class) gives 0, as in scikit-learn.
"""

import datasets
import evaluate
import numpy as np

_INPUTS = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): the true class ids.
Returns:
    matthews_correlation (float): in [-1, 1]; 0 for chance level or for constant predictions.
Example:
    >>> mcc = evaluate.load("recipes/evaluation/metrics/matthews_correlation")
    >>> mcc.compute(predictions=[1, 1, 0, 0], references=[1, 0, 0, 0])
    {'matthews_correlation': 0.5773502691896258}
"""

_CITATION = """\
@article{gorodkin2004comparing,
  title={Comparing two K-category assignments by a K-category correlation coefficient},
  author={Gorodkin, Jan},
  journal={Computational Biology and Chemistry},
  volume={28}, number={5-6}, pages={367--374}, year={2004}
}
"""


_FEATURES = datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")})


class MatthewsCorrelation(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__, citation=_CITATION, inputs_description=_INPUTS, features=_FEATURES
        )

    def _compute(self, predictions, references):
        predictions, references = np.asarray(predictions), np.asarray(references)
        labels = np.union1d(predictions, references)
        predicted = (predictions[None, :] == labels[:, None]).sum(1).astype(np.float64)  # p_k
        true = (references[None, :] == labels[:, None]).sum(1).astype(np.float64)  # t_k
        s = float(len(references))
        c = float((predictions == references).sum())
        denominator = np.sqrt((s**2 - predicted @ predicted) * (s**2 - true @ true))
        return {"matthews_correlation": float((c * s - predicted @ true) / denominator) if denominator > 0 else 0.0}
