"""Pooling over channels-last images (N, H, W, C): MaxPool2d, AvgPool2d, GlobalAvgPool.

A window's entries are visited by kernel offset: offset (i, j) of every window at once is one strided
slice of the input (x[:, i::s, j::s, :], cut to the output's size), so a k x k pool is k*k whole-array
operations and no loop over examples or pixels. When the windows tile the input (stride = kernel and
the kernel divides the size), average pooling is one reshape and a sum.
"""

import numpy as np

from ..errors import ConfigError
from .base import Layer, _buffer
from .conv import check_window, spatial_out, window_slices


class _Pool2d(Layer):
    ARGS = {"kernel_size": int, "stride": int}
    SPATIAL = True

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = int(kernel_size)
        self.stride = int(stride) if stride is not None else self.kernel_size
        self._y = None
        self._dx = None
        self._in_shape = None

    def _out_hw(self, x):
        k, s = self.kernel_size, self.stride
        return spatial_out(x.shape[1], k, s, 0), spatial_out(x.shape[2], k, s, 0)

    def _offsets(self, ho, wo):
        """(offset index, (rows, cols) slices) of every kernel offset (i, j), row-major."""
        k, s = self.kernel_size, self.stride
        return [(i * k + j, (window_slices(i, s, ho), window_slices(j, s, wo))) for i in range(k) for j in range(k)]

    @classmethod
    def sizes(cls, in_features, kernel_size, stride=None, **kwargs):
        ho, wo = check_window(cls.name, in_features, kernel_size, stride or kernel_size, 0)
        return (in_features[0], ho, wo), 0

    def output_features(self, in_features):
        return self.sizes(in_features, self.kernel_size, self.stride)[0]

    def describe(self):
        """As Layer.describe, with a stride equal to the kernel (the default) left out too."""
        return f"{type(self).__name__}(kernel_size={self.kernel_size}" + (
            f", stride={self.stride})" if self.stride != self.kernel_size else ")")

    def flops(self, in_shape):
        c, ho, wo = self.output_features(in_shape)
        return c * ho * wo * self.kernel_size ** 2

    def config(self):
        return {"type": self.name, "kernel_size": self.kernel_size, "stride": self.stride}


class MaxPool2d(_Pool2d):
    """y[n, p, q, c] = max_{i, j < k} x[n, p*s + i, q*s + j, c]

    Shape: x (N, H, W, C) -> y (N, Ho, Wo, C), Ho = (H - k) // s + 1. The gradient of each window goes
    to ONE arg-max, the first in row-major order among equal maxima (as PyTorch), not to every tie.
    A NaN makes the window's maximum NaN; its gradient then goes to the largest number before the NaN
    (PyTorch sends it to the NaN): a NaN loss stops training before any backward runs anyway.
    """

    name = "maxpool2d"
    TIES = True  # equal maxima (ReLU's zeros) have no derivative: gradcheck breaks them first

    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride)
        self._argmax = None  # (N, Ho, Wo, C) uint8/uint16: which kernel offset holds each window's max
        self._greater = None  # bool scratch: this offset's entry beats the maximum so far
        self._moved = None  # the offset's index where it does, else 0
        self._hit = None  # bool scratch: the window's arg-max is at this offset
        self._tmp = None

    def forward(self, x):
        n, _, _, c = x.shape
        ho, wo = self._out_hw(x)
        self._in_shape = x.shape
        y = self._y = _buffer(self._y, (n, ho, wo, c), x.dtype)
        offsets = self._offsets(ho, wo)
        np.copyto(y, x[:, offsets[0][1][0], offsets[0][1][1], :])
        # Each window's arg-max is found while x is read anyway, so backward never reads x again.
        # Strictly greater moves it, so among equal maxima the first in row-major order keeps it.
        index_type = np.uint8 if len(offsets) <= 256 else np.uint16
        argmax = self._argmax = _buffer(self._argmax, y.shape, index_type)
        greater = self._greater = _buffer(self._greater, y.shape, np.bool_)
        moved = self._moved = _buffer(self._moved, y.shape, index_type)
        argmax.fill(0)
        for index, (rows, cols) in offsets[1:]:
            window = x[:, rows, cols, :]
            np.greater(window, y, out=greater)
            # offsets come in increasing order, so "move the arg-max here where greater" is a maximum
            np.multiply(greater, index_type(index), out=moved)
            np.maximum(argmax, moved, out=argmax)
            np.maximum(y, window, out=y)
        return y

    def backward(self, dout, input_grad=True):
        if not input_grad:
            return None
        ho, wo = dout.shape[1:3]
        dx = self._dx = _buffer(self._dx, self._in_shape, dout.dtype)
        hit = self._hit = _buffer(self._hit, dout.shape, np.bool_)
        tmp = self._tmp = _buffer(self._tmp, dout.shape, dout.dtype)
        k, s = self.kernel_size, self.stride
        disjoint = s >= k  # windows do not overlap: each input entry gets at most one window's gradient
        if not disjoint or dx.shape[1] != ho * k or dx.shape[2] != wo * k:
            dx.fill(0)
        for index, (rows, cols) in self._offsets(ho, wo):
            target = dx[:, rows, cols, :]
            np.equal(self._argmax, self._argmax.dtype.type(index), out=hit)
            np.copyto(tmp, hit)  # 1.0 / 0.0 (a bool * float multiply would cast through a buffer)
            tmp *= dout  # dx = dout at the window's arg-max, 0 elsewhere
            if disjoint:
                np.copyto(target, tmp)
            else:
                target += tmp
        return dx


