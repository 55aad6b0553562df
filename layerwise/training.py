"""The training loop: fit(cfg) trains a config into a run directory, resume(run_dir) continues one.

They print through `echo` and raise LayerwiseError subclasses for user mistakes.
"""

import csv
import io
import math
import os
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import metrics
from .checkpoint import load_run_arrays, load_run_meta, save_run_checkpoint
from .config import Config, apply_overrides, config_from_dict
from .configdiff import config_yaml_edits
from .data.datasets import SPLITS, Batches, load_dataset
from .data.fingerprint import fingerprint, mismatch, valid_fingerprint
from .evaluate import evaluate
from .errors import CheckpointError, ConfigError, DataError, StorageError, TrainingDiverged, TrainingInterrupted
from .fileio import atomic_write_text, remove_stale_temps, write_json
from .registry import build_loss, build_model, build_optimizer
from .report import epoch_line, format_metrics
from .rundir import check_run_dir, create_run_dir, lock_run_dir
from .runstate import RunState
from .schedules import EarlyStopping, build_schedule

# Independent random streams from one seed: the data (regression), the weight init, the shuffling,
# and the random layers (Dropout i draws from [seed, LAYER_STREAM, i]).
DATA_STREAM, INIT_STREAM, SHUFFLE_STREAM, LAYER_STREAM = 0, 1, 2, 3

# What `--resume -s ...` may change: anything else would change the run halfway through.
RESUME_OVERRIDES = ("train.epochs", "train.eval_batch_size", "data.root")


def build(cfg: Config, echo=print, dtype=np.float32, splits=SPLITS, preprocessing=None, known=None):
    """Data, model (initialised from cfg.seed), loss and optimizer for a config.

    `splits` and `preprocessing` are load_dataset's (eval reads only the split it scores). The data's
    fingerprint is computed here, for every dataset that reads files; `known`, a checkpoint's stored
    fingerprint, spares re-hashing files whose path, size and mtime it recorded.
    """
    try:
        data = load_dataset(cfg.data, seed=[cfg.seed, DATA_STREAM], source=cfg.source, echo=echo,
                            loss=cfg.loss, splits=splits, preprocessing=preprocessing)
        if data.fingerprint is None:
            data.fingerprint = fingerprint(data.sources, known)
        model = build_model(
            cfg.model.layers, data.num_features, data.num_outputs,
            rng=np.random.default_rng([cfg.seed, INIT_STREAM]), dtype=dtype, where=f"{cfg.source}: model.layers",
            rows=data.batch_rows(cfg.train),
        )
        model.seed_random([cfg.seed, LAYER_STREAM])
        loss = build_loss(cfg.loss, data.task, where=f"{cfg.source}: loss")
        cfg.model.layers = model.config()  # resolved: every layer's arguments, in_features inferred
    except MemoryError as e:
        raise ConfigError(f"{cfg.source}: not enough memory for this data and model ({e})") from None
    return data, model, loss, build_optimizer(cfg.optimizer, model)


def fit(cfg: Config, *, overwrite=False, echo=print):
    """Train `cfg` into its run directory: config.yaml, metrics.csv, last.npz and best.npz.

    Everything that can fail on bad input (data, model shapes, loss, the run directory) is checked
    before anything is written, so a failed start writes nothing. Returns the history and test metrics.
    """
    data, model, loss_fn, optimizer = build(cfg, echo)
    check_run_dir(cfg.output, overwrite)
    state = RunState(epoch_rng=np.random.default_rng([cfg.seed, SHUFFLE_STREAM]).bit_generator.state)

    def populate(directory):
        save_run_checkpoint(directory / "last.npz", cfg, model, optimizer, asdict(state), data)  # resumable at once
        atomic_write_text(directory / "config.yaml", cfg.to_yaml())

    with create_run_dir(cfg.output, populate, overwrite) as lock:  # held until the run ends: no other process trains into it meanwhile
        run_dir = lock.directory
        echo(
            f"training {describe_data(cfg)} into {run_dir}: {model.num_parameters():,} parameters; "
            f"{len(data.train):,} train / {len(data.val):,} val / {len(data.test):,} test examples"
        )
        return _run(cfg, run_dir, data, model, loss_fn, optimizer, state, echo)


