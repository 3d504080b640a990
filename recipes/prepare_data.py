"""Tokenise a corpus once into token shards for pre-training at corpus scale (recipes/data/token_shards.py).

The corpus is local files (`--train_file`: .txt read as a stream, one document per file, line or paragraph with
`--document_boundary`; .jsonl/.csv/.parquet one document per record, compressed or not) or a Hub dataset read as a
stream (`--dataset_name`, `--dataset_config_name`, `--dataset_split`), so nothing is copied or cached first. Documents
are cut into pieces of about 16K characters where the tokenizer splits words anyway (the ids are those of the whole
document, recipes/data/corpus.py `split_text`), the pieces go to the `tokenizers` library in calls of about 1 MB of
text,
which it encodes on all cores (`encode_batch_fast`), and the ids are appended to shard files of about
`--shard_tokens` tokens, each document preceded by the separator token (GPT-2's `<|endoftext|>`, GPT-1's `_start_`).
Memory is bounded by one call's text and ids, whatever the corpus' size or its longest document.

The validation shard is `--validation_file` / `--validation_split_name` when given, else the first documents of the
training corpus, up to `--validation_tokens` tokens (whole documents).

A killed run resumes where its last complete shard ended when the same command is run again (progress.json records the
source's position: the documents and pieces done, a streamed Hub dataset's own `state_dict`); a finished folder has an
index.json, and is never written over without `--overwrite_output_dir`.

    python -m recipes.prepare_data --train_file shakespeare sotu --output_dir data/demo-shards
    python -m recipes.prepare_data --config prepare-fineweb-edu-10B          # 10B GPT-2 tokens of FineWeb-Edu
    python -m recipes.pretrain --config pretrain-gpt2-124M --token_shards data/fineweb-edu-10B

Options can also come from a YAML run config (`--config FILE`, recipes/core/arguments.py); the command line overrides
it.
"""

if __name__ == "__main__" and not __package__:  # a script path: `python recipes/prepare_data.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)

import itertools
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import fsspec
import numpy as np
from tokenizers import Tokenizer

from modeling_gpt2 import load_gpt2_tokenizer

from .core.arguments import at_least, parse_arguments
from .core.errors import RecipeError, exit_with_error
from .core.options import option
from .core.run_folder import fingerprint_tokenizer
from .data.corpus import (
    _CUT,
    BUNDLED,
    CALL_CHARS,
    DOCUMENT_BOUNDARIES,
    PIECE_CHARS,
    builder_for,
    check_document_boundary,
    check_files_exist,
    cuts_are_exact,
    resolve_bundled,
    split_text,
)
from .data.token_shards import FORMAT, INDEX, PROGRESS, VERSION, ShardWriter, token_dtype, write_json_atomically
from .data.tokenizer import load_tokenizer

PROG = "python -m recipes.prepare_data"
READ_CHARS = 1 << 20  # a .txt file is read this many characters at a time


@dataclass
class PrepareArguments:
    output_dir: str = option(None, "the folder of shards (written as it goes; resumed if a run was killed)")
    train_file: list[str] | None = option(
        None, ".txt (documents: --document_boundary), .jsonl, .csv, .parquet, or a bundled corpus: shakespeare, sotu"
    )
    validation_file: list[str] | None = option(None, "validation documents (default: the first --validation_tokens)")
    dataset_name: str | None = option(None, "a Hub dataset, read as a stream (instead of files)")
    dataset_config_name: str | None = option(None, "the Hub dataset's configuration")
    dataset_split: str = option("train", "the training split of the Hub dataset")
    validation_split_name: str | None = option(None, "a validation split of the Hub dataset")
    text_column: str = option("text", "the column of .jsonl/.csv/.parquet files and Hub datasets")
    document_boundary: str = option("file", f"{', '.join(DOCUMENT_BOUNDARIES)}: where a .txt file's documents end")
    tokenizer: str = option("gpt2", '"gpt2" (OpenAI\'s vocabulary, offline) or a tokenizer folder or Hub name')
    shard_tokens: int = option(100_000_000, "tokens per shard (a shard ends at the first 1 MB call past it)")
    validation_tokens: int = option(
        1 << 20,
        "without a validation set: the first documents up to this many tokens are held out (whole documents; inside "
        "a document that runs past twice as many)",
    )
    max_documents: int | None = option(None, "read at most this many training documents (a slice of a corpus)")
    overwrite_output_dir: bool = option(False, "delete a finished or different preparation in --output_dir first")

    def __post_init__(self):
        if not self.output_dir:
            raise ValueError("give --output_dir, the folder the shards go to")
        at_least("shard_tokens", self.shard_tokens, 1024)
        at_least("validation_tokens", self.validation_tokens, 1)
        at_least("max_documents", self.max_documents, 1)
        if self.train_file and self.dataset_name:
            raise ValueError("give either --train_file or --dataset_name, not both")
        if self.validation_file and self.validation_split_name:
            raise ValueError("give either --validation_file or --validation_split_name, not both")
        if self.validation_split_name and not self.dataset_name:
            raise ValueError("--validation_split_name names a split of a Hub dataset: use it with --dataset_name")


