"""A token-shard preparation (`python -m recipes.prepare_data`): a corpus tokenised once into the shard files, the
tokenizer and the index of recipes/data/token_shards.py.

The sources (recipes/data/document_streams.py) are read one after the other in phases: the validation files or split
first when there are any, then the training corpus, whose first documents are held out for validation when there are
none. Pieces go to the `tokenizers` library in calls of about 1 MB of text (`batch_encoder`), and the ids are appended
to shards of about `--shard_tokens` tokens, each document preceded by the separator token. `progress.json` records the
shards written and the source's position after them, so a killed preparation resumes where its last complete shard
ended; a finished one has an index.json, and is never written over without `--overwrite_output_dir`.
"""

import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from modeling_gpt2 import load_gpt2_tokenizer

from ..core.errors import RecipeError
from ..core.run_folder import fingerprint_tokenizer
from .corpus import BUNDLED, builder_for, check_document_boundary, check_files_exist, cuts_are_exact, resolve_bundled
from .document_streams import batches, file_signature, file_sources, hub_source, pieces_of
from .token_shards import FORMAT, INDEX, PROGRESS, VERSION, ShardWriter, token_dtype, write_json_atomically
from .tokenizer import load_tokenizer


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

    def written_tokens(self) -> dict:
        """{split: the tokens of its complete shards}."""
        return {split: sum(shard["tokens"] for shard in shards) for split, shards in self.shards.items()}

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


def corpus_files(args) -> tuple[list | None, list | None]:
    """The training and validation files (the bundled corpora by name), checked before anything is read: a corpus is
    given, `--document_boundary` fits it, and every file exists and has an extension a `datasets` builder reads."""
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
    return train_files, validation_files


def separated_tokenizer(name: str):
    """(the tokenizer `--tokenizer` names, the id of the token before every document: its bos token, else eos)."""
    tokenizer = load_gpt2_tokenizer() if name == "gpt2" else load_tokenizer(name)
    separator = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if separator is None:
        raise RecipeError(f"--tokenizer {name!r} has neither a bos nor an eos token to separate documents.")
    return tokenizer, separator


def preparation_settings(args, train_files, validation_files, tokenizer, dtype: np.dtype) -> dict:
    """What a resumed preparation must share with the one it continues: the options (but the folder's), each file's
    path, size and modification time, the tokenizer's fingerprint and the ids' dtype."""
    return {
        **{key: value for key, value in asdict(args).items() if key not in ("output_dir", "overwrite_output_dir")},
        "train_file": file_signature(train_files),
        "validation_file": file_signature(validation_files),
        "tokenizer_fingerprint": fingerprint_tokenizer(tokenizer),
        "dtype": dtype.str,
    }


