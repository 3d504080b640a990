"""recipes/data/corpus.py `--document_boundary` (a .txt file as one document, one per line or one per paragraph) and
recipes/training/pretraining_samples.py `draw_prompts` (the samples' prompts from the validation blocks when none are
given)."""

import json

import pytest
from datasets import Dataset

from modeling_gpt2 import load_gpt2_tokenizer
from recipes import pretrain, train_tokenizer
from recipes.core.errors import RecipeError
from recipes.data import corpus
from recipes.data import tokenizer as tokenizers_lib
from recipes.data.corpus import load_documents, pack_blocks, split_blocks
from recipes.training import pretraining_data, pretraining_samples

# Blank lines of every kind: empty, spaces and a tab, several in a row; an indented line; no line break at the end.
TEXT = "Alpha one.\nAlpha two.\n\n \t\nBeta, indented:\n    still Beta.\n\n\n\nGamma!"
DOCUMENTS = {
    "file": [TEXT],
    "line": ["Alpha one.", "Alpha two.", "Beta, indented:", "    still Beta.", "Gamma!"],
    "paragraph": ["Alpha one.\nAlpha two.", "Beta, indented:\n    still Beta.", "Gamma!"],
}


@pytest.mark.parametrize("boundary", list(DOCUMENTS))
def test_each_document_boundary_gives_its_documents_each_after_the_separator(tmp_path, boundary):
    (tmp_path / "corpus.txt").write_text(TEXT)
    (tmp_path / "held_out.txt").write_text("Delta.\n\nEpsilon.\n")
    documents = load_documents(
        train_files=[tmp_path / "corpus.txt"],
        validation_files=[tmp_path / "held_out.txt"],
        document_boundary=boundary,
    )
    assert documents["train"]["text"] == DOCUMENTS[boundary]
    validation = {
        "file": ["Delta.\n\nEpsilon.\n"],
        "line": ["Delta.", "Epsilon."],
        "paragraph": ["Delta.", "Epsilon."],
    }
    assert documents["validation"]["text"] == validation[boundary]

    tokenizer = load_gpt2_tokenizer()
    eos = tokenizer.eos_token_id
    blocks = pack_blocks(documents["train"], tokenizer, block_size=1, separator_id=eos)  # no tail to drop
    stream = [token for block in blocks["input_ids"] for token in block]
    expected = []
    for text in DOCUMENTS[boundary]:
        expected += [eos, *tokenizer(text, add_special_tokens=False)["input_ids"]]
    assert stream == expected


def test_a_boundary_for_records_or_an_unknown_one_is_refused_before_anything_is_read(tmp_path, monkeypatch):
    """A row of a .jsonl file or a Hub dataset is a document already; the bundled corpus is a .jsonl file."""
    monkeypatch.setattr(corpus, "load_dataset", lambda *args, **kwargs: pytest.fail("read before the check"))
    (tmp_path / "rows.jsonl").write_text(json.dumps({"text": "a row"}) + "\n")
    (tmp_path / "plain.txt").write_text("text\n")
    with pytest.raises(
        RecipeError, match=r"--document_boundary line splits text files .* but '.*rows\.jsonl' is read"
    ):
        load_documents(train_files=[tmp_path / "plain.txt"], validation_files=[tmp_path / "rows.jsonl"],
                       document_boundary="line")  # fmt: skip
    with pytest.raises(RecipeError, match=r"shakespeare\.jsonl\.xz' is read by the json builder"):
        load_documents(document_boundary="paragraph")
    with pytest.raises(RecipeError, match=r"--dataset_name 'wikitext' is a Hub dataset, whose rows are documents"):
        load_documents(dataset_name="wikitext", document_boundary="paragraph")
    with pytest.raises(RecipeError, match=r"must be one of file, line, paragraph, got 'sentence'"):
        load_documents(train_files=[tmp_path / "plain.txt"], document_boundary="sentence")


@pytest.mark.parametrize(("recipe", "reader"), [(pretrain, pretraining_data), (train_tokenizer, tokenizers_lib)])
def test_both_recipes_check_the_boundary_when_they_read_their_options(tmp_path, capsys, monkeypatch, recipe, reader):
    monkeypatch.setattr(reader, "load_documents", lambda **kwargs: pytest.fail("read before the check"))
    (tmp_path / "rows.jsonl").write_text(json.dumps({"text": "a row"}) + "\n")
    options = ["--train_file", str(tmp_path / "rows.jsonl"), "--output_dir", str(tmp_path / "out")]
    options += ["--preset", "tiny"] if recipe is pretrain else []
    for boundary, message in (
        ("paragraph", "--document_boundary paragraph splits text files (.txt, .text, .md), but '"),
        ("lines", "--document_boundary must be one of file, line, paragraph, got 'lines'."),
    ):
        with pytest.raises(SystemExit) as exit_info:
            recipe.main([*options, "--document_boundary", boundary])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_prompts_are_drawn_from_the_validation_blocks_the_same_for_a_seed():
    tokenizer = load_gpt2_tokenizer()
    eos = tokenizer.eos_token_id
    lines = [f"Training line {i} of the corpus." for i in range(60)]
    lines += [f"Held out line {i} of {word} words." for i, word in enumerate(["many", "few", "odd", "plain"] * 10)]
    blocks = pack_blocks(Dataset.from_dict({"text": lines}), tokenizer, block_size=16, separator_id=eos)
    _, validation = split_blocks(blocks, 0.25)  # about 60% of the held-out lines' tokens
    prompts = pretraining_samples.draw_prompts(validation, tokenizer, eos, 3, seed=0)
    assert len(prompts) == len(set(prompts)) == 3
    assert all(any(line.startswith(prompt) for line in lines[60:]) for prompt in prompts), prompts
    assert all(len(tokenizer(prompt)["input_ids"]) <= pretraining_samples.PROMPT_TOKENS for prompt in prompts)
    assert pretraining_samples.draw_prompts(validation, tokenizer, eos, 3, seed=0) == prompts
    assert pretraining_samples.draw_prompts(validation, tokenizer, eos, 3, seed=1) != prompts
    assert pretraining_samples.draw_prompts(validation, tokenizer, eos, 0, seed=0) == []


def test_a_block_gives_the_first_whole_words_of_a_line():
    tokenizer = load_gpt2_tokenizer()
    eos = tokenizer.eos_token_id

    def prompt(*texts):
        ids = []
        for text in texts:
            ids += [eos] if text is None else tokenizer(text, add_special_tokens=False)["input_ids"]
        return pretraining_samples.block_prompt(tokenizer, ids, eos)

    # The first document that starts in the block; the one before it is cut.
    assert prompt("the end of one.", None, "ROMEO.\nBut soft", None, "next") == "ROMEO."
    # A document cut by the block's end loses its last word, which may be cut too; past 8 tokens, whole words only.
    assert prompt("x", None, "Two words cut") == "Two words"
    assert (
        prompt(None, "One two three four five six seven eight nine ten") == "One two three four five six seven eight"
    )
    # No document starts: from the first line break, else after the first word.
    assert prompt("ing of it\nWhat, ho! Who is there?\n") == "What, ho! Who is there?"
    assert prompt("ing of the whole matter here") == "of the whole matter"
    assert prompt("unbroken") == "" and prompt(None) == "" and prompt("\n\n  \n") == ""
