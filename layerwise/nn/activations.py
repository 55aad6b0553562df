"""Elementwise activations: y = f(x) entry by entry, dx = dout * f'(x).

Shape: any -> same. Each keeps its output (or input) for backward and writes into kept buffers.
"""

import math

import numpy as np

from .base import Layer, _buffer


class ReLU(Layer):
    """y = max(x, 0)

    Shape: any -> same.
    """

    name = "relu"

    def __init__(self):
        super().__init__()
        self._y = None
        self._dx = None

    def forward(self, x):
        self._y = _buffer(self._y, x.shape, x.dtype)
        np.maximum(x, 0, out=self._y)
        return self._y

    def backward(self, dout, input_grad=True):
        if not input_grad:
            return None
        dx = self._dx = _buffer(self._dx, dout.shape, dout.dtype)
        # y = max(x, 0) >= 0, so sign(y) is the 1.0 / 0.0 mask 1[x > 0] in one pass (a NaN x stays NaN in
        # dx instead of a silent 0; training never gets here: a NaN loss stops it before backward)
        np.sign(self._y, out=dx)
        dx *= dout  # dx = dout * 1[x > 0]
        return dx


class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x))

    Shape: any -> same. Computed as (1 + tanh(x / 2)) / 2, the same function, which never overflows.
    """

    name = "sigmoid"

    def __init__(self):
        super().__init__()
        self._y = None
        self._dx = None

    def forward(self, x):
        y = self._y = _buffer(self._y, x.shape, x.dtype)
        np.multiply(x, 0.5, out=y)
        np.tanh(y, out=y)
        y += 1
        y *= 0.5
        return y

    def backward(self, dout, input_grad=True):
        if not input_grad:
            return None
        y, dx = self._y, _buffer(self._dx, dout.shape, dout.dtype)
        self._dx = dx
        np.subtract(1, y, out=dx)
        dx *= y
        dx *= dout  # dx = dout * y * (1 - y)
        return dx


class Tanh(Layer):
    """y = tanh(x)

    Shape: any -> same.
    """

    name = "tanh"

    def __init__(self):
        super().__init__()
        self._y = None
        self._dx = None

    def forward(self, x):
        self._y = _buffer(self._y, x.shape, x.dtype)
        np.tanh(x, out=self._y)
        return self._y

    def backward(self, dout, input_grad=True):
        if not input_grad:
            return None
        y, dx = self._y, _buffer(self._dx, dout.shape, dout.dtype)
        self._dx = dx
        np.multiply(y, y, out=dx)
        np.subtract(1, dx, out=dx)
        dx *= dout  # dx = dout * (1 - y**2)
        return dx


class LeakyReLU(Layer):
    """y = x if x > 0 else negative_slope * x

    Shape: any -> same. negative_slope 0.01 by default (PyTorch's). Computed exactly as
    max(x, slope * x) for slope <= 1 (min for slope > 1).
    """

    name = "leaky_relu"
    ARGS = {"negative_slope": float}

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)
        self._below = None  # bool 1[x <= 0], then the float mask
        self._neg = None
        self._y = None
        self._dx = None

    def forward(self, x):
        below = self._below = _buffer(self._below, x.shape, np.bool_)
        neg = self._neg = _buffer(self._neg, x.shape, x.dtype)
        y = self._y = _buffer(self._y, x.shape, x.dtype)
        np.multiply(x, self.negative_slope, out=y)
        (np.maximum if self.negative_slope <= 1 else np.minimum)(x, y, out=y)
        np.less_equal(x, 0, out=below)
        np.copyto(neg, below)  # 1.0 where x <= 0 (a float mask: masked copies are slow in NumPy)
        return y

    def backward(self, dout, input_grad=True):
        if not input_grad:
            return None
        dx = self._dx = _buffer(self._dx, dout.shape, dout.dtype)
        np.multiply(self._neg, self.negative_slope - 1, out=dx)
        dx += 1
        dx *= dout  # dx = dout * (1 if x > 0 else negative_slope)
        return dx


class ELU(Layer):
    """y = x if x > 0 else alpha * (exp(x) - 1)

    Shape: any -> same. alpha 1.0 by default. Computed as alpha * expm1(min(x, 0)) + max(x, 0): exact
    on both sides (one term is 0), expm1 exact near 0, exp never overflowing.
    """

    name = "elu"
    ARGS = {"alpha": float}

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = float(alpha)
        self._below = None
        self._neg = None
        self._y = None
        self._dx = None

    def forward(self, x):
        below = self._below = _buffer(self._below, x.shape, np.bool_)
        neg = self._neg = _buffer(self._neg, x.shape, x.dtype)
        y = self._y = _buffer(self._y, x.shape, x.dtype)
        np.minimum(x, 0, out=y)
        np.expm1(y, out=y)
        y *= self.alpha
        np.maximum(x, 0, out=neg)  # neg as scratch first
        y += neg
        np.less_equal(x, 0, out=below)
        np.copyto(neg, below)  # 1.0 where x <= 0
        return y

    def backward(self, dout, input_grad=True):
        if not input_grad:
            return None
        dx = self._dx = _buffer(self._dx, dout.shape, dout.dtype)
        np.add(self._y, self.alpha - 1, out=dx)  # for x <= 0: dy/dx = alpha * exp(x) = y + alpha
        dx *= self._neg
        dx += 1
        dx *= dout  # dx = dout * (1 if x > 0 else y + alpha)
        return dx


GELU_C = math.sqrt(2 / math.pi)
GELU_K = 0.044715


class GELU(Layer):
    """y = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))

    The tanh approximation of x * Phi(x) (Hendrycks & Gimpel; PyTorch's GELU(approximate="tanh")), not
    the exact erf form. Shape: any -> same.
    """

    name = "gelu"

    def __init__(self):
        super().__init__()
        self._x = None
        self._t = None
        self._y = None
        self._dx = None
        self._scratch = None

    def forward(self, x):
        self._x = x
        t = self._t = _buffer(self._t, x.shape, x.dtype)
        y = self._y = _buffer(self._y, x.shape, x.dtype)
        np.multiply(x, x, out=t)
        t *= GELU_K
        t += 1
        t *= x
        t *= GELU_C
        np.tanh(t, out=t)  # t = tanh(c (x + k x^3))
        np.add(t, 1, out=y)
        y *= x
        y *= 0.5
        return y

    def backward(self, dout, input_grad=True):
        if not input_grad:
            return None
        x, t = self._x, self._t
        dx = self._dx = _buffer(self._dx, dout.shape, dout.dtype)
        s = self._scratch = _buffer(self._scratch, dout.shape, dout.dtype)
        np.multiply(x, x, out=dx)
        dx *= 3 * GELU_K
        dx += 1
        dx *= GELU_C  # c (1 + 3k x^2) = d/dx of the tanh's argument
        np.multiply(t, t, out=s)
        np.subtract(1, s, out=s)
        dx *= s
        dx *= x
        dx *= 0.5
        np.add(t, 1, out=s)
        s *= 0.5
        dx += s
        dx *= dout  # dx = dout * (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3k x^2))
        return dx


class Softplus(Layer):
    """y = log(1 + exp(x)), computed as max(x, 0) + log1p(exp(-|x|))

    The stable form: exp only ever sees -|x| <= 0, so no overflow for any x and no loss of precision
    for very negative x. Shape: any -> same.
    """

    name = "softplus"

    def __init__(self):
        super().__init__()
        self._x = None
        self._y = None
        self._dx = None
        self._scratch = None

    def forward(self, x):
        self._x = x
        y = self._y = _buffer(self._y, x.shape, x.dtype)
        s = self._scratch = _buffer(self._scratch, x.shape, x.dtype)
        np.abs(x, out=y)
        np.negative(y, out=y)
        np.exp(y, out=y)
        np.log1p(y, out=y)
        np.maximum(x, 0, out=s)
        y += s
        return y

    def backward(self, dout, input_grad=True):
        if not input_grad:
            return None
        dx = self._dx = _buffer(self._dx, dout.shape, dout.dtype)
        np.multiply(self._x, 0.5, out=dx)
        np.tanh(dx, out=dx)
        dx += 1
        dx *= 0.5  # sigmoid(x) = (1 + tanh(x / 2)) / 2, overflow-free
        dx *= dout  # dx = dout * sigmoid(x)
        return dx
