"""Text corpora for pre-training: documents from local files or the Hub, tokenised and packed into blocks.

Everything here is `datasets`: files load with its builders (compressed files too), tokenisation and packing are
`Dataset.map`, so results are cached on disk and reused by the other processes of a distributed run.

- `load_documents(...)`: a `DatasetDict` of documents with one column, `text`. A `.txt` file is one document, or one
  per non-blank line or per paragraph (`document_boundary`); `.json`/`.jsonl`/`.csv`/`.parquet` files hold one
  document per record (column `text_column`); a Hub dataset is read by name, config and split (`"train[:10%]"`
  slices work).
- `pack_blocks(...)`: every document is tokenised, preceded by a separator token (GPT-2's `<|endoftext|>`, GPT-1's
  `_start_`) and the whole stream is cut into `block_size` blocks; the tail that does not fill a block is dropped
  (once per 1,000 documents, or pieces of a long one). Blocks never need padding, so every micro-batch holds the
  same number of tokens and gradient accumulation equals one large batch.
- `split_text(...)`, `encode_pieces(...)`: a text of any length is tokenised in bounded memory, cut into pieces of
  about `PIECE_CHARS` characters where the tokenizer's pre-tokenizer splits anyway, so the ids are exactly those of
  the whole text. Tokenised at once, a document's `tokenizers` encoding (offsets, token strings and masks of every
  token) and then its Python lists of ints took 8.3 GB for 50 MB of text.
"""

import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, concatenate_datasets, load_dataset
from tokenizers import normalizers, pre_tokenizers

from ..core.errors import RecipeError

# The complete works of Shakespeare (Project Gutenberg modern-spelling texts, public domain), one work per line.
SHAKESPEARE = Path(__file__).parent / "bundled" / "shakespeare.jsonl.xz"
# The US State of the Union addresses 1790-2021 (public domain), one address per line.
SOTU = Path(__file__).parent / "bundled" / "sotu.jsonl.xz"
# The bundled corpora, by the names `--train_file` and `--validation_file` take: a name that is not an existing file
# reads the file here (`--train_file shakespeare sotu` is the demos' corpus; docs/DATA.md says where each comes from).
BUNDLED = {"shakespeare": SHAKESPEARE, "sotu": SOTU}

_COMPRESSIONS = (".xz", ".gz", ".bz2", ".zst", ".lz4")
_BUILDERS = {".txt": "text", ".text": "text", ".md": "text", ".json": "json", ".jsonl": "json"}
_BUILDERS.update({".csv": "csv", ".parquet": "parquet"})

# A long text is tokenised (and fed to a tokenizer trainer) in pieces of about this many characters.
PIECE_CHARS = 1 << 14
# Pieces go to the tokenizer in calls of about this many characters: enough for `tokenizers` to encode them in
# parallel, few enough that the encodings of one call (hundreds of bytes a token) stay small.
CALL_CHARS = 1 << 20
# Where a text may be cut: before an ASCII space, tab or newline that follows a character that is not whitespace.
# Both families' pre-tokenizers start a new word there whatever comes before or after, so the pieces give the words,
# and the ids, of the whole text:
# - GPT-2's byte-level regex (`'s|...| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`) has no pattern that
#   runs from a non-space character into whitespace, and none that looks behind, so the match after the cut is the
#   same in the piece as in the whole text.
# - GPT-1's BERT pre-tokenizer drops every whitespace character as a separator.
# Python's `\S` is stricter than the Unicode class of `tokenizers` (Python also counts \x1c-\x1f as whitespace).
_CUT = re.compile(r"(?<=\S)[ \t\n\r]")
# The pipeline stages for which `_CUT` is exact: normalizers that map each character on its own (a cut character is
# an ASCII starter, which no composition joins to what precedes it), and pre-tokenizers that split at whitespace.
_CUTTABLE_NORMALIZERS = (normalizers.BertNormalizer, normalizers.Lowercase, normalizers.StripAccents)
_CUTTABLE_NORMALIZERS += (normalizers.NFC, normalizers.NFD, normalizers.NFKC, normalizers.NFKD)
_SPLIT_AT_WHITESPACE = (pre_tokenizers.BertPreTokenizer, pre_tokenizers.Whitespace, pre_tokenizers.WhitespaceSplit)
# Documents per batch of the tokenising map (and per write): a batch holds its texts and their ids in memory.
TOKENIZE_BATCH = 100
# Where a text file's documents end (`--document_boundary`): at the end of the file, of every line, or of every
# paragraph. The `datasets` text builder reads by file, line or paragraph; its paragraphs end at "\n\n" only, so they
# are cut again at every blank line (one or more lines of whitespace only) and stripped.
DOCUMENT_BOUNDARIES = ("file", "line", "paragraph")
_SAMPLE_BY = {"file": "document", "line": "line", "paragraph": "paragraph"}
_BLANK_LINES = re.compile(r"\n\s*\n")


