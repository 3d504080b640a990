"""Text the tokenizers meet in the wild: empty, very long, lone surrogates, control characters, mixed scripts.

GPT-2's byte-level BPE promises a lossless round trip, decode(encode(text)) == text, for every string. GPT-1's
tokenizer promises the normalised one: text lower-cased, accents stripped, control characters dropped, split into
words and punctuation (BertNormalizer + BertPreTokenizer), which decode joins with single spaces; characters outside
its vocabulary become `<unk>`.
"""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeling_gpt1 import GPT1TaskEncoder, train_gpt1_tokenizer, train_gpt1_tokenizer_from_files
from modeling_gpt2 import load_gpt2_tokenizer

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "shakespeare_sample.txt"
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
MIXED = "Hello мир 世界 مرحبا שלום नमस्ते 🙂 Ünïcödé ﬁ Ⅻ"
CONTROL = "a\x00b\x07\x1b[31mc\x7f\r\n\td\u200be\ufeff"
LONG = "To be, or not to be, that is the question. " * 5000  # 215,000 characters


@pytest.fixture(scope="module")
def gpt2():
    return load_gpt2_tokenizer()


@pytest.fixture(scope="module")
def gpt1():
    return train_gpt1_tokenizer_from_files(FIXTURE, vocab_size=600)


def normalised(tokenizer, text: str) -> str:
    """What GPT-1's decode(encode(text)) promises: the normalised words of `text`, joined by single spaces."""
    backend = tokenizer.backend_tokenizer
    words = backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))
    return " ".join(word for word, _ in words)


# ------------------------------------------------------------------------------------------------------------- GPT-2


@pytest.mark.parametrize(
    "text", ["", " ", CONTROL, MIXED, "<|endoftext|> between <|endoftext|>", "  many   spaces\n\n\n"]
)
def test_gpt2_round_trip_is_lossless(gpt2, text):
    ids = gpt2(text).input_ids
    assert gpt2.decode(ids) == text
    assert all(0 <= token < 50257 for token in ids)


@PROPERTY
@given(text=st.text(max_size=200))
def test_gpt2_round_trip_is_lossless_for_any_text(gpt2, text):
    assert gpt2.decode(gpt2(text).input_ids) == text


def test_gpt2_very_long_text(gpt2):
    ids = gpt2(LONG).input_ids
    assert len(ids) > 1024 and gpt2.decode(ids) == LONG  # encoded in full (with transformers' length warning)
    truncated = gpt2(LONG, truncation=True).input_ids
    assert len(truncated) == gpt2.model_max_length == 1024 and truncated == ids[:1024]


# ------------------------------------------------------------------------------------------------------------- GPT-1


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", ""),
        (CONTROL, "ab [ 31mc de"),  # control and format characters (zero-width space, BOM) dropped; \r\n\t: spaces
        ("Hello, World!  ÉLAN\tnaïve", "hello , world ! elan naive"),
        ("don't...", "don ' t . . ."),
    ],
)
def test_gpt1_round_trip_is_the_normalised_text(gpt1, text, expected):
    ids = gpt1(text, add_special_tokens=False).input_ids
    assert normalised(gpt1, text) == expected
    assert gpt1.decode(ids) == expected


@PROPERTY
@given(data=st.data())
def test_gpt1_round_trip_is_the_normalised_text_for_any_known_characters(gpt1, data):
    vocabulary = gpt1.get_vocab()
    known = sorted(token for token in vocabulary if len(token) == 1 and f"{token}</w>" in vocabulary)  # both forms
    alphabet = "".join(known) + "ABCXYZ ÉÀÜçñ \t\n\x00\x07"  # capitals and accents normalise into the vocabulary
    text = data.draw(st.text(alphabet=alphabet, max_size=120))
    ids = gpt1(text, add_special_tokens=False).input_ids
    assert gpt1.unk_token_id not in ids
    assert gpt1.decode(ids) == normalised(gpt1, text)


