"""recipes/prepare_data.py and recipes/data/token_shards.py: the shards hold exactly every document's ids after its
separator (text files by file, line and paragraph, compressed, .jsonl records, a `datasets` stream given by name), a
killed preparation resumes to the same bytes, pre-training reads the shards by memory map and resumes exactly, and
every bad input is refused with a message naming it."""

import json
import lzma
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from modeling_gpt2 import load_gpt2_tokenizer
from recipes import prepare_data, pretrain
from recipes.data import corpus, document_streams, preparation
from recipes.data.token_shards import INDEX, PROGRESS, ShardIndex, ShardWriter, TokenBlocks, token_dtype
from recipes.training import pretraining, pretraining_data

FIXTURE = Path(__file__).parents[1] / "fixtures" / "shakespeare_sample.txt"
REPO = Path(__file__).parents[2]
SEPARATOR = 50256  # GPT-2's <|endoftext|>


@pytest.fixture(scope="module")
def gpt2():
    return load_gpt2_tokenizer()


@pytest.fixture
def small_pieces(monkeypatch):
    """Pieces of 2,000 characters, read 700 at a time: a document of the sample spans many reads and pieces."""
    monkeypatch.setattr(corpus, "PIECE_CHARS", 2000)
    monkeypatch.setattr(document_streams, "PIECE_CHARS", 2000)
    monkeypatch.setattr(document_streams, "READ_CHARS", 700)
    monkeypatch.setattr(document_streams, "CALL_CHARS", 5000)


def documents_of(tmp_path) -> list[str]:
    """Eight documents of the sample, of different lengths, some with blank lines inside."""
    text = FIXTURE.read_text()
    cuts = [0, 300, 9000, 9400, 30000, 31000, 60000, 61000, 120000]
    return [text[start:stop].strip() for start, stop in zip(cuts, cuts[1:])]


def prepare(tmp_path, *args, output="shards"):
    folder = tmp_path / output
    prepare_data.main(["--output_dir", str(folder), *map(str, args)])
    return folder


def stream(folder, split) -> np.ndarray:
    index = ShardIndex.read(folder)
    parts = [np.fromfile(folder / shard["file"], dtype=index.dtype) for shard in index.shards(split)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=index.dtype)


def expected_stream(tokenizer, documents) -> np.ndarray:
    ids = []
    for document in documents:
        ids += [SEPARATOR, *tokenizer(document, add_special_tokens=False)["input_ids"]]
    return np.array(ids)


def whole(folder) -> np.ndarray:
    return np.concatenate([stream(folder, "validation"), stream(folder, "train")])


def write_jsonl(path, documents):
    path.write_text("".join(json.dumps({"text": text, "id": n}) + "\n" for n, text in enumerate(documents)))
    return path


# ---------------------------------------------------------------------------------------------------------------------
# What the shards hold.


def test_jsonl_records_become_separator_and_ids(tmp_path, gpt2, small_pieces):
    documents = documents_of(tmp_path)
    folder = prepare(tmp_path, "--train_file", write_jsonl(tmp_path / "c.jsonl", documents), "--shard_tokens", 4096,
                     "--validation_tokens", 2000)  # fmt: skip
    np.testing.assert_array_equal(whole(folder), expected_stream(gpt2, documents))
    index = json.loads((folder / INDEX).read_text())
    assert index["dtype"] == "<u2" and index["vocab_size"] == 50257 and index["separator_id"] == SEPARATOR
    assert not (folder / PROGRESS).exists() and not list(folder.glob("*.partial"))
    # Held out: whole documents until 2,000 tokens; the training shards take the rest, a shard per ~4,096 tokens.
    validation = stream(folder, "validation")
    lengths = [1 + len(gpt2(d, add_special_tokens=False)["input_ids"]) for d in documents]
    held = next(k for k in range(1, len(lengths) + 1) if sum(lengths[:k]) >= 2000)
    assert len(validation) == sum(lengths[:held])
    assert sum(s["documents"] for s in index["shards"]["validation"]) == held
    assert sum(s["documents"] for s in index["shards"]["train"]) == len(documents) - held
    assert len(index["shards"]["train"]) > 2
    for shard in index["shards"]["train"][:-1]:
        assert shard["tokens"] >= 4096
    # The tokenizer is saved with the ids.
    assert (folder / "tokenizer.json").is_file()


