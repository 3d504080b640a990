"""One run per output folder: a lock file that a second run on the same `--output_dir` is refused by, naming the run
that holds it.

`<output_dir>/.run.lock` is created with `O_CREAT | O_EXCL` (atomic on POSIX file systems, NFS included since v3) by
the main process and holds who took it: host, process id, the process's start time and the command line. A lock left
by a run that died without releasing it (SIGKILL, a crashed machine) is stale when it names a process of this host
that no longer runs (or a newer process that reuses its id: the start times differ); a stale lock is taken over, and
the recipe says so. A lock of another host cannot be checked from here: the run is refused, and the message says
which file to delete once that run is known to be gone.

Creating the lock is also the recipes' first write: an output folder that cannot be written is refused here, before
any work.
"""

import json
import os
import socket
import sys
import time
from pathlib import Path

from .errors import RecipeError

LOCK = ".run.lock"
# A lock file is written in microseconds after it is created: one still unreadable after this many seconds was left
# by a process that died in between (or a full disk), and is stale.
UNREADABLE_STALE_AFTER = 10.0


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _process_start(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks since boot (Linux /proc), to tell a reused pid apart."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[19]  # field 22 of proc(5); the first two (pid, comm) were split off
    except (OSError, IndexError):
        return None


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _holder() -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "process_start": _process_start(os.getpid()),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
    }


def _describe(holder: dict) -> str:
    return (
        f"process {holder.get('pid')} on {holder.get('host')}, started {holder.get('started_at')}: "
        f"{holder.get('command')}"
    )


def is_stale(holder: dict) -> bool:
    """Whether the run that wrote `holder` is certainly gone: a process of this host that no longer runs, or whose
    pid another process now has."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    if not _is_running(holder["pid"]):
        return True
    started = _process_start(holder["pid"])
    return started is not None and holder.get("process_start") not in (None, started)


class RunLock:
    """The lock of one output folder, held by this process from `acquire` to `release`."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def acquire(cls, output_dir, say=print) -> "RunLock":
        """Takes `<output_dir>/.run.lock` (creating the folder), taking over a stale lock; `RecipeError` if another
        run holds it or the folder cannot be written. `say` prints the take-over of a stale lock."""
        output_dir = Path(output_dir)
        path = output_dir / LOCK
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
            for _ in range(2):  # a second try after removing a stale lock
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    holder = cls.read(path)
                    if holder is None and _age(path) > UNREADABLE_STALE_AFTER:
                        say(f"Taking over the unreadable lock {os.fspath(path)!r} (a run that died while taking it).")
                    elif holder is None or not is_stale(holder):
                        raise RecipeError(cls._held_message(output_dir, path, holder)) from None
                    else:
                        say(f"Taking over the stale lock of {_describe(holder)} (it no longer runs).")
                    path.unlink(missing_ok=True)
                    continue
                with os.fdopen(fd, "w") as file:
                    json.dump(_holder(), file)
                    file.flush()
                    os.fsync(file.fileno())
                return cls(path)
        except OSError as error:
            raise RecipeError(
                f"--output_dir {os.fspath(output_dir)!r} cannot be written ({error.strerror or error}): give a "
                f"folder this user can write to."
            ) from error
        raise RecipeError(cls._held_message(output_dir, path, cls.read(path)))

    @staticmethod
    def read(path: Path) -> dict | None:
        """The holder a lock file names, or None if it cannot be read (being written, or damaged)."""
        try:
            holder = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    @staticmethod
    def _held_message(output_dir: Path, path: Path, holder: dict | None) -> str:
        who = _describe(holder) if holder else "a run whose lock file cannot be read"
        return (
            f"--output_dir {os.fspath(output_dir)!r} is in use by another run ({who}). Two runs in one folder "
            f"would overwrite each other's model and checkpoints: wait for it, or use another --output_dir. If that "
            f"run is gone (e.g. it ran on another machine), delete {os.fspath(path)!r}."
        )

    def release(self):
        """Removes the lock if it is still this process's."""
        holder = self.read(self.path)
        if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)


__all__ = ["LOCK", "RunLock", "is_stale"]
