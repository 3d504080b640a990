"""GPT-2 (Radford et al. 2019) as a transformers 5.x model: attention -> MLP -> block -> base model -> LM head.

Parameter names are those of the released checkpoints (openai-community/gpt2): `wte`, `wpe`, `h.{i}.attn.c_attn`,
`ln_f`, the LM head tied to `wte` and not stored. The projections are `nn.Linear`, which quantisers and PEFT expect,
where the released weights are transformers' `Conv1D` (in_features, out_features): transformers' checkpoint
conversion transposes them while a folder of `transformers.GPT2LMHeadModel` loads here with `from_pretrained`
(`loading.py`), and `save_transformers_format` writes that format back (`hub.py`).

Beyond transformers' own GPT-2: position ids follow the attention mask in `forward` itself (left-padded batches are
right without `generate`), every input is checked with an error that names the value and the limit, and the
loss honours `num_items_in_batch` so Trainer's gradient accumulation equals one large batch.

This file is the architecture; the infrastructure is in five sibling files, shared with GPT-1 (these are the
originals; `make fix-copies`, utils/check_copies.py, generates GPT-1's copies): `input_checks.py`, `chunked_loss.py`
(the training loss without the logits, one gradient for the tied head), `loading.py` (strict `from_pretrained`),
`hub.py` (`save_pretrained`, `push_to_hub`, the model card) and `compat.py` (what differs between the supported
transformers releases).
"""

import math
from collections.abc import Callable

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import can_return_tuple, logging
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .chunked_loss import TiedWeightGrad, chunked_lm_head_loss, lm_loss_divisor, tied_embedding
from .compat import accepts_past_key_values, cache_of, causal_mask, keep_last, output_with_cache
from .configuration_gpt2 import GPT2OriginsConfig
from .hub import HubMixin
from .input_checks import check_forward_kwargs, check_inputs, check_labels, check_model_fits
from .loading import StrictLoadingMixin, register_conv1d_layout

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
    (B, 1, T, S) from transformers' `create_causal_mask`, causal and padding already in it. Returns
    (B, T, nh, hs) and (B, nh, T, S).
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


