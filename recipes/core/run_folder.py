"""The run's output folder: one run at a time in it (recipes/core/run_lock.py), where its checkpoints are, which one a
run resumes from, and that a resumed run is the run that wrote the checkpoint: the same model, data, tokenizer, layout
and options. Every check here runs before any training time is spent, and nothing is deleted before they all pass.
"""

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from accelerate.utils import broadcast_object_list
from huggingface_hub import get_token
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from .checkpointing import check_same_model, checkpoint_step, complete_checkpoints, read_marker, resolve_checkpoint
from .errors import RecipeError
from .options import ADDED_OPTIONS, RESUME_CHANGEABLE, RESUME_FREE
from .run_lock import RunLock

CHECKPOINTS = "checkpoints"  # the sub-folder of --output_dir that holds a run's checkpoints
# Where `--overwrite_output_dir` moves the earlier run's checkpoints until the new run has a complete one of its own.
REPLACED = "checkpoints.replaced"


def checkpoints_root(output_dir) -> Path:
    return Path(output_dir) / CHECKPOINTS


def resolve_resume(accelerator, requested: str | None, output_dir) -> Path | None:
    """The checkpoint to resume from (`--resume_from_checkpoint`), or None for a fresh start; "latest" with none
    written yet starts fresh, and says so."""
    root = checkpoints_root(output_dir)
    if requested == "latest" and not complete_checkpoints(root):
        accelerator.print(f"No complete checkpoint in {root} yet: starting from scratch.")
        return None
    return resolve_checkpoint(requested, root) if requested else None


def check_output_dir(output_dir, resume_dir: Path | None, overwrite: bool):
    """A fresh run never replaces checkpoints unasked; a resumed run never overwrites newer ones. Deletes nothing."""
    root = checkpoints_root(output_dir)
    existing = complete_checkpoints(root)
    if resume_dir is None and existing and not overwrite:
        raise RecipeError(
            f"{os.fspath(root)!r} already holds checkpoints (newest: {existing[-1].name}). Continue that run with "
            f"--resume_from_checkpoint latest, or start over with --overwrite_output_dir."
        )
    if resume_dir is not None and Path(resume_dir).parent.resolve() == root.resolve():
        newer = [path.name for path in existing if checkpoint_step(path) > checkpoint_step(resume_dir)]
        if newer:
            raise RecipeError(
                f"Resuming from {Path(resume_dir).name} would overwrite the newer checkpoints {', '.join(newer)}: "
                f"resume from the newest (--resume_from_checkpoint latest) or move them away."
            )


@dataclass
class RunFolder:
    """The output folder of a run that holds its lock: the checkpoint it resumes from, and the earlier run's
    checkpoints that `--overwrite_output_dir` set aside."""

    output_dir: Path
    lock: RunLock | None  # held by the main process only
    resume_dir: Path | None
    replaced: Path | None = None

    def replace_earlier_checkpoints(self, accelerator, overwrite: bool):
        """`--overwrite_output_dir` on a folder with checkpoints, once every input is checked: they move to
        `checkpoints.replaced/`, so `latest` never resumes them and a run that fails before its first checkpoint
        loses nothing; `discard_replaced` deletes them once this run has a complete checkpoint of its own (also those
        an earlier overwriting run set aside, if it failed before its first one)."""
        if self.resume_dir is not None or not overwrite:
            return
        root = checkpoints_root(self.output_dir)
        replaced = root.with_name(REPLACED)
        if complete_checkpoints(root):
            if accelerator.is_main_process:
                shutil.rmtree(replaced, ignore_errors=True)  # older still: the run in `root` had replaced them
                os.replace(root, replaced)
            accelerator.wait_for_everyone()
        elif not replaced.exists():
            return
        self.replaced = replaced
        accelerator.print(
            f"--overwrite_output_dir: the earlier run's checkpoints are in {os.fspath(replaced)!r} until this run's "
            f"first checkpoint is complete; then they are deleted."
        )

    def discard_replaced(self, accelerator):
        if self.replaced is not None and accelerator.is_main_process:
            shutil.rmtree(self.replaced, ignore_errors=True)
        self.replaced = None

    def release(self):
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def lock_output_dir(accelerator, output_dir: Path) -> RunLock | None:
    """The folder's lock, taken by the main process; its refusal is raised on every process (none waits forever)."""
    lock, message = None, None
    if accelerator.is_main_process:
        try:
            lock = RunLock.acquire(output_dir, say=accelerator.print)
        except RecipeError as error:
            message = str(error)
    if accelerator.num_processes > 1:
        message = broadcast_object_list([message])[0]
    if message is not None:
        raise RecipeError(message)
    return lock


def hub_repo_id(args) -> str:
    """Where `--push_to_hub` uploads: `--hub_model_id`, else the output folder's name."""
    return args.hub_model_id or Path(args.output_dir).resolve().name


def check_hub_upload(args):
    """`--push_to_hub` uploads after training: its repository name and a Hub token are checked before it."""
    if not args.push_to_hub:
        return
    repo_id = hub_repo_id(args)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise RecipeError(
            f"--push_to_hub: {repo_id!r} is not a Hub repository name ({error}); give --hub_model_id."
        ) from None
    if get_token() is None:
        raise RecipeError(
            f"--push_to_hub {repo_id!r} needs a Hub token, and none is set: run `hf auth login` or set HF_TOKEN "
            f"before training (the upload comes after it)."
        )


