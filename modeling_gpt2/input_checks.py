"""The checks of a causal LM's inputs and labels: every way a batch can be wrong is a ValueError that names the value
and the limit, raised before any computation (where torch would index out of range or broadcast silently). Also the
check that a config's model fits in memory, before any module is built.

Shared by GPT-1 and GPT-2: GPT-2's copy is the original, and GPT-1's is generated from it, byte for byte, by
`make fix-copies` (utils/check_copies.py). The config is read by its fields only (`vocab_size`, `n_positions`,
`n_embd`, `n_head`).
"""

import contextvars
import difflib
import inspect
import math
import os
from collections.abc import Callable

import torch
from torch import nn
from transformers import PreTrainedConfig
from transformers.cache_utils import Cache
from transformers.integrations import is_deepspeed_zero3_enabled
from transformers.loss.loss_utils import LOSS_MAPPING
from transformers.modeling_flash_attention_utils import FlashAttentionKwargs
from transformers.utils.generic import TransformersKwargs

# The keyword arguments a forward takes beyond its own parameters, read from transformers: those every transformers
# model takes (`TransformersKwargs`: Trainer's `num_items_in_batch`, `output_attentions`, `output_hidden_states`, the
# packed-sequence lengths of `FlashAttentionKwargs` for the attention backends, ...), and the causal-LM loss's own
# (`shift_labels`, `ignore_index`). Then two names older callers pass: `past_key_values` (the cache's name before
# transformers 5.24) and `cache_position` (given by earlier transformers; the cache knows its length). `return_dict`
# never gets here: transformers' output decorators take it.
_LOSS_PARAMETERS = inspect.signature(LOSS_MAPPING["ForCausalLM"]).parameters
_LOSS_KWARGS = set(_LOSS_PARAMETERS) - {"logits", "labels", "vocab_size", "kwargs"}
FORWARD_KWARGS = frozenset(
    {*TransformersKwargs.__annotations__, *FlashAttentionKwargs.__annotations__, *_LOSS_KWARGS}
    | {"past_key_values", "cache_position"}
)


def check_inputs(
    config: PreTrainedConfig,
    input_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    cache: Cache | None,
    token_type_ids: torch.Tensor | None = None,
) -> int:
    """Every way a batch can be wrong, as a ValueError naming the value and the limit; returns the cached length.

    The length limit is on positions: without `position_ids`, cached + new tokens must fit in `n_positions`; with
    them, every position must lie in [0, n_positions), so a packed row (positions restarting at 0 per document, as
    transformers' `DataCollatorWithFlattening` makes) may be longer than the context. The checks that read tensor
    values (id range, mask values, NaN) are skipped while torch.compile traces, where they would break the graph;
    types and shapes are always checked.
    """
    past_length, known_past = _cached_length(cache)
    batch_size, seq_len = _check_input_shape(config, input_ids, inputs_embeds)
    _check_length_and_cache(config, cache, past_length, known_past, position_ids, batch_size, seq_len)
    _check_attention_mask_shape(config, attention_mask, batch_size, seq_len, past_length, known_past)
    _check_position_ids_shape(position_ids, batch_size, seq_len)
    _check_token_type_ids_shape(token_type_ids, batch_size, seq_len)
    if torch.compiler.is_compiling():
        return past_length
    _check_input_values(config, input_ids, inputs_embeds, attention_mask, token_type_ids)
    _check_position_values(config, position_ids, past_length, seq_len)
    return past_length


def _cached_length(cache: Cache | None) -> tuple[int | torch.Tensor, bool]:
    """The number of positions `cache` holds (0 without one), and whether that number is known: while torch.compile
    traces a StaticCache, it is a tensor of unknown value."""
    if cache is not None and not isinstance(cache, Cache):
        raise ValueError(
            f"`cache` must be a transformers Cache (e.g. DynamicCache()), got {type(cache).__name__}: tuples of "
            f"(key, value) pairs are not read."
        )
    past_length = cache.get_seq_length() if cache is not None else 0
    if isinstance(past_length, torch.Tensor) and not torch.compiler.is_compiling():
        past_length = int(past_length)  # a StaticCache counts its length in a tensor
    # While torch.compile traces a StaticCache, the cached length is a tensor of unknown value: checks that need it
    # are left to eager runs (a graph break per decoding step would cost more than the checks are worth).
    known_past = not isinstance(past_length, torch.Tensor)
    return past_length, known_past


