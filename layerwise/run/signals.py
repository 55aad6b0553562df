"""Ctrl-C (SIGINT) and SIGTERM, answered the same way in every phase of every command.

answer_signals() covers a whole command (the CLI wraps every command in it, layerwise.train its call):
either signal raises Interrupted where the command is, so every cleanup runs on the way out (temporary
files are removed, locks released) and the entry point prints one line and exits 128 + the signal
number: 130 for Ctrl-C, 143 for SIGTERM. Inside the training loop, StopOnSignals defers them instead:
the step (or the epoch's validation and saves) finishes, last.npz is saved, and the run stops with a
TrainingInterrupted saying how to resume. A second signal there stops at once.
"""

import contextlib
import signal
import threading

CAUSES = {signal.SIGINT: "interrupted", signal.SIGTERM: "stopped by SIGTERM"}


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, raised at once. A KeyboardInterrupt, so every `except KeyboardInterrupt` and
    `finally` cleans up for SIGTERM exactly as for Ctrl-C."""

    def __init__(self, signum):
        super().__init__(CAUSES[signum])
        self.signum = int(signum)
        self.cause = CAUSES[signum]
        self.exit_code = 128 + self.signum


def cause_and_code(e):
    """("interrupted", 130) for Ctrl-C, ("stopped by SIGTERM", 143) for SIGTERM: what a KeyboardInterrupt
    (a plain one is Ctrl-C) says and exits with."""
    return getattr(e, "cause", CAUSES[signal.SIGINT]), getattr(e, "exit_code", 128 + signal.SIGINT)


def _raise(signum, frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def answer_signals():
    """While active (in the main thread), SIGINT and SIGTERM raise Interrupted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise) for signum in CAUSES}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class StopOnSignals:
    """While active, the first Ctrl-C (SIGINT) or SIGTERM only sets `requested` (the loop stops after
    its step, or after the epoch's validation and saves, and exits 130 or 143); a second one raises
    Interrupted at once."""

    CAUSES = CAUSES

    def __enter__(self):
        self.requested = False
        self.signum, self.cause = None, None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in self.CAUSES:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise Interrupted(signum)
        self.requested = True
        self.signum, self.cause = int(signum), self.CAUSES[signum]

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
