"""Read and write IDX files, the format MNIST ships in (http://yann.lecun.com/exdb/mnist/).

Layout: two zero bytes, a dtype code, the number of dims, then one big-endian uint32 per dim,
then the values in C order. Only dtype 0x08 (uint8) is supported: it is the only one MNIST uses.
"""

import gzip
import hashlib
import math
import os
import zlib

import numpy as np

from ..errors import DataError
from ..util.memory import check_fits
from ..util.openfile import open_input
from ..util.text import one_line
from .fingerprint import remember

GZIP_MAGIC = b"\x1f\x8b"
UINT8_CODE = 0x08
SMALL = 1 << 24  # files declaring fewer bytes are read without a memory check


def read_idx(path, check=None) -> np.ndarray:
    """Return the uint8 array stored in the IDX file at `path` (gzip-compressed or raw, by content).

    The header is read first: `check(shape)` (if given) and a memory check see the shape it declares
    before anything else is read or decompressed, and no more bytes than it declares are ever
    inflated (a gzip bomb costs nothing). A FIFO or a device is refused, never read.
    """
    try:
        with open_input(path) as f:
            head = _read_exactly(f, 4)
            _check_head(head, str(path), len(head))
            ndim = head[3]
            dims = _read_exactly(f, 4 * ndim)
            if len(dims) < 4 * ndim:
                raise DataError(f"{path}: IDX header truncated ({4 + len(dims)} bytes, need {4 + 4 * ndim}); "
                                "re-download it")
            shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))
            expected = math.prod(shape)  # Python ints: four large dims cannot overflow
            if not isinstance(f, gzip.GzipFile):
                _check_payload(str(path), shape, expected, os.fstat(f.fileno()).st_size - 4 - 4 * ndim)
            if check is not None:
                check(shape)
            if expected > SMALL:
                check_fits(expected, f"{path}: IDX header shape {shape}", "is it really an IDX file?", DataError)
            data = _read_exactly(f, expected)
            if len(data) != expected or f.read(1):
                _check_payload(str(path), shape, expected, len(data) + (len(data) == expected))
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: corrupt or truncated gzip ({one_line(e)}); re-download it") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read IDX file ({e.strerror or e}); check the path") from None
    except MemoryError:
        raise DataError(f"{path}: not enough memory to read it") from None
    digest = hashlib.sha256(head)
    digest.update(dims)
    digest.update(data)
    remember(path, digest.hexdigest())  # the run's data fingerprint, at no extra read
    array = np.frombuffer(data, dtype=np.uint8).reshape(shape)
    array.flags.writeable = False
    return array


def _read_exactly(f, n):
    """Up to n bytes (fewer only at the end of the data)."""
    data = bytearray(n)
    with memoryview(data) as view:
        done = 0
        while done < n:
            got = f.readinto(view[done:])
            if not got:
                break
            done += got
    del data[done:]
    return data


def _check_head(head, name, length):
    if length < 4:
        raise DataError(f"{name}: too short to be an IDX file ({length} bytes); re-download it")
    if head[0] != 0 or head[1] != 0:
        raise DataError(f"{name}: bad IDX magic number {head[:4].hex()} "
                        "(expected 0000 then dtype and dims); is this an IDX file?")
    if head[2] != UINT8_CODE:
        raise DataError(f"{name}: unsupported IDX dtype code 0x{head[2]:02x} "
                        "(only 0x08 = uint8 is supported)")
    if not 1 <= head[3] <= 4:
        raise DataError(f"{name}: IDX header has {head[3]} dims (expected 1 to 4); re-download it")


def _check_payload(name, shape, expected, payload):
    if payload != expected:
        problem = "truncated" if payload < expected else "has trailing bytes"
        raise DataError(f"{name}: IDX payload {problem}: header shape {shape} needs "
                        f"{expected} bytes, file has {payload if payload < expected else 'more'}; re-download it")


def read_idx_bytes(data: bytes, name: str) -> np.ndarray:
    """Parse IDX `data` (gzip or raw) into an array; `name` is only used in error messages."""
    # Detect gzip by its magic bytes, not the suffix: a renamed file should still load.
    if data[:2] == GZIP_MAGIC:
        data = gunzip(data, name)
    _check_head(data, name, len(data))
    ndim = data[3]
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{name}: IDX header truncated ({len(data)} bytes, need {header_len}); "
                        "re-download it")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(shape)  # Python ints: four large dims cannot overflow
    _check_payload(name, shape, expected, len(data) - header_len)
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape)


def gunzip(data: bytes, name: str) -> bytes:
    """Decompress gzip `data`, turning the library's several failure types into one DataError."""
    try:
        return gzip.decompress(data)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
        raise DataError(f"{name}: corrupt or truncated gzip ({one_line(e)}); re-download it") from e


def write_idx(path, array) -> None:
    """Write a uint8 array of 1 to 4 dims as IDX; gzip-compressed if `path` ends in .gz."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise DataError(f"{path}: write_idx needs a uint8 array, got {array.dtype}; "
                        "convert with .astype(np.uint8)")
    if not 1 <= array.ndim <= 4:
        raise DataError(f"{path}: write_idx needs 1 to 4 dims, got {array.ndim}")
    header = bytes([0, 0, UINT8_CODE, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array).tobytes()
    if os.fspath(path).endswith(".gz"):
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)
