"""Input arrays (.npy, .npz, .npy.gz) read as untrusted bytes, by the hardened reader checkpoints use.

What the bytes are decides how they are read, not the file's name: a zip archive is an .npz (each
member a plain .npy, stored or deflated, its header matching its size: util/npz.py), a `\\x93NUMPY`
header an .npy, gzip an .npy.gz. Every header is read before any data; object arrays are never
unpickled, structured or non-numeric dtypes are refused, and the caller's `select(headers)` sees
every shape and dtype first (to check the memory they need, and pick the arrays it wants), so a
forged 12 GiB header costs nothing. An .npy's data must be exactly what its header declares (the
file's size, or for gzip, the bytes that decompress: never more are inflated). Every problem is one
`error` (DataError by default) naming the file; a MemoryError while reading is one too.
"""

import math
import os

import numpy as np

from ..errors import DataError, StorageError
from .fileio import describe_os_error
from .npz import DAMAGED, ZIP_MAGIC, _header, _members, _read_data, _what, npy_header, open_zip
from .openfile import GZIP_MAGIC, NotRegularFile, _Gzip, open_regular

NPY_MAGIC = b"\x93NUMPY"
KINDS = "biufUS"  # booleans, integers, floats, and text (class names given as targets)
NOUN = "NumPy array file"


def read_arrays(path, select=None, error=DataError):
    """({name: array}, archive) of the .npy or .npz file at `path`; an .npy's one array is named None.

    `select(headers)`, given {name: (shape, dtype)} before any data is read, returns the names to
    read (it may raise to refuse the file); without it every array is read.
    """
    try:
        f = open_regular(path)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (IsADirectoryError, NotRegularFile) as e:
        raise error(f"{path}: {e.strerror}") from None
    except OSError as e:
        raise error(f"{path}: cannot read it ({describe_os_error(e)})") from None
    with f:
        try:
            head = f.peek(8)[:8]
            if head[:4] in ZIP_MAGIC:
                return _read_npz(f, path, select, error), True
            if head[:2] == GZIP_MAGIC:
                with _Gzip(f) as gz:  # closes f too: harmless, `with f` closes it again
                    return {None: _read_npy(gz, path, select, error, None)}, False
            if head[:6] == NPY_MAGIC:
                return {None: _read_npy(f, path, select, error, os.fstat(f.fileno()).st_size)}, False
        except OSError as e:
            reason = describe_os_error(e)
            raise StorageError(f"cannot read {path}: {reason}", reason) from None
        except MemoryError:
            raise error(f"{path}: not enough memory to read it") from None
    raise error(f"{path}: not an .npz archive or an .npy file (corrupt, truncated, or another format?)")


def _read_npz(f, path, select, error):
    with open_zip(f, path, error, NOUN) as zf:
        members = _members(zf, path, error, "a NumPy .npz archive of arrays")
        headers = {name: _header(zf, info, name, path, error, NOUN) for name, info in members.items()}
        for name, (shape, _, dtype, _) in headers.items():
            _check_dtype(dtype, shape, f"{path}: array {name[:80]!r}", error)
        wanted = list(headers) if select is None else select({n: (h[0], h[2]) for n, h in headers.items()})
        return {name: check_text(_read_data(zf, members[name], headers[name], name, path, error, NOUN),
                                 f"{path}: array {name[:80]!r}", error) for name in wanted}


def _read_npy(f, path, select, error, file_size):
    """The array of an .npy stream whose size (file_size; None when it is decompressed) must be the
    header's; reads no more bytes than the header declares, plus one to see that nothing follows."""
    try:
        shape, fortran, dtype = npy_header(f)
    except DAMAGED as e:
        raise error(f"{path}: corrupt or truncated .npy header ({_what(e)})") from None
    _check_dtype(dtype, shape, str(path), error)
    nbytes = math.prod(shape) * dtype.itemsize
    offset = f.tell()
    if file_size is not None and file_size != offset + nbytes:
        raise error(f"{path}: its header declares {nbytes:,} bytes of data but the file holds "
                    f"{file_size - offset:,} (corrupt, truncated or forged)")
    if select is not None:
        select({None: (shape, dtype)})
    try:
        data = bytearray(nbytes)
        view, done = memoryview(data), 0
        while done < nbytes:
            got = f.readinto(view[done:])
            if not got:
                break
            done += got
        if done != nbytes or f.read(1):
            raise error(f"{path}: its header declares {nbytes:,} bytes of data, "
                        f"{'but it holds fewer' if done != nbytes else 'but more follow'} (corrupt, truncated or forged)")
    except DAMAGED as e:  # a damaged gzip stream (zlib.error, EOFError)
        raise error(f"{path}: corrupt or truncated ({_what(e)})") from None
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return check_text(np.ascontiguousarray(array.astype(dtype.newbyteorder("="), copy=False)), str(path), error)


def check_text(array, where, error=DataError):
    """`array`, unless it is text holding code points no str can hold (above U+10FFFF, surrogates):
    NumPy would build invalid strings from them that crash later."""
    if array.dtype.kind == "U" and array.size and array.dtype.itemsize:
        points = array.view(np.uint32)
        if (points > 0x10FFFF).any() or ((points >= 0xD800) & (points <= 0xDFFF)).any():
            raise error(f"{where}: holds text that is not valid Unicode (corrupt or forged)")
    return array


def _check_dtype(dtype, shape, where, error):
    if dtype.hasobject:
        raise error(f"{where}: holds a pickled object array; refusing to load it (never unpickled)")
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in KINDS:
        what = "structured" if dtype.fields is not None else dtype.str
        raise error(f"{where}: expected numbers (or text labels), found {what} values of shape {tuple(shape)[:8]}")
