"""Read what `predict` and `eval --data` are given into model inputs, with the run's preprocessing.

An input is a CSV (models trained on a table; via layerwise.data.tabular), an .npy or .npz array,
an IDX file (images; a 1-D IDX right after it gives their labels), or an image file (PNG, JPEG, ...)
for image models (MNIST-style preprocessing in data/images.py). Each becomes an `Inputs`: model
inputs, their targets when the file has them, a name per row and, for images, the uint8 pictures.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .preprocess import model_inputs

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
ARRAY_SUFFIXES = (".npy", ".npz")


@dataclass
class Inputs:
    x: np.ndarray  # float32 (N, D) model inputs
    y: np.ndarray  # (N,) int64 class indices or (N, M) float32 targets, or None
    names: list  # one display name per row
    images: np.ndarray = None  # uint8 (N, H, W) pictures of image inputs, for display
    idx: bool = False  # read from an IDX images file (a labels file may follow)
    has_target: np.ndarray = None  # (N,) bool when only some rows have targets (see merged)


def is_csv(path):
    name = str(path).lower()
    return name.endswith(".csv") or name.endswith(".csv.gz")


def read_inputs(paths, pre, task):
    """One Inputs per input (an IDX label file joins the IDX images before it)."""
    result = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            raise DataError(f"{path} is a directory; give the input files in it")
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        suffix = path.suffix.lower()
        if is_csv(path):
            result.append(_csv(path, pre, task))
        elif suffix in IMAGE_SUFFIXES:
            result.append(_image_file(path, pre))
        elif suffix in ARRAY_SUFFIXES:
            result.append(_array_file(path, pre, task))
        elif _is_idx(path):
            _idx_file(path, pre, task, result)
        else:
            raise DataError(f"{path}: unknown kind of input; expected a .csv, .npy or .npz file, an IDX file, "
                            f"or an image ({', '.join(IMAGE_SUFFIXES[:3])}, ...)")
    return result


def merged(parts):
    """All inputs as one Inputs. When only some parts have targets, `has_target` marks their rows
    (the others get placeholder targets)."""
    y, has_target = None, None
    with_y = [p for p in parts if p.y is not None]
    if with_y:
        fill = [p.y if p.y is not None else np.zeros((len(p.x),) + with_y[0].y.shape[1:], with_y[0].y.dtype)
                for p in parts]
        y = np.concatenate(fill)
        has_target = np.concatenate([np.full(len(p.x), p.y is not None) for p in parts])
    images = None
    if parts and all(p.images is not None for p in parts):
        images = np.concatenate([p.images for p in parts])
    return Inputs(np.concatenate([p.x for p in parts]), y, [n for p in parts for n in p.names], images,
                  has_target=has_target)


def targets(values, pre, task, where):
    """Targets from a file -> int64 class indices (from integers or class names) or float32 (N, M)."""
    values = np.asarray(values)
    if task == "classification":
        names = pre["class_names"]
        if values.dtype.kind in "US":
            index = {name: i for i, name in enumerate(names)}
            unknown = sorted({str(v) for v in values.ravel() if str(v) not in index})
            if unknown:
                raise DataError(f"{where}: target {unknown[0]!r} is not one of the model's classes "
                                f"({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})")
            return np.array([index[str(v)] for v in values.ravel()], dtype=np.int64)
        if values.ndim != 1 or values.dtype.kind not in "iuf" or (values.size and (
                not np.all(np.isfinite(values)) or np.any(values != np.round(values))
                or values.min() < 0 or values.max() >= len(names))):
            raise DataError(f"{where}: expected class labels 0-{len(names) - 1} (or class names), one per input, "
                            f"received {values.dtype} values of shape {values.shape}")
        return values.astype(np.int64)
    if values.dtype.kind not in "iuf":
        raise DataError(f"{where}: expected numeric targets, received dtype {values.dtype}")
    return values.reshape(len(values), -1).astype(np.float32)


def _csv(path, pre, task):
    if pre["kind"] != "table":
        raise DataError(f"{path}: this model was trained on {_trained_on(pre)}; a CSV input needs a model "
                        "trained on a CSV (data.dataset: csv)")
    try:
        from .tabular import table_inputs
    except ImportError:
        raise DataError(f"{path}: reading CSV inputs needs layerwise.data.tabular, which this layerwise "
                        "does not have") from None
    x, y = table_inputs(pre, path)
    return Inputs(x, y, [f"{path.name}:{i + 2}" for i in range(len(x))])  # the CSV line of each row


def _image_file(path, pre):
    if pre["kind"] != "image":
        raise DataError(f"{path}: this model was trained on {_trained_on(pre)}, not images; give it a "
                        f"{'CSV' if pre['kind'] == 'table' else '.npy or .npz'} file")
    from .preprocess import image_files_style

    style = image_files_style(pre)  # the dataset's: digit centring, or a plain resize
    if style == "digit" and list(pre["image_shape"]) != [28, 28]:
        raise DataError(f"{path}: image files are read as 28x28 digits, but this model takes "
                        f"{pre['image_shape'][0]}x{pre['image_shape'][1]} images; give it an .npy or IDX file")
    try:
        from .images import load_image_file
    except ImportError:
        raise DataError(f"{path}: reading image files needs layerwise.data.images, which this layerwise "
                        "does not have; give the pixels as an .npy file") from None
    image = load_image_file(path, style, tuple(pre["image_shape"]))
    return Inputs(model_inputs(pre, image[None], str(path)), None, [path.name], image[None])


def _array_file(path, pre, task):
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as e:
        why = "it holds pickled objects, which are never loaded" if "pickle" in str(e) else str(e)
        raise DataError(f"{path}: cannot read it as a NumPy array file ({why})") from None
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read it as a NumPy array file ({e}); corrupt or truncated?") from None
    y = None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = loaded.files
            xkey = next((k for k in ("x", "x_test", "X") if k in keys), keys[0] if len(keys) == 1 else None)
            if xkey is None:
                raise DataError(f"{path}: expected an array named x (and optionally y) in the .npz; "
                                f"it holds {', '.join(keys) or 'nothing'}")
            ykey = {"x": "y", "x_test": "y_test", "X": "y"}.get(xkey)
            raw = loaded[xkey]
            if ykey in keys:
                y = targets(loaded[ykey], pre, task, f"{path}: {ykey}")
        where = f"{path}: {xkey}"
    else:
        raw, where = loaded, str(path)
    x = model_inputs(pre, raw, where)
    if y is not None and len(y) != len(x):
        raise DataError(f"{path}: {len(x)} inputs but {len(y)} targets; give one target per input")
    images = _display(pre, raw, len(x))
    return Inputs(x, y, _row_names(path, len(x)), images)


def _idx_file(path, pre, task, result):
    from .idx import read_idx

    array = read_idx(path)
    if array.ndim == 1:  # labels: they belong to the IDX images just before
        previous = result[-1] if result else None
        if previous is None or not previous.idx or previous.y is not None:
            raise DataError(f"{path}: a 1-D IDX file holds labels; give it right after its images file")
        if len(array) != len(previous.x):
            raise DataError(f"{path} has {len(array)} labels for {len(previous.x)} images; use matching files")
        previous.y = targets(array, pre, task, str(path))
        return
    x = model_inputs(pre, array, str(path))
    result.append(Inputs(x, None, _row_names(path, len(x)), _display(pre, array, len(x)), idx=True))


def labels_beside(path):
    """The IDX labels file next to an IDX images file (t10k-images-idx3-ubyte.gz ->
    t10k-labels-idx1-ubyte.gz), or None."""
    path = Path(path)
    if not _is_idx(path):
        return None
    name = path.name.replace("images", "labels").replace("idx3", "idx1").replace("imgs", "labels")
    for candidate in (path.with_name(name), path.with_name(name.removesuffix(".gz")), path.with_name(name + ".gz")):
        if candidate != path and candidate.is_file():
            return candidate
    return None


def _is_idx(path):
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"\x1f\x8b":
        import gzip

        try:
            with gzip.open(path, "rb") as f:
                head = f.read(4)
        except (OSError, EOFError):
            return False
    return len(head) == 4 and head[0] == 0 and head[1] == 0 and head[2] == 0x08 and 1 <= head[3] <= 4


def _display(pre, raw, n):
    """uint8 (N, H, W) pictures of image inputs given as pixel arrays, or None."""
    if pre["kind"] != "image":
        return None
    h, w = pre["image_shape"]
    raw = np.asarray(raw).reshape(n, h, w)
    if raw.dtype != np.uint8:
        raw = np.clip(np.nan_to_num(raw.astype(np.float64)), 0, 255).astype(np.uint8)
    return raw


def _row_names(path, n):
    return [path.name] if n == 1 else [f"{path.name}[{i}]" for i in range(n)]


def _trained_on(pre):
    return {"image": "images", "table": "a table (CSV)", "array": "arrays of numbers"}.get(pre["kind"], pre["kind"])