def upcast_reordered_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`config.reorder_and_upcast_attn` (Stanford CRFM's Mistral GPT-2 runs, as in transformers' GPT-2): the scores
    in fp32 with autocast off, the scale applied to the query before the product, so that fp16 / bf16 training of
    deep models does not overflow. Shapes as in `eager_attention_forward`; the additive eager mask is required."""
    with torch.autocast(query.device.type, enabled=False):
        attn_weights = torch.matmul(query.float() * scaling, key.float().transpose(-1, -2))  # (B, nh, T, S) fp32
        if attention_mask is not None:
            attn_weights = attn_weights + attention_mask.float()
        attn_weights = nn.functional.softmax(attn_weights, dim=-1)
    attn_weights = nn.functional.dropout(attn_weights.to(value.dtype), p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()  # (B, T, nh, hs)
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

        self.c_attn = nn.Linear(self.embed_dim, 3 * self.embed_dim)
        self.c_proj = nn.Linear(self.embed_dim, self.embed_dim)
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
        if self.config.reorder_and_upcast_attn:
            if self.config._attn_implementation != "eager":
                raise ValueError(
                    f"reorder_and_upcast_attn=True is an eager-attention computation, but the model runs "
                    f"attn_implementation={self.config._attn_implementation!r}: load or build it with "
                    f"attn_implementation='eager' (or set reorder_and_upcast_attn=False)."
                )
            attention_interface = upcast_reordered_attention_forward
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
        self.c_fc = nn.Linear(config.n_embd, inner_dim)
        # "gelu_new" (the tanh approximation) as torch's one fused kernel: the same function to 3e-7, where
        # transformers' NewGELUActivation runs and keeps for backward five (B, T, 4C) element-wise intermediates.
        activation = "gelu_pytorch_tanh" if config.activation_function == "gelu_new" else config.activation_function
        self.act = ACT2FN[activation]
        self.c_proj = nn.Linear(inner_dim, config.n_embd)
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


class GPT2OriginsPreTrainedModel(StrictLoadingMixin, HubMixin, PreTrainedModel):
    """Weight init and the transformers settings shared by the GPT-2 models; strict `from_pretrained` (`loading.py`),
    `save_pretrained` and `push_to_hub` (`hub.py`)."""

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
    _keys_to_ignore_on_load_unexpected = [r"\.attn\.bias$", r"\.attn\.masked_bias$"]
    # The LM head is tied to `wte`, so released checkpoints do not store it; the task heads of transformers'
    # GPT2DoubleHeadsModel and GPT2ForSequenceClassification are left out when their folders load as a language model.
    _head_prefixes = ("lm_head.", "multiple_choice_head.", "score.")
    _auto_map = {"AutoModel": "GPT2OriginsModel", "AutoModelForCausalLM": "GPT2OriginsLMHeadModel"}
    _model_card_description = (
        'A GPT-2 language model (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners")'
    )

    def __init__(self, config: GPT2OriginsConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        # Before any module is built: a config too big for the device is an error naming its size, not minutes of
        # building followed by the allocator's failure.
        check_model_fits(type(self).__name__, config, config.num_parameters())

    def _init_weights(self, module: nn.Module):
        """N(0, 0.02) everywhere, zero biases, unit LayerNorm gains; the projections that write into the residual
        stream get std 0.02 / sqrt(2 * n_layer) (GPT-2 paper, section 2.3: "scale the weights of residual layers at
        initialization by a factor of 1/sqrt(N) where N is the number of residual layers", two per block)."""
        if isinstance(module, nn.Linear) and getattr(module, "is_residual_projection", False):
            std = self.config.initializer_range / math.sqrt(2 * self.config.n_layer)
            init.normal_(module.weight, mean=0.0, std=std)
            init.zeros_(module.bias)
        else:
            super()._init_weights(module)  # nn.Linear and nn.Embedding N(0, initializer_range), LayerNorm (1, 0)


class GPT2OriginsModel(GPT2OriginsPreTrainedModel):
    """The GPT-2 transformer: token + learned position embeddings, `n_layer` pre-LN blocks, a final LayerNorm."""

    _transformers_class = "GPT2Model"  # save_transformers_format (hub.py)

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
    @accepts_past_key_values
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
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
        token_type_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Segment ids, embedded by the token embedding and added to the input, as transformers' GPT-2 and OpenAI-GPT
            do (neither model has a segment table); ids in [0, vocab_size). `generate` extends them with the last one.
        position_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Explicit positions in [0, n_positions). Without an attention mask, positions that restart at 0 mark
            packed documents (padding-free batches, as `DataCollatorWithFlattening` makes), and attention does not
            cross them; such a row may be longer than `n_positions`, as long as every position fits.
        inputs_embeds (`torch.Tensor` of shape `(batch_size, sequence_length, n_embd)`, *optional*):
            Token embeddings to use instead of `input_ids`.
        tied_weight_grad (`TiedWeightGrad`, *optional*):
            Set by an LM head in a training step with the chunked loss: the token embedding's backward then adds its
            rows to the head's weight gradient in place (see `chunked_loss.TiedWeightGrad`).

        Returns `BaseModelOutputWithPast` with `last_hidden_state` (B, T, n_embd) and `cache`.
        """
        check_forward_kwargs(self.forward, kwargs)
        kwargs.pop("output_attentions", None)
        kwargs.pop("output_hidden_states", None)
        past_length = check_inputs(
            self.config, input_ids, inputs_embeds, attention_mask, position_ids, cache, token_type_ids
        )

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

        hidden_states = inputs_embeds + self.wpe(position_ids)  # (B, T, C)
        if token_type_ids is not None:
            hidden_states = hidden_states + self.wte(token_type_ids)  # (B, T, C)
        hidden_states = self.drop(hidden_states)
        # An empty dynamic cache does not change the mask; without it, transformers finds packed documents in
        # `position_ids` (positions restarting at 0), which it looks for only when there is no cache.
        mask_cache = None if isinstance(cache, DynamicCache) and past_length == 0 else cache
        mask = causal_mask(self.config, inputs_embeds, attention_mask, mask_cache, mask_position_ids)
        hidden_states = self._run_blocks(hidden_states, mask, cache, **kwargs)  # (B, T, C)
        return output_with_cache(
            BaseModelOutputWithPast, cache if use_cache else None, last_hidden_state=hidden_states
        )

    def _run_blocks(
        self, hidden_states: torch.Tensor, causal_mask: torch.Tensor | None, cache: Cache | None, **kwargs
    ) -> torch.Tensor:
        """The `n_layer` pre-LN blocks, then the final LayerNorm (GPT-2 paper, section 2.3: "an additional layer
        normalization was added after the final self-attention block"). (B, T, C) -> (B, T, C)."""
        for block in self.h:
            hidden_states = block(hidden_states, attention_mask=causal_mask, cache=cache, **kwargs)  # (B, T, C)
        return self.ln_f(hidden_states)  # (B, T, C)


class GPT2OriginsLMHeadModel(GPT2OriginsPreTrainedModel, GenerationMixin):
    """GPT-2 with its language-modelling head (the transposed token embedding)."""

    _transformers_class = "GPT2LMHeadModel"  # save_transformers_format (hub.py)

    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: GPT2OriginsConfig):
        super().__init__(config)
        self.transformer = GPT2OriginsModel(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.loss_type = "ForCausalLM"  # transformers' shifted cross-entropy that honours `num_items_in_batch`
        self.post_init()

    @can_return_tuple
    @accepts_past_key_values
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
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
            it, so gradient accumulation over micro-batches equals one large batch; 0 (zero gradients) for a batch
            without a target, where transformers' loss is NaN.
        logits_to_keep (`int` or `torch.Tensor`):
            Compute logits for the last `logits_to_keep` positions only (0 = all); `generate` uses 1.

        Returns `CausalLMOutputWithPast` with `loss` (scalar), `logits` (B, T, vocab_size), `cache`. In training mode
        with `labels` and `config.loss_chunk_size` set (the default), the loss is computed by `chunked_lm_head_loss`
        and `logits` is None: a training step never holds the logits of the whole batch. `model.eval()`, or
        `config.loss_chunk_size = None`, gives the logits.
        """
        check_forward_kwargs(self.forward, kwargs)
        chunked_loss = labels is not None and self.training and bool(self.config.loss_chunk_size)
        tied_grad = None
        if chunked_loss and input_ids is not None:
            tied_grad = TiedWeightGrad.for_training_step(self.lm_head.weight, self.transformer.wte.weight)
        outputs: BaseModelOutputWithPast = self.transformer(
            input_ids,
            cache=cache,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            tied_weight_grad=tied_grad,
            **kwargs,
        )
        hidden_states = keep_last(outputs.last_hidden_state, logits_to_keep)  # (B, T', C)

        logits, loss = None, None
        if labels is not None:
            check_labels(self.config, labels, hidden_states.shape[:-1])
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
                # transformers' loss, divided by the count of targets (or Trainer's): 0 for a batch without targets.
                loss_kwargs = {**kwargs, "num_items_in_batch": lm_loss_divisor(labels, **kwargs)}
                loss = self.loss_function(logits, labels, vocab_size=self.config.vocab_size, **loss_kwargs)

        return output_with_cache(
            CausalLMOutputWithPast,
            cache_of(outputs),
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


# Released checkpoints store the projections as Conv1D (in, out): transposed on load, back on save (loading.py).
register_conv1d_layout(GPT2OriginsConfig.model_type)

__all__ = ["GPT2OriginsPreTrainedModel", "GPT2OriginsModel", "GPT2OriginsLMHeadModel"]
