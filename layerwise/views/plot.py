"""`layerwise plot`: pictures of finished runs, drawn with matplotlib (the optional extra `plot`).

  curves     train/validation loss and the validation metric against epoch, runs overlaid; the lr below
  confusion  the test confusion matrix as a heat map with counts
  errors     the test images the model gets wrong (image models), or predicted against true (regression)
  weights    the first linear layer's weights: one 28x28 tile per unit (image models), else a heat map

matplotlib is imported only here, on its Agg canvas (files only, never a window, no pyplot state).
Every input is read and checked before anything is drawn; files are written atomically.
"""

import math
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, ConfigError, MissingExtra, StorageError
from ..run.runfiles import read_metrics_csv, read_test_json
from ..util.fileio import atomic_write, describe_os_error
from ..util.outputs import check_name, check_output, create_output
from .figures import FONT, draw_confusion, draw_curves, draw_errors, draw_weights

KINDS = ("curves", "confusion", "errors", "weights", "features")
DPI = 100
SIZES = {"curves": (12, 8), "confusion": (9, 8), "errors": (12, 10), "weights": (16, 8), "features": (16, 8)}  # inches; x DPI = pixels
FORMATS = (".png", ".svg", ".pdf")


def pixel_size(what):
    """(width, height) in pixels of a PNG of kind `what`."""
    w, h = SIZES[what]
    return round(w * DPI), round(h * DPI)


def plot_runs(runs, what="curves", output=None, overwrite=False):
    """Draw `what` for the run directories `runs`; returns the paths written.

    curves overlays every run in one picture; the other kinds draw one picture per run. The default
    file is RUN/plots/<what>.png (layerwise's own, replaced on each call); several runs' curves go to
    the first run's plots/curves-vs-<other runs>.png. An `output` file that exists is refused unless
    `overwrite`.
    """
    if what not in KINDS:
        raise ConfigError(f"--what: expected one of {', '.join(KINDS)}, received {what!r}")
    runs = [Path(r) for r in runs]
    from .sweep_plot import is_sweep

    if len(runs) == 1 and is_sweep(runs[0]):
        return [_plot_sweep(runs[0], output, overwrite)]
    for run in runs:
        if not run.is_dir():
            raise CheckpointError(f"{run}: expected a run directory (from layerwise train)")
    if output is not None and what != "curves" and len(runs) > 1:
        raise ConfigError(f"-o names one file, but --what {what} draws one picture per run; leave out -o to write "
                          f"RUN/plots/{what}.png in each run")
    names = run_names(runs)
    if output is not None:
        paths = [_checked_output(output, overwrite)]
    else:
        groups = [(runs, names)] if what == "curves" else [([run], [name]) for run, name in zip(runs, names)]
        paths = [_default_output(group, group_names, what) for group, group_names in groups]
    figure_class = _matplotlib()  # before reading the runs: a missing extra is said at once
    if what == "curves":
        datas = [_curves_data(runs, names)]
    else:
        from .features import features_data

        read = {"confusion": _confusion_data, "errors": _errors_data, "weights": _weights_data,
                "features": features_data}[what]
        datas = [read(run, name) for run, name in zip(runs, names)]
    jobs = list(zip(datas, paths))
    from .features import draw_features

    draw = {"curves": draw_curves, "confusion": draw_confusion, "errors": draw_errors, "weights": draw_weights,
            "features": draw_features}[what]
    written = []
    for data, path in jobs:
        fig = figure_class(figsize=SIZES[what], dpi=DPI, layout="constrained")
        draw(fig, data)
        _save(fig, path, output is not None, overwrite)
        written.append(path)
    return written


def _save(fig, path, user_named, overwrite):
    """A user's -o file is created as every user-named output is (util/outputs.py: never replacing a file
    that appeared meanwhile, unless --overwrite); RUN/plots/<what>.png is layerwise's own, replaced."""
    def write(f):
        fig.savefig(f, format=path.suffix[1:].lower(), dpi=DPI, facecolor="white")

    if user_named:
        create_output(path, write, "-o", overwrite)
        return
    try:
        path.parent.mkdir(exist_ok=True)
    except OSError as e:
        raise StorageError(f"cannot create {path.parent}: {describe_os_error(e)}", describe_os_error(e)) from None
    atomic_write(path, write)


