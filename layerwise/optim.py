"""Optimizers: an update rule and the state it keeps per parameter (like cs231n's optim.py).

An optimizer walks the model's (name, parameter, gradient) arrays and updates parameters in place.
"""

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import CheckpointError


class SGD:
    """Stochastic gradient descent with momentum, Nesterov momentum and weight decay (PyTorch's rule):

        g = dL/dp + weight_decay * p
        v = momentum * v + g
        p = p - lr * (g + momentum * v)   if nesterov
        p = p - lr * v                    otherwise (plain SGD when momentum = 0)
    """

    name = "sgd"

    def __init__(self, named_parameters, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, threads=None):
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.params = list(named_parameters)
        self.velocity = {name: np.zeros_like(p) for name, p, _ in self.params}
        # Per parameter: (p, grad, velocity, scratch for the decayed gradient, scratch for the
        # update), so a step allocates nothing.
        groups = [
            (p, g, self.velocity[name], np.empty_like(p) if self.weight_decay else None, np.empty_like(p))
            for name, p, g in self.params
        ]
        # The update is a few elementwise passes over every parameter, and NumPy runs each on one
        # core; cut the arrays into row blocks and update the blocks on several threads (NumPy
        # releases the GIL inside ufuncs). Elementwise, so the result is the same bit for bit.
        self.threads = threads or default_threads()
        self._shards = _shard(groups, self.threads)
        self._pool = ThreadPoolExecutor(len(self._shards) - 1) if len(self._shards) > 1 else None

    def step(self):
        pending = [self._pool.submit(self._update, shard) for shard in self._shards[1:]] if self._pool else []
        self._update(self._shards[0])
        for future in pending:
            future.result()

    def _update(self, shard):
        mu, lr, wd = self.momentum, self.lr, self.weight_decay
        for p, grad, v, decayed, update in shard:
            g = grad
            if wd:
                g = decayed
                np.multiply(p, wd, out=g)
                g += grad  # g = grad + wd * p, leaving the layer's gradient untouched
            direction = g
            if mu:
                v *= mu
                v += g  # v = mu * v + g
                direction = v
                if self.nesterov:
                    np.multiply(v, mu, out=update)
                    update += g  # g + mu * v
                    direction = update
            np.multiply(direction, lr, out=update)
            p -= update

    def state_dict(self):
        return {f"velocity/{name}": v.copy() for name, v in self.velocity.items()}

    def load_state_dict(self, state):
        """Copy the momentum buffers in; every name and shape must match (else CheckpointError)."""
        for name, v in self.velocity.items():
            saved = state.get(f"velocity/{name}")
            if saved is None or saved.shape != v.shape:
                found = "missing" if saved is None else f"shape {saved.shape}, expected {v.shape}"
                raise CheckpointError(f"optimizer state velocity/{name}: {found}")
            v[...] = saved


def default_threads():
    """CPUs this process may use, at most 4 (the update is memory-bound beyond that)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


SHARD_MIN_SIZE = 1 << 15  # arrays smaller than this are not worth splitting across threads


def _shard(groups, n):
    """Split the row blocks of every big array group into `n` lists; small arrays stay in the first
    (a model of small arrays then has one shard and never pays for a thread hand-off)."""
    shards = [[] for _ in range(n)]
    for group in groups:
        p = group[0]
        if n > 1 and p.size >= SHARD_MIN_SIZE and p.shape[0] >= n:
            # np.array_split along rows gives views; row blocks of C-contiguous arrays are contiguous.
            parts = zip(*(np.array_split(a, n) if a is not None else [None] * n for a in group))
            for shard, part in zip(shards, parts):
                shard.append(part)
        else:
            shards[0].append(group)
    return [s for s in shards if s]


def learning_rate(schedule, base_lr, epoch, epochs):
    """Learning rate for a 0-based epoch: "constant", or "cosine" (from base_lr down to 0 at the end)."""
    if schedule == "cosine":
        return base_lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    return base_lr


OPTIMIZERS = {SGD.name: SGD}
SCHEDULES = ("constant", "cosine")