@pytest.mark.parametrize("boundary", ["file", "line", "paragraph"])
@pytest.mark.parametrize("compressed", [False, True])
def test_text_files_are_read_as_streams_by_document_boundary(tmp_path, gpt2, small_pieces, boundary, compressed):
    documents = documents_of(tmp_path)
    paths = []
    for number, pair in enumerate((documents[:4], documents[4:])):
        text = "\n\n  \n".join(pair) + "\n"
        path = tmp_path / f"part{number}.txt"
        if compressed:
            path = path.with_suffix(".txt.xz")
            with lzma.open(path, "wt") as file:
                file.write(text)
        else:
            path.write_text(text)
        paths.append(path)
    folder = prepare(tmp_path, "--train_file", *paths, "--document_boundary", boundary, "--validation_tokens", 2000)
    texts = [path.read_text() if not compressed else lzma.decompress(path.read_bytes()).decode() for path in paths]
    if boundary == "file":
        expected = texts
    elif boundary == "line":
        expected = [line for text in texts for line in text.split("\n") if line.strip()]
    else:
        expected = [part.strip() for text in texts for part in corpus._BLANK_LINES.split(text) if part.strip()]
    np.testing.assert_array_equal(whole(folder), expected_stream(gpt2, expected))


def test_a_long_file_is_cut_into_the_pieces_of_split_text(tmp_path, small_pieces):
    text = FIXTURE.read_text()
    (tmp_path / "a.txt").write_text(text)
    assert list(document_streams.file_pieces(tmp_path / "a.txt", exact=True)) == list(corpus.split_text(text))
    (tmp_path / "blank.txt").write_text(" \n\n \t\n")
    assert list(document_streams.file_pieces(tmp_path / "blank.txt", exact=True)) == []


def test_a_validation_file_goes_to_the_validation_shards(tmp_path, gpt2, small_pieces):
    documents = documents_of(tmp_path)
    train = write_jsonl(tmp_path / "train.jsonl", documents[:6])
    validation = write_jsonl(tmp_path / "validation.jsonl", documents[6:])
    folder = prepare(tmp_path, "--train_file", train, "--validation_file", validation)
    np.testing.assert_array_equal(stream(folder, "validation"), expected_stream(gpt2, documents[6:]))
    np.testing.assert_array_equal(stream(folder, "train"), expected_stream(gpt2, documents[:6]))


def test_a_dataset_by_name_is_streamed_like_a_hub_dataset(tmp_path, gpt2, small_pieces, monkeypatch):
    """`--dataset_name` takes the Hub's code path (`load_dataset(name, streaming=True)`); a local dataset folder is
    what datasets loads the same way a Hub name loads."""
    documents = documents_of(tmp_path)
    dataset = tmp_path / "my-dataset"
    dataset.mkdir()
    write_jsonl(dataset / "train.jsonl", documents[:6])
    write_jsonl(dataset / "validation.jsonl", documents[6:])
    calls = []
    original = document_streams.open_stream
    monkeypatch.setattr(document_streams, "open_stream", lambda *a, **k: calls.append((a, k)) or original(*a, **k))
    options = ["--dataset_name", dataset, "--validation_split_name", "validation", "--max_documents", 3]
    folder = prepare(tmp_path, *options)
    assert all(args == (str(dataset),) for args, _ in calls)
    assert {k["split"] for _, k in calls} == {"train", "validation"}
    np.testing.assert_array_equal(stream(folder, "validation"), expected_stream(gpt2, documents[6:]))
    np.testing.assert_array_equal(stream(folder, "train"), expected_stream(gpt2, documents[:3]))  # --max_documents


