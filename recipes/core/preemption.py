"""Preemption: SIGTERM (what a cluster scheduler sends before it kills a job) and SIGINT (Ctrl-C) stop a training run
after the optimizer step in progress, with a checkpoint of that step, instead of losing the work since the last one.

While the loop runs, `StopSignals` replaces the handlers of both signals: the first one only records that a stop was
asked for; `TrainingLoop` finishes the step, saves a checkpoint and raises `RunInterrupted` (exit status 128 + the
signal's number, as a shell reports a process ended by it). A second signal of the same kind acts at once, as it
would without this module (Ctrl-C twice interrupts an evaluation or a save; the `.tmp` folder of an interrupted save is
never read).
"""

import signal
import sys
import threading

from .errors import RecipeError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunInterrupted(RecipeError):
    """The run stopped on a signal after saving a checkpoint of its last step; `exit_status` is 128 + the signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_status = 128 + signum


class StopSignals:
    """A context in which SIGTERM and SIGINT set `received` (the signal's number) instead of ending the process.
    Outside the main thread (where Python cannot install handlers) it does nothing."""

    def __init__(self):
        self.received: int | None = None
        self._previous = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.received == signum:  # the second one: what it would have done without us
            previous = self._previous.get(signum, signal.SIG_DFL)
            self.__exit__()
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)
            return
        self.received = signum
        sys.stderr.write(
            f"\n{name} received: finishing the current optimizer step, then saving a checkpoint and stopping "
            f"(send {name} again to stop at once).\n"
        )


__all__ = ["RunInterrupted", "StopSignals", "STOP_SIGNALS"]