def open_output_dir(folder: Path, settings: dict, overwrite: bool) -> dict | None:
    """`check_output_dir`, then the folder made, without the shard a killed run had not finished."""
    progress = check_output_dir(folder, settings, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    for partial in folder.glob("*.partial"):  # a shard a killed run had not finished
        partial.unlink()
    return progress


def read_phases(args, train_files, validation_files, exact: bool) -> list[tuple[str, list, bool]]:
    """The phases of the preparation, read one after the other: (split, sources, hold out the first
    --validation_tokens as validation); the validation set first when there is one."""
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
    phases = [("validation", validation_sources, False)] if validation_sources else []
    phases.append(("train", train_sources, not validation_sources))
    return phases


def write_phases(preparation: Preparation, phases: list, encode, separator: int, args) -> int:
    """Every phase from where the preparation stopped, a shard closed at the end of each; returns the characters
    read."""
    characters = 0
    start = preparation.position or {"phase": 0, "source": 0, "state": None, "pieces": 0, "documents": 0}
    for phase in range(start["phase"], len(phases)):
        split, sources, hold_out = phases[phase]
        resume = start if phase == start["phase"] else None
        documents = resume["documents"] if resume else 0  # of this phase, begun
        limit = args.max_documents if split == "train" else None
        pieces = pieces_of(sources, phase, resume, limit)
        characters += write_pieces(preparation, split, pieces, encode, separator, hold_out, documents, args)
        preparation.close_shard({"phase": phase + 1, "source": 0, "state": None, "pieces": 0, "documents": 0})
    return characters


def write_pieces(preparation: Preparation, split, pieces, encode, separator, hold_out, documents, args) -> int:
    """The ids of `pieces` (one phase's) into the shards of `split`, a separator before each document and a shard
    ended at the end of a call once it is full; the first of them held out for validation if `hold_out`. Returns
    the characters read."""
    characters = 0
    # Held out: the first documents, whole, until --validation_tokens; inside a document that runs past twice as
    # many (a corpus of one long text), at the first piece past that.
    holding_out = hold_out and not preparation.shards["train"]
    for piece_batch in batches(pieces):
        for piece, ids in zip(piece_batch, encode([piece.text for piece in piece_batch])):
            characters += len(piece.text)
            held = preparation.tokens("validation") if holding_out else 0
            if holding_out and piece.first and held >= args.validation_tokens:
                preparation.close_shard({**piece.before, "documents": documents})
                holding_out = False
            elif holding_out and held >= 2 * args.validation_tokens:  # inside a document longer than that
                preparation.close_shard({**piece.after, "pieces": piece.after["pieces"] - 1, "documents": documents})
                holding_out = False
            if piece.first:
                ids = np.concatenate(([separator], ids))
                documents += 1
            preparation.write("validation" if holding_out else split, ids, int(piece.first))
        if preparation.shard_full():  # a shard ends at the end of a call
            preparation.close_shard({**piece_batch[-1].after, "documents": documents})
    return characters


def write_index(preparation: Preparation, tokenizer, separator: int, settings: dict) -> dict:
    """Once both splits hold tokens: the tokenizer saved beside the shards and the index written, which marks the
    preparation finished (its progress.json goes). Returns the index."""
    folder, tokens = preparation.folder, preparation.written_tokens()
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
        "dtype": preparation.dtype.str,
        "vocab_size": len(tokenizer),
        "separator_id": int(separator),
        "tokenizer_fingerprint": settings["tokenizer_fingerprint"],
        "settings": settings,
        "shards": preparation.shards,
    }
    write_json_atomically(folder / INDEX, index)
    (folder / PROGRESS).unlink()
    return index


def prepare(args) -> dict:
    """Writes the shards, the tokenizer and the index into `--output_dir` (recipes/prepare_data.py's options);
    returns the index."""
    train_files, validation_files = corpus_files(args)
    tokenizer, separator = separated_tokenizer(args.tokenizer)
    dtype = token_dtype(len(tokenizer))
    exact = cuts_are_exact(tokenizer)
    settings = preparation_settings(args, train_files, validation_files, tokenizer, dtype)
    folder = Path(args.output_dir)
    progress = open_output_dir(folder, settings, args.overwrite_output_dir)
    phases = read_phases(args, train_files, validation_files, exact)

    preparation = Preparation(folder, settings, dtype, args.shard_tokens)
    if progress is not None:
        preparation.load(progress)
        done = preparation.written_tokens()
        written = f"{done['train']:,} training and {done['validation']:,} validation tokens written"
        print(f"Resuming the preparation in {folder}: {written}.")
    encode = batch_encoder(tokenizer)
    started = time.perf_counter()
    characters = write_phases(preparation, phases, encode, separator, args)
    index = write_index(preparation, tokenizer, separator, settings)
    tokens = preparation.written_tokens()
    seconds = time.perf_counter() - started
    print(
        f"\n{tokens['train']:,} training tokens in {len(preparation.shards['train'])} shard(s), "
        f"{tokens['validation']:,} validation tokens, in {folder}/ ({characters / 1e6 / max(seconds, 1e-9):.2f} M "
        f"characters/s this run)\nPre-train on them: python -m recipes.pretrain --token_shards {folder} --preset 124M"
    )
    return index


__all__ = ["Preparation", "batch_encoder", "check_output_dir", "prepare"]