# --- Sources: documents as iterators of text pieces, with a position to resume from ---------------------------------


def file_pieces(path, exact: bool) -> Iterator[str]:
    """The `split_text` pieces of a whole text file, read `READ_CHARS` at a time: a piece ends at the first cut point
    `PIECE_CHARS` or more after the previous one, which depends only on the two characters around it, so the pieces
    are those of the whole text. Nothing for a file of whitespace only; the whole file as one piece if not `exact`."""
    with fsspec.open(os.fspath(path), "rt", compression="infer", encoding="utf-8") as file:
        if not exact:
            text = file.read()
            if text.strip():
                yield text
            return
        buffer, seen_text = "", False
        while chunk := file.read(READ_CHARS):
            buffer += chunk
            seen_text = seen_text or bool(chunk.strip())
            start = 0
            while seen_text and (cut := _CUT.search(buffer, start + PIECE_CHARS)) is not None:
                yield buffer[start : cut.start()]
                start = cut.start()
            buffer = buffer[start:]
        if seen_text:
            yield buffer


def line_documents(path, boundary: str) -> Iterator[str]:
    """The non-blank lines of a text file (`line`), or its paragraphs between blank lines, stripped (`paragraph`)."""
    with fsspec.open(os.fspath(path), "rt", compression="infer", encoding="utf-8") as file:
        paragraph = []
        for line in file:
            if boundary == "line":
                line = line.rstrip("\r\n")
                if line.strip():
                    yield line
            elif line.strip():
                paragraph.append(line)
            elif paragraph:
                yield "".join(paragraph).strip()
                paragraph = []
        if paragraph:
            yield "".join(paragraph).strip()


class TextFiles:
    """Local .txt files (compressed or not), read as streams: their position is the count of documents done."""

    def __init__(self, files, boundary: str, exact: bool):
        self.files, self.boundary, self.exact = [os.fspath(path) for path in files], boundary, exact

    def documents(self, state: dict | None) -> Iterator[tuple[dict, Iterator[str]]]:
        """(position before the document, its pieces) for each document after `state`."""
        done = (state or {}).get("documents", 0)
        count = 0
        for path in self.files:
            if self.boundary == "file":
                documents = (file_pieces(path, self.exact),)
            else:
                documents = (
                    [text] if not self.exact else split_text(text) for text in line_documents(path, self.boundary)
                )
            for pieces in documents:
                if count >= done:
                    yield {"documents": count}, pieces
                count += 1


class Records:
    """Records of a `datasets` stream: local .jsonl/.csv/.parquet files or a Hub dataset (`streaming=True`). Its
    position is the stream's own `state_dict()` (where it resumes without reading again what came before)."""

    def __init__(self, make_stream, text_column: str, source: str, exact: bool):
        self.make_stream, self.text_column, self.source, self.exact = make_stream, text_column, source, exact

    def documents(self, state: dict | None) -> Iterator[tuple[dict, Iterator[str]]]:
        stream = self.make_stream()
        if state is not None:
            stream.load_state_dict(state["stream"])
        rows = iter(stream)
        while True:
            position = {"stream": stream.state_dict()}
            row = next(rows, None)
            if row is None:
                return
            if self.text_column not in row:
                raise RecipeError(
                    f"{self.source} has no column {self.text_column!r} (columns: {', '.join(row)}): name the text "
                    f"column with --text_column."
                )
            text = row[self.text_column]
            if isinstance(text, str) and text.strip():
                yield position, (split_text(text) if self.exact else iter([text]))


