"""recipes/generate.py and the model-family registry it loads with (recipes/models/families.py): random presets of both
families, saved GPT-2 and GPT-1 folders (with and without a tokenizer, ours and transformers'), a fine-tuned GPT-1
double-heads folder, and the one-line errors of bad input."""

import subprocess
import sys

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, OpenAIGPTConfig, OpenAIGPTLMHeadModel

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsDoubleHeadsModel, GPT1OriginsLMHeadModel, train_gpt1_tokenizer
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel
from recipes import generate
from recipes.core.errors import RecipeError
from recipes.models import families

TEXTS = [
    "It was a dark and stormy night; the rain fell in torrents.",
    "Call me Ishmael. Some years ago I thought I would sail about a little and see the watery part of the world.",
    "To be, or not to be, that is the question.",
]


@pytest.fixture(scope="module")
def gpt1_tokenizer():
    return train_gpt1_tokenizer([TEXTS], vocab_size=200)


@pytest.fixture(scope="module")
def folders(tmp_path_factory, gpt1_tokenizer):
    """Tiny saved folders of every kind the registry loads, by name."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    GPT2OriginsLMHeadModel(GPT2OriginsConfig.from_preset("tiny")).save_pretrained(root / "gpt2-no-tokenizer")
    gpt1 = GPT1OriginsConfig.from_preset("tiny", vocab_size=len(gpt1_tokenizer))
    GPT1OriginsLMHeadModel(gpt1).save_pretrained(root / "gpt1")
    gpt1_tokenizer.save_pretrained(root / "gpt1")
    GPT1OriginsLMHeadModel(gpt1).save_pretrained(root / "gpt1-no-tokenizer")
    task_tokens = {
        "start_token_id": gpt1_tokenizer.bos_token_id,
        "delimiter_token_id": gpt1_tokenizer.sep_token_id,
        "extract_token_id": gpt1_tokenizer.cls_token_id,
        "pad_token_id": gpt1_tokenizer.pad_token_id,
    }
    tuned = GPT1OriginsConfig.from_preset(
        "tiny", vocab_size=len(gpt1_tokenizer), task_type="classification", num_labels=2, **task_tokens
    )
    GPT1OriginsDoubleHeadsModel(tuned).save_pretrained(root / "gpt1-fine-tuned")  # as recipes/finetune.py saves it
    gpt1_tokenizer.save_pretrained(root / "gpt1-fine-tuned")
    sizes = {"n_layer": 1, "n_embd": 32, "n_head": 2, "vocab_size": 99, "n_positions": 16}
    GPT2LMHeadModel(GPT2Config(**sizes, bos_token_id=None, eos_token_id=None)).save_pretrained(root / "hf-gpt2")
    OpenAIGPTLMHeadModel(OpenAIGPTConfig(**sizes)).save_pretrained(root / "hf-openai-gpt")
    (root / "bert").mkdir()
    (root / "bert" / "config.json").write_text('{"model_type": "bert"}')
    return root


# ---------------------------------------------------------------------------------------------------------------------
# the registry


@pytest.mark.parametrize(
    "name, family, lm_class",
    [
        ("gpt2-no-tokenizer", "gpt2", GPT2OriginsLMHeadModel),
        ("hf-gpt2", "gpt2", GPT2OriginsLMHeadModel),
        ("gpt1", "gpt1", GPT1OriginsLMHeadModel),
        ("hf-openai-gpt", "gpt1", GPT1OriginsLMHeadModel),
        ("gpt1-fine-tuned", "gpt1", GPT1OriginsLMHeadModel),
    ],
)
def test_every_folder_loads_as_the_lm_of_its_family(folders, name, family, lm_class):
    assert families.family_of(folders / name) is families.MODEL_FAMILIES[family]
    model = families.load_causal_lm(folders / name)
    assert type(model) is lm_class
    embedding = model.get_input_embeddings().weight
    assert model.lm_head.weight is embedding and not embedding.is_meta  # the LM head is the tied embedding


def test_transformers_folders_give_transformers_outputs(folders):
    ids = torch.tensor([[1, 5, 7, 2]])
    for name, reference_class in (("hf-gpt2", GPT2LMHeadModel), ("hf-openai-gpt", OpenAIGPTLMHeadModel)):
        reference = reference_class.from_pretrained(folders / name).eval()
        ours = families.load_causal_lm(folders / name).eval()
        with torch.no_grad():
            torch.testing.assert_close(ours(ids).logits, reference(ids).logits)


def test_a_fine_tuned_folder_keeps_its_transformer(folders):
    tuned = GPT1OriginsDoubleHeadsModel.from_pretrained(folders / "gpt1-fine-tuned").eval()
    lm = families.load_causal_lm(folders / "gpt1-fine-tuned").eval()
    ids = torch.tensor([[3, 8, 9, 10]])
    with torch.no_grad():
        hidden = tuned.transformer(ids).last_hidden_state
        torch.testing.assert_close(lm(ids).logits, hidden @ tuned.transformer.tokens_embed.weight.T)


def test_tokenizers_and_their_absence(folders, gpt1_tokenizer):
    assert len(families.load_tokenizer_for(folders / "gpt2-no-tokenizer")) == 50257  # OpenAI's, offline
    assert families.load_tokenizer_for(folders / "gpt1").get_vocab() == gpt1_tokenizer.get_vocab()
    with pytest.raises(RecipeError, match="holds a GPT-1 model but no tokenizer"):
        families.load_tokenizer_for(folders / "gpt1-no-tokenizer")


def test_unknown_models_are_named(folders, tmp_path):
    with pytest.raises(RecipeError, match=r"model_type='bert', which no family here loads; the known model types: "):
        families.family_of(folders / "bert")
    with pytest.raises(RecipeError, match="neither a model folder with a config.json nor a Hub model"):
        families.family_of(tmp_path / "nothing-here")
    with pytest.raises(RecipeError, match="--model_type must be one of gpt2, gpt1, got 'gpt3'"):
        families.preset_model("gpt3", "tiny")
    with pytest.raises(RecipeError, match="--preset '124M': Unknown GPT-1 preset"):
        families.preset_model("gpt1", "124M")


def test_preset_models_are_seeded_and_leave_the_global_random_state_alone():
    state = torch.random.get_rng_state()
    first, second = families.preset_model("gpt1", "tiny", seed=3), families.preset_model("gpt1", "tiny", seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first.transformer.tokens_embed.weight, second.transformer.tokens_embed.weight)
    assert families.preset_model("gpt2", "tiny", seed=4).config.vocab_size == 50257


# ---------------------------------------------------------------------------------------------------------------------
# the recipe


def test_generate_on_random_preset(capsys):
    output = generate.main(["--prompt", "Hello", "--prompt", "A longer prompt", "--max_new_tokens", "4"])
    assert output.shape[0] == 2
    printed = capsys.readouterr().out
    assert "--- 'Hello'" in printed and "tokens/s" in printed


def test_generate_on_a_random_gpt1_preset(capsys):
    output = generate.main(["--model_type", "gpt1", "--prompt", "To be or not", "--max_new_tokens", "3"])
    printed = capsys.readouterr().out
    assert output.shape[0] == 1 and "--- 'To be or not'\nto be or not " in printed  # GPT-1's BPE lower-cases


def test_generate_from_saved_folder_as_a_command(tmp_path):
    torch.manual_seed(0)
    GPT2OriginsLMHeadModel(GPT2OriginsConfig.from_preset("tiny")).save_pretrained(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "recipes.generate", "--model", str(tmp_path), "--max_new_tokens", "3", "--do_sample"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "It was a dark and stormy night" in result.stdout


@pytest.mark.parametrize("name", ["gpt1", "gpt1-fine-tuned"])
def test_generate_from_gpt1_folders(folders, gpt1_tokenizer, capsys, name):
    output = generate.main(["--model", str(folders / name), "--prompt", "the rain fell", "--max_new_tokens", "4"])
    prompt = gpt1_tokenizer("the rain fell", add_special_tokens=False)["input_ids"]
    assert output.shape == (1, len(prompt) + 4) and output[0, : len(prompt)].tolist() == prompt  # no task tokens
    assert "--- 'the rain fell'\nthe rain fell" in capsys.readouterr().out


def test_generate_rejects_bad_length():
    result = subprocess.run(
        [sys.executable, "-m", "recipes.generate", "--max_new_tokens", "0"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "--max_new_tokens must be at least 1, got 0" in result.stderr


def test_a_model_of_the_other_family_is_a_one_line_error(folders, capsys):
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--model", str(folders / "gpt1"), "--model_type", "gpt2"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.endswith("is a gpt1 model, not --model_type gpt2.\n")
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--model", str(folders / "gpt1-no-tokenizer")])
    assert exit_info.value.code == 2 and "no tokenizer" in capsys.readouterr().err
