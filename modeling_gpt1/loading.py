"""Strict loading: `from_pretrained` that turns every way a checkpoint can be wrong into a clear error.

transformers' `from_pretrained` initialises at random, with a warning, the weights a checkpoint lacks or holds in
another shape, and drops with a warning the weights the model has no place for; here each is a ValueError naming the
tensors, except for the heads a model declares (`_head_prefixes`: a task head added for fine-tuning or left out, a
tied LM head that is not stored). Weights that are NaN or inf are an error too.

The layers are `nn.Linear`; the released checkpoints store them as transformers' `Conv1D` (weight (in, out)).
`register_conv1d_layout` hands the transpose to transformers' checkpoint conversion, for checkpoints whose config
says `weight_layout="conv1d"` (transformers' folders, and ours from before nn.Linear): `from_pretrained` transposes
while it loads, then the model's config says "linear", and `save_pretrained` writes what that field says.

Shared by GPT-1 and GPT-2: GPT-2's copy is the original, and GPT-1's is generated from it, byte for byte, by
`make fix-copies` (utils/check_copies.py).
"""

import os
from collections.abc import Callable

import torch
from safetensors import SafetensorError
from transformers.conversion_mapping import register_checkpoint_conversion_mapping
from transformers.core_model_loading import Transpose, WeightConverter

from .input_checks import LOAD_DEVICE

# The projections stored as transformers' Conv1D in the released checkpoints, the same names in GPT-1 and GPT-2.
CONV1D_PROJECTIONS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")

# `device_map` values with which accelerate spreads the weights over the devices (and disk) by their free memory.
_SPREAD_DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


class WeightShapeMismatchError(ValueError, RuntimeError):
    """Checkpoint weights of another shape than the model built from the config: a ValueError, like every bad input
    here, and a RuntimeError, which transformers raises for the same mismatch, so that code written for either
    catches it (and then passes `ignore_mismatched_sizes=True` to re-initialise those weights, as in transformers)."""


class Conv1DLayout(Transpose):
    """transformers' `Transpose` of a projection weight between Conv1D's (in, out) and nn.Linear's (out, in), applied
    only when the checkpoint (loading) or the model (saving) has `config.weight_layout == "conv1d"`: a checkpoint in
    the linear layout loads as it is, and a model saves in the layout its config names."""

    @torch.no_grad
    def convert(self, input_dict, source_patterns, target_patterns, **kwargs):
        if getattr(kwargs.get("config"), "weight_layout", "linear") == "conv1d":
            return super().convert(input_dict, source_patterns, target_patterns, **kwargs)
        tensors = next(iter(input_dict.values()))
        tensor = tensors[0] if isinstance(tensors, list) else tensors
        return {self.get_target_pattern(input_dict, source_patterns, target_patterns): tensor}

    @property
    def reverse_op(self) -> "Conv1DLayout":
        return Conv1DLayout(dim0=self.dim1, dim1=self.dim0)


def register_conv1d_layout(model_type: str) -> None:
    """Registers `Conv1DLayout` for each `CONV1D_PROJECTIONS` weight of the models of `model_type` with transformers'
    checkpoint conversion, which applies it in `from_pretrained` and its reverse in `save_pretrained`. Registered again
    (replaced) when a saved folder's remote code imports the model file a second time."""
    converters = [
        WeightConverter(source_patterns=key, target_patterns=key, operations=[Conv1DLayout()])
        for key in (f"{name}.weight" for name in CONV1D_PROJECTIONS)
    ]
    register_checkpoint_conversion_mapping(model_type, converters, overwrite=True)


def swap_projection_layout(state_dict: dict) -> dict:
    """`state_dict` with each `CONV1D_PROJECTIONS` weight transposed, between Conv1D's (in, out) and nn.Linear's
    (out, in), either way; the other tensors as they are."""
    projections = tuple(f"{name}.weight" for name in CONV1D_PROJECTIONS)
    return {key: value.T if key.endswith(projections) else value for key, value in state_dict.items()}


def load_device(device_map) -> torch.device | None:
    """The one device `from_pretrained` loads the weights onto: the default device, or the one `device_map` names;
    None when it spreads them (a dict or a plan such as "auto", fitted by accelerate to each device's memory)."""
    if device_map is None:
        return torch.get_default_device()
    if isinstance(device_map, dict) or device_map in _SPREAD_DEVICE_MAPS:
        return None
    try:
        return torch.device(device_map)
    except (RuntimeError, TypeError):
        return None  # not a device: transformers' error


