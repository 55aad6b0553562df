"""`layerwise compare`: several runs side by side, one row each, best validation metric first.

A run is read from its directory alone: config.yaml (the config keys that differ between the runs),
metrics.csv (epochs run, best epoch and validation metric, training time) and test.json (test
metrics, written when a run finishes), each read as untrusted input (run/runfiles.py: an edited or
damaged file is one error line naming it). Nothing is loaded into a model.
"""

import math
from pathlib import Path

from ..config.schema import load_config
from ..errors import CheckpointError
from ..run.metrics import changes_the_loss, higher_is_better
from ..run.report import format_metrics
from ..run.runfiles import read_metrics_csv, read_test_json

IGNORED_KEYS = ("output",)  # always differs between runs: it is the run's directory
MONITORS = (("val_accuracy", True), ("val_mse", False))  # metrics.MONITOR, as metrics.csv columns


def flatten(value, prefix=""):
    """Nested config -> {"optimizer.lr": 0.05, "model.layers.0.out_features": 512, ...} (the -s syntax)."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    out = {}
    for key, v in items:
        out.update(flatten(v, f"{prefix}.{key}" if prefix else str(key)))
    return out


def read_run(run_dir, by_task_metric=False):
    """What a run directory says about itself; CheckpointError if it is not a run directory."""
    run_dir = Path(run_dir)
    config_file = run_dir / "config.yaml"
    if not run_dir.is_dir() or not config_file.is_file():
        raise CheckpointError(f"{run_dir} is not a layerwise run directory (no config.yaml); give run directories")
    cfg = load_config(config_file)
    if any("in_features" not in layer for layer in cfg.model.layers if layer.get("type") == "linear"):
        # Written before config.yaml was fully resolved: fill in the layer arguments the same way.
        from ..run.resolve import build_uninitialised

        build_uninitialised(cfg, echo=lambda *a, **k: None)
    history = _read_metrics(run_dir / "metrics.csv")
    run = {"run": str(run_dir), "config": flatten(cfg.to_dict()), "epochs": len(history), "seconds": None,
           "best_epoch": None, "monitor": None, "best_val": None, "test": {}}
    if history:
        run["seconds"] = sum(row.get("seconds", 0.0) for row in history)
        monitors = MONITORS
        if cfg.train.monitor is not None:  # what the run itself picked best.npz by
            monitors = ((cfg.train.monitor, higher_is_better(cfg.train.monitor)),)
        for column, higher in monitors:
            if column in history[0]:
                values = [(row[column], int(row["epoch"])) for row in history if not math.isnan(row[column])]
                if not values:
                    break
                # A tie goes to the later epoch, as training picks best.npz.
                value, epoch = max(values, key=lambda ve: (ve[0] if higher else -ve[0], ve[1]))
                run.update(monitor=column[4:], higher_is_better=higher, best_val=value, best_epoch=epoch)
                break
        if by_task_metric and run["best_epoch"] is not None:  # the task's metric at the epoch the run kept
            row = next(r for r in history if int(r["epoch"]) == run["best_epoch"])
            task_metric = next(((c, h) for c, h in MONITORS if c in row), None)
            if task_metric is not None:
                run.update(monitor=task_metric[0][4:], higher_is_better=task_metric[1], best_val=row[task_metric[0]])
    try:
        saved = read_test_json(run_dir / "test.json")
    except FileNotFoundError:
        saved = {}
    run["test"] = {k[5:]: v for k, v in saved.items() if k.startswith("test_") and k not in ("test_confusion", "test_per_class")}
    return run


def _read_metrics(path):
    """metrics.csv through the run-file reader (run/runfiles.py); [] before the first epoch ends."""
    try:
        return read_metrics_csv(path)
    except FileNotFoundError:
        return []


def compare_runs(run_dirs):
    """{"differing_keys": [...], "runs": [...]}: runs sorted by their best validation metric, best first."""
    runs = [read_run(d) for d in run_dirs]
    keys = sorted({k for r in runs for k in r["config"]} - set(IGNORED_KEYS))
    missing = object()
    differing = [k for k in keys if len({repr(r["config"].get(k, missing)) for r in runs}) > 1]
    loss_keys = [k for k in differing if changes_the_loss(k)]
    if loss_keys and any(r["monitor"] == "loss" for r in runs):
        # Val losses measured against other targets (smoothed labels, weights, scales) do not rank runs.
        runs = [read_run(d, by_task_metric=True) for d in run_dirs]

    def rank(r):
        if r["best_val"] is None or not math.isfinite(r["best_val"]):
            return (1, 0.0)
        return (0, -r["best_val"] if r["higher_is_better"] else r["best_val"])

    runs.sort(key=rank)
    for r in runs:
        r["differs"] = {k: r["config"].get(k) for k in differing}
    return {"differing_keys": differing, "runs": runs, "loss_keys": loss_keys}


def format_comparison(result):
    runs, keys = result["runs"], result["differing_keys"]
    header = ["run", *keys, "epochs", "best epoch", "best val", "test", "train time"]
    table = [header]
    for r in runs:
        best = "-" if r["best_val"] is None else format_metrics({r["monitor"]: r["best_val"]})
        test = format_metrics(r["test"]) if r["test"] else "- (not finished)"
        seconds = "-" if r["seconds"] is None else f"{r['seconds']:.1f}s"
        table.append([r["run"], *(_value(r["differs"][k]) for k in keys), str(r["epochs"]),
                      str(r["best_epoch"] or "-"), best, test, seconds])
    widths = [max(len(row[c]) for row in table) for c in range(len(header))]
    lines = ["  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "-" * len(lines[0]))
    note = (f"config keys that differ: {', '.join(keys)}" if keys else "the runs' configs are identical (apart from output)")
    if result.get("loss_keys") and runs and runs[0]["monitor"] not in (None, "loss"):
        note += (f"; ranked by val {runs[0]['monitor']}, not val loss: {', '.join(result['loss_keys'])} changes what the "
                 "loss measures, so the runs' losses are not comparable")
    return "\n".join(lines + ["", f"{len(runs)} runs, best validation metric first; {note}"])


def _value(v):
    return "-" if v is None else str(v)
