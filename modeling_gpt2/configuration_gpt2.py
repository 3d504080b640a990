"""GPT-2 configuration: the fields of transformers' `GPT2Config`, the paper's defaults, and named presets.

Field names follow `transformers.GPT2Config` and the released `config.json` of openai-community/gpt2, so a
released config loads as it is; only `model_type` differs, because `gpt2` belongs to transformers.
"""

import os

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.activations import ACT2FN

from .compat import OUTPUT_CACHE_FIELD  # first of this package: checks the transformers release

# Named sizes of the GPT-2 paper (Radford et al. 2019, table 2), plus a tiny one for tests and CPU demos.
# The paper's "117M / 345M / 762M / 1542M" are the same models counted with a different method.
PRESETS: dict[str, dict] = {
    "tiny": {"n_layer": 2, "n_embd": 64, "n_head": 4, "n_positions": 128},
    "124M": {"n_layer": 12, "n_embd": 768, "n_head": 12},
    "355M": {"n_layer": 24, "n_embd": 1024, "n_head": 16},
    "774M": {"n_layer": 36, "n_embd": 1280, "n_head": 20},
    "1.5B": {"n_layer": 48, "n_embd": 1600, "n_head": 25},
}
PRESET_ALIASES = {
    "gpt2": "124M",
    "gpt2-medium": "355M",
    "gpt2-large": "774M",
    "gpt2-xl": "1.5B",
    "117M": "124M",
    "345M": "355M",
    "762M": "774M",
    "1542M": "1.5B",
}

_POSITIVE_INT_FIELDS = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")
_PROBABILITY_FIELDS = ("resid_pdrop", "embd_pdrop", "attn_pdrop")
# `weight_layout` values: nn.Linear's (out, in), these models' own, and transformers' Conv1D (in, out).
WEIGHT_LAYOUTS = ("linear", "conv1d")
# The model types whose config.json this class reads: its own, and transformers' GPT-2 (same fields).
LOADABLE_MODEL_TYPES = ("gpt2-origins", "gpt2")
OTHER_FAMILIES = {"gpt1-origins": "GPT-1 (modeling_gpt1)", "openai-gpt": "GPT-1 (modeling_gpt1)"}


def preset_fields(name: str, overrides: dict) -> dict:
    """The fields of the preset `name` (a key of `PRESETS` or `PRESET_ALIASES`), `overrides` on top."""
    key = PRESET_ALIASES.get(name, name)
    if key not in PRESETS:
        known = ", ".join([*PRESETS, *PRESET_ALIASES])
        raise ValueError(f"Unknown GPT-2 preset {name!r}; known presets: {known}.")
    return {**PRESETS[key], **overrides}