def open_stream(builder_or_name: str, **kwargs):
    from datasets import load_dataset

    try:
        return load_dataset(builder_or_name, streaming=True, **kwargs)
    except (FileNotFoundError, ValueError) as error:
        raise RecipeError(f"Cannot stream {builder_or_name!r} ({kwargs}): {str(error).splitlines()[0]}") from error


def file_sources(files, args, exact: bool) -> list:
    sources = []
    for builder, group in itertools.groupby(files, key=builder_for):
        group = [os.fspath(path) for path in group]
        if builder == "text":
            sources.append(TextFiles(group, args.document_boundary, exact))
        else:
            make = lambda builder=builder, group=group: open_stream(builder, data_files=group, split="train")  # noqa: E731
            sources.append(Records(make, args.text_column, ", ".join(group), exact))
    return sources


def hub_source(args, split: str, exact: bool) -> Records:
    source = args.dataset_name + (f" ({args.dataset_config_name})" if args.dataset_config_name else "")

    def make():
        return open_stream(args.dataset_name, name=args.dataset_config_name, split=split)

    return Records(make, args.text_column, f"{source}, split {split!r}", exact)


def file_signature(files) -> list:
    """Each file's path, size and modification time: a resumed preparation refuses files changed in between."""
    return [[os.fspath(path), os.stat(path).st_size, os.stat(path).st_mtime_ns] for path in files or []]


# --- The preparation -------------------------------------------------------------------------------------------------


