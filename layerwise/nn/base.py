"""The Layer base class and the kept-buffer helpers every layer uses.

Contract:
    forward(x) -> y                  keeps what backward needs on named attributes
    backward(dout, input_grad=True)  fills self.grads (same keys as self.params) and returns
                                     dx = dL/dx; with input_grad=False it skips dx and returns None
                                     (training never needs the gradient w.r.t. the data).
Names: N batch, D in features, M out features; dout = dL/dy.
Hot-path arrays are written in place into buffers the layer keeps (`out=`), so a training step
allocates almost nothing; a returned array is only valid until the layer's next call.

Modes: `training` is True while training (Dropout drops, BatchNorm uses batch statistics) and False
in evaluation (Dropout is the identity, BatchNorm uses its running statistics); Sequential.train() and
Sequential.eval() set it on every layer.
"""

import inspect

import numpy as np


def _buffer(buf, shape, dtype):
    """Return `buf` if it already has this shape and dtype, else a fresh empty array."""
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        return np.empty(shape, dtype=dtype)
    return buf


class ColumnSums:
    """out[d] = sum_r a[r, d] over every axis of `a` but the last, as one GEMV with a kept ones vector.

    NumPy's own axis-0 sum of a tall, narrow array (a conv's N*H*W rows of C channels) runs one short
    inner loop per row: measured 4.5x slower here than ones @ a for (100352, 32) float32.
    """

    def __init__(self):
        self._ones = None

    def __call__(self, a, out):
        if not a.flags.c_contiguous:  # a view (a sliced dx, the model's channels-last input): reshaping
            return np.sum(a, axis=tuple(range(a.ndim - 1)), out=out)  # it would copy the whole array
        rows = a.size // a.shape[-1]
        if self._ones is None or self._ones.shape != (rows,) or self._ones.dtype != a.dtype:
            self._ones = np.ones(rows, dtype=a.dtype)
        return np.matmul(self._ones, a.reshape(rows, a.shape[-1]), out=out)  # (R,)@(R,D) -> (D,)


class Layer:
    """Base class: a layer without parameters has empty `params` and `grads`.

    ARGS maps the constructor arguments a config may give to their types (what the registry checks).
    `buffers` holds state that is saved with the weights but not trained (BatchNorm's running statistics).
    """

    ARGS = {}
    training = True

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.buffers = {}

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
        return {"type": self.name, **{k: getattr(self, k) for k in self.ARGS}}

    def describe(self):
        """The repr without arguments left at their defaults (PyTorch's habit), for tables people read:
        Conv2d(in_channels=1, out_channels=16, kernel_size=5, padding=2)."""
        defaults = {name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items()
                         if k != "type" and not (k in defaults and defaults[k] == v))
        return f"{type(self).__name__}({args})"

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"
