"""What differs between the transformers 5.x releases this package supports, in one place: the minimum release,
checked at import with an error naming it, and the shims the model files use instead of the names that changed.

transformers 5.24 renamed the KV cache from `past_key_values` to `cache`: in `create_causal_mask`, in the output
classes (`BaseModelOutputWithPast.cache`) and in what `generate` passes to `forward`. Earlier releases also lack
`slice_logits_to_keep`. Everything else the models use is the same from `MINIMUM_TRANSFORMERS` on.

Shared by GPT-1 and GPT-2: GPT-2's copy is the original, and GPT-1's is generated from it, byte for byte, by
`make fix-copies` (utils/check_copies.py). A saved folder's remote code imports it (the configuration file first), so
the check also runs where gpt-origins is not installed.
"""

import functools
import inspect

import torch
import transformers
from packaging import version

MINIMUM_TRANSFORMERS = "5.12.0"
TRANSFORMERS_VERSION = version.parse(transformers.__version__)

if TRANSFORMERS_VERSION < version.parse(MINIMUM_TRANSFORMERS) or TRANSFORMERS_VERSION.major >= 6:
    raise ImportError(
        f"gpt-origins models need transformers >= {MINIMUM_TRANSFORMERS}, < 6; this environment has transformers "
        f"{transformers.__version__}. Install a supported one: pip install 'transformers>={MINIMUM_TRANSFORMERS},<6'."
    )

from transformers.masking_utils import create_causal_mask  # noqa: E402  (after the version check)
from transformers.modeling_outputs import BaseModelOutputWithPast  # noqa: E402
from transformers.utils.deprecation import deprecate_kwarg  # noqa: E402

# The cache's name: "cache" from transformers 5.24 on, "past_key_values" before.
CACHE_NAME = "cache" if "cache" in inspect.signature(create_causal_mask).parameters else "past_key_values"
OUTPUT_CACHE_FIELD = "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"


def accepts_past_key_values(forward):
    """A forward that takes the cache as `cache=` also reads `past_key_values=`, the name before transformers 5.24:
    from 5.24 on with transformers' own FutureWarning (as its GPT-2 gives it), silently before (where `generate`
    itself passes that name). Both names at once are a ValueError: one would be ignored."""
    if CACHE_NAME == "cache":
        return deprecate_kwarg("past_key_values", version="5.40.0", new_name="cache", raise_if_both_names=True)(
            forward
        )

    @functools.wraps(forward)
    def renamed(*args, **kwargs):
        if "past_key_values" in kwargs:
            if kwargs.get("cache") is not None:
                raise ValueError("Pass the KV cache once, as `cache=` or as `past_key_values=`, not both.")
            kwargs["cache"] = kwargs.pop("past_key_values")
        return forward(*args, **kwargs)

    return renamed


def causal_mask(config, inputs_embeds, attention_mask, cache, position_ids):
    """transformers' `create_causal_mask`, its cache argument under the installed release's name."""
    return create_causal_mask(
        config=config,
        inputs_embeds=inputs_embeds,
        attention_mask=attention_mask,
        position_ids=position_ids,
        **{CACHE_NAME: cache},
    )


def output_with_cache(output_class, cache, **fields):
    """An output (`BaseModelOutputWithPast`, `CausalLMOutputWithPast`) holding `cache` under the installed release's
    field name, which is what `generate` reads."""
    return output_class(**fields, **{OUTPUT_CACHE_FIELD: cache})


def cache_of(output):
    """The cache an output holds, whichever release's field name it has."""
    return getattr(output, OUTPUT_CACHE_FIELD)


def keep_last(hidden_states: torch.Tensor, logits_to_keep: int | torch.Tensor) -> torch.Tensor:
    """The positions the logits are computed for: the last `logits_to_keep` (0 = all), or those of an index tensor.
    hidden_states: (B, T, C) -> (B, T', C)."""
    if isinstance(logits_to_keep, int):
        return hidden_states[:, -logits_to_keep:, :] if logits_to_keep else hidden_states
    return hidden_states[:, logits_to_keep, :]


def enable_activation_checkpointing(model, use_reentrant: bool = False) -> None:
    """Activation (gradient) checkpointing on every block: `activation_checkpointing_enable` from transformers 5.24
    on, `gradient_checkpointing_enable` (deprecated there) before."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": use_reentrant})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": use_reentrant})


__all__ = [
    "CACHE_NAME",
    "MINIMUM_TRANSFORMERS",
    "OUTPUT_CACHE_FIELD",
    "TRANSFORMERS_VERSION",
    "accepts_past_key_values",
    "cache_of",
    "causal_mask",
    "enable_activation_checkpointing",
    "keep_last",
    "output_with_cache",
]
