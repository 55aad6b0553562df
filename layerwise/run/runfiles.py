"""Reading a run directory's text files back (metrics.csv, test.json, a sweep's results.csv and
sweep.yaml) as untrusted input: a user may have edited, truncated or replaced any of them.

One reader for all of them, used by compare, plot, the sweep report and plot SWEEP: the file must be a
regular file (opened by util/openfile.py open_regular, so a FIFO never blocks) of at most
MAX_BYTES, UTF-8 text; JSON is nested at most MAX_DEPTH levels with integers of at most
MAX_INT_DIGITS digits; and the values are checked against what layerwise writes (metrics.csv: the
same columns in every row, every cell a number, epochs 1, 2, ...; test.json: an object whose
metrics are numbers or null and whose confusion matrix is a square matrix of counts). Every problem
is one CheckpointError naming the file (a StorageError when the disk fails).
"""

import csv
import io
import json
import os

from ..errors import CheckpointError, StorageError
from ..util.fileio import describe_os_error
from ..util.openfile import NotRegularFile, open_regular

MAX_BYTES = 64 << 20  # 64 MiB: metrics.csv of ~200,000 epochs, a confusion matrix of ~2,000 classes
MAX_DEPTH = 32  # test.json is 3 deep (the confusion matrix)
MAX_INT_DIGITS = 100
MAX_COUNT = 1 << 62  # examples in one cell of a confusion matrix


def read_text(path, what="run file"):
    """The text of `path`: a regular file (util/openfile.py open_regular: a FIFO never blocks) of at most
    MAX_BYTES, UTF-8. FileNotFoundError propagates (callers say what a missing file means); everything
    else is one line naming the file."""
    too_large = CheckpointError(f"{path}: larger than {MAX_BYTES:,} bytes; not a layerwise {what} (edited?)")
    try:
        with open_regular(path) as f:
            if os.fstat(f.fileno()).st_size > MAX_BYTES:  # refused without reading it (a sparse file of gigabytes)
                raise too_large
            data = f.read(MAX_BYTES + 1)  # and a file growing meanwhile is read no further than this
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory; a layerwise {what} is a file") from None
    except NotRegularFile as e:
        raise CheckpointError(f"{path}: {e.strerror}; a layerwise {what} is a regular file") from None
    except OSError as e:
        reason = describe_os_error(e)
        raise StorageError(f"cannot read {path}: {reason}", reason) from None
    if len(data) > MAX_BYTES:
        raise too_large
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path}: not UTF-8 text (byte {e.start}); not a layerwise {what} (edited?)") from None


def parse_json(text, path):
    """JSON text -> plain data, bounded: nesting, integer size; non-finite tokens (NaN) refused."""
    def bounded_int(digits):
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            raise ValueError(f"an integer of {len(digits)} digits")
        return int(digits)

    def no_constant(name):
        raise ValueError(f"{name} is not JSON")

    try:
        data = json.loads(text, parse_int=bounded_int, parse_constant=no_constant)
    except RecursionError:  # json's scanner counts its recursion: 100,000 levels end here, not in a crash
        raise CheckpointError(f"{path}: nested more than {MAX_DEPTH} levels deep; not a layerwise run file") from None
    except ValueError as e:
        raise CheckpointError(f"{path}: not valid JSON ({str(e)[:100]})") from None
    stack = [(data, 1)]
    while stack:  # without recursion
        node, depth = stack.pop()
        if isinstance(node, (list, dict)):
            if depth > MAX_DEPTH:
                raise CheckpointError(f"{path}: nested more than {MAX_DEPTH} levels deep; not a layerwise run file")
            stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict) else node))
    return data


def read_test_json(path):
    """test.json as a dict: {"checkpoint": str, "epoch": int, "val_<metric>": number or None,
    "test_<metric>": number or None, "test_confusion": K x K counts and "test_per_class": lists of
    precision, recall and F1 (classification)}."""
    data = parse_json(read_text(path, "test.json"), path)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object of test metrics, found {_json_kind(data)}")
    epoch = data.get("epoch")
    if not (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1):
        raise CheckpointError(f"{path}: epoch should be a positive integer, found {_short(epoch)}")
    if not any(k.startswith("val_") for k in data):
        raise CheckpointError(f"{path}: no val_<metric> entry (the best epoch's validation metric)")
    for key, value in data.items():
        if key == "test_confusion":
            _check_confusion(value, path)
        elif key == "test_per_class":  # {"precision": [...], "recall": [...], "f1": [...]}, one per class
            ok = (isinstance(value, dict) and set(value) == {"precision", "recall", "f1"}
                  and all(isinstance(v, list) and all(_is_number_or_null(x) for x in v) for v in value.values()))
            if not ok:
                raise CheckpointError(f"{path}: test_per_class should hold precision, recall and f1 lists of numbers")
        elif key.startswith(("val_", "test_")) and not _is_number_or_null(value):
            raise CheckpointError(f"{path}: {_short(key)} should be a number (or null), found {_short(value)}")
    return data


def _check_confusion(value, path):
    size = len(value) if isinstance(value, list) else 0
    ok = size > 0 and all(
        isinstance(row, list) and len(row) == size
        and all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_COUNT for n in row)
        for row in value
    )
    if not ok:
        raise CheckpointError(f"{path}: test_confusion should be a square matrix of counts (non-negative integers)")


def _is_number_or_null(value):
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def read_metrics_csv(path, required=("epoch",)):
    """metrics.csv as a list of {column: float} rows, one per epoch (epochs 1, 2, ...)."""
    text = read_text(path, "metrics.csv")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise CheckpointError(f"{path}: not a layerwise metrics.csv ({str(e)[:100]})") from None
    if not rows:
        raise CheckpointError(f"{path}: empty; not a layerwise metrics.csv (a header line, then a row per epoch)")
    header = rows[0]
    missing = [c for c in required if c not in header]
    if missing or len(set(header)) != len(header):
        raise CheckpointError(f"{path}: not a layerwise metrics.csv (expected the columns {', '.join(required)}, "
                              f"..., each once; found {_short(', '.join(header))})")
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise CheckpointError(f"{path}: line {line} has {len(row)} values for {len(header)} columns")
        values = {}
        for column, cell in zip(header, row):
            try:
                values[column] = float(cell)
            except ValueError:
                raise CheckpointError(f"{path}: line {line}, column {_short(column)}: {_short(cell)} is not a number") from None
        if values.get("epoch") != len(out) + 1:
            raise CheckpointError(f"{path}: line {line}: epoch {_short(row[header.index('epoch')])}, expected {len(out) + 1}")
        out.append(values)
    return out


def _json_kind(value):
    return {list: "a list", str: "a string", type(None): "null", bool: "true or false"}.get(type(value), "a number")


def _short(value, limit=60):
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("ascii", "backslashreplace").decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."

