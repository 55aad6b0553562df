"""How each `layerwise plot` picture is drawn: draw_<kind>(fig, data) fills a matplotlib Figure.

The data comes from layerwise.views.plot, which reads and checks the runs; nothing here reads files.
matplotlib is imported inside the functions (only `layerwise plot` needs it).
"""

import math

import numpy as np

FONT = 11  # base font size in points
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")


def draw_curves(fig, series):
    """Loss (train solid, validation dashed) and the validation metric against epoch, one colour per
    run, the best epoch starred; the learning rate in a small panel below."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    grid = fig.add_gridspec(2, 2, height_ratios=[3, 1])
    loss_ax, metric_ax, lr_ax = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    classification = "val_accuracy" in series[0][1]
    losses = []
    marker = "o" if max(len(m["epoch"]) for _, m in series) <= 30 else None  # dots while they stay apart
    for i, (name, m) in enumerate(series):
        color, epochs = COLORS[i % len(COLORS)], m["epoch"]
        style = {"color": color, "lw": 2, "marker": marker, "ms": 5}
        loss_ax.plot(epochs, m["train_loss"], label=name, **style)
        loss_ax.plot(epochs, m["val_loss"], ls="--", mfc="white", **style)  # hollow dots: validation
        losses += [m["train_loss"], m["val_loss"]]
        if classification:
            metric = 100 * m["val_accuracy"]
            best = len(metric) - 1 - int(np.argmax(metric[::-1]))  # a tie goes to the later epoch, as in training
            if "val_f1" in m:  # macro F1, dotted, on the same percent axis
                metric_ax.plot(epochs, 100 * m["val_f1"], ls=":", **{k: v for k, v in style.items() if k != "marker"})
        else:
            metric = m.get("val_mae", m["val_loss"])
            by = m.get("val_mse", m["val_loss"])
            best = len(metric) - 1 - int(np.argmin(by[::-1]))  # best by validation MSE, as in training
        best = m.get("best", best)  # train.monitor's best epoch, when the run set it
        metric_ax.plot(epochs, metric, **style)
        metric_ax.plot(epochs[best], metric[best], marker="*", ms=18, color=color, mec="black", ls="none")
        lr_ax.plot(epochs, m["lr"], **style)
    _log_if_wide(loss_ax, np.concatenate(losses))
    loss_ax.set_title("loss: train (solid), validation (dashed)")
    standardised = any(m.get("standardised_target") is True for _, m in series)
    smoothing = sorted({m.get("label_smoothing") or 0.0 for _, m in series} - {0.0})
    smoothed = f" (smoothed labels, e = {', '.join(map(str, smoothing))})" if smoothing else ""  # its floor is above 0
    loss_ax.set_ylabel("cross-entropy" + smoothed if classification else "MSE of the standardised target" if standardised else "MSE")
    monitors = {m.get("monitor") for _, m in series} - {None}
    by = f" (by {monitors.pop()})" if len(monitors) == 1 else ""
    if classification:
        f1 = ", macro F1 dotted" if "val_f1" in series[0][1] else ""
        metric_ax.set_title(f"validation accuracy{f1}, \u2605 best epoch{by}")
        metric_ax.set_ylabel("accuracy (%)")
    else:
        which = "MAE" if "val_mae" in series[0][1] else "MSE"
        metric_ax.set_title(f"validation {which}, \u2605 best epoch{by or ' (by MSE)'}")
        metric_ax.set_ylabel(f"{which} (target units)" if which == "MAE" else which)
        _log_if_wide(metric_ax, np.concatenate([m.get("val_mae", m["val_loss"]) for _, m in series]))
    lr_ax.set_title("learning rate")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    last = max(m["epoch"].max() for _, m in series)
    for ax in (loss_ax, metric_ax, lr_ax):
        ax.set_xlabel("epoch")
        ax.set_xlim(0.5, last + 0.5)  # whole epochs, even for a run of one
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    styles = [Line2D([], [], color="black", lw=2, marker=marker), Line2D([], [], color="black", lw=2, ls="--", marker=marker, mfc="white")]
    loss_ax.legend(styles, ["train", "validation"], loc="upper right")
    if len(series) > 1:
        fig.legend(loc="outside upper center", ncols=min(len(series), 4), title="run")
    else:
        fig.suptitle(f"{series[0][0]}: training curves")


def _log_if_wide(ax, values):
    """A log y axis when positive values span more than a factor of 10."""
    values = values[np.isfinite(values)]
    if len(values) and values.min() > 0 and values.max() / values.min() > 10:
        ax.set_yscale("log")
        ax.set_ylabel((ax.get_ylabel() + " " if ax.get_ylabel() else "") + "(log scale)")


def draw_confusion(fig, d):
    """Counts in each cell (blank = 0), coloured by log count so the few mistakes show beside the
    large diagonal; each row's recall on the right."""
    counts, classes = d["counts"], d["classes"]
    n = len(counts)
    ax = fig.add_subplot()
    shade = np.log1p(counts)
    top = shade.max() or 1.0
    ax.imshow(shade, cmap="Blues", vmin=0, vmax=top)
    size = FONT if n <= 12 else max(6, FONT - (n - 12) // 3)
    if n <= 40:
        for i, j in zip(*np.nonzero(counts)):
            color = "white" if shade[i, j] > 0.6 * top else "black"
            ax.text(j, i, f"{counts[i, j]:,}", ha="center", va="center", fontsize=size, color=color)
    long_names = max(len(c) for c in classes) > 3
    ax.set_xticks(range(n), labels=classes, rotation=40 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticks(range(n), labels=classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    totals = counts.sum(axis=1)
    recall = np.divide(np.diag(counts), totals, out=np.zeros(n), where=totals > 0)
    right = ax.secondary_yaxis("right")
    right.set_yticks(range(n), labels=[f"{100 * r:.1f}%" for r in recall])
    right.set_ylabel("recall: share of the true class predicted right")
    total = counts.sum()
    accuracy = np.trace(counts) / total if total else float("nan")
    ax.set_title(f"{d['name']}: test confusion matrix, {total:,} examples, accuracy {100 * accuracy:.2f}%\n"
                 f"(colour: log of the count; blank cells: 0)")


def draw_errors(fig, d):
    """Up to 48 mistaken test images, most confident first, 8 to a row, each under its true class,
    predicted class and that prediction's probability; drawn as one mosaic (fast, evenly spaced)."""
    if d["kind"] == "regression":
        return _draw_regression_errors(fig, d)
    images, classes = d["images"], d["classes"]
    n, cols, rows = len(images), 8, 6
    h, w = images.shape[1:] if n else (28, 28)
    long_names = max(len(c) for c in classes) > 5  # then the probability gets a line of its own
    label, gap = round((0.9 if long_names else 0.6) * h), max(2, h // 10)  # blank rows above each image for its label
    cell_h, cell_w = label + h + gap, w + w // 2  # room for labels side by side
    mosaic = np.full((rows * cell_h, cols * cell_w), np.nan)
    ax = fig.add_subplot()
    for k in range(n):
        r, c = divmod(k, cols)
        top, left = r * cell_h + label, c * cell_w
        mosaic[top : top + h, left : left + w] = images[k]
        text = f"true {classes[d['true'][k]]}\npred {classes[d['pred'][k]]}" + ("\n" if long_names else " ")
        ax.text(left + w / 2, top - 1, text + f"{100 * d['confidence'][k]:.0f}%", ha="center", va="bottom",
                fontsize=FONT - 1, color="#b00000", linespacing=1.15)
    if n == 0:
        ax.text(0.5, 0.5, "no mistakes", transform=ax.transAxes, ha="center", va="center", fontsize=FONT + 6)
    import matplotlib

    cmap = matplotlib.colormaps["gray_r" if d["ink"] else "gray"].with_extremes(bad="white")  # ink dark on paper
    ax.imshow(mosaic, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    rate = 100 * d["wrong"] / d["total"] if d["total"] else 0.0
    shown = f"the {n} most confident mistakes" if n < d["wrong"] else ("all of them" if n else "nothing to show")
    fig.suptitle(f"{d['name']} (epoch {d['epoch']}): {d['wrong']:,} of {d['total']:,} test images wrong "
                 f"({rate:.2f}%); {shown}\nabove each: its true class, the class predicted and that prediction's probability")


def _draw_regression_errors(fig, d):
    """Predicted against true on the test split (on the diagonal is right), and each residual against
    the true value (structure there is what the model missed)."""
    pred, true = d["pred"], d["true"]
    scatter_ax, residual_ax = fig.subplots(1, 2)
    outputs = true.shape[1]
    for j in range(outputs):
        style = {"s": 16, "alpha": 0.6, "color": COLORS[j % len(COLORS)], "label": f"output {j}" if outputs > 1 else None}
        scatter_ax.scatter(true[:, j], pred[:, j], **style)
        residual_ax.scatter(true[:, j], pred[:, j] - true[:, j], **style)
    low, high = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
    pad = 0.04 * (high - low or 1.0)
    scatter_ax.plot([low - pad, high + pad], [low - pad, high + pad], color="black", lw=1, label="predicted = true")
    scatter_ax.set_xlim(low - pad, high + pad)
    scatter_ax.set_ylim(low - pad, high + pad)
    scatter_ax.set_xlabel("true value")
    scatter_ax.set_ylabel("predicted value")
    scatter_ax.legend(loc="upper left")
    scatter_ax.set_title("predicted against true (test split)")
    residual_ax.axhline(0, color="black", lw=1)
    residual_ax.set_xlabel("true value")
    residual_ax.set_ylabel("residual: predicted \u2212 true")
    residual_ax.set_title("residuals (0 = exact)")
    for ax in (scatter_ax, residual_ax):
        ax.grid(alpha=0.3)
    m = d["metrics"]
    r2 = f"{m['r2']:.6f}" if m["r2"] > 0.999 else f"{m['r2']:.4f}"
    fig.suptitle(f"{d['name']} (epoch {d['epoch']}): test MSE {m['mse']:.4g}, MAE {m['mae']:.4g}, "
                 f"R\u00b2 {r2}; {len(true):,} test examples")


def draw_weights(fig, d):
    """Image models: each unit's input weights as an image tile (red positive, blue negative, white 0,
    one colour scale per panel), and beside them what training changed (W - W at initialisation),
    which is where the learned strokes show. Otherwise the weight matrix as a heat map."""
    W, initial, shape = d["W"], d["initial"], d["shape"]
    inputs, units = W.shape
    if shape is None:
        return _weights_heat_map(fig, d)
    panels = [("weights W", W)]
    if initial is not None:
        panels.append(("what training changed: W − W at initialisation", W - initial))
    tiles = 64 if len(panels) > 1 else 100
    shown = min(units, tiles)
    for k, (title, values) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        image, cols = _mosaic(values[:, :shown], shape)
        limit = float(np.percentile(np.abs(values[:, :shown]), 99.5)) or 1.0  # one outlier should not wash out the rest
        im = ax.imshow(image, cmap=_diverging(), vmin=-limit, vmax=limit, interpolation="nearest")
        rows = math.ceil(shown / cols)
        ax.set_xticks([])
        ax.set_yticks([r * (shape[0] + 1) + shape[0] / 2 for r in range(rows)],
                      labels=[f"{r * cols}–{min(shown, (r + 1) * cols) - 1}" for r in range(rows)])
        ax.set_ylabel("units (row by row)")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, shrink=0.7, label="weight" if k == 0 else "change")
    which = f"all {units} units" if shown == units else f"units 0–{shown - 1} of {units}"
    note = ("W is mostly its random start; the change shows what was learned" if initial is not None
            else "the initial weights could not be rebuilt, so only W is drawn")
    if "filters" in d:  # a conv2d's filters
        mean = f", mean over its {d['filters']} input channels" if d["filters"] > 1 else ""
        fig.suptitle(f"{d['name']} (epoch {d['epoch']}): conv2d layer {d['layer']}'s filters, {which.replace('units', 'channels')}\n"
                     f"each tile: one output channel's {shape[0]}\u00d7{shape[1]} kernel{mean} (red +, blue \u2212, white 0)")
        return
    fig.suptitle(f"{d['name']} (epoch {d['epoch']}): layer {d['layer']}'s input weights, {which}\n"
                 f"each tile: one unit's {shape[0]}\u00d7{shape[1]} weights (red +, blue \u2212, white 0); {note}")


def _weights_heat_map(fig, d):
    """The weight matrix, inputs down, units across; each value written in when there are few (then
    no colour bar is needed), square cells for a small matrix."""
    W = d["W"]
    inputs, units = W.shape
    ax = fig.add_subplot()
    limit = float(np.abs(W).max()) or 1.0
    small = max(inputs, units) <= 40
    im = ax.imshow(W, cmap=_diverging(), vmin=-limit, vmax=limit, aspect="equal" if small else "auto",
                   interpolation="nearest")
    if inputs * units <= 400:
        for i in range(inputs):
            for j in range(units):
                ax.text(j, i, f"{W[i, j]:.2f}", ha="center", va="center", fontsize=FONT if units <= 16 else 8,
                        color="white" if abs(W[i, j]) > 0.6 * limit else "black")
    else:
        fig.colorbar(im, ax=ax, shrink=0.8, label="weight")
    ax.set_yticks(range(inputs) if inputs <= 40 else [], labels=[f"x{i + 1}" for i in range(inputs)] if inputs <= 40 else None)
    ax.set_xticks(range(units) if units <= 40 else [])
    ax.set_xlabel("unit (output of the layer)")
    ax.set_ylabel("input")
    fig.suptitle(f"{d['name']} (epoch {d['epoch']}): layer {d['layer']}'s weights W, {_count(inputs, 'input')} "
                 f"\u00d7 {_count(units, 'unit')} (red positive, blue negative)")


def _count(n, noun):
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _mosaic(W, shape):
    """Columns of W as image tiles in a near-square grid, a NaN pixel (drawn grey) between tiles;
    returns (image, tiles per row)."""
    h, w = shape
    n = W.shape[1]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    image = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for k in range(n):  # at most TILES tiles: a loop over tiles, not pixels
        r, c = divmod(k, cols)
        image[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = W[:, k].reshape(h, w)
    return image, cols


def _diverging():
    import matplotlib

    return matplotlib.colormaps["RdBu_r"].with_extremes(bad="#999999")  # bad: the NaN gaps between tiles
