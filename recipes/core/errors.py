"""The one exception the recipes raise for bad input, so `main()` can print it as a one-line error and exit."""

import sys


class RecipeError(ValueError):
    """A bad argument, file, tokenizer or checkpoint, found before any training time is spent.

    The message names the value and the limit it broke. `main()` prints it as `error: ...` and exits with status 2,
    like argparse does; any other exception is a bug and keeps its traceback.
    """


class CheckpointWriteError(RecipeError):
    """A checkpoint could not be written (disk full, read-only or vanished output folder). Raised after the partial
    folder is removed, so the message can promise what it says: the previous complete checkpoints are intact and the
    run continues from the newest with `--resume_from_checkpoint latest` once the disk is fixed."""


def exit_with_error(prog: str, error: Exception):
    """Prints `prog: error: message` on stderr and exits with status 2, as argparse does for a bad option (or the
    error's own `exit_status`: 128 + the signal for a run stopped by SIGTERM or SIGINT)."""
    sys.stderr.write(f"{prog}: error: {error}\n")
    raise SystemExit(getattr(error, "exit_status", 2))


__all__ = ["CheckpointWriteError", "RecipeError", "exit_with_error"]
