"""Pre-training corpora of any document size are tokenised in bounded memory, with exactly the ids of the whole text.

recipes/data/corpus.py cuts a long document into pieces where the tokenizer's pre-tokenizer splits anyway (before a
space,
tab or newline that follows a non-space character) and tokenises them a bounded number of characters at a time, into
numpy int32 arrays. Before, a single 50 MB document took 8.3 GB to pack into blocks (a 200 MB one did not fit in
memory). The tests here check that the cut changes no id, for both families' tokenizers, on text with every kind of
whitespace, and measure the peak memory of packing (and of learning a tokenizer from) one long document in a fresh
process. docs/RELIABILITY.md, section "Corpora", lists the same cases.
"""

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken, pre_tokenizers

from modeling_gpt1 import train_gpt1_tokenizer_from_files
from modeling_gpt2 import load_gpt2_tokenizer
from recipes.data import corpus

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "shakespeare_sample.txt"
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
# What could go wrong at a cut: runs of spaces, tabs and newlines (\r\n too), Unicode spaces (no-break, ideographic,
# line separator, \x1c which Python counts as whitespace and `tokenizers` does not), contractions, digits,
# punctuation runs, accents precomposed and combining, other scripts, emoji with modifiers, control characters, and
# the tokenizers' special tokens.
WORDS = ["don't", "I'll", "it's", "'s", "12345", "3.14", "...", "--", "«ok»", "café", "cafe\u0301", "naïve"]
WORDS += ["Ἀθῆναι", "日本語テキスト", "😀👍🏽", "İstanbul", "Straße", "a\x00b", "\ufffd", "<|endoftext|>", "_start_"]
SPACES = [" ", "  ", "   ", "\n", "\n\n", "\t", " \t ", "\r\n", " \n ", "\u00a0", " \u3000", "\u2028", "\x1c ", ""]
TRICKY = st.lists(st.sampled_from([*"ab1.' \t\n\r\u00a0\u3000\x1c\u0301é日😀", "<|endoftext|>"])).map("".join)


@pytest.fixture(scope="module")
def tokenizers():
    return {"gpt2": load_gpt2_tokenizer(), "gpt1": train_gpt1_tokenizer_from_files(FIXTURE, vocab_size=600)}


def tricky_text(chars: int, seed: int = 0) -> str:
    """About `chars` characters: the fixture's words and `WORDS`, between random `SPACES`."""
    rng = random.Random(seed)
    words = FIXTURE.read_text().split() + WORDS * 50
    parts, length = [], 0
    while length < chars:
        part = rng.choice(words) + rng.choice(SPACES)
        parts.append(part)
        length += len(part)
    return "".join(parts)


def shuffled_shakespeare(path: Path, megabytes: float):
    """One document of `megabytes` MB: the fixture again and again, its words shuffled each time (whitespace kept)."""
    parts = re.split(r"(\s+)", FIXTURE.read_text())
    words, rng, written = parts[0::2], random.Random(0), 0
    with path.open("w") as file:
        while written < megabytes * 1e6:
            rng.shuffle(words)
            parts[0::2] = words
            written += file.write("".join(parts))


def ids_in_pieces(tokenizer, text: str) -> list[int]:
    return np.concatenate([ids for _, ids in corpus.encode_pieces(tokenizer, [text])]).tolist()


def whole_ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]


# ------------------------------------------------------------------------------------------------- the cut is exact


@pytest.mark.parametrize("family", ["gpt2", "gpt1"])
def test_corpus_cut_exact_ids(tokenizers, monkeypatch, family):
    """2 MB of tricky text in 256-character pieces, 64 KB per tokenizer call: the ids of the whole text."""
    tokenizer, text = tokenizers[family], tricky_text(2_000_000)
    monkeypatch.setattr(corpus, "PIECE_CHARS", 256)
    monkeypatch.setattr(corpus, "CALL_CHARS", 1 << 16)
    assert corpus.cuts_are_exact(tokenizer)
    pieces = list(corpus.split_text(text))
    assert "".join(pieces) == text and len(pieces) > 5000
    assert ids_in_pieces(tokenizer, text) == whole_ids(tokenizer, text)


@pytest.mark.parametrize("family", ["gpt2", "gpt1"])
def test_corpus_cut_exact_ids_at_every_cut_point(tokenizers, monkeypatch, family):
    """Pieces of one character or more: a cut at every point where one is allowed, on any text of tricky characters."""
    monkeypatch.setattr(corpus, "PIECE_CHARS", 1)
    tokenizer = tokenizers[family]

    @PROPERTY
    @given(text=TRICKY)
    def check(text):
        assert "".join(corpus.split_text(text)) == text
        assert ids_in_pieces(tokenizer, text) == whole_ids(tokenizer, text)

    check()


def test_corpus_cut_refused_where_it_would_change_ids(tokenizers):
    """A tokenizer whose ids a cut would change is tokenised whole: a prefix space (added before every piece), no
    pre-tokenizer regex (the whole text is one word), an added token that strips or holds whitespace."""
    text = tricky_text(3000)
    prefix_space = load_gpt2_tokenizer()
    prefix_space.backend_tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    stripping = load_gpt2_tokenizer()
    stripping.add_tokens([AddedToken("<sep>", rstrip=True)])
    spaced = load_gpt2_tokenizer()
    spaced.add_tokens(["new line\n"])
    metaspace = load_gpt2_tokenizer()
    metaspace.backend_tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    for tokenizer in (prefix_space, stripping, spaced, metaspace):
        assert not corpus.cuts_are_exact(tokenizer)
        assert ids_in_pieces(tokenizer, text) == whole_ids(tokenizer, text)
    # Cut anyway, the prefix space would have changed the ids: the check is needed.
    cut = [token for piece in corpus.split_text(text, 64) for token in whole_ids(prefix_space, piece)]
    assert cut != whole_ids(prefix_space, text)


