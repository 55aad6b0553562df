"""Reading a CSV file (optionally .gz) with a header row into typed columns, with NumPy's C parser.

The delimiter (`,` `;` tab `|`) is sniffed from the first lines unless given; a first column with no
header name (or named like a row index) that holds distinct integers is a pandas/R row index and is
left out, with a note in `Table.notes`.

A clean all-numeric file takes one `np.loadtxt` pass into float64. Anything else (text columns,
missing or unparsable cells) is read once more as strings and each column is typed on its own: no
Python loop over cells, one per column (and, for a column that is neither clean numbers nor text, one
over its distinct values).
"""

import csv
import gzip
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

# Cells that mean "no value" (pandas' defaults, and the '?' of many UCI files).
MISSING = ("", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "?", "-")
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# First-column names pandas (df.to_csv: ""; read back: "Unnamed: 0") and R (write.csv: "", Rdatasets:
# "rownames") give a row index.
INDEX_NAMES = ("", "unnamed: 0", "rownames", "index")
SNIFF_LINES = 50


@dataclass
class Column:
    """One column: its cells as numbers (float64, NaN where a cell is missing or not a number) and,
    unless the file was all numbers, as stripped text. `numeric` says what most of its cells are."""

    name: str
    numeric: bool
    numbers: np.ndarray  # (N,) float64
    text: np.ndarray = None  # (N,) str, or None on the all-numbers fast path

    @property
    def missing(self):
        """Cells that hold no value (empty, NA, ...)."""
        return np.zeros(len(self.numbers), bool) if self.text is None else np.isin(self.text, MISSING)

    def cell(self, row):
        return str(self.text[row]) if self.text is not None else repr(float(self.numbers[row]))


class Table:
    """The columns of a CSV file by name, and the file line of each data row (for messages)."""

    def __init__(self, path, names, columns, lines, delimiter=",", notes=()):
        self.path, self.names, self.columns, self._lines = path, names, columns, lines
        self.delimiter, self.notes = delimiter, list(notes)  # notes: what reading decided on its own

    def __len__(self):
        return len(next(iter(self.columns.values())).numbers)

    def __getitem__(self, name):
        return self.columns[name]

    def line(self, row):
        """The 1-based line of the file that holds data row `row`."""
        return int(self._lines()[row])

    def take(self, rows):
        """A Table of only these rows (an index array or a boolean mask)."""
        cols = {n: Column(c.name, c.numeric, c.numbers[rows], None if c.text is None else c.text[rows])
                for n, c in self.columns.items()}
        return Table(self.path, self.names, cols, lambda: self._lines()[rows], self.delimiter, self.notes)

    def without(self, names):
        """The Table without the columns `names`."""
        keep = [n for n in self.names if n not in names]
        return Table(self.path, keep, {n: self.columns[n] for n in keep}, self._lines, self.delimiter, self.notes)


def _open(path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def read_csv(path, where="data.path", text=False, delimiter=None):
    """Read `path` into a Table (with `text`, every column keeps its cells as text too); `delimiter`
    None sniffs it. Every problem with the file is a DataError naming it."""
    path = Path(path)
    try:
        exists, is_file = path.exists(), path.is_file()
    except OSError as e:  # e.g. a name too long
        raise DataError(f"{where}: cannot open {path}: {e.strerror}") from None
    if not exists:
        raise DataError(f"{where}: {path} does not exist")
    if not is_file:
        raise DataError(f"{where}: {path} is not a file")
    try:
        notes = []
        delimiter = "\t" if delimiter == "tab" else delimiter
        if delimiter is None:
            delimiter = _sniff(path)
            if delimiter != ",":
                notes.append(f"{DELIMITERS[delimiter]}-separated")
        names = _header(path, delimiter)
        values = None if text else _numbers(path, len(names), delimiter)
        if values is not None:
            lines = _line_numbers(path)
            columns = {n: Column(n, True, values[:, j]) for j, n in enumerate(names)}
        else:
            columns = _typed_columns(path, names, delimiter)
            lines = _line_numbers(path)
        names, columns = _drop_index(path, names, columns, notes)
    except UnicodeDecodeError:
        raise DataError(f"{where}: {path} is not UTF-8 text; is it really a CSV file?") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{where}: cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    return Table(path, names, columns, lines, delimiter, notes)


def _sniff(path):
    """The delimiter of the first lines: of `,` `;` tab `|`, the one that splits the header into the
    most fields and every following line into as many (quotes respected); `,` when none splits it."""
    with _open(path) as f:
        lines = [line for _, line in zip(range(SNIFF_LINES), f) if line.strip()]
    best, widest = ",", 1
    for d in DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=d)]
        if counts and counts[0] > widest and all(c == counts[0] for c in counts[1:-1]):
            best, widest = d, counts[0]
    return best