def _check_input_shape(
    config: PreTrainedConfig, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None
) -> tuple[int, int]:
    """Exactly one of `input_ids` (B, T) of integers and `inputs_embeds` (B, T, n_embd) of floats, neither empty;
    returns (B, T)."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of `input_ids` and `inputs_embeds`.")
    if input_ids is not None:
        if input_ids.ndim != 2:
            raise ValueError(
                f"`input_ids` must have shape (batch_size, sequence_length), got shape {tuple(input_ids.shape)}."
            )
        if input_ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"`input_ids` must be an integer tensor, got dtype {input_ids.dtype} (expected torch.int64 or "
                f"torch.int32)."
            )
        batch_size, seq_len = input_ids.shape
    else:
        if inputs_embeds.ndim != 3 or inputs_embeds.shape[-1] != config.n_embd:
            raise ValueError(
                f"`inputs_embeds` must have shape (batch_size, sequence_length, n_embd={config.n_embd}), got shape "
                f"{tuple(inputs_embeds.shape)}."
            )
        if not inputs_embeds.is_floating_point():
            raise ValueError(f"`inputs_embeds` must be a floating-point tensor, got dtype {inputs_embeds.dtype}.")
        batch_size, seq_len = inputs_embeds.shape[:2]
    if batch_size == 0 or seq_len == 0:
        raise ValueError(f"The batch is empty: batch_size={batch_size}, sequence_length={seq_len}.")
    return batch_size, seq_len


def _check_length_and_cache(
    config: PreTrainedConfig,
    cache: Cache | None,
    past_length: int | torch.Tensor,
    known_past: bool,
    position_ids: torch.Tensor | None,
    batch_size: int,
    seq_len: int,
) -> None:
    """Cached + new tokens fit in `n_positions` (unless `position_ids` say where each token is), and a cache holds as
    many sequences as the batch."""
    if known_past and position_ids is None and past_length + seq_len > config.n_positions:
        raise ValueError(
            f"Sequence too long: {past_length} cached + {seq_len} new = {past_length + seq_len} positions, but the "
            f"model has n_positions={config.n_positions}."
        )
    has_layers = known_past and past_length and getattr(cache, "layers", None)
    cached_keys = getattr(cache.layers[0], "keys", None) if has_layers else None
    if isinstance(cached_keys, torch.Tensor) and cached_keys.ndim == 4 and cached_keys.shape[0] != batch_size:
        raise ValueError(f"The cache holds {cached_keys.shape[0]} sequences, but the batch has {batch_size}.")


def _check_attention_mask_shape(
    config: PreTrainedConfig,
    attention_mask: torch.Tensor | None,
    batch_size: int,
    seq_len: int,
    past_length: int | torch.Tensor,
    known_past: bool,
) -> None:
    """A 2D mask covers the cached and the new positions of each row; a prepared 4D mask broadcasts over the batch
    and the heads and covers at least the cached and new positions."""
    if attention_mask is not None and attention_mask.ndim == 2:
        expected = (batch_size, past_length + seq_len)
        if known_past and tuple(attention_mask.shape) != expected:
            raise ValueError(
                f"`attention_mask` has shape {tuple(attention_mask.shape)}, expected (batch_size, cached + new "
                f"positions) = {expected}."
            )
        if attention_mask.is_complex():
            raise ValueError(
                f"`attention_mask` must hold 0 and 1 (bool, int or float), got dtype {attention_mask.dtype}."
            )
    elif attention_mask is not None and attention_mask.ndim == 4:
        # A prepared additive or boolean mask: (batch_size or 1, n_head or 1, new positions, >= cached + new).
        rows, heads, queries, keys = attention_mask.shape
        if (
            rows not in (1, batch_size)
            or heads not in (1, config.n_head)
            or queries != seq_len
            or (known_past and keys < seq_len + past_length)
        ):
            raise ValueError(
                f"A 4D `attention_mask` must have shape (batch_size={batch_size} or 1, n_head={config.n_head} or 1, "
                f"{seq_len}, at least {past_length + seq_len}), got {tuple(attention_mask.shape)}."
            )
    elif attention_mask is not None:
        raise ValueError(
            f"`attention_mask` must be 2D (batch_size, positions) or a prepared 4D mask, got shape "
            f"{tuple(attention_mask.shape)}."
        )


def _check_position_ids_shape(position_ids: torch.Tensor | None, batch_size: int, seq_len: int) -> None:
    """Integer positions, one per new token, shared by the batch or one row per sequence."""
    if position_ids is None:
        return
    if position_ids.is_floating_point() or position_ids.is_complex() or position_ids.dtype == torch.bool:
        raise ValueError(f"`position_ids` must be an integer tensor, got dtype {position_ids.dtype}.")
    if position_ids.shape[-1] != seq_len:
        raise ValueError(f"`position_ids` has {position_ids.shape[-1]} positions, the input has {seq_len}.")
    if position_ids.ndim > 2 or (position_ids.ndim == 2 and position_ids.shape[0] not in (1, batch_size)):
        raise ValueError(
            f"`position_ids` must have shape ({batch_size} or 1, {seq_len}) or ({seq_len},), got shape "
            f"{tuple(position_ids.shape)}."
        )


def _check_token_type_ids_shape(token_type_ids: torch.Tensor | None, batch_size: int, seq_len: int) -> None:
    """Integer segment ids of the input's shape."""
    if token_type_ids is None:
        return
    if token_type_ids.is_floating_point() or token_type_ids.is_complex() or token_type_ids.dtype == torch.bool:
        raise ValueError(f"`token_type_ids` must be an integer tensor, got dtype {token_type_ids.dtype}.")
    if tuple(token_type_ids.shape) != (batch_size, seq_len):
        raise ValueError(
            f"`token_type_ids` has shape {tuple(token_type_ids.shape)}, expected the input's (batch_size, "
            f"sequence_length) = {(batch_size, seq_len)}."
        )


