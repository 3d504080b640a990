"""Local task files (.jsonl / .json / .csv / .tsv / .parquet, compressed or not) read as rows, each row with its line.

A .jsonl, .json, .csv or .tsv file is read line by line first (`_scan_file`), so that what `datasets` would fail on or
misread is named with its line: bytes that are not UTF-8, a line that is not a JSON object, a task field whose JSON
type changes from row to row, a CSV row with more cells than its header.
"""

import codecs
import csv
import json
import os
from pathlib import Path

import fsspec
from datasets import Value, load_dataset

from modeling_gpt1 import TEXT_FIELDS

from ...core.errors import RecipeError
from ..corpus import _COMPRESSIONS, builder_for, check_files_exist
from .parts import Part, rename_columns


def read_files(family, train_files, validation_files, test_files, column_mapping, cache_dir) -> list[Part]:
    layout = {*TEXT_FIELDS[family], "label", "score"}
    # The files' names of the layout's fields: renamed by --column_mapping, or already the layout's.
    fields = frozenset(
        {old for old, new in column_mapping.items() if new in layout} | (layout - {*column_mapping.values()})
    )
    parts = []
    for split, files, option in (
        ("train", train_files, "--train_file"),
        ("validation", validation_files, "--validation_file"),
        ("test", test_files, "--test_file"),
    ):
        check_files_exist(files, option)
        for path in files or []:
            part = _read_file(os.fspath(path), split, option, cache_dir, fields)
            part.rows = rename_columns(part.rows, column_mapping, part.where)
            parts.append(part)
    return parts


def _read_file(path: str, split: str, option: str, cache_dir: str | None, fields: frozenset[str]) -> Part:
    """One local file; `fields` are its columns that become the layout's (whose JSON types `_JsonTypes` checks)."""
    where = f"{option} {path}"
    with open(path, "rb") as file:
        if not file.read(1 << 16).strip():
            raise RecipeError(f"{where} is empty: a {split} file needs at least one row.")
    file_format = _file_format(path, where)
    lines = _scan_file(path, where, file_format, _JsonTypes(where, fields))
    builder, kwargs = ("csv", {"delimiter": "\t"}) if file_format == "tsv" else (builder_for(path), {})
    try:
        rows = load_dataset(builder, data_files=[os.fspath(path)], split="train", cache_dir=cache_dir, **kwargs)
    except Exception as error:  # datasets raises many types for a malformed file; all are bad input here
        raise RecipeError(f"{where} cannot be read as {builder}: {_innermost(error)}") from error
    if rows.num_rows == 0:
        raise RecipeError(f"{where} holds no rows.")
    if builder == "csv" and "choices" in rows.column_names and rows.features["choices"] == Value("string"):
        rows = rows.map(lambda row: {"choices": _json_list(row["choices"])}, desc="Reading choices")
    if lines is not None and len(lines) != rows.num_rows:  # read otherwise than the scan expected: no line numbers
        lines = None
    return Part(split, where, rows, lines)


def _file_format(path: str, where: str) -> str:
    """jsonl, json, csv, tsv or parquet, by extension (through a compression suffix)."""
    name = Path(path).name.lower()
    for suffix in _COMPRESSIONS:
        name = name.removesuffix(suffix)
    for known in ("jsonl", "tsv"):
        if name.endswith(f".{known}"):
            return known
    builder = builder_for(path)
    if builder == "text":
        raise RecipeError(f"{where}: a task needs fields per row; use .jsonl, .json, .csv, .tsv or .parquet.")
    return builder


def _innermost(error: BaseException) -> str:
    """The reader's own error: datasets wraps it in "An error occurred while generating the dataset"."""
    while error.__cause__ is not None:
        error = error.__cause__
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


# ---------------------------------------------------------------------------------------------------------------------
# Text files read line by line before datasets reads them, so that a bad row is named by its line.

_OTHER_ENCODINGS = (  # byte-order marks of files that are not UTF-8; UTF-32's first: it starts like UTF-16's
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "list", dict: "object"}[type(value)]


class _JsonTypes:
    """Each row of a JSON file must be an object, and each of the task's `fields` keep its JSON type from row to row
    (null aside): datasets stores a field as one typed column, and fails on a change or turns a stray 1 among label
    names into "1". Other fields are datasets' business: they are dropped."""

    def __init__(self, where: str, fields: frozenset[str]):
        self.where, self.fields = where, fields
        self.seen: dict[str, tuple[str, str]] = {}  # field -> (its JSON type, the position it was first seen at)

    def check(self, record, position: str):
        """`position`: "line 3" of JSON Lines, "row 2" of a JSON array."""
        if not isinstance(record, dict):
            raise RecipeError(
                f"{self.where}, {position}: a JSON {_json_type(record)} ({record!r:.60}); each row is a JSON object "
                f"of fields."
            )
        for name in self.fields.intersection(record):
            value = record[name]
            kind = _json_type(value)
            if kind == "null":
                continue
            first_kind, first_position = self.seen.setdefault(name, (kind, position))
            if kind != first_kind:
                raise RecipeError(
                    f"{self.where}, {position}: {name!r} is a {kind} ({value!r:.60}), but a {first_kind} at "
                    f"{first_position}: a field must have the same type in every row."
                )


