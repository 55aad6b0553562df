"""Losses. Contract: forward(output, target) -> float (mean over the batch); backward() -> dL/d(output).

Names: N batch, C classes (or M outputs). `task` is the kind of data a loss fits ("classification":
integer class labels; "regression": float targets shaped like the output). ARGS maps the arguments a
config may give (`loss: {type: huber, delta: 1.0}`) to their types, as for layers.
"""

import numpy as np

from ..errors import ConfigError, DataError
from .base import _buffer


class SoftmaxCrossEntropy:
    """L = mean_n [ logsumexp(z_n) - z_n[t_n] ]   (softmax and cross-entropy fused, on logits z)

    With `label_smoothing` e (RealMLP uses 0.1) the target is (1 - e) onehot(t) + e / C, so
    L = mean_n [ logsumexp(z_n) - (1 - e) z_n[t_n] - e mean_c z_nc ]: the model is never pushed towards
    infinite logits, and a few mislabelled rows pull less.
    With `class_weight` w (one per class; data.class_weight: balanced sets it), PyTorch's weighted mean:
    L = sum_n [ (1 - e) w[t_n] (lse(z_n) - z_n[t_n]) + e / C sum_c w_c (lse(z_n) - z_nc) ] / sum_n w[t_n].

    Shape: z (N, C) float logits, t (N,) integer class indices.
    Reduction: mean over the batch (weighted by class_weight when set).
    """

    name = "softmax_cross_entropy"
    task = "classification"
    ARGS = {"label_smoothing": float}

    def __init__(self, label_smoothing=0.0):
        if not 0 <= label_smoothing < 1:
            raise ConfigError(f"label_smoothing: expected a number at least 0 and below 1 (0.1 is usual), received {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self._p = None
        self._t = None
        self._w = None  # per-row weight w[t_n] / sum w[t_n], when class_weight is set
        self._weight_sum = None  # sum_n w[t_n]
        self.class_weight = None  # (C,) float64, or None

    @property
    def formula(self):
        """The first docstring line, or the smoothed loss (`layerwise trace` prints it)."""
        if not self.label_smoothing:
            return None
        return (f"L = mean_n [ logsumexp(z_n) - q_n . z_n ],  q_n = (1 - e) onehot(t_n) + e / C,  "
                f"e = label_smoothing {self.label_smoothing}")

    def forward(self, output, target):
        N, C = output.shape
        e = self.label_smoothing
        # Shift each row by its max so exp never overflows (logits of 1e4 stay finite): softmax and
        # logsumexp - z are unchanged by a per-row constant.
        shifted = output - output.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        self._p = exp
        self._p /= sum_exp  # softmax probabilities, (N, C)
        self._t = target
        log_sum = np.log(sum_exp[:, 0])
        nll = log_sum - shifted[np.arange(N), target]  # -log p[t_n]
        if self.class_weight is None:
            loss = nll.mean()
            if e:
                loss = (1 - e) * loss + e * (log_sum - shifted.mean(axis=1)).mean()  # -mean_c log p_c
            return float(loss)
        w = self.class_weight[target]
        self._weight_sum = w.sum()
        self._w = (w / self._weight_sum).astype(output.dtype)
        loss = (self._w * nll).sum()
        if e:
            cw = self.class_weight
            smooth = log_sum * cw.sum() - shifted @ cw  # sum_c w_c (-log p_c), per row
            loss = (1 - e) * loss + e / C * smooth.sum() / self._weight_sum
        return float(loss)

    def backward(self):
        # dL/dz = (softmax(z) - q) / N with q = (1 - e) onehot(t) + e / C: d/dz of logsumexp(z) is
        # softmax(z), of -q.z it is -q, and the mean over the batch divides by N.
        # Weighted: row n gives [(1 - e) w[t_n] (p - onehot(t)) + e / C (sum_c w_c p - w)] / sum w[t_n].
        N, C = self._p.shape
        e = self.label_smoothing
        dout = self._p.copy()
        if self.class_weight is None:
            dout[np.arange(N), self._t] -= 1 - e
            if e:
                dout -= e / C
            dout /= N
            return dout
        dout[np.arange(N), self._t] -= 1
        dout *= (1 - e) * self._w[:, None]  # (N,C) * (N,1)
        if e:
            cw = self.class_weight.astype(dout.dtype)
            dout += (e / (C * self._weight_sum)) * (cw.sum() * self._p - cw)
        return dout


class MSE:
    """L = mean over all N*M entries of (y - t)^2

    Shape: y (N, M), t (N, M).
    Reduction: mean over the batch and the outputs (PyTorch's MSELoss default), so dL/dy = 2 (y - t) / (N*M).
    """

    name = "mse"
    task = "regression"
    ARGS = {}

    def __init__(self):
        self._diff = None

    def forward(self, output, target):
        self._diff = output - target
        return float(np.mean(self._diff**2))

    def backward(self):
        return self._diff * (2.0 / self._diff.size)  # dy = 2 (y - t) / (N*M)


class BinaryCrossEntropy:
    """L = mean over all N*C entries of  -[t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))]
         = mean of  max(z, 0) - z * t + log(1 + exp(-|z|))      (sigmoid fused, on logits z)

    One independent sigmoid per output (one-vs-rest), so it fits two-class data (2 outputs), multi-class
    data (C outputs) and multi-label data alike. Targets are 0/1 and never go through a log:
      - integer class labels t (N,) are one-hot encoded to (N, C) (what the layerwise datasets give);
      - a float array of 0/1 targets shaped like the output (N, C) is used as it is (multi-label, or
        a single-logit two-class output (N, 1)).
    The fused form is exact and finite for any logit: exp only ever sees -|z| <= 0.
    Reduction: mean over the batch and the outputs (PyTorch's BCEWithLogitsLoss default), so
    dL/dz = (sigmoid(z) - t) / (N*C).
    """

    name = "binary_cross_entropy"
    task = "classification"
    ARGS = {}

    def __init__(self):
        self._z = None
        self._t = None
        self._onehot = None
        self._a = None
        self._b = None
        self._dz = None

    def forward(self, output, target):
        z = self._z = output
        if target.ndim == 1 and target.dtype.kind in "iu" and len(target) == len(z):
            t = self._onehot = _buffer(self._onehot, z.shape, z.dtype)
            t[...] = 0
            np.put_along_axis(t, target[:, None], 1, axis=1)
        elif target.shape == z.shape:
            t = target
        else:
            raise DataError(
                f"binary_cross_entropy: expected integer class labels of shape ({len(z)},) or 0/1 targets of "
                f"shape {z.shape}, received {target.dtype} targets of shape {target.shape}"
            )
        self._t = t
        a = self._a = _buffer(self._a, z.shape, z.dtype)
        b = self._b = _buffer(self._b, z.shape, z.dtype)
        np.abs(z, out=a)
        np.negative(a, out=a)
        np.exp(a, out=a)
        np.log1p(a, out=a)  # log(1 + exp(-|z|))
        np.maximum(z, 0, out=b)
        a += b
        np.multiply(z, t, out=b)
        a -= b  # max(z, 0) - z t + log(1 + exp(-|z|))
        return float(a.mean(dtype=np.float64))

    def backward(self):
        # d/dz of max(z,0) + log(1 + exp(-|z|)) = log(1 + exp(z)) is sigmoid(z); of -z t it is -t;
        # the mean over all N*C entries divides by N*C.
        dz = self._dz = _buffer(self._dz, self._z.shape, self._z.dtype)
        np.multiply(self._z, 0.5, out=dz)
        np.tanh(dz, out=dz)
        dz += 1
        dz *= 0.5  # sigmoid(z) = (1 + tanh(z / 2)) / 2, overflow-free
        dz -= self._t
        dz *= 1.0 / dz.size  # dz = (sigmoid(z) - t) / (N*C)
        return dz


class Huber:
    """L = mean over all N*M entries of h(y - t),  h(d) = d^2 / 2 if |d| <= delta else delta (|d| - delta / 2)

    Shape: y (N, M), t (N, M). Quadratic near the target, linear beyond delta, so outliers pull with
    at most delta. Reduction: mean over the batch and the outputs (PyTorch's HuberLoss default), so
    dL/dy = clip(y - t, -delta, delta) / (N*M).
    """

    name = "huber"
    task = "regression"
    ARGS = {"delta": float}

    def __init__(self, delta=1.0):
        if not delta > 0:
            raise ConfigError(f"delta: expected a positive number (1.0 is usual), received {delta}")
        self.delta = float(delta)
        self._d = None
        self._a = None
        self._c = None
        self._dy = None

    def forward(self, output, target):
        d = self._d = _buffer(self._d, output.shape, output.dtype)
        a = self._a = _buffer(self._a, output.shape, output.dtype)
        c = self._c = _buffer(self._c, output.shape, output.dtype)
        np.subtract(output, target, out=d)
        np.abs(d, out=a)
        np.minimum(a, self.delta, out=c)  # c = min(|d|, delta)
        c *= 0.5
        np.subtract(a, c, out=a)
        c *= 2
        a *= c  # c (|d| - c/2): d^2/2 where |d| <= delta, delta (|d| - delta/2) beyond
        return float(a.mean(dtype=np.float64))

    def backward(self):
        dy = self._dy = _buffer(self._dy, self._d.shape, self._d.dtype)
        np.clip(self._d, -self.delta, self.delta, out=dy)
        dy *= 1.0 / dy.size  # dy = clip(y - t, -delta, delta) / (N*M)
        return dy


class MAE:
    """L = mean over all N*M entries of |y - t|

    Shape: y (N, M), t (N, M). Reduction: mean over the batch and the outputs (PyTorch's L1Loss
    default), so dL/dy = sign(y - t) / (N*M), taking 0 where y = t exactly (PyTorch's subgradient).
    """

    name = "mae"
    task = "regression"
    ARGS = {}

    def __init__(self):
        self._d = None
        self._a = None
        self._dy = None

    def forward(self, output, target):
        d = self._d = _buffer(self._d, output.shape, output.dtype)
        a = self._a = _buffer(self._a, output.shape, output.dtype)
        np.subtract(output, target, out=d)
        np.abs(d, out=a)
        return float(a.mean(dtype=np.float64))

    def backward(self):
        dy = self._dy = _buffer(self._dy, self._d.shape, self._d.dtype)
        np.sign(self._d, out=dy)
        dy *= 1.0 / dy.size  # dy = sign(y - t) / (N*M)
        return dy


LOSSES = {cls.name: cls for cls in (SoftmaxCrossEntropy, BinaryCrossEntropy, MSE, Huber, MAE)}


def task_of(spec):
    """The task a loss spec fits ("classification" or "regression"): a name, or {type: huber, delta: 2.0}.
    An unknown name counts as classification here; build_loss reports it."""
    name = spec.get("type") if isinstance(spec, dict) else spec
    return LOSSES[name].task if isinstance(name, str) and name in LOSSES else "classification"
