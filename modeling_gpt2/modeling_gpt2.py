"""GPT-2 (Radford et al. 2019) as a transformers 5.x model: attention -> MLP -> block -> base model -> LM head.

Parameter names and layouts are those of the released checkpoints (openai-community/gpt2): `wte`, `wpe`,
`h.{i}.attn.c_attn`, `ln_f`, Conv1D weights stored (in_features, out_features), the LM head tied to `wte` and not
stored. A folder saved by `transformers.GPT2LMHeadModel` therefore loads here with `from_pretrained` as it is.

Beyond transformers' own GPT-2: position ids follow the attention mask in `forward` itself (left-padded batches are
right without `generate`), every input is checked with an error that names the value and the limit, and the
loss honours `num_items_in_batch` so Trainer's gradient accumulation equals one large batch.
"""

import math
import os
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path

import torch
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError
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
from transformers.utils import can_return_tuple, logging
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .configuration_gpt2 import GPT2OriginsConfig

logger = logging.get_logger(__name__)


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


class GPT2OriginsAttention(nn.Module):
    """Causal multi-head self-attention with one fused QKV projection (`c_attn`), as in the released weights."""

    def __init__(self, config: GPT2OriginsConfig, layer_idx: int):
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


class GPT2OriginsMLP(nn.Module):
    """Position-wise feed-forward: C -> 4C -> GELU (tanh approximation) -> C."""

    def __init__(self, config: GPT2OriginsConfig):
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


