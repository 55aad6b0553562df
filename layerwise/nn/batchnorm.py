"""BatchNorm: batch normalisation over the batch axis of (N, D) activations, or per channel of images."""

import numpy as np

from ..errors import ConfigError
from .base import ColumnSums, Layer, _buffer


class BatchNorm(Layer):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta

    Shape: x (N, D) -> y (N, D); gamma, beta (D,) parameters; running_mean, running_var (D,) buffers.
    Training: mean and var are the batch's (var biased, over N); each step the running statistics move
    toward them, running = (1 - momentum) * running + momentum * batch, with the unbiased batch variance
    var * N / (N - 1) for running_var (PyTorch's BatchNorm1d convention, momentum 0.1).
    Evaluation: mean and var are the running statistics, so a prediction does not depend on its batch.
    Images: after a conv2d, x (N, H, W, C) channels-last is normalised per channel (BatchNorm2d):
    in_features is C and the statistics run over the N*H*W entries of each channel (every axis but the
    last), so below N stands for that count.
    """

    name = "batchnorm"
    ARGS = {"in_features": int, "momentum": float, "eps": float}
    PER_CHANNEL = True  # on images, in_features is the number of channels

    def __init__(self, in_features, momentum=0.1, eps=1e-5, dtype=np.float32):
        super().__init__()
        if not 0 <= momentum <= 1:
            raise ConfigError(f"momentum: expected 0 <= momentum <= 1 (0.1 is usual), received {momentum}")
        if not eps > 0:
            raise ConfigError(f"eps: expected a small positive number (1e-5 is usual), received {eps}")
        self.in_features, self.momentum, self.eps = int(in_features), float(momentum), float(eps)
        D = self.in_features
        self.params = {"gamma": np.ones(D, dtype), "beta": np.zeros(D, dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.buffers = {"running_mean": np.zeros(D, dtype), "running_var": np.ones(D, dtype)}
        self._mean, self._var, self._inv_std, self._scale, self._tmp = (np.empty(D, dtype) for _ in range(5))
        self._xhat = None
        self._y = None
        self._dx = None
        self._batch_stats = True  # whether the last forward normalised with the batch's statistics
        self._column_sums = ColumnSums()  # sums over every axis but the channels

    @classmethod
    def sizes(cls, in_features, **kwargs):
        channels = in_features[0] if isinstance(in_features, tuple) else in_features
        return in_features, 4 * channels  # gamma, beta and the two running statistics

    def reset_parameters(self, rng):
        """gamma = 1, beta = 0, running statistics back to mean 0, variance 1 (`rng` is not used)."""
        self.params["gamma"][...] = 1
        self.params["beta"][...] = 0
        self.buffers["running_mean"][...] = 0
        self.buffers["running_var"][...] = 1

    def forward(self, x):
        N, sums = x.size // x.shape[-1], self._column_sums
        mean, var, inv_std = self._mean, self._var, self._inv_std
        xhat = self._xhat = _buffer(self._xhat, x.shape, x.dtype)
        y = self._y = _buffer(self._y, x.shape, x.dtype)
        self._batch_stats = self.training
        if self.training:
            sums(x, out=mean)
            mean /= N
            np.subtract(x, mean, out=xhat)  # centred x
            np.multiply(xhat, xhat, out=y)  # y as scratch for the squares
            sums(y, out=var)
            var /= N  # biased batch variance
            self._update_running(N)
        else:
            np.copyto(mean, self.buffers["running_mean"])
            np.copyto(var, self.buffers["running_var"])
            np.subtract(x, mean, out=xhat)
        np.add(var, self.eps, out=inv_std)
        np.sqrt(inv_std, out=inv_std)
        np.reciprocal(inv_std, out=inv_std)
        xhat *= inv_std  # xhat = (x - mean) / sqrt(var + eps)
        np.multiply(xhat, self.params["gamma"], out=y)
        y += self.params["beta"]
        return y

    def _update_running(self, N):
        m, tmp = self.momentum, self._tmp
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        rm *= 1 - m
        np.multiply(self._mean, m, out=tmp)
        rm += tmp
        rv *= 1 - m
        np.multiply(self._var, m * N / (N - 1) if N > 1 else m, out=tmp)  # unbiased variance
        rv += tmp

    def backward(self, dout, input_grad=True):
        N, sums = dout.size // dout.shape[-1], self._column_sums
        xhat, dgamma, dbeta = self._xhat, self.grads["gamma"], self.grads["beta"]
        dx = self._dx = _buffer(self._dx, dout.shape, dout.dtype)
        sums(dout, out=dbeta)  # dbeta = sum_n dout   (N,D) -> (D,)
        np.multiply(dout, xhat, out=dx)  # dx as scratch
        sums(dx, out=dgamma)  # dgamma = sum_n dout * xhat   (N,D) -> (D,)
        if not input_grad:
            return None
        scale = self._scale
        np.multiply(self.params["gamma"], self._inv_std, out=scale)  # gamma / sqrt(var + eps), (D,)
        if not self._batch_stats:
            np.multiply(dout, scale, out=dx)  # running statistics are constants: dx = dout * gamma / std
            return dx
        # Batch statistics (cs231n's batchnorm_backward_alt): mean and var depend on every row, and
        # summing the three paths through xhat, mean and var gives
        #   dx = gamma / std * (dout - (dbeta + xhat * dgamma) / N)     (N,D)
        np.multiply(xhat, dgamma, out=dx)
        dx += dbeta
        dx *= -1 / N
        dx += dout
        dx *= scale
        return dx

    def config(self):
        return {"type": self.name, "in_features": self.in_features, "momentum": self.momentum, "eps": self.eps}
