"""GPT-1 configuration: the fields of transformers' `OpenAIGPTConfig`, the paper's defaults, the fine-tuning settings
of sections 3.2 and 3.3, and named presets.

Field names follow `transformers.OpenAIGPTConfig` and the `config.json` of openai-community/openai-gpt, so a released
config loads as it is; only `model_type` differs, because `openai-gpt` belongs to transformers.
"""

import os
from typing import ClassVar

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .compat import OUTPUT_CACHE_FIELD  # first of this package: checks the transformers release

# The GPT-1 paper's one model (Radford et al. 2018, section 4.1), plus a tiny one for tests and CPU demos.
PRESETS: dict[str, dict] = {
    "tiny": {"n_layer": 2, "n_embd": 64, "n_head": 4, "n_positions": 128},
    "gpt1": {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 512},
}
PRESET_ALIASES = {"openai-gpt": "gpt1", "117M": "gpt1"}

# The paper's four task families, each with its input transformation (figure 1, section 3.3): the values of
# `task_type`, which picks the double-heads model's head, and of `GPT1TaskEncoder`'s `family`.
TASK_FAMILIES = ("classification", "entailment", "similarity", "multiple_choice")
TASK_TYPES = TASK_FAMILIES  # the former name, kept for existing imports

# `afn` keeps the names of the released code (train.py `act_fns`); there "gelu" is the tanh approximation, which
# transformers calls "gelu_new" (its OpenAIGPT maps "gelu" to `gelu_new` as well). Values are ACT2FN keys.
AFN_TO_ACT2FN = {"gelu": "gelu_new", "gelu_new": "gelu_new", "relu": "relu", "silu": "silu", "swish": "silu"}

_POSITIVE_INT_FIELDS = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")
_PROBABILITY_FIELDS = ("resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout", "classifier_dropout")
_TASK_TOKEN_FIELDS = ("start_token_id", "delimiter_token_id", "extract_token_id", "pad_token_id")
# `weight_layout` values: nn.Linear's (out, in), these models' own, and transformers' Conv1D (in, out).
WEIGHT_LAYOUTS = ("linear", "conv1d")
# The model types whose config.json this class reads: its own, and transformers' GPT-1 (same fields).
LOADABLE_MODEL_TYPES = ("gpt1-origins", "openai-gpt")
OTHER_FAMILIES = {"gpt2-origins": "GPT-2 (modeling_gpt2)", "gpt2": "GPT-2 (modeling_gpt2)"}


# Copied from modeling_gpt2.configuration_gpt2.preset_fields with GPT-2->GPT-1
def preset_fields(name: str, overrides: dict) -> dict:
    """The fields of the preset `name` (a key of `PRESETS` or `PRESET_ALIASES`), `overrides` on top."""
    key = PRESET_ALIASES.get(name, name)
    if key not in PRESETS:
        known = ", ".join([*PRESETS, *PRESET_ALIASES])
        raise ValueError(f"Unknown GPT-1 preset {name!r}; known presets: {known}.")
    return {**PRESETS[key], **overrides}


