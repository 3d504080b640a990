"""Hostile inputs to the models themselves, for both families: batches whose loss has nothing to average, keyword
arguments a forward does not use, configs too big for the machine, and checkpoints with extra or non-finite weights.
Each must give a finite result or a clear error naming the value, before any work is spent. docs/RELIABILITY.md
lists the same cases (checked at the end).
"""

from collections.abc import Callable

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsDoubleHeadsModel, GPT1OriginsLMHeadModel, GPT1OriginsModel
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel, GPT2OriginsModel
from modeling_gpt2.input_checks import FORWARD_KWARGS

SIZES = {"vocab_size": 100, "n_positions": 16, "n_embd": 32, "n_head": 4, "n_layer": 2}
NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
START, DELIM, EXTRACT, PAD = 96, 97, 98, 99  # GPT-1's task tokens in the tiny vocabulary
TASK_TOKENS = {"start_token_id": START, "delimiter_token_id": DELIM, "extract_token_id": EXTRACT, "pad_token_id": PAD}
FAMILIES = {
    "gpt2": (GPT2OriginsConfig, GPT2OriginsModel, GPT2OriginsLMHeadModel),
    "gpt1": (GPT1OriginsConfig, GPT1OriginsModel, GPT1OriginsLMHeadModel),
}
TASK_SHAPES = {"classification": (2, 6), "entailment": (2, 6), "similarity": (2, 2, 6), "multiple_choice": (2, 3, 6)}
IGNORED = -100
CASES: set[str] = set()  # every case id a test below tries; each must have its row in docs/RELIABILITY.md


def case(case_id: str) -> str:
    CASES.add(case_id)
    return case_id


def lm(family: str, **overrides) -> torch.nn.Module:
    config_class, _, model_class = FAMILIES[family]
    torch.manual_seed(0)
    return model_class(config_class.from_preset("tiny", **SIZES, **NO_DROPOUT, **overrides))


def task_model(task_type: str, **overrides) -> GPT1OriginsDoubleHeadsModel:
    num_labels = 1 if task_type in ("similarity", "multiple_choice") else 3
    config = GPT1OriginsConfig.from_preset(
        "tiny", **SIZES, **NO_DROPOUT, **TASK_TOKENS, task_type=task_type, num_labels=num_labels, **overrides
    )
    torch.manual_seed(0)
    return GPT1OriginsDoubleHeadsModel(config)


def task_batch(task_type: str) -> torch.Tensor:
    """Ids of the family's shape, each sequence `_start_ 1 ... 1 _classify_`."""
    batch = torch.ones(TASK_SHAPES[task_type], dtype=torch.long)
    batch[..., 0], batch[..., -1] = START, EXTRACT
    return batch


def ids(batch_size=2, length=5) -> torch.Tensor:
    return torch.ones(batch_size, length, dtype=torch.long)


# ---------------------------------------------------------------------------------------------------------- numerics


def train_step(model: torch.nn.Module, call: Callable[[torch.nn.Module], object]) -> object:
    """`call(model)` in training mode, its loss's backward and one torch AdamW step; returns the output. Every
    gradient must be finite and the step must leave every parameter finite."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    output = call(model)
    output.loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is None or torch.isfinite(parameter.grad).all(), f"non-finite gradient of {name}"
    optimizer.step()
    for name, parameter in model.named_parameters():
        assert torch.isfinite(parameter).all(), f"{name} is not finite after one AdamW step"
    return output


def gradients_are_zero(model: torch.nn.Module) -> bool:
    return all(p.grad is None or not p.grad.any() for p in model.parameters())


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    "case_id, chunk_size", [(case("loss-all-ignored"), 4), (case("loss-all-ignored-plain"), None)]
)
def test_lm_loss_of_a_fully_ignored_batch_is_zero(family, case_id, chunk_size):
    """Every label -100: loss 0 and zero gradients on the chunked path (the default in training) and the plain one,
    where a mean over no target would be NaN, and NaN gradients would make every parameter NaN in one step."""
    model = lm(family, loss_chunk_size=chunk_size)
    output = train_step(model, lambda m: m(ids(), labels=torch.full((2, 5), IGNORED)))
    assert output.loss.item() == 0.0
    assert gradients_are_zero(model)


def test_fully_ignored_batch_has_transformers_gradients():
    """transformers' GPT2LMHeadModel gives the same zero gradients (its loss is NaN: a mean over no target)."""
    config = GPT2Config(**SIZES, bos_token_id=None, eos_token_id=None)
    reference = GPT2LMHeadModel(config).train()
    reference(ids(), labels=torch.full((2, 5), IGNORED)).loss.backward()
    assert gradients_are_zero(reference)


@pytest.mark.parametrize("family", FAMILIES)
def test_lm_loss_of_an_ignored_accumulation_window_is_zero(family):
    """Trainer's `num_items_in_batch=0` when the whole accumulated batch has no target: loss 0, zero gradients."""
    CASES.add("num-items-zero-no-targets")
    for chunk_size in (4, None):
        model = lm(family, loss_chunk_size=chunk_size)
        call = lambda m: m(ids(), labels=torch.full((2, 5), IGNORED), num_items_in_batch=torch.tensor(0))  # noqa: E731
        assert train_step(model, call).loss.item() == 0.0
        assert gradients_are_zero(model)


@pytest.mark.parametrize("task_type", ["classification", "entailment", "multiple_choice"])
def test_task_loss_of_a_fully_ignored_batch_is_zero(task_type):
    """GPT-1's double-heads model, every example's label -100: task loss, LM loss (weighted by the labelled examples)
    and their sum are 0, the gradients zero, on both LM-loss paths."""
    CASES.add(f"loss-all-ignored-task-{task_type.replace('_', '-')}")
    for chunk_size in (4, None):
        model = task_model(task_type, loss_chunk_size=chunk_size)
        output = train_step(model, lambda m: m(task_batch(task_type), labels=torch.full((2,), IGNORED)))
        assert (output.loss.item(), output.task_loss.item(), output.lm_loss.item()) == (0.0, 0.0, 0.0)
        assert gradients_are_zero(model)


