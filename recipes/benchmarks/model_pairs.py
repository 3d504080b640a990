"""The models the benchmark compares: ours and transformers' own GPT-2 / GPT-1, built from the same config with the
same weights, and our CPU inference forms (int8, oneDNN).

The parameter names are the same in both, so the weights are a key copy, the projections turned between
transformers' Conv1D (in, out) and our nn.Linear (out, in) by `modeling_gpt2.loading.swap_projection_layout`. Our
side comes from the model-family registry (`models.families`); transformers' classes are named here, as only the
benchmark builds them.
"""

import copy

import torch
from torch.utils import mkldnn as mkldnn_utils
from transformers import GPT2Config, GPT2LMHeadModel, OpenAIGPTConfig, OpenAIGPTLMHeadModel

from modeling_gpt2.loading import swap_projection_layout  # the same names in both families

from ..core.errors import RecipeError
from ..models.families import MODEL_FAMILIES, load_causal_lm

# Fields both configs share (same names in transformers' GPT2Config / OpenAIGPTConfig and ours).
SHARED_FIELDS = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "layer_norm_epsilon")
VARIANTS = ["int8", "onednn"]
# transformers' own model of each family: config class, LM class, and the config fields that make it ours.
REFERENCES = {
    "gpt2": (GPT2Config, GPT2LMHeadModel, {}),
    "gpt1": (OpenAIGPTConfig, OpenAIGPTLMHeadModel, {"afn": "gelu"}),  # ours is GELU (section 4.1), exact form
}


NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}  # dropout would make the work differ


def reference_config_of(family: str, config):
    """transformers' config of the same architecture as our `config`, dropout off."""
    reference_config_class, _, fields = REFERENCES[family]
    return reference_config_class(**{k: getattr(config, k) for k in SHARED_FIELDS}, **fields, **NO_DROPOUT)


def _configs(family: str, preset: str, vocab_size: int | None):
    """(our config, transformers' config, our class, transformers' class) of one size, dropout off."""
    overrides = {**NO_DROPOUT, **({"vocab_size": vocab_size} if vocab_size else {})}
    if family == "gpt1" and preset == "124M":
        preset = "gpt1"  # GPT-1 is the same 12 x 768 size
    ours = MODEL_FAMILIES[family]
    config = ours.config_class.from_preset(preset, **overrides)
    return config, reference_config_of(family, config), ours.lm_class, REFERENCES[family][1]


def _reference_class_built(reference_class, reference_config, attn_implementation: str):
    try:
        return reference_class._from_config(reference_config, attn_implementation=attn_implementation)
    except ValueError:  # transformers' GPT-1 has eager attention only: the reference runs what it has
        return reference_class._from_config(reference_config, attn_implementation="eager")


def build_one(family: str, preset: str, attn_implementation: str, vocab_size: int | None, which: str):
    """One model, "ours" or "reference", with its own random weights (for measurements where values do not matter)."""
    config, reference_config, ours_class, reference_class = _configs(family, preset, vocab_size)
    if which == "ours":
        return ours_class._from_config(config, attn_implementation=attn_implementation)
    return _reference_class_built(reference_class, reference_config, attn_implementation)


def copy_weights(source, target):
    """`source`'s weights into `target` (the same names), the projections turned between transformers' Conv1D
    (in, out) and our nn.Linear (out, in). The tied LM head is not stored: tied again."""
    missing, unexpected = target.load_state_dict(swap_projection_layout(source.state_dict()), strict=False)
    if unexpected or any(not name.startswith("lm_head") for name in missing):
        raise RecipeError(f"Weights do not map one to one: missing {missing}, unexpected {unexpected}.")
    target.tie_weights()


def build_pair(family: str, preset: str, attn_implementation: str, vocab_size: int | None, model_path=None):
    """(ours, reference) with identical weights, in eval mode: random weights of `preset`, or the trained folder of
    ours at `model_path` (transformers' model gets its weights)."""
    torch.manual_seed(0)
    if model_path is not None:
        ours = load_causal_lm(model_path, attn_implementation=attn_implementation)
        for module in ours.modules():  # dropout off, as in transformers' model built below
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        reference_class = REFERENCES[family][1]
        reference = _reference_class_built(
            reference_class, reference_config_of(family, ours.config), attn_implementation
        )
        copy_weights(ours, reference)
        return ours.eval(), reference.eval()
    reference = build_one(family, preset, attn_implementation, vocab_size, "reference")
    ours = build_one(family, preset, attn_implementation, vocab_size, "ours")
    copy_weights(reference, ours)
    return ours.eval(), reference.eval()


def build_variant(name: str, model):
    """A CPU inference form of our model (a copy; `model` stays as it is): "int8", torch's dynamic int8 quantisation
    of every nn.Linear (weights int8 per tensor, activations quantised per call), or "onednn", fp32 weights packed for
    oneDNN's matrix products. Both are one line of torch, as a user would write it."""
    model = copy.deepcopy(model).eval()
    if name == "int8":
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    with torch.no_grad():
        return mkldnn_utils.to_mkldnn(model)


__all__ = [
    "REFERENCES",
    "VARIANTS",
    "build_one",
    "build_pair",
    "build_variant",
    "copy_weights",
    "reference_config_of",
]
