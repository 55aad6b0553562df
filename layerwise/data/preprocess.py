"""Preprocessing that travels with a model: raw inputs -> the model's inputs, outputs -> labels.

Every checkpoint stores its dataset's `preprocessing` (plain JSON), so eval and predict never need the
training data:
  kind "image": {"image_shape": [H, W], "scale": s, "mean": m or None, "std": s or None, ...}
      pixels (uint8 0-255 or floats in the same range) -> x * scale, then (x - mean) / std.
  kind "array": {"shape": [D, ...], "mean": [...] or None, "std": [...] or None, ...}
      rows of numbers -> (x - mean) / std per feature when standardised.
  kind "table": CSV columns -> numbers, by layerwise.data.tabular (encoding, one-hot, standardise).
All kinds carry "class_names" (classification: one name per output; else None) and "target_names";
regression may carry "target_mean"/"target_std" (the model learned standardised targets: its outputs
are put back in the target's units by `target_units`).
"""

import numpy as np

from ..errors import CheckpointError, DataError


def image_preprocessing(dataset, image_shape, class_names, scale, mean, std, image_files="auto"):
    return {"kind": "image", "dataset": dataset, "image_shape": [int(d) for d in image_shape],
            "scale": float(scale), "mean": None if mean is None else float(mean),
            "std": None if std is None else float(std),
            "class_names": [str(c) for c in class_names], "target_names": None,
            "image_files": image_files if image_files != "auto" else default_image_files(dataset)}


def default_image_files(dataset):
    """How image files are prepared for a dataset's model: MNIST's digit centring for digits (and IDX
    data, MNIST's format), a plain resize for Fashion-MNIST's clothes."""
    return "resize" if dataset == "fashion_mnist" else "digit"


def image_files_style(pre):
    """"digit" or "resize" for an image model's PNG/JPEG inputs; older checkpoints: by the dataset name."""
    return pre.get("image_files") or default_image_files(pre.get("dataset"))


def pixel_range(pre, raw, where):
    """Raw pixel arrays given to an image model, checked against what it takes (0-255): float pixels in
    [0, 1] (the Keras/PyTorch habit) are scaled to 0-255 with a note; negative values (already normalised),
    values above 255 (16-bit) and NaN are refused; blank images (every pixel the same) are noted.
    Notes are InputWarnings (the CLI prints them as `note:` lines)."""
    import warnings

    from ..errors import InputWarning

    a = np.asarray(raw)
    if a.size == 0 or not np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_ or a.ndim < 2:
        return raw  # pixels() says what is wrong with it
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        raise DataError(f"{where}: NaN or infinite pixel values; expected pixels 0-255 (or floats 0-1)")
    if a.dtype.kind == "c":
        return raw
    lo, hi = float(a.min()), float(a.max())
    if lo < 0:
        raise DataError(f"{where}: negative pixel values (down to {lo:.4g}); expected raw pixels 0-255 (or floats "
                        "0-1), not normalised ones: give the pixels before any (x - mean) / std, the model applies its own")
    if hi > 255:
        raise DataError(f"{where}: pixel values up to {hi:.6g}; expected 0-255 (8-bit pixels, or floats 0-1): "
                        "bring 16-bit images to 8 bits first (x / 257)")
    if 0 < hi <= 1:
        warnings.warn(InputWarning(f"{where}: pixel values are within [0, 1] (max {hi:.3g}): read as 0-1 and "
                                   "scaled to 0-255, the range this model takes"), stacklevel=2)
        a = a.astype(np.float32) * np.float32(255)
    flat = a.reshape(1, -1) if a.shape == tuple(pre["image_shape"]) else a.reshape(len(a), -1)
    blank = np.flatnonzero(flat.min(axis=1) == flat.max(axis=1))
    if len(flat) == 1 and len(blank):
        message = f"a blank image (every pixel {float(flat[0, 0]):g}, nothing drawn); its prediction means nothing"
    elif len(blank):
        rows = ", ".join(map(str, blank[:5])) + (", ..." if len(blank) > 5 else "")
        message = (f"{len(blank):,} of {len(flat):,} images are blank (rows {rows}): every pixel the same; "
                   "their predictions mean nothing")
    if len(blank):
        warnings.warn(InputWarning(f"{where}: {message}"), stacklevel=2)
    return a