def _plot_sweep(directory, output, overwrite):
    """A sweep directory's picture: SWEEP/plots/sweep.png unless -o names a file."""
    from .sweep_plot import draw_sweep, sweep_data

    path = _checked_output(output, overwrite) if output is not None else directory / "plots" / "sweep.png"
    figure_class = _matplotlib()
    data = sweep_data(directory, read_metrics)
    panels = len(data["keys"]) + 1
    fig = figure_class(figsize=(6 * min(panels, 3), 5 * -(-panels // 3)), dpi=DPI, layout="constrained")
    draw_sweep(fig, data)
    _save(fig, path, output is not None, overwrite)
    return path


def _matplotlib():
    """matplotlib's Figure on the Agg canvas, or a MissingExtra error saying how to install it."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtra("layerwise plot needs matplotlib, which is not installed: pip install 'layerwise[plot]'") from None
    matplotlib.rcParams.update({"font.size": FONT, "axes.titlesize": FONT + 1, "figure.titlesize": FONT + 3})

    def figure(**kwargs):
        fig = Figure(**kwargs)
        FigureCanvasAgg(fig)
        return fig

    return figure


# --- where pictures go ------------------------------------------------------------------------


def run_names(runs):
    """A legend name per run: its directory name, or more of its path where two would collide."""
    names = [run.name or str(run) for run in runs]
    for depth in range(2, 6):
        if len(set(names)) == len(names):
            break
        names = ["/".join(run.resolve().parts[-depth:]) for run in runs]
    return names


def _default_output(runs, names, what):
    """RUN/plots/<what>.png, or for several runs RUN1/plots/<what>-vs-<the others>.png; checked."""
    if len(runs) == 1:
        path = runs[0] / "plots" / f"{what}.png"
    else:
        others = "-".join(name.replace("/", "_") for name in names[1:])
        path = runs[0] / "plots" / f"{what}-vs-{others if len(others) <= 80 else f'{len(runs) - 1}-runs'}.png"
    if path.parent.exists() and not path.parent.is_dir():
        raise ConfigError(f"{path.parent} is a file; layerwise writes its pictures into a directory of that name")
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; layerwise writes its picture to a file of that name")
    return path


def _checked_output(output, overwrite):
    """-o FILE, checked as every user-named output is (util/outputs.py), and a picture format."""
    path = check_name(output, "-o")
    if path.suffix.lower() not in FORMATS:
        raise ConfigError(f"-o {output}: expected a file name ending in {', '.join(FORMATS)}, received {path.suffix or 'no suffix'!r}")
    return check_output(path, "-o", overwrite, hint="pass --overwrite to replace it, or choose another file")


# --- reading runs -----------------------------------------------------------------------------


def read_metrics(run):
    """metrics.csv as {column: float array}, one entry per epoch, read as untrusted input (run/runfiles.py)."""
    path = run / "metrics.csv"
    try:
        rows = read_metrics_csv(path, required=("epoch", "lr", "train_loss", "val_loss"))
    except FileNotFoundError:
        raise CheckpointError(f"{run} holds no metrics.csv: no epoch has finished (or it is not a layerwise run directory)") from None
    if not rows:
        raise CheckpointError(f"{path}: expected the columns epoch, lr, train_loss, val_loss, ... and a row per epoch")
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def read_test(run):
    """test.json, read as untrusted input (run/runfiles.py: bounded, schema-checked)."""
    try:
        return read_test_json(run / "test.json")
    except FileNotFoundError:
        raise CheckpointError(f"{run} holds no test.json (written when training finishes); an unfinished run "
                              f"continues with layerwise train --resume {run}, and layerwise eval {run} prints "
                              f"the confusion matrix of any run") from None


def read_checkpoint(run, meta_only=False):
    """(arrays, meta) of the run's best.npz (the weights test.json scores), else last.npz; the model's
    arrays only (not the optimizer's), none with meta_only."""
    from ..run.checkpoint import load_run_meta
    from ..util.npz import load_checkpoint

    for name in ("best.npz", "last.npz"):
        path = run / name
        if path.is_file():
            meta = load_run_meta(path)
            return ({} if meta_only else load_checkpoint(path, skip=("optim/",))[0]), meta
    raise CheckpointError(f"{run} holds no best.npz or last.npz: is it a layerwise run directory?")


def class_names(meta, count):
    """The checkpoint's class names (its preprocessing) when it has them, else 0 .. count-1."""
    names = ((meta.get("preprocessing") or {}).get("class_names")) or None
    if isinstance(names, list) and len(names) == count:
        return [str(n) for n in names]
    return [str(i) for i in range(count)]


def _curves_data(runs, names):
    series = [(name, _with_best(run, read_metrics(run))) for run, name in zip(runs, names)]
    tasks = {("accuracy" if "val_accuracy" in m else "regression") for _, m in series}
    if len(tasks) > 1:
        raise ConfigError("cannot overlay classification and regression runs in one picture: their losses "
                          "and metrics differ; plot them separately")
    if tasks == {"regression"}:  # the axes say in which units: the loss may be on standardised targets
        for run, (_, m) in zip(runs, series):
            m["standardised_target"] = _standardised_target(run)
    return series


def _with_best(run, m):
    """The columns, with "best" (the index of the best epoch) when the run's config.yaml sets
    train.monitor: best.npz was picked by that column, and the star goes there."""
    from ..config.schema import load_config
    from ..errors import LayerwiseError

    try:
        cfg = load_config(run / "config.yaml")
        monitor = cfg.train.monitor
        m["label_smoothing"] = cfg.loss.get("label_smoothing", 0.0) if isinstance(cfg.loss, dict) else 0.0
    except (LayerwiseError, OSError):  # no or unreadable config.yaml: the star falls back to the task's metric
        monitor = None
    if monitor is not None and monitor in m:
        from ..run.metrics import higher_is_better

        values = m[monitor] if higher_is_better(monitor) else -m[monitor]
        m["best"] = len(values) - 1 - int(np.argmax(values[::-1]))  # a tie goes to the later epoch
        m["monitor"] = monitor
    return m


def _standardised_target(run):
    from ..run.evaluate import standardised_targets

    try:
        return standardised_targets(read_checkpoint(run, meta_only=True)[1].get("preprocessing"))
    except CheckpointError:
        return False


def _confusion_data(run, name):
    counts = read_test(run).get("test_confusion")
    if counts is None:
        raise ConfigError(f"{run}: a regression run has no confusion matrix; try --what errors (predicted "
                          f"against true)")
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.dtype.kind not in "iu":
        raise CheckpointError(f"{run / 'test.json'}: test_confusion is not a square matrix of counts")
    _, meta = read_checkpoint(run, meta_only=True)
    return {"name": name, "counts": counts, "classes": class_names(meta, len(counts))}


def _errors_data(run, name):
    """The test split's mistakes (image models: the pictures, most confident first) or, for
    regression, predicted against true."""
    from ..run import metrics
    from ..run.evaluate import load_run

    if not (run / "best.npz").is_file():
        raise CheckpointError(f"{run} holds no best.npz: no epoch has finished (or it is not a layerwise run directory)")
    cfg, data, model, _, state = load_run(run, "best")
    _, meta = read_checkpoint(run, meta_only=True)
    outputs = model.predict(data.test.x, cfg.train.eval_batch_size)
    title = {"name": name, "epoch": state.epoch}
    if data.task == "regression":
        from ..run.evaluate import in_target_units

        pred, true = in_target_units(data.preprocessing, outputs, data.test.y)  # the target's units
        return {**title, "kind": "regression", "pred": pred, "true": true,
                "metrics": metrics.regression_metrics(pred, true)}
    shape = image_shape(meta, data.num_features)
    if shape is None:
        raise ConfigError(f"{run}: --what errors draws test images, but this model takes {data.num_features} "
                          f"features, not images; try --what confusion")
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    probs = shifted / shifted.sum(axis=1, keepdims=True)
    pred, true = outputs.argmax(axis=1), data.test.y
    wrong = np.flatnonzero(pred != true)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:MAX_ERRORS]  # most confident first
    return {**title, "kind": "images", "images": display_pixels(data.test.x[wrong], meta).reshape(-1, *shape),
            "true": true[wrong], "pred": pred[wrong], "confidence": probs[wrong, pred[wrong]],
            "wrong": int((pred != true).sum()), "total": len(true), "classes": class_names(meta, outputs.shape[1]),
            "ink": _dataset(meta) != "fashion_mnist"}  # written strokes show dark on white; clothes as photographed


def _dataset(meta):
    return (meta.get("preprocessing") or {}).get("dataset") or meta.get("config", {}).get("data", {}).get("dataset")


MAX_ERRORS = 48  # 6 rows of 8


def _weights_data(run, name):
    """The first linear layer's W (in_features, units), its initial value when it can be rebuilt, and
    the image shape for image models."""
    arrays, meta = read_checkpoint(run)
    linear = sorted((int(key[6:].split(".")[0]), key) for key in arrays if key.startswith("model/") and key.endswith(".W"))
    if not linear:
        raise CheckpointError(f"{run}: the model has no linear layer, so no weights to draw")
    index, key = linear[0]
    W = np.asarray(arrays[key], dtype=np.float64)
    outputs = arrays[linear[-1][1]].shape[1]
    if W.ndim == 4:  # a first conv2d: its filters (kh, kw, C, M), one tile per output channel
        initial = initial_weights(meta, index, W, outputs)
        k, c, m = W.shape[0], W.shape[2], W.shape[3]
        tiles = lambda w: w.mean(axis=2).reshape(k * k, m)  # noqa: E731  (the channel mean when C > 1)
        return {"name": name, "W": tiles(W), "initial": None if initial is None else tiles(initial), "layer": index,
                "shape": (k, k), "epoch": meta["state"].get("epoch"), "filters": c}
    return {"name": name, "W": W, "initial": initial_weights(meta, index, W, outputs), "layer": index,
            "shape": image_shape(meta, W.shape[0]), "epoch": meta["state"].get("epoch")}


def initial_weights(meta, index, W, outputs):
    """Layer `index`'s weights before training, rebuilt from the run's config and seed (the init
    stream), or None when they cannot be rebuilt or do not look like this run's start (a run made
    by a layerwise with another initialisation: trained weights stay correlated with their start)."""
    from ..config.schema import config_from_dict
    from ..data.preprocess import image_input_shape
    from ..errors import LayerwiseError
    from ..nn.registry import build_model
    from ..run.build import INIT_STREAM

    try:
        cfg = config_from_dict(meta["config"], "<checkpoint>")
        model = build_model(cfg.model.layers, W.shape[0], outputs, rng=np.random.default_rng([cfg.seed, INIT_STREAM]),
                            input_shape=image_input_shape(meta.get("preprocessing")))
        initial = np.asarray(model.layers[index].params["W"], dtype=np.float64)
    except (LayerwiseError, KeyError, IndexError, TypeError, ValueError, MemoryError):
        return None
    if initial.shape != W.shape or W.size < 2 or np.corrcoef(initial.ravel(), W.ravel())[0, 1] < 0.5:
        return None
    return initial


def image_shape(meta, num_features):
    """(H, W) when the model's inputs are images (from the checkpoint's preprocessing, the MNIST
    dataset, or a square number of features at least 8x8), else None."""
    pre = meta.get("preprocessing") or {}
    if pre.get("kind") == "image":
        return tuple(pre["image_shape"])
    if pre.get("linear") is not None:  # a table with data.linear_copy: its inputs are columns twice, not pixels
        return None
    side = math.isqrt(num_features)
    if side * side == num_features and side >= 8:
        return side, side
    return None


def display_pixels(x, meta):
    """Model inputs -> pixels in [0, 1] (1 = white): the normalisation undone with the checkpoint's
    preprocessing or the config's mnist settings; otherwise each image stretched to its own range."""
    pre = meta.get("preprocessing") or {}
    data = meta.get("config", {}).get("data", {})
    x = np.asarray(x, dtype=np.float64)
    if pre.get("kind") == "image":
        scale, mean, std = pre["scale"], pre["mean"], pre["std"]
    elif data.get("dataset") == "mnist":
        scale = 1 / 255 if data.get("scale", True) else 1.0
        mean, std = (data.get("mean"), data.get("std")) if data.get("normalize", True) else (None, None)
    else:
        low, high = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
        return (x - low) / np.where(high > low, high - low, 1)
    if mean is not None and std is not None:
        x = x * std + mean
    return np.clip(x / (scale * 255), 0, 1)

