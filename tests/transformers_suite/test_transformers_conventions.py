"""What transformers' own GPT-2 and OpenAI-GPT take, taken here with the same meaning (issue 14): `token_type_ids` in
forward and generate, packed rows with per-document positions (padding-free training under Trainer with
`DataCollatorWithFlattening`), `reorder_and_upcast_attn`, `past_key_values=` with transformers' deprecation warning,
and the double-heads model's `mc_labels`. What has no meaning here is refused with an error saying what to pass."""

import warnings

import pytest
import torch
from helpers.causal_lm_checks import in_transformers_layout
from torch.testing import assert_close
from transformers import (
    DataCollatorWithFlattening,
    GPT2Config,
    GPT2LMHeadModel,
    OpenAIGPTConfig,
    OpenAIGPTLMHeadModel,
    Trainer,
    TrainingArguments,
)

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsDoubleHeadsModel, GPT1OriginsLMHeadModel
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel
from modeling_gpt2.compat import CACHE_NAME, cache_of

SIZES = dict(n_layer=2, n_embd=32, n_head=4, vocab_size=97, n_positions=32)
DROPOUT_OFF = dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)


def pair(family: str, **fields):
    """Our LM and transformers' with the same weights (its projections in its Conv1D layout), eager attention, in eval
    mode."""
    torch.manual_seed(0)
    if family == "gpt2":
        ours = GPT2OriginsLMHeadModel(GPT2OriginsConfig(**SIZES, **DROPOUT_OFF, **fields))
        theirs = GPT2LMHeadModel(GPT2Config(**SIZES, **DROPOUT_OFF, **fields))
    else:
        ours = GPT1OriginsLMHeadModel(GPT1OriginsConfig(**SIZES, **DROPOUT_OFF, **fields))
        theirs = OpenAIGPTLMHeadModel(OpenAIGPTConfig(**SIZES, **DROPOUT_OFF, **fields))
    theirs.load_state_dict({k: in_transformers_layout(k, v) for k, v in ours.state_dict().items()}, strict=False)
    ours.set_attn_implementation("eager")
    theirs.set_attn_implementation("eager")
    return ours.eval(), theirs.eval()


