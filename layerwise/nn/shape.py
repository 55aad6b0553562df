"""Flatten: images -> rows for the linear layer after it; and the model's input layout.

Inside the model images are channels-last (N, H, W, C); users and data give (N, C, H, W) (or rows of
C*H*W numbers in that order). `to_internal` / `from_internal` convert at the model's input, as views.
"""

import numpy as np

from .base import Layer


def to_internal(x, shape):
    """Model input x (N, C*H*W) or (N, C, H, W) -> channels-last (N, H, W, C), a view (contiguous for C = 1)."""
    c, h, w = shape
    return x.reshape(len(x), c, h, w).transpose(0, 2, 3, 1)


def from_internal(dx, shape_of_x):
    """Channels-last (N, H, W, C) gradient -> the layout the input came in."""
    return dx.transpose(0, 3, 1, 2).reshape(shape_of_x)


class Flatten(Layer):
    """y[n, (p*W + q)*C + c] = x[n, p, q, c]

    Shape: x (N, H, W, C) -> y (N, H*W*C), channels-last order (a reshape, no copy when x is
    contiguous). dx = dout reshaped back to (N, H, W, C).
    """

    name = "flatten"

    def __init__(self):
        super().__init__()
        self._in_shape = None

    def forward(self, x):
        self._in_shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dout, input_grad=True):
        if not input_grad:
            return None
        return dout.reshape(self._in_shape)  # dx = dout, back in the input's shape

    @classmethod
    def sizes(cls, in_features, **kwargs):
        return int(np.prod(in_features)), 0

    def output_features(self, in_features):
        return self.sizes(in_features)[0]

    def config(self):
        return {"type": self.name}
