"""Conv2d: 2-D convolution (cross-correlation, as every framework computes it) through im2col.

Layout: images are channels-last inside the model, x (N, H, W, C) (Sequential turns the public
(N, C, H, W) input into it once, as a view), so the patches of every output pixel form one matrix and
the convolution is a single GEMM: cols (N*Ho*Wo, kh*kw*C) @ W (kh*kw*C, M) -> y (N*Ho*Wo, M) = y
(N, Ho, Wo, M), already channels-last for the next layer.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ConfigError
from .base import ColumnSums, Layer, _buffer


def spatial_out(size, kernel, stride, padding):
    """Output length of a window of `kernel` sliding with `stride` over `size` + 2 * `padding`."""
    return (size + 2 * padding - kernel) // stride + 1


def check_window(name, shape, kernel, stride, padding):
    """(Ho, Wo) for an input shape (C, H, W); a ConfigError naming the shapes when they do not chain."""
    if not isinstance(shape, tuple) or len(shape) != 3:
        raise ConfigError(f"{name} needs images (channels x height x width) as input, but receives "
                          f"{describe_shape(shape)}; a {name} goes before any flatten or linear layer")
    c, h, w = shape
    if h + 2 * padding < kernel or w + 2 * padding < kernel:
        padded = f" (padded by {padding})" if padding else ""
        raise ConfigError(f"{name}: input {describe_shape(shape)}{padded} is smaller than kernel {kernel}")
    if padding >= kernel:
        raise ConfigError(f"{name}: padding {padding} must be smaller than kernel {kernel}")
    return spatial_out(h, kernel, stride, padding), spatial_out(w, kernel, stride, padding)


def describe_shape(shape):
    """(16, 5, 5) -> '16×5×5'; 784 -> '784 features'."""
    if isinstance(shape, tuple):
        return "×".join(str(d) for d in shape)
    return f"{shape} features"


def window_slices(offset, stride, count):
    """The slice picking, for each of `count` windows `stride` apart, the entry at `offset` inside it."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def flipped_kernel(W, out=None):
    """W (kh, kw, C, M) turned 180 degrees and transposed to (kh, kw, M, C): the kernel of dx = dout * W."""
    return np.copyto(out, W[::-1, ::-1].transpose(0, 1, 3, 2)) if out is not None else W[::-1, ::-1].transpose(0, 1, 3, 2)


def col2im_add(dxp, dcols, kh, kw, stride):
    """Scatter-add patch gradients back onto the (padded) input: the adjoint of im2col.

    dcols (N, Ho, Wo, kh, kw, C); dxp (N, Hp, Wp, C) must start at zero. Kernel offset (i, j) of output
    pixel (p, q) came from input pixel (p*s + i, q*s + j), so one strided slice-add per offset puts every
    gradient back where its input came from (no np.add.at, no loop over pixels).
    """
    _, ho, wo = dcols.shape[:3]
    for i in range(kh):
        rows = window_slices(i, stride, ho)
        for j in range(kw):
            dxp[:, rows, window_slices(j, stride, wo), :] += dcols[:, :, :, i, j, :]