def _check_input_values(
    config: PreTrainedConfig,
    input_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    token_type_ids: torch.Tensor | None,
) -> None:
    """The checks that read tensor values (one device sync each): segment and token ids in the vocabulary, finite
    embeddings, a 2D mask of 0 and 1."""
    if token_type_ids is not None:
        low, high = (int(value) for value in torch.aminmax(token_type_ids))
        if low < 0 or high >= config.vocab_size:
            raise ValueError(
                f"`token_type_ids` must lie in [0, {config.vocab_size}) (they are embedded by the token embedding, as "
                f"in transformers' GPT-2 and OpenAI-GPT), got values in [{low}, {high}]."
            )
    if input_ids is not None:
        low, high = (int(value) for value in torch.aminmax(input_ids))
        if low < 0 or high >= config.vocab_size:
            bad = low if low < 0 else high
            raise ValueError(f"Token id {bad} is outside the vocabulary [0, {config.vocab_size}).")
    elif not torch.isfinite(inputs_embeds).all():
        where = tuple((~torch.isfinite(inputs_embeds)).nonzero()[0].tolist())
        raise ValueError(f"`inputs_embeds` contains NaN or inf (first at index {where}): every value must be finite.")
    if attention_mask is not None and attention_mask.ndim == 2 and attention_mask.dtype != torch.bool:
        not_binary = (attention_mask != 0) & (attention_mask != 1)
        if not_binary.any():
            values = torch.unique(attention_mask[not_binary]).tolist()
            raise ValueError(
                f"`attention_mask` must hold 1 for tokens and 0 for padding, got the values {values[:5]} as well."
            )


def _check_position_values(
    config: PreTrainedConfig, position_ids: torch.Tensor | None, past_length: int, seq_len: int
) -> None:
    """Explicit positions lie in [0, n_positions): the model has no position embedding beyond."""
    if position_ids is None:
        return
    low, high = (int(value) for value in torch.aminmax(position_ids))
    if low < 0 or high >= config.n_positions:
        context = f" ({past_length} cached + {seq_len} new tokens)" if past_length else ""
        raise ValueError(
            f"`position_ids` must lie in [0, n_positions={config.n_positions}), got values in [{low}, {high}]"
            f"{context}: the model has no position embedding beyond n_positions - 1."
        )


def check_forward_kwargs(forward: Callable, kwargs: dict) -> None:
    """A keyword argument that `forward` (a model's forward, with `**kwargs`) neither names nor passes on to
    transformers (`FORWARD_KWARGS`) is a ValueError naming it and the accepted ones, where it would be swallowed
    silently (a misspelt `attention_masks=` would run the batch without its mask)."""
    unknown = [name for name in kwargs if name not in FORWARD_KWARGS]
    if not unknown:
        return
    own = [name for name in inspect.signature(forward).parameters if name not in ("self", "kwargs")]
    close = difflib.get_close_matches(unknown[0], [*own, *FORWARD_KWARGS], n=1)
    raise ValueError(
        f"{forward.__qualname__}() got unexpected keyword argument{'s' if len(unknown) > 1 else ''} "
        f"{', '.join(map(repr, unknown))}" + (f" (did you mean {close[0]!r}?)" if close else "") + f". It takes "
        f"{', '.join(own)}, and the keyword arguments of transformers: {', '.join(sorted(FORWARD_KWARGS))}."
    )