def _drop_index(path, names, columns, notes):
    """Leave out a first column that is a row index: unnamed (or named like one) and distinct integers."""
    first = names[0] if names else None
    if first is None or first.strip("'\"").lower() not in INDEX_NAMES:
        return names, columns
    v = columns[first].numbers
    index = (len(names) > 1 and np.isfinite(v).all() and (v == np.round(v)).all()
             and len(np.unique(v)) == len(v))
    if not index:
        if first == "":
            raise DataError(f"{path}, line 1: column 1 of the header has no name")
        return names, columns
    notes.append(f"column 1 ({first!r}) is a row index (distinct integers): left out")
    return names[1:], {n: c for n, c in columns.items() if n != first}


def _header(path, delimiter):
    with _open(path) as f:
        first = f.readline()
    if not first.strip():
        raise DataError(f"{path} is empty: expected a header row of column names, then one row per example")
    names = [_unquote(n.strip()) for n in next(csv.reader([first], delimiter=delimiter))]
    if any(n == "" for n in names[1:]):
        raise DataError(f"{path}, line 1: column {names.index('', 1) + 1} of the header has no name")
    seen = set()
    for n in names:
        if n in seen:
            raise DataError(f"{path}, line 1: the header names column {n!r} twice; column names must be unique")
        seen.add(n)
    return names


def _unquote(name):
    """A header name without the single quotes some files put around it ('age' -> age)."""
    return name[1:-1].strip() if len(name) >= 2 and name[0] == name[-1] == "'" else name


def _loadtxt(f, dtype, delimiter):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "input contained no data": an empty body is reported below
        return np.loadtxt(f, delimiter=delimiter, dtype=dtype, comments=None, quotechar='"', ndmin=2)


def _numbers(path, width, delimiter):
    """The fast path: every cell a finite number -> float64 (N, width); else None."""
    with _open(path) as f:
        f.readline()
        try:
            values = _loadtxt(f, np.float64, delimiter)
        except ValueError:
            return None
    if values.shape[0] == 0:
        raise DataError(f"{path} has a header row but no data rows")
    if values.shape[1] != width or not np.isfinite(values).all():
        return None
    return values


def _typed_columns(path, names, delimiter):
    with _open(path) as f:
        f.readline()
        try:
            cells = _loadtxt(f, str, delimiter)
        except ValueError as e:
            found = re.search(r"changed from (\d+) to (\d+) at row (\d+)", str(e))
            if not found:
                raise DataError(f"{path}: cannot parse it as CSV ({e})") from None
            row = int(found.group(3)) - 1
            raise DataError(
                f"{path}, line {int(_line_numbers(path)()[row])}: {found.group(2)} cells where the header has "
                f"{len(names)} columns"
            ) from None
    if cells.shape[0] == 0 or cells.size == 0:
        raise DataError(f"{path} has a header row but no data rows")
    if cells.shape[1] != len(names):
        raise DataError(f"{path}, line {int(_line_numbers(path)()[0])}: {cells.shape[1]} cells where the header has {len(names)} columns")
    return {name: _column(name, np.char.strip(cells[:, j])) for j, name in enumerate(names)}


def _column(name, text):
    """Type one column of stripped strings: numeric if most of its present cells are numbers."""
    missing = np.isin(text, MISSING)
    present = text[~missing]
    numbers = np.full(len(text), np.nan)
    try:
        numbers[~missing] = present.astype(np.float64)
    except ValueError:  # some cells are not numbers: parse each distinct value once
        distinct, inverse = np.unique(present, return_inverse=True)
        numbers[~missing] = np.array([_float(v) for v in distinct])[inverse]
    numbers[~np.isfinite(numbers)] = np.nan
    numeric = np.isfinite(numbers).sum() * 2 > len(present)
    return Column(name, bool(numeric), numbers, text)


def _float(s):
    try:
        return float(s)
    except ValueError:
        return np.nan


def _line_numbers(path):
    """A callable giving, for each data row, its 1-based file line (np.loadtxt skips blank lines).

    Computed on first use only: messages need it, a clean load does not."""
    cache = []

    def lines():
        if not cache:
            with _open(path) as f:
                blank = np.array([not line.strip() for line in f], dtype=bool)
            cache.append(np.flatnonzero(~blank[1:]) + 2)
        return cache[0]

    return lines
