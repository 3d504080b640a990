"""GPT-1 model tests: parity with transformers' OpenAIGPT as the oracle, equivalences (eager / sdpa, cache, padding,
checkpointing, save / load, remote code, Trainer accumulation, torch.compile), the four task families of the
double-heads model, and every bad input."""

import ast
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.causal_lm_checks import (
    check_chunked_loss_equals_plain,
    check_push_keeps_an_existing_model_card,
    check_push_to_hub,
    check_saved_folder_carries_its_code,
    check_static_cache_decode,
    check_tied_embedding_gradient,
    in_transformers_layout,
)
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMultipleChoice,
    AutoModelForSequenceClassification,
    DynamicCache,
    OpenAIGPTConfig,
    OpenAIGPTDoubleHeadsModel,
    OpenAIGPTLMHeadModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    pipeline,
)

from modeling_gpt1 import (
    GPT1OriginsConfig,
    GPT1OriginsDoubleHeadsModel,
    GPT1OriginsLMHeadModel,
    GPT1OriginsModel,
)
from modeling_gpt1.compat import cache_of, enable_activation_checkpointing

REPO = Path(__file__).resolve().parents[2]
VOCAB = 99
START, DELIM, EXTRACT, PAD = 95, 96, 97, 98  # the task tokens of the tiny test vocabulary
NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "classifier_dropout": 0.0}


def tiny_config(**overrides) -> GPT1OriginsConfig:
    settings = {
        "vocab_size": VOCAB,
        "n_positions": 48,
        "n_embd": 32,
        "n_head": 4,
        "start_token_id": START,
        "delimiter_token_id": DELIM,
        "extract_token_id": EXTRACT,
        "pad_token_id": PAD,
        **NO_DROPOUT,
    }
    return GPT1OriginsConfig.from_preset("tiny", **{**settings, **overrides})


def lm_model(**overrides) -> GPT1OriginsLMHeadModel:
    torch.manual_seed(0)
    return GPT1OriginsLMHeadModel(tiny_config(**overrides)).eval()


def task_model(task_type: str, num_labels: int = 3, **overrides) -> GPT1OriginsDoubleHeadsModel:
    torch.manual_seed(0)
    config = tiny_config(task_type=task_type, num_labels=num_labels, **overrides)
    return GPT1OriginsDoubleHeadsModel(config).eval()


def task_batch(batch_size: int, num_sequences: int | None, seq_len: int = 12, seed: int = 0):
    """Random text ids wrapped as [start] ... [extract], right-padded to `seq_len` with varying real lengths."""
    generator = torch.Generator().manual_seed(seed)
    shape = (batch_size, num_sequences or 1)
    input_ids = torch.full((*shape, seq_len), PAD)
    attention_mask = torch.zeros((*shape, seq_len), dtype=torch.long)
    lengths = torch.randint(4, seq_len + 1, shape, generator=generator)
    for index in torch.cartesian_prod(torch.arange(shape[0]), torch.arange(shape[1])).tolist():
        length = int(lengths[tuple(index)])
        text = torch.randint(0, START, (length - 2,), generator=generator)
        input_ids[tuple(index)][:length] = torch.cat([torch.tensor([START]), text, torch.tensor([EXTRACT])])
        attention_mask[tuple(index)][:length] = 1
    if num_sequences is None:
        return input_ids[:, 0], attention_mask[:, 0]
    return input_ids, attention_mask


def openai_config(**overrides) -> OpenAIGPTConfig:
    return OpenAIGPTConfig(vocab_size=VOCAB, n_positions=48, n_embd=32, n_layer=2, n_head=4, **overrides)


# --------------------------------------------------------------------------------------------------- the code itself


def test_packages_do_not_import_each_other():
    for package, other in (("modeling_gpt1", "gpt2"), ("modeling_gpt2", "gpt1")):
        for path in (REPO / package).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    assert other not in (node.module or ""), f"{package}/{path.name} imports {node.module}"
                elif isinstance(node, ast.Import):
                    assert not any(other in alias.name for alias in node.names), (
                        f"{package}/{path.name} imports {other}"
                    )


# ------------------------------------------------------------------------------------------------------------ config


def test_config_defaults_are_the_paper():
    config = GPT1OriginsConfig()
    assert (config.n_layer, config.n_embd, config.n_head, config.n_positions) == (12, 768, 12, 512)
    assert config.vocab_size == 40478 + 5  # released BPE + _start_, _delimiter_, _classify_, _pad_, <unk>
    assert config.activation_function == "gelu_new"  # the released code's tanh GELU, as transformers' "gelu" for GPT
    assert (config.lm_coef, config.classifier_dropout, config.initializer_range) == (0.5, 0.1, 0.02)
    assert config.model_type == "gpt1-origins"
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (768, 12, 12)
    assert config.max_position_embeddings == 512
    assert GPT1OriginsConfig.from_preset("openai-gpt").to_dict() == GPT1OriginsConfig.from_preset("gpt1").to_dict()
    assert GPT1OriginsConfig.from_preset("tiny", n_layer=3).n_layer == 3