def array_preprocessing(num_features, mean=None, std=None, target_names=("y",)):
    return {"kind": "array", "task": "regression", "shape": [int(num_features)],
            "mean": None if mean is None else [float(v) for v in mean],
            "std": None if std is None else [float(v) for v in std],
            "class_names": None, "target_names": list(target_names), "target_mean": None, "target_std": None}


def image_input_shape(pre):
    """(C, H, W) of one example for a model with convolution layers, or None when the inputs are not
    images: (1, H, W) for grayscale image data, an npz's (C, H, W) or (H, W) rows."""
    if not isinstance(pre, dict):
        return None
    if pre.get("kind") == "image":
        return (1, *(int(d) for d in pre["image_shape"]))
    shape = pre.get("shape") if pre.get("kind") == "array" else None
    if isinstance(shape, list) and len(shape) in (2, 3):
        return tuple(int(d) for d in ([1] + shape if len(shape) == 2 else shape))
    return None


def pixels(pre, images, where="input"):
    """Images (N, H, W) or (N, H*W) or one (H, W) image, 0-255 -> float32 (N, H*W) model inputs;
    scaled and normalised in place (no float64 temporaries)."""
    images = np.asarray(images)
    h, w = pre["image_shape"]
    if images.shape == (h, w):
        images = images[None]
    if images.ndim == 3 and images.shape[1:] == (h, w) or images.ndim == 2 and images.shape[1] == h * w:
        x = images.reshape(len(images), h * w).astype(np.float32)
    else:
        raise DataError(f"{where}: expected {h}x{w} images, shaped (N, {h}, {w}) or (N, {h * w}), "
                        f"received shape {images.shape}")
    if not np.issubdtype(images.dtype, np.number) or images.dtype == np.bool_:
        raise DataError(f"{where}: expected pixel values (numbers 0-255), received dtype {images.dtype}")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if pre["scale"] != 1:
            x *= np.float32(pre["scale"])
        if pre["mean"] is not None:
            x -= np.float32(pre["mean"])
            x *= np.float32(1 / pre["std"])
    return x