class Conv2d(Layer):
    """y[n, p, q, m] = b[m] + sum_{i, j, c} x[n, p*s + i - pad, q*s + j - pad, c] * W[i, j, c, m]

    Shape: x (N, H, W, C) -> y (N, Ho, Wo, M), Ho = (H + 2 pad - kh) // s + 1 (likewise Wo);
    W (kh, kw, C, M) ("HWIO", so reshaped it is the (kh*kw*C, M) GEMM operand with no transpose), b (M,).
    Padding is zeros. init: "he" (normal, std sqrt(2 / fan_in), fan_in = kh*kw*C), "xavier" (std
    sqrt(2 / (fan_in + fan_out)), fan_out = kh*kw*M) or "uniform" (U(+-1/sqrt(fan_in)), PyTorch's range).
    """

    name = "conv2d"
    ARGS = {"in_channels": int, "out_channels": int, "kernel_size": int, "stride": int, "padding": int,
            "bias": bool, "init": str}
    ZERO_OK = ("padding",)
    INITS = ("he", "xavier", "uniform")
    SPATIAL = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, init="he",
                 dtype=np.float32):
        super().__init__()
        if init not in self.INITS:
            raise ConfigError(f"init: unknown init {init!r}; valid: {', '.join(self.INITS)}")
        if padding >= kernel_size:
            raise ConfigError(f"padding: {padding} must be smaller than kernel_size {kernel_size}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)
        self.bias, self.init = bool(bias), init
        k = self.kernel_size
        self.params["W"] = np.zeros((k, k, self.in_channels, self.out_channels), dtype=dtype)
        if self.bias:
            self.params["b"] = np.zeros(self.out_channels, dtype=dtype)
        self.grads = {key: np.zeros_like(v) for key, v in self.params.items()}
        self._xp = None  # the zero-padded input (its border stays zero)
        self._cols = None  # im2col patches (N*Ho*Wo, kh*kw*C)
        self._cols_t = None  # one input channel: the patches transposed, (kh*kw, N*Ho*Wo)
        self._y = None
        self._dcols = None
        self._dxp = None  # stride 1: the zero-padded dout; else the padded input's gradient
        self._flipped = None
        self._dx = None
        self._in_shape = None
        self._column_sums = ColumnSums()

    def reset_parameters(self, rng):
        """Draw W from the chosen init with `rng`; b starts at zero."""
        k, c, m = self.kernel_size, self.in_channels, self.out_channels
        fan_in, fan_out = k * k * c, k * k * m
        W = self.params["W"]
        if self.init == "he":
            W[...] = rng.standard_normal(W.shape) * np.sqrt(2.0 / fan_in)
        elif self.init == "xavier":
            W[...] = rng.standard_normal(W.shape) * np.sqrt(2.0 / (fan_in + fan_out))
        else:
            bound = 1.0 / np.sqrt(fan_in)
            W[...] = rng.uniform(-bound, bound, W.shape)
        if self.bias:
            self.params["b"][...] = 0.0

    def _padded(self, x):
        """x itself, or x copied into the middle of a kept zero-bordered buffer."""
        p = self.padding
        if p == 0:
            return x
        n, h, w, c = x.shape
        shape = (n, h + 2 * p, w + 2 * p, c)
        if self._xp is None or self._xp.shape != shape or self._xp.dtype != x.dtype:
            self._xp = np.zeros(shape, dtype=x.dtype)
        self._xp[:, p : p + h, p : p + w, :] = x
        return self._xp

    def forward(self, x):
        k, s, W = self.kernel_size, self.stride, self.params["W"]
        n, h, w, c = x.shape
        ho, wo = spatial_out(h, k, s, self.padding), spatial_out(w, k, s, self.padding)
        self._in_shape = x.shape
        xp = self._padded(x)
        # windows[n, p, q, c, i, j] = xp[n, p*s + i, q*s + j, c]: a strided view, copied once into cols
        # in (i, j, c) order so that each copied run is C contiguous floats and cols @ W needs no transpose.
        windows = sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::s, ::s]
        if c == 1:  # one channel: cols is kept transposed, (kh*kw, N*Ho*Wo), so that each kernel offset
            # is one shifted image copied in runs of Wo floats (runs of kw floats otherwise; 4.5x faster)
            cols_t = self._cols_t = _buffer(self._cols_t, (k * k, n * ho * wo), x.dtype)
            np.copyto(cols_t.reshape(k, k, n, ho, wo), windows[:, :, :, 0].transpose(3, 4, 0, 1, 2))
            cols = self._cols = cols_t.T  # (N*Ho*Wo, kh*kw): the same matrix, F-ordered; BLAS takes either
        else:
            cols = self._cols = _buffer(self._cols, (n * ho * wo, k * k * c), x.dtype)
            np.copyto(cols.reshape(n, ho, wo, k, k, c), windows.transpose(0, 1, 2, 4, 5, 3))
        y = self._y = _buffer(self._y, (n * ho * wo, self.out_channels), x.dtype)
        np.matmul(cols, W.reshape(k * k * c, self.out_channels), out=y)  # (N*Ho*Wo,K)@(K,M) -> (N*Ho*Wo,M)
        if self.bias:
            y += self.params["b"]
        return y.reshape(n, ho, wo, self.out_channels)

    def backward(self, dout, input_grad=True):
        k, s, W, cols = self.kernel_size, self.stride, self.params["W"], self._cols
        c, m = self.in_channels, self.out_channels
        d2 = dout.reshape(-1, m)  # (N*Ho*Wo, M)
        # dW = cols.T @ dout   (K,N*Ho*Wo)@(N*Ho*Wo,M) -> (K,M), the (kh, kw, C, M) kernel
        np.matmul(cols.T, d2, out=self.grads["W"].reshape(k * k * c, m))
        if self.bias:
            self._column_sums(d2, out=self.grads["b"])  # db = sum over n, p, q of dout   -> (M,)
        if not input_grad:
            return None
        if s == 1:
            return self._dx_full_convolution(dout)
        n, ho, wo = dout.shape[:3]
        dcols = self._dcols = _buffer(self._dcols, cols.shape, dout.dtype)
        np.matmul(d2, W.reshape(k * k * c, m).T, out=dcols)  # dcols = dout @ W.T   (N*Ho*Wo,M)@(M,K) -> (N*Ho*Wo,K)
        xp_shape = self._xp.shape if self.padding else self._in_shape
        dxp = self._dxp = _buffer(self._dxp, xp_shape, dout.dtype)
        dxp.fill(0)
        # dx[n, p*s + i, q*s + j, c] += dcols[n, p, q, i, j, c]: im2col's adjoint
        col2im_add(dxp, dcols.reshape(n, ho, wo, k, k, c), k, k, s)
        p = self.padding
        return dxp[:, p : dxp.shape[1] - p, p : dxp.shape[2] - p, :] if p else dxp

    def _dx_full_convolution(self, dout):
        """Stride 1: dx[n, h, w, c] = sum_{i, j, m} dout_padded[n, h + i, w + j, m] * W[k-1-i, k-1-j, c, m],
        the "full" convolution of dout (zero-padded by k - 1 - pad) with the kernel turned 180 degrees:
        one more im2col and one GEMM (N*H*W, k*k*M) @ (k*k*M, C), measured faster here than the
        dcols GEMM plus k*k slice-adds of col2im."""
        k, m, c = self.kernel_size, self.out_channels, self.in_channels
        n, h, w, _ = self._in_shape
        ho, wo = dout.shape[1:3]
        q = k - 1 - self.padding
        shape = (n, ho + 2 * q, wo + 2 * q, m)
        if self._dxp is None or self._dxp.shape != shape or self._dxp.dtype != dout.dtype:
            self._dxp = np.zeros(shape, dtype=dout.dtype)  # the padded dout; its border stays zero
        doutp = self._dxp
        doutp[:, q : q + ho, q : q + wo, :] = dout
        dcols = self._dcols = _buffer(self._dcols, (n * h * w, k * k * m), dout.dtype)
        windows = sliding_window_view(doutp, (k, k), axis=(1, 2))  # (N, H, W, M, k, k)
        np.copyto(dcols.reshape(n, h, w, k, k, m), windows.transpose(0, 1, 2, 4, 5, 3))
        flipped = self._flipped = _buffer(self._flipped, (k, k, m, c), dout.dtype)
        flipped_kernel(self.params["W"], out=flipped)
        dx = self._dx = _buffer(self._dx, (n * h * w, c), dout.dtype)
        np.matmul(dcols, flipped.reshape(k * k * m, c), out=dx)  # dx = dcols @ rot180(W)   (N*H*W,k*k*M)@(k*k*M,C)
        return dx.reshape(n, h, w, c)

    def output_features(self, in_features):
        return self.sizes(in_features, self.out_channels, self.kernel_size, self.stride, self.padding)[0]

    @classmethod
    def sizes(cls, in_features, out_channels, kernel_size, stride=1, padding=0, bias=True, **kwargs):
        ho, wo = check_window(cls.name, in_features, kernel_size, stride, padding)
        c = in_features[0]
        return (out_channels, ho, wo), kernel_size * kernel_size * c * out_channels + (out_channels if bias else 0)

    @classmethod
    def scratch(cls, in_features, out_channels, kernel_size, stride=1, padding=0, **kwargs):
        """Floats per example beyond the output: the padded input, its im2col patches, and what dx needs
        (stride 1: the padded dout and its patches; else the patches' gradient and the padded dx)."""
        ho, wo = check_window(cls.name, in_features, kernel_size, stride, padding)
        c, h, w = in_features
        kk, q = kernel_size * kernel_size, kernel_size - 1 - padding
        forward = ho * wo * kk * c + (h + 2 * padding) * (w + 2 * padding) * c
        if stride == 1:
            return forward + h * w * kk * out_channels + (ho + 2 * q) * (wo + 2 * q) * out_channels
        return forward + ho * wo * kk * c + (h + 2 * padding) * (w + 2 * padding) * c

    def flops(self, in_shape):
        """Multiply-adds x 2 of one example's forward pass."""
        _, ho, wo = self.sizes(in_shape, self.out_channels, self.kernel_size, self.stride, self.padding)[0]
        return 2 * ho * wo * self.kernel_size ** 2 * self.in_channels * self.out_channels

    def config(self):
        return {"type": self.name, "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                "bias": self.bias, "init": self.init}
