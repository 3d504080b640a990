"""Hostile inputs to the models themselves, for both families: batches whose loss has nothing to average, keyword
arguments a forward does not use, configs too big for the machine, and checkpoints with extra or non-finite weights.
Each must give a finite result or a clear error naming the value, before any work is spent. docs/RELIABILITY.md
lists the same cases (checked at the end).
"""

import json
import time
from collections.abc import Callable

import pytest
import torch
from accelerate import init_empty_weights
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsDoubleHeadsModel, GPT1OriginsLMHeadModel, GPT1OriginsModel
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel, GPT2OriginsModel, input_checks
from modeling_gpt2.input_checks import FORWARD_KWARGS, device_memory
from modeling_gpt2.loading import load_device

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
    """transformers' OpenAIGPTDoubleHeadsModel's `mc_labels` are the task labels here; its LM-shaped `labels` are
    refused with what to pass instead, and an unknown keyword is still an error."""
    CASES.add("kwarg-unknown-task-model")
    model = task_model("multiple_choice")
    batch = task_batch("multiple_choice")
    with pytest.raises(ValueError, match=r"is transformers' OpenAIGPTDoubleHeadsModel convention.*pass the task"):
        model(batch, labels=batch, mc_labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"DoubleHeadsModel.forward\(\) got unexpected keyword argument 'mc_label'"):
        model(batch, mc_label=torch.tensor([0, 1]))


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


# ------------------------------------------------------------------------------------------------------------- sizes

BIG_PRESET = {"gpt2": "124M", "gpt1": "gpt1"}
GPT2_124M_WIDTH = {"n_embd": 768, "n_head": 12}
TOO_BIG = [
    ("config-too-big-n_layer", {"n_layer": 100_000}, r"n_layer=100000, n_embd=768, .*\) has [\d,]{15} parameters"),
    (
        "config-too-big-vocab",
        {"vocab_size": 10**12},
        r"n_layer=12, n_embd=768, vocab_size=1000000000000, .*\) has [\d,]{19} parameters",
    ),
]
TOO_BIG_MESSAGE = (
    r"parameters: [\d,.]+ GiB in torch.float32, more than the [\d,.]+ GiB of the RAM of this machine \(cpu\)\. Use a "
    r"smaller config or dtype, or build it on the meta device"
)


def refused_fast(build: Callable[[], object], match: str) -> None:
    """`build()` raises a ValueError matching `match` in well under a second: before any module is built."""
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        build()
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("case_id, overrides, match", TOO_BIG, ids=[c[0] for c in TOO_BIG])
def test_config_too_big_for_the_machine_is_refused_before_building(family, case_id, overrides, match):
    CASES.add(case_id)
    config_class, base_class, model_class = FAMILIES[family]
    config = config_class.from_preset(BIG_PRESET[family], **overrides)
    for model in (model_class, base_class, AutoModelForCausalLM.from_config):
        refused_fast(lambda: model(config), rf"A {family.upper()}Origins\w*Model of this config \({match}")
    refused_fast(lambda: model_class(config), TOO_BIG_MESSAGE)


@pytest.mark.parametrize("family", FAMILIES)
def test_config_too_big_is_refused_by_from_pretrained(family, tmp_path):
    """from_pretrained builds the model on the meta device, then loads the weights: the size is checked against the
    device the weights go to (here the CPU), as fast."""
    CASES.add("config-too-big-from-pretrained")
    lm(family).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, **GPT2_124M_WIDTH, "n_layer": 100_000}))
    model_class = FAMILIES[family][2]
    for load in (model_class.from_pretrained, AutoModelForCausalLM.from_pretrained):
        refused_fast(
            lambda: load(tmp_path), r"of this config \(n_layer=100000, n_embd=768, vocab_size=100, n_positions=16\)"
        )


def test_sizes_are_checked_on_the_device_and_dtype_of_the_weights(monkeypatch):
    """The bound is the device's memory in the dtype the parameters get: with one byte less RAM than the model needs
    in float32 it is refused, and built in bfloat16 (half the bytes); meta-device builds (torch's and accelerate's)
    are not checked."""
    config = GPT2OriginsConfig.from_preset("tiny", vocab_size=32, n_positions=8, n_embd=8, n_head=2, n_layer=1)
    size = config.num_parameters() * 4
    monkeypatch.setattr(input_checks, "device_memory", lambda device: size - 1)
    with pytest.raises(ValueError, match=rf"has {config.num_parameters():,} parameters: .* in torch.float32"):
        GPT2OriginsLMHeadModel(config)
    torch.set_default_dtype(torch.bfloat16)
    try:
        assert GPT2OriginsLMHeadModel(config).transformer.wte.weight.dtype == torch.bfloat16
    finally:
        torch.set_default_dtype(torch.float32)
    with torch.device("meta"):
        GPT2OriginsLMHeadModel(config)
    with init_empty_weights():
        GPT2OriginsLMHeadModel(config)