def builder_for(path: str | os.PathLike) -> str:
    """The `datasets` builder for a local file, by extension (a compression suffix such as `.xz` is looked through)."""
    name = Path(path).name.lower()
    for compression in _COMPRESSIONS:
        name = name.removesuffix(compression)
    suffix = Path(name).suffix
    if suffix not in _BUILDERS:
        known = ", ".join(sorted(_BUILDERS))
        raise RecipeError(f"Cannot read {os.fspath(path)!r}: the extension {suffix!r} is none of {known}.")
    return _BUILDERS[suffix]


def resolve_bundled(files):
    """`files` with each bundled corpus name (a key of `BUNDLED`, not an existing file) replaced by its path."""
    if not files:
        return files
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    return [BUNDLED[path] if path in BUNDLED and not os.path.exists(path) else path for path in files]


def check_files_exist(files, option: str, hint: str = ""):
    for path in files or []:
        if not os.path.isfile(path):
            raise RecipeError(f"{option} {os.fspath(path)!r} does not exist (or is not a file){hint}.")


def check_document_boundary(document_boundary: str, train_files=None, validation_files=None, dataset_name=None):
    """`document_boundary` is one of `DOCUMENT_BOUNDARIES`, and other than "file" only for text files: a record of a
    .jsonl/.csv/.parquet file or a Hub dataset is a document already. Without `train_files` or `dataset_name`, the
    training file is the bundled corpus, a .jsonl file."""
    train_files, validation_files = resolve_bundled(train_files), resolve_bundled(validation_files)
    if document_boundary not in DOCUMENT_BOUNDARIES:
        raise RecipeError(
            f"--document_boundary must be one of {', '.join(DOCUMENT_BOUNDARIES)}, got {document_boundary!r}."
        )
    if document_boundary == "file":
        return
    if dataset_name:
        raise RecipeError(
            f"--document_boundary {document_boundary} splits text files, but --dataset_name {dataset_name!r} is a Hub "
            f"dataset, whose rows are documents already: leave --document_boundary at file."
        )
    for path in [*(train_files or [SHAKESPEARE]), *(validation_files or [])]:
        builder = builder_for(path)
        if builder != "text":
            raise RecipeError(
                f"--document_boundary {document_boundary} splits text files (.txt, .text, .md), but "
                f"{os.fspath(path)!r} is read by the {builder} builder, one document per record already: leave "
                f"--document_boundary at file, or give text files."
            )


def _paragraphs(batch):
    texts = (piece.strip() for text in batch["text"] for piece in _BLANK_LINES.split(text))
    return {"text": [text for text in texts if text]}


def _load_files(files, text_column: str, cache_dir: str | None, document_boundary: str) -> Dataset:
    parts = []
    for builder, group in itertools.groupby(files, key=builder_for):
        kwargs = {"sample_by": _SAMPLE_BY[document_boundary]} if builder == "text" else {}
        data_files = [os.fspath(path) for path in group]
        part = _text_only(
            load_dataset(builder, data_files=data_files, split="train", cache_dir=cache_dir, **kwargs),
            text_column,
            data_files,
        )
        if builder == "text" and document_boundary == "paragraph":
            part = part.map(_paragraphs, batched=True, remove_columns=["text"], desc="Splitting paragraphs")
        parts.append(part)
    return concatenate_datasets(parts) if len(parts) > 1 else parts[0]


def _text_only(dataset: Dataset, text_column: str, source) -> Dataset:
    if text_column not in dataset.column_names:
        raise RecipeError(
            f"{source} has no column {text_column!r} (columns: {', '.join(dataset.column_names)}): "
            f"name the text column with --text_column."
        )
    dataset = dataset.select_columns([text_column])
    if text_column != "text":
        dataset = dataset.rename_column(text_column, "text")
    return dataset


