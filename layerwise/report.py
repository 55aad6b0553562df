"""Text reports: the per-epoch line, metrics in one line, the confusion matrix."""


def epoch_line(row, epochs):
    width = len(str(epochs))
    val = {k[4:]: v for k, v in row.items() if k.startswith("val_")}
    return (
        f"epoch {row['epoch']:>{width}}/{epochs}  train loss {row['train_loss']:.4f}  "
        f"val {format_metrics(val)}  lr {row['lr']:.4g}  {row['seconds']:.1f}s"
    )


def format_metrics(result):
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


def format_confusion(counts):
    """Rows are the true class, columns the predicted class."""
    n = counts.shape[0]
    width = max(5, len(str(counts.max())) + 1)
    lines = ["confusion matrix (rows: true class, columns: predicted)"]
    lines.append("true\\pred" + "".join(f"{j:>{width}}" for j in range(n)))
    for i in range(n):
        lines.append(f"{i:>9}" + "".join(f"{c:>{width}}" for c in counts[i]))
    return "\n".join(lines)


def json_text(obj, indent=1):
    """JSON for --json output: NaN and infinity become null (Python's json would write the invalid
    tokens NaN and Infinity), NumPy arrays and scalars become lists and numbers."""
    import json

    return json.dumps(_plain(obj), indent=indent, allow_nan=False)


def _plain(obj):
    import math

    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist"):  # NumPy arrays and scalars
        return _plain(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