def test_gpt1_empty_texts_still_get_the_task_tokens(gpt1):
    start, delimiter, extract = gpt1.bos_token_id, gpt1.sep_token_id, gpt1.cls_token_id
    [a] = gpt1("a", add_special_tokens=False).input_ids
    assert gpt1("").input_ids == [start, extract]
    assert gpt1(["a"], [""]).input_ids == [[start, a, delimiter, extract]]
    assert gpt1("", add_special_tokens=False).input_ids == []
    assert gpt1.decode([]) == ""
    # transformers reads a lone pair whose second text is empty as no pair: the delimiter is lost ...
    assert gpt1("a", "").input_ids == [start, a, extract]
    # ... so the task encoder encodes pairs as a batch of one, and an empty hypothesis keeps its delimiter.
    encoder = GPT1TaskEncoder(gpt1, "entailment")
    assert encoder({"premise": "", "hypothesis": "", "label": 0})["input_ids"] == [start, delimiter, extract]
    assert encoder({"premise": "a", "hypothesis": ""})["input_ids"] == gpt1(["a"], [""]).input_ids[0]


def test_gpt1_mixed_scripts_become_unknown_tokens_not_errors(gpt1):
    ids = gpt1(MIXED, add_special_tokens=False).input_ids
    assert gpt1.unk_token_id in ids
    assert gpt1.decode(ids, skip_special_tokens=True).startswith("hello")  # the known word survives
    assert gpt1.decode(gpt1("hello world", add_special_tokens=False).input_ids) == "hello world"


def test_gpt1_very_long_text_truncates_before_the_extract_token(gpt1):
    ids = gpt1(LONG).input_ids
    assert len(ids) > 512 and gpt1.decode(ids, skip_special_tokens=True) == normalised(gpt1, LONG)
    truncated = gpt1(LONG, truncation=True).input_ids
    assert len(truncated) == 512 and truncated[0] == gpt1.bos_token_id and truncated[-1] == gpt1.cls_token_id


# ------------------------------------------------------------------------------------------------ invalid Unicode


@pytest.mark.parametrize("family", ["gpt2", "gpt1"])
def test_lone_surrogates_are_refused(gpt2, gpt1, family):
    """A lone surrogate (bytes decoded with errors="surrogateescape") cannot be encoded as UTF-8: `tokenizers` refuses
    it with a TypeError that does not name it (transformers' behaviour, documented); GPT-1's task encoder, which
    takes the texts of a dataset, names it."""
    tokenizer = {"gpt2": gpt2, "gpt1": gpt1}[family]
    with pytest.raises(TypeError, match=r"TextEncodeInput must be Union\[TextInputSequence"):
        tokenizer("broken \udcff byte")


def test_lone_surrogates_in_task_examples_are_named(gpt1):
    encoder = GPT1TaskEncoder(gpt1, "entailment")
    with pytest.raises(ValueError, match=r"Field 'hypothesis' is not valid Unicode: '\\udcff' at index 7 is a lone"):
        encoder({"premise": "fine", "hypothesis": "broken \udcff byte", "label": 0})
    with pytest.raises(ValueError, match=r"Choice 1 is not valid Unicode: '\\ud800' at index 0"):
        GPT1TaskEncoder(gpt1, "multiple_choice")({"context": "c", "choices": ["a", "\ud800"], "label": 0})


def test_lone_surrogates_in_a_training_corpus_are_named():
    with pytest.raises(UnicodeEncodeError, match=r"can't encode character '\\ud800' in position 4"):
        train_gpt1_tokenizer(["fine", "bad \ud800"], vocab_size=50)


def test_every_text_case_is_in_the_reliability_table(documented_cases):
    ids = {
        "text-empty",
        "text-very-long",
        "text-lone-surrogate",
        "text-lone-surrogate-task-example",
        "text-lone-surrogate-training-corpus",
        "text-control-characters",
        "text-mixed-scripts",
    }
    assert not ids - documented_cases, f"docs/RELIABILITY.md has no row for {sorted(ids - documented_cases)}"