def check_labels(config: PreTrainedConfig, labels: torch.Tensor, expected_shape: tuple[int, ...]) -> None:
    """Next-token targets: the input's shape, integer ids in the vocabulary or -100 (ignored)."""
    if tuple(labels.shape) != tuple(expected_shape):
        raise ValueError(
            f"`labels` has shape {tuple(labels.shape)}, expected the input's (batch_size, sequence_length) "
            f"= {tuple(expected_shape)}."
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"`labels` must be integer token ids, got dtype {labels.dtype}.")
    if torch.compiler.is_compiling():
        return
    real = labels[labels != -100]
    if real.numel():
        low, high = int(real.min()), int(real.max())
        if low < 0 or high >= config.vocab_size:
            bad = low if low < 0 else high
            raise ValueError(
                f"Label {bad} is outside the vocabulary [0, {config.vocab_size}); -100 marks an ignored position."
            )


def check_num_items_in_batch(num_items_in_batch: torch.Tensor | float | None, num_targets: torch.Tensor) -> None:
    """Trainer's `num_items_in_batch`, the number of targets in the whole accumulated batch that a summed loss is
    divided by: a finite positive number (a tensor of them under DataParallel), or 0 when this batch has no target
    either (a fully ignored accumulation window, whose loss is 0). 0 with targets would give an infinite loss, a
    negative number a negative one. `num_targets` is this batch's count. Skipped while torch.compile traces."""
    if num_items_in_batch is None or torch.compiler.is_compiling():
        return
    is_tensor = isinstance(num_items_in_batch, torch.Tensor)
    value = num_items_in_batch.min().item() if is_tensor else num_items_in_batch
    if math.isfinite(value) and value > 0:
        return  # the usual case: this batch's targets are not counted (no second device sync)
    targets = int(num_targets)
    if not (value == 0 and targets == 0):
        raise ValueError(
            f"`num_items_in_batch` (the number of targets in the whole accumulated batch, which the summed loss is "
            f"divided by) must be a positive number, got {value}"
            + (f" while this batch alone has {targets} targets" if targets else "")
            + ". Pass None for the mean over this batch's targets."
        )


# While `from_pretrained` builds a model on the meta device (transformers builds it there, then loads the weights), the
# device the weights go to; set by `loading.py`, read by `check_model_fits`.
LOAD_DEVICE: contextvars.ContextVar[torch.device | None] = contextvars.ContextVar("LOAD_DEVICE", default=None)
GIB = 2**30
SIZE_FIELDS = ("n_layer", "n_embd", "vocab_size", "n_positions")  # the fields a model's size grows with


def device_memory(device: torch.device) -> int | None:
    """The memory of `device` in bytes: the machine's physical RAM for the CPU, the GPU's for CUDA; None when unknown.
    All of it, not what is free now: the check refuses what can never fit, and leaves the rest to the allocator."""
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.mem_get_info(device)[1]
    if device.type == "cpu" and hasattr(os, "sysconf"):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if device.type == "cpu":
        try:
            import psutil  # Windows, which has no sysconf
        except ImportError:
            return None
        return psutil.virtual_memory().total
    return None


def check_model_fits(model_name: str, config: PreTrainedConfig, num_parameters: int) -> None:
    """A model whose parameters alone need more memory than its device has is a ValueError naming the size, raised
    before any module is built (a 100,000-layer config would take minutes to build, then fail in the allocator).

    The device and dtype are those a parameter created now gets: the default ones, or those of a context such as
    accelerate's `init_empty_weights`. A model built on the meta device holds no memory and is not checked, except
    while `from_pretrained` builds it there to load its weights onto `LOAD_DEVICE`. DeepSpeed ZeRO-3, which
    partitions the parameters as they are built, is not checked either."""
    probe = nn.Module()
    probe.register_parameter("weight", nn.Parameter(torch.empty(0)))
    device, dtype = probe.weight.device, probe.weight.dtype
    if device.type == "meta":
        device = LOAD_DEVICE.get()
    if device is None or device.type == "meta" or is_deepspeed_zero3_enabled():
        return
    memory = device_memory(device)
    size = num_parameters * dtype.itemsize
    if memory is not None and size > memory:
        fields = ", ".join(f"{name}={getattr(config, name)}" for name in SIZE_FIELDS)
        where = "the RAM of this machine (cpu)" if device.type == "cpu" else f"the memory of {device}"
        raise ValueError(
            f"A {model_name} of this config ({fields}) has {num_parameters:,} parameters: {size / GIB:,.1f} GiB in "
            f"{dtype}, more than the {memory / GIB:,.1f} GiB of {where}. Use a smaller config or dtype, or build it "
            f"on the meta device (`with torch.device('meta'):`) to plan where its weights go."
        )


__all__ = [
    "FORWARD_KWARGS",
    "LOAD_DEVICE",
    "check_forward_kwargs",
    "check_inputs",
    "check_labels",
    "check_model_fits",
    "check_num_items_in_batch",
    "device_memory",
]