@strict(accept_kwargs=True)
class GPT2OriginsConfig(PreTrainedConfig):
    r"""
    Configuration of a GPT-2 model (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners").

    The defaults give the 124M model. `GPT2OriginsConfig.from_preset("355M")` gives another size of the paper.

    Args:
        vocab_size: Size of the byte-level BPE vocabulary; 50,257 for the released tokenizer (`<|endoftext|>` = 50256).
        n_positions: Longest sequence the learned position table covers (the context).
        n_embd: Width of the residual stream (d_model).
        n_layer: Number of transformer blocks.
        n_head: Number of attention heads; `n_embd` must be divisible by it.
        n_inner: Width of the MLP's hidden layer; `None` means 4 * n_embd.
        activation_function: MLP non-linearity; `gelu_new` is the tanh approximation of GELU GPT-2 used.
        resid_pdrop / embd_pdrop / attn_pdrop: Dropout on residual branches, embeddings and attention weights.
        layer_norm_epsilon: Epsilon of every LayerNorm.
        initializer_range: Std of the normal init; residual projections get std / sqrt(2 * n_layer).
        scale_attn_weights: Divide attention scores by sqrt(head_dim).
        scale_attn_by_inverse_layer_idx: Also divide by (layer_idx + 1) (Stanford CRFM's variant; off in GPT-2).
        reorder_and_upcast_attn: Compute the attention scores in fp32, the scale applied to the query first (Stanford
            CRFM's Mistral runs, as in transformers' GPT-2; off in GPT-2). Runs with `attn_implementation="eager"`
            only; another backend is a ValueError at the first forward.
        use_cache: Return the KV cache from forward by default (used by `generate`).
        weight_layout: How the weights of the attention and MLP projections are stored: "linear" (`nn.Linear`,
            (out, in): these models, and every folder they save) or "conv1d" (transformers' `Conv1D`, (in, out): its
            GPT-2 / OpenAI-GPT folders and gpt-origins folders saved before the layers were `nn.Linear`; a config.json
            without the field is read as "conv1d"). `from_pretrained` transposes a "conv1d" checkpoint as it loads
            (`loading.py`) and sets the field to "linear"; `save_pretrained` writes the layout the field names.
        loss_chunk_size: In training mode with labels, compute the LM head and its loss this many tokens at a time,
            gradients included, without ever holding the whole batch's logits (they are returned as None); `None`
            gives the plain path (logits, then transformers' loss). With the head tied to the token embedding, the
            embedding's gradient rows are added into the head's weight gradient in place: one (vocab_size, n_embd)
            gradient instead of two. Not part of the architecture: any value gives the same loss and gradients
            within float rounding.
    """

    model_type = "gpt2-origins"
    keys_to_ignore_at_inference = [OUTPUT_CACHE_FIELD]
    attribute_map = {
        "hidden_size": "n_embd",
        "max_position_embeddings": "n_positions",
        "num_attention_heads": "n_head",
        "num_hidden_layers": "n_layer",
    }

    vocab_size: int = 50257  # OpenAI's byte-level BPE: 256 bytes + 50,000 merges + <|endoftext|>
    n_positions: int = 1024  # GPT-2 doubled GPT-1's 512-token context
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12  # head_dim 64 in every size of the paper
    n_inner: int | None = None
    activation_function: str = "gelu_new"  # tanh-approximated GELU, as in the released TensorFlow code
    resid_pdrop: float | int = 0.1
    embd_pdrop: float | int = 0.1
    attn_pdrop: float | int = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False
    use_cache: bool = True
    bos_token_id: int | None = 50256
    eos_token_id: int | list[int] | None = 50256
    pad_token_id: int | None = None
    tie_word_embeddings: bool = True  # the LM head is the token embedding (GPT-2 stores no separate head)
    loss_chunk_size: int | None = 1024  # (1024, 50257) fp32 logits: 206 MB instead of 1.6 GB for a 8 x 1024 batch
    weight_layout: str = "linear"  # see WEIGHT_LAYOUTS; a config.json without it is "conv1d"

    def __post_init__(self, **kwargs):
        # Checked here, before transformers' own validators, so that a bad value raises a plain ValueError.
        self.add_cross_attention = kwargs.pop("add_cross_attention", False)
        self.validate_architecture()
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Sizes positive, heads dividing the width, dropout a probability (also re-run by `config.validate()`)."""
        if getattr(self, "add_cross_attention", False):
            raise ValueError(
                "add_cross_attention=True: GPT-2 here is a decoder-only language model, with no cross-attention "
                "layers (transformers' GPT2Model has them for encoder-decoder use); leave it False."
            )
        for name in _POSITIVE_INT_FIELDS:
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"`{name}` must be a positive integer, got {value}.")
        if self.loss_chunk_size is not None and self.loss_chunk_size <= 0:
            raise ValueError(
                f"`loss_chunk_size` must be a positive number of tokens or None (no chunking), got "
                f"{self.loss_chunk_size}."
            )
        if self.n_inner is not None and self.n_inner <= 0:
            raise ValueError(f"`n_inner` must be a positive integer or None, got {self.n_inner}.")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"`n_embd` ({self.n_embd}) must be divisible by `n_head` ({self.n_head}): each head gets "
                f"n_embd / n_head dimensions."
            )
        for name in _PROBABILITY_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"`{name}` must be a probability in [0, 1], got {value}.")
        if self.activation_function not in ACT2FN:
            raise ValueError(
                f"Unknown `activation_function` {self.activation_function!r}; GPT-2 uses 'gelu_new', transformers "
                f"knows: {', '.join(sorted(ACT2FN))}."
            )
        if not self.layer_norm_epsilon > 0:
            raise ValueError(f"`layer_norm_epsilon` must be positive, got {self.layer_norm_epsilon}.")
        if not self.initializer_range >= 0:
            raise ValueError(f"`initializer_range` (the std of the init) must be >= 0, got {self.initializer_range}.")
        if self.weight_layout not in WEIGHT_LAYOUTS:
            raise ValueError(
                f"`weight_layout` must be one of {', '.join(map(repr, WEIGHT_LAYOUTS))} (how the projection weights "
                f"are stored), got {self.weight_layout!r}."
            )

    def num_parameters(self) -> int:
        """The number of parameters of the LM model of this config (the tied head counted once), in closed form: known
        before any module is built, so that the model's `__init__` can refuse a config too big for the machine."""
        width, inner = self.n_embd, self.n_inner or 4 * self.n_embd
        # ln_1 and ln_2, c_attn (C -> 3C), attn.c_proj (C -> C), mlp.c_fc (C -> inner), mlp.c_proj (inner -> C).
        block = 4 * width + (width + 1) * 3 * width + (width + 1) * width + (width + 1) * inner + (inner + 1) * width
        head = 0 if self.tie_word_embeddings else self.vocab_size * width
        return (self.vocab_size + self.n_positions) * width + self.n_layer * block + 2 * width + head  # 2C: ln_f

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs):
        """transformers' reading of config.json, where a missing file is an error instead of the default config."""
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        if isinstance(config_dict, dict) and not config_dict:
            raise OSError(
                f"{os.fspath(pretrained_model_name_or_path)!r} has no config.json (or an empty one): a GPT-2 "
                f"folder needs the config its weights were saved with."
            )
        return config_dict, kwargs

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        """A config from the fields of a config.json; one that is not a JSON object, or that belongs to another model
        (its `model_type`), is refused instead of building a GPT-2 from the wrong fields."""
        if not isinstance(config_dict, dict):
            raise ValueError(
                f"A GPT-2 config.json must hold a JSON object of fields, got a {type(config_dict).__name__}: "
                f"{config_dict!r:.80}."
            )
        model_type = config_dict.get("model_type", cls.model_type)
        if model_type not in LOADABLE_MODEL_TYPES:
            family = OTHER_FAMILIES.get(model_type, "another model")
            raise ValueError(
                f"The config has model_type={model_type!r}, a checkpoint of {family}, not GPT-2 (expected "
                f"{' or '.join(map(repr, LOADABLE_MODEL_TYPES))}). Load it with its own classes or the Auto classes."
            )
        # transformers' own config.json becomes this config, model type included: the conversion of the Conv1D
        # weights it comes with (`loading.py`) is registered for this model type. A config.json without
        # `weight_layout` was saved with Conv1D weights: by transformers, or by gpt-origins before nn.Linear.
        config_dict = {"weight_layout": "conv1d", **config_dict, "model_type": cls.model_type}
        return super().from_dict(config_dict, **kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "GPT2OriginsConfig":
        """A config for one of the paper's sizes ("124M", "355M", "774M", "1.5B", or "gpt2", "gpt2-medium", ...)
        or "tiny" for tests; keyword arguments override single fields."""
        fields = preset_fields(name, overrides)
        if fields.get("vocab_size", 50257) <= 50256:
            # A smaller (e.g. self-trained) vocabulary has no <|endoftext|> at 50256: leave the ids to the caller.
            fields.setdefault("bos_token_id", None)
            fields.setdefault("eos_token_id", None)
        return cls(**fields)


__all__ = ["GPT2OriginsConfig", "PRESETS"]
