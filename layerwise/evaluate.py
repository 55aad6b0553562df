"""Scoring a model: metrics on a split, and `layerwise eval` of a saved run."""

from pathlib import Path

from . import metrics
from .checkpoint import load_run_arrays, load_run_meta
from .config import apply_overrides, config_from_dict, load_config
from .errors import CheckpointError
from .report import format_confusion, format_metrics


def evaluate(model, loss_fn, split, task, batch_size=5000):
    """Loss (mean over the split) and the task's metrics; classification also returns `confusion`."""
    outputs = model.predict(split.x, batch_size)
    result = {"loss": loss_fn.forward(outputs, split.y)}
    if task == "classification":
        result["accuracy"] = metrics.accuracy(outputs, split.y)
        result["confusion"] = metrics.confusion_matrix(outputs, split.y, outputs.shape[1])
    else:
        result.update(metrics.regression_metrics(outputs, split.y))
    return result


def resolve_checkpoint(target, which="best"):
    """A run directory (-> its best.npz or last.npz) or a checkpoint file."""
    target = Path(target)
    if target.is_dir():
        path = target / f"{which}.npz"
        if not path.is_file():
            hint = " (no epoch finished yet: try --checkpoint last)" if (target / "last.npz").is_file() else \
                ": is it a layerwise run directory?"
            raise CheckpointError(f"{target} holds no {which}.npz{hint}")
        return path
    if not target.exists():
        raise CheckpointError(f"no run directory or checkpoint at {target}")
    return target


def load_run(target, which="best", overrides=()):
    """Rebuild (cfg, data, model, loss, run state) from a run directory or checkpoint; overrides apply to
    its config.

    A run directory's config.yaml is used when present (so a user's edits to it are honoured and
    checked against the weights); a bare checkpoint brings its own config.
    """
    from .runstate import RunState
    from .training import build

    path = resolve_checkpoint(target, which)
    meta = load_run_meta(path)
    state = RunState.from_meta(meta["state"], path)
    config_file = path.parent / "config.yaml"
    if config_file.is_file():
        cfg = load_config(config_file, overrides)
    else:
        cfg = config_from_dict(apply_overrides(meta["config"], overrides, str(path)), str(path))
    data, model, loss, _ = build(cfg)
    load_run_arrays(path, model, against=f"the model in {cfg.source}")
    return cfg, data, model, loss, state


def evaluate_run(target, split="test", which="best", overrides=(), echo=print):
    cfg, data, model, loss, state = load_run(target, which, overrides)
    result = evaluate(model, loss, data.split(split), data.task, cfg.train.eval_batch_size)
    echo(f"{cfg.name}, weights after epoch {state.epoch}: {split} split, {len(data.split(split)):,} examples")
    echo(f"{split} {format_metrics(result)}")
    if "confusion" in result:
        echo(format_confusion(result["confusion"]))
    if _is_linear_regression(model, data):
        W, b = model.layers[0].params["W"][:, 0], model.layers[0].params.get("b")
        echo("learned weights w = [" + ", ".join(f"{w:.4f}" for w in W) + "]" + (f", bias b = {b[0]:.4f}" if b is not None else ""))
        result["weights"], result["bias"] = W.tolist(), (float(b[0]) if b is not None else None)
    return result


def _is_linear_regression(model, data):
    params = model.layers[0].params
    return data.task == "regression" and len(model.layers) == 1 and "W" in params and params["W"].shape[1] == 1
