"""GPT-1 (Radford et al. 2018) as a transformers 5.x model: attention -> MLP -> post-LN block -> base model -> LM head
-> the double-heads model that fine-tunes on the paper's four task families.

Parameter names and layouts are those of the released checkpoint as transformers stores it
(openai-community/openai-gpt): `tokens_embed`, `positions_embed`, `h.{i}.attn.c_attn`, `h.{i}.ln_1`, `h.{i}.mlp.c_fc`,
`h.{i}.ln_2`, Conv1D weights stored (in_features, out_features), no final LayerNorm, the LM head tied to
`tokens_embed`. Folders saved by transformers' `OpenAIGPTLMHeadModel` and `OpenAIGPTDoubleHeadsModel` load here with
`from_pretrained` as they are.

The attention, the MLP and the input checks are GPT-2's, copied from modeling_gpt2 (a saved GPT-1 folder must load
without gpt-origins installed, so this file imports nothing from the GPT-2 package); a test keeps the copies equal.
"""

import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, slice_logits_to_keep
from transformers.pytorch_utils import Conv1D
from transformers.utils import ModelOutput, can_return_tuple, logging
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .configuration_gpt1 import GPT1OriginsConfig

logger = logging.get_logger(__name__)

# Every Auto class a saved folder of this package loads with (see `GPT1OriginsPreTrainedModel.save_pretrained`).
AUTO_MAP = {
    "AutoModel": "modeling_gpt1.GPT1OriginsModel",
    "AutoModelForCausalLM": "modeling_gpt1.GPT1OriginsLMHeadModel",
    "AutoModelForSequenceClassification": "modeling_gpt1.GPT1OriginsDoubleHeadsModel",
    "AutoModelForMultipleChoice": "modeling_gpt1.GPT1OriginsDoubleHeadsModel",
}


