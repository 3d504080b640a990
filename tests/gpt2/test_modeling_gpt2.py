"""GPT-2: parity with transformers' GPT2LMHeadModel, the shared equivalence checks, and every bad input."""

import json

import pytest
import torch
from helpers.causal_lm_checks import (
    build,
    check_cached_generation_equals_uncached,
    check_chunked_loss_equals_plain,
    check_compile_fullgraph_training_step,
    check_eager_equals_sdpa,
    check_gradient_checkpointing_equivalence,
    check_left_padding_equals_alone,
    check_remote_code_load,
    check_save_load_round_trip,
    check_static_cache_decode,
    check_tied_embedding_gradient,
    check_trainer_gradient_accumulation,
    in_transformers_layout,
    left_pad,
    random_ids,
)
from torch.testing import assert_close
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
)

import modeling_gpt2
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel, GPT2OriginsModel
from modeling_gpt2.compat import cache_of
from modeling_gpt2.loading import CONV1D_PROJECTIONS


def tiny_config(**overrides) -> GPT2OriginsConfig:
    return GPT2OriginsConfig.from_preset("tiny", vocab_size=211, n_positions=64, **overrides)


@pytest.fixture(scope="module")
def reference_folder(tmp_path_factory):
    """A folder in transformers' own GPT-2 format: model_type gpt2, Conv1D weights, tied head not stored."""
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=211, n_positions=64, n_embd=64, n_layer=2, n_head=4)
    reference = GPT2LMHeadModel(config)
    folder = tmp_path_factory.mktemp("reference_gpt2")
    reference.save_pretrained(folder)
    return folder


# --- parity with transformers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("padded", [False, True])
def test_parity_with_transformers(reference_folder, attn_implementation, padded):
    saved = json.loads((reference_folder / "config.json").read_text())
    assert saved["model_type"] == "gpt2" and not any("lm_head" in k for k in _saved_keys(reference_folder))
    reference = GPT2LMHeadModel.from_pretrained(reference_folder, attn_implementation=attn_implementation).eval()
    ours = GPT2OriginsLMHeadModel.from_pretrained(reference_folder, attn_implementation=attn_implementation).eval()
    assert ours.lm_head.weight.data_ptr() == ours.transformer.wte.weight.data_ptr()

    config = ours.config
    if padded:
        prompts = [random_ids(config, 1, n, seed=n)[0] for n in (11, 4, 8)]
        ids, mask = left_pad(prompts, pad_id=0)
        # transformers' forward counts positions from 0 at the pad; give it the positions ours derives itself.
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            expected = reference(ids, attention_mask=mask, position_ids=position_ids).logits
            actual = ours(ids, attention_mask=mask).logits
        real = mask.bool()
        assert_close(actual[real], expected[real], atol=1e-5, rtol=1e-5)
    else:
        ids = random_ids(config, 2, 17)
        with torch.no_grad():
            expected = reference(ids, labels=ids)
            actual = ours(ids, labels=ids)
        assert_close(actual.logits, expected.logits, atol=1e-5, rtol=1e-5)
        assert_close(actual.loss, expected.loss, atol=1e-5, rtol=1e-5)


def test_training_step_parity_with_transformers(reference_folder):
    """A training step's loss and every gradient, ours (the chunked loss, several chunks) against transformers'."""
    no_dropout = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    reference = GPT2LMHeadModel.from_pretrained(reference_folder, **no_dropout).train()
    ours = GPT2OriginsLMHeadModel.from_pretrained(reference_folder, loss_chunk_size=8, **no_dropout).train()
    ids = random_ids(ours.config, 2, 17)
    labels = ids.clone()
    labels[1, :5] = -100
    expected, actual = reference(ids, labels=labels), ours(ids, labels=labels)
    assert actual.logits is None  # training with labels: the chunked path
    expected.loss.backward()
    actual.loss.backward()
    assert_close(actual.loss, expected.loss, atol=1e-5, rtol=1e-5)
    reference_grads = dict(reference.named_parameters())
    for name, param in ours.named_parameters():
        assert_close(
            in_transformers_layout(name, param.grad), reference_grads[name].grad, atol=1e-6, rtol=1e-4, msg=name
        )


def _saved_keys(folder):
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", "pt") as handle:
        return list(handle.keys())


