"""GPT-1 for the Hugging Face ecosystem. Importing this package registers it with the Auto classes:

    import modeling_gpt1
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    model = AutoModelForCausalLM.from_config(modeling_gpt1.GPT1OriginsConfig.from_preset("gpt1"))
    classifier = AutoModelForSequenceClassification.from_config(
        modeling_gpt1.GPT1OriginsConfig.from_preset("gpt1", task_type="entailment", num_labels=3)
    )

A saved model carries this package's code (`auto_map`), so it also loads with `trust_remote_code=True` where
gpt-origins is not installed.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMultipleChoice,
    AutoModelForSequenceClassification,
)

from .configuration_gpt1 import PRESETS, TASK_FAMILIES, TASK_TYPES, GPT1OriginsConfig
from .modeling_gpt1 import (
    GPT1OriginsDoubleHeadsModel,
    GPT1OriginsDoubleHeadsModelOutput,
    GPT1OriginsLMHeadModel,
    GPT1OriginsModel,
    GPT1OriginsPreTrainedModel,
)
from .tasks import ENTAILMENT_LABELS, TEXT_FIELDS, GPT1TaskCollator, GPT1TaskEncoder
from .tokenization_gpt1 import (
    DELIMITER_TOKEN,
    EXTRACT_TOKEN,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    START_TOKEN,
    UNK_TOKEN,
    gpt1_tokenizer_from_released,
    train_gpt1_tokenizer,
    train_gpt1_tokenizer_from_files,
)

AutoConfig.register(GPT1OriginsConfig.model_type, GPT1OriginsConfig, exist_ok=True)
AutoModel.register(GPT1OriginsConfig, GPT1OriginsModel, exist_ok=True)
AutoModelForCausalLM.register(GPT1OriginsConfig, GPT1OriginsLMHeadModel, exist_ok=True)
# One double-heads model serves the paper's four task families: classification, entailment and similarity through
# AutoModelForSequenceClassification, multiple choice through AutoModelForMultipleChoice (`config.task_type` decides).
AutoModelForSequenceClassification.register(GPT1OriginsConfig, GPT1OriginsDoubleHeadsModel, exist_ok=True)
AutoModelForMultipleChoice.register(GPT1OriginsConfig, GPT1OriginsDoubleHeadsModel, exist_ok=True)

# save_pretrained then writes `auto_map` (every Auto class above) and copies configuration_gpt1.py, modeling_gpt1.py
# and the files modeling_gpt1.py imports next to the weights.
GPT1OriginsConfig.register_for_auto_class()
GPT1OriginsModel.register_for_auto_class("AutoModel")
GPT1OriginsLMHeadModel.register_for_auto_class("AutoModelForCausalLM")
GPT1OriginsDoubleHeadsModel.register_for_auto_class("AutoModelForSequenceClassification")

__all__ = [
    "PRESETS",
    "TASK_FAMILIES",
    "TASK_TYPES",
    "GPT1OriginsConfig",
    "GPT1OriginsPreTrainedModel",
    "GPT1OriginsModel",
    "GPT1OriginsLMHeadModel",
    "GPT1OriginsDoubleHeadsModel",
    "GPT1OriginsDoubleHeadsModelOutput",
    "GPT1TaskEncoder",
    "GPT1TaskCollator",
    "TEXT_FIELDS",
    "ENTAILMENT_LABELS",
    "START_TOKEN",
    "DELIMITER_TOKEN",
    "EXTRACT_TOKEN",
    "PAD_TOKEN",
    "UNK_TOKEN",
    "SPECIAL_TOKENS",
    "gpt1_tokenizer_from_released",
    "train_gpt1_tokenizer",
    "train_gpt1_tokenizer_from_files",
]