def test_config_loads_transformers_openai_config():
    config = GPT1OriginsConfig.from_dict(OpenAIGPTConfig(afn="relu").to_dict())
    assert (config.vocab_size, config.afn, config.activation_function) == (40478, "relu", "relu")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_embd": 30, "n_head": 4}, r"`n_embd` \(30\) must be divisible by `n_head` \(4\)"),
        ({"n_layer": -1}, r"`n_layer` must be a positive integer, got -1"),
        ({"vocab_size": 0}, r"`vocab_size` must be a positive integer, got 0"),
        ({"attn_pdrop": 1.5}, r"`attn_pdrop` must be a probability in \[0, 1\], got 1.5"),
        ({"classifier_dropout": -0.1}, r"`classifier_dropout` must be a probability"),
        ({"task_type": "translation"}, r"Unknown `task_type` 'translation'"),
        ({"afn": "tanh"}, r"Unknown `afn` 'tanh'"),
        ({"lm_coef": -1.0}, r"`lm_coef` .* must be >= 0, got -1.0"),
        ({"extract_token_id": 40483}, r"`extract_token_id` must be None or an id in \[0, 40483\), got 40483"),
        ({"summary_type": "mean"}, r"`summary_type`='mean' is not supported"),
    ],
)
def test_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        GPT1OriginsConfig(**overrides)


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"Unknown GPT-1 preset 'gpt3'; known presets: tiny, gpt1"):
        GPT1OriginsConfig.from_preset("gpt3")


