"""Checkpoints: named arrays plus JSON metadata in one .npz, written atomically, read without pickle.

Reading trusts nothing in the file. The zip archive is opened by hand, not through np.load: each
member must be a plain .npy, stored or deflated (no other compression, no encryption), and its .npy
header (read without reading the data) must declare the dtype and shape the caller expects, e.g. a
model's state_dict(), and a member size that matches them exactly. Only then are its bytes read, and
never more than that size, so a forged header or a zip bomb costs nothing. Object arrays are never
unpickled. The metadata is JSON with bounded length, integers and nesting. Every problem is a
CheckpointError (or a StorageError when the file cannot be read at all).
"""

import contextlib
import errno
import json
import math
import struct
import tokenize
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, StorageError
from .bounds import MAX_INT_DIGITS, META_DEPTH
from .bounds import MAX_META_CHARS as META_CHARS
from .fileio import atomic_write, describe_os_error
from .openfile import NotRegularFile, open_regular

META_KEY = "__meta__"
# The metadata's bounds are the config's (util/bounds.py: one table for both).
MAX_META_CHARS = META_CHARS
MAX_META_DEPTH = META_DEPTH
MAX_MEMBERS = 10_000
MAX_HEADER = 10_000  # bytes of .npy header (NumPy's own limit)
MAX_UNEXPECTED_BYTES = 1 << 28  # when the caller gives no expected arrays (tests, tools)
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive
# What zipfile, zlib and NumPy's .npy header parser raise on damaged or forged bytes (the fuzz test in
# tests/run/test_hostile_runs.py found tokenize.TokenError: NumPy's header filter tokenizes the header).
DAMAGED = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError, SyntaxError, struct.error,
           tokenize.TokenError, NotImplementedError, KeyError, IndexError, TypeError, OverflowError, RecursionError,
           MemoryError)


def save_checkpoint(path, arrays, meta):
    """Write `arrays` (name -> ndarray) and `meta` (JSON-able dict) to `path` atomically.

    Written under a temporary name, flushed to disk and renamed over `path` (fileio.atomic_write).
    """
    path = Path(path)
    payload = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    payload[META_KEY] = np.array(meta_text(meta))  # a unicode array: loads with allow_pickle=False
    atomic_write(path, lambda f: np.savez(f, **payload))


def load_checkpoint(path, expected=None, meta_only=False, skip=(), against="the expected arrays"):
    """Return (arrays, meta) of a checkpoint ({} for arrays with meta_only).

    `expected` maps each array name to an array of the dtype and shape it must have (a template;
    its values are not used): any other name, a missing name, another dtype or shape is refused
    before the data is read. Without `expected`, any numeric array is read, up to
    MAX_UNEXPECTED_BYTES in all. Members whose names start with a prefix in `skip` are not read.
    `against` names what `expected` describes, in messages ("the model in config.yaml").
    """
    path = Path(path)
    with _open(path) as zf:
        members = _members(zf, path)
        skipped = tuple(skip)
        names = [n for n in members if n != META_KEY and not n.startswith(skipped)]
        headers = {n: _header(zf, members[n], n, path) for n in names}  # refuses pickles first
        if META_KEY not in members:
            raise CheckpointError(f"{path}: not a layerwise checkpoint (no {META_KEY} entry)")
        meta = _read_meta(zf, members[META_KEY], path)
        if meta_only:
            return {}, meta
        if expected is not None:
            missing = sorted(set(expected) - set(names))
            unexpected = sorted(set(names) - set(expected))
            if missing or unexpected:
                raise CheckpointError(
                    f"{path} does not match {against}: missing {_few(missing)}, unexpected {_few(unexpected)}"
                )
        budget = MAX_UNEXPECTED_BYTES
        for name in names:  # every header checked before any data is read
            where = f"{path}: array {name[:80]!r}"
            shape, _, dtype, _ = headers[name]
            if expected is None:
                if dtype.fields is not None or dtype.kind not in "biuf":
                    raise CheckpointError(f"{where}: expected a numeric array, found {_describe(dtype, shape)}")
                budget -= math.prod(shape) * dtype.itemsize
                if budget < 0:
                    raise CheckpointError(f"{path}: its arrays declare more than {MAX_UNEXPECTED_BYTES} bytes")
                continue
            want = np.asarray(expected[name])
            if dtype.fields is not None or dtype.newbyteorder("=") != want.dtype.newbyteorder("=") or shape != want.shape:
                raise CheckpointError(
                    f"{where} does not match {against}: expected {_describe(want.dtype, want.shape)}, "
                    f"found {_describe(dtype, shape)}"
                )
        arrays = {name: _read_data(zf, members[name], headers[name], name, path) for name in names}
    return arrays, meta


