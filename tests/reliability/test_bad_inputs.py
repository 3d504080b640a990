"""Bad tensors and bad configs, one table for both models: each input must fail with a clear exception type and a
message that names the value and what was expected. docs/RELIABILITY.md lists the same cases (checked below).

Each case runs on GPT-2 and GPT-1 unless its `families` say otherwise; the GPT-1 task families run on the
double-heads model.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import DynamicCache

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsDoubleHeadsModel, GPT1OriginsLMHeadModel
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel
from modeling_gpt2.compat import cache_of as output_cache

VOCAB, POSITIONS, WIDTH, HEADS = 100, 16, 32, 4
START, DELIM, EXTRACT, PAD = 96, 97, 98, 99  # GPT-1's task tokens in the tiny vocabulary
SIZES = {"vocab_size": VOCAB, "n_positions": POSITIONS, "n_embd": WIDTH, "n_head": HEADS, "n_layer": 1}
NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
MODEL_CLASSES = {
    "gpt2": (GPT2OriginsConfig, GPT2OriginsLMHeadModel),
    "gpt1": (GPT1OriginsConfig, GPT1OriginsLMHeadModel),
}
TASK_TOKENS = {"start_token_id": START, "delimiter_token_id": DELIM, "extract_token_id": EXTRACT, "pad_token_id": PAD}


@dataclass
class Case:
    id: str
    act: Callable[[Any], Any]  # called with the family's `Models`; must raise
    error: type[BaseException]
    match: str  # regex the message must contain
    families: tuple[str, ...] = ("gpt2", "gpt1")


@dataclass
class Models:
    """What a case needs of one family: its classes, one tiny LM, and (GPT-1) tiny double-heads models."""

    family: str
    config_class: type
    model_class: type
    lm: torch.nn.Module
    task_models: dict = field(default_factory=dict)

    def config(self, **overrides):
        return self.config_class.from_preset("tiny", **{**SIZES, **overrides})

    def task_model(self, task_type: str) -> GPT1OriginsDoubleHeadsModel:
        if task_type not in self.task_models:
            num_labels = {"similarity": 1, "multiple_choice": 1}.get(task_type, 3)
            config = self.config(**NO_DROPOUT, **TASK_TOKENS, task_type=task_type, num_labels=num_labels)
            torch.manual_seed(0)
            self.task_models[task_type] = GPT1OriginsDoubleHeadsModel(config).eval()
        return self.task_models[task_type]


def ids(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.long)


def ones(*shape, dtype=torch.long) -> torch.Tensor:
    return torch.ones(shape, dtype=dtype)


def cache_of(m: Models, batch_size: int, length: int) -> DynamicCache:
    with torch.no_grad():
        return output_cache(m.lm(ones(batch_size, length), use_cache=True))


def filled_cache(length: int) -> DynamicCache:
    """A cache of `length` positions, as a model with a longer context would leave it."""
    cache = DynamicCache()
    cache.update(torch.zeros(1, HEADS, length, WIDTH // HEADS), torch.zeros(1, HEADS, length, WIDTH // HEADS), 0)
    return cache


def task_batch(shape: tuple[int, ...]) -> torch.Tensor:
    """Ids of shape `shape`, each sequence `_start_ 1 ... 1 _classify_`."""
    batch = torch.ones(shape, dtype=torch.long)
    if shape[-1]:
        batch[..., 0], batch[..., -1] = START, EXTRACT
    return batch


def embeds_with(value: float) -> torch.Tensor:
    embeds = torch.zeros(1, 3, WIDTH)
    embeds[0, 1, 3] = value
    return embeds


# ----------------------------------------------------------------------------------------------------------- tensors


def in_training(m, call):
    """`call()` with the LM model in training mode (where labels take the chunked loss) and gradients on, then back
    to eval."""
    m.lm.train()
    try:
        with torch.enable_grad():
            return call()
    finally:
        m.lm.eval()
        m.lm.zero_grad(set_to_none=True)


def backward_twice(loss):
    loss.backward(retain_graph=True)
    loss.backward()


TENSOR_CASES = [
    Case(
        "ids-negative",
        lambda m: m.lm(ids([[1, -1, 2]])),
        ValueError,
        r"Token id -1 is outside the vocabulary \[0, 100\)",
    ),
    Case(
        "ids-too-large",
        lambda m: m.lm(ids([[1, 100]])),
        ValueError,
        r"Token id 100 is outside the vocabulary \[0, 100\)",
    ),
    Case(
        "ids-float",
        lambda m: m.lm(torch.tensor([[1.0, 2.0]])),
        ValueError,
        r"`input_ids` must be an integer tensor, got dtype torch.float32",
    ),
    Case(
        "ids-uint8",
        lambda m: m.lm(ones(1, 2, dtype=torch.uint8)),
        ValueError,
        r"got dtype torch.uint8 \(expected torch.int64 or torch.int32\)",
    ),
    Case(
        "ids-bool",
        lambda m: m.lm(ones(1, 2, dtype=torch.bool)),
        ValueError,
        r"must be an integer tensor, got dtype torch.bool",
    ),
    Case(
        "ids-1d",
        lambda m: m.lm(ids([1, 2, 3])),
        ValueError,
        r"`input_ids` must have shape \(batch_size, sequence_length\), got shape \(3,\)",
    ),
    Case(
        "batch-empty", lambda m: m.lm(ones(0, 4)), ValueError, r"The batch is empty: batch_size=0, sequence_length=4"
    ),
    Case(
        "sequence-zero-length",
        lambda m: m.lm(ones(2, 0)),
        ValueError,
        r"The batch is empty: batch_size=2, sequence_length=0",
    ),
    Case(
        "sequence-too-long",
        lambda m: m.lm(ones(1, 17)),
        ValueError,
        r"0 cached \+ 17 new = 17 positions, but the model has n_positions=16",
    ),
    Case(
        "generate-past-context",
        lambda m: m.lm.generate(ones(1, 12), max_new_tokens=8, do_sample=False, pad_token_id=0),
        ValueError,
        # generate passes position_ids: the position limit, with the cached and new counts.
        r"`position_ids` must lie in \[0, n_positions=16\), got values in \[16, 16\] \(16 cached \+ 1 new",
    ),
    Case(
        "cache-past-context",
        lambda m: m.lm(ones(1, 5), cache=cache_of(m, 1, 12)),
        ValueError,
        r"12 cached \+ 5 new = 17 positions, but the model has n_positions=16",
    ),
    Case(
        "cache-longer-than-n_positions",
        lambda m: m.lm(ones(1, 1), cache=filled_cache(20)),
        ValueError,
        r"20 cached \+ 1 new = 21 positions, but the model has n_positions=16",
    ),
    Case(
        "cache-legacy-tuple",
        lambda m: m.lm(ones(1, 2), cache=((torch.zeros(1, 4, 3, 8),) * 2,)),
        ValueError,
        r"`cache` must be a transformers Cache \(e.g. DynamicCache\(\)\), got tuple",
    ),
    Case(
        "cache-batch-mismatch",
        lambda m: m.lm(ones(3, 1), cache=cache_of(m, 2, 4)),
        ValueError,
        r"The cache holds 2 sequences, but the batch has 3",
    ),
    Case(
        "mask-wrong-shape",
        lambda m: m.lm(ones(2, 5), attention_mask=ones(2, 4)),
        ValueError,
        r"`attention_mask` has shape \(2, 4\), expected \(batch_size, cached \+ new positions\) = \(2, 5\)",
    ),
    Case(
        "mask-wrong-shape-with-cache",
        lambda m: m.lm(ones(2, 2), cache=cache_of(m, 2, 3), attention_mask=ones(2, 2)),
        ValueError,
        r"`attention_mask` has shape \(2, 2\), expected .* = \(2, 5\)",
    ),
    Case(
        "mask-3d",
        lambda m: m.lm(ones(2, 5), attention_mask=ones(2, 5, 5)),
        ValueError,
        r"`attention_mask` must be 2D \(batch_size, positions\) or a prepared 4D mask, got shape \(2, 5, 5\)",
    ),
    Case(
        "mask-4d-wrong-shape",
        lambda m: m.lm(ones(2, 5), attention_mask=torch.zeros(2, 1, 3, 3)),
        ValueError,
        r"A 4D `attention_mask` must have shape \(batch_size=2 or 1, n_head=4 or 1, 5, at least 5\), got \(2, 1, 3,",
    ),
    Case(
        "mask-complex-dtype",
        lambda m: m.lm(ones(1, 3), attention_mask=ones(1, 3, dtype=torch.complex64)),
        ValueError,
        r"`attention_mask` must hold 0 and 1 \(bool, int or float\), got dtype torch.complex64",
    ),
    Case(
        "mask-not-binary-float",
        lambda m: m.lm(ones(1, 3), attention_mask=torch.tensor([[1.0, 0.5, 1.0]])),
        ValueError,
        r"`attention_mask` must hold 1 for tokens and 0 for padding, got the values \[0.5\]",
    ),
    Case(
        "mask-not-binary-int",
        lambda m: m.lm(ones(1, 3), attention_mask=ids([[1, 2, 1]])),
        ValueError,
        r"must hold 1 for tokens and 0 for padding, got the values \[2\]",
    ),
    Case(
        "embeds-nan",
        lambda m: m.lm(inputs_embeds=embeds_with(float("nan"))),
        ValueError,
        r"`inputs_embeds` contains NaN or inf \(first at index \(0, 1, 3\)\)",
    ),
    Case(
        "embeds-inf",
        lambda m: m.lm(inputs_embeds=embeds_with(float("-inf"))),
        ValueError,
        r"`inputs_embeds` contains NaN or inf \(first at index \(0, 1, 3\)\)",
    ),
    Case(
        "embeds-int-dtype",
        lambda m: m.lm(inputs_embeds=ones(1, 2, WIDTH)),
        ValueError,
        r"`inputs_embeds` must be a floating-point tensor, got dtype torch.int64",
    ),
    Case(
        "embeds-wrong-width",
        lambda m: m.lm(inputs_embeds=torch.zeros(1, 2, 7)),
        ValueError,
        r"shape \(batch_size, sequence_length, n_embd=32\), got shape \(1, 2, 7\)",
    ),
    Case(
        "ids-and-embeds",
        lambda m: m.lm(ones(1, 2), inputs_embeds=torch.zeros(1, 2, WIDTH)),
        ValueError,
        r"Pass exactly one of `input_ids` and `inputs_embeds`",
    ),
    Case("no-input", lambda m: m.lm(), ValueError, r"Pass exactly one of `input_ids` and `inputs_embeds`"),
    Case(
        "position-ids-out-of-range",
        lambda m: m.lm(ones(1, 3), position_ids=ids([[0, 1, 16]])),
        ValueError,
        r"`position_ids` must lie in \[0, n_positions=16\), got values in \[0, 16\]",
    ),
    Case(
        "position-ids-float",
        lambda m: m.lm(ones(1, 3), position_ids=torch.zeros(1, 3)),
        ValueError,
        r"`position_ids` must be an integer tensor, got dtype torch.float32",
    ),
    Case(
        "position-ids-wrong-batch",
        lambda m: m.lm(ones(2, 5), position_ids=ones(3, 5)),
        ValueError,
        r"`position_ids` must have shape \(2 or 1, 5\) or \(5,\), got shape \(3, 5\)",
    ),
    Case(
        "position-ids-wrong-length",
        lambda m: m.lm(ones(2, 5), position_ids=ones(2, 4)),
        ValueError,
        r"`position_ids` has 4 positions, the input has 5",
    ),
    Case(
        "labels-wrong-shape",
        lambda m: m.lm(ones(1, 5), labels=ones(1, 4)),
        ValueError,
        r"`labels` has shape \(1, 4\), expected the input's \(batch_size, sequence_length\) = \(1, 5\)",
    ),
    Case(
        "labels-float",
        lambda m: m.lm(ones(1, 3), labels=torch.ones(1, 3)),
        ValueError,
        r"`labels` must be integer token ids, got dtype torch.float32",
    ),
    Case(
        "labels-out-of-vocab",
        lambda m: m.lm(ones(1, 3), labels=ids([[1, 100, -100]])),
        ValueError,
        r"Label 100 is outside the vocabulary \[0, 100\); -100 marks an ignored position",
    ),
    Case(
        "labels-negative",
        lambda m: m.lm(ones(1, 3), labels=ids([[1, -5, -100]])),
        ValueError,
        r"Label -5 is outside the vocabulary \[0, 100\)",
    ),
    Case(
        "labels-out-of-vocab-training",
        lambda m: in_training(m, lambda: m.lm(ones(1, 3), labels=ids([[1, 100, -100]]))),
        ValueError,
        r"Label 100 is outside the vocabulary \[0, 100\); -100 marks an ignored position",
    ),
    Case(
        "labels-wrong-shape-training",
        lambda m: in_training(m, lambda: m.lm(ones(1, 5), labels=ones(1, 4))),
        ValueError,
        r"`labels` has shape \(1, 4\), expected the input's \(batch_size, sequence_length\) = \(1, 5\)",
    ),
    Case(
        "loss-backward-twice",
        lambda m: in_training(m, lambda: backward_twice(m.lm(ones(1, 4), labels=ones(1, 4)).loss)),
        RuntimeError,
        r"backward through it twice \(retain_graph=True\) is not supported. Set `config.loss_chunk_size = None`",
    ),
]


def task(task_type, shape, **extra):
    """A GPT-1 double-heads call of `task_type` on a batch of `shape`, with `extra` inputs."""
    return lambda m: m.task_model(task_type)(task_batch(shape), **extra)


def without_extract(task_type, shape):
    return lambda m: m.task_model(task_type)(task_batch(shape).masked_fill(task_batch(shape) == EXTRACT, 1))


def two_extracts(task_type, shape):
    batch = task_batch(shape)
    batch[(1,) + (0,) * (len(shape) - 2) + (1,)] = EXTRACT  # a second one in example 1's first sequence
    return lambda m: m.task_model(task_type)(batch)


GPT1 = ("gpt1",)
TASK_CASES = [
    Case(
        "task-classification-two-sequences",
        task("classification", (2, 2, 12)),
        ValueError,
        r"task_type='classification' reads one sequence per example .* got 2 sequences .*\(shape \(2, 2, 12\)\)",
        GPT1,
    ),
    Case(
        "task-entailment-two-sequences",
        task("entailment", (2, 2, 12)),
        ValueError,
        r"task_type='entailment' reads one sequence per example .* got 2 sequences",
        GPT1,
    ),
    Case(
        "task-similarity-one-order",
        task("similarity", (2, 12)),
        ValueError,
        r"task_type='similarity' needs both orderings of each pair, shape \(batch_size, 2, .* got shape \(2, 12\)",
        GPT1,
    ),
    Case(
        "task-similarity-three-orders",
        task("similarity", (2, 3, 12)),
        ValueError,
        r"task_type='similarity' needs both orderings .* got shape \(2, 3, 12\)",
        GPT1,
    ),
    Case(
        "task-multiple-choice-flat",
        task("multiple_choice", (2, 12)),
        ValueError,
        r"task_type='multiple_choice' needs one sequence per answer, shape \(batch_size, num_choices, .* \(2, 12\)",
        GPT1,
    ),
    Case(
        "task-zero-sequences",
        task("multiple_choice", (2, 0, 12)),
        ValueError,
        r"The batch is empty: batch_size=2, num_sequences=0, sequence_length=12",
        GPT1,
    ),
    Case(
        "task-zero-length",
        task("entailment", (2, 0)),
        ValueError,
        r"The batch is empty: batch_size=2, num_sequences=1, sequence_length=0",
        GPT1,
    ),
    Case(
        "task-ids-4d",
        task("multiple_choice", (2, 3, 12, 1)),
        ValueError,
        r"`input_ids` must have shape \(batch_size, sequence_length\) or \(batch_size, num_sequences, .*\(2, 3, 12, 1",
        GPT1,
    ),
    Case(
        "task-too-long",
        task("classification", (2, 17)),
        ValueError,
        r"0 cached \+ 17 new = 17 positions, but the model has n_positions=16",
        GPT1,
    ),
    Case(
        "task-mask-wrong-shape",
        task("multiple_choice", (2, 3, 12), attention_mask=ones(2, 3, 11)),
        ValueError,
        r"`attention_mask` has shape \(2, 3, 11\), expected the shape of `input_ids` without the .* \(2, 3, 12\)",
        GPT1,
    ),
    Case(
        "task-classification-labels-per-batch",
        task("classification", (2, 12), labels=ids([0, 1, 2])),
        ValueError,
        r"`labels` has shape \(3,\), expected one class per example: \(2,\)",
        GPT1,
    ),
    Case(
        "task-entailment-labels-per-sequence",
        task("entailment", (2, 12), labels=ids([[0], [1]])),
        ValueError,
        r"`labels` has shape \(2, 1\), expected one class per example: \(2,\)",
        GPT1,
    ),
    Case(
        "task-similarity-labels-per-batch",
        task("similarity", (2, 2, 12), labels=torch.tensor([0.5])),
        ValueError,
        r"`labels` has shape \(1,\), expected \(2,\) or \(2, 1\) for regression",
        GPT1,
    ),
    Case(
        "task-multiple-choice-labels-per-choice",
        task("multiple_choice", (2, 3, 12), labels=ids([[0, 1, 0], [1, 0, 0]])),
        ValueError,
        r"`labels` has shape \(2, 3\), expected one class per example: \(2,\)",
        GPT1,
    ),
    Case(
        "task-classification-label-out-of-range",
        task("classification", (2, 12), labels=ids([0, 5])),
        ValueError,
        r"Label 5 is outside \[0, 3\) \(num_labels=3\); -100 marks an ignored example",
        GPT1,
    ),
    Case(
        "task-entailment-label-negative",
        task("entailment", (2, 12), labels=ids([0, -3])),
        ValueError,
        r"Label -3 is outside \[0, 3\) \(num_labels=3\)",
        GPT1,
    ),
    Case(
        "task-multiple-choice-label-out-of-range",
        task("multiple_choice", (2, 3, 12), labels=ids([0, 3])),
        ValueError,
        r"Label 3 is outside \[0, 3\) \(choices=3\)",
        GPT1,
    ),
    Case(
        "task-classification-float-labels",
        task("classification", (2, 12), labels=torch.tensor([0.0, 1.0])),
        ValueError,
        r"expected \(2, 3\) for multi-label classification \(float labels mean multi-label; give int64 class ids",
        GPT1,
    ),
    Case(
        "task-multiple-choice-float-labels",
        task("multiple_choice", (2, 3, 12), labels=torch.tensor([0.0, 1.0])),
        ValueError,
        r"`labels` must be integer class ids for multiple_choice, got dtype torch.float32",
        GPT1,
    ),
    Case(
        "task-similarity-nan-score",
        task("similarity", (2, 2, 12), labels=torch.tensor([0.5, float("nan")])),
        ValueError,
        r"`labels` for regression must be finite numbers, got nan",
        GPT1,
    ),
    Case(
        "task-mc-token-ids-shape",
        task("multiple_choice", (2, 3, 12), mc_token_ids=ids([11, 11])),
        ValueError,
        r"`mc_token_ids` has shape \(2,\), expected one extract position per sequence: \(2, 3\)",
        GPT1,
    ),
    Case(
        "task-mc-token-ids-out-of-range",
        task("multiple_choice", (2, 3, 12), mc_token_ids=torch.full((2, 3), 12)),
        ValueError,
        r"`mc_token_ids` must lie in \[0, sequence_length=12\), got values in \[12, 12\]",
        GPT1,
    ),
    Case(
        "task-mc-token-ids-float",
        task("classification", (2, 12), mc_token_ids=torch.tensor([11.0, 11.0])),
        ValueError,
        r"`mc_token_ids` must be an integer tensor, got dtype torch.float32",
        GPT1,
    ),
    Case(
        "task-extract-token-missing",
        without_extract("classification", (2, 12)),
        ValueError,
        r"Each sequence needs exactly one extract token \(extract_token_id=98\); example 0, sequence 0 has 0",
        GPT1,
    ),
    Case(
        "task-extract-token-twice",
        two_extracts("similarity", (2, 2, 12)),
        ValueError,
        r"extract_token_id=98\); example 1, sequence 0 has 2",
        GPT1,
    ),
]


# ----------------------------------------------------------------------------------------------------------- configs


def config(**overrides):
    return lambda m: m.config(**overrides)


def preset(name):
    return lambda m: m.config_class.from_preset(name)


STRICT = StrictDataclassFieldValidationError  # huggingface_hub's typed dataclass check, run before ours
CONFIG_CASES = [
    Case("config-type-str", config(n_layer="2"), STRICT, r"Field 'n_layer' expected int, got str \(value: '2'\)"),
    Case("config-type-float", config(n_embd=32.0), STRICT, r"Field 'n_embd' expected int, got float \(value: 32.0\)"),
    Case(
        "config-type-none", config(n_head=None), STRICT, r"Field 'n_head' expected int, got NoneType \(value: None\)"
    ),
    Case(
        "config-type-bool",
        config(vocab_size=True),
        STRICT,
        r"Field 'vocab_size' expected int, got bool \(value: True\)",
    ),
    Case(
        "config-type-dropout-str",
        config(resid_pdrop="0.1"),
        STRICT,
        r"Field 'resid_pdrop' with value '0.1' doesn't match any type",
    ),
    Case("config-negative-n_layer", config(n_layer=-1), ValueError, r"`n_layer` must be a positive integer, got -1"),
    Case("config-zero-vocab", config(vocab_size=0), ValueError, r"`vocab_size` must be a positive integer, got 0"),
    Case(
        "config-negative-n_positions",
        config(n_positions=-16),
        ValueError,
        r"`n_positions` must be a positive integer, got -16",
    ),
    Case("config-zero-n_head", config(n_head=0), ValueError, r"`n_head` must be a positive integer, got 0"),
    Case(
        "config-n_embd-not-divisible",
        config(n_embd=65),
        ValueError,
        r"`n_embd` \(65\) must be divisible by `n_head` \(4\)",
    ),
    Case(
        "config-dropout-out-of-range",
        config(attn_pdrop=1.5),
        ValueError,
        r"`attn_pdrop` must be a probability in \[0, 1\], got 1.5",
    ),
    Case(
        "config-negative-epsilon",
        config(layer_norm_epsilon=-1e-5),
        ValueError,
        r"`layer_norm_epsilon` must be positive, got -1e-05",
    ),
    Case(
        "config-negative-init-std",
        config(initializer_range=-0.02),
        ValueError,
        r"`initializer_range` \(the std of the init\) must be >= 0, got -0.02",
    ),
    Case(
        "config-unknown-attention",
        lambda m: m.model_class._from_config(m.config(), attn_implementation="flash_attn_9"),
        ValueError,
        r'`attn_implementation="flash_attn_9"` is not supported',
    ),
    Case(
        "config-unknown-attention-switch",
        lambda m: m.lm.set_attn_implementation("paged_magic"),
        ValueError,
        r'`attn_implementation="paged_magic"` is not supported',
    ),
    Case(
        "config-unknown-activation",
        config(activation_function="swiglu"),
        ValueError,
        r"Unknown `activation_function` 'swiglu'; GPT-2 uses 'gelu_new', transformers knows: .*gelu_new",
        ("gpt2",),
    ),
    Case(
        "config-unknown-activation",
        config(afn="swiglu"),
        ValueError,
        r"Unknown `afn` 'swiglu'; known: gelu, gelu_new, relu, silu, swish",
        GPT1,
    ),
    Case(
        "config-unknown-weight-layout",
        config(weight_layout="transposed"),
        ValueError,
        r"`weight_layout` must be one of 'linear', 'conv1d' \(how the projection weights are stored\), got 'transp",
    ),
    Case(
        "config-zero-loss-chunk-size",
        config(loss_chunk_size=0),
        ValueError,
        r"`loss_chunk_size` must be a positive number of tokens or None \(no chunking\), got 0",
    ),
    Case(
        "config-type-loss-chunk-size",
        config(loss_chunk_size=512.0),
        STRICT,
        r"Field 'loss_chunk_size' with value 512.0 doesn't match any type",
    ),
    Case(
        "config-negative-n_inner",
        config(n_inner=-1),
        ValueError,
        r"`n_inner` must be a positive integer or None, got -1",
        ("gpt2",),
    ),
    Case(
        "config-gpt2-field-on-gpt1",
        config(n_inner=128),
        ValueError,
        r"`n_inner`=128 is not a GPT-1 setting: GPT-1 has one architecture, `n_inner`=None",
        GPT1,
    ),
    Case(
        "config-unknown-preset",
        preset("gpt5"),
        ValueError,
        r"Unknown GPT-2 preset 'gpt5'; known presets: tiny, 124M",
        ("gpt2",),
    ),
    Case(
        "config-unknown-preset",
        preset("gpt5"),
        ValueError,
        r"Unknown GPT-1 preset 'gpt5'; known presets: tiny, gpt1",
        GPT1,
    ),
    Case(
        "config-unknown-task-type",
        config(task_type="translation"),
        ValueError,
        r"Unknown `task_type` 'translation'; known: classification, entailment, similarity, multiple_choice",
        GPT1,
    ),
    Case(
        "config-num-labels-zero",
        config(task_type="classification", num_labels=0),
        ValueError,
        r"`num_labels` must be a positive integer, got 0",
        GPT1,
    ),
    Case(
        "config-num-labels-negative",
        config(task_type="entailment", num_labels=-1),
        ValueError,
        r"`num_labels` must be a positive integer, got -1",
        GPT1,
    ),
    Case(
        "config-negative-lm-coef",
        config(lm_coef=-0.5),
        ValueError,
        r"`lm_coef` \(lambda, the weight of the auxiliary LM loss\) must be >= 0, got -0.5",
        GPT1,
    ),
    Case(
        "config-task-token-outside-vocab",
        config(extract_token_id=100),
        ValueError,
        r"`extract_token_id` must be None or an id in \[0, 100\), got 100",
        GPT1,
    ),
    Case(
        "config-unsupported-summary",
        config(summary_type="mean"),
        ValueError,
        r"`summary_type`='mean' is not supported",
        GPT1,
    ),
]

ALL_CASES = TENSOR_CASES + TASK_CASES + CONFIG_CASES


@pytest.fixture(scope="module")
def family_models() -> dict[str, Models]:
    built = {}
    for family, (config_class, model_class) in MODEL_CLASSES.items():
        torch.manual_seed(0)
        lm = model_class(config_class.from_preset("tiny", **SIZES, **NO_DROPOUT)).eval()
        built[family] = Models(family, config_class, model_class, lm)
    return built


@pytest.mark.parametrize(
    "family, case",
    [(family, case) for case in ALL_CASES for family in case.families],
    ids=[f"{family}-{case.id}" for case in ALL_CASES for family in case.families],
)
def test_bad_input_fails_clearly(family_models, family, case):
    with torch.no_grad(), pytest.raises(case.error, match=case.match):
        case.act(family_models[family])


@pytest.mark.parametrize("family", list(MODEL_CLASSES))
def test_good_inputs_next_to_the_bad_ones_pass(family_models, family):
    """The boundaries are where the cases say: the largest id, exactly n_positions, a bool or float 0/1 mask, a cache
    filled to the last position, -100 labels."""
    models = family_models[family]
    with torch.no_grad():
        models.lm(ids([[0, VOCAB - 1]]), attention_mask=torch.tensor([[True, True]]))
        models.lm(ones(2, POSITIONS), attention_mask=torch.ones(2, POSITIONS), labels=torch.full((2, POSITIONS), -100))
        models.lm(ones(1, 4), cache=cache_of(models, 1, POSITIONS - 4), position_ids=ids([12, 13, 14, 15]))
        models.lm(ones(1, 3).int(), attention_mask=torch.zeros(1, 3))  # int32 ids, a fully padded row
    if models.family == "gpt1":
        for task_type, shape in [
            ("classification", (2, 12)),
            ("similarity", (2, 2, 12)),
            ("multiple_choice", (2, 3, 12)),
        ]:
            labels = torch.tensor([0.5, 1.0]) if task_type == "similarity" else ids([0, -100])
            assert models.task_model(task_type)(task_batch(shape), labels=labels).loss.isfinite()


def test_every_case_is_in_the_reliability_table(documented_cases):
    missing = sorted({case.id for case in ALL_CASES} - documented_cases)
    assert not missing, f"docs/RELIABILITY.md has no row for {missing}"