def load_documents(
    train_files=None,
    validation_files=None,
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    train_split: str = "train",
    validation_split: str | None = None,
    text_column: str = "text",
    cache_dir: str | None = None,
    document_boundary: str = "file",
) -> DatasetDict:
    """Documents to train on: `train` always, `validation` when files or a Hub split are given for it.

    With neither `train_files` nor `dataset_name`, the bundled Shakespeare corpus; `train_files` and
    `validation_files` may name bundled corpora (`BUNDLED`: "shakespeare", "sotu") among their files. A text file is
    one document (`document_boundary="file"`), one per line ("line") or one per paragraph between blank lines
    ("paragraph", stripped); other files and Hub datasets hold one per record, and take only "file". Documents that
    are empty or only whitespace are dropped; a corpus left with none is an error.
    """
    if train_files and dataset_name:
        raise RecipeError("Give either --train_file or --dataset_name, not both.")
    train_files, validation_files = resolve_bundled(train_files), resolve_bundled(validation_files)
    check_document_boundary(document_boundary, train_files, validation_files, dataset_name)
    hint = f"; the bundled corpora are {', '.join(BUNDLED)}"
    check_files_exist(train_files, "--train_file", hint)
    check_files_exist(validation_files, "--validation_file", hint)
    if validation_files and validation_split:
        raise RecipeError("Give either --validation_file or --validation_split_name, not both.")
    splits = {}
    if dataset_name:
        source = f"{dataset_name}" + (f" ({dataset_config_name})" if dataset_config_name else "")
        hub = load_dataset(dataset_name, dataset_config_name, split=train_split, cache_dir=cache_dir)
        splits["train"] = _text_only(hub, text_column, source)
        if validation_split:
            hub = load_dataset(dataset_name, dataset_config_name, split=validation_split, cache_dir=cache_dir)
            splits["validation"] = _text_only(hub, text_column, source)
    else:
        splits["train"] = _load_files(train_files or [SHAKESPEARE], text_column, cache_dir, document_boundary)
        if validation_split:
            raise RecipeError("--validation_split_name names a split of a Hub dataset: use it with --dataset_name.")
    if validation_files:
        splits["validation"] = _load_files(validation_files, text_column, cache_dir, document_boundary)

    for split, documents in splits.items():
        non_empty = documents.filter(
            lambda batch: [bool(text and text.strip()) for text in batch["text"]], batched=True
        )
        if non_empty.num_rows == 0:
            where = train_files if split == "train" else validation_files
            where = ", ".join(map(os.fspath, where)) if where else dataset_name or os.fspath(SHAKESPEARE)
            raise RecipeError(
                f"The {split} corpus is empty: {where} holds {documents.num_rows} document(s) and none has any text."
            )
        splits[split] = non_empty
    return DatasetDict(splits)


def split_text(text: str, size: int | None = None) -> Iterator[str]:
    """`text` in consecutive pieces of at least `size` characters (default `PIECE_CHARS`; the last one shorter), each
    cut where `_CUT` allows: at the first cut point `size` characters or more after the previous cut. A text without
    one stays whole."""
    size = size or PIECE_CHARS
    start = 0
    while len(text) - start > size:
        cut = _CUT.search(text, start + size)
        if cut is None:
            break
        yield text[start : cut.start()]
        start = cut.start()
    yield text[start:]


def cuts_are_exact(tokenizer) -> bool:
    """Whether `tokenizer` gives the pieces of `split_text` the ids of the whole text: a `tokenizers` pipeline whose
    normaliser maps characters one by one and whose pre-tokenizer splits at whitespace (GPT-2's byte-level BPE
    without a prefix space, GPT-1's BERT pre-tokenizer), and no added token that holds whitespace or strips it."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    normalizer, pre_tokenizer = backend.normalizer, backend.pre_tokenizer
    if normalizer is not None and not isinstance(normalizer, _CUTTABLE_NORMALIZERS):
        return False
    byte_level = isinstance(pre_tokenizer, pre_tokenizers.ByteLevel)
    if byte_level and (pre_tokenizer.add_prefix_space or not pre_tokenizer.use_regex):
        return False  # a prefix space would go before every piece; without the regex a text is one word
    if not byte_level and not isinstance(pre_tokenizer, _SPLIT_AT_WHITESPACE):
        return False
    return not any(
        token.lstrip or token.rstrip or re.search(r"\s", token.content)
        for token in tokenizer.added_tokens_decoder.values()
    )


def encode_pieces(tokenizer, texts: list[str]) -> Iterator[tuple[int, np.ndarray]]:
    """(index of the text, int32 ids of one piece of it) for every piece of `texts` in order: the ids of a text's
    pieces joined are `tokenizer(text, add_special_tokens=False)["input_ids"]`. A text is cut by `split_text` when
    `cuts_are_exact(tokenizer)` (else kept whole), and the pieces go to the tokenizer about `CALL_CHARS` characters
    at a time, so memory is bounded whatever the texts' lengths."""
    cut = split_text if cuts_are_exact(tokenizer) else lambda text: [text]
    call, chars = [], 0  # (text index, piece) of the next call

    def encode():
        # verbose=False: documents are longer than the model's context on purpose; they are cut into blocks later.
        pieces = [piece for _, piece in call]
        ids = tokenizer(pieces, add_special_tokens=False, verbose=False, return_attention_mask=False)["input_ids"]
        return [(index, np.asarray(piece_ids, dtype=np.int32)) for (index, _), piece_ids in zip(call, ids)]

    for index, text in enumerate(texts):
        for piece in cut(text):
            if call and chars + len(piece) > CALL_CHARS:
                yield from encode()
                call, chars = [], 0
            call.append((index, piece))
            chars += len(piece)
    if call:
        yield from encode()


