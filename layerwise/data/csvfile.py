"""Reading a CSV file (optionally .gz) with a header row into typed columns, with NumPy's C parser.

The delimiter (`,` `;` tab `|`) is sniffed from the first lines unless given; a first column with no
header name (or named like a row index) that holds distinct integers is a pandas/R row index and is
left out, with a note in `Table.notes`. In a file not separated by commas, columns whose cells parse
as numbers only with a decimal comma ("1,5"; "1.234,5" with thousands dots), as a European
spreadsheet exports them, make the file's decimal mark `,` (a note; `decimal` forces it either way).

A clean all-numeric file takes one `np.loadtxt` pass into float64. Anything else (text columns,
missing or unparsable cells) is read once more as strings and each column is typed on its own: no
Python loop over cells, one per column (and, for a column that is neither clean numbers nor text, one
over its distinct values); stripping the text cells is the one pass over them.

Text cells are Python strings (object arrays), never a fixed-width NumPy string array: one 100,000-
character cell would make every cell of its column 400,000 bytes wide. The file is opened through
util/openfile.py (a FIFO or device is refused, gzip is recognised by its bytes, not its name), the
memory the text path needs is checked from the file's size first, and a header cell over Python csv's
field limit is one error line.
"""

import csv
import gzip
import os
import re
import typing
import zlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..util import memory
from ..util.memory import check_fits
from ..util.openfile import NotRegularFile, kind_of, open_input
from ..util.text import one_line
from .csvindex import drop_empty_last, drop_index

# Cells that mean "no value" (pandas' defaults, and the '?' of many UCI files).
MISSING = ("", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "?", "-")
MAX_HEADER_CHARS = 1 << 24  # the header line: 16 Mi characters
SMALL = 1 << 24  # a text path needing less memory than this is not checked
TEXT_BYTES_PER_BYTE = 12  # memory of the text path per byte of file: a str object (~50 B) per cell of a few bytes
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
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

    def __init__(self, path, names, columns, lines, delimiter=",", notes=(), decimal="."):
        self.path, self.names, self.columns, self._lines = path, names, columns, lines
        self.delimiter, self.notes = delimiter, list(notes)  # notes: what reading decided on its own
        self.decimal = decimal  # the decimal mark the numbers were read with: "." or ","

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
        return Table(self.path, self.names, cols, lambda: self._lines()[rows], self.delimiter, self.notes,
                     self.decimal)

    def without(self, names):
        """The Table without the columns `names`."""
        keep = [n for n in self.names if n not in names]
        return Table(self.path, keep, {n: self.columns[n] for n in keep}, self._lines, self.delimiter, self.notes,
                     self.decimal)


class Reading(typing.NamedTuple):
    """How a CSV file's text is read: its encoding, and the lines before its header (Excel's `sep=;`)."""

    encoding: str = "utf-8-sig"
    skip: int = 0


