"""The library API the CLI calls: fit(cfg) trains a config into a run directory; evaluate_run(...)
scores a saved model. Both print through `echo` and raise LayerwiseError subclasses for user mistakes.
"""

import csv
import math
import shutil
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import metrics
from .checkpoint import load_checkpoint, save_checkpoint
from .config import Config, apply_overrides, config_from_dict, load_config, save_config
from .data.datasets import Batches, load_dataset
from .errors import CheckpointError, ConfigError, LayerwiseError
from .optim import learning_rate
from .registry import build_loss, build_model, build_optimizer

MODEL_FILE = "model.npz"


def build(cfg: Config, echo=print):
    """Data, model (initialised from cfg.seed), loss and optimizer for a config."""
    data = load_dataset(cfg.data, seed=cfg.seed, source=cfg.source, echo=echo)
    try:
        model = build_model(
            cfg.model.layers, data.num_features, data.num_outputs, rng=np.random.default_rng(cfg.seed)
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


def prepare_run_dir(path, overwrite):
    """Refuse to train into a non-empty directory unless `overwrite` (which empties it first)."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        if not overwrite:
            raise ConfigError(
                f"run directory {path} already exists and is not empty; pass --overwrite to replace it "
                f"or choose another with -s output=<dir>"
            )
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


def fit(cfg: Config, *, overwrite=False, echo=print):
    """Train `cfg` and save config.yaml, metrics.csv and model.npz into its run directory.

    Everything that can fail on bad input (data, model shapes, loss) is built before the run directory
    is touched, so a failed start writes nothing. Returns a dict with the history and test metrics.
    """
    started = time.perf_counter()
    data, model, loss_fn, optimizer = build(cfg, echo)
    run_dir = prepare_run_dir(cfg.output, overwrite)
    save_config(cfg, run_dir / "config.yaml")
    monitor, higher_is_better = metrics.MONITOR[data.task]

    echo(
        f"training {cfg.name}: {model.num_parameters():,} parameters; "
        f"{len(data.train):,} train / {len(data.val):,} val / {len(data.test):,} test examples"
    )
    rng = np.random.default_rng(cfg.seed + 1)  # shuffling; separate from the init stream
    batches = Batches(data.train, cfg.train.batch_size, rng)
    history = []
    for epoch in range(cfg.train.epochs):
        optimizer.lr = learning_rate(cfg.optimizer.schedule, cfg.optimizer.lr, epoch, cfg.train.epochs)
        epoch_start = time.perf_counter()
        train_loss = _train_epoch(model, loss_fn, optimizer, batches, epoch, cfg.train.epochs)
        val = evaluate(model, loss_fn, data.val, data.task, cfg.train.eval_batch_size)
        row = {
            "epoch": epoch + 1,
            "lr": optimizer.lr,
            "train_loss": train_loss,
            **{f"val_{k}": v for k, v in val.items() if k != "confusion"},
            "seconds": time.perf_counter() - epoch_start,
        }
        history.append(row)
        _write_metrics(run_dir / "metrics.csv", history)
        echo(_epoch_line(row, cfg.train.epochs, monitor))

    save_model(run_dir / MODEL_FILE, model, cfg)
    test = evaluate(model, loss_fn, data.test, data.task, cfg.train.eval_batch_size)
    elapsed = time.perf_counter() - started
    echo(f"done in {elapsed:.1f}s: test {_format_metrics(test)}")
    echo(f"saved {run_dir / MODEL_FILE}, metrics.csv and config.yaml in {run_dir}")
    return {"run_dir": run_dir, "history": history, "test": test, "seconds": elapsed}


def _train_epoch(model, loss_fn, optimizer, batches, epoch, epochs):
    """One pass over the training batches; returns the mean training loss over the examples."""
    total, seen = 0.0, 0
    bar = tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=None, unit="step")
    for step, (x, y) in enumerate(bar, 1):
        output = model.forward(x)
        loss = loss_fn.forward(output, y)
        if not math.isfinite(loss):
            bar.close()
            raise TrainingDiverged(
                f"loss became {loss} at epoch {epoch + 1}, step {step}; try a smaller optimizer.lr"
            )
        model.backward(loss_fn.backward(), input_grad=False)
        optimizer.step()
        total += loss * len(x)
        seen += len(x)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{total / seen:.4f}", refresh=False)
    return total / seen


class TrainingDiverged(LayerwiseError):
    """The loss became NaN or infinite."""

    exit_code = 3


def save_model(path, model, cfg):
    meta = {"format": "layerwise-model", "version": 1, "model": model.config(), "config": cfg.to_dict()}
    save_checkpoint(path, model.state_dict(), meta)


def _write_metrics(path, history):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def _epoch_line(row, epochs, monitor):
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


def resolve_checkpoint(target):
    """A run directory (-> its model.npz) or a checkpoint file."""
    target = Path(target)
    if target.is_dir():
        path = target / MODEL_FILE
        if not path.is_file():
            raise CheckpointError(f"{target} holds no {MODEL_FILE}: is it a layerwise run directory?")
        return path
    if not target.exists():
        raise CheckpointError(f"no run directory or checkpoint at {target}")
    return target


def load_run(target, overrides=()):
    """Rebuild (cfg, data, model, loss) from a run directory or checkpoint; overrides apply to its config.

    A run directory's config.yaml is used when present (so a user's edits to it are honoured and
    checked against the weights); a bare checkpoint brings its own config.
    """
    path = resolve_checkpoint(target)
    arrays, meta = load_checkpoint(path)
    if meta.get("format") != "layerwise-model" or "config" not in meta:
        raise CheckpointError(f"{path}: not a layerwise model checkpoint")
    config_file = path.parent / "config.yaml"
    if config_file.is_file():
        cfg = load_config(config_file, overrides)
    else:
        raw = dict(meta["config"])
        cfg = config_from_dict(apply_overrides(raw, overrides, str(path)), str(path))
    data = load_dataset(cfg.data, seed=cfg.seed, source=cfg.source)
    try:
        model = build_model(cfg.model.layers, data.num_features, data.num_outputs)
        loss = build_loss(cfg.loss, data.task)
    except ConfigError as e:
        raise ConfigError(f"{cfg.source}: {e}") from None
    try:
        model.load_state_dict(arrays)
    except CheckpointError as e:
        raise CheckpointError(f"{path} does not match the model in {cfg.source}: {e}") from None
    return cfg, data, model, loss


def evaluate_run(target, split="test", overrides=(), echo=print):
    cfg, data, model, loss = load_run(target, overrides)
    result = evaluate(model, loss, data.split(split), data.task, cfg.train.eval_batch_size)
    echo(f"{cfg.name}: {split} split, {len(data.split(split)):,} examples")
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