def resume(run_dir, overrides=(), echo=print):
    """Continue the run in `run_dir` from its last.npz, exactly where it stopped."""
    for item in overrides:
        if item.partition("=")[0] not in RESUME_OVERRIDES:
            raise ConfigError(
                f"override {item!r}: a resumed run can only change {', '.join(RESUME_OVERRIDES)}; "
                f"anything else would change it halfway (start a new run instead)"
            )
    run_dir = Path(run_dir)
    path = run_dir / "last.npz"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} holds no last.npz: is it a layerwise run directory?")
    with lock_run_dir(run_dir) as lock:  # refused if a process trains into it; held until the run ends
        meta, cfg, state, (data, model, loss_fn, optimizer) = load_for_resume(run_dir, overrides, echo)
        # Everything was read and checked; only now is anything written.
        lock.write_pid()
        remove_stale_temps(run_dir)  # left by a save that was killed
        atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())  # the overrides are part of the run now
        echo(f"resuming {cfg.name} in {run_dir} at epoch {state.epoch + 1}, step {state.step + 1}")
        old_epochs = meta["config"].get("train", {}).get("epochs")
        if cfg.optimizer.schedule == "cosine" and old_epochs != cfg.train.epochs:
            echo(f"note: train.epochs changed from {old_epochs} to {cfg.train.epochs}: the cosine learning-rate "
                 f"schedule now spans {cfg.train.epochs} epochs")
        return _run(cfg, run_dir, data, model, loss_fn, optimizer, state, echo)


def load_for_resume(run_dir, overrides=(), echo=print):
    """Read and check everything a resume needs, writing nothing: (meta, cfg, state, (data, model,
    loss, optimizer)) with the checkpoint's weights and optimizer state loaded."""
    run_dir = Path(run_dir)
    path = run_dir / "last.npz"
    meta = load_run_meta(path)
    overrides = config_yaml_edits(run_dir, meta["config"], overrides, path, RESUME_OVERRIDES, echo) + list(overrides)
    raw = apply_overrides(meta["config"], overrides, str(path))
    raw["output"] = str(run_dir)  # keep writing where the checkpoint is, even if the run was moved
    cfg = config_from_dict(raw, str(path))
    state = RunState.from_meta(meta["state"], path)
    if state.stopped:
        raise ConfigError(
            f"{run_dir} already stopped early after epoch {state.stopped['epoch']} (best epoch "
            f"{state.stopped['best_epoch']}, in best.npz); start a new run to train further"
        )
    if state.epoch >= cfg.train.epochs:
        raise ConfigError(
            f"{run_dir} already finished {state.epoch} epochs; raise train.epochs with -s train.epochs=N to go on"
        )
    known = meta.get("fingerprint") if valid_fingerprint(meta.get("fingerprint")) else None
    data, model, loss_fn, optimizer = build(cfg, echo, known=known)
    load_run_arrays(path, model, optimizer, against="the model and optimizer its config describes")
    try:
        model.load_rng_state(meta.get("layer_rng", {}))  # Dropout's mask streams
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    check_fingerprint(data, meta, path, "resume it with the data it was trained on (-s data.root=DIR where "
                      "those files are now), or start a new run for this data")
    state.check_against(data, cfg.train.batch_size, path)
    _Control(cfg, data, state, path)  # the schedule's and early stopping's state are sound
    return meta, cfg, state, (data, model, loss_fn, optimizer)


def _run(cfg, run_dir, data, model, loss_fn, optimizer, state, echo):
    started = time.perf_counter()
    try:
        _train(cfg, run_dir, data, model, loss_fn, optimizer, state, echo)
    except StorageError as e:  # disk full, or the directory became read-only, mid-run
        raise StorageError(
            f"{e}; {run_dir / 'last.npz'} still holds the last saved state: free some space (or make the "
            f"directory writable), then resume with: layerwise train --resume {run_dir}", e.reason
        ) from None

    load_run_arrays(run_dir / "best.npz", model)
    test = evaluate(model, loss_fn, data.test, data.task, cfg.train.eval_batch_size)
    best = state.best
    summary = {"checkpoint": "best.npz", "epoch": best["epoch"], f"val_{best['metric']}": best["value"],
               **{f"test_{k}": v.tolist() if k == "confusion" else v for k, v in test.items()}}
    try:
        write_json(run_dir / "test.json", summary)
    except StorageError as e:
        raise StorageError(f"{e}; training finished: `layerwise eval {run_dir}` prints the test metrics", e.reason) from None
    echo(
        f"done in {time.perf_counter() - started:.1f}s. best epoch {best['epoch']} "
        f"(val {format_metrics({best['metric']: best['value']})}): test {format_metrics(test)}"
    )
    echo(f"saved best.npz, last.npz, metrics.csv, test.json and config.yaml in {run_dir}")
    return {"run_dir": run_dir, "history": state.history, "test": test, "best": best}