# ------------------------------------------------------------------------------------ parity with transformers' GPT


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_lm_parity_with_transformers(tmp_path, attn_implementation):
    torch.manual_seed(0)
    reference = OpenAIGPTLMHeadModel(openai_config()).eval()
    reference.save_pretrained(tmp_path)
    model = GPT1OriginsLMHeadModel.from_pretrained(tmp_path, attn_implementation=attn_implementation).eval()
    assert model.lm_head.weight is model.transformer.tokens_embed.weight
    input_ids = torch.randint(0, VOCAB, (3, 20))
    labels = input_ids.clone()
    labels[:, :3] = -100
    with torch.no_grad():
        expected, actual = reference(input_ids, labels=labels), model(input_ids, labels=labels, use_cache=False)
    torch.testing.assert_close(actual.logits, expected.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(actual.loss, expected.loss, atol=1e-5, rtol=1e-5)


def test_lm_training_step_parity_with_transformers(tmp_path):
    """A training step's loss and every gradient, ours (the chunked loss, several chunks) against transformers'."""
    torch.manual_seed(0)
    reference = OpenAIGPTLMHeadModel(openai_config(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)).train()
    reference.save_pretrained(tmp_path)
    model = GPT1OriginsLMHeadModel.from_pretrained(tmp_path, loss_chunk_size=16).train()
    input_ids = torch.randint(0, VOCAB, (3, 20))
    labels = input_ids.clone()
    labels[:, :3] = -100
    expected, actual = reference(input_ids, labels=labels), model(input_ids, labels=labels)
    assert actual.logits is None  # training with labels: the chunked path
    expected.loss.backward()
    actual.loss.backward()
    torch.testing.assert_close(actual.loss, expected.loss, atol=1e-5, rtol=1e-5)
    reference_grads = dict(reference.named_parameters())
    for name, param in model.named_parameters():
        torch.testing.assert_close(
            in_transformers_layout(name, param.grad), reference_grads[name].grad, atol=1e-6, rtol=1e-4, msg=name
        )


def test_chunked_loss_equals_plain_loss():
    check_chunked_loss_equals_plain(GPT1OriginsLMHeadModel, tiny_config())


def test_tied_embedding_gradient_is_one_tensor():
    check_tied_embedding_gradient(GPT1OriginsLMHeadModel, tiny_config())


def test_static_cache_decode_equals_dynamic_and_compiles():
    check_static_cache_decode(GPT1OriginsLMHeadModel, tiny_config(), pad_id=PAD)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_double_heads_parity_with_transformers(tmp_path, attn_implementation):
    torch.manual_seed(0)
    reference = OpenAIGPTDoubleHeadsModel(openai_config()).eval()
    with torch.no_grad():  # a non-zero bias, so that loading it is tested too
        reference.multiple_choice_head.summary.bias.fill_(0.3)
    reference.save_pretrained(tmp_path)
    model = GPT1OriginsDoubleHeadsModel.from_pretrained(tmp_path, attn_implementation=attn_implementation).eval()
    assert model.task_type == "multiple_choice"
    input_ids = torch.randint(0, VOCAB, (2, 3, 15))
    mc_token_ids = torch.randint(0, 15, (2, 3))
    with torch.no_grad():
        expected = reference(input_ids, mc_token_ids=mc_token_ids)
        actual = model(input_ids, mc_token_ids=mc_token_ids)
    torch.testing.assert_close(actual.lm_logits, expected.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(actual.logits, expected.mc_logits, atol=1e-5, rtol=1e-5)


def test_folder_in_transformers_format_loads_into_transformers(tmp_path):
    """`save_transformers_format` writes transformers' own OpenAI-GPT folder (its config, Conv1D weights, no code);
    the double-heads model, whose task heads transformers has not, is refused before anything is written."""
    model = lm_model().eval()
    model.save_transformers_format(tmp_path / "lm")
    saved = json.loads((tmp_path / "lm" / "config.json").read_text())
    assert saved["model_type"] == "openai-gpt" and "auto_map" not in saved and not list((tmp_path / "lm").glob("*.py"))
    reference = AutoModelForCausalLM.from_pretrained(tmp_path / "lm").eval()
    assert type(reference) is OpenAIGPTLMHeadModel
    input_ids = torch.randint(0, VOCAB, (2, 11))
    with torch.no_grad():
        torch.testing.assert_close(reference(input_ids).logits, model(input_ids).logits, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="GPT1OriginsDoubleHeadsModel has no class in transformers with its heads"):
        GPT1OriginsDoubleHeadsModel(model.config).save_transformers_format(tmp_path / "heads")
    assert not (tmp_path / "heads").exists()


def test_double_heads_folder_of_conv1d_weights_loads_and_saves_linear(tmp_path):
    """transformers' double-heads folder (Conv1D) loads; saved again it holds nn.Linear weights, marked "linear"."""
    torch.manual_seed(0)
    OpenAIGPTDoubleHeadsModel(openai_config()).save_pretrained(tmp_path / "theirs")
    model = GPT1OriginsDoubleHeadsModel.from_pretrained(tmp_path / "theirs").eval()
    assert type(model.transformer.h[0].mlp.c_fc) is torch.nn.Linear and model.config.weight_layout == "linear"
    model.save_pretrained(tmp_path / "ours")
    assert json.loads((tmp_path / "ours" / "config.json").read_text())["weight_layout"] == "linear"
    again = GPT1OriginsDoubleHeadsModel.from_pretrained(tmp_path / "ours").eval()
    input_ids, mc_token_ids = torch.randint(0, VOCAB, (2, 3, 15)), torch.randint(0, 15, (2, 3))
    with torch.no_grad():
        expected = model(input_ids, mc_token_ids=mc_token_ids).logits
        torch.testing.assert_close(again(input_ids, mc_token_ids=mc_token_ids).logits, expected, atol=0, rtol=0)


def test_bad_weight_layout_is_an_error():
    with pytest.raises(ValueError, match=r"`weight_layout` must be one of 'linear', 'conv1d'.*got 'linear '"):
        GPT1OriginsConfig(weight_layout="linear ")


def test_lm_checkpoint_loads_into_double_heads_with_new_task_head(tmp_path):
    lm_model().save_pretrained(tmp_path)
    model = GPT1OriginsDoubleHeadsModel.from_pretrained(tmp_path, task_type="entailment", num_labels=3).eval()
    assert (model.score.out_features, model.config.task_type) == (3, "entailment")
    input_ids, attention_mask = task_batch(2, None)
    with torch.no_grad():
        expected = GPT1OriginsLMHeadModel.from_pretrained(tmp_path).eval()(input_ids, attention_mask=attention_mask)
        actual = model(input_ids, attention_mask=attention_mask)
    torch.testing.assert_close(actual.lm_logits, expected.logits)


# ------------------------------------------------------------------------------------------------------ equivalences


def test_eager_equals_sdpa_with_padding():
    input_ids, attention_mask = task_batch(3, None, seq_len=16)
    outputs = []
    for attn_implementation in ("eager", "sdpa"):
        model = lm_model()
        model.set_attn_implementation(attn_implementation)
        with torch.no_grad():
            outputs.append(model(input_ids, attention_mask=attention_mask).logits)
    real = attention_mask.bool()
    torch.testing.assert_close(outputs[0][real], outputs[1][real], atol=1e-5, rtol=1e-5)


def test_post_layer_norm_block_and_no_final_norm():
    model = lm_model(n_layer=1)
    assert not hasattr(model.transformer, "ln_f")
    block, x = model.transformer.h[0], torch.randn(2, 5, 32)
    with torch.no_grad():
        attn, _ = block.attn(x)
        hidden = block.ln_1(x + attn)
        expected = block.ln_2(hidden + block.mlp(hidden))
        torch.testing.assert_close(block(x), expected)


def test_init_is_normal_002():
    model = GPT1OriginsLMHeadModel(GPT1OriginsConfig.from_preset("tiny", vocab_size=4000))
    for name in ("transformer.tokens_embed.weight", "transformer.h.0.attn.c_proj.weight"):
        assert abs(model.get_parameter(name).std().item() - 0.02) < 0.002, name
    assert torch.all(model.transformer.h[1].mlp.c_fc.bias == 0)
    assert torch.all(model.transformer.h[1].ln_2.weight == 1)


@pytest.mark.parametrize("generation", [{"do_sample": False}, {"num_beams": 3, "do_sample": False}])
def test_cached_generation_equals_uncached(generation):
    model = lm_model()
    input_ids = torch.randint(0, START, (2, 6))
    settings = {"max_new_tokens": 8, "pad_token_id": PAD, **generation}
    cached = model.generate(input_ids, use_cache=True, **settings)
    uncached = model.generate(input_ids, use_cache=False, **settings)
    assert cached.shape == (2, 14)
    torch.testing.assert_close(cached, uncached)


def test_sampling_generation_runs_and_is_seeded():
    model = lm_model()
    input_ids = torch.randint(0, START, (2, 4))
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        runs.append(model.generate(input_ids, do_sample=True, top_k=20, max_new_tokens=6, pad_token_id=PAD))
    torch.testing.assert_close(runs[0], runs[1])


def test_left_padded_batch_equals_each_prompt_alone():
    model = lm_model()
    prompts = [torch.randint(0, START, (length,)) for length in (7, 3, 5)]
    width = max(len(prompt) for prompt in prompts)
    input_ids = torch.full((3, width), PAD)
    attention_mask = torch.zeros(3, width, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = prompt
        attention_mask[row, width - len(prompt) :] = 1
    with torch.no_grad():
        batch_logits = model(input_ids, attention_mask=attention_mask).logits
    batch_generated = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=5, pad_token_id=PAD)
    for row, prompt in enumerate(prompts):
        with torch.no_grad():
            alone = model(prompt[None]).logits[0]
        torch.testing.assert_close(batch_logits[row, width - len(prompt) :], alone, atol=1e-5, rtol=1e-5)
        generated_alone = model.generate(prompt[None], max_new_tokens=5, pad_token_id=PAD)[0, len(prompt) :]
        torch.testing.assert_close(batch_generated[row, width:], generated_alone)


def test_step_by_step_cache_equals_full_forward():
    model = lm_model()
    input_ids = torch.randint(0, VOCAB, (2, 10))
    with torch.no_grad():
        full = model(input_ids).logits
        cache = DynamicCache(config=model.config)
        first = model(input_ids[:, :6], cache=cache, use_cache=True)
        rest = model(input_ids[:, 6:], cache=cache_of(first), use_cache=True)
    torch.testing.assert_close(torch.cat([first.logits, rest.logits], 1), full, atol=1e-5, rtol=1e-5)


def _loss_and_grads(model, **inputs):
    model.zero_grad()
    loss = model(**inputs).loss
    loss.backward()
    return loss.detach(), {name: param.grad.clone() for name, param in model.named_parameters()}


@pytest.mark.parametrize("task_type", [None, "classification"])
def test_gradient_checkpointing_equals_plain(task_type):
    if task_type is None:
        model = lm_model().train()
        input_ids = torch.randint(0, VOCAB, (2, 12))
        inputs = {"input_ids": input_ids, "labels": input_ids}
    else:
        model = task_model(task_type).train()
        input_ids, attention_mask = task_batch(3, None)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": torch.tensor([0, 2, 1])}
    calls = []
    model.transformer.h[0].mlp.register_forward_hook(lambda *args: calls.append(1))  # inside the checkpoint
    plain_loss, plain_grads = _loss_and_grads(model, **inputs)
    enable_activation_checkpointing(
        model
    )  # activation_checkpointing_enable (5.24 on) or gradient_checkpointing_enable
    assert getattr(model, "is_activation_checkpointing", getattr(model, "is_gradient_checkpointing", False))
    checkpointed_loss, checkpointed_grads = _loss_and_grads(model, **inputs)
    assert len(calls) == 3  # once without checkpointing; forward and recomputation in backward with it
    torch.testing.assert_close(checkpointed_loss, plain_loss)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(checkpointed_grads[name], grad, msg=name)


@pytest.mark.parametrize("task_type", ["classification", "multiple_choice"])
def test_save_load_round_trip(tmp_path, task_type):
    model = task_model(task_type)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "gpt1-origins" and saved["task_type"] == task_type
    assert set(saved["auto_map"]) == {
        "AutoConfig",
        "AutoModel",
        "AutoModelForCausalLM",
        "AutoModelForSequenceClassification",
        "AutoModelForMultipleChoice",
    }
    assert (tmp_path / "modeling_gpt1.py").exists() and (tmp_path / "configuration_gpt1.py").exists()
    loaded = AutoModelForSequenceClassification if task_type == "classification" else AutoModelForMultipleChoice
    loaded = loaded.from_pretrained(tmp_path).eval()
    assert type(loaded) is GPT1OriginsDoubleHeadsModel
    assert loaded.lm_head.weight is loaded.transformer.tokens_embed.weight
    input_ids, attention_mask = task_batch(2, None if task_type == "classification" else 3)
    with torch.no_grad():
        expected = model(input_ids, attention_mask=attention_mask)
        actual = loaded(input_ids, attention_mask=attention_mask)
    torch.testing.assert_close(actual.logits, expected.logits)
    torch.testing.assert_close(actual.lm_logits, expected.lm_logits)


def test_auto_classes():
    config = tiny_config()
    assert type(AutoConfig.for_model("gpt1-origins")) is GPT1OriginsConfig
    assert type(AutoModel.from_config(config)) is GPT1OriginsModel
    assert type(AutoModelForCausalLM.from_config(config)) is GPT1OriginsLMHeadModel
    assert type(AutoModelForSequenceClassification.from_config(config)) is GPT1OriginsDoubleHeadsModel
    assert type(AutoModelForMultipleChoice.from_config(config)) is GPT1OriginsDoubleHeadsModel


REMOTE_SCRIPT = """
import sys
# gpt-origins is installed here: make its packages unimportable, so only the code saved in the folders can serve.
for name in ("modeling_gpt1", "modeling_gpt2", "recipes"):
    sys.modules[name] = None
import torch
from transformers import AutoModelForCausalLM, AutoModelForMultipleChoice, AutoModelForSequenceClassification

inputs = torch.load("inputs.pt")
results = {}
for folder, auto_class in [
    ("lm", AutoModelForCausalLM),
    ("classification", AutoModelForSequenceClassification),
    ("multiple_choice", AutoModelForMultipleChoice),
]:
    model = auto_class.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    with torch.no_grad():
        results[folder] = model(**inputs[folder]).logits
torch.save(results, "outputs.pt")
"""


def test_remote_code_loads_without_the_package(tmp_path):
    models = {"lm": lm_model(), "classification": task_model("classification"), "multiple_choice": task_model(None)}
    inputs = {
        "lm": {"input_ids": torch.randint(0, VOCAB, (2, 9))},
        "classification": dict(zip(("input_ids", "attention_mask"), task_batch(2, None))),
        "multiple_choice": dict(zip(("input_ids", "attention_mask"), task_batch(2, 4))),
    }
    for folder, model in models.items():
        model.save_pretrained(tmp_path / folder)
    torch.save(inputs, tmp_path / "inputs.pt")
    # cwd holds only the saved folders (so the repository is not on sys.path); a private modules cache.
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), TRANSFORMERS_VERBOSITY="error")
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_SCRIPT], cwd=tmp_path, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = torch.load(tmp_path / "outputs.pt")
    for folder, model in models.items():
        with torch.no_grad():
            torch.testing.assert_close(outputs[folder], model(**inputs[folder]).logits)


