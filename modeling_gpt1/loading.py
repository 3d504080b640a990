"""Strict loading: `from_pretrained` that turns every way a checkpoint can be wrong into a clear error.

transformers' `from_pretrained` initialises at random, with a warning, the weights a checkpoint lacks or holds in
another shape; here that is a ValueError naming the tensors, except for the parameters a model declares new
(`_new_head_prefixes`: a task head added for fine-tuning, a tied LM head that is not stored).

Shared by GPT-1 and GPT-2 and byte-identical in both packages (tests/check_copies.py).
"""

import os
from collections.abc import Callable

from safetensors import SafetensorError


def from_pretrained_checked(load: Callable, source, new_head_prefixes: tuple[str, ...], *model_args, **kwargs):
    """`PreTrainedModel.from_pretrained` (`load`) with every way a checkpoint can be wrong as a clear error.

    Nothing is unpickled: weights come from safetensors, or from `torch.load(weights_only=True)`, and asking for
    `weights_only=False` is refused. A truncated or corrupted safetensors file is an OSError naming the checkpoint.
    Weights that do not fit the model (another size, another model family) are a ValueError naming the tensors,
    where transformers would initialise them at random with a warning; only the parameters that start with
    `new_head_prefixes` (a task head added for fine-tuning) may be missing from the checkpoint.
    """
    if kwargs.get("weights_only", True) is not True:
        raise ValueError(
            f"weights_only={kwargs['weights_only']!r} is refused: weights are read from safetensors or with "
            f"torch.load(weights_only=True), never by unpickling arbitrary objects, which can run code."
        )
    wants_info = kwargs.pop("output_loading_info", False)
    check_shapes = not kwargs.get("ignore_mismatched_sizes", False)
    kwargs["ignore_mismatched_sizes"] = True  # the mismatches come back in the loading info; raised below
    try:
        model, info = load(source, *model_args, output_loading_info=True, **kwargs)
    except SafetensorError as error:
        raise OSError(
            f"The safetensors weights of {os.fspath(source)!r} cannot be read ({error}): the file is truncated or "
            f"corrupted. Download or save it again."
        ) from error
    name = type(model).__name__
    if check_shapes and info["mismatched_keys"]:
        mismatched = sorted(info["mismatched_keys"], key=lambda entry: entry[0])
        examples = "; ".join(
            f"{key}: {tuple(saved)} saved, {tuple(built)} here" for key, saved, built in mismatched[:3]
        )
        raise ValueError(
            f"{len(mismatched)} weights of {os.fspath(source)!r} do not fit the {name} built from its config "
            f"({examples}): the weights belong to a model of another size than its config.json says."
        )
    missing = sorted(key for key in info["missing_keys"] if not key.startswith(new_head_prefixes))
    if missing:
        unexpected = sorted(info["unexpected_keys"])
        raise ValueError(
            f"{os.fspath(source)!r} lacks {len(missing)} weights of {name} (e.g. {', '.join(missing[:3])})"
            + (f" and holds others instead (e.g. {', '.join(unexpected[:3])})" if unexpected else "")
            + ": it is not a checkpoint of this model family. Load it with its own class or the Auto classes."
        )
    return (model, info) if wants_info else model


class StrictLoadingMixin:
    """Gives a `PreTrainedModel` subclass (listed before `PreTrainedModel` among its bases) the strict
    `from_pretrained`. The class names the parameters a checkpoint may lack in `_new_head_prefixes`."""

    _new_head_prefixes: tuple[str, ...] = ()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, stricter: a checkpoint that is corrupted, pickled code, or the weights
        of another model is an error, never a model with random weights (see `from_pretrained_checked`); only the
        parameters under `_new_head_prefixes` may be missing and start from their initialisation."""
        return from_pretrained_checked(
            super().from_pretrained, pretrained_model_name_or_path, cls._new_head_prefixes, *model_args, **kwargs
        )


__all__ = ["StrictLoadingMixin", "from_pretrained_checked"]