def features(pre, x, where="input"):
    """Rows (N, *shape) or one row (*shape) of raw numbers -> float32 (N, D) model inputs."""
    x = np.asarray(x)
    shape = tuple(pre["shape"])
    if x.shape == shape:
        x = x[None]
    if x.shape[1:] != shape:
        want = ", ".join(str(d) for d in shape)
        raise DataError(f"{where}: expected rows shaped ({want}), i.e. an array (N, {want}), received shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_:
        raise DataError(f"{where}: expected numbers, received dtype {x.dtype}")
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, as the model would see it
        x = x.reshape(len(x), -1).astype(np.float32)
    if pre["mean"] is not None:
        x -= np.asarray(pre["mean"], dtype=np.float32)
        x /= np.asarray(pre["std"], dtype=np.float32)
    return np.ascontiguousarray(x)


def model_inputs(pre, x, where="input"):
    """Raw arrays of an image or array model -> float32 model inputs."""
    try:
        x = np.asarray(x)
    except (ValueError, TypeError):  # a ragged list of rows
        raise DataError(f"{where}: expected a rectangular array of numbers (rows of equal length)") from None
    if x.ndim >= 1 and len(x) == 0:
        raise DataError(f"{where}: no rows (an empty array); give at least one input")
    if pre["kind"] == "image":
        return pixels(pre, pixel_range(pre, x, where), where)
    if pre["kind"] == "array":
        return features(pre, x, where)
    raise DataError(f"{where}: a model trained on a table takes CSV files (or tables given by column name), "
                    "not bare arrays; pass a CSV path")


def target_units(pre, outputs):
    """Regression outputs in the target's units: outputs * target_std + target_mean when the run
    standardised its targets, else unchanged."""
    if pre.get("target_mean") is None:
        return outputs
    return outputs * np.asarray(pre["target_std"], dtype=np.float32) + np.asarray(pre["target_mean"], dtype=np.float32)


def pixel_stats(images):
    """Mean and std of uint8 images scaled to [0, 1], exactly, from a 256-bin histogram (no float copy)."""
    counts = np.bincount(np.asarray(images, dtype=np.uint8).ravel(), minlength=256).astype(np.float64)
    values = np.arange(256) / 255.0
    n = counts.sum()
    mean = float(counts @ values / n)
    std = float(np.sqrt(max(counts @ (values - mean) ** 2 / n, 0.0)))
    return mean, std


def linear_copies(pre):
    """How many inputs data.linear_copy appends after the encoded columns of a table (0 without)."""
    return len((pre.get("linear") or {}).get("index", []))


def check_stored(path, sizes, pre):
    """A checkpoint's "data" (task, sizes) and "preprocessing" entries, checked before use: a forged or
    damaged one is a CheckpointError, not a crash later."""

    def count(v):
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    def numbers(v, n):
        return v is None or (isinstance(v, list) and len(v) == n and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) for x in v))

    valid = (isinstance(sizes, dict) and isinstance(pre, dict)
             and sizes.get("task") in ("classification", "regression") and count(sizes.get("num_features"))
             and count(sizes.get("num_outputs")) and pre.get("kind") in ("image", "array", "table"))
    if valid and sizes["task"] == "classification":
        names = pre.get("class_names")
        valid = isinstance(names, list) and len(names) == sizes["num_outputs"] and all(isinstance(n, str) for n in names)
        weights = pre.get("class_weight")
        valid = valid and numbers(weights, sizes["num_outputs"]) and (weights is None or min(weights) > 0)
    if valid and pre["kind"] == "image":
        shape, scale = pre.get("image_shape"), pre.get("scale")
        valid = (isinstance(shape, list) and len(shape) == 2 and all(count(d) for d in shape)
                 and shape[0] * shape[1] == sizes["num_features"] and numbers([scale], 1)
                 and numbers(None if pre.get("mean") is None else [pre.get("mean"), pre.get("std")], 2)
                 and (pre.get("std") is None or pre["std"] != 0)
                 and pre.get("image_files") in (None, "digit", "resize"))
    if valid and pre["kind"] == "array":
        shape, d = pre.get("shape"), sizes["num_features"]
        valid = (isinstance(shape, list) and shape and all(count(v) for v in shape) and int(np.prod(shape)) == d
                 and numbers(pre.get("mean"), d) and numbers(pre.get("std"), d)
                 and (pre.get("mean") is None) == (pre.get("std") is None))
    if valid and pre["kind"] == "table":  # one model input per encoded column, and one per data.linear_copy
        linear, columns = pre.get("linear"), pre.get("columns")
        index = [] if linear is None else linear.get("index") if isinstance(linear, dict) else None
        valid = (isinstance(index, list) and isinstance(columns, list) and all(isinstance(c, str) for c in columns)
                 and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(columns) for i in index)
                 and len(columns) + len(index) == sizes["num_features"])
        if valid and linear is not None:
            n = len(index)
            valid = (set(linear) == {"index", "mean", "std", "low", "high"}
                     and all(isinstance(linear[k], list) for k in ("mean", "std"))
                     and numbers(linear["mean"], n) and numbers(linear["std"], n) and all(s != 0 for s in linear["std"])
                     and numbers(linear["low"], n) and numbers(linear["high"], n)
                     and (linear["low"] is None) == (linear["high"] is None)
                     and (linear["low"] is None or all(a <= b for a, b in zip(linear["low"], linear["high"]))))
    if valid and sizes["task"] == "regression":
        m = sizes["num_outputs"]
        valid = numbers(pre.get("target_mean"), m) and numbers(pre.get("target_std"), m)
        names = pre.get("target_names")
        valid = valid and (names is None or (isinstance(names, list) and all(isinstance(n, str) for n in names)))
    if not valid:
        raise CheckpointError(f"{path}: its data description (task, sizes, preprocessing) is malformed; "
                              "corrupt or forged?")