def test_saved_folder_carries_its_code(tmp_path):
    files = check_saved_folder_carries_its_code(task_model("classification"), "modeling_gpt1", tmp_path)
    assert "fine_tuning.py" in files  # imported by the model file only for the double-heads model


@pytest.fixture(scope="module")
def tokenizer():
    from modeling_gpt1 import train_gpt1_tokenizer

    return train_gpt1_tokenizer(["the movie was great fun", "a dull and boring film"] * 5, vocab_size=60)


@pytest.mark.parametrize(
    ("task_type", "auto_class", "pipeline_tag"),
    [
        (None, "AutoModelForCausalLM", "text-generation"),
        ("classification", "AutoModelForSequenceClassification", "text-classification"),
        ("multiple_choice", "AutoModelForMultipleChoice", None),
    ],
)
def test_push_to_hub_uploads_everything_without_network(tmp_path, tokenizer, task_type, auto_class, pipeline_tag):
    if task_type is None:
        model, inputs = lm_model(), {"input_ids": torch.randint(0, VOCAB, (2, 9))}
    else:
        model = task_model(task_type)
        num_sequences = 3 if task_type == "multiple_choice" else None
        inputs = dict(zip(("input_ids", "attention_mask"), task_batch(2, num_sequences)))
    card = check_push_to_hub(model, tokenizer, "modeling_gpt1", auto_class, tmp_path, inputs)
    assert "Radford et al. 2018" in card
    assert (f"pipeline_tag: {pipeline_tag}" in card) if pipeline_tag else ("pipeline_tag" not in card)