def _train(cfg, run_dir, data, model, loss_fn, optimizer, state, echo):
    rng = np.random.default_rng()  # its state is set from `state` at every epoch start
    batches = Batches(data.train, cfg.train.batch_size, rng)
    epochs = cfg.train.epochs
    control = _Control(cfg, data, state, run_dir / "last.npz")
    with _StopOnSignals() as stop:
        while state.epoch < epochs and not state.stopped:
            epoch_start = time.perf_counter()
            rng.bit_generator.state = state.epoch_rng
            model.train()
            finished = _train_epoch(model, loss_fn, optimizer, batches, state, epochs, stop, run_dir, control.schedule)
            # A non-finite gradient with a finite loss shows up in the weights: never save those.
            if not all(np.isfinite(p).all() for _, p, _ in model.named_parameters()):
                raise TrainingDiverged(
                    f"the weights became NaN or infinite during epoch {state.epoch + 1}; try a smaller "
                    f"optimizer.lr ({_kept(run_dir)})"
                )
            if not finished:
                save_run_checkpoint(run_dir / "last.npz", cfg, model, optimizer, asdict(state), data)
                raise TrainingInterrupted(
                    f"{stop.cause} at epoch {state.epoch + 1}, step {state.step}; saved {run_dir / 'last.npz'}. "
                    f"Resume with: layerwise train --resume {run_dir}", 128 + stop.signum
                )
            state.epoch_rng = rng.bit_generator.state
            _end_epoch(cfg, run_dir, data, model, loss_fn, optimizer, state, epoch_start, echo, control)


class _Control:
    """The run's learning-rate schedule and early stopping, restored from the run state (whose
    copies of their state are checked here: a CheckpointError naming `path`)."""

    def __init__(self, cfg, data, state, path):
        higher_is_better = metrics.MONITOR[data.task][1]
        self.steps_per_epoch = -(-len(data.train) // cfg.train.batch_size)  # len(Batches)
        self.schedule = build_schedule(cfg.optimizer, cfg.train.epochs, self.steps_per_epoch, higher_is_better)
        es = cfg.train.early_stopping
        self.early = es and EarlyStopping(es.patience, es.min_delta, higher_is_better)
        try:
            if state.schedule is not None:
                self.schedule.load_state_dict(state.schedule)
            if self.early and state.early_stopping is not None:
                self.early.load_state_dict(state.early_stopping)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None

    def last_lr(self, epoch):
        """The rate of the epoch's last step (what metrics.csv reports)."""
        return self.schedule.lr(epoch, (epoch + 1) * self.steps_per_epoch - 1)

    def end_epoch(self, state, value):
        """Tell the schedule and early stopping the epoch's validation metric; True: stop the run."""
        self.schedule.end_epoch(value)
        state.schedule = self.schedule.state_dict()
        if not self.early:
            return False
        stop = self.early.update(value)
        state.early_stopping = self.early.state_dict()
        return stop


def _end_epoch(cfg, run_dir, data, model, loss_fn, optimizer, state, epoch_start, echo, control):
    """Validate, record the epoch, save `best` if it improved and `last` always, print its line;
    then let the schedule and early stopping see the validation metric."""
    monitor, higher_is_better = metrics.MONITOR[data.task]
    val = evaluate(model, loss_fn, data.val, data.task, cfg.train.eval_batch_size)
    clipped = {}
    if cfg.optimizer.clip_norm is not None:  # the gradients' global norm before clipping
        clipped = {"grad_norm_mean": state.grad_norm_sum / max(state.step, 1), "grad_norm_max": state.grad_norm_max}
    row = {
        "epoch": state.epoch + 1,
        "lr": control.last_lr(state.epoch),
        "train_loss": state.loss_sum / state.seen,
        **clipped,
        **{f"val_{k}": v for k, v in val.items() if k != "confusion"},
        "seconds": time.perf_counter() - epoch_start,
    }
    state.history.append(row)
    best = state.best
    # A tie goes to the later epoch: as good on validation, and trained longer.
    improved = best is None or (val[monitor] >= best["value"] if higher_is_better else val[monitor] <= best["value"])
    if improved:
        state.best = {"epoch": state.epoch + 1, "metric": monitor, "value": val[monitor]}
    stop = control.end_epoch(state, val[monitor])
    if stop:
        state.stopped = {"epoch": state.epoch + 1, "best_epoch": state.best["epoch"]}
    state.epoch, state.step, state.loss_sum, state.seen = state.epoch + 1, 0, 0.0, 0
    state.grad_norm_sum = state.grad_norm_max = 0.0
    if improved:
        save_run_checkpoint(run_dir / "best.npz", cfg, model, optimizer, asdict(state), data)
    save_run_checkpoint(run_dir / "last.npz", cfg, model, optimizer, asdict(state), data)
    _write_metrics(run_dir / "metrics.csv", state.history)
    echo(epoch_line(row, cfg.train.epochs) + ("  (best)" if improved else ""))
    if stop:
        es = cfg.train.early_stopping
        echo(
            f"early stopping: val {monitor} has not improved by more than {es.min_delta:g} for {es.patience} "
            f"epoch{'s' if es.patience != 1 else ''}; stopped after epoch {state.epoch} of {cfg.train.epochs}, "
            f"best epoch {state.best['epoch']}"
        )


def train_step(model, loss_fn, optimizer, x, y):
    """One step: forward, loss, backward, update. Returns the batch loss; a non-finite loss
    leaves the weights untouched."""
    loss = loss_fn.forward(model.forward(x), y)
    if math.isfinite(loss):
        model.backward(loss_fn.backward(), input_grad=False)
        optimizer.step()
    return loss


def _train_epoch(model, loss_fn, optimizer, batches, state, epochs, stop, run_dir, schedule):
    """Steps through the rest of `state.epoch`, updating `state`; False if Ctrl-C or SIGTERM stopped it."""
    first = state.epoch * len(batches)  # global index of the epoch's first step (for warmup)
    clipping = optimizer.clip_norm is not None
    bar = tqdm(
        batches.epoch(skip=state.step), desc=f"epoch {state.epoch + 1}/{epochs}", total=len(batches),
        initial=state.step, leave=False, disable=None, unit="step",
    )
    # Overflow shows up as a non-finite loss, reported below with advice; no RuntimeWarnings too.
    with bar, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for x, y in bar:
            optimizer.lr = schedule.lr(state.epoch, first + state.step)
            loss = train_step(model, loss_fn, optimizer, x, y)
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss} at epoch {state.epoch + 1}, step {state.step + 1}; try a smaller "
                    f"optimizer.lr ({_kept(run_dir)})"
                )
            state.step += 1
            state.loss_sum += loss * len(x)
            state.seen += len(x)
            if clipping:
                state.grad_norm_sum += optimizer.grad_norm
                state.grad_norm_max = max(state.grad_norm_max, optimizer.grad_norm)
            if state.step % 20 == 0:
                bar.set_postfix(loss=f"{state.loss_sum / state.seen:.4f}", refresh=False)
            if stop.requested:
                return False
    return True