def batch_encoder(tokenizer):
    """`encode(texts) -> list of int arrays`, the ids `tokenizer(text, add_special_tokens=False)` gives, by the
    `tokenizers` pipeline itself on all cores (`encode_batch_fast`: ids only, without offsets), truncation off."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a Python tokenizer: transformers' own call
        return lambda texts: [
            np.asarray(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        ]
    backend = Tokenizer.from_str(backend.to_str())
    backend.no_truncation()
    backend.no_padding()
    return lambda texts: [
        np.asarray(encoding.ids) for encoding in backend.encode_batch_fast(texts, add_special_tokens=False)
    ]


class Preparation:
    """The shards written so far and the source position after them: `progress.json`, rewritten (atomically) each
    time a shard is complete."""

    def __init__(self, folder: Path, settings: dict, dtype: np.dtype, shard_tokens: int):
        self.folder, self.settings, self.dtype, self.shard_tokens = folder, settings, dtype, shard_tokens
        self.shards = {"train": [], "validation": []}
        self.position = None  # {"phase", "source", "state", "pieces"}: where the next shard starts
        self.writer = None
        self.written_since = time.perf_counter()

    def load(self, progress: dict):
        self.shards, self.position = progress["shards"], progress["position"]

    def tokens(self, split: str) -> int:
        return sum(shard["tokens"] for shard in self.shards[split]) + (
            self.writer.tokens if self.writer is not None and self.writer.split == split else 0
        )

    def write(self, split: str, ids: np.ndarray, documents: int):
        if self.writer is None or self.writer.split != split:
            self.writer = ShardWriter(self.folder, split, len(self.shards[split]), self.dtype)
        self.writer.write(ids, documents)

    def close_shard(self, position: dict):
        """Ends the open shard (if it holds any token) and records it with the position after it."""
        if self.writer is not None:
            if self.writer.tokens:
                entry = self.writer.close()
                self.shards[self.writer.split].append(entry)
                seconds = time.perf_counter() - self.written_since
                print(
                    f"{entry['file']}: {entry['tokens']:,} tokens, {entry['documents']:,} documents ({seconds:.0f} s)"
                )
            else:
                self.writer.discard()
            self.writer = None
        self.position = position
        self.written_since = time.perf_counter()
        write_json_atomically(
            self.folder / PROGRESS, {"settings": self.settings, "shards": self.shards, "position": position}
        )

    def shard_full(self) -> bool:
        return self.writer is not None and self.writer.tokens >= self.shard_tokens


def check_output_dir(folder: Path, settings: dict, overwrite: bool) -> dict | None:
    """The progress of an unfinished preparation of the same settings in `folder` (to resume), else None for an empty
    or new folder. A finished one, a different one, or a folder of other files is refused (or, with `overwrite`, a
    preparation's files are deleted first)."""
    if not folder.exists():
        return None
    if not folder.is_dir():
        raise RecipeError(f"--output_dir {os.fspath(folder)!r} exists and is not a folder.")
    names = {path.name for path in folder.iterdir()}
    if not names:
        return None
    ours = INDEX in names or PROGRESS in names
    if not ours:
        raise RecipeError(
            f"--output_dir {os.fspath(folder)!r} holds other files ({', '.join(sorted(names)[:5])}) and no "
            f"preparation: give an empty or new folder."
        )
    if overwrite:
        shutil.rmtree(folder)
        return None
    if INDEX in names:
        raise RecipeError(
            f"--output_dir {os.fspath(folder)!r} holds a finished preparation ({INDEX}): give another folder, or "
            f"--overwrite_output_dir to delete it and prepare again."
        )
    progress = json.loads((folder / PROGRESS).read_text())
    if progress.get("settings") != settings:
        before, now = progress.get("settings", {}), settings
        changed = sorted(key for key in {*before, *now} if before.get(key) != now.get(key))
        raise RecipeError(
            f"--output_dir {os.fspath(folder)!r} holds an unfinished preparation with other settings (changed: "
            f"{', '.join(changed)}): run the same command to resume it, or --overwrite_output_dir to start again."
        )
    return progress


def prepare(args: PrepareArguments) -> dict:
    """Writes the shards, the tokenizer and the index into `--output_dir`; returns the index."""
    train_files, validation_files = resolve_bundled(args.train_file), resolve_bundled(args.validation_file)
    if not train_files and not args.dataset_name:
        raise RecipeError(
            f"give the corpus: --train_file (files, or the bundled {', '.join(BUNDLED)}) or --dataset_name"
        )
    check_document_boundary(args.document_boundary, train_files, validation_files, args.dataset_name)
    hint = f"; the bundled corpora are {', '.join(BUNDLED)}"
    check_files_exist(train_files, "--train_file", hint)
    check_files_exist(validation_files, "--validation_file", hint)
    for path in [*(train_files or []), *(validation_files or [])]:
        builder_for(path)  # an unknown extension is refused here
    tokenizer = load_gpt2_tokenizer() if args.tokenizer == "gpt2" else load_tokenizer(args.tokenizer)
    separator = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if separator is None:
        raise RecipeError(f"--tokenizer {args.tokenizer!r} has neither a bos nor an eos token to separate documents.")
    dtype = token_dtype(len(tokenizer))
    exact = cuts_are_exact(tokenizer)
    settings = {
        **{key: value for key, value in asdict(args).items() if key not in ("output_dir", "overwrite_output_dir")},
        "train_file": file_signature(train_files),
        "validation_file": file_signature(validation_files),
        "tokenizer_fingerprint": fingerprint_tokenizer(tokenizer),
        "dtype": dtype.str,
    }
    folder = Path(args.output_dir)
    progress = check_output_dir(folder, settings, args.overwrite_output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for partial in folder.glob("*.partial"):  # a shard a killed run had not finished
        partial.unlink()

    if train_files:
        train_sources = file_sources(train_files, args, exact)
    else:
        train_sources = [hub_source(args, args.dataset_split, exact)]
    if validation_files:
        validation_sources = file_sources(validation_files, args, exact)
    elif args.validation_split_name:
        validation_sources = [hub_source(args, args.validation_split_name, exact)]
    else:
        validation_sources = []
    # Phases: (split, sources, hold out the first --validation_tokens as validation), read one after the other.
    phases = [("validation", validation_sources, False)] if validation_sources else []
    phases.append(("train", train_sources, not validation_sources))

    preparation = Preparation(folder, settings, dtype, args.shard_tokens)
    if progress is not None:
        preparation.load(progress)
        done = {split: sum(shard["tokens"] for shard in shards) for split, shards in preparation.shards.items()}
        written = f"{done['train']:,} training and {done['validation']:,} validation tokens written"
        print(f"Resuming the preparation in {folder}: {written}.")
    encode = batch_encoder(tokenizer)
    started, characters = time.perf_counter(), 0
    start = preparation.position or {"phase": 0, "source": 0, "state": None, "pieces": 0, "documents": 0}
    for phase in range(start["phase"], len(phases)):
        split, sources, hold_out = phases[phase]
        resume = start if phase == start["phase"] else None
        documents = resume["documents"] if resume else 0  # of this phase, begun
        limit = args.max_documents if split == "train" else None
        # Held out: the first documents, whole, until --validation_tokens; inside a document that runs past twice as
        # many (a corpus of one long text), at the first piece past that.
        holding_out = hold_out and not preparation.shards["train"]
        for piece_batch in batches(pieces_of(sources, phase, resume, limit)):
            for piece, ids in zip(piece_batch, encode([piece.text for piece in piece_batch])):
                characters += len(piece.text)
                held = preparation.tokens("validation") if holding_out else 0
                if holding_out and piece.first and held >= args.validation_tokens:
                    preparation.close_shard({**piece.before, "documents": documents})
                    holding_out = False
                elif holding_out and held >= 2 * args.validation_tokens:  # inside a document longer than that
                    preparation.close_shard(
                        {**piece.after, "pieces": piece.after["pieces"] - 1, "documents": documents}
                    )
                    holding_out = False
                if piece.first:
                    ids = np.concatenate(([separator], ids))
                    documents += 1
                preparation.write("validation" if holding_out else split, ids, int(piece.first))
            if preparation.shard_full():  # a shard ends at the end of a call
                preparation.close_shard({**piece_batch[-1].after, "documents": documents})
        preparation.close_shard({"phase": phase + 1, "source": 0, "state": None, "pieces": 0, "documents": 0})

    tokens = {split: sum(shard["tokens"] for shard in shards) for split, shards in preparation.shards.items()}
    for split, option_hint in (("train", "give more text or a smaller --validation_tokens"), ("validation", "")):
        if tokens[split] == 0:
            raise RecipeError(
                f"The {split} split holds no tokens ({tokens['train'] + tokens['validation']:,} in all): "
                f"{option_hint or 'give validation text'}."
            )
    tokenizer.save_pretrained(folder)
    index = {
        "format": FORMAT,
        "version": VERSION,
        "dtype": dtype.str,
        "vocab_size": len(tokenizer),
        "separator_id": int(separator),
        "tokenizer_fingerprint": settings["tokenizer_fingerprint"],
        "settings": settings,
        "shards": preparation.shards,
    }
    write_json_atomically(folder / INDEX, index)
    (folder / PROGRESS).unlink()
    seconds = time.perf_counter() - started
    print(
        f"\n{tokens['train']:,} training tokens in {len(preparation.shards['train'])} shard(s), "
        f"{tokens['validation']:,} validation tokens, in {folder}/ ({characters / 1e6 / max(seconds, 1e-9):.2f} M "
        f"characters/s this run)\nPre-train on them: python -m recipes.pretrain --token_shards {folder} --preset 124M"
    )
    return index


@dataclass
class Piece:
    text: str
    first: bool  # the first piece of a document (it gets the separator)
    before: dict  # the position before this piece's document
    after: dict  # the position after this piece


def pieces_of(sources, phase: int, resume: dict | None, max_documents: int | None) -> Iterator[Piece]:
    """The pieces of every document of `sources` in order, from `resume`'s position on (its source, that source's
    state before a document, the pieces of that document already written, the documents begun before it); at most
    `max_documents` documents in all."""
    number = resume["source"] if resume else 0
    state, skip = (resume["state"], resume["pieces"]) if resume else (None, 0)
    begun = resume["documents"] if resume else 0
    for number in range(number, len(sources)):
        for before, pieces in sources[number].documents(state):
            if not skip:  # a new document
                if max_documents is not None and begun >= max_documents:
                    return
                begun += 1
            before = {"phase": phase, "source": number, "state": before, "pieces": 0}
            for done, text in enumerate(pieces, start=1):
                if done > skip:
                    yield Piece(text, done == 1, before, {**before, "pieces": done})
            skip = 0
        state = None


def batches(pieces: Iterator[Piece]) -> Iterator[list[Piece]]:
    """Pieces in calls of about `CALL_CHARS` characters."""
    batch, chars = [], 0
    for piece in pieces:
        if batch and chars + len(piece.text) > CALL_CHARS:
            yield batch
            batch, chars = [], 0
        batch.append(piece)
        chars += len(piece.text)
    if batch:
        yield batch


def parse_args(argv=None) -> PrepareArguments:
    (args,) = parse_arguments([PrepareArguments], argv, prog=PROG, description=__doc__)
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        return prepare(args)
    except RecipeError as error:
        exit_with_error(PROG, error)


if __name__ == "__main__":
    main()
