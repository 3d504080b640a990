"""transformers' own common model and config tests (from the sdist of the installed release, see
tests/transformers_common.py) on GPT-1: the base model, the LM head, and the double-heads model for each of the
paper's four task families (section 3.3), known to the tests as a sequence classifier (classification, entailment,
similarity: both orderings of a pair, (B, 2, T)) or a multiple-choice model ((B, k, T))."""

import unittest

from transformers_suite.testers import common_test_case

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsDoubleHeadsModel, GPT1OriginsLMHeadModel, GPT1OriginsModel

MODEL_TYPE = GPT1OriginsConfig.model_type
SEQUENCE_CLASSIFIER = {"MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES": {MODEL_TYPE: "GPT1OriginsDoubleHeadsModel"}}
MULTIPLE_CHOICE = {"MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES": {MODEL_TYPE: "GPT1OriginsDoubleHeadsModel"}}


class GPT1OriginsCommonTest(
    common_test_case(
        GPT1OriginsConfig,
        (GPT1OriginsModel, GPT1OriginsLMHeadModel),
        {
            "MODEL_MAPPING_NAMES": {MODEL_TYPE: GPT1OriginsModel.__name__},
            "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES": {MODEL_TYPE: GPT1OriginsLMHeadModel.__name__},
        },
    ),
    unittest.TestCase,
):
    pass


class GPT1OriginsClassificationCommonTest(
    common_test_case(
        GPT1OriginsConfig,
        (GPT1OriginsDoubleHeadsModel,),
        SEQUENCE_CLASSIFIER,
        task_type="classification",
        num_labels=3,
    ),
    unittest.TestCase,
):
    pass


class GPT1OriginsEntailmentCommonTest(
    common_test_case(
        GPT1OriginsConfig, (GPT1OriginsDoubleHeadsModel,), SEQUENCE_CLASSIFIER, task_type="entailment", num_labels=3
    ),
    unittest.TestCase,
):
    pass


class GPT1OriginsSimilarityCommonTest(
    common_test_case(
        GPT1OriginsConfig,
        (GPT1OriginsDoubleHeadsModel,),
        SEQUENCE_CLASSIFIER,
        num_sequences=2,
        task_type="similarity",
        num_labels=1,
    ),
    unittest.TestCase,
):
    pass


class GPT1OriginsMultipleChoiceCommonTest(
    common_test_case(GPT1OriginsConfig, (GPT1OriginsDoubleHeadsModel,), MULTIPLE_CHOICE, task_type="multiple_choice"),
    unittest.TestCase,
):
    pass
