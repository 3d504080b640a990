"""The fixtures of the GPT-1 task tests: a small GPT-1 tokenizer and its task tokens' ids."""

import pytest
from helpers.task_fixtures import FIXTURES

from modeling_gpt1.tokenization_gpt1 import (
    DELIMITER_TOKEN,
    EXTRACT_TOKEN,
    START_TOKEN,
    train_gpt1_tokenizer_from_files,
)


@pytest.fixture(scope="module")
def tokenizer():
    """An 800-token GPT-1 tokenizer (with the task tokens) learned from the committed Shakespeare sample."""
    return train_gpt1_tokenizer_from_files(FIXTURES / "shakespeare_sample.txt", vocab_size=800)


@pytest.fixture(scope="module")
def special_ids(tokenizer):
    return tokenizer.convert_tokens_to_ids([START_TOKEN, DELIMITER_TOKEN, EXTRACT_TOKEN])