def test_push_to_hub_keeps_an_existing_model_card(tmp_path):
    check_push_keeps_an_existing_model_card(lm_model(), "modeling_gpt1", tmp_path)


def test_save_and_push_api_is_gpt2s():
    from modeling_gpt2 import GPT2OriginsLMHeadModel

    for name in ("save_pretrained", "push_to_hub", "model_card", "from_pretrained"):
        ours, theirs = getattr(GPT1OriginsDoubleHeadsModel, name), getattr(GPT2OriginsLMHeadModel, name)
        assert inspect.signature(ours) == inspect.signature(theirs), name


# ----------------------------------------------------------------------------------------------- the task families


TASKS = [
    ("classification", 3, None),
    ("entailment", 3, None),
    ("similarity", 2, 2),
    ("similarity", 1, 2),  # STS-B: one regression score
    ("multiple_choice", 1, 4),
]


@pytest.mark.parametrize(("task_type", "num_labels", "num_sequences"), TASKS)
def test_task_forward_and_backward(task_type, num_labels, num_sequences):
    model = task_model(task_type, num_labels=num_labels, resid_pdrop=0.1, classifier_dropout=0.1).train()
    input_ids, attention_mask = task_batch(3, num_sequences)
    if task_type == "multiple_choice":
        labels, logits_shape = torch.tensor([0, 3, 1]), (3, 4)
    elif num_labels == 1:
        labels, logits_shape = torch.tensor([0.5, 4.0, 2.2]), (3, 1)
    else:
        labels, logits_shape = torch.tensor([1, 0, num_labels - 1]), (3, num_labels)
    outputs = model(input_ids, attention_mask=attention_mask, labels=labels)
    assert list(outputs.keys())[:2] == ["loss", "logits"]
    assert outputs.logits.shape == logits_shape
    assert outputs.lm_logits is None  # training with labels: the LM loss through the chunked head
    torch.testing.assert_close(outputs.loss, outputs.task_loss + 0.5 * outputs.lm_loss)
    outputs.loss.backward()
    with torch.no_grad():
        assert model.eval()(input_ids, attention_mask=attention_mask).lm_logits.shape == (*input_ids.shape, VOCAB)
    model.train()
    head = model.multiple_choice_head.summary if task_type == "multiple_choice" else model.score
    assert head.weight.grad.abs().sum() > 0
    assert model.transformer.tokens_embed.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "task_type, num_labels, num_sequences",
    [("classification", 3, None), ("entailment", 3, None), ("similarity", 1, 2), ("multiple_choice", 1, 4)],
)
def test_chunked_auxiliary_lm_loss_equals_plain(task_type, num_labels, num_sequences):
    """Fine-tuning's auxiliary LM loss through the chunked head (training mode) equals the plain per-sequence means:
    loss, task and LM parts and every gradient, with padding, an ignored example and num_items_in_batch. The chunked
    step also builds no dense (V, C) token-embedding gradient: the head's weight gradient takes the rows in place."""
    model = task_model(task_type, num_labels=num_labels).train()
    input_ids, attention_mask = task_batch(3, num_sequences, seed=4)
    if task_type == "multiple_choice":
        labels = torch.tensor([0, -100, 2])
    elif num_labels == 1:
        labels = torch.tensor([0.5, 4.0, 2.2])
    else:
        labels = torch.tensor([1, -100, 2])
    for extra in ({}, {"num_items_in_batch": torch.tensor(5)}):
        results = []
        for chunk_size in (None, 5):
            model.config.loss_chunk_size = chunk_size
            model.zero_grad(set_to_none=True)
            with torch.profiler.profile() as profile:
                outputs = model(input_ids, attention_mask=attention_mask, labels=labels, **extra)
                outputs.loss.backward()
            grads = {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}
            dense = sum(event.name == "aten::embedding_dense_backward" for event in profile.events())
            assert dense == (2 if chunk_size is None else 1)  # tokens and positions; chunked: positions only
            results.append((outputs, grads))
        (plain, plain_grads), (chunked, grads) = results
        assert plain.lm_logits is not None and chunked.lm_logits is None
        for name in ("loss", "task_loss", "lm_loss"):
            torch.testing.assert_close(getattr(chunked, name), getattr(plain, name), atol=1e-6, rtol=1e-6)
        assert grads.keys() == plain_grads.keys()
        for name, grad in plain_grads.items():
            torch.testing.assert_close(grads[name], grad, atol=1e-6, rtol=1e-5, msg=f"{name} {extra}")


def test_head_parameter_names():
    assert {name for name, _ in task_model("multiple_choice").named_parameters() if "transformer" not in name} == {
        "multiple_choice_head.summary.weight",
        "multiple_choice_head.summary.bias",
    }  # lm_head.weight is tied: the same parameter as transformer.tokens_embed.weight
    assert {name for name, _ in task_model("similarity").named_parameters() if "transformer" not in name} == {
        "score.weight",
        "score.bias",
    }