class AvgPool2d(_Pool2d):
    """y[n, p, q, c] = (1 / k^2) sum_{i, j < k} x[n, p*s + i, q*s + j, c]

    Shape: x (N, H, W, C) -> y (N, Ho, Wo, C), Ho = (H - k) // s + 1.
    """

    name = "avgpool2d"

    def _tiles(self, x):
        k = self.kernel_size
        return self.stride == k and x.shape[1] % k == 0 and x.shape[2] % k == 0

    def forward(self, x):
        n, h, w, c = x.shape
        k = self.kernel_size
        ho, wo = self._out_hw(x)
        self._in_shape = x.shape
        y = self._y = _buffer(self._y, (n, ho, wo, c), x.dtype)
        if self._tiles(x):  # windows tile the input: (N, Ho, k, Wo, k, C) summed over the two k axes
            np.sum(x.reshape(n, ho, k, wo, k, c), axis=(2, 4), out=y)
        else:
            y.fill(0)
            for _, (rows, cols) in self._offsets(ho, wo):
                y += x[:, rows, cols, :]
        y *= 1 / (k * k)
        return y

    def backward(self, dout, input_grad=True):
        if not input_grad:
            return None
        n, h, w, c = self._in_shape
        k = self.kernel_size
        ho, wo = dout.shape[1:3]
        dx = self._dx = _buffer(self._dx, self._in_shape, dout.dtype)
        scaled = self._scaled = _buffer(getattr(self, "_scaled", None), dout.shape, dout.dtype)
        np.multiply(dout, 1 / (k * k), out=scaled)  # dx = dout / k^2 on every entry of its window
        if self.stride == k and h % k == 0 and w % k == 0:
            np.copyto(dx.reshape(n, ho, k, wo, k, c), scaled[:, :, None, :, None, :])
        else:
            dx.fill(0)
            for _, (rows, cols) in self._offsets(ho, wo):
                dx[:, rows, cols, :] += scaled
        return dx


class GlobalAvgPool(Layer):
    """y[n, c] = (1 / (H W)) sum_{p, q} x[n, p, q, c]

    Shape: x (N, H, W, C) -> y (N, C): one number per channel, rows for the linear layer after it.
    """

    name = "global_avgpool"
    SPATIAL = True

    def __init__(self):
        super().__init__()
        self._y = None
        self._dx = None
        self._in_shape = None

    def forward(self, x):
        n, h, w, c = x.shape
        self._in_shape = x.shape
        y = self._y = _buffer(self._y, (n, c), x.dtype)
        np.sum(x.reshape(n, h * w, c), axis=1, out=y)
        y *= 1 / (h * w)
        return y

    def backward(self, dout, input_grad=True):
        if not input_grad:
            return None
        n, h, w, c = self._in_shape
        dx = self._dx = _buffer(self._dx, self._in_shape, dout.dtype)
        np.multiply(dout[:, None, None, :], 1 / (h * w), out=dx)  # dx = dout / (H W) on every pixel
        return dx

    @classmethod
    def sizes(cls, in_features, **kwargs):
        if not isinstance(in_features, tuple) or len(in_features) != 3:
            raise ConfigError(f"{cls.name} needs images (channels x height x width) as input, but receives "
                              f"{in_features} features")
        return in_features[0], 0

    def output_features(self, in_features):
        return self.sizes(in_features)[0]

    def flops(self, in_shape):
        c, h, w = in_shape
        return c * h * w

    def config(self):
        return {"type": self.name}