@pytest.mark.parametrize("family", ["gpt2", "gpt1"])
def test_token_type_ids_as_transformers_adds_them(family):
    ours, theirs = pair(family)
    ids = torch.randint(0, 97, (3, 9), generator=torch.Generator().manual_seed(1))
    types = torch.randint(0, 4, (3, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert_close(ours(ids, token_type_ids=types).logits, theirs(ids, token_type_ids=types).logits)
        assert not torch.allclose(ours(ids, token_type_ids=types).logits, ours(ids).logits)
        generated = ours.generate(ids, token_type_ids=types, max_new_tokens=5, do_sample=False, pad_token_id=0)
        expected = theirs.generate(ids, token_type_ids=types, max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert torch.equal(generated, expected)


@pytest.mark.parametrize(
    "types, message",
    [
        (torch.zeros(3, 8, dtype=torch.long), r"`token_type_ids` has shape \(3, 8\), expected .* \(3, 9\)"),
        (torch.zeros(3, 9), r"`token_type_ids` must be an integer tensor"),
        (torch.full((3, 9), 97), r"`token_type_ids` must lie in \[0, 97\)"),
    ],
)
def test_bad_token_type_ids_are_errors(types, message):
    ours, _ = pair("gpt2")
    with pytest.raises(ValueError, match=message):
        ours(torch.zeros(3, 9, dtype=torch.long), token_type_ids=types)


def test_double_heads_token_type_ids_follow_the_sequences():
    torch.manual_seed(0)
    model = GPT1OriginsDoubleHeadsModel(GPT1OriginsConfig(**SIZES, **DROPOUT_OFF, task_type="multiple_choice")).eval()
    ids = torch.randint(0, 97, (2, 3, 6))
    types = torch.randint(0, 4, (2, 3, 6))
    with torch.no_grad():
        one = model(ids, token_type_ids=types).logits
        row = model(ids[:1, 1:2], token_type_ids=types[:1, 1:2]).logits
    assert one.shape == (2, 3) and torch.allclose(one[0, 1], row[0, 0], atol=1e-5)
    with pytest.raises(ValueError, match=r"`token_type_ids` has shape \(2, 6\), expected .* \(2, 3, 6\)"):
        model(ids, token_type_ids=types[:, 0])


@pytest.mark.parametrize("family", ["gpt2", "gpt1"])
def test_a_packed_row_longer_than_the_context_is_accepted_when_every_position_fits(family):
    ours, _ = pair(family)
    documents = [torch.randint(0, 97, (length,)) for length in (20, 25, 18)]  # 63 tokens, n_positions = 32
    packed = torch.cat(documents)[None]
    positions = torch.cat([torch.arange(len(d)) for d in documents])[None]
    with torch.no_grad():
        logits = ours(packed, position_ids=positions).logits  # (1, 63, V)
        alone = [ours(d[None]).logits[0] for d in documents]
    assert_close(logits[0], torch.cat(alone), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"Sequence too long: 0 cached \+ 63 new = 63 positions"):
        ours(packed)  # without positions, the row is one 63-token sequence


class _LossRecorder(Trainer):
    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.losses = [*getattr(self, "losses", []), loss.item()]
        return loss


def test_padding_free_training_under_trainer_equals_the_padded_batch(tmp_path):
    """transformers' DataCollatorWithFlattening packs a batch into one row with per-document position ids and no
    mask: the same loss and the same updated weights as the padded batch."""
    rows = [torch.randint(0, 96, (length,)).tolist() for length in (12, 7, 20, 15)]
    results = {}
    for name, collator in {
        "padded": PaddedLMCollator(pad_id=96),
        "flat": DataCollatorWithFlattening(return_position_ids=True),
    }.items():
        torch.manual_seed(0)
        model = GPT2OriginsLMHeadModel(GPT2OriginsConfig(**SIZES, **DROPOUT_OFF, pad_token_id=96))
        arguments = TrainingArguments(
            output_dir=str(tmp_path / name), per_device_train_batch_size=4, max_steps=2, learning_rate=1e-2,
            report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True, max_grad_norm=0.0,
        )  # fmt: skip
        dataset = [{"input_ids": row} for row in rows]
        trainer = _LossRecorder(model=model, args=arguments, train_dataset=dataset, data_collator=collator)
        trainer.train()
        results[name] = (trainer.losses, model.transformer.h[0].attn.c_attn.weight.detach().clone())
    assert_close(torch.tensor(results["flat"][0]), torch.tensor(results["padded"][0]), atol=1e-5, rtol=1e-5)
    assert_close(results["flat"][1], results["padded"][1], atol=1e-5, rtol=1e-5)


class PaddedLMCollator:
    """Right-padded rows with a mask; labels are the ids, -100 on padding (transformers' DataCollatorWithPadding
    gives no labels)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features):
        length = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), length), self.pad_id)
        mask = torch.zeros((len(features), length), dtype=torch.long)
        for row, feature in enumerate(features):
            ids[row, : len(feature["input_ids"])] = torch.tensor(feature["input_ids"])
            mask[row, : len(feature["input_ids"])] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}


def test_reorder_and_upcast_attn_matches_transformers_and_needs_eager():
    ours, theirs = pair("gpt2", reorder_and_upcast_attn=True, scale_attn_by_inverse_layer_idx=True)
    ids = torch.randint(0, 97, (2, 10))
    with torch.no_grad():
        assert_close(ours(ids).logits, theirs(ids).logits)
    ours.set_attn_implementation("sdpa")
    with pytest.raises(ValueError, match=r"reorder_and_upcast_attn=True .* attn_implementation='eager'"):
        ours(ids)


def test_add_cross_attention_is_refused():
    with pytest.raises(ValueError, match="add_cross_attention=True: GPT-2 here is a decoder-only"):
        GPT2OriginsConfig(**SIZES, add_cross_attention=True)


@pytest.mark.parametrize("family", ["gpt2", "gpt1"])
def test_past_key_values_is_read_as_the_cache(family):
    ours, _ = pair(family)
    ids = torch.randint(0, 97, (1, 8))
    with torch.no_grad():
        full = ours(ids).logits
        cache = cache_of(ours(ids[:, :5], use_cache=True))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rest = ours(ids[:, 5:], past_key_values=cache, use_cache=True).logits
    assert_close(rest, full[:, 5:], atol=1e-5, rtol=1e-5)
    if CACHE_NAME == "cache":  # transformers 5.24 on: its own deprecation warning, as its GPT-2 gives
        assert any("`past_key_values` is deprecated" in str(w.message) for w in caught)
        with pytest.raises(ValueError, match="Both `past_key_values` and `cache` are set"):
            ours(ids[:, 5:], past_key_values=cache, cache=cache)


def test_double_heads_mc_labels_are_the_task_labels_and_lm_labels_are_refused():
    torch.manual_seed(0)
    model = GPT1OriginsDoubleHeadsModel(GPT1OriginsConfig(**SIZES, **DROPOUT_OFF, task_type="multiple_choice")).eval()
    ids = torch.randint(0, 97, (2, 3, 6))
    choice = torch.tensor([2, 0])
    with torch.no_grad():
        by_labels = model(ids, labels=choice)
        by_mc_labels = model(ids, mc_labels=choice)
    assert torch.equal(by_labels.loss, by_mc_labels.loss) and torch.equal(by_labels.task_loss, by_mc_labels.task_loss)
    with pytest.raises(ValueError, match=r"`labels` of shape \(2, 3, 6\) with `mc_labels` is transformers' .*pass"):
        model(ids, labels=ids, mc_labels=choice)
    with pytest.raises(ValueError, match=r"`labels` of shape \(2, 3, 6\) \(the input's shape\)"):
        model(ids, labels=ids)


def test_loading_a_state_dict_without_the_weights_names_it():
    config = GPT2OriginsConfig(**SIZES)
    with pytest.raises(ValueError, match=r"the given state_dict lacks \d+ weights of GPT2OriginsLMHeadModel"):
        GPT2OriginsLMHeadModel.from_pretrained(None, config=config, state_dict={})


def test_a_weight_shape_mismatch_is_also_transformers_runtime_error(tmp_path):
    GPT2OriginsLMHeadModel(GPT2OriginsConfig(**SIZES)).save_pretrained(tmp_path)
    with pytest.raises(RuntimeError, match=r"ignore_mismatched_sizes=True"):
        GPT2OriginsLMHeadModel.from_pretrained(tmp_path, n_embd=64)
    model = GPT2OriginsLMHeadModel.from_pretrained(tmp_path, n_embd=64, ignore_mismatched_sizes=True)
    assert model.config.n_embd == 64
