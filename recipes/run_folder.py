"""The run's output folder: where its checkpoints are, which one a run resumes from, and that a resumed run is laid
out like the one that wrote the checkpoint. Every check here runs before any training time is spent."""

import os
import shutil
from pathlib import Path

from .checkpointing import check_same_model, checkpoint_step, complete_checkpoints, read_marker, resolve_checkpoint
from .errors import RecipeError

CHECKPOINTS = "checkpoints"  # the sub-folder of --output_dir that holds a run's checkpoints


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


def check_output_dir(accelerator, output_dir, resume_dir: Path | None, overwrite: bool):
    """A fresh run never deletes checkpoints silently; a resumed run never overwrites newer ones."""
    root = checkpoints_root(output_dir)
    existing = complete_checkpoints(root)
    if resume_dir is None and existing:
        if not overwrite:
            raise RecipeError(
                f"{os.fspath(root)!r} already holds checkpoints (newest: {existing[-1].name}). Continue that run with "
                f"--resume_from_checkpoint latest, or start over with --overwrite_output_dir."
            )
        if accelerator.is_main_process:
            shutil.rmtree(root)
        accelerator.wait_for_everyone()
    if resume_dir is not None and Path(resume_dir).parent.resolve() == root.resolve():
        newer = [path.name for path in existing if checkpoint_step(path) > checkpoint_step(resume_dir)]
        if newer:
            raise RecipeError(
                f"Resuming from {Path(resume_dir).name} would overwrite the newer checkpoints {', '.join(newer)}: "
                f"resume from the newest (--resume_from_checkpoint latest) or move them away."
            )


def check_layout(resume_dir, layout: dict):
    """`layout`: what the checkpoint's position in the data depends on; a resumed run must have the same."""
    saved = read_marker(resume_dir).get("layout", {})
    differences = [
        f"{key}: checkpoint {saved.get(key)}, this run {value}"
        for key, value in layout.items()
        if saved.get(key) != value
    ]
    if differences:
        raise RecipeError(
            f"Checkpoint {os.fspath(resume_dir)!r} was written by a run laid out differently "
            f"({'; '.join(differences)}); resume with the same options to continue exactly."
        )


def check_resume(resume_dir: Path | None, model_config, layout: dict):
    """A resumed run continues the same model on the same data layout."""
    if resume_dir is not None:
        check_same_model(resume_dir, model_config)
        check_layout(resume_dir, layout)
