"""Learning-rate schedules and early stopping: rules driven by the epoch and the validation metric.

A schedule gives the learning rate of every step: its rule sets one rate per epoch (0-based `epoch`),
and an optional linear warmup scales the first `warmup_epochs` epochs step by step:

    lr(step t, from 0) = epoch_lr(epoch) * min(1, (t + 1) / (warmup_epochs * steps_per_epoch))

so the first step uses epoch_lr / W, step W - 1 the full rate, and a one-epoch warmup is smooth.
(PyTorch: LinearLR(start_factor=1/W, total_iters=W-1) stepped per step, times the epoch's rate.)
Only `plateau` has state (the rate, the best value, the epochs without improvement), plain JSON.
"""

import math

from ..errors import CheckpointError


class Schedule:
    name = ""

    def __init__(self, base_lr, warmup_steps=0):
        self.base_lr = float(base_lr)
        self.warmup_steps = int(warmup_steps)

    def lr(self, epoch, t):
        """The rate of global step t (0-based) in `epoch`."""
        lr = self.epoch_lr(epoch)
        if t < self.warmup_steps:
            lr = lr * ((t + 1) / self.warmup_steps)
        return lr

    def epoch_lr(self, epoch):
        raise NotImplementedError

    def end_epoch(self, value):
        """Told the validation metric after every epoch (only plateau listens)."""

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        if state:
            raise CheckpointError(f"schedule state {state!r}: a {self.name} schedule keeps none")


class Constant(Schedule):
    """lr = base_lr"""

    name = "constant"

    def epoch_lr(self, epoch):
        return self.base_lr


class Cosine(Schedule):
    """lr = base_lr * (1 + cos(pi * epoch / epochs)) / 2: from base_lr down towards 0 over the run
    (PyTorch's CosineAnnealingLR with T_max = epochs, eta_min = 0, stepped per epoch)."""

    name = "cosine"

    def __init__(self, base_lr, epochs, warmup_steps=0):
        super().__init__(base_lr, warmup_steps)
        self.epochs = int(epochs)

    def epoch_lr(self, epoch):
        return self.base_lr * 0.5 * (1 + math.cos(math.pi * epoch / self.epochs))