def test_gpt1_tokenizer_ids_are_those_of_the_whole_documents(tmp_path, small_pieces):
    from datasets import Dataset

    from recipes.data.tokenizer import train_tokenizer

    documents = documents_of(tmp_path)
    tokenizer = train_tokenizer("gpt1", Dataset.from_dict({"text": documents}), 600)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    folder = prepare(tmp_path, "--train_file", write_jsonl(tmp_path / "c.jsonl", documents), "--tokenizer",
                     tmp_path / "tokenizer", "--validation_tokens", 1000)  # fmt: skip
    separator = tokenizer.bos_token_id
    expected = []
    for document in documents:
        expected += [separator, *tokenizer(document, add_special_tokens=False)["input_ids"]]
    np.testing.assert_array_equal(whole(folder), expected)


def test_dtype_follows_the_vocabulary(tmp_path):
    assert token_dtype(50257) == np.uint16 and token_dtype(65536) == np.uint16 and token_dtype(65537) == np.uint32
    writer = ShardWriter(tmp_path, "train", 0, token_dtype(100_000))
    writer.write(np.array([1, 70_000, 99_999]), documents=1)
    entry = writer.close()
    assert entry["tokens"] == 3 and (tmp_path / "train-00000.bin").stat().st_size == 12
    blocks = TokenBlocks([tmp_path / entry["file"]], np.dtype("<u4"), 3)
    assert blocks[0]["input_ids"].tolist() == [1, 70_000, 99_999]


def test_blocks_are_consecutive_across_shards_and_drop_the_tail(tmp_path):
    ids = np.arange(1000, dtype=np.uint16)
    paths = []
    for number, (start, stop) in enumerate([(0, 300), (300, 310), (310, 1000)]):
        path = tmp_path / f"s{number}.bin"
        ids[start:stop].tofile(path)
        paths.append(path)
    blocks = TokenBlocks(paths, np.uint16, 64)
    assert len(blocks) == 1000 // 64 and blocks.num_rows == len(blocks)
    for index in range(len(blocks)):
        row = blocks[index]["input_ids"]
        assert row.dtype == torch.int64 and row.tolist() == list(range(index * 64, (index + 1) * 64))
    assert blocks[-1]["input_ids"].tolist() == blocks[len(blocks) - 1]["input_ids"].tolist()
    with pytest.raises(IndexError):
        blocks[len(blocks)]
    assert len(blocks.select_first(3)) == 3 and len(blocks.select_first(10**6)) == len(blocks)
    again = pickle.loads(pickle.dumps(blocks))  # a dataloader worker's copy opens its own maps
    assert again._maps is None and again[5]["input_ids"].tolist() == blocks[5]["input_ids"].tolist()


