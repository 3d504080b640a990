"""The model families the recipes know, and how any recipe loads a model or tokenizer of either one.

A family is GPT-2 (`modeling_gpt2`) or GPT-1 (`modeling_gpt1`): its config and LM-head classes, the `model_type`
values of the config.json files it loads (ours and transformers' own), the optimiser settings a pre-training run
starts from, and its tokenizer. A folder or Hub repository names its family in config.json, so no recipe needs to be
told which one it is given:

    family = family_of("runs/pretrain-gpt1")              # MODEL_FAMILIES["gpt1"]
    model = load_causal_lm("openai-community/gpt2")       # GPT2OriginsLMHeadModel with the released weights
    tokenizer = load_tokenizer_for("runs/pretrain-gpt1")
    model = preset_model("gpt2", "tiny", seed=0)          # random weights, for smoke runs
"""

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub.errors import StrictDataclassError
from transformers import PreTrainedConfig

import modeling_gpt1
import modeling_gpt2

from ..core.errors import RecipeError
from ..data.corpus import SHAKESPEARE, iter_text_batches, load_documents
from ..data.tokenizer import DEFAULT_VOCAB_SIZE, load_tokenizer

# The files a folder holds when a tokenizer was saved into it (save_pretrained writes at least one of them).
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer_config.json")
# The tokenizer of a random GPT-1 preset (no GPT-1 vocabulary ships): a GPT-1 style BPE of this many tokens, learned
# from the bundled Shakespeare in a few seconds; the README's CPU demo learns one of the same size.
PRESET_GPT1_VOCAB_SIZE = 8192


@dataclass(frozen=True)
class ModelFamily:
    name: str  # "gpt2" | "gpt1": the recipes' --model_type
    config_class: type
    lm_class: type
    model_types: tuple[str, ...]  # the config.json `model_type` values this family loads: ours, then transformers'
    learning_rate: float  # pre-training's AdamW peak learning rate
    betas: tuple[float, float]
    weight_decay: float
    tokenizer: str  # the default tokenizer of a pre-training run: "gpt2" (OpenAI's, offline) or "train" (learned)
    vocab_size: int  # of a tokenizer trained with `--tokenizer train`

    @property
    def presets(self) -> tuple[str, ...]:
        """The preset names `config_class.from_preset` takes, aliases included."""
        module = modeling_gpt2.configuration_gpt2 if self.name == "gpt2" else modeling_gpt1.configuration_gpt1
        return (*module.PRESETS, *module.PRESET_ALIASES)


MODEL_FAMILIES: dict[str, ModelFamily] = {
    # GPT-2 gives no optimiser settings; these are GPT-3's for its 125M model (Brown et al. 2020, table 2.1), which
    # nanoGPT and llm.c also use for GPT-2.
    "gpt2": ModelFamily(
        name="gpt2",
        config_class=modeling_gpt2.GPT2OriginsConfig,
        lm_class=modeling_gpt2.GPT2OriginsLMHeadModel,
        model_types=modeling_gpt2.configuration_gpt2.LOADABLE_MODEL_TYPES,
        learning_rate=6e-4,
        betas=(0.9, 0.95),
        weight_decay=0.1,
        tokenizer="gpt2",
        vocab_size=DEFAULT_VOCAB_SIZE["gpt2"],
    ),
    # GPT-1, section 4.1: Adam, max lr 2.5e-4, linear warm-up over 2,000 updates then cosine to 0, L2 w = 0.01 on
    # non-bias, non-gain weights; a BPE vocabulary of 40,000 merges (no released vocabulary ships: train one).
    "gpt1": ModelFamily(
        name="gpt1",
        config_class=modeling_gpt1.GPT1OriginsConfig,
        lm_class=modeling_gpt1.GPT1OriginsLMHeadModel,
        model_types=modeling_gpt1.configuration_gpt1.LOADABLE_MODEL_TYPES,
        learning_rate=2.5e-4,
        betas=(0.9, 0.999),
        weight_decay=0.01,
        tokenizer="train",
        vocab_size=DEFAULT_VOCAB_SIZE["gpt1"],
    ),
}


def is_preset(name: str, family: str) -> bool:
    """`name` is one of `family`'s preset sizes (`PRESETS` of its configuration module, aliases aside) and no folder
    of that name exists. Only sizes count: "gpt2", "gpt2-medium", ... are also the Hub names of the released
    weights, which load as models."""
    module = modeling_gpt2.configuration_gpt2 if family == "gpt2" else modeling_gpt1.configuration_gpt1
    return name in module.PRESETS and not Path(name).exists()


def get_family(name: str) -> ModelFamily:
    """`MODEL_FAMILIES[name]`, or a RecipeError naming the known families."""
    if name not in MODEL_FAMILIES:
        raise RecipeError(f"--model_type must be one of {', '.join(MODEL_FAMILIES)}, got {name!r}.")
    return MODEL_FAMILIES[name]


def read_config_dict(name_or_path) -> dict:
    """The config.json of a folder or Hub repository, as a dict; a RecipeError when there is none."""
    try:
        config, _ = PreTrainedConfig.get_config_dict(os.fspath(name_or_path))
    except (OSError, ValueError) as error:
        raise RecipeError(
            f"{os.fspath(name_or_path)!r} is neither a model folder with a config.json nor a Hub model that can be "
            f"reached: {str(error).splitlines()[0]}"
        ) from error
    if not isinstance(config, dict) or not config:
        raise RecipeError(f"The config.json of {os.fspath(name_or_path)!r} is empty or not a JSON object.")
    return config


