"""Where a run is (RunState), and the checks that a checkpoint's copy of it is sound.

A checkpoint's run state is untrusted JSON. from_meta checks every field by its annotated type
(add a field with a type and a default and it is checked too); check_against then checks it against
the data and config it is resumed with, before anything is written.
"""

import math
import typing
from dataclasses import dataclass, field, fields

import numpy as np

from ..errors import CheckpointError
from . import metrics

MAX_COUNT = 1 << 62  # epochs, steps, examples: anything larger is forged


@dataclass
class RunState:
    """Where a run is: what a `last` checkpoint must hold to continue bit for bit."""

    epoch: int = 0  # 0-based epoch in progress (== epochs when finished)
    step: int = 0  # steps of that epoch already taken
    epoch_rng: dict = None  # shuffle-RNG state at the start of `epoch` (redraws its permutation)
    loss_sum: float = 0.0  # sum of batch loss * batch size so far in `epoch`
    seen: int = 0  # examples so far in `epoch`
    history: list = field(default_factory=list)  # metrics.csv rows
    best: typing.Optional[dict] = None  # {"epoch", "metric", "value"} of the best epoch so far
    # Checked by the schedule's / EarlyStopping's load_state_dict (the Trainer and its EarlyStopping callback):
    schedule: typing.Optional[dict] = None  # the learning-rate schedule's state (only plateau keeps any)
    early_stopping: typing.Optional[dict] = None  # EarlyStopping's state; None: fresh (or not used)
    stopped: typing.Optional[dict] = None  # {"epoch", "best_epoch"} once early stopping ended the run
    grad_norm_sum: float = 0.0  # sum of the pre-clipping gradient norms so far in `epoch` (clip_norm)
    grad_norm_max: float = 0.0  # their maximum
    refit: typing.Optional[dict] = None  # {"epochs", "rows"} in a best.npz that train.refit wrote; else None
    chosen: typing.Optional[dict] = None  # optimizer.weight_decay_choices' record (run/choose.py); else None

    # Fields added after checkpoint format 1 first shipped: a checkpoint without them starts them fresh.
    ADDED = ("schedule", "early_stopping", "stopped", "grad_norm_sum", "grad_norm_max", "refit", "chosen")

    def to_meta(self):
        """The fields as a checkpoint stores them: a shallow dict (the checkpoint writer serialises it at
        once; dataclasses.asdict deep-copies the whole history, quadratic in the epochs of a run)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def fresh(cls, shuffle_seed):
        """The state of a run before its first step: its shuffling stream at the start."""
        return cls(epoch_rng=np.random.default_rng(shuffle_seed).bit_generator.state)

    @classmethod
    def from_meta(cls, meta, path):
        """The state a checkpoint stored; anything malformed is a CheckpointError, not a crash later."""
        if not isinstance(meta, dict):
            raise _malformed(path, "it is not a mapping")
        names = {f.name for f in fields(cls)}
        meta = {**{f.name: f.default for f in fields(cls) if f.name in cls.ADDED}, **meta}
        if set(meta) != names:
            odd = sorted(map(str, set(meta) ^ names))
            raise _malformed(path, f"fields {', '.join(odd)[:120]} missing or unexpected")
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if not _has_type(meta[f.name], hints[f.name]):
                raise _malformed(path, f"{f.name} is {_short(meta[f.name])}")
        state = cls(**meta)
        state._check_consistent(path)
        return state

    def _check_consistent(self, path):
        try:
            np.random.default_rng().bit_generator.state = self.epoch_rng
        except (TypeError, ValueError, KeyError, OverflowError):
            raise _malformed(path, "epoch_rng is not a random generator state") from None
        if len(self.history) != self.epoch:
            raise _malformed(path, f"history has {len(self.history)} rows for {self.epoch} finished epochs")
        for i, row in enumerate(self.history):
            ok = isinstance(row, dict) and row.get("epoch") == i + 1 and all(
                isinstance(k, str) and _is_number(v) for k, v in row.items()
            )
            if not ok:
                raise _malformed(path, f"history row {i + 1} is {_short(row)}")
        if (self.best is None) != (self.epoch == 0):
            raise _malformed(path, f"best is {_short(self.best)} after {self.epoch} epochs")
        if self.best is not None:
            ok = (
                set(self.best) == {"epoch", "metric", "value"}
                and _has_type(self.best["epoch"], int) and 1 <= self.best["epoch"] <= self.epoch
                and isinstance(self.best["metric"], str) and _is_number(self.best["value"])
            )
            if not ok:
                raise _malformed(path, f"best is {_short(self.best)}")
        if self.stopped is not None:
            ok = (
                set(self.stopped) == {"epoch", "best_epoch"} and self.stopped["epoch"] == self.epoch
                and self.best is not None and self.stopped["best_epoch"] == self.best["epoch"]
            )
            if not ok:
                raise _malformed(path, f"stopped is {_short(self.stopped)} after {self.epoch} epochs")

        if self.refit is not None:
            ok = (set(self.refit) == {"epochs", "rows"} and self.best is not None
                  and self.refit["epochs"] == self.best["epoch"] and _has_type(self.refit["rows"], int))
            if not ok:
                raise _malformed(path, f"refit is {_short(self.refit)}")
        if self.chosen is not None:  # optimizer.weight_decay_choices' record (run/choose.py)
            ok = (set(self.chosen) == {"key", "value", "metric", "tried"} and _is_number(self.chosen["value"])
                  and isinstance(self.chosen["metric"], str)
                  and isinstance(self.chosen["tried"], list) and all(
                      isinstance(t, list) and len(t) == 3 and all(_is_number(v) for v in t) for t in self.chosen["tried"]))
            if not ok:
                raise _malformed(path, f"chosen is {_short(self.chosen)}")

    def describe_weights(self, steps_per_epoch=None):
        """What a checkpoint with this state holds, exactly: "weights after epoch 19", or for a run stopped
        mid-epoch "weights from epoch 20, step 311 of 469 (interrupted)"."""
        chosen = ""
        if self.chosen is not None:
            chosen = f", weight decay {self.chosen['value']:g} (chosen on validation: optimizer.weight_decay_choices)"
        if self.refit is not None:
            return (f"weights refit on {self.refit['rows']:,} training + validation rows for {self.refit['epochs']} "
                    f"epochs (train.refit){chosen}")
        if self.step > 0:
            of = f" of {steps_per_epoch}" if isinstance(steps_per_epoch, int) and steps_per_epoch >= self.step else ""
            return f"weights from epoch {self.epoch + 1}, step {self.step}{of} (interrupted)"
        if self.epoch == 0:
            return "initial weights (no training step taken yet)"
        return f"weights after epoch {self.epoch}{chosen}"

    def check_against(self, data, batch_size, path, monitor=None):
        """The state fits this run's training data and batch size (and task)."""
        n = len(data.train)
        batches = -(-n // batch_size)
        if self.step > batches or self.seen != min(self.step * batch_size, n):
            raise _malformed(
                path, f"step {self.step} with {self.seen} examples seen, but an epoch is {batches} steps of {n} examples"
            )
        monitor = monitor or metrics.MONITOR[data.task][0]
        if self.best is not None and self.best["metric"] != monitor:
            raise _malformed(path, f"best.metric is {_short(self.best['metric'])}; this task monitors {monitor!r}")


def _has_type(value, typ):
    """value fits the annotation: int (non-negative), float (finite), dict, list, str, Optional[...]."""
    if typing.get_origin(typ) is typing.Union:
        return any(_has_type(value, t) for t in typing.get_args(typ))
    if typ is type(None):
        return value is None
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT
    if typ is float:
        return _is_number(value) and math.isfinite(value)
    if typ is dict:  # a dict field defaulting to None (epoch_rng) is checked by its own rule
        return isinstance(value, dict)
    return isinstance(value, typ)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (
        isinstance(value, float) or abs(value) <= MAX_COUNT
    )


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _malformed(path, detail):
    return CheckpointError(f"{path}: not a layerwise training checkpoint (its run state is malformed: {detail})")