# ---------------------------------------------------------------------------------------------------------------------
# A killed preparation resumes to the same shards.


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no `finally` of the recipe cleans up (it has none)."""


def prepare_killed(tmp_path, args, at_write: int):
    """`prepare` stopped (as by SIGKILL) at the `at_write`-th ShardWriter.write call of the run."""
    original, calls = ShardWriter.write, {"n": 0}

    def write(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == at_write:
            raise Killed
        return original(self, *a, **k)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ShardWriter, "write", write)
        with pytest.raises(Killed):
            prepare(tmp_path, *args)


@pytest.mark.parametrize("source", ["txt", "jsonl"])
@pytest.mark.parametrize("where", ["mid_shard", "after_rename"])
def test_killed_preparation_resumes_to_the_same_shards(tmp_path, small_pieces, monkeypatch, source, where):
    documents = documents_of(tmp_path)
    if source == "txt":  # a short file held out, then one long document: the kill falls inside it
        (tmp_path / "a.txt").write_text(documents[1])
        (tmp_path / "b.txt").write_text(FIXTURE.read_text()[:120000])
        args = ["--train_file", tmp_path / "a.txt", tmp_path / "b.txt"]
    else:
        args = ["--train_file", write_jsonl(tmp_path / "c.jsonl", documents)]
    args += ["--shard_tokens", 2048, "--validation_tokens", 1500]
    reference = prepare(tmp_path, *args, output="reference")

    if where == "mid_shard":
        prepare_killed(tmp_path, args, at_write=40)
    else:  # the shard is renamed into place, the progress not yet written
        original, calls = preparation.write_json_atomically, {"n": 0}

        def write_json(path, content):
            if path.name == PROGRESS:
                calls["n"] += 1
                if calls["n"] == 4:
                    raise Killed
            return original(path, content)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(preparation, "write_json_atomically", write_json)
            with pytest.raises(Killed):
                prepare(tmp_path, *args)
    assert (tmp_path / "shards" / PROGRESS).is_file() and not (tmp_path / "shards" / INDEX).exists()
    with pytest.raises(Exception, match="has not finished"):
        ShardIndex.read(tmp_path / "shards")
    prepare(tmp_path, *args)
    folder = tmp_path / "shards"
    assert json.loads((folder / INDEX).read_text())["shards"] == json.loads((reference / INDEX).read_text())["shards"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in reference.iterdir())
    for path in reference.glob("*.bin"):
        assert (folder / path.name).read_bytes() == path.read_bytes(), path.name


def test_resume_continues_a_stream_from_its_state(tmp_path, small_pieces, monkeypatch):
    """A datasets stream resumes from its own `state_dict()`: the records before it are not read again."""
    documents = documents_of(tmp_path)
    args = ["--train_file", write_jsonl(tmp_path / "c.jsonl", documents), "--shard_tokens", 2048]
    args += ["--validation_tokens", 1500]
    reference = prepare(tmp_path, *args, output="reference")
    prepare_killed(tmp_path, args, at_write=60)
    position = json.loads((tmp_path / "shards" / PROGRESS).read_text())["position"]
    assert position["state"]["stream"]  # the stream's own state
    loaded = []
    original_load = document_streams.Records.documents

    def documents_seen(self, state):
        for item in original_load(self, state):
            loaded.append(item)
            yield item

    monkeypatch.setattr(document_streams.Records, "documents", documents_seen)
    prepare(tmp_path, *args)
    assert 0 < len(loaded) < len(documents)
    assert stream(tmp_path / "shards", "train").tobytes() == stream(reference, "train").tobytes()


# ---------------------------------------------------------------------------------------------------------------------
# Bad input: a one-line error naming the value, nothing of the user's written over.


def fails_with(args, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        prepare_data.main([*map(str, args)])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_bad_options_are_refused(tmp_path, capsys):
    corpus_file = write_jsonl(tmp_path / "c.jsonl", ["a b c"])
    out = ["--output_dir", tmp_path / "out"]
    assert "--shard_tokens must be at least 1024, got 10" in fails_with([*out, "--shard_tokens", 10], capsys)
    assert "--validation_tokens must be at least 1" in fails_with([*out, "--validation_tokens", 0], capsys)
    assert "--max_documents must be at least 1" in fails_with([*out, "--max_documents", 0], capsys)
    assert "either --train_file or --dataset_name" in fails_with(
        [*out, "--train_file", corpus_file, "--dataset_name", "x"], capsys
    )
    assert "--validation_split_name names a split of a Hub dataset" in fails_with(
        [*out, "--train_file", corpus_file, "--validation_split_name", "validation"], capsys
    )
    assert "give --output_dir" in fails_with(["--train_file", corpus_file], capsys)
    assert "give the corpus" in fails_with(out, capsys)
    assert "'missing.jsonl' does not exist" in fails_with([*out, "--train_file", "missing.jsonl"], capsys)
    (tmp_path / "c.docx").write_text("x")
    assert "the extension '.docx' is none of" in fails_with([*out, "--train_file", tmp_path / "c.docx"], capsys)
    err = fails_with([*out, "--train_file", corpus_file, "--document_boundary", "line"], capsys)
    assert "--document_boundary line splits text files" in err
    err = fails_with([*out, "--train_file", corpus_file, "--text_column", "body"], capsys)
    assert "has no column 'body' (columns: text, id)" in err
    assert not (tmp_path / "out" / INDEX).exists()


def test_a_corpus_all_held_out_is_refused(tmp_path, capsys):
    corpus_file = write_jsonl(tmp_path / "c.jsonl", ["a few words", "and a few more"])
    err = fails_with(["--output_dir", tmp_path / "out", "--train_file", corpus_file], capsys)
    assert "The train split holds no tokens" in err and "smaller --validation_tokens" in err


def test_nothing_saved_is_written_over(tmp_path, capsys, small_pieces):
    documents = documents_of(tmp_path)
    corpus_file = write_jsonl(tmp_path / "c.jsonl", documents)
    args = ["--train_file", corpus_file, "--validation_tokens", 1000]
    folder = prepare(tmp_path, *args)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    err = fails_with(["--output_dir", folder, *args], capsys)
    assert "holds a finished preparation (index.json)" in err and "--overwrite_output_dir" in err
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    prepare(tmp_path, *args, "--overwrite_output_dir")  # explicitly: prepared again, the same
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before

    other = tmp_path / "theirs"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    err = fails_with(["--output_dir", other, *args, "--overwrite_output_dir"], capsys)
    assert "holds other files (notes.txt) and no preparation" in err and (other / "notes.txt").read_text() == "mine"


def test_an_unfinished_preparation_resumes_only_with_the_same_settings(tmp_path, capsys, small_pieces, monkeypatch):
    documents = documents_of(tmp_path)
    corpus_file = write_jsonl(tmp_path / "c.jsonl", documents)
    args = ["--train_file", corpus_file, "--validation_tokens", 1000, "--shard_tokens", 2048]
    prepare_killed(tmp_path, args, at_write=40)
    folder = tmp_path / "shards"
    err = fails_with(["--output_dir", folder, *args[:-1], 4096], capsys)
    assert "holds an unfinished preparation with other settings (changed: shard_tokens)" in err
    os.utime(corpus_file, ns=(1, 1))  # the corpus file changed since
    err = fails_with(["--output_dir", folder, *args], capsys)
    assert "(changed: train_file)" in err


# ---------------------------------------------------------------------------------------------------------------------
# Pre-training on token shards.

TINY = [
    "--preset", "tiny", "--config_overrides", "n_layer=2,n_embd=32,n_head=2", "--block_size", "32",
    "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2", "--logging_steps", "1",
    "--eval_steps", "4", "--max_eval_samples", "8", "--num_samples", "1", "--sample_length", "4",
    "--no-with_tracking",
]  # fmt: skip


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("shards")
    (tmp_path / "c.txt").write_text(FIXTURE.read_text()[:20000])
    folder = tmp_path / "shards"
    with pytest.MonkeyPatch.context() as patch:  # calls of 2,000 characters: several shards of ~1,024 tokens
        patch.setattr(document_streams, "CALL_CHARS", 2000)
        prepare_data.main(["--train_file", str(tmp_path / "c.txt"), "--output_dir", str(folder), "--shard_tokens",
                           "1024", "--validation_tokens", "600", "--document_boundary", "paragraph"])  # fmt: skip
    return folder


def run_pretrain(args, kill_at_optimizer_step=None):
    runner = textwrap.dedent(
        f"""
        import os, signal, sys, torch
        calls, original = 0, torch.optim.AdamW.step
        def step(self, *args, **kwargs):
            global calls
            calls += 1
            if calls == {kill_at_optimizer_step!r}:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, *args, **kwargs)
        torch.optim.AdamW.step = step
        from recipes import pretrain
        pretrain.main(sys.argv[1:])
        """
    )
    return subprocess.run(
        [sys.executable, "-c", runner, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=REPO
    )


def test_pretraining_reads_the_shards_and_resumes_exactly(shards, tmp_path):
    index = ShardIndex.read(shards)
    assert len(index.shards("train")) > 2  # blocks span shard boundaries
    args = [*TINY, "--token_shards", shards, "--max_steps", "8", "--checkpointing_steps", "4"]
    straight = run_pretrain([*args, "--output_dir", tmp_path / "straight"])
    assert straight.returncode == 0, straight.stderr[-3000:]
    train_blocks = index.tokens("train") // 32
    assert f"{train_blocks:,} training blocks of 32 tokens" in straight.stdout
    assert f"{min(8, index.tokens('validation') // 32)} validation blocks" in straight.stdout

    killed = run_pretrain([*args, "--output_dir", tmp_path / "resumed"], kill_at_optimizer_step=7)
    assert killed.returncode == -signal.SIGKILL
    resumed = run_pretrain([*args, "--output_dir", tmp_path / "resumed", "--resume_from_checkpoint", "latest"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 4" in resumed.stdout
    a, b = (
        load_file(tmp_path / "straight" / "model.safetensors"),
        load_file(tmp_path / "resumed" / "model.safetensors"),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    history = [json.loads((tmp_path / run / "history.json").read_text()) for run in ("straight", "resumed")]
    assert [r["loss"] for r in history[0]["train_history"]] == [r["loss"] for r in history[1]["train_history"]]
    # The tokenizer saved with the model is the shards' own.
    assert (tmp_path / "straight" / "tokenizer.json").read_bytes() == (shards / "tokenizer.json").read_bytes()


def test_the_training_batches_are_the_blocks_of_the_shards(shards, tmp_path):
    args = pretrain.parse_args([*TINY, "--token_shards", str(shards), "--output_dir", str(tmp_path / "o")])
    index = ShardIndex.read(shards)
    tokenizer = load_gpt2_tokenizer()

    class One:
        num_processes = 1

    train, validation = pretraining_data.get_blocks(One(), args, tokenizer, index, 32)
    ids = stream(shards, "train")
    assert len(train) == len(ids) // 32
    assert train[7]["input_ids"].tolist() == ids[7 * 32 : 8 * 32].tolist()
    assert validation[0]["input_ids"].tolist() == stream(shards, "validation")[:32].tolist()


@pytest.fixture
def no_training(monkeypatch):
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    monkeypatch.setattr(pretraining, "build_loop", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def pretrain_fails_with(args, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        pretrain.main([*map(str, args), "--no-with_tracking"])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_pretraining_refuses_bad_shards(shards, tmp_path, capsys, no_training):
    out = ["--preset", "tiny", "--output_dir", tmp_path / "out"]
    err = pretrain_fails_with([*out, "--token_shards", tmp_path], capsys)
    assert "is not a folder of token shards (no index.json)" in err
    err = pretrain_fails_with([*out, "--token_shards", shards, "--train_file", FIXTURE], capsys)
    assert "--token_shards is the corpus already: leave out --train_file" in err
    err = pretrain_fails_with([*out, "--token_shards", shards, "--tokenizer", "train"], capsys)
    assert "--tokenizer train learns a vocabulary from text" in err

    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / PROGRESS).write_text("{}")
    err = pretrain_fails_with([*out, "--token_shards", unfinished], capsys)
    assert "its preparation has not finished" in err and "run the same `python -m recipes.prepare_data`" in err

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for path in shards.iterdir():
        (damaged / path.name).write_bytes(path.read_bytes())
    with open(damaged / "train-00001.bin", "r+b") as file:
        file.truncate(10)
    err = pretrain_fails_with([*out, "--token_shards", damaged], capsys)
    assert "train-00001.bin should hold" in err and "but is 10 bytes" in err

    other = tmp_path / "other-tokenizer"
    from datasets import Dataset

    from recipes.data.tokenizer import train_tokenizer

    train_tokenizer("gpt2", Dataset.from_dict({"text": [FIXTURE.read_text()[:5000]]}), 300).save_pretrained(other)
    err = pretrain_fails_with([*out, "--token_shards", shards, "--tokenizer", other], capsys)
    assert "is not the one that wrote the token shards" in err


def test_a_corpus_of_one_long_document_is_held_out_inside_it(tmp_path, gpt2, small_pieces):
    """One text file, one document (the corpus that made `datasets.map` run out of memory): the validation split ends
    at the first piece past twice --validation_tokens, and training takes the rest of the same document."""
    text = FIXTURE.read_text()[:60000]
    (tmp_path / "book.txt").write_text(text)
    folder = prepare(tmp_path, "--train_file", tmp_path / "book.txt", "--validation_tokens", 1000)
    np.testing.assert_array_equal(whole(folder), expected_stream(gpt2, [text]))
    validation, train = stream(folder, "validation"), stream(folder, "train")
    assert 2000 <= len(validation) < 2000 + 1000 and len(train) > 5 * len(validation)  # pieces of 2,000 characters
    index = json.loads((folder / INDEX).read_text())["shards"]
    assert [s["documents"] for s in index["validation"]] == [1] and [s["documents"] for s in index["train"]] == [0]
