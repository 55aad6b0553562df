"""Read what `predict` and `eval --data` are given into model inputs, with the run's preprocessing.

An input is a CSV (models trained on a table; via layerwise.data.tabular), an .npy or .npz array,
an IDX file (images; a 1-D IDX right after it gives their labels), or an image file (PNG, JPEG, ...)
for image models (MNIST-style preprocessing in data/images.py). Each becomes an `Inputs`: model
inputs, their targets when the file has them, a name per row and, for images, the uint8 pictures.
"""

import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..util.memory import check_fits
from ..util.openfile import kind_of, open_input, suffixes
from .preprocess import linear_copies, model_inputs

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
ARRAY_SUFFIXES = (".npy", ".npz")
PER_ROW_BYTES = 1024  # what predict keeps per input besides its numbers: a name, a prediction record


@dataclass
class Inputs:
    x: np.ndarray  # float32 (N, D) model inputs
    y: np.ndarray  # (N,) int64 class indices or (N, M) float32 targets, or None
    names: list  # one display name per row
    images: np.ndarray = None  # uint8 (N, H, W) pictures of image inputs, for display
    idx: bool = False  # read from an IDX images file (a labels file may follow)
    has_target: np.ndarray = None  # (N,) bool when only some rows have targets (see merged)


def is_csv(path):
    return suffixes(path)[0] == ".csv"


def read_inputs(paths, pre, task):
    """One Inputs per input (an IDX label file joins the IDX images before it). Every input passes
    here: a path that is not a regular file is refused before it is opened (a FIFO would hang), and
    an input without rows is refused, naming the file."""
    result = []
    for path in paths:
        path = Path(path)
        kind = kind_of(path)
        if kind == "missing":
            raise DataError(f"{path}: no such file")
        if kind == "a directory":
            raise DataError(f"{path} is a directory; give the input files in it")
        if kind is not None:
            raise DataError(f"{path}: {kind if 'long' in kind else f'not a regular file ({kind})'}; "
                            "give an input file")
        try:
            part = _read_one(path, pre, task, result)
        except MemoryError:  # whatever allocation the checks did not foresee: one line too
            raise DataError(f"{path}: not enough memory to read it; give fewer inputs at a time") from None
        if part is not None:
            if len(part.x) == 0:
                raise DataError(f"{path}: no rows; give at least one input")
            result.append(part)
    return result


def _read_one(path, pre, task, result):
    suffix, gz = suffixes(path)
    if suffix == ".csv":
        return _csv(path, pre, task)
    if suffix in IMAGE_SUFFIXES and not gz:
        return _image_file(path, pre)
    if suffix in ARRAY_SUFFIXES:
        return _array_file(path, pre, task)
    if _is_idx(path):
        return _idx_file(path, pre, task, result)
    raise DataError(f"{path}: unknown kind of input; expected a .csv, .npy or .npz file, an IDX file, "
                    f"or an image ({', '.join(IMAGE_SUFFIXES[:3])}, ...)")


def check_size(path, rows, item_bytes, pre):
    """Refuse an input whose `rows` (of `item_bytes` each, as stored) would not fit in memory with the
    float32 model inputs made from them and what predict keeps per row (its name and prediction)."""
    features = 1
    for d in (pre.get("image_shape") or pre.get("shape") or [len(pre.get("columns") or [0])]):
        features *= int(d)
    features += linear_copies(pre)
    need = rows * (item_bytes + 4 * features + PER_ROW_BYTES)
    check_fits(need, f"{path}: {rows:,} inputs", "give fewer inputs at a time (split the file)", DataError)


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
    lines = []
    x, y = table_inputs(pre, path, lines=lines)
    return Inputs(x, y, [f"{path.name}:{n}" for n in lines])  # the CSV line of each row


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
    """An .npy (the inputs) or .npz (x and optionally y), by the hardened reader (util/arrayfile.py):
    headers first, their memory checked, never unpickled."""
    from ..util.arrayfile import read_arrays

    chosen = {}

    def select(headers):
        if None in headers:
            xkey = ykey = None
        else:
            keys = list(headers)
            if not keys:
                raise DataError(f"{path}: no rows (the .npz holds no arrays); give at least one input")
            xkey = next((k for k in ("x", "x_test", "X") if k in keys), keys[0] if len(keys) == 1 else None)
            if xkey is None:
                raise DataError(f"{path}: expected an array named x (and optionally y) in the .npz; "
                                f"it holds {', '.join(k[:40] for k in keys[:10])}")
            ykey = {"x": "y", "x_test": "y_test", "X": "y"}.get(xkey)
        shape, dtype = headers[xkey]
        rows = shape[0] if shape else 1
        if rows == 0:
            raise DataError(f"{path}: no rows (an array of shape {tuple(shape)[:8]}); give at least one input")
        per_row = (math.prod(shape[1:]) if shape else 1) * dtype.itemsize
        if ykey in headers:
            yshape, ydtype = headers[ykey]
            per_row += (math.prod(yshape[1:]) * ydtype.itemsize if yshape else 0) + 8
        check_size(path, rows, per_row, pre)
        chosen.update(x=xkey, y=ykey if ykey in headers else None)
        return [xkey] + ([ykey] if ykey in headers else [])

    arrays, archive = read_arrays(path, select)
    y = None
    if archive:
        raw, where = arrays[chosen["x"]], f"{path}: {chosen['x']}"
        if chosen["y"] is not None:
            y = targets(arrays[chosen["y"]], pre, task, f"{path}: {chosen['y']}")
    else:
        raw, where = arrays[None], str(path)
    x = model_inputs(pre, raw, where)
    if y is not None and len(y) != len(x):
        raise DataError(f"{path}: {len(x)} inputs but {len(y)} targets; give one target per input")
    images = _display(pre, raw, len(x))
    return Inputs(x, y, _row_names(path, len(x)), images)


def _idx_file(path, pre, task, result):
    """The Inputs of an IDX images file, or None for a labels file (they join the images before it)."""
    from .idx import read_idx

    def check(shape):
        if len(shape) > 1:
            check_size(path, shape[0], math.prod(shape[1:]), pre)

    array = read_idx(path, check)
    if array.ndim == 1:  # labels: they belong to the IDX images just before
        previous = result[-1] if result else None
        if previous is None or not previous.idx or previous.y is not None:
            raise DataError(f"{path}: a 1-D IDX file holds labels; give it right after its images file")
        if len(array) != len(previous.x):
            raise DataError(f"{path} has {len(array)} labels for {len(previous.x)} images; use matching files")
        previous.y = targets(array, pre, task, str(path))
        return None
    x = model_inputs(pre, array, str(path))
    return Inputs(x, None, _row_names(path, len(x)), _display(pre, array, len(x)), idx=True)


def labels_beside(path):
    """The IDX labels file next to an IDX images file (t10k-images-idx3-ubyte.gz ->
    t10k-labels-idx1-ubyte.gz), or None."""
    path = Path(path)
    if not _is_idx(path):
        return None
    name = path.name.replace("images", "labels").replace("idx3", "idx1").replace("imgs", "labels")
    for candidate in (path.with_name(name), path.with_name(name.removesuffix(".gz")), path.with_name(name + ".gz")):
        if candidate != path and kind_of(candidate) is None:
            return candidate
    return None


def _is_idx(path):
    """Whether the file starts (after gzip, if it is gzipped) with an IDX header of uint8 values."""
    try:
        with open_input(path) as f:
            head = f.read(4)
    except (OSError, EOFError, zlib.error):
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