def test_device_memory_and_load_device(monkeypatch):
    """CUDA's bound is the GPU's whole memory (`torch.cuda.mem_get_info`); `from_pretrained` checks against the one
    device it loads onto, and not at all when accelerate spreads the weights."""
    assert device_memory(torch.device("cpu")) > 2**30
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (5 * 2**30, 80 * 2**30))
    assert device_memory(torch.device("cuda:0")) == 80 * 2**30
    assert load_device(None) == torch.device("cpu")
    assert load_device("cuda:1") == torch.device("cuda:1") == load_device(torch.device("cuda", 1))
    assert load_device("auto") is None and load_device({"": "cpu"}) is None


@pytest.mark.parametrize("family", FAMILIES)
def test_real_sizes_count_in_closed_form(family):
    """`config.num_parameters()` is the built model's count, with tied and untied heads and for the paper's largest
    configs (built on the meta device; the configs themselves are created as ever)."""
    config_class, _, model_class = FAMILIES[family]
    for tied in (True, False):
        config = config_class.from_preset("tiny", **SIZES, tie_word_embeddings=tied)
        assert config.num_parameters() == model_class(config).num_parameters()
    largest = config_class.from_preset({"gpt2": "1.5B", "gpt1": "gpt1"}[family])
    with torch.device("meta"):
        assert largest.num_parameters() == model_class(largest).num_parameters()


# ----------------------------------------------------------------------------------------------------------- weights


def saved_weights(family: str, folder) -> dict[str, torch.Tensor]:
    lm(family).save_pretrained(folder)
    return load_file(folder / "model.safetensors")


def save_weights(folder, weights: dict[str, torch.Tensor]) -> None:
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})


@pytest.mark.parametrize("family", FAMILIES)
def test_weights_the_model_has_no_place_for_are_refused(family, tmp_path):
    """A checkpoint of 2 layers under a config.json of 1: transformers would drop the second layer with a warning."""
    CASES.add("file-weights-unexpected")
    saved_weights(family, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "n_layer": 1}))
    with pytest.raises(
        ValueError,
        match=r"holds 12 weights that \w+LMHeadModel has no place for \(e.g. transformer.h.1.attn.c_attn.bias, .*\): "
        r"they belong to a bigger model than its config.json says, or to another model",
    ):
        FAMILIES[family][2].from_pretrained(tmp_path)


@pytest.mark.parametrize("family", FAMILIES)
def test_old_buffers_and_other_task_heads_are_left_out(family, tmp_path):
    """The causal-mask buffers old transformers versions saved, and the task heads of a fine-tuned checkpoint, are
    not weights of the language model: they load without error (the heads are left out)."""
    CASES.add("file-weights-old-buffers-and-task-heads")
    weights = saved_weights(family, tmp_path)
    weights["transformer.h.0.attn.bias"] = torch.ones(1, 1, 16, 16)
    weights["multiple_choice_head.summary.weight"] = torch.zeros(1, 32)
    weights["score.weight"] = torch.zeros(3, 32)
    save_weights(tmp_path, weights)
    loaded = FAMILIES[family][2].from_pretrained(tmp_path).state_dict()
    expected = lm(family).state_dict()
    assert loaded.keys() == expected.keys()  # no mask buffer, no task head
    for name, value in expected.items():
        torch.testing.assert_close(loaded[name], value, rtol=0, atol=0, msg=f"{name} did not load as saved")


NON_FINITE = [("file-weights-nan", float("nan")), ("file-weights-inf", float("-inf"))]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("case_id, value", NON_FINITE, ids=[c[0] for c in NON_FINITE])
def test_non_finite_weights_are_refused(family, case_id, value, tmp_path):
    CASES.add(case_id)
    weights = saved_weights(family, tmp_path)
    name = "transformer.h.1.mlp.c_fc.weight"
    weights[name][0, :3] = value
    save_weights(tmp_path, weights)
    with pytest.raises(
        ValueError,
        match=rf"holds NaN or inf weights: {name} \(3 of 4,096 values\)\. The checkpoint was saved after training "
        r"diverged, or is corrupted: load an earlier one",
    ):
        FAMILIES[family][2].from_pretrained(tmp_path)


# ------------------------------------------------------------------------------------------------------------- table


def test_every_model_case_is_in_the_reliability_table(documented_cases):
    assert not CASES - documented_cases, f"docs/RELIABILITY.md has no row for {sorted(CASES - documented_cases)}"
