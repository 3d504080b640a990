"""Checkpoints that never lose work: atomic saves, a completeness marker, keep-last-N rotation, exact resume.

A checkpoint is `accelerator.save_state` (model, optimizer, scheduler, RNG states of every process, the registered
training progress) plus the model's `config.json` and the tokenizer, in `<root>/step_00000100/`. It is written as

1. `<root>/.step_00000100.tmp/` (a stale one from a killed save is removed first), by every process;
2. every file and folder in it fsync-ed, then the marker `checkpoint_complete.json` written and fsync-ed, with the
   sha256 of every file;
3. renamed to `<root>/step_00000100` with one `os.replace` (atomic on POSIX file systems), the parent fsync-ed;
4. then, and only then, the oldest complete checkpoints beyond `total_limit` deleted.

A process killed at any moment therefore leaves either the new checkpoint complete, or a `.tmp` folder that nothing
reads, and the previous complete checkpoints untouched. `latest_checkpoint` returns the newest folder that holds the
marker. Steps 2-4 run on the main process; on several machines `root` must be on a shared file system.

Resuming reads nothing damaged and nothing that could run code: `resolve_checkpoint` refuses a checkpoint whose files
differ from the digests in its marker (a truncated RNG state, optimizer or scheduler file, flipped bytes in the
weights: Accelerate would log some of these at info level and resume inexactly) and one whose pickled training
progress holds more than plain data (accelerate unpickles those files in full).

A save that fails with an OSError (disk full, read-only or vanished folder) removes its `.tmp` folder, puts back a
checkpoint of the same step it was replacing, and raises `CheckpointWriteError`, which names the folder, the cause and
the newest complete checkpoint, from which `--resume_from_checkpoint latest` continues.
"""

import errno
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from .errors import CheckpointWriteError, RecipeError

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
    """The checkpoint's marker; `RecipeError` if it is not the JSON object a save writes."""
    try:
        marker = json.loads((Path(path) / MARKER).read_text())
    except (OSError, ValueError) as error:
        raise RecipeError(
            f"The marker {MARKER} of checkpoint {os.fspath(path)!r} cannot be read ({error})."
        ) from error
    if not isinstance(marker, dict):
        raise RecipeError(f"The marker {MARKER} of checkpoint {os.fspath(path)!r} is not a JSON object: {marker!r}.")
    return marker


def file_digests(folder: str | os.PathLike) -> dict[str, str]:
    """The sha256 of every file under `folder` but the marker, by path relative to it."""
    folder = Path(folder)
    digests = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MARKER:
            with open(path, "rb") as file:
                digests[path.relative_to(folder).as_posix()] = hashlib.file_digest(file, "sha256").hexdigest()
    return digests


def check_files_intact(folder: str | os.PathLike) -> None:
    """Raises `RecipeError` naming every file of the checkpoint that is missing or differs from its marker's digest."""
    recorded = read_marker(folder).get("files")
    if not isinstance(recorded, dict):
        raise RecipeError(
            f"Checkpoint {os.fspath(folder)!r} has no file digests in its {MARKER} (written by an older gpt-origins): "
            f"its state cannot be checked, so it is not resumed."
        )
    present = file_digests(folder)
    damaged = [name for name, digest in recorded.items() if present.get(name) != digest]
    if damaged:
        described = ", ".join(f"{name} ({'missing' if name not in present else 'changed'})" for name in damaged)
        raise RecipeError(
            f"Checkpoint {os.fspath(folder)!r} is damaged: {described} since it was saved. Resuming it would not "
            f"continue the run exactly; resume an earlier checkpoint (--resume_from_checkpoint <folder>) or start "
            f"over."
        )


def check_pickles_hold_only_data(folder: str | os.PathLike) -> None:
    """Raises `RecipeError` if a pickle of the checkpoint could run code when loaded.

    `accelerator.load_state` reads weights from safetensors and the optimizer, scheduler and RNG states with
    `torch.load(weights_only=True)`, but the registered objects (`custom_checkpoint_*.pkl`, the training progress)
    with `weights_only=False`. Each of those is first read here with `weights_only=True` (plain containers, numbers,
    strings, numpy scalars and arrays only): a file that passes holds nothing the full unpickler could execute.
    """
    np_core = np._core if hasattr(np, "_core") else np.core
    data_globals = [np_core.multiarray.scalar, np_core.multiarray._reconstruct, np.ndarray, np.dtype]
    data_globals += [type(np.dtype(name)) for name in ("float64", "float32", "int64", "int32", "bool")]
    for path in sorted(Path(folder).glob("custom_checkpoint_*.pkl")):
        try:
            with torch.serialization.safe_globals(data_globals):
                torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            named = re.search(r"GLOBAL (\S+)", str(error))
            what = f"it names {named.group(1).rstrip('.,')}" if named else f"{type(error).__name__}"
            raise RecipeError(
                f"Refusing to resume from {os.fspath(folder)!r}: {path.name} is not plain data ({what}), and "
                f"unpickling it could run code."
            ) from error


