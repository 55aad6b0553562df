"""`layerwise plot SWEEP_DIR`: each trial's best validation metric against every swept key, and the
validation curves of the best trials. Reads sweep.yaml and results.csv as untrusted files."""

import csv
import io
import math
from pathlib import Path

import numpy as np
import yaml

from ..config.yaml_loader import parse_yaml
from ..errors import CheckpointError
from ..run.metrics import higher_is_better
from ..run.runfiles import read_text
from .figures import COLORS, FONT, _log_if_wide

BEST_CURVES = 5


def is_sweep(directory):
    return (Path(directory) / "sweep.yaml").is_file()


def sweep_data(directory, read_metrics):
    """{"keys", "trials": [{"id", "values": {key: text}, "best_val"}], "metric", "curves": [(id, metrics)]}."""
    directory = Path(directory)
    try:
        manifest = parse_yaml(read_text(directory / "sweep.yaml", "sweep manifest"))
        rows = list(csv.DictReader(io.StringIO(read_text(directory / "results.csv", "results.csv"), newline="")))
    except (OSError, yaml.YAMLError, csv.Error) as e:
        raise CheckpointError(f"{directory}: cannot read its sweep.yaml and results.csv ({type(e).__name__}); "
                              "has the sweep finished?") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("trials"), list):
        raise CheckpointError(f"{directory}/sweep.yaml: not a layerwise sweep manifest")
    keys = list(dict.fromkeys(str(k) for t in manifest["trials"] if isinstance(t, dict) and isinstance(t.get("overrides"), dict)
                              for k in t["overrides"]))
    trials = []
    for row in rows:
        if row.get("status") != "finished":
            continue
        try:
            value = float(row["best_val"])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(value):
            trials.append({"id": row.get("id") or "?", "values": {k: row.get(k) or "" for k in keys}, "best_val": value,
                           "metric": row.get("metric") or "val"})
    if not trials:
        raise CheckpointError(f"{directory}: no finished trial to plot (see its results.csv)")
    metric = trials[0]["metric"]
    higher = higher_is_better(metric)
    ranked = sorted(trials, key=lambda t: -t["best_val"] if higher else t["best_val"])
    curves = [(t["id"], read_metrics(directory / "trials" / t["id"])) for t in ranked[:BEST_CURVES]]
    for trial_id, m in curves:
        if metric not in m:
            raise CheckpointError(f"{directory / 'results.csv'}: metric {metric[:60]!r} is not a column of "
                                  f"{directory / 'trials' / trial_id / 'metrics.csv'} (edited?)")
    return {"keys": keys, "trials": trials, "metric": metric, "curves": curves, "name": directory.name}


def draw_sweep(fig, d):
    """One panel per swept key (best validation metric of each trial against the key's value), then the
    validation curves of the best trials."""
    from matplotlib.ticker import MaxNLocator

    panels = len(d["keys"]) + 1
    cols = min(panels, 3)
    rows = -(-panels // cols)
    metric = d["metric"]
    label = metric.replace("val_", "validation ")
    for i, key in enumerate(d["keys"]):
        ax = fig.add_subplot(rows, cols, i + 1)
        texts = [t["values"][key] for t in d["trials"]]
        ys = [t["best_val"] for t in d["trials"]]
        try:
            xs = [float(x) for x in texts]
            ax.scatter(xs, ys, s=60, color=COLORS[0], edgecolor="black", zorder=3)
            positive = [x for x in xs if x > 0]
            if len(positive) == len(xs) and max(xs) / min(xs) >= 20:
                ax.set_xscale("log")
        except ValueError:  # text values: one column each, in first-seen order
            order = list(dict.fromkeys(texts))
            ax.scatter([order.index(x) for x in texts], ys, s=60, color=COLORS[0], edgecolor="black", zorder=3)
            ax.set_xticks(range(len(order)), [o[:12] for o in order])
        ax.set_xlabel(key, fontsize=FONT)
        ax.set_ylabel(label, fontsize=FONT)
        _log_if_wide(ax, np.array(ys))
        ax.set_title(f"best {label} by {key}", fontsize=FONT + 1)
        ax.grid(alpha=0.3)
    ax = fig.add_subplot(rows, cols, panels)
    for j, (trial_id, m) in enumerate(d["curves"]):
        values = [t for t in d["trials"] if t["id"] == trial_id][0]["values"]
        ax.plot(m["epoch"], m[metric], color=COLORS[j % len(COLORS)], lw=2, marker="o", ms=4,
                label=f"{trial_id} " + " ".join(f"{k.split('.')[-1]}={v}" for k, v in values.items()))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch", fontsize=FONT)
    ax.set_ylabel(label, fontsize=FONT)
    _log_if_wide(ax, np.concatenate([m[metric] for _, m in d["curves"]]))
    ax.set_title(f"{label} per epoch, best {len(d['curves'])} trials", fontsize=FONT + 1)
    ax.legend(fontsize=FONT - 2)
    ax.grid(alpha=0.3)
    fig.suptitle(f"sweep {d['name']}: {len(d['trials'])} finished trials", fontsize=FONT + 3)

