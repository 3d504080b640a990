"""Text corpora for pre-training: documents from local files or the Hub, tokenised and packed into blocks.

Everything here is `datasets`: files load with its builders (compressed files too), tokenisation and packing are
`Dataset.map`, so results are cached on disk and re-used by the other processes of a distributed run.

- `load_documents(...)`: a `DatasetDict` of documents with one column, `text`. A `.txt` file is one document;
  `.json`/`.jsonl`/`.csv`/`.parquet` files hold one document per record (column `text_column`); a Hub dataset is
  read by name, config and split (`"train[:10%]"` slices work).
- `pack_blocks(...)`: every document is tokenised, preceded by a separator token (GPT-2's `<|endoftext|>`, GPT-1's
  `_start_`) and the whole stream is cut into `block_size` blocks; the tail that does not fill a block is dropped
  (once per 1,000 documents). Blocks never need padding, so every micro-batch holds the same number of tokens and
  gradient accumulation equals one large batch.
- `split_blocks(...)`: the held-out validation blocks are the LAST ones of the stream (not a random sample), so on
  a corpus of several works they are mostly a work the model never trained on.
"""

import itertools
import os
from pathlib import Path

from datasets import Dataset, DatasetDict, concatenate_datasets, load_dataset

from .errors import RecipeError

# The complete works of Shakespeare (Project Gutenberg modern-spelling texts, public domain), one work per line.
SHAKESPEARE = Path(__file__).parent / "data" / "shakespeare.jsonl.xz"

_COMPRESSIONS = (".xz", ".gz", ".bz2", ".zst", ".lz4")
_BUILDERS = {".txt": "text", ".text": "text", ".md": "text", ".json": "json", ".jsonl": "json"}
_BUILDERS.update({".csv": "csv", ".parquet": "parquet"})


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


def check_files_exist(files, option: str):
    for path in files or []:
        if not os.path.isfile(path):
            raise RecipeError(f"{option} {os.fspath(path)!r} does not exist (or is not a file).")


def _load_files(files, text_column: str, cache_dir: str | None) -> Dataset:
    parts = []
    for builder, group in itertools.groupby(files, key=builder_for):
        kwargs = {"sample_by": "document"} if builder == "text" else {}
        data_files = [os.fspath(path) for path in group]
        parts.append(
            _text_only(
                load_dataset(builder, data_files=data_files, split="train", cache_dir=cache_dir, **kwargs),
                text_column,
                data_files,
            )
        )
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
) -> DatasetDict:
    """Documents to train on: `train` always, `validation` when files or a Hub split are given for it.

    With neither `train_files` nor `dataset_name`, the bundled Shakespeare corpus. Documents that are empty or only
    whitespace are dropped; a corpus left with none is an error.
    """
    if train_files and dataset_name:
        raise RecipeError("Give either --train_file or --dataset_name, not both.")
    check_files_exist(train_files, "--train_file")
    check_files_exist(validation_files, "--validation_file")
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
        splits["train"] = _load_files(train_files or [SHAKESPEARE], text_column, cache_dir)
        if validation_split:
            raise RecipeError("--validation_split_name names a split of a Hub dataset: use it with --dataset_name.")
    if validation_files:
        splits["validation"] = _load_files(validation_files, text_column, cache_dir)

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


def pack_blocks(
    documents: Dataset,
    tokenizer,
    block_size: int,
    separator_id: int,
    num_proc: int | None = None,
    desc: str = "",
) -> Dataset:
    """Tokenises `documents` and packs them into blocks of `block_size` tokens (column `input_ids`), each document
    preceded by `separator_id`."""

    def tokenize(batch):
        # verbose=False: documents are longer than the model's context on purpose; they are cut into blocks below.
        return {"input_ids": tokenizer(batch["text"], add_special_tokens=False, verbose=False)["input_ids"]}

    def pack(batch):
        stream = list(itertools.chain.from_iterable([separator_id, *ids] for ids in batch["input_ids"]))
        usable = len(stream) - len(stream) % block_size
        return {"input_ids": [stream[start : start + block_size] for start in range(0, usable, block_size)]}

    tokenized = documents.map(
        tokenize, batched=True, remove_columns=documents.column_names, num_proc=num_proc, desc=f"Tokenizing {desc}"
    )
    blocks = tokenized.map(pack, batched=True, batch_size=1000, num_proc=num_proc, desc=f"Packing {desc}")
    return blocks


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
    """Lists of texts, for `tokenizers` trainers."""
    for start in range(0, documents.num_rows, batch_size):
        yield documents[start : start + batch_size]["text"]


__all__ = [
    "SHAKESPEARE",
    "builder_for",
    "check_files_exist",
    "load_documents",
    "pack_blocks",
    "split_blocks",
    "iter_text_batches",
]
