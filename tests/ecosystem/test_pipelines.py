"""transformers' pipelines on saved gpt-origins folders (model + tokenizer), as a user runs them:
`pipeline("text-generation", model=folder)` on GPT-2 and GPT-1 LMs, `pipeline("text-classification", model=folder)` on
GPT-1 double-heads classification and entailment models. Each pipeline's output is checked against a direct call of
the model: greedy tokens equal `model.generate`'s, the label is the argmax of the model's logits.

What a user needs to know:
- GPT-2: `load_gpt2_tokenizer()` (OpenAI's vocabulary, offline) saved next to the weights; the pipeline left-pads a
  batch by itself.
- GPT-1: its tokenizer's template writes the fine-tuning input (`_start_ text _classify_`). A text-generation
  pipeline uses it too unless told `add_special_tokens=False`: the model then continues after the extract token,
  not after the prompt. Classification and entailment pipelines want the template (the extract token is where the
  task head reads).
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import pipeline

from modeling_gpt1 import (
    ENTAILMENT_LABELS,
    GPT1OriginsConfig,
    GPT1OriginsDoubleHeadsModel,
    GPT1OriginsLMHeadModel,
    train_gpt1_tokenizer_from_files,
)
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel, load_gpt2_tokenizer

CORPUS = Path(__file__).parents[1] / "fixtures" / "shakespeare_sample.txt"
N_POSITIONS = 64
PROMPTS = ["To be, or not to be", "the king is dead"]
SENTIMENT = {0: "negative", 1: "neutral", 2: "positive"}


@pytest.fixture(scope="module")
def gpt1_tokenizer():
    return train_gpt1_tokenizer_from_files(CORPUS, vocab_size=400, model_max_length=N_POSITIONS)


def built(model_cls, config):
    torch.manual_seed(0)
    model = model_cls(config).eval()
    for name, param in model.named_parameters():  # larger weights than the init: distinct, confident predictions
        if name.endswith("weight") and param.dim() == 2:
            torch.nn.init.normal_(param, std=0.3)
    return model


def saved(model, tokenizer, folder):
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    config = GPT2OriginsConfig.from_preset("tiny", n_embd=32, n_head=2, n_positions=N_POSITIONS)  # 50,257 tokens
    model = built(GPT2OriginsLMHeadModel, config)
    return model, saved(model, load_gpt2_tokenizer(), tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="module")
def gpt1_lm_folder(gpt1_tokenizer, tmp_path_factory):
    config = GPT1OriginsConfig.from_preset(
        "tiny", n_embd=32, n_head=2, n_positions=N_POSITIONS, vocab_size=len(gpt1_tokenizer), pad_token_id=3
    )
    model = built(GPT1OriginsLMHeadModel, config)
    return model, saved(model, gpt1_tokenizer, tmp_path_factory.mktemp("gpt1_lm"))


def gpt1_classifier(tokenizer, folder, task_type, id2label):
    config = GPT1OriginsConfig.from_preset(
        "tiny",
        n_embd=32,
        n_head=2,
        n_positions=N_POSITIONS,
        vocab_size=len(tokenizer),
        task_type=task_type,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={label: i for i, label in id2label.items()},
        extract_token_id=tokenizer.cls_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = built(GPT1OriginsDoubleHeadsModel, config)
    return model, saved(model, tokenizer, folder)


@pytest.fixture(scope="module")
def gpt1_classification_folder(gpt1_tokenizer, tmp_path_factory):
    return gpt1_classifier(gpt1_tokenizer, tmp_path_factory.mktemp("gpt1_cls"), "classification", SENTIMENT)


def greedy(model, tokenizer, prompt, max_new_tokens, **encode_kwargs):
    enc = tokenizer(prompt, return_tensors="pt", **encode_kwargs)
    with torch.no_grad():
        out = model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    return out[0].tolist()


def test_gpt2_text_generation_equals_generate(gpt2_folder):
    model, folder = gpt2_folder
    generator = pipeline("text-generation", model=folder, device="cpu")
    assert isinstance(generator.model, GPT2OriginsLMHeadModel)
    tokenizer = generator.tokenizer
    for prompt in PROMPTS:
        expected = greedy(model, tokenizer, prompt, 8)
        out = generator(prompt, max_new_tokens=8, do_sample=False, return_tensors=True)
        assert out[0]["generated_token_ids"] == expected
        text = generator(prompt, max_new_tokens=8, do_sample=False)[0]["generated_text"]
        assert text == tokenizer.decode(expected, skip_special_tokens=True) and text.startswith(prompt)
    # A batch: the pipeline left-pads it (padding_side="left"), and each row generates what it does alone.
    assert tokenizer.padding_side == "left"
    batch = generator(PROMPTS, max_new_tokens=8, do_sample=False, batch_size=2)
    alone = [generator(prompt, max_new_tokens=8, do_sample=False) for prompt in PROMPTS]
    assert batch == alone


def test_gpt1_text_generation_equals_generate(gpt1_lm_folder):
    model, folder = gpt1_lm_folder
    generator = pipeline("text-generation", model=folder, device="cpu")
    assert isinstance(generator.model, GPT1OriginsLMHeadModel)
    tokenizer = generator.tokenizer
    for prompt in PROMPTS:
        # The language-model use: the prompt as plain text, no task tokens.
        expected = greedy(model, tokenizer, prompt, 8, add_special_tokens=False)
        out = generator(prompt, max_new_tokens=8, do_sample=False, return_tensors=True, add_special_tokens=False)
        assert out[0]["generated_token_ids"] == expected
        assert len(expected) == len(tokenizer(prompt, add_special_tokens=False).input_ids) + 8
        text = generator(prompt, max_new_tokens=8, do_sample=False, add_special_tokens=False)[0]["generated_text"]
        assert text.startswith(prompt) and len(text) > len(prompt)
        # The trap: by default the pipeline encodes with the fine-tuning template, so generation starts after
        # `_start_ prompt _classify_`.
        templated = greedy(model, tokenizer, prompt, 8)
        assert templated[0] == tokenizer.bos_token_id and tokenizer.cls_token_id in templated
        assert (
            generator(prompt, max_new_tokens=8, do_sample=False, return_tensors=True)[0]["generated_token_ids"]
            == templated
        )


def check_classifier(model, classifier, inputs):
    """Each pipeline answer is the model's own argmax label and softmax score, alone and in a padded batch."""
    tokenizer = classifier.tokenizer
    for item in inputs:
        enc = tokenizer(item, return_tensors="pt") if isinstance(item, str) else tokenizer(**item, return_tensors="pt")
        with torch.no_grad():
            probs = model(**enc).logits.softmax(-1)[0]
        out = classifier(item)
        if isinstance(out, list):
            out = out[0]
        assert out["label"] == model.config.id2label[int(probs.argmax())]
        assert out["score"] == pytest.approx(float(probs.max()), abs=1e-5)
        every = classifier(item, top_k=None)
        every = every[0] if isinstance(every[0], list) else every
        assert {d["label"]: d["score"] for d in every} == pytest.approx(
            {model.config.id2label[i]: float(p) for i, p in enumerate(probs)}, abs=1e-5
        )
    batch = classifier(inputs, batch_size=len(inputs))  # padded to the longest: the extract token is still found
    alone = [classifier(item) for item in inputs]
    alone = [a[0] if isinstance(a, list) else a for a in alone]
    assert [b["label"] for b in batch] == [a["label"] for a in alone]
    assert [b["score"] for b in batch] == pytest.approx([a["score"] for a in alone], abs=1e-5)
    return [a["label"] for a in alone]