@contextlib.contextmanager
def _open(path):
    try:
        f = open_regular(path)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not a checkpoint") from None
    except NotRegularFile as e:
        raise CheckpointError(f"{path}: {e.strerror}; a checkpoint is a regular file") from None
    except OSError as e:
        reason = describe_os_error(e)
        raise StorageError(f"cannot read checkpoint {path}: {reason}", reason) from None
    with f:
        try:
            head = f.read(4)
        except OSError as e:
            reason = describe_os_error(e)
            raise StorageError(f"cannot read checkpoint {path}: {reason}", reason) from None
        if head not in ZIP_MAGIC:
            raise CheckpointError(f"{path}: not a layerwise checkpoint (not an .npz archive; corrupt or truncated?)")
        with open_zip(f, path) as zf:
            yield zf


@contextlib.contextmanager
def open_zip(f, path, error=CheckpointError, noun="checkpoint"):
    """zipfile.ZipFile over the open binary file `f` (never reopened by name)."""
    try:
        f.seek(0)
        zf = zipfile.ZipFile(f)
    except OSError as e:
        raise _read_failure(e, path, str(path), error, noun) from None
    except DAMAGED as e:
        raise error(f"{path}: corrupt or truncated {noun} ({_what(e)})") from None
    with zf:
        yield zf


def _members(zf, path, error=CheckpointError, noun="a layerwise checkpoint"):
    """name (without .npy) -> ZipInfo, each checked: a unique plain .npy, stored or deflated."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise error(f"{path}: not {noun} ({len(infos)} archive members)")
    members = {}
    for info in infos:
        name = info.filename
        if not name.endswith(".npy") or name[:-4] in members:
            raise error(f"{path}: not {noun} (archive member {name[:80]!r})")
        if info.flag_bits & 0x1:
            raise error(f"{path}: archive member {name[:80]!r} is encrypted; {noun} never is")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise error(
                f"{path}: archive member {name[:80]!r} uses compression method {info.compress_type}; "
                f"{noun} is stored or deflated"
            )
        members[name[:-4]] = info
    return members


def _read_meta(zf, info, path):
    shape, _, dtype, _ = header = _header(zf, info, META_KEY, path)
    if not (dtype.kind == "U" and dtype.fields is None and shape == () and 0 < dtype.itemsize <= 4 * MAX_META_CHARS):
        raise CheckpointError(
            f"{path}: its metadata should be a text scalar of at most {MAX_META_CHARS} characters, "
            f"found {_describe(dtype, shape)}"
        )
    # Decoded here, not by NumPy: a forged array can hold code points above U+10FFFF, from which NumPy
    # builds an invalid str that crashes later (the fuzz test found it).
    data = _read_bytes(zf, info, header, META_KEY, path)
    try:
        text = data.decode("utf-32-be" if dtype.byteorder == ">" else "utf-32-le").rstrip("\0")
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: its metadata is not valid text (corrupt or forged)") from None
    return parse_meta(text, path)


def meta_text(meta):
    """The metadata as the JSON text a checkpoint stores: non-ASCII characters as they are (one character
    each, not a 6- or 12-character escape), unless some text is not Unicode (a lone surrogate), which
    only escapes can store."""
    text = json.dumps(meta, ensure_ascii=False)
    try:
        text.encode("utf-32-le")
    except UnicodeEncodeError:
        return json.dumps(meta)
    return text


def parse_meta(text, path):
    """A checkpoint's metadata text -> plain data, within util/bounds.py's limits (the config's): at most
    MAX_META_CHARS characters, MAX_META_DEPTH levels, integers of MAX_INT_DIGITS digits."""
    if len(text) > MAX_META_CHARS:
        raise CheckpointError(f"{path}: its metadata is {len(text):,} characters; at most {MAX_META_CHARS:,} are read")
    try:
        meta = json.loads(text, parse_int=_bounded_int)
    except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"{path}: its metadata is not valid JSON ({str(e)[:100]})") from None
    if _depth(meta) > MAX_META_DEPTH:
        raise CheckpointError(f"{path}: its metadata is nested more than {MAX_META_DEPTH} levels deep")
    return meta


def _bounded_int(text):
    digits = text.lstrip("-")
    if len(digits) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(digits)} digits")
    return int(text)


def _depth(obj):
    """Nesting depth of lists and dicts, without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (list, dict)):
            deepest = max(deepest, depth)
            if depth <= MAX_META_DEPTH:
                stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict) else node))
    return deepest


