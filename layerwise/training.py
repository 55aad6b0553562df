"""The library API the CLI calls: fit(cfg) trains a config into a run directory; evaluate_run(...)
scores a saved model. Both print through `echo` and raise LayerwiseError subclasses for user mistakes.
"""

import csv
import io
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from . import metrics
from .checkpoint import load_checkpoint, save_checkpoint
from .config import Config, apply_overrides, config_from_dict, load_config
from .data.datasets import Batches, load_dataset
from .errors import CheckpointError, ConfigError, LayerwiseError
from .fileio import atomic_write_text
from .optim import learning_rate
from .registry import build_loss, build_model, build_optimizer



def build(cfg: Config, echo=print, dtype=np.float32):
    """Data, model (initialised from cfg.seed), loss and optimizer for a config."""
    data = load_dataset(cfg.data, seed=cfg.seed, source=cfg.source, echo=echo)
    try:
        model = build_model(
            cfg.model.layers, data.num_features, data.num_outputs, rng=np.random.default_rng(cfg.seed), dtype=dtype
        )
        loss = build_loss(cfg.loss, data.task)
    except ConfigError as e:
        raise ConfigError(f"{cfg.source}: {e}") from None
    return data, model, loss, build_optimizer(cfg.optimizer, model)


def evaluate(model, loss_fn, split, task, batch_size=5000):
    """Loss (mean over the split) and the task's metrics; classification also returns `confusion`."""
    outputs = model.predict(split.x, batch_size)
    total = 0.0
    for i in range(0, len(split), batch_size):
        out, target = outputs[i : i + batch_size], split.y[i : i + batch_size]
        total += loss_fn.forward(out, target) * len(out)
    result = {"loss": total / max(len(split), 1)}
    if task == "classification":
        result["accuracy"] = metrics.accuracy(outputs, split.y)
        result["confusion"] = metrics.confusion_matrix(outputs, split.y, outputs.shape[1])
    else:
        result.update(metrics.regression_metrics(outputs, split.y))
    return result


def check_run_dir(path, overwrite):
    """Refuse a non-empty `path` unless `overwrite`, and then only if it is a layerwise run directory."""
    path = Path(path)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"output: {path} cannot be a run directory: {parent} is a file")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        if not overwrite:
            raise ConfigError(
                f"run directory {path} already exists and is not empty; pass --overwrite to replace it, "
                f"-s output=<dir> to train elsewhere, or --resume {path} to continue it"
            )
        if not (path / "config.yaml").is_file():
            raise ConfigError(f"{path} is not a layerwise run directory (no config.yaml); refusing to delete it")


