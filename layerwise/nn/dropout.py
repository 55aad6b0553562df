"""Dropout: inverted dropout with masks from the layer's own seeded random stream."""

import numpy as np

from ..errors import ConfigError
from .base import Layer, _buffer


class Dropout(Layer):
    """y = x * m / (1 - p), m_i = 1[u_i >= p], u_i ~ U[0, 1)   (training);   y = x   (evaluation)

    Shape: any -> same. Each entry is kept with probability P(u >= p) = 1 - p (up to the 2^-24 grid of
    float32 draws) and scaled by 1 / (1 - p), so E[y] = x and evaluation needs no rescaling (inverted
    dropout). The uniforms come from the layer's own np.random.Generator (`rng`), seeded by the run
    (Sequential.seed_random) and checkpointed (`rng_state`), so a resumed run draws the same masks.
    With `hold_mask` set, forward reuses the last mask (what gradcheck needs: a fixed function of x).
    """

    name = "dropout"
    ARGS = {"p": float}

    def __init__(self, p=0.5):
        super().__init__()
        p = float(p)
        if not 0 <= p < 1:
            raise ConfigError(f"p: expected a drop probability with 0 <= p < 1 (0.5 is usual), received {p}")
        self.p = p
        self.rng = np.random.default_rng(0)
        self.hold_mask = False
        self._keep = None
        self._mask = None  # (1[u >= p] / (1 - p)) of the last training forward; None after evaluation
        self._y = None
        self._dx = None

    def forward(self, x):
        if not self.training or self.p == 0:
            self._mask = None
            return x
        held = self.hold_mask and self._mask is not None and self._mask.shape == x.shape
        if not held:
            mask = self._mask = _buffer(self._mask, x.shape, x.dtype)
            keep = self._keep = _buffer(self._keep, x.shape, np.bool_)
            self.rng.random(out=mask, dtype=x.dtype)  # u ~ U[0, 1), drawn straight into the buffer
            np.greater_equal(mask, self.p, out=keep)
            np.copyto(mask, keep)  # 1.0 where kept (a bool * float multiply would allocate a cast buffer)
            mask *= 1 / (1 - self.p)
        y = self._y = _buffer(self._y, x.shape, x.dtype)
        np.multiply(x, self._mask, out=y)
        return y

    def backward(self, dout, input_grad=True):
        if not input_grad:
            return None
        if self._mask is None:
            return dout  # evaluation mode (or p = 0): the identity, dx = dout
        dx = self._dx = _buffer(self._dx, dout.shape, dout.dtype)
        np.multiply(dout, self._mask, out=dx)  # dx = dout * m / (1 - p)
        return dx

    def reset_rng(self, seed):
        """Start the mask stream from `seed` (anything np.random.default_rng takes)."""
        self.rng = np.random.default_rng(seed)

    def rng_state(self):
        """The generator's state, a JSON-able dict."""
        return self.rng.bit_generator.state

    def set_rng_state(self, state):
        """Restore a state from rng_state(); ValueError/TypeError/KeyError if it is not one."""
        if not isinstance(state, dict) or state.get("bit_generator") != type(self.rng.bit_generator).__name__:
            raise ValueError(f"expected a {type(self.rng.bit_generator).__name__} generator state")
        self.rng.bit_generator.state = state
