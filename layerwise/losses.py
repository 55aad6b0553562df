"""Losses. Contract: forward(output, target) -> float (mean over the batch); backward() -> dL/d(output).

Names: N batch, C classes (or M outputs).
"""

import numpy as np


class SoftmaxCrossEntropy:
    """L = mean_n [ logsumexp(z_n) - z_n[t_n] ]   (softmax and cross-entropy fused, on logits z)

    Shape: z (N, C) float logits, t (N,) integer class indices.
    Reduction: mean over the batch.
    """

    name = "softmax_cross_entropy"
    task = "classification"

    def __init__(self):
        self._p = None
        self._t = None

    def forward(self, output, target):
        N = output.shape[0]
        # Shift each row by its max so exp never overflows (logits of 1e4 stay finite): softmax and
        # logsumexp - z are unchanged by a per-row constant.
        shifted = output - output.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        self._p = exp
        self._p /= sum_exp  # softmax probabilities, (N, C)
        self._t = target
        log_p_true = shifted[np.arange(N), target] - np.log(sum_exp[:, 0])
        return float(-log_p_true.mean())

    def backward(self):
        # dL/dz = (softmax(z) - onehot(t)) / N: d/dz of logsumexp(z) is softmax(z), of -z[t] is
        # -onehot(t), and the mean over the batch divides by N.
        N = self._p.shape[0]
        dout = self._p.copy()
        dout[np.arange(N), self._t] -= 1
        dout /= N
        return dout


class MSE:
    """L = mean over all N*M entries of (y - t)^2

    Shape: y (N, M), t (N, M).
    Reduction: mean over the batch and the outputs (PyTorch's MSELoss default), so dL/dy = 2 (y - t) / (N*M).
    """

    name = "mse"
    task = "regression"

    def __init__(self):
        self._diff = None

    def forward(self, output, target):
        self._diff = output - target
        return float(np.mean(self._diff**2))

    def backward(self):
        return self._diff * (2.0 / self._diff.size)  # dy = 2 (y - t) / (N*M)


LOSSES = {cls.name: cls for cls in (SoftmaxCrossEntropy, MSE)}