def create_run_dir(path, populate):
    """Create run directory `path` atomically: populate(staging) fills a hidden sibling directory,
    which is then renamed to `path`. A kill at any moment leaves no run directory or a resumable one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a start that was killed
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        staging.chmod(0o755)
        populate(staging)
        if path.is_dir():
            shutil.rmtree(path)  # empty, or a run being overwritten (checked by check_run_dir)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


class TrainingDiverged(LayerwiseError):
    """The loss or the weights became NaN or infinite."""

    exit_code = 3


class TrainingInterrupted(LayerwiseError):
    """Ctrl-C: the run stopped after a step and saved `last`."""

    exit_code = 130


@dataclass
class RunState:
    """Where a run is: what a `last` checkpoint must hold to continue bit for bit."""

    epoch: int = 0  # 0-based epoch in progress (== epochs when finished)
    step: int = 0  # steps of that epoch already taken
    epoch_rng: dict = None  # shuffle-RNG state at the start of `epoch` (redraws its permutation)
    loss_sum: float = 0.0  # sum of batch loss * batch size so far in `epoch`
    seen: int = 0  # examples so far in `epoch`
    history: list = field(default_factory=list)  # metrics.csv rows
    best: dict = None  # {"epoch", "metric", "value"} of the best epoch so far

    def meta(self):
        return {k: getattr(self, k) for k in ("epoch", "step", "epoch_rng", "loss_sum", "seen", "history", "best")}


def fit(cfg: Config, *, overwrite=False, echo=print):
    """Train `cfg` into its run directory: config.yaml, metrics.csv, last.npz and best.npz.

    Everything that can fail on bad input (data, model shapes, loss) is built before the run directory
    is touched, so a failed start writes nothing. Returns a dict with the history and test metrics.
    """
    check_run_dir(cfg.output, overwrite)
    data, model, loss_fn, optimizer = build(cfg, echo)
    state = RunState(epoch_rng=np.random.default_rng(cfg.seed + 1).bit_generator.state)

    def populate(directory):
        atomic_write_text(directory / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        save_run_checkpoint(directory / "last.npz", cfg, model, optimizer, state)  # resumable from the start

    run_dir = create_run_dir(cfg.output, populate)
    echo(
        f"training {cfg.name}: {model.num_parameters():,} parameters; "
        f"{len(data.train):,} train / {len(data.val):,} val / {len(data.test):,} test examples"
    )
    return _run(cfg, run_dir, data, model, loss_fn, optimizer, state, echo)


def resume(run_dir, overrides=(), echo=print):
    """Continue the run in `run_dir` from its last.npz, exactly where it stopped."""
    run_dir = Path(run_dir)
    path = run_dir / "last.npz"
    arrays, meta = load_checkpoint(path)
    _check_format(path, meta)
    raw = apply_overrides(meta["config"], overrides, str(path))
    raw["output"] = str(run_dir)  # keep writing where the checkpoint is, even if the run was moved
    cfg = config_from_dict(raw, str(path))
    data, model, loss_fn, optimizer = build(cfg, echo)
    _load_weights(model, arrays, path, cfg)
    try:
        optimizer.load_state_dict(_with_prefix(arrays, "optim/"))
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    state = RunState(**meta["state"])
    if state.epoch >= cfg.train.epochs:
        raise ConfigError(
            f"{run_dir} already finished {state.epoch} epochs; raise train.epochs with -s train.epochs=N to go on"
        )
    echo(f"resuming {cfg.name} at epoch {state.epoch + 1}, step {state.step + 1}")
    return _run(cfg, run_dir, data, model, loss_fn, optimizer, state, echo)


def _run(cfg, run_dir, data, model, loss_fn, optimizer, state, echo):
    started = time.perf_counter()
    monitor, higher_is_better = metrics.MONITOR[data.task]
    rng = np.random.default_rng()
    batches = Batches(data.train, cfg.train.batch_size, rng)
    epochs = cfg.train.epochs
    with _StopOnSigint() as sigint:
        while state.epoch < epochs:
            epoch_start = time.perf_counter()
            optimizer.lr = learning_rate(cfg.optimizer.schedule, cfg.optimizer.lr, state.epoch, epochs)
            rng.bit_generator.state = state.epoch_rng
            finished = _train_epoch(model, loss_fn, optimizer, batches, state, epochs, sigint)
            if not finished:
                save_run_checkpoint(run_dir / "last.npz", cfg, model, optimizer, state)
                raise TrainingInterrupted(
                    f"interrupted at epoch {state.epoch + 1}, step {state.step}; saved {run_dir / 'last.npz'}. "
                    f"Resume with: layerwise train --resume {run_dir}"
                )
            if not all(np.isfinite(p).all() for _, p, _ in model.named_parameters()):
                raise TrainingDiverged(
                    f"the weights became NaN or infinite during epoch {state.epoch + 1}; try a smaller optimizer.lr "
                    f"(last.npz and best.npz keep the last good weights)"
                )
            val = evaluate(model, loss_fn, data.val, data.task, cfg.train.eval_batch_size)
            row = {
                "epoch": state.epoch + 1,
                "lr": optimizer.lr,
                "train_loss": state.loss_sum / state.seen,
                **{f"val_{k}": v for k, v in val.items() if k != "confusion"},
                "seconds": time.perf_counter() - epoch_start,
            }
            state.history.append(row)
            value = val[monitor]
            improved = state.best is None or (value > state.best["value"] if higher_is_better else value < state.best["value"])
            if improved:
                state.best = {"epoch": state.epoch + 1, "metric": monitor, "value": value}
            state.epoch, state.step, state.loss_sum, state.seen = state.epoch + 1, 0, 0.0, 0
            state.epoch_rng = rng.bit_generator.state
            if improved:
                save_run_checkpoint(run_dir / "best.npz", cfg, model, optimizer, state)
            save_run_checkpoint(run_dir / "last.npz", cfg, model, optimizer, state)
            _write_metrics(run_dir / "metrics.csv", state.history)
            echo(_epoch_line(row, epochs) + ("  (best)" if improved else ""))

    best_arrays, _ = load_checkpoint(run_dir / "best.npz")
    model.load_state_dict(_with_prefix(best_arrays, "model/"))
    test = evaluate(model, loss_fn, data.test, data.task, cfg.train.eval_batch_size)
    best = state.best
    echo(
        f"done in {time.perf_counter() - started:.1f}s. best epoch {best['epoch']} "
        f"(val {_format_metrics({best['metric']: best['value']})}): test {_format_metrics(test)}"
    )
    echo(f"saved best.npz, last.npz, metrics.csv and config.yaml in {run_dir}")
    return {"run_dir": run_dir, "history": state.history, "test": test, "best": best}


def train_step(model, loss_fn, optimizer, x, y):
    """One step: forward, loss, backward, update. Returns the batch loss; a non-finite loss
    leaves the weights untouched."""
    loss = loss_fn.forward(model.forward(x), y)
    if math.isfinite(loss):
        model.backward(loss_fn.backward(), input_grad=False)
        optimizer.step()
    return loss


def _train_epoch(model, loss_fn, optimizer, batches, state, epochs, sigint):
    """Steps through the rest of `state.epoch`, updating `state`; False if Ctrl-C stopped it early."""
    bar = tqdm(
        batches.epoch(skip=state.step), desc=f"epoch {state.epoch + 1}/{epochs}", total=len(batches),
        initial=state.step, leave=False, disable=None, unit="step",
    )
    # Overflow shows up as a non-finite loss, reported below with advice; no RuntimeWarnings too.
    with bar, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for x, y in bar:
            loss = train_step(model, loss_fn, optimizer, x, y)
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss} at epoch {state.epoch + 1}, step {state.step + 1}; try a smaller "
                    f"optimizer.lr (last.npz and best.npz keep the last good weights)"
                )
            state.step += 1
            state.loss_sum += loss * len(x)
            state.seen += len(x)
            if state.step % 20 == 0:
                bar.set_postfix(loss=f"{state.loss_sum / state.seen:.4f}", refresh=False)
            if sigint.requested:
                return False
    return True


class _StopOnSigint:
    """While active, the first Ctrl-C only sets `requested` (the loop stops after its step and saves);
    a second one interrupts at once as usual."""

    def __enter__(self):
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


# --- checkpoints -------------------------------------------------------------------------------

CHECKPOINT_FORMAT = "layerwise-checkpoint"


def save_run_checkpoint(path, cfg, model, optimizer, state):
    """Weights, optimizer state, the run state (epoch, step, RNG) and the resolved config, atomically."""
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "model": model.config(),
        "config": cfg.to_dict(),
        "state": state.meta(),
    }
    save_checkpoint(path, arrays, meta)


def _with_prefix(arrays, prefix):
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def _check_format(path, meta):
    """The metadata must be what save_run_checkpoint writes, so a forged file fails here, clearly."""
    state = meta.get("state") if isinstance(meta, dict) else None
    if (
        not isinstance(meta, dict)
        or meta.get("format") != CHECKPOINT_FORMAT
        or not isinstance(meta.get("config"), dict)
        or not isinstance(state, dict)
        or set(state) != {f.name for f in fields(RunState)}
        or not isinstance(state["epoch"], int)
        or not isinstance(state["step"], int)
        or not isinstance(state["epoch_rng"], dict)
    ):
        raise CheckpointError(f"{path}: not a layerwise training checkpoint (its metadata is missing or malformed)")


def _load_weights(model, arrays, path, cfg):
    try:
        model.load_state_dict(_with_prefix(arrays, "model/"))
    except CheckpointError as e:
        raise CheckpointError(f"{path} does not match the model in {cfg.source}: {e}") from None


def _write_metrics(path, history):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, out.getvalue())


def _epoch_line(row, epochs):
    width = len(str(epochs))
    val = {k[4:]: v for k, v in row.items() if k.startswith("val_")}
    return (
        f"epoch {row['epoch']:>{width}}/{epochs}  train loss {row['train_loss']:.4f}  "
        f"val {_format_metrics(val)}  lr {row['lr']:.4g}  {row['seconds']:.1f}s"
    )


def _format_metrics(result):
    parts = []
    for key, value in result.items():
        if key == "confusion" or (key == "loss" and "mse" in result):
            continue  # for regression the loss is the MSE; print it once
        if key == "accuracy":
            parts.append(f"acc {100 * value:.2f}%")
        elif key == "r2":
            parts.append(f"R2 {value:.4f}")
        else:
            parts.append(f"{key} {value:.4f}")
    return "  ".join(parts)


# --- evaluation of a saved run -----------------------------------------------------------------


def resolve_checkpoint(target, which="best"):
    """A run directory (-> its best.npz or last.npz) or a checkpoint file."""
    target = Path(target)
    if target.is_dir():
        path = target / f"{which}.npz"
        if not path.is_file():
            raise CheckpointError(f"{target} holds no {which}.npz: is it a layerwise run directory?")
        return path
    if not target.exists():
        raise CheckpointError(f"no run directory or checkpoint at {target}")
    return target


def load_run(target, which="best", overrides=()):
    """Rebuild (cfg, data, model, loss) from a run directory or checkpoint; overrides apply to its config.

    A run directory's config.yaml is used when present (so a user's edits to it are honoured and
    checked against the weights); a bare checkpoint brings its own config.
    """
    path = resolve_checkpoint(target, which)
    arrays, meta = load_checkpoint(path)
    _check_format(path, meta)
    config_file = path.parent / "config.yaml"
    if config_file.is_file():
        cfg = load_config(config_file, overrides)
    else:
        cfg = config_from_dict(apply_overrides(meta["config"], overrides, str(path)), str(path))
    data = load_dataset(cfg.data, seed=cfg.seed, source=cfg.source)
    try:
        model = build_model(cfg.model.layers, data.num_features, data.num_outputs)
        loss = build_loss(cfg.loss, data.task)
    except ConfigError as e:
        raise ConfigError(f"{cfg.source}: {e}") from None
    _load_weights(model, arrays, path, cfg)
    return cfg, data, model, loss, meta


def evaluate_run(target, split="test", which="best", overrides=(), echo=print):
    cfg, data, model, loss, meta = load_run(target, which, overrides)
    result = evaluate(model, loss, data.split(split), data.task, cfg.train.eval_batch_size)
    echo(f"{cfg.name}, weights after epoch {meta['state']['epoch']}: {split} split, {len(data.split(split)):,} examples")
    echo(f"{split} {_format_metrics(result)}")
    if "confusion" in result:
        echo(format_confusion(result["confusion"]))
    if _is_linear_regression(model, data):
        W, b = model.layers[0].params["W"][:, 0], model.layers[0].params.get("b")
        echo("learned weights w = [" + ", ".join(f"{w:.4f}" for w in W) + "]" + (f", bias b = {b[0]:.4f}" if b is not None else ""))
        result["weights"], result["bias"] = W.tolist(), (float(b[0]) if b is not None else None)
    return result


def _is_linear_regression(model, data):
    return data.task == "regression" and len(model.layers) == 1 and model.layers[0].params["W"].shape[1] == 1


def format_confusion(counts):
    """Rows are the true class, columns the predicted class."""
    n = counts.shape[0]
    width = max(5, len(str(counts.max())) + 1)
    lines = ["confusion matrix (rows: true class, columns: predicted)"]
    lines.append("true\\pred" + "".join(f"{j:>{width}}" for j in range(n)))
    for i in range(n):
        lines.append(f"{i:>9}" + "".join(f"{c:>{width}}" for c in counts[i]))
    return "\n".join(lines)