def load_config(name_or_path) -> tuple[ModelFamily, PreTrainedConfig]:
    """The family and the config of a folder or Hub name, from its config.json (read once); no weights are read. A
    field of the wrong type or value is a RecipeError naming the folder."""
    config_dict = read_config_dict(name_or_path)
    family = _family_of_config(config_dict, name_or_path)
    try:
        return family, family.config_class.from_dict(config_dict)
    except (ValueError, StrictDataclassError) as error:  # the last: a field of the wrong type
        message = " ".join(str(error).split())  # one line: a field's error spans two
        raise RecipeError(
            f"{os.fspath(name_or_path)!r} does not load: its config.json is not a valid {family.name} config: "
            f"{message}"
        ) from error


def family_of(name_or_path) -> ModelFamily:
    """The family whose classes load `name_or_path`, from the `model_type` of its config.json."""
    return _family_of_config(read_config_dict(name_or_path), name_or_path)


def _family_of_config(config: dict, name_or_path) -> ModelFamily:
    model_type = config.get("model_type")
    for family in MODEL_FAMILIES.values():
        if model_type in family.model_types:
            return family
    known = ", ".join(f"{model} ({family.name})" for family in MODEL_FAMILIES.values() for model in family.model_types)
    raise RecipeError(
        f"{os.fspath(name_or_path)!r} holds a model of model_type={model_type!r}, which no family here loads; the "
        f"known model types: {known}."
    )


def load_causal_lm(name_or_path, **kwargs):
    """The LM-head model of whichever family `name_or_path` holds; kwargs go to `from_pretrained` (dtype, ...).

    Loads our folders, transformers' gpt2 / openai-gpt folders (their Conv1D layout is converted on load), a
    pre-training run's folder, and a fine-tuned GPT-1 double-heads folder: its transformer, under the LM head that is
    tied to its token embedding (the task head is left out).
    """
    config_dict = read_config_dict(name_or_path)
    family = _family_of_config(config_dict, name_or_path)
    # The config is built from the fields read above: transformers' gpt2 / openai-gpt config.json has the same fields
    # (from_pretrained alone would warn that its model_type is not ours).
    config = family.config_class.from_dict(config_dict)
    if "GPT1OriginsDoubleHeadsModel" in (config_dict.get("architectures") or []):
        # The double-heads checkpoint holds the transformer and the task head; the LM head is the tied embedding.
        # Loaded as what it is (no report of unexpected task-head weights), then its transformer moves under an
        # LM head built on the meta device, so no weights are initialised only to be thrown away.
        double_heads = modeling_gpt1.GPT1OriginsDoubleHeadsModel.from_pretrained(name_or_path, config=config, **kwargs)
        with torch.device("meta"):
            model = family.lm_class(double_heads.config)
        model.transformer = double_heads.transformer
        model.tie_weights()
        return model.eval()
    return family.lm_class.from_pretrained(name_or_path, config=config, **kwargs)


def has_tokenizer_files(folder) -> bool:
    return any((Path(folder) / name).is_file() for name in TOKENIZER_FILES)


def load_tokenizer_for(name_or_path):
    """The tokenizer saved with a model: a folder's own (or a Hub repository's); a GPT-2 folder without one gets
    OpenAI's vocabulary, which ships with gpt-origins (offline); a GPT-1 folder without one is a RecipeError (no
    GPT-1 vocabulary ships, and another one would not match the model's embedding)."""
    if not Path(name_or_path).is_dir() or has_tokenizer_files(name_or_path):
        return load_tokenizer(name_or_path, "The model")
    family = family_of(name_or_path)
    if family.name == "gpt2":
        return modeling_gpt2.load_gpt2_tokenizer()
    raise RecipeError(
        f"{os.fspath(name_or_path)!r} holds a GPT-1 model but no tokenizer ({', '.join(TOKENIZER_FILES)}): save the "
        f"tokenizer it was trained with into the folder (tokenizer.save_pretrained)."
    )


def preset_tokenizer(family: str):
    """A tokenizer for a random preset: OpenAI's GPT-2 vocabulary, or (GPT-1, of which no vocabulary ships) a GPT-1
    style BPE of PRESET_GPT1_VOCAB_SIZE tokens learned from the bundled Shakespeare."""
    if get_family(family).name == "gpt2":
        return modeling_gpt2.load_gpt2_tokenizer()
    documents = load_documents(train_files=[SHAKESPEARE])["train"]
    return modeling_gpt1.train_gpt1_tokenizer(iter_text_batches(documents), vocab_size=PRESET_GPT1_VOCAB_SIZE)


def preset_model(family: str, preset: str, seed: int = 0, **overrides):
    """A model of `family` ("gpt2" | "gpt1") and `preset` with random weights drawn from `seed` (the global random
    state is left as it was), for smoke runs; `overrides` set config fields (vocab_size, ...)."""
    model_family = get_family(family)
    try:
        config = model_family.config_class.from_preset(preset, **overrides)
    except ValueError as error:
        raise RecipeError(f"--preset {preset!r}: {error}") from error
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_family.lm_class(config)


__all__ = [
    "MODEL_FAMILIES",
    "ModelFamily",
    "family_of",
    "get_family",
    "is_preset",
    "load_causal_lm",
    "load_tokenizer_for",
    "preset_model",
    "preset_tokenizer",
    "load_config",
    "read_config_dict",
]
