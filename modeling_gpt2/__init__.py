"""GPT-2 for the Hugging Face ecosystem. Importing this package registers it with the Auto classes:

    import modeling_gpt2
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_config(modeling_gpt2.GPT2OriginsConfig.from_preset("124M"))

A saved model carries this package's code (`auto_map`), so it also loads with `trust_remote_code=True` where
gpt-origins is not installed.
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, GPT2Tokenizer

from .configuration_gpt2 import PRESETS, GPT2OriginsConfig
from .modeling_gpt2 import GPT2OriginsLMHeadModel, GPT2OriginsModel, GPT2OriginsPreTrainedModel
from .tokenization_gpt2 import load_gpt2_tokenizer

AutoConfig.register(GPT2OriginsConfig.model_type, GPT2OriginsConfig, exist_ok=True)
AutoModel.register(GPT2OriginsConfig, GPT2OriginsModel, exist_ok=True)
AutoModelForCausalLM.register(GPT2OriginsConfig, GPT2OriginsLMHeadModel, exist_ok=True)
AutoTokenizer.register(GPT2OriginsConfig, tokenizer_class=GPT2Tokenizer, exist_ok=True)

# save_pretrained then writes `auto_map` (every Auto class above) and copies configuration_gpt2.py, modeling_gpt2.py
# and the files modeling_gpt2.py imports next to the weights.
GPT2OriginsConfig.register_for_auto_class()
GPT2OriginsModel.register_for_auto_class("AutoModel")
GPT2OriginsLMHeadModel.register_for_auto_class("AutoModelForCausalLM")

__all__ = [
    "PRESETS",
    "GPT2OriginsConfig",
    "GPT2OriginsPreTrainedModel",
    "GPT2OriginsModel",
    "GPT2OriginsLMHeadModel",
    "load_gpt2_tokenizer",
]
