"""Loading the model a command names: its config and tokenizer first (no weights), then its weights.

Two ways to name a model, one loader behind both:

- a model and, without one, a random preset of a family (`recipes.generate`'s `--model`, `--model_type`,
  `--preset`): `load_config_and_tokenizer(model, model_type, preset)`, then `load_model(...)`;
- one name that is either a GPT-2 preset size or a model (`recipes.evaluate_zero_shot`'s `--model tiny` or
  `--model openai-community/gpt2`): `load_config_and_tokenizer_by_name(name)`, then `load_model_by_name(...)`,
  which say in their errors that the name is neither.

A model is a folder or Hub name of either family (its config.json names it, recipes/models/families.py); a preset
has random weights drawn from a seed, for smoke runs without the Hub.
"""

import modeling_gpt2

from ..core.errors import RecipeError
from .families import (
    family_of,
    get_family,
    is_preset,
    load_causal_lm,
    load_config,
    load_tokenizer_for,
    preset_model,
    preset_tokenizer,
)


def preset_overrides(family: str, tokenizer) -> dict:
    # A learned GPT-1 vocabulary is smaller than the paper's 40,478 tokens: the embedding is sized to it.
    return {} if family == "gpt2" else {"vocab_size": len(tokenizer)}


def load_config_and_tokenizer(model: str | None, model_type: str | None = None, preset: str = "tiny"):
    """(config, tokenizer) of `model` (a folder or Hub name, of whichever family its config.json names; `model_type`,
    if given, must agree), or without it of a random `preset` of `model_type` (default gpt2): no weights are read."""
    if model is None:
        family = get_family(model_type or "gpt2")
        tokenizer = preset_tokenizer(family.name)
        return family.config_class.from_preset(preset, **preset_overrides(family.name, tokenizer)), tokenizer
    family, config = load_config(model)
    if model_type is not None and model_type != family.name:
        raise RecipeError(f"--model {model!r} is a {family.name} model, not --model_type {model_type}.")
    return config, load_tokenizer_for(model)


def load_model(model: str | None, model_type: str | None = None, preset: str = "tiny", seed: int = 0, tokenizer=None):
    """The weights of `model`, or a random `preset` of `model_type` drawn from `seed` (a GPT-1 preset's embedding
    sized to `tokenizer`)."""
    if model is None:
        family = get_family(model_type or "gpt2").name
        return preset_model(family, preset, seed, **preset_overrides(family, tokenizer))
    return load_causal_lm(model)


def load_config_and_tokenizer_by_name(name: str):
    """`--model`'s config and tokenizer, no weights: a GPT-2 preset name (OpenAI's tokenizer), else a GPT-2 or GPT-1
    folder or Hub name (its config.json names the family), with the folder's tokenizer (a GPT-2 folder without one:
    OpenAI's)."""
    if is_preset(name, "gpt2"):
        return load_config_and_tokenizer(None, "gpt2", name)
    try:
        family_of(name)
    except RecipeError as error:
        presets = ", ".join(modeling_gpt2.PRESETS)
        raise RecipeError(f"--model {name!r} is neither a preset ({presets}) nor a model: {error}") from error
    try:
        return load_config_and_tokenizer(name)
    except RecipeError:
        raise
    except (OSError, ValueError) as error:
        raise RecipeError(f"--model {name!r} does not load: {' '.join(str(error).split())}") from error


def load_model_by_name(name: str, seed: int):
    """`--model`'s weights (a GPT-2 preset's random ones, drawn from `seed`)."""
    if is_preset(name, "gpt2"):
        return load_model(None, "gpt2", name, seed)
    try:
        return load_model(name)
    except (OSError, ValueError) as error:
        raise RecipeError(f"--model {name!r} does not load: {error}") from error


__all__ = [
    "load_config_and_tokenizer",
    "load_config_and_tokenizer_by_name",
    "load_model",
    "load_model_by_name",
    "preset_overrides",
]
