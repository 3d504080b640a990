"""The texts and rows a zero-shot task reads: local files or a Hub dataset split, checked before any model loads."""

import os

from datasets import Dataset, concatenate_datasets, load_dataset

from ..core.errors import RecipeError
from ..data.corpus import builder_for, load_documents

DEFAULT_SPLIT = "test"  # of a Hub dataset (--dataset_split)
HUB_OPTIONS = ("dataset_config_name", "dataset_split")  # read with --dataset_name only


def unescape(text: str) -> str:
    """`\\n`, `\\t`, ... typed on a command line, as the characters they stand for."""
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")


def data_source(args) -> str:
    if args.dataset_name:
        return args.dataset_name + "".join(
            f" ({part})" for part in (args.dataset_config_name, args.dataset_split) if part
        )
    return ", ".join(args.data_file)


def load_rows(args) -> Dataset:
    """The records of `--data_file` (.jsonl/.json/.csv/.parquet; .txt = one record per non-empty line, column
    `text`) or of a Hub dataset split, the first `--max_samples` of them."""
    if args.dataset_name:
        rows = load_dataset(args.dataset_name, args.dataset_config_name, split=args.dataset_split)
    else:
        parts = []
        for path in args.data_file:
            builder = builder_for(path)
            part = load_dataset(builder, data_files=[os.fspath(path)], split="train")
            if builder == "text":
                part = part.filter(lambda batch: [bool(text.strip()) for text in batch["text"]], batched=True)
            parts.append(part)
        rows = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    if args.max_samples is not None:
        rows = rows.select(range(min(args.max_samples, rows.num_rows)))
    if rows.num_rows == 0:
        raise RecipeError(f"{data_source(args)} holds no rows.")
    return rows


def load_texts(args) -> list[str]:
    """Perplexity: the documents (recipes/data/corpus.py drops empty ones), or all of them joined with
    `--join_with`."""
    source = {"dataset_name": args.dataset_name, "dataset_config_name": args.dataset_config_name}
    documents = load_documents(args.data_file, **source, train_split=args.dataset_split, text_column=args.text_column)
    documents = documents["train"]
    if args.max_samples is not None:
        documents = documents.select(range(min(args.max_samples, documents.num_rows)))
    texts = list(documents["text"])
    return [unescape(args.join_with).join(texts)] if args.join_with is not None else texts


def row_text(row: dict, column: str, index: int, source: str) -> str:
    text = row.get(column)
    if not isinstance(text, str):
        raise RecipeError(f"{source} row {index + 1} has no text column {column!r} (fields: {', '.join(row)}).")
    if not text.strip():
        raise RecipeError(f"{source} row {index + 1}: the {column!r} text is empty.")
    return text