def pack_blocks(
    documents: Dataset,
    tokenizer,
    block_size: int,
    separator_id: int,
    num_proc: int | None = None,
    desc: str = "",
) -> Dataset:
    """Tokenises `documents` and packs them into blocks of `block_size` tokens (column `input_ids`, int32), each
    document preceded by `separator_id`.

    Memory is bounded by the longest document, not by ~150 bytes a token: `encode_pieces` tokenises a long document
    piece by piece, each piece's ids become a row of their own (int32 from the tokenizer to the Arrow file: 4 bytes a
    token, where a Python list of ints takes 36), and the packing map reads 1,000 such rows at a time as numpy
    arrays. The tail of each packing batch that does not fill a block is dropped: once per 1,000 documents, or per
    1,000 pieces of about `PIECE_CHARS` characters of a long one.
    """
    separator = np.array([separator_id], dtype=np.int32)

    def tokenize(batch):
        rows, last = [], None
        for index, ids in encode_pieces(tokenizer, batch["text"]):
            rows.append(ids if index == last else np.concatenate((separator, ids)))  # a document's first piece
            last = index
        return {"input_ids": rows}

    def pack(batch):
        stream = np.concatenate(list(batch["input_ids"]))
        usable = len(stream) - len(stream) % block_size
        return {"input_ids": stream[:usable].reshape(-1, block_size)}  # (blocks, block_size)

    tokenized = documents.map(
        tokenize,
        batched=True,
        batch_size=TOKENIZE_BATCH,
        writer_batch_size=TOKENIZE_BATCH,
        remove_columns=documents.column_names,
        num_proc=num_proc,
        desc=f"Tokenizing {desc}",
    )
    blocks = tokenized.with_format("numpy").map(
        pack, batched=True, batch_size=1000, num_proc=num_proc, desc=f"Packing {desc}"
    )
    return blocks.with_format(None)


def split_blocks(blocks: Dataset, validation_fraction: float) -> tuple[Dataset, Dataset]:
    """The first blocks for training, the last `validation_fraction` of them (at least one) held out."""
    if not 0.0 < validation_fraction < 1.0:
        raise RecipeError(f"The validation fraction must be in (0, 1), got {validation_fraction}.")
    n_validation = max(1, round(blocks.num_rows * validation_fraction))
    n_train = blocks.num_rows - n_validation
    if n_train < 1:
        raise RecipeError(
            f"The corpus fills only {blocks.num_rows} block(s): need at least 2, one to train on and one to hold "
            f"out for validation. Give more text or a smaller --block_size."
        )
    return blocks.select(range(n_train)), blocks.select(range(n_train, blocks.num_rows))


def iter_text_batches(documents: Dataset, batch_size: int = 1000):
    """Lists of at most `batch_size` texts, for `tokenizers` trainers; a long document comes as its `split_text`
    pieces (GPT-2's and GPT-1's pre-tokenizers give them the words of the whole, so the counts a trainer learns from
    are the same), so that no batch holds more than `batch_size` x `PIECE_CHARS` characters."""
    batch = []
    for start in range(0, documents.num_rows, batch_size):
        for text in documents[start : start + batch_size]["text"]:
            for piece in split_text(text):
                batch.append(piece)
                if len(batch) == batch_size:
                    yield batch
                    batch = []
    if batch:
        yield batch


__all__ = [
    "DOCUMENT_BOUNDARIES",
    "BUNDLED",
    "SHAKESPEARE",
    "SOTU",
    "builder_for",
    "check_document_boundary",
    "check_files_exist",
    "cuts_are_exact",
    "encode_pieces",
    "load_documents",
    "pack_blocks",
    "split_blocks",
    "split_text",
    "iter_text_batches",
]