def describe_data(cfg):
    """What the header line says is being trained: the dataset, and where it comes from when that is
    the user's own directory or file."""
    where = getattr(cfg.data, "root", None) if cfg.data.dataset == "idx" else getattr(cfg.data, "path", None)
    return f"{cfg.data.dataset} ({where})" if where else cfg.data.dataset


def check_fingerprint(data, meta, path, advice):
    """Refuse data whose fingerprint differs from the one `meta` (a checkpoint's) recorded."""
    stored = meta.get("fingerprint")
    if stored is None:
        return  # a checkpoint from before runs recorded their data: nothing to compare
    if not valid_fingerprint(stored):
        raise CheckpointError(f"{path}: its data fingerprint is malformed; corrupt or forged?")
    problem = mismatch(data.fingerprint, stored)
    if problem:
        raise DataError(f"{path} was trained on other data: {problem}; {advice}")


def _kept(run_dir):
    if (run_dir / "best.npz").is_file():
        return "last.npz and best.npz keep the last good weights"
    return "last.npz keeps the weights from before the run went wrong"


class _StopOnSignals:
    """While active, the first Ctrl-C (SIGINT) or SIGTERM only sets `requested` (the loop stops after
    its step, saves and exits 130 or 143); a second one stops at once: Ctrl-C raises
    KeyboardInterrupt as usual, SIGTERM ends the process as SIGTERM does by default."""

    CAUSES = {signal.SIGINT: "interrupted", signal.SIGTERM: "stopped by SIGTERM"}

    def __enter__(self):
        self.requested = False
        self.signum, self.cause = None, None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in self.CAUSES:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            if signum == signal.SIGTERM:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)
            raise KeyboardInterrupt
        self.requested = True
        self.signum, self.cause = int(signum), self.CAUSES[signum]

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def _write_metrics(path, history):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, out.getvalue())