def test_similarity_loss_without_lm_targets_is_finite():
    """Similarity scores cannot be ignored (regression); its LM loss can have no target: every sequence one real token
    (the extract token) under the attention mask. The LM loss is 0, the task loss and the step finite."""
    CASES.add("loss-no-lm-targets-task-similarity")
    mask = torch.zeros(TASK_SHAPES["similarity"], dtype=torch.long)
    mask[..., -1] = 1
    for chunk_size in (4, None):
        model = task_model("similarity", loss_chunk_size=chunk_size)
        call = lambda m: m(task_batch("similarity"), attention_mask=mask, labels=torch.tensor([0.5, 2.0]))  # noqa: E731
        output = train_step(model, call)
        assert output.lm_loss.item() == 0.0 and torch.isfinite(output.loss)


NUM_ITEMS_CASES = [
    ("num-items-zero", 0, r"must be a positive number, got 0 while this batch alone has 8 targets"),
    ("num-items-zero-tensor", torch.tensor(0), r"must be a positive number, got 0 while this batch alone has 8"),
    ("num-items-negative", -3, r"must be a positive number, got -3 while this batch alone has 8 targets"),
    ("num-items-nan", torch.tensor(float("nan")), r"must be a positive number, got nan"),
]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("chunk_size", [4, None])
@pytest.mark.parametrize("case_id, value, match", NUM_ITEMS_CASES, ids=[c[0] for c in NUM_ITEMS_CASES])
def test_num_items_in_batch_must_be_positive(family, chunk_size, case_id, value, match):
    """0 with targets would be an infinite loss, a negative count a negative one."""
    CASES.add(case_id)
    model = lm(family, loss_chunk_size=chunk_size).train()
    with pytest.raises(ValueError, match=r"`num_items_in_batch` \(the number of targets .*\) " + match):
        model(ids(), labels=ids(), num_items_in_batch=value)


def test_task_num_items_in_batch_must_be_positive():
    CASES.add("task-num-items-zero")
    model = task_model("classification").train()
    with pytest.raises(ValueError, match=r"must be a positive number, got 0 while this batch alone has 2 targets"):
        model(task_batch("classification"), labels=torch.tensor([0, 1]), num_items_in_batch=0)


# ------------------------------------------------------------------------------------------------- keyword arguments


KWARG_CASES = [
    (
        "kwarg-misspelt",
        lambda family: lm(family)(ids(), attention_masks=ids()),
        r"LMHeadModel.forward\(\) got unexpected keyword argument 'attention_masks' \(did you mean 'attention_mask'\?"
        r"\)\. It takes input_ids, cache, attention_mask, .*labels, use_cache, logits_to_keep, and the keyword "
        r"arguments of transformers: .*num_items_in_batch",
    ),
    (
        "kwarg-unknown-base-model",
        lambda family: FAMILIES[family][1](FAMILIES[family][0].from_preset("tiny", **SIZES))(ids(), head_mask=None),
        r"Model.forward\(\) got unexpected keyword argument 'head_mask'\. It takes input_ids, cache, attention_mask",
    ),
]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("case_id, call, match", KWARG_CASES, ids=[c[0] for c in KWARG_CASES])
def test_unused_keyword_argument_is_refused(family, case_id, call, match):
    CASES.add(case_id)
    with pytest.raises(ValueError, match=match):
        call(family)


def test_task_model_refuses_transformers_double_heads_names():
    """transformers' OpenAIGPTDoubleHeadsModel calls the task labels `mc_labels`: here they are `labels`."""
    CASES.add("kwarg-unknown-task-model")
    model = task_model("multiple_choice")
    with pytest.raises(ValueError, match=r"DoubleHeadsModel.forward\(\) got unexpected keyword argument 'mc_labels'"):
        model(task_batch("multiple_choice"), mc_labels=torch.tensor([0, 1]))


def test_transformers_keyword_arguments_still_pass():
    """What transformers' attention backends, Trainer, generation and older callers pass is accepted."""
    assert {"cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k", "num_items_in_batch"} <= FORWARD_KWARGS
    for family in FAMILIES:
        model = lm(family).eval()
        output = model(
            ids(),
            labels=ids(),
            return_dict=False,
            output_attentions=True,
            output_hidden_states=True,
            num_items_in_batch=torch.tensor(8),
            shift_labels=ids(),
            ignore_index=IGNORED,
            past_key_values=None,
            cache_position=torch.arange(5),
            logits_to_keep=0,
        )
        assert isinstance(output, tuple) and torch.isfinite(output[0])
        model.train()(ids(), labels=ids(), num_items_in_batch=8).loss.backward()  # Trainer's call
        model.eval()
        for options in ({}, {"do_sample": True}, {"num_beams": 2}, {"cache_implementation": "static"}):
            out = model.generate(ids(2, 3), attention_mask=ids(2, 3), max_new_tokens=2, pad_token_id=0, **options)
            assert out.shape == (2, 5)
    task = task_model("multiple_choice").train()
    task(task_batch("multiple_choice"), labels=torch.tensor([0, 1]), num_items_in_batch=2, use_cache=False)


# ------------------------------------------------------------------------------------------------------------- table


def test_every_model_case_is_in_the_reliability_table(documented_cases):
    assert not CASES - documented_cases, f"docs/RELIABILITY.md has no row for {sorted(CASES - documented_cases)}"