def test_corpus_packed_blocks_equal_the_whole_stream(tokenizers, monkeypatch):
    """pack_blocks with long documents in pieces: the blocks of the whole documents' stream, each led by its
    separator, as int32 rows."""
    tokenizer = tokenizers["gpt2"]
    monkeypatch.setattr(corpus, "PIECE_CHARS", 512)
    texts = [tricky_text(60_000, seed=1), "A short one.", tricky_text(30_000, seed=2)]
    blocks = corpus.pack_blocks(Dataset.from_dict({"text": texts}), tokenizer, 64, tokenizer.eos_token_id)
    stream = [token for text in texts for token in [tokenizer.eos_token_id, *whole_ids(tokenizer, text)]]
    expected = [stream[start : start + 64] for start in range(0, len(stream) - 63, 64)]
    assert blocks["input_ids"] == expected and blocks.features["input_ids"].feature.dtype == "int32"


def test_corpus_tokenizer_training_reads_pieces(monkeypatch):
    """A tokenizer trainer gets a long document as its pieces, at most `batch_size` at a time; GPT-2's learned
    vocabulary is the one learned from the whole documents."""
    monkeypatch.setattr(corpus, "PIECE_CHARS", 1000)
    documents = corpus.load_documents(train_files=[FIXTURE])["train"]
    batches = list(corpus.iter_text_batches(documents, batch_size=50))
    assert all(len(batch) <= 50 for batch in batches) and len(batches) > 3
    assert "".join(piece for batch in batches for piece in batch) == "".join(documents["text"])
    template = load_gpt2_tokenizer()
    pieces = template.train_new_from_iterator(iter(batches), vocab_size=400, show_progress=False)
    whole = template.train_new_from_iterator([documents["text"]], vocab_size=400, show_progress=False)
    assert pieces.get_vocab() == whole.get_vocab()


# ------------------------------------------------------------------------------------------------------------ memory

MEASURE = """
import json, resource, sys
from modeling_gpt2 import load_gpt2_tokenizer
from recipes.data.corpus import load_documents, pack_blocks
from recipes.data.tokenizer import train_tokenizer

what, path = sys.argv[1], sys.argv[2]
documents = load_documents(train_files=[path])["train"]
tokenizer = load_gpt2_tokenizer()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if what == "pack":
    rows = pack_blocks(documents, tokenizer, 1024, tokenizer.eos_token_id).num_rows
else:
    rows = len(train_tokenizer(what, documents, vocab_size=1000))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_gb": before / 1e6, "peak_gb": peak / 1e6, "rows": rows}))
"""


def peak_memory(tmp_path: Path, what: str, megabytes: float) -> dict:
    """Peak RSS (GB) of a fresh process that packs (or learns a `what` tokenizer from) one document of `megabytes`
    MB, with its own datasets cache; and its peak before the work, once the corpus and the tokenizer are loaded."""
    path = tmp_path / "document.txt"
    shuffled_shakespeare(path, megabytes)
    environment = {"HF_DATASETS_CACHE": str(tmp_path / "cache"), "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, what, str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **environment},
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("what, bound_gb", [("pack", 0.3), ("gpt1", 0.15)])
def test_corpus_long_document_memory(tmp_path, what, bound_gb):
    """One 4 MB document: packing it into blocks adds 0.09 GB to the process's peak (0.75 GB before: the encoding of
    every token at once, then Python lists of ints), learning a GPT-1 tokenizer from it 0.01 GB (0.31 GB before)."""
    measured = peak_memory(tmp_path, what, 4)
    assert measured["rows"] > 0
    assert measured["peak_gb"] - measured["before_gb"] < bound_gb, measured


@pytest.mark.slow
@pytest.mark.parametrize("what", ["pack", "gpt1", "gpt2"])
def test_corpus_long_document_memory_200mb(tmp_path, what):
    """One 200 MB document stays under 2 GB of peak RSS: packing 1.8 GB in 2 minutes on 2 cores (before: 8.3 GB for
    50 MB, and 200 MB did not fit in memory), learning a GPT-1 tokenizer 1.15 GB, a GPT-2 one 1.2 GB."""
    measured = peak_memory(tmp_path, what, 200)
    assert measured["peak_gb"] < 2.0, measured


def test_every_corpus_case_is_in_the_reliability_table(documented_cases):
    ids = {
        "corpus-cut-exact-ids",
        "corpus-cut-exact-ids-at-every-cut-point",
        "corpus-cut-refused-where-it-would-change-ids",
        "corpus-packed-blocks-equal-the-whole-stream",
        "corpus-tokenizer-training-reads-pieces",
        "corpus-long-document-memory",
    }
    assert not ids - documented_cases, f"docs/RELIABILITY.md has no row for {sorted(ids - documented_cases)}"