def test_parity_of_greedy_generation_with_transformers(reference_folder):
    reference = GPT2LMHeadModel.from_pretrained(reference_folder).eval()
    ours = GPT2OriginsLMHeadModel.from_pretrained(reference_folder).eval()
    ids = random_ids(ours.config, 1, 5)
    kwargs = dict(max_new_tokens=10, do_sample=False, pad_token_id=0)
    assert torch.equal(ours.generate(ids, **kwargs), reference.generate(ids, **kwargs))


def test_our_folder_in_transformers_format_loads_into_transformers(tmp_path):
    """The other direction: `save_transformers_format` writes transformers' own GPT-2 folder (its config, Conv1D
    weights, no code), which GPT2LMHeadModel and AutoModelForCausalLM read without gpt-origins."""
    ours = build(GPT2OriginsLMHeadModel, tiny_config()).eval()
    ours.save_transformers_format(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "gpt2" and "auto_map" not in saved and "weight_layout" not in saved
    assert not list(tmp_path.glob("*.py")) and "lm_head.weight" not in _saved_keys(tmp_path)
    reference = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    assert type(AutoModelForCausalLM.from_pretrained(tmp_path)) is GPT2LMHeadModel
    ids = random_ids(ours.config, 2, 9)
    with torch.no_grad():
        assert_close(reference(ids).logits, ours(ids).logits, atol=1e-5, rtol=1e-5)
    base = GPT2OriginsModel(tiny_config()).eval()
    base.save_transformers_format(tmp_path / "base")
    with torch.no_grad():
        expected = base(ids).last_hidden_state
        assert_close(AutoModel.from_pretrained(tmp_path / "base")(ids).last_hidden_state, expected)


def test_layers_are_linear_and_every_layout_loads(reference_folder, tmp_path):
    """nn.Linear projections; transformers' Conv1D folder, a folder of ours from before nn.Linear (no
    `weight_layout`, Conv1D weights) and a new one (linear) all load to the same model; a new folder stores
    nn.Linear's (out, in) weights, the state dict as it is (Trainer reloads its checkpoints with load_state_dict)."""
    from safetensors.torch import load_file

    ours = GPT2OriginsLMHeadModel.from_pretrained(reference_folder).eval()
    assert all(type(ours.get_submodule(f"transformer.h.0.{name}")) is torch.nn.Linear for name in CONV1D_PROJECTIONS)
    assert ours.config.weight_layout == "linear"
    ours.save_pretrained(tmp_path / "new")
    assert json.loads((tmp_path / "new" / "config.json").read_text())["weight_layout"] == "linear"
    stored = load_file(tmp_path / "new" / "model.safetensors")
    state = ours.state_dict()
    assert all(torch.equal(stored[key], state[key]) for key in stored)
    # A folder saved before the change: Conv1D weights, no `weight_layout` in its config.
    old = tmp_path / "old"
    ours.config.weight_layout = "conv1d"
    ours.save_pretrained(old)
    ours.config.weight_layout = "linear"
    config = json.loads((old / "config.json").read_text())
    assert load_file(old / "model.safetensors")["transformer.h.0.attn.c_attn.weight"].shape == (64, 192)
    del config["weight_layout"]
    (old / "config.json").write_text(json.dumps(config))
    ids = random_ids(ours.config, 2, 9)
    with torch.no_grad():
        expected = ours(ids).logits
        for folder in (reference_folder, old, tmp_path / "new"):
            assert_close(GPT2OriginsLMHeadModel.from_pretrained(folder).eval()(ids).logits, expected, atol=0, rtol=0)


def test_bad_weight_layout_is_an_error():
    with pytest.raises(ValueError, match=r"`weight_layout` must be one of 'linear', 'conv1d'.*got 'Conv1D'"):
        tiny_config(weight_layout="Conv1D")


# --- shared equivalence checks ------------------------------------------------------------------------------------


def test_eager_equals_sdpa():
    check_eager_equals_sdpa(GPT2OriginsLMHeadModel, tiny_config())


def test_cached_generation_equals_uncached():
    check_cached_generation_equals_uncached(GPT2OriginsLMHeadModel, tiny_config())


def test_left_padded_batch_equals_each_prompt_alone():
    check_left_padding_equals_alone(GPT2OriginsLMHeadModel, tiny_config())


def test_gradient_checkpointing_equivalence():
    check_gradient_checkpointing_equivalence(GPT2OriginsLMHeadModel, tiny_config())


def test_save_load_round_trip(tmp_path):
    saved = check_save_load_round_trip(GPT2OriginsLMHeadModel, tiny_config(), tmp_path)
    assert saved["auto_map"]["AutoModelForCausalLM"] == "modeling_gpt2.GPT2OriginsLMHeadModel"
    assert (tmp_path / "modeling_gpt2.py").exists() and (tmp_path / "configuration_gpt2.py").exists()


def test_remote_code_load_without_package(tmp_path):
    model = build(GPT2OriginsLMHeadModel, tiny_config())
    ids = random_ids(model.config, 2, 7)
    check_remote_code_load(model, "modeling_gpt2", "AutoModelForCausalLM", ids, tmp_path)


def test_trainer_gradient_accumulation_equals_one_batch(tmp_path):
    check_trainer_gradient_accumulation(GPT2OriginsLMHeadModel, tiny_config(), tmp_path)


def test_compile_fullgraph_training_step():
    check_compile_fullgraph_training_step(GPT2OriginsLMHeadModel, tiny_config())


def test_chunked_loss_equals_plain_loss():
    check_chunked_loss_equals_plain(GPT2OriginsLMHeadModel, tiny_config())


def test_tied_embedding_gradient_is_one_tensor():
    check_tied_embedding_gradient(GPT2OriginsLMHeadModel, tiny_config())


def test_static_cache_decode_equals_dynamic_and_compiles():
    check_static_cache_decode(GPT2OriginsLMHeadModel, tiny_config())


# --- architecture, presets, registration --------------------------------------------------------------------------


def test_residual_projections_use_scaled_init():
    config = GPT2OriginsConfig.from_preset("tiny", n_embd=256, n_head=4, n_layer=8)
    model = build(GPT2OriginsLMHeadModel, config)
    block = model.transformer.h[0]
    expected = 0.02 / (2 * config.n_layer) ** 0.5
    for weight in (block.attn.c_proj.weight, block.mlp.c_proj.weight):
        assert abs(weight.std().item() - expected) < 0.15 * expected
    assert abs(block.attn.c_attn.weight.std().item() - 0.02) < 0.003
    assert torch.all(block.attn.c_attn.bias == 0) and torch.all(block.ln_1.weight == 1)


@pytest.mark.parametrize(
    "name, parameters", [("124M", 124_439_808), ("gpt2-medium", 354_823_168), ("774M", 774_030_080)]
)
def test_presets_match_released_parameter_counts(name, parameters):
    config = GPT2OriginsConfig.from_preset(name)
    # Count without allocating: embeddings + per-block + final LayerNorm.
    d, layers = config.n_embd, config.n_layer
    block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    total = config.vocab_size * d + config.n_positions * d + layers * block + 2 * d
    assert total == parameters
    with torch.device("meta"):
        model = GPT2OriginsLMHeadModel(config)
    assert model.num_parameters() == parameters


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(ValueError, match="Unknown GPT-2 preset 'gpt5'.*124M"):
        GPT2OriginsConfig.from_preset("gpt5")


def test_auto_classes_resolve_after_import(tmp_path):
    fields = {k: v for k, v in tiny_config().to_diff_dict().items() if k != "model_type"}
    config = AutoConfig.for_model("gpt2-origins", **fields)
    assert isinstance(config, GPT2OriginsConfig)
    assert isinstance(AutoModel.from_config(config), GPT2OriginsModel)
    model = AutoModelForCausalLM.from_config(config)
    assert isinstance(model, GPT2OriginsLMHeadModel)
    model.save_pretrained(tmp_path)
    assert isinstance(AutoModelForCausalLM.from_pretrained(tmp_path), GPT2OriginsLMHeadModel)


def test_output_hidden_states_and_attentions():
    model = build(GPT2OriginsLMHeadModel, tiny_config())
    ids = random_ids(model.config, 2, 5)
    out = model(ids, output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == model.config.n_layer + 1
    assert out.hidden_states[0].shape == (2, 5, model.config.n_embd)
    assert len(out.attentions) == model.config.n_layer and out.attentions[0].shape == (2, 4, 5, 5)
    assert list(out.keys())[0] == "logits" and "loss" not in out
    assert list(model(ids, labels=ids).keys())[0] == "loss"


@pytest.mark.parametrize(
    "generation_kwargs",
    [
        dict(do_sample=True, top_k=20, temperature=0.8),
        dict(num_beams=3, do_sample=False, num_return_sequences=2),
    ],
)
def test_generate_modes(generation_kwargs):
    model = build(GPT2OriginsLMHeadModel, tiny_config())
    ids = random_ids(model.config, 2, 4)
    torch.manual_seed(0)
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=7, pad_token_id=0, **generation_kwargs
    )
    assert out.shape[1] == 11 and torch.equal(out[:: out.shape[0] // 2, :4], ids)


# --- bad input ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model():
    return build(GPT2OriginsLMHeadModel, tiny_config())


@pytest.mark.parametrize(
    "make_kwargs, message",
    [
        (lambda: dict(input_ids=torch.tensor([[1, 2, 211]])), r"Token id 211 is outside the vocabulary \[0, 211\)"),
        (lambda: dict(input_ids=torch.tensor([[1, -3, 2]])), r"Token id -3 is outside the vocabulary"),
        (lambda: dict(input_ids=torch.ones(1, 65, dtype=torch.long)), r"65 positions.*n_positions=64"),
        (lambda: dict(input_ids=torch.tensor([[1.0, 2.0]])), r"integer tensor, got dtype torch.float32"),
        (lambda: dict(input_ids=torch.tensor([1, 2, 3])), r"shape \(batch_size, sequence_length\), got shape \(3,\)"),
        (lambda: dict(input_ids=torch.ones(0, 4, dtype=torch.long)), r"batch is empty"),
        (lambda: dict(input_ids=torch.ones(2, 0, dtype=torch.long)), r"batch is empty"),
        (
            lambda: dict(input_ids=torch.ones(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 4)),
            r"`attention_mask` has shape \(2, 4\), expected .* = \(2, 5\)",
        ),
        (
            lambda: dict(input_ids=torch.ones(2, 5, dtype=torch.long), attention_mask=torch.ones(5)),
            r"`attention_mask` must be 2D",
        ),
        (
            lambda: dict(input_ids=torch.ones(1, 3, dtype=torch.long), position_ids=torch.tensor([[0, 1, 64]])),
            r"`position_ids` must lie in \[0, n_positions=64\)",
        ),
        (
            lambda: dict(input_ids=torch.ones(1, 3, dtype=torch.long), labels=torch.ones(1, 4, dtype=torch.long)),
            r"`labels` has shape \(1, 4\)",
        ),
        (lambda: dict(inputs_embeds=torch.full((1, 2, 64), float("nan"))), r"inputs_embeds` contains NaN"),
        (lambda: dict(inputs_embeds=torch.zeros(1, 2, 7)), r"n_embd=64"),
        (lambda: dict(), r"exactly one of `input_ids` and `inputs_embeds`"),
    ],
)
def test_bad_input_raises_clear_error(tiny_model, make_kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(**make_kwargs())


def test_sequence_too_long_with_cache(tiny_model):
    ids = torch.ones(1, 60, dtype=torch.long)
    with torch.no_grad():
        cache = cache_of(tiny_model(ids, use_cache=True))
        tiny_model(torch.ones(1, 4, dtype=torch.long), cache=cache)  # exactly 64: fine
        with pytest.raises(ValueError, match=r"64 cached \+ 1 new = 65 positions.*n_positions=64"):
            tiny_model(torch.ones(1, 1, dtype=torch.long), cache=cache)


def test_generate_past_the_context_raises(tiny_model):
    with pytest.raises(ValueError, match="n_positions=64"):
        tiny_model.generate(torch.ones(1, 60, dtype=torch.long), max_new_tokens=10, do_sample=False, pad_token_id=0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(n_embd=65, n_head=4), r"`n_embd` \(65\) must be divisible by `n_head` \(4\)"),
        (dict(n_layer=0), r"`n_layer` must be a positive integer, got 0"),
        (dict(vocab_size=-5), r"`vocab_size` must be a positive integer, got -5"),
        (dict(attn_pdrop=1.5), r"`attn_pdrop` must be a probability"),
    ],
)
def test_bad_config_raises_clear_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        GPT2OriginsConfig(**overrides)


def test_package_exports():
    assert set(modeling_gpt2.__all__) >= {"GPT2OriginsConfig", "GPT2OriginsLMHeadModel", "load_gpt2_tokenizer"}
