"""GPT-1 (Radford et al. 2018) as a transformers 5.x model: attention -> MLP -> post-LN block -> base model -> LM head
-> the double-heads model that fine-tunes on the paper's four task families.

Parameter names are those of the released checkpoint as transformers stores it (openai-community/openai-gpt):
`tokens_embed`, `positions_embed`, `h.{i}.attn.c_attn`, `h.{i}.ln_1`, `h.{i}.mlp.c_fc`, `h.{i}.ln_2`, no final
LayerNorm, the LM head tied to `tokens_embed`. The projections are `nn.Linear`, where the released weights are
transformers' `Conv1D` (in_features, out_features): folders saved by transformers' `OpenAIGPTLMHeadModel` and
`OpenAIGPTDoubleHeadsModel` load here with `from_pretrained`, transposed by transformers' checkpoint conversion
(`loading.py`); `save_transformers_format` writes its format back (`hub.py`).

This file is the architecture. The attention, the MLP and most of the base model and LM head are GPT-2's, copied from
modeling_gpt2 (a saved GPT-1 folder must load without gpt-origins installed, so this package imports nothing from the
GPT-2 one) and marked `# Copied from`; the infrastructure is in five sibling files, byte-identical to GPT-2's:
`input_checks.py`, `chunked_loss.py`, `loading.py`, `hub.py` and `compat.py`; the double-heads model's checks and
losses are in `fine_tuning.py`. utils/check_copies.py keeps every copy equal (`make fix-copies` rewrites them from
GPT-2's).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput, can_return_tuple, logging
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .chunked_loss import TiedWeightGrad, chunked_lm_head_loss, lm_loss_divisor, loss_divisor, tied_embedding
from .compat import accepts_past_key_values, cache_of, causal_mask, keep_last, output_with_cache
from .configuration_gpt1 import GPT1OriginsConfig
from .fine_tuning import (
    check_task_inputs,
    check_task_labels,
    lm_loss_chunked,
    lm_loss_per_sequence,
    real_choices,
    resolve_task_labels,
    sequence_weights,
    task_loss_per_example,
    task_problem_type,
)
from .hub import HubMixin
from .input_checks import check_forward_kwargs, check_inputs, check_labels, check_model_fits
from .loading import StrictLoadingMixin, register_conv1d_layout

logger = logging.get_logger(__name__)


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


# Copied from modeling_gpt2.modeling_gpt2.upcast_reordered_attention_forward
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


# Copied from modeling_gpt2.modeling_gpt2.GPT2OriginsMLP with GPT2Origins->GPT1Origins
class GPT1OriginsMLP(nn.Module):
    """Position-wise feed-forward: C -> 4C -> GELU (tanh approximation) -> C."""

    def __init__(self, config: GPT1OriginsConfig):
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


class GPT1OriginsPreTrainedModel(StrictLoadingMixin, HubMixin, PreTrainedModel):
    """Weight init and the transformers settings shared by the GPT-1 models; strict `from_pretrained` (`loading.py`),
    `save_pretrained` and `push_to_hub` (`hub.py`)."""

    # Copied from modeling_gpt2.modeling_gpt2.GPT2OriginsPreTrainedModel.config_class with GPT2->GPT1
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
    _keys_to_ignore_on_load_unexpected = [r"\.attn\.bias$", r"position_ids$"]
    # The task heads may be missing (a pre-trained checkpoint loads into the double-heads model with new heads) or left
    # out (a fine-tuned one loads as a language model, or for another task). The LM head is tied to `tokens_embed`, so
    # released checkpoints do not store it.
    _head_prefixes = ("lm_head.", "score.", "multiple_choice_head.")
    # One double-heads model serves two Auto classes: classification, entailment and similarity, and multiple choice.
    _auto_map = {
        "AutoModel": "GPT1OriginsModel",
        "AutoModelForCausalLM": "GPT1OriginsLMHeadModel",
        "AutoModelForSequenceClassification": "GPT1OriginsDoubleHeadsModel",
        "AutoModelForMultipleChoice": "GPT1OriginsDoubleHeadsModel",
    }
    _model_card_description = (
        'A GPT-1 model (Radford et al. 2018, "Improving Language Understanding by Generative Pre-Training")'
    )

    # Copied from modeling_gpt2.modeling_gpt2.GPT2OriginsPreTrainedModel.__init__ with GPT2->GPT1
    def __init__(self, config: GPT1OriginsConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        # Before any module is built: a config too big for the device is an error naming its size, not minutes of
        # building followed by the allocator's failure.
        check_model_fits(type(self).__name__, config, config.num_parameters())

    def _init_weights(self, module: nn.Module):
        """N(0, 0.02) for every weight, zero biases, unit LayerNorm gains (section 4.1: "Since layernorm is used
        extensively throughout the model, a simple weight initialization of N(0, 0.02) was sufficient"); unlike GPT-2,
        no extra scaling of the residual projections."""
        super()._init_weights(module)  # nn.Linear and nn.Embedding N(0, initializer_range), LayerNorm (1, 0)


class GPT1OriginsModel(GPT1OriginsPreTrainedModel):
    """The GPT-1 transformer: token + learned position embeddings and `n_layer` post-LN blocks. No final LayerNorm:
    each block already ends in one."""

    _transformers_class = "OpenAIGPTModel"  # save_transformers_format (hub.py)

    def __init__(self, config: GPT1OriginsConfig):
        super().__init__(config)
        self.tokens_embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.positions_embed = nn.Embedding(config.n_positions, config.n_embd)  # learned (section 4.1)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([GPT1OriginsBlock(config, layer_idx=i) for i in range(config.n_layer)])
        self.gradient_checkpointing = False
        self.post_init()

    # Copied from modeling_gpt2.modeling_gpt2.GPT2OriginsModel.get_input_embeddings with GPT2->GPT1, wte->tokens_embed
    def get_input_embeddings(self) -> nn.Embedding:
        return self.tokens_embed

    # Copied from modeling_gpt2.modeling_gpt2.GPT2OriginsModel.set_input_embeddings with GPT2->GPT1, wte->tokens_embed
    def set_input_embeddings(self, new_embeddings: nn.Embedding):
        self.tokens_embed = new_embeddings

    # Copied from modeling_gpt2.modeling_gpt2.GPT2OriginsModel.forward with GPT2->GPT1, wte->tokens_embed,
    # wpe->positions_embed
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

        hidden_states = inputs_embeds + self.positions_embed(position_ids)  # (B, T, C)
        if token_type_ids is not None:
            hidden_states = hidden_states + self.tokens_embed(token_type_ids)  # (B, T, C)
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
        """The `n_layer` post-LN blocks, and no final LayerNorm: each block already ends in one (GPT-2 added it).
        (B, T, C) -> (B, T, C)."""
        for block in self.h:
            hidden_states = block(hidden_states, attention_mask=causal_mask, cache=cache, **kwargs)  # (B, T, C)
        return hidden_states


class GPT1OriginsLMHeadModel(GPT1OriginsPreTrainedModel, GenerationMixin):
    """GPT-1 with its language-modelling head (the transposed token embedding): the pre-training model, L1 of
    section 3.1."""

    _transformers_class = "OpenAIGPTLMHeadModel"  # save_transformers_format (hub.py)

    _tied_weights_keys = {"lm_head.weight": "transformer.tokens_embed.weight"}

    # Copied from modeling_gpt2.modeling_gpt2.GPT2OriginsLMHeadModel.__init__ with GPT2->GPT1, wte->tokens_embed
    def __init__(self, config: GPT1OriginsConfig):
        super().__init__(config)
        self.transformer = GPT1OriginsModel(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.loss_type = "ForCausalLM"  # transformers' shifted cross-entropy that honours `num_items_in_batch`
        self.post_init()

    # Copied from modeling_gpt2.modeling_gpt2.GPT2OriginsLMHeadModel.forward with GPT2->GPT1, wte->tokens_embed
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
        Arguments as in [`GPT1OriginsModel.forward`], and:

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
            tied_grad = TiedWeightGrad.for_training_step(self.lm_head.weight, self.transformer.tokens_embed.weight)
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


@dataclass
class GPT1OriginsDoubleHeadsModelOutput(ModelOutput):
    r"""
    Output of [`GPT1OriginsDoubleHeadsModel`]. `N` below is the number of sequences per example: 1 for
    classification and entailment, 2 for similarity (both orderings), k for multiple choice.

    loss (`torch.FloatTensor` of shape `()`, returned with `labels`):
        The fine-tuning objective L3 = task_loss + lm_coef * lm_loss (section 3.2, equation 5).
    logits (`torch.FloatTensor` of shape `(batch_size, num_labels)`, or `(batch_size, num_choices)` for multiple
    choice):
        Task scores before the softmax (a regression score when `num_labels == 1`); a padding choice scores the
        dtype's minimum. Under `logits` so that Trainer's `compute_metrics` receives them.
    task_loss (`torch.FloatTensor` of shape `()`, returned with `labels`):
        L2: cross-entropy over the classes or the k choices, MSE for regression, BCE for multi-label.
    lm_loss (`torch.FloatTensor` of shape `()`, returned with `labels` and `input_ids`):
        L1, the auxiliary language-modelling loss on the task input, over the real tokens (attention mask): a mean per
        sequence, then averaged over the (real) sequences of an example and over the examples, as the released code
        did.
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
      Examples with fewer than k answers are padded with padding choices, marked by an all-zero `attention_mask`
      row (see `forward`).

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

    @property
    def hub_auto_class(self) -> str:
        """The Auto class of this model's task family, named in its model card (`hub.py`)."""
        if self.task_type == "multiple_choice":
            return "AutoModelForMultipleChoice"
        return "AutoModelForSequenceClassification"

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
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
            1 for real tokens, 0 for padding (either side); positions count real tokens only. For multiple choice, a
            choice whose row is all zeros is a padding choice, so that examples with different numbers of choices
            share a batch (`modeling_gpt1.tasks.GPT1TaskCollator` pads them so): its logit is the dtype's minimum
            (softmax, argmax and cross-entropy never pick it), it needs no extract token, a label pointing at it is a
            ValueError, and an example's LM loss is the mean over its real choices. A batch with padding choices gives
            the logits of the real choices and the losses that its examples give alone.
        token_type_ids (`torch.LongTensor`, same shape as `input_ids`, *optional*):
            Segment ids, embedded by the token embedding and added to the input, as in transformers' OpenAI-GPT.
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
        mc_labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*, keyword only):
            transformers' OpenAIGPTDoubleHeadsModel's name for the task targets: the same as `labels` here (read from
            `**kwargs`, so that Trainer's `label_names` stay `["labels"]`). Its other convention, `labels` as
            language-model targets of the input's shape, is a ValueError: the auxiliary LM loss is computed from
            `input_ids`. Its outputs `mc_logits` and `mc_loss` are `logits` and `task_loss` here.
        """
        labels, num_items_in_batch, choice_mask, input_shape = self._read_task_inputs(
            input_ids, inputs_embeds, attention_mask, token_type_ids, mc_token_ids, labels, kwargs
        )
        # Fine-tuning (training mode, task labels): the auxiliary LM loss goes through the chunked head, and the
        # (B*N, T, V) logits are never built (lm_logits is None); otherwise the logits, as transformers gives them.
        chunked_lm = (
            labels is not None and input_ids is not None and self.training and bool(self.config.loss_chunk_size)
        )
        tied_grad = None
        if chunked_lm:
            tied_grad = TiedWeightGrad.for_training_step(self.lm_head.weight, self.transformer.tokens_embed.weight)
        outputs, flat_ids, flat_mask = self._run_transformer(
            input_shape, input_ids, inputs_embeds, attention_mask, position_ids, token_type_ids, tied_grad, kwargs
        )
        hidden_states = outputs.last_hidden_state  # (B*N, T, C)
        lm_logits = None if chunked_lm else self.lm_head(hidden_states)  # (B*N, T, V)

        extract_states = self._extract_states(hidden_states, flat_ids, flat_mask, mc_token_ids)  # (B*N, C)
        extract_states = extract_states.view(input_shape[0], -1, extract_states.shape[-1])  # (B, N, C)
        logits = self._task_logits(extract_states, choice_mask)  # (B, num_labels | k)

        loss = task_loss = lm_loss = None
        if labels is not None:
            loss, task_loss, lm_loss = self._combined_loss(
                logits, labels, hidden_states, lm_logits, flat_ids, flat_mask, choice_mask, tied_grad,
                num_items_in_batch,
            )  # fmt: skip
        return self._output(outputs, input_shape, logits, lm_logits, loss, task_loss, lm_loss)

    def _read_task_inputs(
        self,
        input_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        mc_token_ids: torch.Tensor | None,
        labels: torch.Tensor | None,
        kwargs: dict,
    ) -> tuple[torch.Tensor | None, torch.Tensor | int | None, torch.Tensor | None, tuple[int, ...]]:
        """The task targets (`labels` or `mc_labels`), Trainer's `num_items_in_batch`, the real choices (B, k) or
        None, and the input's shape (B, T) or (B, N, T), every input checked for the task family. Takes `mc_labels`,
        `num_items_in_batch` and `use_cache` out of `kwargs`, which then holds what goes on to the transformer."""
        input_shape = tuple(input_ids.shape) if input_ids is not None else ()
        labels = resolve_task_labels(labels, kwargs.pop("mc_labels", None), input_shape)
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        kwargs.pop("use_cache", None)  # no cache: each example is read whole
        check_forward_kwargs(self.forward, kwargs)
        choice_mask = real_choices(self.task_type, attention_mask)  # (B, k): False for a padding choice; or None
        input_shape = check_task_inputs(  # (B, T) or (B, N, T)
            self.config, self.task_type, input_ids, inputs_embeds, attention_mask, mc_token_ids, token_type_ids,
            choice_mask,
        )  # fmt: skip
        return labels, num_items_in_batch, choice_mask, input_shape

    def _run_transformer(
        self,
        input_shape: tuple[int, ...],
        input_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        tied_grad: TiedWeightGrad | None,
        kwargs: dict,
    ) -> tuple[BaseModelOutputWithPast, torch.Tensor | None, torch.Tensor | None]:
        """The transformer over every sequence of the batch; returns its output and the flattened ids and mask, each
        (B*N, T). The N sequences of an example run through it as independent rows: (B, N, T) -> (B * N, T)."""
        seq_len = input_shape[-1]
        flat_ids = input_ids.reshape(-1, seq_len) if input_ids is not None else None
        flat_embeds = inputs_embeds.flatten(0, -3) if inputs_embeds is not None else None  # (B*N, T, C)
        flat_mask = attention_mask.reshape(-1, seq_len) if attention_mask is not None else None
        flat_positions = position_ids.reshape(-1, seq_len) if position_ids is not None else None
        flat_types = token_type_ids.reshape(-1, seq_len) if token_type_ids is not None else None
        outputs: BaseModelOutputWithPast = self.transformer(
            flat_ids,
            attention_mask=flat_mask,
            token_type_ids=flat_types,
            position_ids=flat_positions,
            inputs_embeds=flat_embeds,
            use_cache=False,
            tied_weight_grad=tied_grad,
            **kwargs,
        )
        return outputs, flat_ids, flat_mask

    def _extract_states(
        self,
        hidden_states: torch.Tensor,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        mc_token_ids: torch.Tensor | None,
    ) -> torch.Tensor:
        """The final block's state at each sequence's extract token, the input of W_y (section 3.2: "the final
        transformer block's activation h_l^m, which is then fed into an added linear output layer"). The position
        is `mc_token_ids` when given, else the one extract token, else the last real token.

        hidden_states: (S, T, C) with S = B * N; input_ids, attention_mask: (S, T); mc_token_ids: (B,) or (B, N).
        Returns (S, C)."""
        num_rows, seq_len = hidden_states.shape[:2]
        if mc_token_ids is not None:
            extract_index = mc_token_ids.reshape(-1)  # (S,)
        elif self.config.extract_token_id is not None and input_ids is not None:
            extract_index = (input_ids == self.config.extract_token_id).int().argmax(-1)  # (S,)
        elif attention_mask is not None:
            positions = torch.arange(seq_len, device=attention_mask.device)
            extract_index = (positions * attention_mask.long()).argmax(-1)  # (S,) last real token, padding either side
        else:
            extract_index = torch.full((num_rows,), seq_len - 1, device=hidden_states.device)
        rows = torch.arange(num_rows, device=hidden_states.device)
        return hidden_states[rows, extract_index.to(hidden_states.device)]  # (S, C)

    def _task_logits(self, extract_states: torch.Tensor, choice_mask: torch.Tensor | None) -> torch.Tensor:
        """W_y for the task family (section 3.3, figure 1). extract_states: (B, N, C); choice_mask: (B, k), False for
        a padding choice, or None. Returns (B, num_labels), or (B, k) scores of the k answers for multiple choice."""
        if self.task_type == "multiple_choice":
            # One dropout mask shared by the k answers of an example, as the released code drew it (train.py:
            # noise shape [batch, 1, n_embd]), so that the answers are compared on the same features.
            keep = self.dropout(extract_states.new_ones(extract_states.shape[0], 1, extract_states.shape[-1]))
            scores = self.multiple_choice_head(extract_states * keep)  # (B, k)
            if choice_mask is not None:
                # A padding choice scores the dtype's minimum: softmax gives it 0, argmax and cross-entropy skip it.
                scores = scores.masked_fill(~choice_mask.to(scores.device), torch.finfo(scores.dtype).min)
            return scores  # (B, k)
        if self.task_type == "similarity":
            # Section 3.3: "we ... process both independently to produce two sequence representations which are
            # added element-wise before being fed into the linear output layer".
            return self.score(self.dropout(extract_states.sum(1)))  # (B, num_labels)
        return self.score(self.dropout(extract_states[:, 0]))  # (B, num_labels)

    def _combined_loss(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        hidden_states: torch.Tensor,
        lm_logits: torch.Tensor | None,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        choice_mask: torch.Tensor | None,
        tied_grad: TiedWeightGrad | None,
        num_items_in_batch: torch.Tensor | int | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """L3 = L2 + lambda * L1 (section 3.2, equation 5), with the task loss L2 and the auxiliary LM loss L1 on the
        task input; returns (L3, L2, L1). Without `input_ids` (inputs_embeds) there are no LM targets: L3 = L2.

        logits: (B, num_labels | k); hidden_states: (S, T, C) with S = B * N; lm_logits: (S, T, V), or None when L1
        goes through the chunked head; input_ids, attention_mask: (S, T); choice_mask: (B, k) or None."""
        batch_size = logits.shape[0]
        num_sequences = hidden_states.shape[0] // batch_size
        problem_type = task_problem_type(self.task_type, self.config, labels)
        check_task_labels(problem_type, labels, batch_size, num_sequences, self.config.num_labels, choice_mask)
        labels = labels.to(logits.device)
        per_example, weights = task_loss_per_example(problem_type, logits, labels)  # (B,), (B,)
        # Both losses are reduced the same way: mean over labelled examples, or their sum over the accumulated batch's
        # count when Trainer gives it (it counts label entries: num_labels per example for multi-label). A batch
        # without a labelled example divides by 1: loss 0, zero gradients.
        label_entries = loss_divisor(labels.ne(-100).sum(), num_items_in_batch)
        denominator = label_entries / (labels.numel() // batch_size)
        task_loss = (per_example * weights).sum() / denominator
        if input_ids is None:
            return task_loss, task_loss, None
        # An example's LM loss is the mean over its sequences, its real ones when it is padded with choices.
        per_sequence = sequence_weights(choice_mask, batch_size, num_sequences, logits.device)  # (B, N)
        if lm_logits is None:
            lm_loss = lm_loss_chunked(
                hidden_states, self.lm_head.weight, input_ids, attention_mask, weights / denominator, per_sequence,
                self.config.loss_chunk_size, tied_grad,
            )  # fmt: skip
        else:
            lm_per_sequence = lm_loss_per_sequence(lm_logits, input_ids, attention_mask).view(batch_size, -1)
            lm_loss = ((lm_per_sequence * per_sequence).sum(1) * weights).sum() / denominator
        return task_loss + self.config.lm_coef * lm_loss, task_loss, lm_loss

    def _output(
        self,
        outputs: BaseModelOutputWithPast,
        input_shape: tuple[int, ...],
        logits: torch.Tensor,
        lm_logits: torch.Tensor | None,
        loss: torch.Tensor | None,
        task_loss: torch.Tensor | None,
        lm_loss: torch.Tensor | None,
    ) -> GPT1OriginsDoubleHeadsModelOutput:
        """The model's output, with the LM logits in the input's shape: (B*N, T, V) -> (B, [N,] T, V)."""
        return GPT1OriginsDoubleHeadsModelOutput(
            loss=loss,
            logits=logits,
            task_loss=task_loss,
            lm_loss=lm_loss,
            lm_logits=lm_logits.view(*input_shape, -1) if lm_logits is not None else None,  # (B, [N,] T, V)
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


# Released checkpoints store the projections as Conv1D (in, out): transposed on load, back on save (loading.py).
register_conv1d_layout(GPT1OriginsConfig.model_type)

__all__ = [
    "GPT1OriginsPreTrainedModel",
    "GPT1OriginsModel",
    "GPT1OriginsLMHeadModel",
    "GPT1OriginsDoubleHeadsModel",
    "GPT1OriginsDoubleHeadsModelOutput",
    "GPT1OriginsMultipleChoiceHead",
]
