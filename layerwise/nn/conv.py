"""Conv2d: 2-D convolution (cross-correlation, as every framework computes it) through im2col.

Layout: images are channels-last inside the model, x (N, H, W, C) (Sequential turns the public
(N, C, H, W) input into it once, as a view), so the patches of every output pixel form one matrix and
the convolution is a single GEMM: cols (N*Ho*Wo, kh*kw*C) @ W (kh*kw*C, M) -> y (N*Ho*Wo, M) = y
(N, Ho, Wo, M), already channels-last for the next layer.

Cache blocking: the patch matrix of a whole batch is large (a 5x5 conv32 -> 64 on 14x14 images: 80 MB
for 128 images), so it is built and multiplied a block of images at a time, each block's patches
about BLOCK_BYTES, written and read again while still in cache. The block's GEMM is the same product on
fewer rows, and backward rebuilds a block's patches rather than keeping the batch's: measured here at
one thread, the LeNet-like conv64's step went from 124 ms to 87 ms. Within a block everything is whole-
array work; the loop runs over a handful of blocks, never over images or pixels.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ConfigError
from .base import ColumnSums, Layer, _buffer

BLOCK_BYTES = 2 ** 21  # patches per block: about 2 MiB (measured: 2-4 MiB fastest here, 80 MB 1.6x slower)


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


def image_blocks(n, bytes_per_image):
    """(start, stop) of consecutive blocks of the batch's n images, each about BLOCK_BYTES of patches."""
    size = max(1, min(n, BLOCK_BYTES // max(1, bytes_per_image)))
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def _block_buffer(buf, shape, dtype):
    """(buf, view): a kept flat buffer at least as large as `shape`, and its first prod(shape) entries
    as a contiguous array of that shape, so the batch's last, smaller block reuses the same memory."""
    size = int(np.prod(shape))
    if buf is None or buf.size < size or buf.dtype != dtype:
        buf = np.empty(size, dtype=dtype)
    return buf, buf[:size].reshape(shape)


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
        self._source = None  # what the patches are cut from: _xp, or x itself without padding
        self._cols = None  # one block's im2col patches (B*Ho*Wo, kh*kw*C)
        self._cols_t = None  # one input channel: a block's patches transposed, (kh*kw, B*Ho*Wo)
        self._y = None
        self._dW_block = None  # one block's share of dW, added up
        self._dcols = None  # one block's patches of the padded dout (stride 1) or of dout @ W.T (stride > 1)
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

    def _patches(self, xp, a, b, ho, wo):
        """The im2col matrix of images a..b of the padded input: (B*Ho*Wo, kh*kw*C), rows (n, p, q),
        columns (i, j, c): cols[(n, p, q), (i, j, c)] = xp[n, p*s + i, q*s + j, c]."""
        k, s, c, dtype = self.kernel_size, self.stride, self.in_channels, xp.dtype
        windows = sliding_window_view(xp[a:b], (k, k), axis=(1, 2))[:, ::s, ::s]  # (B, Ho, Wo, C, k, k), a view
        rows = (b - a) * ho * wo
        if c == 1:  # one channel: kept transposed, (kh*kw, B*Ho*Wo), so that each kernel offset is one
            # shifted image copied in runs of Wo floats (runs of kw floats otherwise; 4.5x faster)
            self._cols_t, cols_t = _block_buffer(self._cols_t, (k * k, rows), dtype)
            np.copyto(cols_t.reshape(k, k, b - a, ho, wo), windows[:, :, :, 0].transpose(3, 4, 0, 1, 2))
            return cols_t.T  # the same matrix, F-ordered; BLAS takes either
        # copied in (i, j, c) order: each copied run is C contiguous floats and cols @ W needs no transpose
        self._cols, cols = _block_buffer(self._cols, (rows, k * k * c), dtype)
        np.copyto(cols.reshape(b - a, ho, wo, k, k, c), windows.transpose(0, 1, 2, 4, 5, 3))
        return cols

    def forward(self, x):
        k, s, m = self.kernel_size, self.stride, self.out_channels
        n, h, w, c = x.shape
        ho, wo = spatial_out(h, k, s, self.padding), spatial_out(w, k, s, self.padding)
        self._in_shape = x.shape
        xp = self._source = self._padded(x)  # kept: backward rebuilds each block's patches from it
        W = self.params["W"].reshape(k * k * c, m)
        y = self._y = _buffer(self._y, (n * ho * wo, m), x.dtype)
        for a, b in image_blocks(n, ho * wo * k * k * c * x.itemsize):
            block = y[a * ho * wo : b * ho * wo]
            np.matmul(self._patches(xp, a, b, ho, wo), W, out=block)  # (B*Ho*Wo,K)@(K,M) -> (B*Ho*Wo,M)
            if self.bias:
                block += self.params["b"]
        return y.reshape(n, ho, wo, m)

    def backward(self, dout, input_grad=True):
        k, s, c, m = self.kernel_size, self.stride, self.in_channels, self.out_channels
        n, ho, wo = dout.shape[:3]
        d2 = dout.reshape(-1, m)  # (N*Ho*Wo, M)
        xp = self._source
        dW = self.grads["W"].reshape(k * k * c, m)
        part = self._dW_block = _buffer(self._dW_block, dW.shape, dout.dtype)
        for index, (a, b) in enumerate(image_blocks(n, ho * wo * k * k * c * dout.itemsize)):
            # dW = cols.T @ dout   (K,N*Ho*Wo)@(N*Ho*Wo,M) -> (K,M), the (kh, kw, C, M) kernel, block by block
            np.matmul(self._patches(xp, a, b, ho, wo).T, d2[a * ho * wo : b * ho * wo], out=dW if index == 0 else part)
            if index:
                dW += part
        if self.bias:
            self._column_sums(d2, out=self.grads["b"])  # db = sum over n, p, q of dout   -> (M,)
        if not input_grad:
            return None
        if s == 1:
            return self._dx_full_convolution(dout)
        dxp = self._dxp = _buffer(self._dxp, xp.shape, dout.dtype)
        dxp.fill(0)
        Wt = self.params["W"].reshape(k * k * c, m).T
        for a, b in image_blocks(n, ho * wo * k * k * c * dout.itemsize):
            self._dcols, dcols = _block_buffer(self._dcols, ((b - a) * ho * wo, k * k * c), dout.dtype)
            np.matmul(d2[a * ho * wo : b * ho * wo], Wt, out=dcols)  # dcols = dout @ W.T   (B*Ho*Wo,M)@(M,K) -> (B*Ho*Wo,K)
            # dx[n, p*s + i, q*s + j, c] += dcols[n, p, q, i, j, c]: im2col's adjoint
            col2im_add(dxp[a:b], dcols.reshape(b - a, ho, wo, k, k, c), k, k, s)
        p = self.padding
        return dxp[:, p : dxp.shape[1] - p, p : dxp.shape[2] - p, :] if p else dxp

    def _dx_full_convolution(self, dout):
        """Stride 1: dx[n, h, w, c] = sum_{i, j, m} dout_padded[n, h + i, w + j, m] * W[k-1-i, k-1-j, c, m],
        the "full" convolution of dout (zero-padded by k - 1 - pad) with the kernel turned 180 degrees:
        per block, one more im2col and one GEMM (B*H*W, k*k*M) @ (k*k*M, C), measured faster here than
        the dcols GEMM plus k*k slice-adds of col2im."""
        k, m, c = self.kernel_size, self.out_channels, self.in_channels
        n, h, w, _ = self._in_shape
        ho, wo = dout.shape[1:3]
        q = k - 1 - self.padding
        shape = (n, ho + 2 * q, wo + 2 * q, m)
        if self._dxp is None or self._dxp.shape != shape or self._dxp.dtype != dout.dtype:
            self._dxp = np.zeros(shape, dtype=dout.dtype)  # the padded dout; its border stays zero
        doutp = self._dxp
        doutp[:, q : q + ho, q : q + wo, :] = dout
        flipped = self._flipped = _buffer(self._flipped, (k, k, m, c), dout.dtype)
        flipped_kernel(self.params["W"], out=flipped)
        flipped = flipped.reshape(k * k * m, c)
        dx = self._dx = _buffer(self._dx, (n * h * w, c), dout.dtype)
        windows = sliding_window_view(doutp, (k, k), axis=(1, 2))  # (N, H, W, M, k, k), a view
        for a, b in image_blocks(n, h * w * k * k * m * dout.itemsize):
            self._dcols, dcols = _block_buffer(self._dcols, ((b - a) * h * w, k * k * m), dout.dtype)
            np.copyto(dcols.reshape(b - a, h, w, k, k, m), windows[a:b].transpose(0, 1, 2, 4, 5, 3))
            np.matmul(dcols, flipped, out=dx[a * h * w : b * h * w])  # dx = dcols @ rot180(W)   (B*H*W,k*k*M)@(k*k*M,C)
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
        """Floats per example beyond the output: the padded input, db's ones vector, and what dx needs
        (stride 1: the padded dout and dx; else the padded dx). The patch blocks are in block_bytes."""
        ho, wo = check_window(cls.name, in_features, kernel_size, stride, padding)
        c, h, w = in_features
        q = kernel_size - 1 - padding
        padded = (h + 2 * padding) * (w + 2 * padding) * c
        forward = (padded if padding else 0) + ho * wo  # and db's ones vector
        if stride == 1:
            return forward + (ho + 2 * q) * (wo + 2 * q) * out_channels + h * w * c
        return forward + padded

    @classmethod
    def block_bytes(cls, in_features, out_channels, kernel_size, stride=1, padding=0, itemsize=4, **kwargs):
        """Bytes of the two patch-block buffers (the input's, then dout's or dcols'), whatever the batch:
        each about BLOCK_BYTES, or one image's patches when those are larger."""
        ho, wo = check_window(cls.name, in_features, kernel_size, stride, padding)
        c, h, w = in_features
        kk = kernel_size * kernel_size
        one_image = ho * wo * kk * c * itemsize
        backward = h * w * kk * out_channels * itemsize if stride == 1 else one_image
        return max(BLOCK_BYTES, one_image) + max(BLOCK_BYTES, backward)

    def flops(self, in_shape):
        """Multiply-adds x 2 of one example's forward pass."""
        _, ho, wo = self.sizes(in_shape, self.out_channels, self.kernel_size, self.stride, self.padding)[0]
        return 2 * ho * wo * self.kernel_size ** 2 * self.in_channels * self.out_channels

    def config(self):
        return {"type": self.name, "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                "bias": self.bias, "init": self.init}
