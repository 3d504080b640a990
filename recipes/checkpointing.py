"""Checkpoints that never lose work: atomic saves, a completeness marker, keep-last-N rotation, exact resume.

A checkpoint is `accelerator.save_state` (model, optimizer, scheduler, RNG states of every process, the registered
training progress) plus the model's `config.json` and the tokenizer, in `<root>/step_00000100/`. It is written as

1. `<root>/.step_00000100.tmp/` (a stale one from a killed save is removed first), by every process;
2. every file and folder in it fsync-ed, then the marker `checkpoint_complete.json` written and fsync-ed;
3. renamed to `<root>/step_00000100` with one `os.replace` (atomic on POSIX file systems), the parent fsync-ed;
4. then, and only then, the oldest complete checkpoints beyond `total_limit` deleted.

A process killed at any moment therefore leaves either the new checkpoint complete, or a `.tmp` folder that nothing
reads, and the previous complete checkpoints untouched. `latest_checkpoint` returns the newest folder that holds the
marker. Steps 2-4 run on the main process; on several machines `root` must be on a shared file system.
"""

import json
import os
import re
import shutil
import time
from pathlib import Path

from .errors import RecipeError

MARKER = "checkpoint_complete.json"
_NAME = re.compile(r"^step_(\d+)$")

# The config fields that fix the shapes of the weights: a checkpoint whose values differ belongs to another model.
ARCHITECTURE_FIELDS = ("model_type", "vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner")


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}"


def checkpoint_step(path: str | os.PathLike) -> int | None:
    match = _NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


def is_complete(path: str | os.PathLike) -> bool:
    return (Path(path) / MARKER).is_file()


def complete_checkpoints(root: str | os.PathLike) -> list[Path]:
    """The complete checkpoints under `root`, oldest first (temporary and unmarked folders are skipped)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [path for path in root.iterdir() if checkpoint_step(path) is not None and is_complete(path)]
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    found = complete_checkpoints(root)
    return found[-1] if found else None


def read_marker(path: str | os.PathLike) -> dict:
    return json.loads((Path(path) / MARKER).read_text())


def resolve_checkpoint(requested: str, default_root: str | os.PathLike) -> Path:
    """The folder to resume from. `requested` is "latest" (newest complete one under `default_root`), a checkpoint
    folder, or a folder of checkpoints (its newest complete one). Anything else is a `RecipeError`."""
    root = Path(default_root) if requested == "latest" else Path(requested)
    if not root.exists():
        raise RecipeError(f"--resume_from_checkpoint: {os.fspath(root)!r} does not exist.")
    if checkpoint_step(root) is not None or (root / MARKER).exists():
        if not is_complete(root):
            newest = latest_checkpoint(root.parent)
            hint = f" The newest complete one there is {os.fspath(newest)!r}." if newest else ""
            raise RecipeError(
                f"Checkpoint {os.fspath(root)!r} is incomplete (no {MARKER}: its save was interrupted).{hint}"
            )
        return root
    newest = latest_checkpoint(root)
    if newest is None:
        raise RecipeError(
            f"--resume_from_checkpoint: {os.fspath(root)!r} holds no complete checkpoint (folders step_NNNNNNNN "
            f"with {MARKER})."
        )
    return newest


def check_same_model(checkpoint: str | os.PathLike, config) -> None:
    """Raises `RecipeError` naming the differing fields if `checkpoint` was written for another architecture."""
    config_file = Path(checkpoint) / "config.json"
    if not config_file.is_file():
        raise RecipeError(f"{os.fspath(checkpoint)!r} is not a checkpoint of this recipe: it has no config.json.")
    saved = json.loads(config_file.read_text())
    current = config.to_dict()
    differences = [
        f"{field}: checkpoint {saved.get(field)!r}, this run {current.get(field)!r}"
        for field in ARCHITECTURE_FIELDS
        if saved.get(field) != current.get(field)
    ]
    if differences:
        raise RecipeError(
            f"Checkpoint {os.fspath(checkpoint)!r} belongs to another model ({'; '.join(differences)}). Resume with "
            f"the model options it was trained with, or start a fresh run in another --output_dir."
        )


def _fsync(path: Path):
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() and hasattr(os, "O_DIRECTORY") else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # some platforms cannot open folders; the files themselves were synced
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(folder: Path):
    for parent, _, files in os.walk(folder):
        for name in files:
            _fsync(Path(parent) / name)
        _fsync(Path(parent))


def _remove(path: Path):
    shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(accelerator, root: str | os.PathLike, step: int, write_extra=None, total_limit=None, info=None):
    """Saves the full training state for `step` under `root` atomically (see the module docstring); returns its path.

    Call it on every process. `write_extra(folder)` runs on the main process before the marker is written (config,
    tokenizer); `info` (a JSON-able dict) goes into the marker. `total_limit` keeps that many newest checkpoints.
    """
    root = Path(root)
    final = root / checkpoint_name(step)
    temporary = root / f".{checkpoint_name(step)}.tmp"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".step_*.tmp"):  # left by a save that was killed
            _remove(stale)
        temporary.mkdir()
    accelerator.wait_for_everyone()
    accelerator.save_state(os.fspath(temporary))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if write_extra is not None:
            write_extra(temporary)
        _fsync_tree(temporary)
        marker = {"step": step, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(info or {})}
        with open(temporary / MARKER, "w") as file:
            json.dump(marker, file, indent=2)
            file.flush()
            os.fsync(file.fileno())
        _fsync(temporary)
        if final.exists():  # the same step saved again (a resumed run): move the old one aside, then replace it
            retired = root / f".{checkpoint_name(step)}.old"
            _remove(retired)
            os.replace(final, retired)
            os.replace(temporary, final)
            _remove(retired)
        else:
            os.replace(temporary, final)
        _fsync(root)
        if total_limit is not None:
            rotate_checkpoints(root, total_limit)
    accelerator.wait_for_everyone()
    return final


def rotate_checkpoints(root: str | os.PathLike, total_limit: int):
    """Deletes the oldest complete checkpoints so that `total_limit` remain (the newest ones)."""
    if total_limit < 1:
        raise RecipeError(f"--checkpoints_total_limit must be at least 1, got {total_limit}.")
    for old in complete_checkpoints(root)[:-total_limit]:
        # Unmark first: a deletion cut short leaves an incomplete folder, never a "complete" half checkpoint.
        (old / MARKER).unlink()
        _fsync(old)
        _remove(old)


__all__ = [
    "MARKER",
    "ARCHITECTURE_FIELDS",
    "checkpoint_name",
    "checkpoint_step",
    "is_complete",
    "complete_checkpoints",
    "latest_checkpoint",
    "read_marker",
    "resolve_checkpoint",
    "check_same_model",
    "save_checkpoint",
    "rotate_checkpoints",
]