@contextmanager
def open_run_folder(accelerator, args):
    """The run's `--output_dir`, locked (a second run on it is refused, naming this one), with the checkpoint to
    resume from resolved and checked against the folder (`check_output_dir`). Yields the `RunFolder`; the lock is
    released if the `with` body fails, else by the caller (`RunFolder.release`) when the run ends."""
    output_dir = Path(args.output_dir)
    check_hub_upload(args)
    folder = RunFolder(output_dir, lock_output_dir(accelerator, output_dir), None)
    try:
        folder.resume_dir = resolve_resume(accelerator, args.resume_from_checkpoint, output_dir)
        check_output_dir(output_dir, folder.resume_dir, args.overwrite_output_dir)
        yield folder
    except BaseException:
        folder.release()
        raise


def fingerprint_rows(*datasets, extra=None) -> str:
    """A digest of the rows of `datasets` (in order, respecting their index mappings) and of `extra` (JSON-able):
    what a resumed run compares to tell an edited or different corpus or task file from the same one."""
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for dataset in datasets:
        digest.update(f"{dataset.num_rows}:{','.join(dataset.column_names)};".encode())
        for batch in dataset.with_format("numpy").iter(batch_size=4096):
            for name in dataset.column_names:
                values = batch[name]
                if values.dtype == object:
                    digest.update(json.dumps(values.tolist(), default=str).encode())
                else:
                    digest.update(str(values.dtype).encode() + str(values.shape).encode() + values.tobytes())
    return digest.hexdigest()[:16]


def fingerprint_tokenizer(tokenizer) -> str:
    """A digest of the tokenizer: its vocabulary, merges, normaliser, pre-tokenizer, post-processor and added
    tokens (its serialisation without the truncation and padding settings of its last call), and special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
    else:
        state = tokenizer.get_vocab()
    text = json.dumps([state, tokenizer.special_tokens_map], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_layout(resume_dir, layout: dict):
    """`layout`: what the checkpoint's position in the data depends on, with the fingerprints of the data and the
    tokenizer; a resumed run must have the same."""
    saved = read_marker(resume_dir).get("layout", {})
    differences = [
        f"{key}: checkpoint {saved.get(key)}, this run {value}"
        for key, value in layout.items()
        if saved.get(key) != value
    ]
    if differences:
        raise RecipeError(
            f"Checkpoint {os.fspath(resume_dir)!r} was written by a run laid out differently or on other data "
            f"({'; '.join(differences)}); resume with the same data, tokenizer and options to continue exactly."
        )


def resume_changes(resume_dir, options: dict, allowed) -> list[dict]:
    """The options of this run that differ from the checkpoint's (`RESUME_FREE` aside): a `RecipeError` naming each
    one `--allow_resume_changes` does not allow, else the list of changes, to be applied and recorded."""
    saved = read_marker(resume_dir).get("options")
    if saved is None:
        raise RecipeError(f"Checkpoint {os.fspath(resume_dir)!r} does not record the options it was trained with.")
    # An option added after the checkpoint was written reads as its default there (the run had that behaviour).
    saved = {**{key: ADDED_OPTIONS[key] for key in options if key in ADDED_OPTIONS}, **saved}
    changes = [
        {"option": key, "checkpoint": saved.get(key), "this_run": value}
        for key, value in options.items()
        if key not in RESUME_FREE and saved.get(key) != value
    ]
    refused = [change for change in changes if change["option"] not in (allowed or ())]
    if refused:
        listed = "; ".join(
            f"--{change['option']}: checkpoint {change['checkpoint']!r}, this run {change['this_run']!r}"
            for change in refused
        )
        changeable = [c["option"] for c in refused if c["option"] in RESUME_CHANGEABLE]
        hint = (
            f" To change {', '.join(changeable)} deliberately, add --allow_resume_changes {' '.join(changeable)}."
            if changeable
            else ""
        )
        raise RecipeError(
            f"Resuming {os.fspath(resume_dir)!r} with other options than it was trained with ({listed}): the result "
            f"would be neither run. Resume with the checkpoint's options.{hint}"
        )
    return changes


def check_resume(folder: RunFolder, model_config, layout: dict, options: dict, allowed=None, own_folder=False):
    """A resumed run continues the same model on the same data, tokenizer and layout, with the same options (but
    those `allowed`, returned as the list of changes). `own_folder`: the checkpoint must be one of this
    `--output_dir`'s (fine-tuning, whose best model and results live beside its checkpoints)."""
    resume_dir = folder.resume_dir
    if resume_dir is None:
        return []
    root = checkpoints_root(folder.output_dir)
    if own_folder and Path(resume_dir).resolve().parent != root.resolve():
        raise RecipeError(
            f"--resume_from_checkpoint {os.fspath(resume_dir)!r} is not a checkpoint of --output_dir "
            f"{os.fspath(folder.output_dir)!r}: its best model and results are in "
            f"{os.fspath(Path(resume_dir).resolve().parent.parent)!r}. Resume with that --output_dir."
        )
    check_same_model(resume_dir, model_config)
    check_layout(resume_dir, layout)
    return resume_changes(resume_dir, options, allowed)


def check_resume_data(folder: RunFolder, fingerprint: str):
    """A resumed run reads the data the checkpoint was trained on (`fingerprint_rows`, once the data is prepared)."""
    if folder.resume_dir is not None:
        check_layout(folder.resume_dir, {"data": fingerprint})