class GPT2OriginsBlock(GradientCheckpointingLayer):
    """Pre-LayerNorm block (GPT-2 paper, section 2.3: "Layer normalization was moved to the input of each
    sub-block"): x = x + Attn(LN(x)); x = x + MLP(LN(x))."""

    def __init__(self, config: GPT2OriginsConfig, layer_idx: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2OriginsAttention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2OriginsMLP(config)
        # The two projections that write into the residual stream get the scaled init (see `_init_weights`).
        self.attn.c_proj.is_residual_projection = True
        self.mlp.c_proj.is_residual_projection = True

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> torch.Tensor:
        attn_output, _ = self.attn(self.ln_1(hidden_states), attention_mask=attention_mask, cache=cache, **kwargs)
        hidden_states = hidden_states + attn_output  # (B, T, C)
        hidden_states = hidden_states + self.mlp(self.ln_2(hidden_states))  # (B, T, C)
        return hidden_states


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


class GPT2OriginsPreTrainedModel(PreTrainedModel):
    config_class = GPT2OriginsConfig
    config: GPT2OriginsConfig
    base_model_prefix = "transformer"
    supports_gradient_checkpointing = True
    _no_split_modules = ["GPT2OriginsBlock"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    _can_record_outputs = {
        "hidden_states": GPT2OriginsBlock,
        "attentions": OutputRecorder(GPT2OriginsAttention, index=1),
    }
    # Checkpoints written by old transformers versions store the causal-mask buffers; the mask is built per call now.
    _keys_to_ignore_on_load_unexpected = [r"attn\.bias$", r"attn\.masked_bias$"]

    def _init_weights(self, module: nn.Module):
        """N(0, 0.02) everywhere, zero biases, unit LayerNorm gains; the projections that write into the residual
        stream get std 0.02 / sqrt(2 * n_layer) (GPT-2 paper, section 2.3: "scale the weights of residual layers at
        initialization by a factor of 1/sqrt(N) where N is the number of residual layers", two per block)."""
        super()._init_weights(module)
        # Decided on the Conv1D itself: transformers skips custom-code modules that own no parameters directly.
        if isinstance(module, Conv1D):
            std = self.config.initializer_range
            if getattr(module, "is_residual_projection", False):
                std = std / math.sqrt(2 * self.config.n_layer)
            init.normal_(module.weight, mean=0.0, std=std)
            init.zeros_(module.bias)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, stricter: a checkpoint that is corrupted, pickled code, or the weights
        of another model is an error, never a model with random weights (see `_from_pretrained_checked`)."""
        return _from_pretrained_checked(
            super().from_pretrained, pretrained_model_name_or_path, ("lm_head.",), *model_args, **kwargs
        )

    def push_to_hub(
        self,
        repo_id: str,
        tokenizer=None,
        commit_message: str = "Upload model",
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        tags: list[str] | None = None,
    ):
        """Upload config (with `auto_map`), code, safetensors weights, the tokenizer if given, and a model card (only
        where the repository has none yet) to the Hub in one commit; the repository is created if needed."""
        api = HfApi()
        repo_id = api.create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder)
            if tokenizer is not None:
                tokenizer.save_pretrained(folder)
            try:
                ModelCard.load(repo_id, token=token)  # the user's card stays as it is
            except (EntryNotFoundError, RepositoryNotFoundError):
                self.model_card(repo_id, tags).save(Path(folder) / "README.md")
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                commit_message=commit_message,
                token=token,
                revision=revision,
                create_pr=create_pr,
            )

    def model_card(self, repo_id: str, tags: list[str] | None = None) -> ModelCard:
        """A model card naming the architecture, its size and how to load it without gpt-origins installed."""
        config = self.config
        tag_lines = "".join(f"- {tag}\n" for tag in ["gpt-origins", "gpt2", "text-generation", *(tags or [])])
        return ModelCard(
            f"""---
library_name: transformers
pipeline_tag: text-generation
tags:
{tag_lines}---

# {repo_id.split("/")[-1]}

A GPT-2 language model (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners")
built with [gpt-origins](https://pypi.org/project/gpt-origins/): {self.num_parameters():,} parameters,
{config.n_layer} pre-LayerNorm blocks of width {config.n_embd} with {config.n_head} heads, a context of
{config.n_positions} tokens and a vocabulary of {config.vocab_size:,}.

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("{repo_id}", trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained("{repo_id}")
```

With gpt-origins installed (`import modeling_gpt2`), `trust_remote_code` is not needed.
"""
        )


def _check_inputs(
    config: GPT2OriginsConfig,
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


def _check_labels(config: GPT2OriginsConfig, labels: torch.Tensor, expected_shape: tuple[int, ...]) -> None:
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


def tied_embedding(input_ids: torch.Tensor, weight: torch.Tensor, tied_grad: TiedWeightGrad) -> torch.Tensor:
    """The token embeddings (B, T, C) of input_ids (B, T), through `TiedEmbedding`."""
    embeddings = TiedEmbedding.apply(input_ids, weight, tied_grad)
    if embeddings.grad_fn is not None:
        tied_grad.embedding_node = weakref.ref(embeddings.grad_fn)  # weak: the graph, not this object, owns it
    return embeddings


class GPT2OriginsModel(GPT2OriginsPreTrainedModel):
    """The GPT-2 transformer: token + learned position embeddings, `n_layer` pre-LN blocks, a final LayerNorm."""

    def __init__(self, config: GPT2OriginsConfig):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([GPT2OriginsBlock(config, layer_idx=i) for i in range(config.n_layer)])
        # GPT-2 paper, section 2.3: "an additional layer normalization was added after the final self-attention block".
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.wte

    def set_input_embeddings(self, new_embeddings: nn.Embedding):
        self.wte = new_embeddings

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
            Set by the LM head in a training step with the chunked loss: `wte`'s backward then adds its rows to the
            head's weight gradient in place (see `TiedWeightGrad`).
        """
        kwargs.pop("output_attentions", None)
        kwargs.pop("output_hidden_states", None)
        if cache is None:
            cache = kwargs.pop("past_key_values", None)  # the name transformers < 5.24 used
        past_length = _check_inputs(self.config, input_ids, inputs_embeds, attention_mask, position_ids, cache)

        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        if inputs_embeds is None and tied_weight_grad is not None:
            inputs_embeds = tied_embedding(input_ids, self.wte.weight, tied_weight_grad)  # (B, T, C)
        elif inputs_embeds is None:
            inputs_embeds = self.wte(input_ids)  # (B, T, C)
        seq_len = inputs_embeds.shape[1]

        mask_position_ids = position_ids
        if position_ids is None:
            if attention_mask is not None and attention_mask.ndim == 2:
                # Count real tokens only: a left-padded row starts at position 0 at its first real token.
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -seq_len:]  # (B, T)
            else:
                position_ids = torch.arange(seq_len, device=inputs_embeds.device) + past_length
                position_ids = position_ids.unsqueeze(0)  # (1, T)

        hidden_states = self.drop(inputs_embeds + self.wpe(position_ids))  # (B, T, C)
        causal_mask = create_causal_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=cache,
            position_ids=mask_position_ids,
        )
        for block in self.h:
            hidden_states = block(hidden_states, attention_mask=causal_mask, cache=cache, **kwargs)
        hidden_states = self.ln_f(hidden_states)  # (B, T, C)

        return BaseModelOutputWithPast(last_hidden_state=hidden_states, cache=cache if use_cache else None)


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


class GPT2OriginsLMHeadModel(GPT2OriginsPreTrainedModel, GenerationMixin):
    """GPT-2 with its language-modelling head (the transposed token embedding)."""

    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: GPT2OriginsConfig):
        super().__init__(config)
        self.transformer = GPT2OriginsModel(config)
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
        Arguments as in [`GPT2OriginsModel.forward`], and:

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
            tied_grad = TiedWeightGrad.for_training_step(self.lm_head.weight, self.transformer.wte.weight)
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


__all__ = ["GPT2OriginsPreTrainedModel", "GPT2OriginsModel", "GPT2OriginsLMHeadModel"]
