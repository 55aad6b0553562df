"""Ctrl-C and SIGTERM while a run trains: finish the step, save, and say how to resume."""

import os
import signal
import threading


class StopOnSignals:
    """While active, the first Ctrl-C (SIGINT) or SIGTERM only sets `requested` (the loop stops after
    its step, saves and exits 130 or 143); a second one stops at once: Ctrl-C raises
    KeyboardInterrupt as usual, SIGTERM ends the process as SIGTERM does by default."""

    CAUSES = {signal.SIGINT: "interrupted", signal.SIGTERM: "stopped by SIGTERM"}

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
            if signum == signal.SIGTERM:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)
            raise KeyboardInterrupt
        self.requested = True
        self.signum, self.cause = int(signum), self.CAUSES[signum]

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