def npy_header(f):
    """(shape, fortran_order, dtype) of the .npy stream `f`, which is left at the start of the data.
    Damaged or forged bytes raise one of DAMAGED."""
    version = np.lib.format.read_magic(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "created on Python 2": a header NumPy parses the slow way
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f, max_header_size=MAX_HEADER)
        if version in ((2, 0), (3, 0)):
            return np.lib.format.read_array_header_2_0(f, max_header_size=MAX_HEADER)
    raise ValueError(f"unknown .npy version {version}")


def _header(zf, info, name, path, error=CheckpointError, noun="checkpoint"):
    """(shape, fortran_order, dtype, data offset) from a member's .npy header, reading nothing else.
    Object arrays (pickles) are refused here; the size the header declares must be the member's."""
    where = f"{path}: array {name[:80]!r}"
    try:
        with zf.open(info) as f:
            shape, fortran, dtype = npy_header(f)
            offset = f.tell()
    except OSError as e:
        raise _read_failure(e, path, where, error, noun) from None
    except DAMAGED as e:
        raise error(f"{where}: corrupt or truncated {noun} ({_what(e)})") from None
    if dtype.hasobject:
        raise error(f"{where}: holds a pickled object array; refusing to load it (never unpickled)")
    nbytes = math.prod(shape) * dtype.itemsize
    if info.file_size != offset + nbytes:
        raise error(
            f"{where}: its header declares {nbytes} bytes of data but the archive member holds "
            f"{info.file_size - offset} (corrupt or forged)"
        )
    return shape, fortran, dtype, offset


def _read_data(zf, info, header, name, path, error=CheckpointError, noun="checkpoint"):
    """The array whose header was checked: read by NumPy with allow_pickle=False (never unpickled),
    then read to the member's end so zipfile checks its CRC; C-ordered, native byte order."""
    shape, _, dtype, _ = header
    try:
        with zf.open(info) as f:
            array = np.lib.format.read_array(f, allow_pickle=False, max_header_size=MAX_HEADER)
            if f.read(1):
                raise EOFError("more bytes than the header declares")
    except OSError as e:
        raise _read_failure(e, path, f"{path}: array {name[:80]!r}", error, noun) from None
    except DAMAGED as e:
        raise error(f"{path}: array {name[:80]!r}: corrupt or truncated {noun} ({_what(e)})") from None
    if array.shape != shape or array.dtype != dtype:  # cannot happen unless the file changed meanwhile
        raise error(f"{path}: array {name[:80]!r} changed while it was read")
    return np.ascontiguousarray(array.astype(dtype.newbyteorder("="), copy=False))


def _read_bytes(zf, info, header, name, path):
    offset = header[3]
    nbytes = info.file_size - offset
    try:
        with zf.open(info) as f:
            f.read(offset)
            data = f.read(nbytes)
            if len(data) != nbytes or f.read(1):  # reading to the end checks the CRC
                raise EOFError("fewer bytes than the archive declares")
    except OSError as e:
        raise _read_failure(e, path, f"{path}: array {name[:80]!r}") from None
    except DAMAGED as e:
        raise CheckpointError(f"{path}: array {name[:80]!r}: corrupt or truncated checkpoint ({_what(e)})") from None
    return data


def _read_failure(e, path, where, error=CheckpointError, noun="checkpoint"):
    """An OSError while reading an archive that opened fine: a seek to an offset the damaged archive
    gives (EINVAL) is corruption; anything else (EIO...) is the storage failing."""
    if e.errno in (None, errno.EINVAL):
        return error(f"{where}: corrupt or truncated {noun} ({_what(e)})")
    return StorageError(f"cannot read {noun} {path}: {describe_os_error(e)}", describe_os_error(e))


def _describe(dtype, shape):
    """'float32 (3, 4)', 'text <U3 (3, 4)', 'structured (3, 4)': what an array header declares."""
    if dtype.fields is not None:
        kind = "structured"
    elif dtype.kind in "USV":
        kind = f"{ {'U': 'text', 'S': 'bytes', 'V': 'raw bytes'}[dtype.kind]} {dtype.str}"
    else:
        kind = dtype.name
    return f"{kind} {tuple(shape)}" if len(shape) <= 8 else f"{kind} with {len(shape)} dimensions"


def _few(names):
    if not names:
        return "none"
    shown = ", ".join(repr(n[:60]) for n in names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _what(e):
    text = " ".join(str(e).split())[:120]  # one line: NumPy's messages can hold newlines
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