def resolve_checkpoint(requested: str, default_root: str | os.PathLike) -> Path:
    """The folder to resume from. `requested` is "latest" (newest complete one under `default_root`), a checkpoint
    folder, or a folder of checkpoints (its newest complete one). Anything else is a `RecipeError`, and so is a
    damaged checkpoint (`check_files_intact`) and one whose pickles hold more than data
    (`check_pickles_hold_only_data`)."""
    folder = _resolve_checkpoint_folder(requested, default_root)
    check_files_intact(folder)
    check_pickles_hold_only_data(folder)
    return folder


def _resolve_checkpoint_folder(requested: str, default_root: str | os.PathLike) -> Path:
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


def drop_tied_copies(models, weights, output_dir=None):
    """accelerate's save-state hook: each tied weight goes into the checkpoint once, under its source's name.

    A model's `_tied_weights_keys` ({copy: source}, e.g. lm_head.weight: transformer.wte.weight) names the tie; the
    copy is dropped only while it is still the same tensor as its source, so an untied head is saved. Without this,
    accelerate drops the copy itself and logs "Removed shared tensor {'lm_head.weight'} while saving ... check ... that
    you don't receive any warning while reloading". safetensors' `load_model`, which `load_state` uses, restores the
    tie.
    """
    for model, state in zip(models, weights):
        tied = getattr(getattr(model, "module", model), "_tied_weights_keys", None) or {}
        for copy, source in dict(tied).items():
            for key in [key for key in state if key == copy or key.endswith(f".{copy}")]:
                origin = key[: len(key) - len(copy)] + source
                if origin in state and state[key].data_ptr() == state[origin].data_ptr():
                    del state[key]


def save_checkpoint(accelerator, root: str | os.PathLike, step: int, write_extra=None, total_limit=None, info=None):
    """Saves the full training state for `step` under `root` atomically (see the module docstring); returns its path.

    Call it on every process. `write_extra(folder)` runs on the main process before the marker is written (config,
    tokenizer); `info` (a JSON-able dict) goes into the marker. `total_limit` keeps that many newest checkpoints.
    An OSError while writing (disk full, read-only folder) becomes a `CheckpointWriteError`, the earlier checkpoints
    intact.
    """
    root = Path(root)
    final = root / checkpoint_name(step)
    temporary = root / f".{checkpoint_name(step)}.tmp"
    try:
        if accelerator.is_main_process:
            root.mkdir(parents=True, exist_ok=True)
            for stale in root.glob(".step_*.tmp"):  # left by a save that was killed
                _remove(stale)
            temporary.mkdir()
        accelerator.wait_for_everyone()
        hook = accelerator.register_save_state_pre_hook(drop_tied_copies)
        try:
            accelerator.save_state(os.fspath(temporary))
        finally:
            hook.remove()
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            if write_extra is not None:
                write_extra(temporary)
            _fsync_tree(temporary)
            marker = {"step": step, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(info or {})}
            marker["files"] = file_digests(temporary)
            with open(temporary / MARKER, "w") as file:
                json.dump(marker, file, indent=2)
                file.flush()
                os.fsync(file.fileno())
            _fsync(temporary)
            _publish(root, temporary, final)
    except OSError as error:
        if accelerator.is_main_process:
            _remove(temporary)  # frees the space the partial save took
        raise _write_error(root, final, error) from error
    if accelerator.is_main_process and total_limit is not None:
        try:
            rotate_checkpoints(root, total_limit)
        except OSError as error:
            raise _write_error(root, final, error, saved=True) from error
    accelerator.wait_for_everyone()
    return final


def _publish(root: Path, temporary: Path, final: Path):
    """Renames the complete `temporary` to `final`; a checkpoint already there (the same step saved again by a resumed
    run) is moved aside first and put back if the rename fails."""
    if final.exists():
        retired = root / f".{final.name}.old"
        _remove(retired)
        os.replace(final, retired)
        try:
            os.replace(temporary, final)
        except OSError:
            os.replace(retired, final)
            raise
        _remove(retired)
    else:
        os.replace(temporary, final)
    _fsync(root)


def _write_error(root: Path, final: Path, error: OSError, saved: bool = False) -> CheckpointWriteError:
    """The message of a failed save: what failed and why, and what is safe on disk."""
    cause = error.strerror or str(error)
    if error.errno is not None:
        cause = f"{cause} ({errno.errorcode.get(error.errno, error.errno)})"
    where = f" ({os.fspath(error.filename)!r})" if error.filename else ""
    try:
        newest = latest_checkpoint(root)
    except OSError:
        newest = None
    if saved:
        what = f"Checkpoint {final.name} was saved, but older checkpoints in {os.fspath(root)!r} could not be deleted"
    else:
        what = f"Could not write checkpoint {final.name} to {os.fspath(root)!r}"
    kept = (
        f"The newest complete checkpoint, {newest.name}, is intact" if newest else "No complete checkpoint exists yet"
    )
    return CheckpointWriteError(
        f"{what}: {cause}{where}. {kept}. Free disk space or make the folder writable, then continue with "
        f"--resume_from_checkpoint latest."
    )


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
    "check_files_intact",
    "check_pickles_hold_only_data",
    "file_digests",
    "check_same_model",
    "save_checkpoint",
    "rotate_checkpoints",
]
