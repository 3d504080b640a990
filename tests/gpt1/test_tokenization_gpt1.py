"""The GPT-1 tokenizer: lower-cased `</w>` BPE, the paper's input template, save / AutoTokenizer load, released layout.

A small vocabulary is trained once from the committed Shakespeare fixture (tests/fixtures/README.md).
"""

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from modeling_gpt1.tokenization_gpt1 import (
    DELIMITER_TOKEN,
    EXTRACT_TOKEN,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    START_TOKEN,
    UNK_TOKEN,
    gpt1_tokenizer_from_released,
    train_gpt1_tokenizer,
    train_gpt1_tokenizer_from_files,
)

CORPUS = Path(__file__).parents[1] / "fixtures" / "shakespeare_sample.txt"
VOCAB_SIZE = 800


@pytest.fixture(scope="module")
def tokenizer():
    return train_gpt1_tokenizer_from_files(CORPUS, vocab_size=VOCAB_SIZE)


def ids_of(tokenizer, *tokens):
    return tokenizer.convert_tokens_to_ids(list(tokens))


def test_trained_vocabulary_size_and_special_token_ids(tokenizer):
    assert len(tokenizer) == VOCAB_SIZE
    assert ids_of(tokenizer, *SPECIAL_TOKENS) == [0, 1, 2, 3, 4]  # the trainer puts them first
    assert (tokenizer.bos_token, tokenizer.sep_token, tokenizer.cls_token) == (
        START_TOKEN,
        DELIMITER_TOKEN,
        EXTRACT_TOKEN,
    )
    assert (tokenizer.pad_token, tokenizer.unk_token) == (PAD_TOKEN, UNK_TOKEN)
    assert tokenizer.model_max_length == 512
    assert tokenizer.model_input_names == ["input_ids", "attention_mask"]


def test_single_text_is_start_text_extract(tokenizer):
    text = "Proceed, Solinus, to procure my fall"
    body = tokenizer(text, add_special_tokens=False)["input_ids"]
    encoded = tokenizer(text)
    assert encoded["input_ids"] == ids_of(tokenizer, START_TOKEN) + body + ids_of(tokenizer, EXTRACT_TOKEN)
    assert encoded["attention_mask"] == [1] * (len(body) + 2)
    assert "token_type_ids" not in encoded  # GPT-1 has no segment embeddings


def test_pair_is_start_a_delimiter_b_extract(tokenizer):
    a, b = "Is this a dagger which I see before me?", "The handle toward my hand."
    body_a = tokenizer(a, add_special_tokens=False)["input_ids"]
    body_b = tokenizer(b, add_special_tokens=False)["input_ids"]
    start, delimiter, extract = ids_of(tokenizer, START_TOKEN, DELIMITER_TOKEN, EXTRACT_TOKEN)
    assert tokenizer(a, b)["input_ids"] == [start, *body_a, delimiter, *body_b, extract]
    assert tokenizer.num_special_tokens_to_add(pair=False) == 2
    assert tokenizer.num_special_tokens_to_add(pair=True) == 3


def test_special_token_strings_are_never_split(tokenizer):
    for token in SPECIAL_TOKENS:
        assert tokenizer.tokenize(token) == [token]
    # Real text with "$" and "<e>" (the paper's own symbols for delimiter and extract) is ordinary text.
    assert not set(tokenizer.tokenize("costs $5 <e>")) & set(SPECIAL_TOKENS[:3])


def test_lower_cases_and_strips_accents(tokenizer):
    assert tokenizer.tokenize("The KING of Scotland") == tokenizer.tokenize("the king of scotland")
    assert tokenizer.tokenize("Café") == tokenizer.tokenize("cafe")


def test_word_final_pieces_end_with_end_of_word_suffix(tokenizer):
    for word in ["the", "Macbeth", "Syracusian", "murther", "!", "'"]:
        pieces = tokenizer.tokenize(word)
        assert pieces[-1].endswith("</w>"), (word, pieces)
        assert not any(piece.endswith("</w>") for piece in pieces[:-1]), (word, pieces)
    assert "the</w>" in tokenizer.get_vocab()


def test_unknown_characters_become_unk(tokenizer):
    assert tokenizer.tokenize("☃") == [UNK_TOKEN]


def test_decode_round_trip_of_lower_cased_text(tokenizer):
    lines = [line for line in CORPUS.read_text().splitlines() if len(line) > 30][:50]
    pre_tokenizer = tokenizer.backend_tokenizer.pre_tokenizer
    normalizer = tokenizer.backend_tokenizer.normalizer
    for line in lines:
        words = [word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line))]
        decoded = tokenizer.decode(tokenizer(line)["input_ids"], skip_special_tokens=True)
        assert decoded == " ".join(words)  # the BPE decoder joins words with one space
    assert tokenizer.decode(tokenizer("my lord!")["input_ids"], skip_special_tokens=True) == "my lord !"


def test_truncation_keeps_the_special_tokens(tokenizer):
    long = "To-morrow, and to-morrow, and to-morrow, creeps in this petty pace from day to day"
    start, delimiter, extract = ids_of(tokenizer, START_TOKEN, DELIMITER_TOKEN, EXTRACT_TOKEN)
    single = tokenizer(long, truncation=True, max_length=8)["input_ids"]
    assert len(single) == 8 and single[0] == start and single[-1] == extract
    pair = tokenizer(long, "out, out, brief candle", truncation="longest_first", max_length=9)["input_ids"]
    assert len(pair) == 9 and pair[0] == start and pair[-1] == extract and pair.count(delimiter) == 1