def test_losses_are_the_papers():
    """L3 = L2 + 0.5 * L1: cross-entropy over the k answers, and the LM loss averaged per sequence over its real
    tokens, then over the sequences (the released train.py)."""
    model = task_model("multiple_choice")
    input_ids, attention_mask = task_batch(2, 3)
    labels = torch.tensor([2, 0])
    with torch.no_grad():
        outputs = model(input_ids, attention_mask=attention_mask, labels=labels)
    torch.testing.assert_close(outputs.task_loss, torch.nn.functional.cross_entropy(outputs.logits, labels))
    per_sequence = []
    for ids, mask, logits in zip(
        input_ids.flatten(0, 1), attention_mask.flatten(0, 1), outputs.lm_logits.flatten(0, 1)
    ):
        length = int(mask.sum())
        per_sequence.append(torch.nn.functional.cross_entropy(logits[: length - 1], ids[1:length]))
    torch.testing.assert_close(outputs.lm_loss, torch.stack(per_sequence).mean())
    torch.testing.assert_close(outputs.loss, outputs.task_loss + 0.5 * outputs.lm_loss)


def test_ignored_examples_and_multi_label():
    model = task_model("classification")
    input_ids, attention_mask = task_batch(3, None)
    with torch.no_grad():
        full = model(input_ids, attention_mask=attention_mask, labels=torch.tensor([2, -100, 1]))
        kept = model(input_ids[[0, 2]], attention_mask=attention_mask[[0, 2]], labels=torch.tensor([2, 1]))
    torch.testing.assert_close(full.loss, kept.loss)  # -100: the example counts in neither loss

    model = task_model("classification", problem_type="multi_label_classification")
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    with torch.no_grad():
        outputs = model(input_ids, attention_mask=attention_mask, labels=labels)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(outputs.logits, labels)
    torch.testing.assert_close(outputs.task_loss, expected)


def test_similarity_is_symmetric():
    model = task_model("similarity", num_labels=1)
    input_ids, attention_mask = task_batch(3, 2)
    with torch.no_grad():
        forward = model(input_ids, attention_mask=attention_mask).logits
        swapped = model(input_ids.flip(1), attention_mask=attention_mask.flip(1)).logits
    torch.testing.assert_close(forward, swapped)


def test_extract_positions_from_token_from_indices_and_from_mask_agree():
    model = task_model("classification")
    input_ids, attention_mask = task_batch(3, None)
    extract_positions = attention_mask.sum(-1) - 1
    with torch.no_grad():
        from_token = model(input_ids, attention_mask=attention_mask).logits
        from_indices = model(input_ids, attention_mask=attention_mask, mc_token_ids=extract_positions).logits
        model.config.extract_token_id = None
        from_mask = model(input_ids, attention_mask=attention_mask).logits
    for logits in (from_indices, from_mask):
        torch.testing.assert_close(logits, from_token)


def test_inputs_embeds_hidden_states_and_attentions():
    model = task_model("multiple_choice")
    model.set_attn_implementation("eager")
    input_ids, attention_mask = task_batch(2, 3)
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        from_ids = model(input_ids, attention_mask=attention_mask, labels=labels, output_hidden_states=True)
        embeds = model.transformer.tokens_embed(input_ids)  # (B, k, T, C)
        from_embeds = model(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, output_attentions=True)
    torch.testing.assert_close(from_embeds.logits, from_ids.logits)
    assert from_embeds.lm_loss is None and torch.equal(
        from_embeds.loss, from_embeds.task_loss
    )  # no ids, no LM targets
    assert len(from_ids.hidden_states) == 3 and from_ids.hidden_states[-1].shape == (6, 12, 32)  # (B * k, T, C)
    assert len(from_embeds.attentions) == 2 and from_embeds.attentions[0].shape == (6, 4, 12, 12)
    assert model(input_ids, attention_mask=attention_mask, return_dict=False)[0].shape == (2, 3)


def test_classification_with_left_padding_equals_alone():
    model = task_model("classification")
    input_ids, attention_mask = task_batch(3, None)
    lengths = attention_mask.sum(-1)
    left_ids, left_mask = torch.full_like(input_ids, PAD), torch.zeros_like(attention_mask)
    for row, length in enumerate(lengths.tolist()):
        left_ids[row, -length:], left_mask[row, -length:] = input_ids[row, :length], 1
    with torch.no_grad():
        left = model(left_ids, attention_mask=left_mask).logits
        alone = torch.cat([model(input_ids[row : row + 1, :length]).logits for row, length in enumerate(lengths)])
    torch.testing.assert_close(left, alone, atol=1e-5, rtol=1e-5)


