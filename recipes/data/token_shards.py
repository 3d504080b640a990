"""Token shards: a corpus tokenised once into flat files of token ids, read back by memory map.

A folder written by recipes/prepare_data.py holds:

    index.json               what the shards are: format version, dtype, vocabulary size, separator id, tokenizer
                             fingerprint, and per split the shard files with their token and document counts and sha256
    tokenizer files          the tokenizer that wrote the ids (`save_pretrained`), which pre-training loads with them
    train-00000.bin ...      token ids, little-endian uint16 (a vocabulary of at most 65,536 tokens) or uint32, no
    validation-00000.bin     header: `np.memmap(path, dtype)` reads one; every document follows the separator token
    progress.json            while preparing only: the shards written so far and where the source stands after them

`index.json` is written last: a folder without it is a preparation that has not finished (run the same command again
to resume it). Shards are written as `<name>.partial` and renamed when complete, so a killed run never leaves a shard
that looks whole.

Pre-training (`--token_shards DIR`) cuts each split's shards, taken as one stream, into consecutive blocks of
`block_size` tokens (`TokenBlocks`); a block may span two shards and several documents, and the tail of the stream
that does not fill a block is dropped. Each process reads only the blocks of its own batches (the sampler's), through
the memory map, so memory does not grow with the corpus.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.errors import RecipeError

FORMAT = "gpt-origins-token-shards"
VERSION = 1
INDEX = "index.json"
PROGRESS = "progress.json"
SPLITS = ("train", "validation")


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 where every id fits (a vocabulary of at most 65,536: GPT-2's 50,257, GPT-1's 40,478), else uint32."""
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


def shard_name(split: str, number: int) -> str:
    return f"{split}-{number:05d}.bin"


def write_json_atomically(path: Path, content: dict):
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as file:
        json.dump(content, file, indent=1)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


class ShardWriter:
    """Appends token arrays to `<split>-NNNNN.bin.partial`; `close()` makes it `<split>-NNNNN.bin` and returns its
    entry for the index (file, tokens, documents, sha256)."""

    def __init__(self, folder: Path, split: str, number: int, dtype: np.dtype):
        self.folder, self.split, self.number, self.dtype = folder, split, number, dtype
        self.path = folder / (shard_name(split, number) + ".partial")
        self.file = open(self.path, "wb")  # noqa: SIM115  (open across `write` calls; `close` or `discard` closes it)
        self.sha256 = hashlib.sha256()
        self.tokens = self.documents = 0

    def write(self, ids: np.ndarray, documents: int):
        data = ids.astype(self.dtype, copy=False).tobytes()
        self.file.write(data)
        self.sha256.update(data)
        self.tokens += len(ids)
        self.documents += documents

    def close(self) -> dict:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        name = shard_name(self.split, self.number)
        os.replace(self.path, self.folder / name)
        return {"file": name, "tokens": self.tokens, "documents": self.documents, "sha256": self.sha256.hexdigest()}

    def discard(self):
        self.file.close()
        self.path.unlink(missing_ok=True)


@dataclass
class ShardIndex:
    """A prepared folder's index.json, checked when read."""

    folder: Path
    content: dict

    @classmethod
    def read(cls, folder) -> "ShardIndex":
        folder = Path(folder)
        path = folder / INDEX
        if not path.is_file():
            if (folder / PROGRESS).is_file():
                raise RecipeError(
                    f"--token_shards {os.fspath(folder)!r}: its preparation has not finished (there is a "
                    f"{PROGRESS} but no {INDEX}): run the same `python -m recipes.prepare_data` command again to "
                    f"resume it."
                )
            raise RecipeError(
                f"--token_shards {os.fspath(folder)!r} is not a folder of token shards (no {INDEX}): write one with "
                f"`python -m recipes.prepare_data --output_dir {os.fspath(folder)} ...`."
            )
        try:
            content = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise RecipeError(f"{os.fspath(path)} is not valid JSON: {error}") from error
        if content.get("format") != FORMAT or content.get("version") != VERSION:
            raise RecipeError(
                f"{os.fspath(path)} is not a {FORMAT} index of version {VERSION} (format {content.get('format')!r}, "
                f"version {content.get('version')!r})."
            )
        index = cls(folder, content)
        for split in SPLITS:
            for shard in index.shards(split):
                file = folder / shard["file"]
                expected = shard["tokens"] * index.dtype.itemsize
                if not file.is_file() or file.stat().st_size != expected:
                    found = f"{file.stat().st_size:,} bytes" if file.is_file() else "missing"
                    raise RecipeError(
                        f"Token shard {os.fspath(file)} should hold {shard['tokens']:,} tokens ({expected:,} bytes) "
                        f"as {INDEX} says, but is {found}: the folder is damaged; prepare it again."
                    )
        return index

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.content["dtype"])

    def shards(self, split: str) -> list[dict]:
        return self.content["shards"].get(split, [])

    def tokens(self, split: str) -> int:
        return sum(shard["tokens"] for shard in self.shards(split))

    def fingerprint(self) -> str:
        """A digest of the shards' contents (their sha256, recorded as they were written), for resume checks."""
        state = {split: [shard["sha256"] for shard in self.shards(split)] for split in SPLITS}
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]

    def blocks(self, split: str, block_size: int) -> "TokenBlocks":
        return TokenBlocks([self.folder / shard["file"] for shard in self.shards(split)], self.dtype, block_size)


class TokenBlocks(torch.utils.data.Dataset):
    """Consecutive blocks of `block_size` tokens of the shards `paths` taken as one stream, as rows
    `{"input_ids": LongTensor (block_size,)}`; read through memory maps, opened when first read (so a dataloader's
    worker processes open their own)."""

    def __init__(self, paths: list[Path], dtype: np.dtype, block_size: int, num_blocks: int | None = None):
        self.paths, self.dtype, self.block_size = [Path(path) for path in paths], np.dtype(dtype), block_size
        sizes = [path.stat().st_size // self.dtype.itemsize for path in self.paths]
        self.starts = np.cumsum([0, *sizes])  # the stream offset of every shard, and the total at the end
        available = int(self.starts[-1]) // block_size
        self.num_blocks = available if num_blocks is None else min(num_blocks, available)
        self._maps = None

    def __len__(self) -> int:
        return self.num_blocks

    @property
    def num_rows(self) -> int:  # as a `datasets.Dataset` says it
        return self.num_blocks

    def select_first(self, count: int) -> "TokenBlocks":
        return TokenBlocks(self.paths, self.dtype, self.block_size, min(count, self.num_blocks))

    def _read(self, start: int, stop: int) -> np.ndarray:
        if self._maps is None:
            self._maps = [np.memmap(path, dtype=self.dtype, mode="r") for path in self.paths]
        parts = []
        shard = int(np.searchsorted(self.starts, start, side="right")) - 1
        while start < stop:
            offset = start - int(self.starts[shard])
            take = min(stop, int(self.starts[shard + 1])) - start
            parts.append(self._maps[shard][offset : offset + take])
            start += take
            shard += 1
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def __getitem__(self, index: int) -> dict:
        if not -self.num_blocks <= index < self.num_blocks:
            raise IndexError(f"block {index} of {self.num_blocks}")
        index %= self.num_blocks
        ids = self._read(index * self.block_size, (index + 1) * self.block_size)
        return {"input_ids": torch.from_numpy(ids.astype(np.int64))}

    def __getstate__(self):  # memory maps are not pickled: a worker opens its own
        return {**self.__dict__, "_maps": None}


__all__ = ["FORMAT", "INDEX", "PROGRESS", "ShardIndex", "ShardWriter", "TokenBlocks", "token_dtype"]