def _open(path, how=Reading()):
    """The text of a CSV file from its header on, gunzipped when it is gzip (by its bytes): at most
    what memory can hold as text cells (a gzip bomb is refused as it inflates)."""
    f = open_input(path, text=True, encoding=how.encoding,
                   cap=max(SMALL, memory.available_bytes() // TEXT_BYTES_PER_BYTE))
    for _ in range(how.skip):
        f.readline(MAX_HEADER_CHARS)
    return f


def read_csv(path, where="data.path", text=False, delimiter=None, decimal=None):
    """Read `path` into a Table (with `text`, every column keeps its cells as text too); `delimiter`
    None sniffs it, `decimal` None decides it ("." or ","). Every problem with the file is a DataError
    naming it."""
    path = Path(path)
    kind = kind_of(path)
    if kind == "missing":
        raise DataError(f"{where}: {path} does not exist")
    if kind == "a directory":
        raise DataError(f"{where}: {path} is a directory, not a file")
    if kind is not None:
        what = kind if "long" in kind else f"not a regular file ({kind})"
        raise DataError(f"{where}: cannot open {path}: {what}")
    try:
        try:
            return _read(path, text, delimiter, decimal, Reading("utf-8-sig"), [])
        except UnicodeDecodeError:
            if _has_nul(path):  # text has no NUL bytes; a binary file read as Windows-1252 would be noise
                raise
        # A spreadsheet saved as "CSV" on Windows: Windows-1252 (Latin-1 and more), e.g. "Zürich" as one byte
        return _read(path, text, delimiter, decimal, Reading("cp1252"), ["not UTF-8: read as Windows-1252 (Latin-1) text"])
    except UnicodeDecodeError:
        raise DataError(f"{where}: {path} is neither UTF-8 nor Windows-1252 text; is it really a CSV file?") from None
    except MemoryError:
        raise DataError(f"{where}: {path}: not enough memory to read it") from None
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, NotRegularFile):
            raise DataError(f"{where}: cannot open {path}: {e.strerror}") from None
        raise DataError(f"{where}: cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


def _read(path, text, delimiter, decimal, how, notes):
    delimiter = "\t" if delimiter == "tab" else delimiter
    excel = _excel_sep(path, how)
    if excel is not None:  # "sep=;" on the first line: Excel's way of naming the delimiter
        how = how._replace(skip=1)
        notes.append(f"a 'sep={excel}' first line (for Excel): read as {DELIMITERS.get(excel, repr(excel))}-separated"
                     if delimiter is None else f"a 'sep={excel}' first line (for Excel): skipped")
        delimiter = delimiter or excel
    if delimiter is None:
        delimiter = _sniff(path, how)
        if delimiter != ",":
            notes.append(f"{DELIMITERS[delimiter]}-separated")
    names = _header(path, delimiter, how)
    values = None if text else _numbers(path, len(names), delimiter, how)
    if values is not None:
        lines = _line_numbers(path, how)
        columns = {n: Column(n, True, values[:, j]) for j, n in enumerate(names)}
    else:
        columns = _typed_columns(path, names, delimiter, how)
        lines = _line_numbers(path, how)
        if decimal is None and delimiter != ",":
            decimal = _decimal_mark(columns, notes)
        if decimal == ",":
            columns = {n: _column(n, c.text, ",") for n, c in columns.items()}
    names, columns = drop_index(path, names, columns, notes)
    names, columns = drop_empty_last(path, names, columns, notes)
    return Table(path, names, columns, lines, delimiter, notes, decimal or ".")


def _excel_sep(path, how):
    """The delimiter a first line `sep=;` names (Excel writes and reads it), else None."""
    with _open(path, how) as f:
        first = f.readline(MAX_HEADER_CHARS).rstrip("\r\n")
    return first[4] if len(first) == 5 and first[:4].lower() == "sep=" else None


def _has_nul(path, sample=1 << 16):
    with open_input(path) as f:
        return b"\x00" in f.read(sample)


def _decimal_mark(columns, notes):
    """"," when some column has more cells that parse as numbers with a decimal comma than without
    (its other cells are read the same either way) and no cell is a number with a decimal point (1.5;
    1.500 may group thousands), with a note naming the columns; else "."."""
    gained = []
    for name, c in columns.items():
        unparsed = np.isnan(c.numbers) & ~c.missing
        if unparsed.any() and np.isfinite(_column(name, c.text[unparsed], ",").numbers).any():
            gained.append(name)
    if not gained or any(_decimal_points(c) for c in columns.values()):
        return "."
    shown = ", ".join(map(repr, gained[:3])) + (f" and {len(gained) - 3} more" if len(gained) > 3 else "")
    notes.append(f"decimal commas (1,5) in {shown}: numbers read with ',' as the decimal mark (data.decimal: "
                 f"'.' to read them as text)")
    return ","


def _decimal_points(column, sample=1000):
    """Whether some cell (of the first `sample` with a fraction) is written with a decimal point, not as
    thousands grouped by dots."""
    fraction = np.flatnonzero(np.isfinite(column.numbers) & (column.numbers != np.round(column.numbers)))
    return any(not THOUSANDS.fullmatch(column.text[i].lstrip("+-")) for i in fraction[:sample])


def _sniff(path, how=Reading()):
    """The delimiter of the first lines: of `,` `;` tab `|`, the one that splits the header into the
    most fields and every following line into as many (quotes respected); `,` when none splits it."""
    with _open(path, how) as f:
        lines = [f.readline(MAX_HEADER_CHARS) for _ in range(SNIFF_LINES)]  # bounded: a huge line is cut
        lines = [line for line in lines if line.strip()]
    best, widest = ",", 1
    for d in DELIMITERS:
        try:
            counts = [len(row) for row in csv.reader(lines, delimiter=d)]
        except csv.Error:  # a cell over the csv module's field limit: the header reports it
            continue
        if counts and counts[0] > widest and all(c == counts[0] for c in counts[1:-1]):
            best, widest = d, counts[0]
    return best


def _csv_problem(e):
    """What a csv.Error says, in words: 'a cell longer than 131,072 characters'."""
    return f"a cell longer than {csv.field_size_limit():,} characters" if "field limit" in str(e) else one_line(e, 100)


def _header(path, delimiter, how=Reading()):
    with _open(path, how) as f:
        first = f.readline(MAX_HEADER_CHARS + 1)
    if len(first) > MAX_HEADER_CHARS:
        raise DataError(f"{path}, line 1: the header is longer than {MAX_HEADER_CHARS:,} characters; "
                        "is it really a CSV file?")
    if not first.strip():
        raise DataError(f"{path} is empty: expected a header row of column names, then one row per example")
    try:
        names = [_unquote(n.strip()) for n in next(csv.reader([first], delimiter=delimiter))]
    except csv.Error as e:  # a cell over csv.field_size_limit() (128 Ki characters), ...
        raise DataError(f"{path}, line 1: the header row has {_csv_problem(e)}; column names are short "
                        "(is it really a CSV file?)") from None
    if any(n == "" for n in names[1:-1]):  # the first may be a row index, the last a trailing delimiter
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


def _numbers(path, width, delimiter, how=Reading()):
    """The fast path: every cell a finite number -> float64 (N, width); else None."""
    with _open(path, how) as f:
        f.readline()
        try:
            values = _loadtxt(f, np.float64, delimiter)
        except ValueError:
            return None
    if values.shape[0] == 0:
        raise DataError(f"{path}: no rows (a header row but no data rows)")
    if values.shape[1] != width or not np.isfinite(values).all():
        return None
    return values


def _typed_columns(path, names, delimiter, how=Reading()):
    need = os.stat(path).st_size * TEXT_BYTES_PER_BYTE * (4 if _gzipped(path) else 1)
    if need > SMALL:
        check_fits(need, f"{path}: reading its text cells", "give a smaller file", DataError)
    with _open(path, how) as f:
        f.readline()
        try:
            cells = _loadtxt(f, object, delimiter)  # Python strings: no cell widens the others
        except ValueError as e:
            found = re.search(r"changed from (\d+) to (\d+) at row (\d+)", str(e))
            if not found:
                raise DataError(f"{path}: cannot parse it as CSV ({one_line(e)})") from None
            row = int(found.group(3)) - 1
            raise DataError(
                f"{path}, line {int(_line_numbers(path)()[row])}: {found.group(2)} cells where the header has "
                f"{len(names)} columns"
            ) from None
    if cells.shape[0] == 0 or cells.size == 0:
        raise DataError(f"{path}: no rows (a header row but no data rows)")
    if cells.shape[1] != len(names):
        raise DataError(f"{path}, line {int(_line_numbers(path)()[0])}: {cells.shape[1]} cells where the header has {len(names)} columns")
    return {name: _column(name, _strip(cells[:, j])) for j, name in enumerate(names)}


def _strip(cells):
    """The cells of an object array of str, stripped (an object array again)."""
    out = np.empty(len(cells), dtype=object)
    out[:] = [c.strip() for c in cells]
    return out


def _gzipped(path):
    with open_input(path) as f:
        return isinstance(f, gzip.GzipFile)


def _column(name, text, decimal="."):
    """Type one column of stripped strings: numeric if most of its present cells are numbers (written
    with `decimal` as the decimal mark)."""
    missing = np.isin(text, MISSING)
    present = text[~missing]
    numbers = np.full(len(text), np.nan)
    try:
        if decimal != ".":
            raise ValueError  # the distinct values, each read with a decimal comma
        numbers[~missing] = present.astype(np.float64)
    except ValueError:  # some cells are not numbers: parse each distinct value once
        distinct, inverse = np.unique(present, return_inverse=True)
        parse = _float if decimal == "." else _comma_float
        numbers[~missing] = np.array([parse(v) for v in distinct], dtype=np.float64)[inverse]
    numbers[~np.isfinite(numbers)] = np.nan
    numeric = np.isfinite(numbers).sum() * 2 > len(present)
    return Column(name, bool(numeric), numbers, text)


def _float(s):
    try:
        return float(s)
    except ValueError:
        return np.nan


THOUSANDS = re.compile(r"[+-]?\d{1,3}(\.\d{3})+(,\d*)?")  # 1.234 or 1.234.567,89: dots group thousands


def _comma_float(s):
    """A number written with a decimal comma: "1,5" -> 1.5, "1.234,5" -> 1234.5, "-2" -> -2.0."""
    if THOUSANDS.fullmatch(s):
        s = s.replace(".", "")
    return _float(s.replace(",", "."))


def _line_numbers(path, how=Reading()):
    """A callable giving, for each data row, its 1-based file line (np.loadtxt skips blank lines).

    Computed on first use only: messages need it, a clean load does not."""
    cache = []

    def lines():
        if not cache:
            with _open(path, how) as f:
                blank = np.array([not line.strip() for line in f], dtype=bool)
            cache.append(np.flatnonzero(~blank[1:]) + 2 + how.skip)
        return cache[0]

    return lines