def test_gpt1_text_classification_equals_the_models_argmax(gpt1_classification_folder):
    model, folder = gpt1_classification_folder
    classifier = pipeline("text-classification", model=folder, device="cpu")
    assert isinstance(classifier.model, GPT1OriginsDoubleHeadsModel)
    assert classifier.model.config.task_type == "classification"
    texts = ["a gripping, funny play", "the king is dead", "o horror, horror, horror", "speak, speak"]
    labels = check_classifier(model, classifier, texts)
    assert set(labels) <= set(SENTIMENT.values())


def test_gpt1_entailment_pipeline_takes_text_pairs(gpt1_tokenizer, tmp_path):
    model, folder = gpt1_classifier(gpt1_tokenizer, tmp_path, "entailment", dict(enumerate(ENTAILMENT_LABELS)))
    classifier = pipeline("text-classification", model=folder, device="cpu")
    pairs = [
        {"text": "the king is dead", "text_pair": "the king lived"},
        {"text": "macbeth shall sleep no more", "text_pair": "macbeth is awake"},
    ]
    enc = gpt1_tokenizer(**pairs[0])  # _start_ premise _delimiter_ hypothesis _classify_
    assert gpt1_tokenizer.sep_token_id in enc.input_ids and enc.input_ids[-1] == gpt1_tokenizer.cls_token_id
    check_classifier(model, classifier, pairs)


def test_pipelines_through_remote_code_without_the_package(gpt2_folder, gpt1_classification_folder, tmp_path):
    """A user without gpt-origins: `trust_remote_code=True` loads the code saved in each folder."""
    gpt2_model, gpt2_dir = gpt2_folder
    gpt1_model, gpt1_dir = gpt1_classification_folder
    script = textwrap.dedent(
        f"""
        import json, sys
        from transformers import pipeline
        generator = pipeline("text-generation", model={gpt2_dir!r}, trust_remote_code=True, device="cpu")
        classifier = pipeline("text-classification", model={gpt1_dir!r}, trust_remote_code=True, device="cpu")
        assert not [name for name in sys.modules if name.startswith(("modeling_gpt1", "modeling_gpt2"))]
        out = {{
            "generated": generator({PROMPTS[0]!r}, max_new_tokens=8, do_sample=False, return_tensors=True),
            "classified": classifier({PROMPTS[1]!r}),
            "classes": [type(generator.model).__module__, type(classifier.model).__module__],
        }}
        print(json.dumps(out))
        """
    )
    # Run from an empty folder with the repository off sys.path (pytest's pythonpath puts it there for us only).
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(module.startswith("transformers_modules.") for module in out["classes"]), out["classes"]
    tokenizer = load_gpt2_tokenizer()
    assert out["generated"][0]["generated_token_ids"] == greedy(gpt2_model, tokenizer, PROMPTS[0], 8)
    with torch.no_grad():
        enc = pipeline("text-classification", model=gpt1_dir, device="cpu").tokenizer(PROMPTS[1], return_tensors="pt")
        expected = gpt1_model.config.id2label[int(gpt1_model(**enc).logits.argmax(-1))]
    assert out["classified"][0]["label"] == expected
