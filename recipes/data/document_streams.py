"""The sources of a token-shard preparation (recipes/data/preparation.py): documents read as streams, each an
iterator of text pieces, with a position to resume from.

Local .txt files are read `READ_CHARS` at a time (one document per file, line or paragraph); .jsonl/.csv/.parquet files
and Hub datasets are `datasets` streams (`streaming=True`), one document per record, whose position is the stream's
own `state_dict()`. Documents are cut into the `split_text` pieces of recipes/data/corpus.py (the ids are those of the
whole document), which go to the tokenizer in calls of about `CALL_CHARS` characters (`batches`).
"""

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import fsspec

from ..core.errors import RecipeError
from .corpus import _CUT, CALL_CHARS, PIECE_CHARS, builder_for, split_text

READ_CHARS = 1 << 20  # a .txt file is read this many characters at a time


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
    """`load_dataset(builder_or_name, streaming=True, **kwargs)`; what it cannot read is a `RecipeError`."""
    from datasets import load_dataset

    try:
        return load_dataset(builder_or_name, streaming=True, **kwargs)
    except (FileNotFoundError, ValueError) as error:
        raise RecipeError(f"Cannot stream {builder_or_name!r} ({kwargs}): {str(error).splitlines()[0]}") from error


def file_sources(files, args, exact: bool) -> list:
    """The sources of local files, in order: each run of files of one `datasets` builder is one source (`TextFiles`
    for .txt, else `Records` of a stream)."""
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
    """The split `split` of the Hub dataset `--dataset_name`, read as a stream."""
    source = args.dataset_name + (f" ({args.dataset_config_name})" if args.dataset_config_name else "")

    def make():
        return open_stream(args.dataset_name, name=args.dataset_config_name, split=split)

    return Records(make, args.text_column, f"{source}, split {split!r}", exact)


def file_signature(files) -> list:
    """Each file's path, size and modification time: a resumed preparation refuses files changed in between."""
    return [[os.fspath(path), os.stat(path).st_size, os.stat(path).st_mtime_ns] for path in files or []]


@dataclass
class Piece:
    """A piece of a document's text and the source positions to resume from, before its document and after it."""

    text: str
    first: bool  # the first piece of a document (it gets the separator)
    before: dict  # the position before this piece's document
    after: dict  # the position after this piece


def pieces_of(sources, phase: int, resume: dict | None, max_documents: int | None) -> Iterator[Piece]:
    """The pieces of every document of `sources` in order, from `resume`'s position on (its source, that source's
    state before a document, the pieces of that document already written, the documents begun before it); at most
    `max_documents` documents in all."""
    first = resume["source"] if resume else 0
    state, skip = (resume["state"], resume["pieces"]) if resume else (None, 0)
    begun = resume["documents"] if resume else 0
    for number in range(first, len(sources)):
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


__all__ = [
    "Piece",
    "Records",
    "TextFiles",
    "batches",
    "file_pieces",
    "file_signature",
    "file_sources",
    "hub_source",
    "line_documents",
    "open_stream",
    "pieces_of",
]