def test_save_and_auto_tokenizer_load_keep_template_and_special_tokens(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    a, b = "What's he that wishes so?", "My cousin Westmoreland?"
    assert loaded(a)["input_ids"] == tokenizer(a)["input_ids"]
    assert loaded(a, b)["input_ids"] == tokenizer(a, b)["input_ids"]
    assert (
        loaded(a, b, truncation=True, max_length=6)["input_ids"]
        == tokenizer(a, b, truncation=True, max_length=6)["input_ids"]
    )
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert loaded.all_special_tokens == tokenizer.all_special_tokens
    assert (loaded.cls_token, loaded.pad_token_id) == (EXTRACT_TOKEN, tokenizer.pad_token_id)
    assert loaded.model_max_length == 512
    assert loaded.model_input_names == ["input_ids", "attention_mask"]


def test_training_from_an_iterator_equals_training_from_files(tokenizer):
    lines = CORPUS.read_text().splitlines(keepends=True)
    from_iterator = train_gpt1_tokenizer(iter(lines), vocab_size=VOCAB_SIZE)
    # The same tokens and merges; ids of equally frequent symbols may come in another order.
    assert set(from_iterator.get_vocab()) == set(tokenizer.get_vocab())
    text = " ".join(lines[200:240])
    assert from_iterator.tokenize(text) == tokenizer.tokenize(text)


def write_released_layout(folder: Path, merges: list[tuple[str, str]]) -> tuple[Path, Path]:
    """A tiny vocabulary in the layout of OpenAI's encoder_bpe_40000.json + vocab_40000.bpe."""
    alphabet = "dehlorw"
    encoder = {symbol: index for index, symbol in enumerate([*alphabet, *(f"{c}</w>" for c in alphabet)])}
    for a, b in merges:
        encoder.setdefault(a + b, len(encoder))
    encoder_json, merges_bpe = folder / "encoder_bpe_40000.json", folder / "vocab_40000.bpe"
    encoder_json.write_text(json.dumps(encoder))
    merges_bpe.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return encoder_json, merges_bpe


MERGES = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o</w>"), ("w", "o"), ("r", "ld</w>"), ("l", "d</w>")]


def test_released_layout_loads_with_special_tokens_after_the_entries(tmp_path):
    encoder_json, merges_bpe = write_released_layout(tmp_path, MERGES[:-2] + MERGES[-1:] + MERGES[-2:-1])
    n_entries = len(json.loads(encoder_json.read_text()))
    released = gpt1_tokenizer_from_released(encoder_json, merges_bpe)
    assert len(released) == n_entries + len(SPECIAL_TOKENS)
    # _start_, _delimiter_, _classify_ at 40478, 40479, 40480 for the real files, as in OpenAI's train.py
    assert ids_of(released, *SPECIAL_TOKENS) == list(range(n_entries, n_entries + len(SPECIAL_TOKENS)))
    assert released.tokenize("Hello World") == ["hello</w>", "wo", "rld</w>"]
    assert released.tokenize("Low!") == ["l", "o", "w</w>", UNK_TOKEN]
    encoded = released("hello", "world")["input_ids"]
    assert released.convert_ids_to_tokens(encoded) == [
        START_TOKEN,
        "hello</w>",
        DELIMITER_TOKEN,
        "wo",
        "rld</w>",
        EXTRACT_TOKEN,
    ]
    assert released.decode(encoded, skip_special_tokens=True) == "hello world"

    released.save_pretrained(tmp_path / "saved")
    loaded = AutoTokenizer.from_pretrained(tmp_path / "saved")
    assert loaded("hello", "world")["input_ids"] == encoded


@pytest.mark.parametrize(
    "edit, match",
    [
        ("merge_line", "line 3: 'l l l'"),
        ("merge_missing", "merge 'x wo' uses 'x'"),
        ("ids_gap", "ids must be 0..15, each once; got 16 distinct ids from 0 to 99"),
        ("special_in_vocab", "_pad_"),
    ],
)
def test_released_layout_errors_name_the_bad_value(tmp_path, edit, match):
    encoder_json, merges_bpe = write_released_layout(tmp_path, MERGES[:2])
    encoder = json.loads(encoder_json.read_text())
    if edit == "merge_line":
        merges_bpe.write_text("#version: 0.2\nh e\nl l l\n")
    elif edit == "merge_missing":
        merges_bpe.write_text("#version: 0.2\nh e\nx wo\n")
    elif edit == "ids_gap":
        encoder["he"] = 99
        encoder_json.write_text(json.dumps(encoder))
    elif edit == "special_in_vocab":
        encoder[PAD_TOKEN] = len(encoder)
        encoder_json.write_text(json.dumps(encoder))
    with pytest.raises(ValueError, match=match):
        gpt1_tokenizer_from_released(encoder_json, merges_bpe)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"texts": ["some text"], "vocab_size": 5}, "vocab_size=5"),
        ({"texts": ["some text"], "vocab_size": 100, "min_frequency": 0}, "min_frequency=0"),
        ({"texts": ["some text"], "vocab_size": 100, "model_max_length": 2}, "model_max_length=2"),
        ({"texts": "one string", "vocab_size": 100}, "'one string'"),
        ({"texts": [], "vocab_size": 100}, "no text"),
    ],
)
def test_training_errors_name_the_bad_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_gpt1_tokenizer(**kwargs)


def test_training_from_a_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        train_gpt1_tokenizer_from_files([CORPUS, tmp_path / "nowhere.txt"], vocab_size=100)
    with pytest.raises(ValueError, match="files is empty"):
        train_gpt1_tokenizer_from_files([], vocab_size=100)
