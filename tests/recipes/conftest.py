"""Fixtures the zero-shot recipe's tests share (test_evaluate_zero_shot.py, test_hellaswag.py): OpenAI's GPT-2
tokenizer, a tiny random GPT-2 saved in a folder with it, and that model loaded. A module's own fixture wins."""

import pytest
import torch

from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel, load_gpt2_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_gpt2_tokenizer()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    GPT2OriginsLMHeadModel(GPT2OriginsConfig.from_preset("tiny")).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model(model_dir):
    return GPT2OriginsLMHeadModel.from_pretrained(model_dir).eval()
