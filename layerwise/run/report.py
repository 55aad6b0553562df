"""Text reports: the per-epoch line, metrics in one line, the confusion matrix."""

import math


NOT_SCALARS = ("confusion", "per_class")
EPOCH_METRICS = ("loss", "accuracy", "f1", "mse", "mae", "r2")  # what an epoch's line shows


def epoch_line(row, epochs):
    width = len(str(epochs))
    val = {k[4:]: v for k, v in row.items() if k.startswith("val_") and k[4:] in EPOCH_METRICS}
    return (
        f"epoch {row['epoch']:>{width}}/{epochs}  train loss {row['train_loss']:.4f}  "
        f"val {format_metrics(val)}  lr {row['lr']:.4g}  {row['seconds']:.1f}s"
    )


def format_metrics(result):
    parts = []
    for key, value in result.items():
        if key in NOT_SCALARS or (key == "loss" and _is_close(value, result.get("mse"))):
            continue  # when the loss is the MSE (float32 vs float64 sums aside), print it once
        if value is None:  # NaN or infinite, as JSON files store it (null)
            parts.append(f"{'acc' if key == 'accuracy' else key} n/a")
        elif key == "accuracy":
            parts.append(f"acc {100 * value:.2f}%")
        elif key in ("f1", "precision", "recall", "auc"):
            parts.append(f"{'F1' if key == 'f1' else key} {value:.4f}")
        elif key == "r2":
            parts.append(f"R2 {value:.4f}")
        else:
            parts.append(f"{key} {value:.4f}")
    return "  ".join(parts)


def format_per_class(per_class, names=None):
    """Precision, recall and F1 of every class, one line each."""
    n = len(per_class["f1"])
    names = [str(c) for c in names] if names and len(names) == n else [str(i) for i in range(n)]
    width = max(9, *(len(c) for c in names))
    lines = [f"{'class':<{width}}  precision  recall      F1"]
    for i, c in enumerate(names):
        lines.append(f"{c:<{width}}  {per_class['precision'][i]:>9.4f}  {per_class['recall'][i]:>6.4f}  "
                     f"{per_class['f1'][i]:.4f}")
    return "\n".join(lines)


def _is_close(a, b):
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-4)


def format_confusion(counts, names=None, limit=12):
    """Rows are the true class, columns the predicted class, each labelled with its class name (cut to
    `limit` characters with "~"; 0..K-1 without names). Control characters are escaped where it is printed."""
    n = counts.shape[0]
    labels = [str(i) for i in range(n)] if names is None or len(names) != n else [str(c) for c in names]
    labels = [c if len(c) <= limit else c[: limit - 1] + "~" for c in labels]
    width = max(5, len(str(counts.max())) + 1, max(len(c) for c in labels) + 1)
    first = max(9, max(len(c) for c in labels))
    lines = ["confusion matrix (rows: true class, columns: predicted)"]
    corner = "true\\pred"
    lines.append(f"{corner:<{first}}" + "".join(f"{c:>{width}}" for c in labels))
    for i in range(n):
        lines.append(f"{labels[i]:>{first}}" + "".join(f"{c:>{width}}" for c in counts[i]))
    return "\n".join(lines)
