"""transformers' own common model and config tests (from the sdist of the installed release, see
tests/transformers_common.py) on GPT-2: the base model and the LM head."""

import unittest

from transformers_suite.testers import common_test_case

from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel, GPT2OriginsModel

MODEL_TYPE = GPT2OriginsConfig.model_type


class GPT2OriginsCommonTest(
    common_test_case(
        GPT2OriginsConfig,
        (GPT2OriginsModel, GPT2OriginsLMHeadModel),
        {
            "MODEL_MAPPING_NAMES": {MODEL_TYPE: GPT2OriginsModel.__name__},
            "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES": {MODEL_TYPE: GPT2OriginsLMHeadModel.__name__},
        },
    ),
    unittest.TestCase,
):
    pass
