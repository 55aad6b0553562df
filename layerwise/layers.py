"""Layers, each with a hand-derived backward written right under its forward.

Contract:
    forward(x) -> y                  keeps what backward needs on named attributes
    backward(dout, input_grad=True)  fills self.grads (same keys as self.params) and returns
                                     dx = dL/dx; with input_grad=False it skips dx and returns None
                                     (training never needs the gradient w.r.t. the data).
Names: N batch, D in features, M out features; dout = dL/dy.
Hot-path arrays are written in place into buffers the layer keeps (`out=`), so a training step
allocates almost nothing; a returned array is only valid until the layer's next call.
"""

import numpy as np

from .errors import ConfigError


def _buffer(buf, shape, dtype):
    """Return `buf` if it already has this shape and dtype, else a fresh empty array."""
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        return np.empty(shape, dtype=dtype)
    return buf


class Layer:
    """Base class: a layer without parameters has empty `params` and `grads`.

    ARGS maps the constructor arguments a config may give to their types (what the registry checks).
    """

    ARGS = {}

    def __init__(self):
        self.params = {}
        self.grads = {}

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout, input_grad=True):
        raise NotImplementedError

    def output_features(self, in_features):
        """Width of the output for an input of `in_features` (elementwise layers keep it)."""
        return in_features

    @classmethod
    def sizes(cls, in_features, **kwargs):
        """(output width, number of parameters) of the layer these arguments build, without building
        it: what the registry checks against the memory available before allocating anything."""
        return in_features, 0

    def config(self):
        """Constructor arguments, so `build([layer.config()])` rebuilds the same layer."""
        return {"type": self.name}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


class Linear(Layer):
    """y = x @ W + b

    Shape: x (N, D) -> y (N, M); W (D, M), b (M,).
    init: "he" (normal, std sqrt(2/D), for ReLU nets), "xavier" (normal, std sqrt(2/(D+M)), for
    sigmoid/tanh nets) or "uniform" (U(-1/sqrt(D), 1/sqrt(D)), PyTorch's default range).
    """

    name = "linear"
    ARGS = {"in_features": int, "out_features": int, "bias": bool, "init": str}
    INITS = ("he", "xavier", "uniform")

    def __init__(self, in_features, out_features, bias=True, init="he", dtype=np.float32):
        super().__init__()
        if init not in self.INITS:
            raise ConfigError(f"init: unknown init {init!r}; valid: {', '.join(self.INITS)}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.bias, self.init = bool(bias), init
        self.params["W"] = np.zeros((self.in_features, self.out_features), dtype=dtype)
        if self.bias:
            self.params["b"] = np.zeros(self.out_features, dtype=dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x = None
        self._y = None
        self._dx = None

    def reset_parameters(self, rng):
        """Draw W from the chosen init with `rng` (an np.random.Generator); b starts at zero."""
        D, M = self.in_features, self.out_features
        W = self.params["W"]
        if self.init == "he":
            W[...] = rng.standard_normal((D, M)) * np.sqrt(2.0 / D)
        elif self.init == "xavier":
            W[...] = rng.standard_normal((D, M)) * np.sqrt(2.0 / (D + M))
        else:
            bound = 1.0 / np.sqrt(D)
            W[...] = rng.uniform(-bound, bound, (D, M))
        if self.bias:
            self.params["b"][...] = 0.0

    def forward(self, x):
        W = self.params["W"]
        self._x = x
        self._y = _buffer(self._y, (x.shape[0], self.out_features), W.dtype)
        np.matmul(x, W, out=self._y)  # (N,D)@(D,M) -> (N,M)
        if self.bias:
            self._y += self.params["b"]  # broadcast (M,) over the N rows
        return self._y

    def backward(self, dout, input_grad=True):
        W = self.params["W"]
        np.matmul(self._x.T, dout, out=self.grads["W"])  # dW = x.T @ dout   (D,N)@(N,M) -> (D,M)
        if self.bias:
            np.sum(dout, axis=0, out=self.grads["b"])  # db = sum_n dout   (N,M) -> (M,)
        if not input_grad:
            return None
        self._dx = _buffer(self._dx, self._x.shape, W.dtype)
        np.matmul(dout, W.T, out=self._dx)  # dx = dout @ W.T   (N,M)@(M,D) -> (N,D)
        return self._dx

    def output_features(self, in_features):
        return self.out_features

    @classmethod
    def sizes(cls, in_features, out_features, bias=True, **kwargs):
        return out_features, in_features * out_features + (out_features if bias else 0)

    def config(self):
        return {
            "type": self.name,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias,
            "init": self.init,
        }


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
        self._dx = _buffer(self._dx, dout.shape, dout.dtype)
        np.multiply(dout, self._y > 0, out=self._dx)  # dx = dout * 1[x > 0]  (y > 0 exactly where x > 0)
        return self._dx


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


LAYERS = {cls.name: cls for cls in (Linear, ReLU, Sigmoid, Tanh)}