class Step(Schedule):
    """lr = base_lr * gamma ** (epoch // step_size) (PyTorch's StepLR)"""

    name = "step"

    def __init__(self, base_lr, step_size, gamma=0.1, warmup_steps=0):
        super().__init__(base_lr, warmup_steps)
        self.step_size, self.gamma = int(step_size), float(gamma)

    def epoch_lr(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class Exponential(Schedule):
    """lr = base_lr * gamma ** epoch (PyTorch's ExponentialLR)"""

    name = "exponential"

    def __init__(self, base_lr, gamma, warmup_steps=0):
        super().__init__(base_lr, warmup_steps)
        self.gamma = float(gamma)

    def epoch_lr(self, epoch):
        return self.base_lr * self.gamma**epoch


class Plateau(Schedule):
    """lr = max(lr * factor, min_lr) once the validation metric has not improved for more than
    `patience` epochs in a row (PyTorch's ReduceLROnPlateau, threshold_mode "rel", cooldown 0):
    improved means better than the best so far by the relative `threshold`,
    value > best * (1 + threshold) (higher is better) or value < best * (1 - threshold) (lower is better);
    after a reduction the count of bad epochs starts again from 0."""

    name = "plateau"
    EPS = 1e-8  # PyTorch: a reduction smaller than this is skipped

    def __init__(self, base_lr, factor=0.1, patience=10, threshold=1e-4, min_lr=0.0, higher_is_better=True,
                 warmup_steps=0):
        super().__init__(base_lr, warmup_steps)
        self.factor, self.patience, self.threshold = float(factor), int(patience), float(threshold)
        self.min_lr, self.higher_is_better = float(min_lr), bool(higher_is_better)
        self.current, self.best, self.bad_epochs = self.base_lr, None, 0

    def epoch_lr(self, epoch):
        return self.current

    def improved(self, value):
        if self.best is None:
            return not math.isnan(value)
        if self.higher_is_better:
            return value > self.best * (1 + self.threshold)
        return value < self.best * (1 - self.threshold)

    def end_epoch(self, value):
        if self.improved(value):
            self.best, self.bad_epochs = float(value), 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            new = max(self.current * self.factor, self.min_lr)
            if self.current - new > self.EPS:
                self.current = new
            self.bad_epochs = 0

    def state_dict(self):
        return {"lr": self.current, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state):
        ok = (
            isinstance(state, dict) and set(state) == {"lr", "best", "bad_epochs"}
            and _number(state["lr"]) and state["lr"] > 0
            and (state["best"] is None or _number(state["best"]))
            and isinstance(state["bad_epochs"], int) and not isinstance(state["bad_epochs"], bool)
            and state["bad_epochs"] >= 0
        )
        if not ok:
            raise CheckpointError(f"plateau schedule state: expected {{lr, best, bad_epochs}}, received {state!r}")
        self.current, self.best, self.bad_epochs = float(state["lr"]), state["best"], state["bad_epochs"]


class Replay(Schedule):
    """lr = rates[epoch]: the per-epoch rates of an earlier pass, played back (train.refit retrains on the
    training + validation rows with the rates the first pass used, plateau's cuts included)."""

    name = "replay"

    def __init__(self, rates, warmup_steps=0):
        super().__init__(rates[0] if rates else 0.0, warmup_steps)
        self.rates = [float(r) for r in rates]

    def epoch_lr(self, epoch):
        return self.rates[epoch]


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


SCHEDULES = {cls.name: cls for cls in (Constant, Cosine, Step, Exponential, Plateau)}


def build_schedule(opt_cfg, epochs, steps_per_epoch, higher_is_better):
    """The schedule an (already validated) optimizer config asks for."""
    kind = opt_cfg.schedule
    warmup = opt_cfg.warmup_epochs * steps_per_epoch
    if kind == "cosine":
        return Cosine(opt_cfg.lr, epochs, warmup)
    if kind == "step":
        return Step(opt_cfg.lr, opt_cfg.step_size, opt_cfg.gamma, warmup)
    if kind == "exponential":
        return Exponential(opt_cfg.lr, opt_cfg.gamma, warmup)
    if kind == "plateau":
        return Plateau(opt_cfg.lr, opt_cfg.factor, opt_cfg.patience, opt_cfg.threshold, opt_cfg.min_lr,
                       higher_is_better, warmup)
    return Constant(opt_cfg.lr, warmup)


class EarlyStopping:
    """Stop once the validation metric has gone `patience` epochs in a row without improving on the
    best so far by more than `min_delta` (absolute): value > best + min_delta when higher is better,
    value < best - min_delta when lower is. The first epoch always improves."""

    def __init__(self, patience, min_delta=0.0, higher_is_better=True):
        self.patience, self.min_delta, self.higher_is_better = int(patience), float(min_delta), bool(higher_is_better)
        self.best, self.bad_epochs = None, 0

    def update(self, value):
        """Record one epoch's value; True when the run should stop now."""
        if self.best is None:
            better = not math.isnan(value)
        elif self.higher_is_better:
            better = value > self.best + self.min_delta
        else:
            better = value < self.best - self.min_delta
        if better:
            self.best, self.bad_epochs = float(value), 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def state_dict(self):
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state):
        ok = (
            isinstance(state, dict) and set(state) == {"best", "bad_epochs"}
            and (state["best"] is None or _number(state["best"]))
            and isinstance(state["bad_epochs"], int) and not isinstance(state["bad_epochs"], bool)
            and state["bad_epochs"] >= 0
        )
        if not ok:
            raise CheckpointError(f"early-stopping state: expected {{best, bad_epochs}}, received {state!r}")
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]
