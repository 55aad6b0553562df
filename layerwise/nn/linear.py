"""Linear: the fully connected layer, y = x @ W + b."""

import numpy as np

from ..errors import ConfigError
from .base import Layer, _buffer


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


