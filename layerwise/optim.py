"""Optimizers: an update rule and the state it keeps per parameter (like cs231n's optim.py).

An optimizer walks the model's (name, parameter, gradient) arrays and updates parameters in place.
"""

import math

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

    def __init__(self, named_parameters, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.params = list(named_parameters)
        self.velocity = {name: np.zeros_like(p) for name, p, _ in self.params}
        # Scratch arrays per parameter so a step allocates nothing.
        self._decayed = {name: np.empty_like(p) for name, p, _ in self.params} if self.weight_decay else {}
        self._update = {name: np.empty_like(p) for name, p, _ in self.params}

    def step(self):
        mu = self.momentum
        for name, p, grad in self.params:
            g = grad
            if self.weight_decay:
                g = self._decayed[name]
                np.multiply(p, self.weight_decay, out=g)
                g += grad  # g = grad + wd * p, leaving the layer's gradient untouched
            update = self._update[name]
            direction = g
            if mu:
                v = self.velocity[name]
                v *= mu
                v += g  # v = mu * v + g
                direction = v
                if self.nesterov:
                    np.multiply(v, mu, out=update)
                    update += g  # g + mu * v
                    direction = update
            np.multiply(direction, self.lr, out=update)
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


def learning_rate(schedule, base_lr, epoch, epochs):
    """Learning rate for a 0-based epoch: "constant", or "cosine" (from base_lr down to 0 at the end)."""
    if schedule == "cosine":
        return base_lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    return base_lr


OPTIMIZERS = {SGD.name: SGD}
SCHEDULES = ("constant", "cosine")
