"""The matrix-vector bound of a decoding step at batch 1: the time a model's own projections and LM head take for one
token's (1, in) inputs, the modules called as the model calls them. Reading the weights sets that time, so a
model's decoding speed over this bound is how close it comes to what its weights allow on this machine."""

import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear
from torch.utils import mkldnn as mkldnn_utils
from transformers.pytorch_utils import Conv1D

from .timing import time_alternately

# The modules that multiply by a weight matrix in a decoding step: ours (nn.Linear, and its int8 and oneDNN forms)
# and transformers' (Conv1D in the blocks, nn.Linear for the LM head).
PROJECTION_TYPES = (torch.nn.Linear, Conv1D, DynamicInt8Linear, mkldnn_utils.MkldnnLinear)


def _in_features(module) -> int:
    if isinstance(module, Conv1D):
        return module.weight.shape[0]  # (in, out)
    if isinstance(module, mkldnn_utils.MkldnnLinear):
        return module.weight.size(1)  # (out, in), an mkldnn tensor
    return module.in_features


def matvec_bound(model, device: torch.device):
    """A function that runs each projection and the LM head of `model` once on a (1, in) input, as a decoding step at
    batch 1 does: its time is the bound that reading the weights sets for this model's own matrix products here."""
    layers = [module for module in model.modules() if isinstance(module, PROJECTION_TYPES)]
    inputs = [torch.randn(1, _in_features(layer), device=device) for layer in layers]

    def products():
        with torch.inference_mode():
            for layer, x in zip(layers, inputs):
                layer(x)

    return products


def bound_timers(models: dict, device: torch.device) -> dict:
    """For each of `models`, a function `{name}_bound` giving the seconds of its matrix-vector products for one token
    (`matvec_bound`), the median of 5 calls, to be taken in turn with the decoding runs (the machine's speed
    drifts)."""
    timers = {}
    for name, model in models.items():
        products = matvec_bound(model, device)
        timers[f"{name}_bound"] = lambda products=products: time_alternately(
            {"products": products}, device, warmup=0, repeats=5
        )["products"]
    return timers


__all__ = ["PROJECTION_TYPES", "bound_timers", "matvec_bound"]