def _scan_file(path: str, where: str, file_format: str, types: _JsonTypes) -> list[int] | None:
    """The 1-based line of each row of a .jsonl / .csv / .tsv file (None for a JSON array or a Parquet file: their
    rows are named by index); a `RecipeError` naming the line for bytes that are not UTF-8 and for rows that datasets
    would fail on or misread (see `_json_rows`, `_JsonTypes`, `_csv_rows`)."""
    unreadable = Path(path).suffix.lower() in _COMPRESSIONS and not fsspec.utils.infer_compression(path)
    if file_format == "parquet" or unreadable:  # binary, or compressed as only datasets' extractors read (.zst, .lz4)
        return None
    lines = _text_lines(path, where)
    if file_format in ("csv", "tsv"):
        return _csv_rows(lines, where, "\t" if file_format == "tsv" else ",")
    if file_format == "jsonl":
        return _json_rows(lines, where, types)
    # A .json file: one JSON document (an array of rows: named by index) or, as datasets also reads it, JSON Lines.
    lines = list(lines)
    text = "".join(line for _, line in lines)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        if text.lstrip().startswith("["):
            raise RecipeError(
                f"{where}, line {error.lineno}, column {error.colno}: not JSON ({error.msg}): a .json file holds a "
                f"JSON array of rows, or one JSON object per line."
            ) from None
        return _json_rows(lines, where, types)
    if isinstance(document, list):
        for index, record in enumerate(document):
            types.check(record, f"row {index}")
    return None


def _text_lines(path: str, where: str):
    """(line number, text) of each line of a text file read as UTF-8 (a UTF-8 byte-order mark is dropped); a
    `RecipeError` naming the line and the byte for bytes that are not UTF-8, UTF-16 and UTF-32 files among them."""

    def advice(encoding: str, note: str = "") -> str:
        return f"save the file as UTF-8 (e.g. `iconv -f {encoding} -t UTF-8 in > out`{note})"

    with fsspec.open(path, "rb", compression="infer") as file:
        for number, raw in enumerate(file, 1):
            if number == 1:
                for mark, encoding in _OTHER_ENCODINGS:
                    if raw.startswith(mark):
                        raise RecipeError(
                            f"{where} is {encoding} (it starts with a {encoding} byte-order mark): {advice(encoding)}."
                        )
                raw = raw.removeprefix(codecs.BOM_UTF8)
            nul = raw.find(b"\x00")
            # NUL is valid UTF-8 but never in text; UTF-16 without a byte-order mark has one in every ASCII character.
            if nul >= 0:
                raise RecipeError(
                    f"{where}, line {number}: byte {nul + 1} is NUL (0x00), which text files do not hold: the file "
                    f"looks UTF-16 (or binary); {advice('UTF-16LE')}."
                )
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise RecipeError(
                    f"{where}, line {number}: byte {error.start + 1} (0x{raw[error.start]:02x}) is not UTF-8 "
                    f"({error.reason}); {advice('LATIN1', ' if it was Latin-1')}."
                ) from None


def _json_rows(lines, where: str, types: _JsonTypes) -> list[int]:
    """The line of each row of a JSON Lines file (blank lines are skipped, as datasets skips them); a `RecipeError`
    naming the line and column of one that is not JSON, and the line of a row that `types` refuses."""
    rows = []
    for number, text in lines:
        if not text.strip():
            continue
        try:
            record = json.loads(text.rstrip("\r\n"))  # columns then count within the line
        except json.JSONDecodeError as error:
            raise RecipeError(
                f"{where}, line {number}, column {error.colno}: not JSON ({error.msg}): each line of a JSON Lines "
                f"file holds one JSON object."
            ) from None
        types.check(record, f"line {number}")
        rows.append(number)
    return rows


def _csv_rows(lines, where: str, delimiter: str) -> list[int] | None:
    """The first line of each row of a CSV / TSV file (a quoted cell may span lines; blank lines are skipped, as
    pandas skips them; the header is not a row); a `RecipeError` for a row with more cells than the header, which
    pandas refuses without naming the file. None if the csv module cannot read it (pandas may: rows by index then)."""
    reader = csv.reader((text for _, text in lines), delimiter=delimiter)
    header, rows, start = None, [], 1
    try:
        for record in reader:
            if record and (len(record) > 1 or record[0].strip()):
                if header is None:
                    header = (len(record), start)
                elif len(record) > header[0]:
                    raise RecipeError(
                        f"{where}, line {start}: {len(record)} cells, but the header (line {header[1]}) has "
                        f"{header[0]}: quote a cell that holds the delimiter {delimiter!r}."
                    )
                else:
                    rows.append(start)
            start = reader.line_num + 1
    except csv.Error:  # e.g. a cell over the csv module's field size limit
        return None
    return rows


def _json_list(cell):
    """A CSV cell holding a JSON list of choices; anything else is left for the row check to name."""
    try:
        value = json.loads(cell) if isinstance(cell, str) else cell
    except json.JSONDecodeError:
        return [cell]
    return value if isinstance(value, list) else [cell]