@strict(accept_kwargs=True)
class GPT1OriginsConfig(PreTrainedConfig):
    r"""
    Configuration of a GPT-1 model (Radford et al. 2018, "Improving Language Understanding by Generative
    Pre-Training"), for pre-training and for the task-specific fine-tuning of section 3.

    The defaults give the paper's model (12 layers, 768 wide, 12 heads, 512 positions).
    `GPT1OriginsConfig.from_preset("tiny")` gives a small one for tests.

    Args:
        vocab_size: Rows of the token embedding: the 40,478 BPE tokens of the released vocabulary, then the special
            tokens of `tokenization_gpt1` (`_start_`, `_delimiter_`, `_classify_`, `_pad_`, `<unk>`), 40,483 in all.
        n_positions: Longest sequence the learned position table covers (the context).
        n_embd: Width of the residual stream (d_model); the MLP is 4 * n_embd wide (3072 in the paper).
        n_layer: Number of transformer blocks.
        n_head: Number of attention heads; `n_embd` must be divisible by it.
        afn: MLP non-linearity by the released code's name: "gelu" (tanh approximation, the paper's), "relu",
            "silu" / "swish".
        resid_pdrop / embd_pdrop / attn_pdrop: Dropout on residual branches, embeddings and attention weights.
        layer_norm_epsilon: Epsilon of every LayerNorm.
        initializer_range: Std of the N(0, std) init of every weight (the paper: "N(0, 0.02) was sufficient").
        summary_type / summary_use_proj / summary_activation / summary_proj_to_labels / summary_first_dropout:
            The fields transformers' OpenAIGPTDoubleHeadsModel reads; kept so its configs load. Only its layout is
            supported (the state at the extract token, one linear layer, no activation); the dropout before the
            task heads is `classifier_dropout`.
        task_type: Which input transformation the double-heads model serves: "classification", "entailment",
            "similarity" or "multiple_choice" (`None`: multiple choice, the one head of transformers'
            OpenAIGPTDoubleHeadsModel, so its folders load as they are).
        lm_coef: lambda in L3 = L2 + lambda * L1 (section 3.2): the weight of the auxiliary LM loss while fine-tuning.
        classifier_dropout: Dropout on the extract-token state before the task head (`clf_pdrop` of the released code).
        start_token_id / delimiter_token_id / extract_token_id / pad_token_id: Ids of the task tokens; the double-heads
            model reads the task head's input at `extract_token_id` when no `mc_token_ids` are given.
        use_cache: Return the KV cache from forward by default (used by `generate`).
        weight_layout: How the weights of the attention and MLP projections are stored: "linear" (`nn.Linear`,
            (out, in): these models, and every folder they save) or "conv1d" (transformers' `Conv1D`, (in, out): its
            GPT-2 / OpenAI-GPT folders and gpt-origins folders saved before the layers were `nn.Linear`; a config.json
            without the field is read as "conv1d"). `from_pretrained` transposes a "conv1d" checkpoint as it loads
            (`loading.py`) and sets the field to "linear"; `save_pretrained` writes the layout the field names.
        loss_chunk_size: In training mode with labels, the LM head model computes its head and loss this many tokens
            at a time, gradients included, without ever holding the whole batch's logits (returned as None); `None`
            gives the plain path. The double-heads model does the same for its auxiliary LM loss in fine-tuning. The
            tied token embedding then adds its gradient rows into the head's weight gradient in place: one
            (vocab_size, n_embd) gradient instead of two. Not part of the architecture: any value gives the same loss
            and gradients.
    """

    model_type = "gpt1-origins"
    # Trainer's evaluation keeps the task logits only.
    keys_to_ignore_at_inference = [OUTPUT_CACHE_FIELD, "task_loss", "lm_loss", "lm_logits"]
    attribute_map = {
        "hidden_size": "n_embd",
        "max_position_embeddings": "n_positions",
        "num_attention_heads": "n_head",
        "num_hidden_layers": "n_layer",
    }
    # Read by the attention and MLP shared with GPT-2 (copied from modeling_gpt2); GPT-1 has one setting of each, so
    # they are constants of the architecture, not fields of config.json.
    scale_attn_weights: ClassVar[bool] = True  # train.py: `_attn(..., scale=True)`, scores / sqrt(head_dim)
    scale_attn_by_inverse_layer_idx: ClassVar[bool] = False
    reorder_and_upcast_attn: ClassVar[bool] = False
    n_inner: ClassVar[int | None] = None  # the MLP is 4 * n_embd wide ("3072 dimensional inner states")

    # 40,478 released BPE tokens, then _start_, _delimiter_, _classify_ at 40478-40480 (as the released train.py
    # appended them), then _pad_ and <unk>: the ids of `gpt1_tokenizer_from_released`.
    vocab_size: int = 40483
    n_positions: int = 512
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12  # head_dim 64
    afn: str = "gelu"  # the released code's tanh-approximated GELU (see AFN_TO_ACT2FN)
    resid_pdrop: float | int = 0.1
    embd_pdrop: float | int = 0.1
    attn_pdrop: float | int = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    summary_type: str = "cls_index"
    summary_use_proj: bool = True
    summary_activation: str | None = None
    summary_proj_to_labels: bool = True
    summary_first_dropout: float | int = 0.1
    task_type: str | None = None
    lm_coef: float | int = 0.5  # section 3.2: "we set lambda to 0.5"
    classifier_dropout: float | int = 0.1  # section 4.1: "dropout to the classifier with a rate of 0.1"
    start_token_id: int | None = None
    delimiter_token_id: int | None = None
    extract_token_id: int | None = None
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    use_cache: bool = True
    tie_word_embeddings: bool = True  # the LM head is the token embedding (train.py: `tf.matmul(lm_h, we, ...)`)
    loss_chunk_size: int | None = 1024  # (1024, 40483) fp32 logits: 166 MB, not 663 MB for a 8 x 512 batch
    weight_layout: str = "linear"  # see WEIGHT_LAYOUTS; a config.json without it is "conv1d"

    def __post_init__(self, **kwargs):
        # Checked here, before transformers' own validators, so that a bad value raises a plain ValueError.
        for name in ("scale_attn_weights", "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "n_inner"):
            if name in kwargs and kwargs[name] != getattr(type(self), name):
                raise ValueError(
                    f"`{name}`={kwargs[name]!r} is not a GPT-1 setting: GPT-1 has one architecture, "
                    f"`{name}`={getattr(type(self), name)!r} (a GPT-2 config? use modeling_gpt2)."
                )
        num_labels = kwargs.get("num_labels")
        if num_labels is not None and (
            not isinstance(num_labels, int) or isinstance(num_labels, bool) or num_labels < 1
        ):
            raise ValueError(f"`num_labels` must be a positive integer, got {num_labels!r}.")
        self.validate_architecture()
        self.validate_fine_tuning()
        super().__post_init__(**kwargs)
        if self.task_type not in (None, "multiple_choice") and not self.num_labels:
            raise ValueError(
                f"task_type={self.task_type!r} needs at least one label, got num_labels={self.num_labels} "
                f"(id2label={self.id2label})."
            )

    @property
    def activation_function(self) -> str:
        """The ACT2FN name of `afn` (read by the MLP shared with GPT-2)."""
        return AFN_TO_ACT2FN[self.afn]

    def validate_architecture(self):
        """Sizes positive, heads dividing the width, a known activation, dropout a probability (also re-run by
        `config.validate()`)."""
        for name in _POSITIVE_INT_FIELDS:
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"`{name}` must be a positive integer, got {value}.")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"`n_embd` ({self.n_embd}) must be divisible by `n_head` ({self.n_head}): each head gets "
                f"n_embd / n_head dimensions."
            )
        if self.loss_chunk_size is not None and self.loss_chunk_size <= 0:
            raise ValueError(
                f"`loss_chunk_size` must be a positive number of tokens or None (no chunking), got "
                f"{self.loss_chunk_size}."
            )
        if self.afn not in AFN_TO_ACT2FN:
            raise ValueError(f"Unknown `afn` {self.afn!r}; known: {', '.join(AFN_TO_ACT2FN)}.")
        if self.layer_norm_epsilon <= 0:
            raise ValueError(f"`layer_norm_epsilon` must be positive, got {self.layer_norm_epsilon}.")
        for name in _PROBABILITY_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"`{name}` must be a probability in [0, 1], got {value}.")
        if not self.initializer_range >= 0:
            raise ValueError(f"`initializer_range` (the std of the init) must be >= 0, got {self.initializer_range}.")
        if self.weight_layout not in WEIGHT_LAYOUTS:
            raise ValueError(
                f"`weight_layout` must be one of {', '.join(map(repr, WEIGHT_LAYOUTS))} (how the projection weights "
                f"are stored), got {self.weight_layout!r}."
            )

    def validate_fine_tuning(self):
        """A known task type, a non-negative lambda, task tokens inside the vocabulary, and the one task-head layout
        GPT-1 has (the extract token's state through one linear layer)."""
        if self.task_type is not None and self.task_type not in TASK_FAMILIES:
            raise ValueError(f"Unknown `task_type` {self.task_type!r}; known: {', '.join(TASK_FAMILIES)} (or None).")
        if self.lm_coef < 0:
            raise ValueError(
                f"`lm_coef` (lambda, the weight of the auxiliary LM loss) must be >= 0, got {self.lm_coef}."
            )
        for name in _TASK_TOKEN_FIELDS:
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"`{name}` must be None or an id in [0, {self.vocab_size}), got {value}.")
        unsupported = {
            "summary_type": (self.summary_type, "cls_index"),
            "summary_use_proj": (self.summary_use_proj, True),
            "summary_proj_to_labels": (self.summary_proj_to_labels, True),
            "summary_activation": (self.summary_activation, None),
        }
        for name, (value, supported) in unsupported.items():
            if value != supported:
                raise ValueError(
                    f"`{name}`={value!r} is not supported: GPT-1's task heads read the extract token's state through "
                    f"one linear layer (`{name}`={supported!r})."
                )

    def num_parameters(self) -> int:
        """The number of parameters of the LM model of this config (the tied head counted once; a task head adds
        n_embd * num_labels + num_labels), in closed form: known before any module is built, so that the model's
        `__init__` can refuse a config too big for the machine."""
        width = self.n_embd
        # ln_1 and ln_2, c_attn (C -> 3C), attn.c_proj (C -> C), mlp.c_fc (C -> 4C), mlp.c_proj (4C -> C).
        block = (
            4 * width
            + (width + 1) * 3 * width
            + (width + 1) * width
            + (width + 1) * 4 * width
            + (4 * width + 1) * width
        )
        head = 0 if self.tie_word_embeddings else self.vocab_size * width
        return (self.vocab_size + self.n_positions) * width + self.n_layer * block + head  # no final LayerNorm

    # Copied from modeling_gpt2.configuration_gpt2.GPT2OriginsConfig.get_config_dict with GPT2->GPT1, GPT-2->GPT-1
    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs):
        """transformers' reading of config.json, where a missing file is an error instead of the default config."""
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        if isinstance(config_dict, dict) and not config_dict:
            raise OSError(
                f"{os.fspath(pretrained_model_name_or_path)!r} has no config.json (or an empty one): a GPT-1 "
                f"folder needs the config its weights were saved with."
            )
        return config_dict, kwargs

    # Copied from modeling_gpt2.configuration_gpt2.GPT2OriginsConfig.from_dict with GPT2->GPT1, GPT-2->GPT-1
    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        """A config from the fields of a config.json; one that is not a JSON object, or that belongs to another model
        (its `model_type`), is refused instead of building a GPT-1 from the wrong fields."""
        if not isinstance(config_dict, dict):
            raise ValueError(
                f"A GPT-1 config.json must hold a JSON object of fields, got a {type(config_dict).__name__}: "
                f"{config_dict!r:.80}."
            )
        model_type = config_dict.get("model_type", cls.model_type)
        if model_type not in LOADABLE_MODEL_TYPES:
            family = OTHER_FAMILIES.get(model_type, "another model")
            raise ValueError(
                f"The config has model_type={model_type!r}, a checkpoint of {family}, not GPT-1 (expected "
                f"{' or '.join(map(repr, LOADABLE_MODEL_TYPES))}). Load it with its own classes or the Auto classes."
            )
        # transformers' own config.json becomes this config, model type included: the conversion of the Conv1D
        # weights it comes with (`loading.py`) is registered for this model type. A config.json without
        # `weight_layout` was saved with Conv1D weights: by transformers, or by gpt-origins before nn.Linear.
        config_dict = {"weight_layout": "conv1d", **config_dict, "model_type": cls.model_type}
        return super().from_dict(config_dict, **kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "GPT1OriginsConfig":
        """A config for the paper's model ("gpt1", also "openai-gpt") or "tiny" for tests; keyword arguments override
        single fields."""
        return cls(**preset_fields(name, overrides))


__all__ = ["GPT1OriginsConfig", "PRESETS", "TASK_FAMILIES", "TASK_TYPES"]