def test_adamw_steps_drive_the_combined_loss_down():
    model = task_model("entailment").train()
    input_ids, attention_mask = task_batch(6, None)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        outputs = model(input_ids, attention_mask=attention_mask, labels=labels)
        optimizer.zero_grad()
        outputs.loss.backward()
        optimizer.step()
        losses.append(outputs.loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert outputs.task_loss < 0.2 < 1.0 < outputs.lm_loss  # the task is learnt; the random text cannot be


class _GradientGrabber(TrainerCallback):
    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads = {name: param.grad.clone() for name, param in model.named_parameters()}


def _train_one_step(tmp_path, batch_size: int, accumulation: int, task_type: str, num_sequences: int | None):
    model = task_model(task_type).train()
    input_ids, attention_mask = task_batch(8, num_sequences, seed=3)
    labels = torch.tensor([0, 1, 2, 1, 0, 2, 2, 1]) if task_type != "multiple_choice" else torch.arange(8) % 4
    dataset = [{"input_ids": input_ids[i], "attention_mask": attention_mask[i], "labels": labels[i]} for i in range(8)]
    arguments = TrainingArguments(
        output_dir=str(tmp_path / f"run{batch_size}"),
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        learning_rate=1e-3,
        max_grad_norm=0.0,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        dataloader_drop_last=False,
    )
    grabber = _GradientGrabber()
    trainer = Trainer(model=model, args=arguments, train_dataset=dataset, callbacks=[grabber])
    assert trainer.label_names == ["labels"] and trainer.model_accepts_loss_kwargs
    result = trainer.train()
    return result.training_loss, grabber.grads


@pytest.mark.parametrize(("task_type", "num_sequences"), [("classification", None), ("multiple_choice", 4)])
def test_trainer_gradient_accumulation_equals_large_batch(tmp_path, task_type, num_sequences):
    accumulated_loss, accumulated = _train_one_step(tmp_path, 2, 4, task_type, num_sequences)
    large_loss, large = _train_one_step(tmp_path, 8, 1, task_type, num_sequences)
    assert accumulated_loss == pytest.approx(large_loss, rel=1e-5)
    for name, grad in large.items():
        torch.testing.assert_close(accumulated[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_trainer_predict_gives_task_logits(tmp_path):
    model = task_model("classification")
    input_ids, attention_mask = task_batch(4, None)
    dataset = [{"input_ids": input_ids[i], "attention_mask": attention_mask[i], "labels": i % 3} for i in range(4)]
    arguments = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, per_device_eval_batch_size=4)
    prediction = Trainer(model=model, args=arguments).predict(dataset)
    assert prediction.predictions.shape == (4, 3)  # task logits only: lm_logits and the part losses are ignored
    with torch.no_grad():
        expected = model(input_ids, attention_mask=attention_mask).logits
    torch.testing.assert_close(torch.from_numpy(prediction.predictions), expected)


def test_text_classification_pipeline():
    from modeling_gpt1.tokenization_gpt1 import train_gpt1_tokenizer

    texts = ["the movie was great fun", "a dull and boring film", "great acting , boring plot", "what a film"] * 5
    tokenizer = train_gpt1_tokenizer(texts, vocab_size=80, model_max_length=48)
    config = tiny_config(
        vocab_size=len(tokenizer),
        task_type="classification",
        num_labels=2,
        id2label={0: "negative", 1: "positive"},
        start_token_id=tokenizer.bos_token_id,
        delimiter_token_id=tokenizer.sep_token_id,
        extract_token_id=tokenizer.cls_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = GPT1OriginsDoubleHeadsModel(config).eval()
    classifier = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    results = classifier(texts[:3], batch_size=3, top_k=None)
    for text, result in zip(texts[:3], results):
        encoded = tokenizer(text, return_tensors="pt")
        assert encoded["input_ids"][0, -1] == tokenizer.cls_token_id  # the template ends in the extract token
        with torch.no_grad():
            probabilities = model(**encoded).logits.softmax(-1)[0]
        scores = {entry["label"]: entry["score"] for entry in result}
        assert scores["positive"] == pytest.approx(probabilities[1].item(), abs=1e-5)


TASK_EXAMPLES = {
    "classification": [{"text": "a great film", "label": 1}, {"text": "dull and slow", "label": 0}],
    "entailment": [
        {"premise": "a man sleeps", "hypothesis": "a person rests", "label": "entailment"},
        {"premise": "a cat runs", "hypothesis": "the cat is asleep", "label": "contradiction"},
    ],
    "similarity": [
        {"text_a": "a small cat", "text_b": "a little cat", "score": 4.5},
        {"text_a": "the film", "text_b": "a man sleeps", "score": 0.2},
    ],
    "multiple_choice": [
        {"context": "he opened the", "choices": ["door", "sky", "idea"], "label": 0},
        {"context": "she drank the", "choices": ["wall", "water", "film"], "label": 1},
    ],
}


@pytest.mark.parametrize("family", list(TASK_EXAMPLES))
def test_task_encoder_batches_feed_the_model(family):
    """The batches of `modeling_gpt1.tasks` (extract positions under the key `mc_token_ids`,
    which Trainer's `remove_unused_columns` keeps because it is a forward argument) train the model."""
    from modeling_gpt1 import GPT1TaskCollator, GPT1TaskEncoder, train_gpt1_tokenizer

    texts = [str(value) for example in TASK_EXAMPLES.values() for row in example for value in row.values()]
    tokenizer = train_gpt1_tokenizer(texts * 3, vocab_size=90, min_frequency=1, model_max_length=48)
    num_labels = {"classification": 2, "entailment": 3, "similarity": 1, "multiple_choice": 1}[family]
    config = tiny_config(
        vocab_size=len(tokenizer),
        task_type=family,
        num_labels=num_labels,
        start_token_id=tokenizer.bos_token_id,
        delimiter_token_id=tokenizer.sep_token_id,
        extract_token_id=tokenizer.cls_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = GPT1OriginsDoubleHeadsModel(config).train()
    encoder = GPT1TaskEncoder(tokenizer, family)
    batch = GPT1TaskCollator(tokenizer)([encoder(example) for example in TASK_EXAMPLES[family]])
    outputs = model(**batch)
    outputs.loss.backward()
    assert torch.isfinite(outputs.loss) and outputs.lm_loss > 0
    model.eval()
    with torch.no_grad():
        by_position = model(**batch).logits
        by_token = model(**{key: value for key, value in batch.items() if key != "mc_token_ids"}).logits
    torch.testing.assert_close(by_position, by_token)


# ------------------------------------------------------------------------------------------------------- compiling


def _compiled_training_step_matches_eager(model, backend: str, **inputs):
    """Forward + loss compiled as one graph (fullgraph: a graph break raises), backward through AOTAutograd's
    compiled backward; loss and gradients equal the eager step."""
    torch._dynamo.reset()

    def loss_of(model, inputs):
        return model(**inputs).loss

    eager_loss = loss_of(model, inputs)
    eager_loss.backward()
    eager_grads = {name: param.grad.clone() for name, param in model.named_parameters()}
    model.zero_grad()
    compiled_loss = torch.compile(loss_of, fullgraph=True, backend=backend)(model, inputs)
    compiled_loss.backward()
    torch.testing.assert_close(compiled_loss, eager_loss, atol=1e-5, rtol=1e-5)
    for name, grad in eager_grads.items():
        torch.testing.assert_close(model.get_parameter(name).grad, grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("task_type", [None, "multiple_choice", "similarity"])
def test_compiled_training_step_has_no_graph_breaks(task_type):
    """aot_eager traces exactly what inductor would (dynamo + AOTAutograd) without its minutes of CPU codegen."""
    if task_type is None:
        input_ids = torch.randint(0, VOCAB, (2, 16))
        inputs = {"input_ids": input_ids, "labels": input_ids, "use_cache": False}
        model = lm_model().train()
    else:
        input_ids, attention_mask = task_batch(2, 3 if task_type == "multiple_choice" else 2)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": torch.tensor([1, 0])}
        model = task_model(task_type, num_labels=2).train()
    _compiled_training_step_matches_eager(model, "aot_eager", **inputs)


@pytest.mark.slow
def test_inductor_compiled_training_step():
    input_ids = torch.randint(0, VOCAB, (2, 16))
    model = lm_model().train()
    _compiled_training_step_matches_eager(model, "inductor", input_ids=input_ids, labels=input_ids, use_cache=False)


# ------------------------------------------------------------------------------------------------------ bad inputs


def test_lm_bad_inputs():
    model = lm_model()
    with pytest.raises(ValueError, match=rf"Token id {VOCAB} is outside the vocabulary \[0, {VOCAB}\)"):
        model(torch.tensor([[1, VOCAB]]))
    with pytest.raises(ValueError, match=rf"Token id -1 is outside the vocabulary \[0, {VOCAB}\)"):
        model(torch.tensor([[-1, 2]]))
    with pytest.raises(ValueError, match=r"0 cached \+ 49 new = 49 positions, but the model has n_positions=48"):
        model(torch.zeros(1, 49, dtype=torch.long))
    cache = cache_of(model(torch.zeros(1, 40, dtype=torch.long), use_cache=True))
    with pytest.raises(ValueError, match=r"40 cached \+ 9 new = 49 positions, but the model has n_positions=48"):
        model(torch.zeros(1, 9, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match=r"`attention_mask` has shape \(1, 5\), expected .* = \(1, 6\)"):
        model(torch.zeros(1, 6, dtype=torch.long), attention_mask=torch.ones(1, 5))
    with pytest.raises(ValueError, match=r"`input_ids` must have shape \(batch_size, sequence_length\)"):
        model(torch.zeros(1, 2, 6, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`input_ids` must be an integer tensor, got dtype torch.float32"):
        model(torch.zeros(1, 6))
    with pytest.raises(ValueError, match=r"`labels` has shape \(1, 5\), expected .* = \(1, 6\)"):
        model(torch.zeros(1, 6, dtype=torch.long), labels=torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Pass exactly one of `input_ids` and `inputs_embeds`"):
        model()


@pytest.mark.parametrize(
    ("task_type", "num_sequences", "extra", "message"),
    [
        ("classification", 2, {}, r"task_type='classification' reads one sequence per example.* got 2 sequences"),
        ("similarity", None, {}, r"task_type='similarity' needs both orderings .* got shape \(2, 12\)"),
        ("similarity", 3, {}, r"needs both orderings .* got shape \(2, 3, 12\)"),
        ("multiple_choice", None, {}, r"task_type='multiple_choice' needs one sequence per answer"),
        ("multiple_choice", 3, {"mc_token_ids": torch.tensor([11, 12])}, r"`mc_token_ids` has shape \(2,\)"),
        ("multiple_choice", 3, {"mc_token_ids": torch.full((2, 3), 12)}, r"must lie in \[0, sequence_length=12\)"),
        ("multiple_choice", 3, {"labels": torch.tensor([0, 3])}, r"Label 3 is outside \[0, 3\) \(choices=3\)"),
        ("classification", None, {"labels": torch.tensor([0, 5])}, r"Label 5 is outside \[0, 3\) \(num_labels=3\)"),
        ("entailment", None, {"labels": torch.tensor([[0], [1]])}, r"`labels` has shape \(2, 1\), expected .* \(2,\)"),
        ("entailment", None, {"labels": torch.tensor([0.0, 1.0])}, r"multi-label classification"),
        ("classification", None, {"attention_mask": torch.ones(2, 11)}, r"`attention_mask` has shape \(2, 11\)"),
    ],
)
def test_task_bad_inputs(task_type, num_sequences, extra, message):
    model = task_model(task_type)
    input_ids, attention_mask = task_batch(2, num_sequences)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, **extra}
    with pytest.raises(ValueError, match=message):
        model(**inputs)


def test_extract_token_must_appear_exactly_once():
    model = task_model("classification")
    input_ids, attention_mask = task_batch(2, None)
    missing = input_ids.masked_fill(input_ids == EXTRACT, 5)
    with pytest.raises(ValueError, match=r"extract_token_id=97\); example 0, sequence 0 has 0"):
        model(missing, attention_mask=attention_mask)
    doubled = input_ids.clone()
    doubled[1, 1] = EXTRACT
    with pytest.raises(ValueError, match=r"example 1, sequence 0 has 2"):
        model(doubled, attention_mask=attention_mask)
    model(missing, attention_mask=attention_mask, mc_token_ids=attention_mask.sum(-1) - 1)  # explicit positions: fine
