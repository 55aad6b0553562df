"""Mini-batches of a split, gathered into reused buffers."""

import numpy as np


class Batches:
    """Mini-batches of (x, y), reshuffled every epoch with `rng`; the last partial batch is kept.

    Each batch is gathered with np.take into a buffer reused across steps, so a batch is only valid
    until the next one is drawn.
    """

    def __init__(self, split, batch_size, rng=None):
        self.x, self.y = split.x, split.y
        self.batch_size = min(batch_size, len(split))
        self.rng = rng
        self._xbuf = np.empty((self.batch_size,) + self.x.shape[1:], dtype=self.x.dtype)
        self._ybuf = np.empty((self.batch_size,) + self.y.shape[1:], dtype=self.y.dtype)

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        return self.epoch()

    def epoch(self, skip=0):
        """One epoch of batches: draws this epoch's permutation, then yields from batch `skip` on
        (a run resumed mid-epoch restores the RNG state of the epoch's start and skips what it did)."""
        n = len(self.x)
        order = self.rng.permutation(n) if self.rng is not None else np.arange(n)
        for start in range(skip * self.batch_size, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            xb, yb = self._xbuf[: len(idx)], self._ybuf[: len(idx)]
            # mode="clip" skips the bounds check (idx is a permutation, always in range) and with it
            # an intermediate copy: np.take then gathers straight into the buffer.
            np.take(self.x, idx, axis=0, out=xb, mode="clip")
            np.take(self.y, idx, axis=0, out=yb, mode="clip")
            yield xb, yb