# Copied from modeling_gpt2.modeling_gpt2.eager_attention_forward
def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain softmax attention; the signature every backend of `ALL_ATTENTION_FUNCTIONS` shares.

    query: (B, nh, T, hs); key, value: (B, nh, S, hs) with S = cached + new positions; attention_mask: additive
    (B, 1, T, S) from `create_causal_mask`, causal and padding already in it. Returns (B, T, nh, hs) and (B, nh, T, S).
    """
    attn_weights = torch.matmul(query, key.transpose(-1, -2)) * scaling  # (B, nh, T, S)
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    # Softmax in fp32 whatever the compute dtype: bf16 exponentials lose the small probabilities.
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(value.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value)  # (B, nh, T, hs)
    attn_output = attn_output.transpose(1, 2).contiguous()  # (B, T, nh, hs)
    return attn_output, attn_weights


# Copied from modeling_gpt2.modeling_gpt2.GPT2OriginsAttention with GPT2Origins->GPT1Origins
class GPT1OriginsAttention(nn.Module):
    """Causal multi-head self-attention with one fused QKV projection (`c_attn`), as in the released weights."""

    def __init__(self, config: GPT1OriginsConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.embed_dim = config.n_embd
        self.num_heads = config.n_head
        self.head_dim = self.embed_dim // self.num_heads
        self.is_causal = True  # read by the sdpa / flash backends

        self.scaling = self.head_dim**-0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scaling /= float(layer_idx + 1)

        self.c_attn = Conv1D(3 * self.embed_dim, self.embed_dim)
        self.c_proj = Conv1D(self.embed_dim, self.embed_dim)
        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, seq_len, _ = hidden_states.shape  # (B, T, C)
        query, key, value = self.c_attn(hidden_states).split(self.embed_dim, dim=2)  # 3 x (B, T, C)
        head_shape = (batch_size, seq_len, self.num_heads, self.head_dim)
        query = query.view(head_shape).transpose(1, 2)  # (B, nh, T, hs)
        key = key.view(head_shape).transpose(1, 2)  # (B, nh, T, hs)
        value = value.view(head_shape).transpose(1, 2)  # (B, nh, T, hs)

        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx)  # (B, nh, S, hs), S = past + T

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.attn_dropout.p if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )  # (B, T, nh, hs)
        attn_output = attn_output.reshape(batch_size, seq_len, self.embed_dim).contiguous()  # (B, T, C)
        attn_output = self.resid_dropout(self.c_proj(attn_output))
        return attn_output, attn_weights


# Copied from modeling_gpt2.modeling_gpt2.GPT2OriginsMLP with GPT2Origins->GPT1Origins
class GPT1OriginsMLP(nn.Module):
    """Position-wise feed-forward: C -> 4C -> GELU (tanh approximation) -> C."""

    def __init__(self, config: GPT1OriginsConfig):
        super().__init__()
        inner_dim = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.c_fc = Conv1D(inner_dim, config.n_embd)
        # "gelu_new" (the tanh approximation) as torch's one fused kernel: the same function to 3e-7, where
        # transformers' NewGELUActivation runs and keeps for backward five (B, T, 4C) element-wise intermediates.
        activation = "gelu_pytorch_tanh" if config.activation_function == "gelu_new" else config.activation_function
        self.act = ACT2FN[activation]
        self.c_proj = Conv1D(config.n_embd, inner_dim)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.act(self.c_fc(hidden_states))  # (B, T, 4C)
        return self.dropout(self.c_proj(hidden_states))  # (B, T, C)


class GPT1OriginsBlock(GradientCheckpointingLayer):
    """Post-LayerNorm block, as in the original Transformer and the released GPT-1 code (train.py `block`):
    h = LN(x + Attn(x)); out = LN(h + MLP(h)). GPT-2 later moved the LayerNorms to the input of each sub-block."""

    def __init__(self, config: GPT1OriginsConfig, layer_idx: int):
        super().__init__()
        self.attn = GPT1OriginsAttention(config, layer_idx)
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT1OriginsMLP(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> torch.Tensor:
        attn_output, _ = self.attn(hidden_states, attention_mask=attention_mask, cache=cache, **kwargs)
        hidden_states = self.ln_1(hidden_states + attn_output)  # (B, T, C)
        hidden_states = self.ln_2(hidden_states + self.mlp(hidden_states))  # (B, T, C)
        return hidden_states


# Copied from modeling_gpt2.modeling_gpt2._from_pretrained_checked
def _from_pretrained_checked(load: Callable, source, new_head_prefixes: tuple[str, ...], *model_args, **kwargs):
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


class GPT1OriginsPreTrainedModel(PreTrainedModel):
    config_class = GPT1OriginsConfig
    config: GPT1OriginsConfig
    base_model_prefix = "transformer"
    supports_gradient_checkpointing = True
    _no_split_modules = ["GPT1OriginsBlock"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    _can_record_outputs = {
        "hidden_states": GPT1OriginsBlock,
        "attentions": OutputRecorder(GPT1OriginsAttention, index=1),
    }
    # Checkpoints of old transformers versions store the causal-mask buffers and position ids; both are built per call.
    _keys_to_ignore_on_load_unexpected = [r"attn\.bias$", r"position_ids$"]

    def _init_weights(self, module: nn.Module):
        """N(0, 0.02) for every weight, zero biases, unit LayerNorm gains (section 4.1: "Since layernorm is used
        extensively throughout the model, a simple weight initialization of N(0, 0.02) was sufficient"); unlike GPT-2,
        no extra scaling of the residual projections."""
        super()._init_weights(module)
        if isinstance(module, Conv1D):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            init.zeros_(module.bias)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, stricter: a checkpoint that is corrupted, pickled code, or the weights
        of another model is an error, never a model with random weights (see `_from_pretrained_checked`). The task
        heads may be missing: a pre-trained checkpoint loads into the double-heads model with new heads."""
        return _from_pretrained_checked(
            super().from_pretrained,
            pretrained_model_name_or_path,
            ("lm_head.", "score.", "multiple_choice_head."),
            *model_args,
            **kwargs,
        )

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`; a class registered for an Auto class (see `__init__.py`) also names the
        package's other Auto classes in `auto_map`: `register_for_auto_class` records one Auto class per model class,
        but the double-heads model serves two, and every class lives in the one modeling file that is saved."""
        if self._auto_class is not None:
            self.config.auto_map = {**AUTO_MAP, **(getattr(self.config, "auto_map", None) or {})}
        return super().save_pretrained(save_directory, *args, **kwargs)


# Copied from modeling_gpt2.modeling_gpt2._check_inputs with GPT2Origins->GPT1Origins
def _check_inputs(
    config: GPT1OriginsConfig,
    input_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    cache: Cache | None,
) -> int:
    """Every way a batch can be wrong, as a ValueError naming the value and the limit; returns the cached length.

    The checks that read tensor values (id range, mask values, NaN) are skipped while torch.compile traces, where they
    would break the graph; types and shapes are always checked.
    """
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
    if known_past and past_length + seq_len > config.n_positions:
        raise ValueError(
            f"Sequence too long: {past_length} cached + {seq_len} new = {past_length + seq_len} positions, but the "
            f"model has n_positions={config.n_positions}."
        )
    has_layers = known_past and past_length and getattr(cache, "layers", None)
    cached_keys = getattr(cache.layers[0], "keys", None) if has_layers else None
    if isinstance(cached_keys, torch.Tensor) and cached_keys.ndim == 4 and cached_keys.shape[0] != batch_size:
        raise ValueError(f"The cache holds {cached_keys.shape[0]} sequences, but the batch has {batch_size}.")
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
    if position_ids is not None:
        if position_ids.is_floating_point() or position_ids.is_complex() or position_ids.dtype == torch.bool:
            raise ValueError(f"`position_ids` must be an integer tensor, got dtype {position_ids.dtype}.")
        if position_ids.shape[-1] != seq_len:
            raise ValueError(f"`position_ids` has {position_ids.shape[-1]} positions, the input has {seq_len}.")
        if position_ids.ndim > 2 or (position_ids.ndim == 2 and position_ids.shape[0] not in (1, batch_size)):
            raise ValueError(
                f"`position_ids` must have shape ({batch_size} or 1, {seq_len}) or ({seq_len},), got shape "
                f"{tuple(position_ids.shape)}."
            )

    if torch.compiler.is_compiling():
        return past_length
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
    if position_ids is not None:
        low, high = (int(value) for value in torch.aminmax(position_ids))
        if low < 0 or high >= config.n_positions:
            raise ValueError(f"`position_ids` must lie in [0, {config.n_positions}), got values in [{low}, {high}].")
    return past_length


# Copied from modeling_gpt2.modeling_gpt2._check_labels with GPT2Origins->GPT1Origins
def _check_labels(config: GPT1OriginsConfig, labels: torch.Tensor, expected_shape: tuple[int, ...]) -> None:
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


# Copied from modeling_gpt2.modeling_gpt2.TiedWeightGrad
class TiedWeightGrad:
    """The gradient of the weight the LM head shares with the token embedding, on its way from the head's backward to
    the embedding's.

    With tied weights autograd adds two (V, C) gradients: the head's, and the embedding's, a fresh (V, C) zero tensor
    into which the batch's rows are added. Here the head's backward (`ChunkedLMHeadLoss`) leaves its gradient with this
    object and the embedding's backward (`TiedEmbedding`), which runs after it, adds the batch's rows to it in place:
    one (V, C) tensor instead of two, and no zero-filling of the second (a 50,257 x 768 fp32 tensor is 154 MB). When
    the embedding's backward will not run in this backward pass (`torch.autograd.grad` for other inputs, a detach in
    between), the head returns its gradient as usual.
    """

    def __init__(self):
        self.embedding_node = None  # weak reference to the embedding's backward node, set by `tied_embedding`
        self.grad = None  # the head's weight gradient, (V, C), between the two backwards

    @classmethod
    def for_training_step(cls, head_weight: torch.Tensor, embedding_weight: torch.Tensor) -> "TiedWeightGrad | None":
        """One for a training step whose LM head weight is the token embedding's, else None (untied weights, no
        gradient wanted, torch.compile tracing, a tensor subclass such as a sharded DTensor, or a torch without the
        engine query this relies on)."""
        usable = (
            hasattr(torch._C, "_will_engine_execute_node")
            and head_weight is embedding_weight
            and head_weight.requires_grad
            and torch.is_grad_enabled()
            and type(head_weight.data) is torch.Tensor
            and not torch.compiler.is_compiling()
        )
        return cls() if usable else None

    def hand_over(self, grad_weight: torch.Tensor) -> bool:
        """In the head's backward: give the weight gradient to the embedding's backward if that will run."""
        node = self.embedding_node() if self.embedding_node is not None else None
        if node is None or not torch._C._will_engine_execute_node(node):
            return False
        self.grad = grad_weight
        return True


# Copied from modeling_gpt2.modeling_gpt2.TiedEmbedding
class TiedEmbedding(torch.autograd.Function):
    """`nn.functional.embedding` whose backward adds its rows to the LM head's weight gradient (see `TiedWeightGrad`).
    Same forward; the same gradient as the plain embedding plus the head, to float rounding."""

    @staticmethod
    def forward(ctx, input_ids, weight, tied_grad: TiedWeightGrad):
        # input_ids: (B, T); weight: (V, C). Returns (B, T, C).
        ctx.save_for_backward(input_ids)
        ctx.weight_shape, ctx.weight_dtype, ctx.tied_grad = weight.shape, weight.dtype, tied_grad
        return nn.functional.embedding(input_ids, weight)

    @staticmethod
    def backward(ctx, grad_output):  # grad_output: (B, T, C)
        if not ctx.needs_input_grad[1]:
            return None, None, None
        (input_ids,) = ctx.saved_tensors
        grad_weight, ctx.tied_grad.grad = ctx.tied_grad.grad, None  # (V, C), or None if the head's did not come here
        if grad_weight is None:
            grad_weight = grad_output.new_zeros(ctx.weight_shape, dtype=ctx.weight_dtype)  # (V, C)
        rows = grad_output.reshape(-1, grad_output.shape[-1]).to(grad_weight.dtype)  # (B*T, C)
        grad_weight.index_put_((input_ids.reshape(-1),), rows, accumulate=True)  # repeated ids add up
        return None, grad_weight, None


# Copied from modeling_gpt2.modeling_gpt2.tied_embedding
def tied_embedding(input_ids: torch.Tensor, weight: torch.Tensor, tied_grad: TiedWeightGrad) -> torch.Tensor:
    """The token embeddings (B, T, C) of input_ids (B, T), through `TiedEmbedding`."""
    embeddings = TiedEmbedding.apply(input_ids, weight, tied_grad)
    if embeddings.grad_fn is not None:
        tied_grad.embedding_node = weakref.ref(embeddings.grad_fn)  # weak: the graph, not this object, owns it
    return embeddings


class GPT1OriginsModel(GPT1OriginsPreTrainedModel):
    """The GPT-1 transformer: token + learned position embeddings and `n_layer` post-LN blocks. No final LayerNorm:
    each block already ends in one."""

    def __init__(self, config: GPT1OriginsConfig):
        super().__init__(config)
        self.tokens_embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.positions_embed = nn.Embedding(config.n_positions, config.n_embd)  # learned (section 4.1)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([GPT1OriginsBlock(config, layer_idx=i) for i in range(config.n_layer)])
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.tokens_embed

    def set_input_embeddings(self, new_embeddings: nn.Embedding):
        self.tokens_embed = new_embeddings

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        tied_weight_grad: TiedWeightGrad | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            Token ids; with a `cache`, only the ids that are not cached yet.
        cache (`Cache`, *optional*):
            Keys and values of earlier positions (transformers' Cache classes); filled in place when `use_cache`.
        attention_mask (`torch.Tensor` of shape `(batch_size, cached + sequence_length)`, *optional*):
            1 for real tokens, 0 for padding, on either side. When `position_ids` is not given, positions are counted
            over the real tokens only, so a left-padded prompt gets the positions it would have alone.
        position_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Explicit positions in [0, n_positions). Without an attention mask, positions that restart at 0 mark
            packed documents, and attention does not cross them.
        inputs_embeds (`torch.Tensor` of shape `(batch_size, sequence_length, n_embd)`, *optional*):
            Token embeddings to use instead of `input_ids`.
        tied_weight_grad (`TiedWeightGrad`, *optional*):
            Set by the LM heads in a training step with the chunked loss: `tokens_embed`'s backward then adds its rows
            to the head's weight gradient in place (see `TiedWeightGrad`).
        """
        kwargs.pop("output_attentions", None)
        kwargs.pop("output_hidden_states", None)
        if cache is None:
            cache = kwargs.pop("past_key_values", None)  # the name transformers < 5.24 used
        past_length = _check_inputs(self.config, input_ids, inputs_embeds, attention_mask, position_ids, cache)

        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        if inputs_embeds is None and tied_weight_grad is not None:
            inputs_embeds = tied_embedding(input_ids, self.tokens_embed.weight, tied_weight_grad)  # (B, T, C)
        elif inputs_embeds is None:
            inputs_embeds = self.tokens_embed(input_ids)  # (B, T, C)
        seq_len = inputs_embeds.shape[1]

        mask_position_ids = position_ids
        if position_ids is None:
            if attention_mask is not None and attention_mask.ndim == 2:
                # Count real tokens only: a left-padded row starts at position 0 at its first real token.
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -seq_len:]  # (B, T)
            else:
                position_ids = torch.arange(seq_len, device=inputs_embeds.device) + past_length
                position_ids = position_ids.unsqueeze(0)  # (1, T)

        hidden_states = self.drop(inputs_embeds + self.positions_embed(position_ids))  # (B, T, C)
        causal_mask = create_causal_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=cache,
            position_ids=mask_position_ids,
        )
        for block in self.h:
            hidden_states = block(hidden_states, attention_mask=causal_mask, cache=cache, **kwargs)

        return BaseModelOutputWithPast(last_hidden_state=hidden_states, cache=cache if use_cache else None)


# Copied from modeling_gpt2.modeling_gpt2.ChunkedLMHeadLoss
class ChunkedLMHeadLoss(torch.autograd.Function):
    """The LM head and its cross-entropy fused, a chunk of rows at a time: never more than (chunk_size, vocab_size)
    logits exist, and the gradients are computed in the same pass (the loss is a scalar, so backward only scales them).

    A training batch of 8 x 1024 tokens with a 50,000-token vocabulary would otherwise hold 1.6 GB of fp32
    logits, and as much again for their softmax and for the gradient. The matmuls are the plain path's (forward, two
    backward), so nothing is recomputed. Under autocast they run in the autocast dtype and the softmax in fp32, as in
    transformers' loss, which upcasts the logits.
    """

    @staticmethod
    def forward(ctx, hidden_states, weight, targets, target_weights, chunk_size: int, tied_grad=None):
        # hidden_states: (N, C); weight: (V, C); targets: (N,) token ids (any negative id: no target); target_weights:
        # (N,) float, the weight of each target's cross-entropy in the loss (0 for no target); tied_grad: a
        # `TiedWeightGrad` when the weight is also the token embedding's, else None. Returns a scalar.
        device_type = hidden_states.device.type
        dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else weight.dtype
        needs_hidden_grad, needs_weight_grad = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        ctx.weight_dtype = weight.dtype
        with torch.autocast(device_type, enabled=False):
            weight_c = weight.to(dtype)  # (V, C)
            loss = torch.zeros((), device=hidden_states.device, dtype=torch.float32)
            grad_hidden = torch.empty_like(hidden_states) if needs_hidden_grad else None  # (N, C), every row written
            grad_weight = None  # (V, C) fp32, the first chunk's product, then accumulated
            for start in range(0, hidden_states.shape[0], chunk_size):
                hidden = hidden_states[start : start + chunk_size].to(dtype)  # (n, C)
                safe_target = targets[start : start + chunk_size].clamp(min=0).unsqueeze(1)  # (n, 1)
                target_weight = target_weights[start : start + chunk_size].float()  # (n,)
                log_probs = torch.log_softmax((hidden @ weight_c.t()).float(), dim=-1)  # (n, V)
                target_log_prob = log_probs.gather(1, safe_target).squeeze(1)  # (n,)
                loss = loss - (target_log_prob * target_weight).sum()
                if not (needs_hidden_grad or needs_weight_grad):
                    continue
                # d(loss)/d(logits) = (softmax - one_hot(target)) * the target's weight.
                grad_logits = log_probs.exp_()  # (n, V), the softmax, in place
                grad_logits.scatter_add_(1, safe_target, torch.full_like(safe_target, -1.0, dtype=torch.float32))
                grad_logits.mul_(target_weight.unsqueeze(1))
                grad_logits = grad_logits.to(dtype)
                if needs_hidden_grad:
                    grad_hidden[start : start + chunk_size] = (grad_logits @ weight_c).to(grad_hidden.dtype)  # (n, C)
                if not needs_weight_grad:
                    continue
                if grad_weight is None:
                    grad_weight = (grad_logits.t() @ hidden).float()  # (V, C)
                elif dtype == torch.float32:
                    grad_weight.addmm_(grad_logits.t(), hidden)  # (V, C), accumulated in place
                else:
                    grad_weight += (grad_logits.t() @ hidden).float()  # (V, C), the sum kept in fp32
        # Kept on ctx, not saved tensors: backward scales them in place (a second (V, C) copy would double the
        # memory this saves), so they serve one backward.
        ctx.grads, ctx.used, ctx.tied_grad = (grad_hidden, grad_weight), False, tied_grad
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        if ctx.used:
            raise RuntimeError(
                "The chunked LM loss computes its gradients during forward and hands them out once: backward through "
                "it twice (retain_graph=True) is not supported. Set `config.loss_chunk_size = None` for that."
            )
        ctx.used = True
        grad_hidden, grad_weight = ctx.grads
        ctx.grads = None
        grad_hidden = grad_hidden.mul_(grad_output) if grad_hidden is not None else None
        grad_weight = grad_weight.mul_(grad_output).to(ctx.weight_dtype) if grad_weight is not None else None
        if grad_weight is not None and ctx.tied_grad is not None and ctx.tied_grad.hand_over(grad_weight):
            grad_weight = None  # the token embedding's backward adds its rows to it and returns the sum
        return grad_hidden, grad_weight, None, None, None, None


# Copied from modeling_gpt2.modeling_gpt2.chunked_lm_head_loss
def chunked_lm_head_loss(
    hidden_states: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    chunk_size: int,
    num_items_in_batch: torch.Tensor | int | None = None,
    ignore_index: int = -100,
    shift_labels: torch.Tensor | None = None,
    tied_grad: TiedWeightGrad | None = None,
    **kwargs,
) -> torch.Tensor:
    """transformers' `ForCausalLMLoss(lm_head(hidden_states), labels, ...)` without the logits: the same shift
    (position t predicts labels[t + 1]), the same mean over targets or sum / `num_items_in_batch`.

    hidden_states: (B, T, C); weight: the LM head's (V, C); labels: (B, T); tied_grad: the `TiedWeightGrad` the token
    embedding was looked up with, when the weight is shared. Returns a scalar.
    """
    if shift_labels is None:
        shift_labels = nn.functional.pad(labels, (0, 1), value=ignore_index)[..., 1:]  # (B, T)
    targets = shift_labels.reshape(-1).to(hidden_states.device)  # (B*T,)
    hidden_states = hidden_states.reshape(-1, hidden_states.shape[-1])  # (B*T, C)
    valid = (targets != ignore_index).float()  # (B*T,)
    if num_items_in_batch is None:
        divisor = valid.sum()  # a mean over no target is NaN, as in transformers
    else:
        divisor = torch.as_tensor(num_items_in_batch, device=hidden_states.device).float()
    return ChunkedLMHeadLoss.apply(hidden_states, weight, targets, valid / divisor, chunk_size, tied_grad)


class GPT1OriginsLMHeadModel(GPT1OriginsPreTrainedModel, GenerationMixin):
    """GPT-1 with its language-modelling head (the transposed token embedding): the pre-training model, L1 of
    section 3.1."""

    _tied_weights_keys = {"lm_head.weight": "transformer.tokens_embed.weight"}

    def __init__(self, config: GPT1OriginsConfig):
        super().__init__(config)
        self.transformer = GPT1OriginsModel(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.loss_type = "ForCausalLM"  # transformers' shifted cross-entropy that honours `num_items_in_batch`
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        r"""
        Arguments as in [`GPT1OriginsModel.forward`], and:

        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Next-token targets, shifted inside the model (so `labels=input_ids` works); -100 is ignored. The loss is
            the mean over the non-ignored targets, or their sum divided by `num_items_in_batch` when Trainer passes
            it, so gradient accumulation over micro-batches equals one large batch.
        logits_to_keep (`int` or `torch.Tensor`):
            Compute logits for the last `logits_to_keep` positions only (0 = all); `generate` uses 1.

        Returns `CausalLMOutputWithPast` with `loss` (scalar), `logits` (B, T, vocab_size), `cache`. In training mode
        with `labels` and `config.loss_chunk_size` set (the default), the loss is computed by `chunked_lm_head_loss`
        and `logits` is None: a training step never holds the logits of the whole batch. `model.eval()`, or
        `config.loss_chunk_size = None`, gives the logits.
        """
        chunked_loss = labels is not None and self.training and bool(self.config.loss_chunk_size)
        tied_grad = None
        if chunked_loss and input_ids is not None:
            tied_grad = TiedWeightGrad.for_training_step(self.lm_head.weight, self.transformer.tokens_embed.weight)
        outputs: BaseModelOutputWithPast = self.transformer(
            input_ids,
            cache=cache,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            tied_weight_grad=tied_grad,
            **kwargs,
        )
        hidden_states = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)

        logits, loss = None, None
        if labels is not None:
            _check_labels(self.config, labels, hidden_states.shape[:-1])
        if chunked_loss:
            # Training: the fused chunked loss, no (B, T, vocab_size) logits (they are returned as None); with tied
            # weights one (V, C) gradient serves the head and the embedding.
            chunk_size = self.config.loss_chunk_size
            loss = chunked_lm_head_loss(
                hidden_states, self.lm_head.weight, labels, chunk_size, tied_grad=tied_grad, **kwargs
            )
        else:
            logits = self.lm_head(hidden_states)  # (B, T, vocab_size)
            if labels is not None:
                loss = self.loss_function(logits, labels, vocab_size=self.config.vocab_size, **kwargs)

        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


@dataclass
class GPT1OriginsDoubleHeadsModelOutput(ModelOutput):
    r"""
    Output of [`GPT1OriginsDoubleHeadsModel`]. `N` below is the number of sequences per example: 1 for
    classification and entailment, 2 for similarity (both orderings), k for multiple choice.

    loss (`torch.FloatTensor` of shape `()`, returned with `labels`):
        The fine-tuning objective L3 = task_loss + lm_coef * lm_loss (section 3.2, equation 5).
    logits (`torch.FloatTensor` of shape `(batch_size, num_labels)`, or `(batch_size, num_choices)` for multiple
    choice):
        Task scores before the softmax (a regression score when `num_labels == 1`). Under `logits` so that Trainer's
        `compute_metrics` receives them.
    task_loss (`torch.FloatTensor` of shape `()`, returned with `labels`):
        L2: cross-entropy over the classes or the k choices, MSE for regression, BCE for multi-label.
    lm_loss (`torch.FloatTensor` of shape `()`, returned with `labels` and `input_ids`):
        L1, the auxiliary language-modelling loss on the task input, over the real tokens (attention mask): a mean per
        sequence, then averaged over the sequences of an example and over the examples, as the released code did.
    lm_logits (`torch.FloatTensor` of shape `(batch_size, [N,] sequence_length, vocab_size)`):
        Next-token scores of the LM head; the `N` dimension is there when the input had one. None in training mode
        with task labels (and `config.loss_chunk_size` set), where `lm_loss` comes from the chunked head instead.
    hidden_states (`tuple(torch.FloatTensor)`, returned with `output_hidden_states=True`):
        The embeddings' output and each block's, each of shape `(batch_size * N, sequence_length, n_embd)`.
    attentions (`tuple(torch.FloatTensor)`, returned with `output_attentions=True` and eager attention):
        Attention weights of each block, each of shape `(batch_size * N, n_head, sequence_length, sequence_length)`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    task_loss: torch.FloatTensor | None = None
    lm_loss: torch.FloatTensor | None = None
    lm_logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class GPT1OriginsMultipleChoiceHead(nn.Module):
    """W_y for multiple choice: one score per answer (section 3.3). The linear layer is called `summary`, as in
    transformers' OpenAIGPTDoubleHeadsModel (`multiple_choice_head.summary`), so its weights load by key."""

    def __init__(self, config: GPT1OriginsConfig):
        super().__init__()
        self.summary = nn.Linear(config.n_embd, 1)

    def forward(self, extract_states: torch.Tensor) -> torch.Tensor:
        return self.summary(extract_states).squeeze(-1)  # (B, k, C) -> (B, k)


def _check_task_inputs(
    config: GPT1OriginsConfig,
    task_type: str,
    input_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    mc_token_ids: torch.Tensor | None,
) -> tuple[int, ...]:
    """The task-specific shape rules, as ValueErrors naming value and limit; returns the input's shape without the
    embedding dimension, (B, T) or (B, N, T). The base model then checks each of the B * N sequences (vocabulary,
    length). Value checks are skipped while compiling."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of `input_ids` and `inputs_embeds`.")
    given = input_ids if input_ids is not None else inputs_embeds
    tokens = input_ids if input_ids is not None else inputs_embeds[..., 0]  # (B, [N,] T)
    name = "input_ids" if input_ids is not None else "inputs_embeds"
    if tokens.ndim not in (2, 3):
        raise ValueError(
            f"`{name}` must have shape (batch_size, sequence_length) or (batch_size, num_sequences, sequence_length)"
            f"{', n_embd' if input_ids is None else ''}, got shape {tuple(given.shape)}."
        )
    batch_size = tokens.shape[0]
    num_sequences = tokens.shape[1] if tokens.ndim == 3 else 1
    seq_len = tokens.shape[-1]
    if batch_size == 0 or num_sequences == 0 or seq_len == 0:
        raise ValueError(
            f"The batch is empty: batch_size={batch_size}, num_sequences={num_sequences}, sequence_length={seq_len} "
            f"(`{name}` of shape {tuple(given.shape)})."
        )

    if task_type in ("classification", "entailment") and num_sequences != 1:
        raise ValueError(
            f"task_type={task_type!r} reads one sequence per example ([start] text [extract]), got "
            f"{num_sequences} sequences per example (shape {tuple(tokens.shape)})."
        )
    if task_type == "similarity" and (tokens.ndim != 3 or num_sequences != 2):
        raise ValueError(
            "task_type='similarity' needs both orderings of each pair, shape (batch_size, 2, sequence_length) "
            f"([start] A [delim] B [extract] and [start] B [delim] A [extract]), got shape {tuple(tokens.shape)}."
        )
    if task_type == "multiple_choice" and tokens.ndim != 3:
        raise ValueError(
            "task_type='multiple_choice' needs one sequence per answer, shape (batch_size, num_choices, "
            f"sequence_length), got shape {tuple(tokens.shape)}."
        )
    if attention_mask is not None and attention_mask.shape != tokens.shape:
        raise ValueError(
            f"`attention_mask` has shape {tuple(attention_mask.shape)}, expected the shape of `{name}` without the "
            f"embedding dimension, {tuple(tokens.shape)}."
        )
    if mc_token_ids is not None:
        expected = [(batch_size, num_sequences)] + ([(batch_size,)] if tokens.ndim == 2 else [])
        if tuple(mc_token_ids.shape) not in expected:
            raise ValueError(
                f"`mc_token_ids` has shape {tuple(mc_token_ids.shape)}, expected one extract position per sequence: "
                f"{' or '.join(str(shape) for shape in expected)}."
            )
        if mc_token_ids.is_floating_point() or mc_token_ids.dtype == torch.bool:
            raise ValueError(f"`mc_token_ids` must be an integer tensor, got dtype {mc_token_ids.dtype}.")

    if torch.compiler.is_compiling():
        return tuple(tokens.shape)
    if mc_token_ids is not None:
        low, high = int(mc_token_ids.min()), int(mc_token_ids.max())
        if low < 0 or high >= seq_len:
            raise ValueError(
                f"`mc_token_ids` must lie in [0, sequence_length={seq_len}), got values in [{low}, {high}]."
            )
    elif config.extract_token_id is not None and input_ids is not None:
        counts = (input_ids == config.extract_token_id).sum(-1).reshape(batch_size, num_sequences)  # (B, N)
        if (counts != 1).any():
            example, sequence = (counts != 1).nonzero()[0].tolist()
            raise ValueError(
                f"Each sequence needs exactly one extract token (extract_token_id={config.extract_token_id}); "
                f"example {example}, sequence {sequence} has {int(counts[example, sequence])}. Pass `mc_token_ids` "
                f"to give the positions explicitly."
            )
    return tuple(tokens.shape)


def _check_task_labels(
    problem_type: str, labels: torch.Tensor, batch_size: int, num_sequences: int, num_labels: int
) -> None:
    """Label shapes, dtypes and ranges for each task family, as ValueErrors naming value and limit."""
    if problem_type in ("multiple_choice", "single_label_classification"):
        if tuple(labels.shape) != (batch_size,):
            raise ValueError(
                f"`labels` has shape {tuple(labels.shape)}, expected one class per example: ({batch_size},)."
            )
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise ValueError(f"`labels` must be integer class ids for {problem_type}, got dtype {labels.dtype}.")
        limit = num_sequences if problem_type == "multiple_choice" else num_labels
        what = "choices" if problem_type == "multiple_choice" else "num_labels"
        if not torch.compiler.is_compiling():
            real = labels[labels != -100]
            if real.numel() and (int(real.min()) < 0 or int(real.max()) >= limit):
                bad = int(real.min()) if int(real.min()) < 0 else int(real.max())
                raise ValueError(
                    f"Label {bad} is outside [0, {limit}) ({what}={limit}); -100 marks an ignored example."
                )
    elif problem_type == "regression":
        if tuple(labels.shape) not in ((batch_size,), (batch_size, num_labels)):
            raise ValueError(
                f"`labels` has shape {tuple(labels.shape)}, expected ({batch_size},) or ({batch_size}, {num_labels}) "
                "for regression."
            )
        if labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f"`labels` must be real-valued scores for regression, got dtype {labels.dtype}.")
    else:  # multi_label_classification
        if tuple(labels.shape) != (batch_size, num_labels):
            raise ValueError(
                f"`labels` has shape {tuple(labels.shape)}, expected ({batch_size}, {num_labels}) for multi-label "
                "classification (float labels mean multi-label; give int64 class ids for one class per example)."
            )
    if not torch.compiler.is_compiling() and labels.is_floating_point() and not torch.isfinite(labels).all():
        bad = labels[~torch.isfinite(labels)][0].item()
        raise ValueError(f"`labels` for {problem_type} must be finite numbers, got {bad}.")


def _lm_loss_per_sequence(
    lm_logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
) -> torch.Tensor:
    """Next-token cross-entropy of each sequence, averaged over its real tokens (train.py: `reduce_sum(lm_losses *
    M[:, 1:], 1) / reduce_sum(M[:, 1:], 1)`). lm_logits: (S, T, V); input_ids, attention_mask: (S, T). Returns (S,).

    A target counts when it and the position predicting it are real tokens, so padding on either side is ignored."""
    num_sequences, seq_len, vocab_size = lm_logits.shape
    losses = nn.functional.cross_entropy(
        lm_logits[:, :-1].float().reshape(-1, vocab_size), input_ids[:, 1:].reshape(-1), reduction="none"
    ).view(num_sequences, seq_len - 1)  # (S, T-1)
    if attention_mask is None:
        valid = torch.ones_like(losses)
    else:
        valid = (attention_mask[:, 1:].bool() & attention_mask[:, :-1].bool()).to(losses.dtype)  # (S, T-1)
    return (losses * valid).sum(-1) / valid.sum(-1).clamp(min=1)  # (S,)


def _lm_loss_chunked(
    hidden_states: torch.Tensor,
    lm_weight: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    example_weights: torch.Tensor,
    chunk_size: int,
    tied_grad: TiedWeightGrad | None = None,
) -> torch.Tensor:
    """`sum_e example_weights[e] * mean over its N sequences of _lm_loss_per_sequence`, through `ChunkedLMHeadLoss`:
    each target weighs its example's weight / N / its sequence's number of real targets. hidden_states: (S, T, C) with
    S = B * N; lm_weight: (V, C); input_ids, attention_mask: (S, T); example_weights: (B,); tied_grad: the embedding's
    `TiedWeightGrad` when lm_weight is the token embedding's. Returns a scalar."""
    num_rows, seq_len, width = hidden_states.shape
    if attention_mask is None:
        valid = torch.ones(num_rows, seq_len - 1, device=hidden_states.device)  # (S, T-1)
    else:
        valid = (attention_mask[:, 1:].bool() & attention_mask[:, :-1].bool()).float()  # (S, T-1)
    per_sequence_mean = valid / valid.sum(-1, keepdim=True).clamp(min=1)  # (S, T-1)
    num_sequences = num_rows // example_weights.shape[0]
    row_weights = example_weights.float().repeat_interleave(num_sequences) / num_sequences  # (S,)
    target_weights = (per_sequence_mean * row_weights.unsqueeze(1)).reshape(-1)  # (S*(T-1),)
    hidden = hidden_states[:, :-1].reshape(-1, width)  # (S*(T-1), C)
    targets = input_ids[:, 1:].reshape(-1).to(hidden.device)  # (S*(T-1),)
    return ChunkedLMHeadLoss.apply(hidden, lm_weight, targets, target_weights, chunk_size, tied_grad)


class GPT1OriginsDoubleHeadsModel(GPT1OriginsPreTrainedModel):
    """GPT-1 fine-tuning (section 3.2 / 3.3): the transformer, the tied LM head, and the task head W_y on the hidden
    state at the extract token. One model serves the paper's four input transformations, chosen by
    `config.task_type` (e.g. `from_pretrained(path, task_type="similarity", num_labels=1)`):

    - "classification", "entailment": input (batch, seq) or (batch, 1, seq), [start] text [extract] or [start]
      premise [delim] hypothesis [extract]; the extract state -> dropout -> `score` (n_embd -> num_labels).
    - "similarity": input (batch, 2, seq), both orderings of the pair; the two extract states are added
      element-wise (section 3.3: "no inherent ordering") -> dropout -> `score` (n_embd -> num_labels, or one
      regression score with num_labels=1, trained with MSE).
    - "multiple_choice" (also `task_type=None`): input (batch, k, seq), [start] context [delim] answer_k [extract];
      each extract state -> dropout -> `multiple_choice_head.summary` (n_embd -> 1), softmax over the k answers.

    Head parameter names: `multiple_choice_head.summary.{weight,bias}` are the keys of transformers'
    OpenAIGPTDoubleHeadsModel, whose folders therefore load with their multiple-choice head; `score.weight` is the key
    of transformers' OpenAIGPTForSequenceClassification (which has no bias; ours, W_y with a bias as in the released
    `clf`, starts at zero, so its folders give the same scores). The extract position comes from `mc_token_ids` when
    given, else from `config.extract_token_id` (exactly one per sequence), else the last real token.
    """

    _tied_weights_keys = {"lm_head.weight": "transformer.tokens_embed.weight"}

    def __init__(self, config: GPT1OriginsConfig):
        super().__init__(config)
        self.task_type = config.task_type or "multiple_choice"
        self.transformer = GPT1OriginsModel(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.dropout = nn.Dropout(config.classifier_dropout)
        if self.task_type == "multiple_choice":
            self.multiple_choice_head = GPT1OriginsMultipleChoiceHead(config)
        else:
            self.score = nn.Linear(config.n_embd, config.num_labels)
        self.post_init()

    def _problem_type(self, labels: torch.Tensor) -> str:
        if self.task_type == "multiple_choice":
            return "multiple_choice"
        if self.config.problem_type is not None:
            return self.config.problem_type
        if self.config.num_labels == 1:
            return "regression"  # e.g. STS-B similarity scores
        if labels.is_floating_point():
            return "multi_label_classification"
        return "single_label_classification"

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        mc_token_ids: torch.LongTensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> GPT1OriginsDoubleHeadsModelOutput:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)` or `(batch_size, N, sequence_length)`):
            The task input, wrapped in the task tokens (the tokenizer's task templates do this); N = 2 orderings for
            similarity, k answers for multiple choice.
        attention_mask (`torch.Tensor`, same shape as `input_ids`, *optional*):
            1 for real tokens, 0 for padding (either side); positions count real tokens only.
        position_ids (`torch.LongTensor`, same shape as `input_ids`, *optional*):
            Explicit positions in [0, n_positions).
        inputs_embeds (`torch.Tensor` of shape `(batch_size, [N,] sequence_length, n_embd)`, *optional*):
            Token embeddings instead of `input_ids` (then there is no LM loss, which needs the ids as targets).
        mc_token_ids (`torch.LongTensor` of shape `(batch_size,)` or `(batch_size, N)`, *optional*):
            Position of the extract token in each sequence (the name of transformers' OpenAIGPTDoubleHeadsModel, and
            the key `modeling_gpt1.tasks` gives them). Without it, the position of the one extract token is used.
        labels (`torch.Tensor`, *optional*):
            Task targets, one per example: class ids `(batch_size,)` for classification / entailment (-100 ignores
            an example), the index of the right answer `(batch_size,)` for multiple choice, float scores
            `(batch_size,)` for regression (`num_labels == 1`), floats `(batch_size, num_labels)` for multi-label.
            With labels the output has `loss` = task_loss + lm_coef * lm_loss. When Trainer passes
            `num_items_in_batch` (the number of labelled examples in the whole accumulated batch), both losses are
            sums over examples divided by it, so gradient accumulation equals one large batch.
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        kwargs.pop("use_cache", None)
        input_shape = _check_task_inputs(
            self.config, self.task_type, input_ids, inputs_embeds, attention_mask, mc_token_ids
        )  # (B, T) or (B, N, T)
        batch_size, seq_len = input_shape[0], input_shape[-1]
        num_sequences = input_shape[1] if len(input_shape) == 3 else 1

        # The N sequences of an example run through the transformer as independent rows: (B, N, T) -> (B * N, T).
        flat_ids = input_ids.reshape(-1, seq_len) if input_ids is not None else None
        flat_embeds = inputs_embeds.flatten(0, -3) if inputs_embeds is not None else None  # (B*N, T, C)
        flat_mask = attention_mask.reshape(-1, seq_len) if attention_mask is not None else None
        flat_positions = position_ids.reshape(-1, seq_len) if position_ids is not None else None
        # Fine-tuning (training mode, task labels): the auxiliary LM loss goes through the chunked head, and the
        # (B*N, T, V) logits are never built (lm_logits is None); otherwise the logits, as transformers gives them.
        chunked_lm = (
            labels is not None and flat_ids is not None and self.training and bool(self.config.loss_chunk_size)
        )
        tied_grad = None
        if chunked_lm:
            tied_grad = TiedWeightGrad.for_training_step(self.lm_head.weight, self.transformer.tokens_embed.weight)
        outputs: BaseModelOutputWithPast = self.transformer(
            flat_ids,
            attention_mask=flat_mask,
            position_ids=flat_positions,
            inputs_embeds=flat_embeds,
            use_cache=False,
            tied_weight_grad=tied_grad,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state  # (B*N, T, C)
        lm_logits = None if chunked_lm else self.lm_head(hidden_states)  # (B*N, T, V)

        # Where each sequence is read: explicit positions, else its extract token, else its last real token.
        if mc_token_ids is not None:
            extract_index = mc_token_ids.reshape(-1)  # (B*N,)
        elif self.config.extract_token_id is not None and flat_ids is not None:
            extract_index = (flat_ids == self.config.extract_token_id).int().argmax(-1)  # (B*N,)
        elif flat_mask is not None:
            positions = torch.arange(seq_len, device=flat_mask.device)
            extract_index = (positions * flat_mask.long()).argmax(-1)  # (B*N,) last real token, padding either side
        else:
            extract_index = torch.full((hidden_states.shape[0],), seq_len - 1, device=hidden_states.device)
        rows = torch.arange(hidden_states.shape[0], device=hidden_states.device)
        extract_states = hidden_states[rows, extract_index.to(hidden_states.device)]  # (B*N, C)
        extract_states = extract_states.view(batch_size, num_sequences, -1)  # (B, N, C)

        if self.task_type == "multiple_choice":
            # One dropout mask shared by the k answers of an example, as the released code drew it (train.py:
            # noise shape [batch, 1, n_embd]), so that the answers are compared on the same features.
            keep = self.dropout(extract_states.new_ones(batch_size, 1, extract_states.shape[-1]))  # (B, 1, C)
            logits = self.multiple_choice_head(extract_states * keep)  # (B, k)
        elif self.task_type == "similarity":
            # Section 3.3: "we ... process both independently to produce two sequence representations which are
            # added element-wise before being fed into the linear output layer".
            logits = self.score(self.dropout(extract_states.sum(1)))  # (B, num_labels)
        else:
            logits = self.score(self.dropout(extract_states[:, 0]))  # (B, num_labels)

        loss = task_loss = lm_loss = None
        if labels is not None:
            problem_type = self._problem_type(labels)
            _check_task_labels(problem_type, labels, batch_size, num_sequences, self.config.num_labels)
            labels = labels.to(logits.device)
            per_example, weights = self._task_loss_per_example(problem_type, logits, labels)  # (B,), (B,)
            # Reduce both losses the same way: mean over labelled examples, or their sum over the accumulated batch's
            # count when Trainer gives it (it counts label entries: num_labels per example for multi-label).
            if num_items_in_batch is not None:
                denominator = num_items_in_batch / (labels.numel() // batch_size)
            else:
                denominator = weights.sum().clamp(min=1)
            task_loss = (per_example * weights).sum() / denominator
            loss = task_loss
            if chunked_lm:
                lm_loss = _lm_loss_chunked(
                    hidden_states, self.lm_head.weight, flat_ids, flat_mask, weights / denominator,
                    self.config.loss_chunk_size, tied_grad,
                )  # fmt: skip
                loss = task_loss + self.config.lm_coef * lm_loss
            elif flat_ids is not None:
                lm_per_example = _lm_loss_per_sequence(lm_logits, flat_ids, flat_mask).view(batch_size, -1).mean(1)
                lm_loss = (lm_per_example * weights).sum() / denominator
                loss = task_loss + self.config.lm_coef * lm_loss

        return GPT1OriginsDoubleHeadsModelOutput(
            loss=loss,
            logits=logits,
            task_loss=task_loss,
            lm_loss=lm_loss,
            lm_logits=lm_logits.view(*input_shape, -1) if lm_logits is not None else None,  # (B, [N,] T, V)
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    @staticmethod
    def _task_loss_per_example(
        problem_type: str, logits: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """L2 for each example (B,) and its weight (B,): 0 for an example whose class label is -100."""
        logits = logits.float()
        if problem_type in ("multiple_choice", "single_label_classification"):
            per_example = nn.functional.cross_entropy(logits, labels.long(), reduction="none", ignore_index=-100)
            return per_example, (labels != -100).to(logits.dtype)
        if problem_type == "regression":
            per_example = (logits.reshape(labels.shape[0], -1) - labels.float().reshape(labels.shape[0], -1)) ** 2
            return per_example.mean(-1), torch.ones_like(per_example[:, 0])
        per_example = nn.functional.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none")
        return per_example.mean(-1), torch.ones_like(per_example[:, 0])


__all__ = [
    "GPT1OriginsPreTrainedModel",
    "GPT1OriginsModel",
    "GPT1OriginsLMHeadModel",
    "GPT1OriginsDoubleHeadsModel",
    "GPT1OriginsDoubleHeadsModelOutput",
    "GPT1OriginsMultipleChoiceHead",
]