def from_pretrained_checked(load: Callable, source, head_prefixes: tuple[str, ...], *model_args, **kwargs):
    """`PreTrainedModel.from_pretrained` (`load`) with every way a checkpoint can be wrong as a clear error.

    Nothing is unpickled: weights come from safetensors, or from `torch.load(weights_only=True)`, and asking for
    `weights_only=False` is refused. A truncated or corrupted safetensors file is an OSError naming the checkpoint.
    Weights that do not fit the model (another size, another model family, more layers than the config has) are a
    ValueError naming the tensors, where transformers would initialise them at random or drop them with a warning;
    only weights that start with `head_prefixes` (a task head added for fine-tuning, or one the checkpoint holds and
    this model has not) may be missing from the checkpoint or left out of the model. NaN or inf weights are a
    ValueError naming the tensors.
    """
    where = checkpoint_name(source)
    if kwargs.get("weights_only", True) is not True:
        raise ValueError(
            f"weights_only={kwargs['weights_only']!r} is refused: weights are read from safetensors or with "
            f"torch.load(weights_only=True), never by unpickling arbitrary objects, which can run code."
        )
    wants_info = kwargs.pop("output_loading_info", False)
    check_shapes = not kwargs.get("ignore_mismatched_sizes", False)
    kwargs["ignore_mismatched_sizes"] = True  # the mismatches come back in the loading info; raised below
    # transformers builds the model on the meta device: its size is checked against the device of the weights.
    token = LOAD_DEVICE.set(load_device(kwargs.get("device_map")))
    try:
        model, info = load(source, *model_args, output_loading_info=True, **kwargs)
    except SafetensorError as error:
        raise OSError(
            f"The safetensors weights of {where} cannot be read ({error}): the file is truncated or "
            f"corrupted. Download or save it again."
        ) from error
    finally:
        LOAD_DEVICE.reset(token)
    name = type(model).__name__
    if check_shapes and info["mismatched_keys"]:
        mismatched = sorted(info["mismatched_keys"], key=lambda entry: entry[0])
        examples = "; ".join(
            f"{key}: {tuple(saved)} saved, {tuple(built)} here" for key, saved, built in mismatched[:3]
        )
        raise WeightShapeMismatchError(
            f"{len(mismatched)} weights of {where} do not fit the {name} built from its config "
            f"({examples}): the weights belong to a model of another size than its config.json says. Pass "
            f"ignore_mismatched_sizes=True to initialise them anew instead (e.g. a task head for other labels)."
        )
    missing = sorted(key for key in info["missing_keys"] if not key.startswith(head_prefixes))
    unexpected = sorted(key for key in info["unexpected_keys"] if not key.startswith(head_prefixes))
    if missing:
        raise ValueError(
            f"{where} lacks {len(missing)} weights of {name} (e.g. {', '.join(missing[:3])})"
            + (f" and holds others instead (e.g. {', '.join(unexpected[:3])})" if unexpected else "")
            + ": it is not a checkpoint of this model family. Load it with its own class or the Auto classes."
        )
    if unexpected:
        raise ValueError(
            f"{where} holds {len(unexpected)} weights that {name} has no place for (e.g. "
            f"{', '.join(unexpected[:3])}): they belong to a bigger model than its config.json says, or to another "
            f"model. Fix the config, or load the checkpoint with the class it was saved from."
        )
    check_finite_weights(model, source)
    # Loaded into nn.Linear, transposed or not: the model saves in its own layout from now on.
    if getattr(model.config, "weight_layout", None) == "conv1d":
        model.config.weight_layout = "linear"
    return (model, info) if wants_info else model


def checkpoint_name(source) -> str:
    """The checkpoint's name in errors: its folder or Hub name, or the state dict of `from_pretrained(None, ...)`."""
    return repr(os.fspath(source)) if source is not None else "the given state_dict"


def check_finite_weights(model: torch.nn.Module, source) -> None:
    """Every loaded parameter and buffer finite, else a ValueError naming the tensors that are not (a checkpoint
    saved after training diverged, or corrupted bytes that still parse). Offloaded (meta) tensors are not read."""
    bad = []
    for key, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.device.type == "meta" or not tensor.is_floating_point():
            continue
        # A NaN or inf makes the sum NaN or inf: one fast reduction per tensor, counted only when it is not finite.
        if not torch.isfinite(tensor.detach().sum(dtype=torch.float32)):
            count = int((~torch.isfinite(tensor.detach())).sum())
            if count:  # else only the sum overflowed
                bad.append(f"{key} ({count:,} of {tensor.numel():,} values)")
    if bad:
        raise ValueError(
            f"{checkpoint_name(source)} holds NaN or inf weights: {'; '.join(bad[:3])}"
            + (f" and {len(bad) - 3} more tensors" if len(bad) > 3 else "")
            + ". The checkpoint was saved after training diverged, or is corrupted: load an earlier one."
        )


class StrictLoadingMixin:
    """Gives a `PreTrainedModel` subclass (listed before `PreTrainedModel` among its bases) the strict
    `from_pretrained`. The class names in `_head_prefixes` the heads a checkpoint may lack or hold without this
    model having them."""

    _head_prefixes: tuple[str, ...] = ()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, stricter: a checkpoint that is corrupted, pickled code, or the weights
        of another model is an error, never a model with random or dropped weights (see `from_pretrained_checked`);
        only the heads under `_head_prefixes` may be missing (they start from their initialisation) or left out."""
        return from_pretrained_checked(
            super().from_pretrained, pretrained_model_name_or_path, cls._head_prefixes, *model_args, **kwargs
        )


__all__ = [
    "CONV1D_PROJECTIONS",
    "Conv1DLayout",
    "StrictLoadingMixin",
    "WeightShapeMismatchError",
    "check_finite_weights",
    "from_pretrained_checked",
    "load_device",
    "register_conv1d_layout",
    "swap_projection_layout",
]
