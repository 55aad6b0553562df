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
from .fingerprint import remember

GZIP_MAGIC = b"\x1f\x8b"
UINT8_CODE = 0x08


def read_idx(path) -> np.ndarray:
    """Return the uint8 array stored in the IDX file at `path` (gzip-compressed or raw).

    The array is a read-only view of the file's bytes (no copy); index or `.astype` it to change it.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read IDX file ({e.strerror}); check the path") from e
    if data[:2] == GZIP_MAGIC:
        data = gunzip(data, str(path))
    remember(path, hashlib.sha256(data).hexdigest())  # the run's data fingerprint, at no extra read
    return read_idx_bytes(data, str(path))


def read_idx_bytes(data: bytes, name: str) -> np.ndarray:
    """Parse IDX `data` (gzip or raw) into an array; `name` is only used in error messages."""
    # Detect gzip by its magic bytes, not the suffix: a renamed file should still load.
    if data[:2] == GZIP_MAGIC:
        data = gunzip(data, name)
    if len(data) < 4:
        raise DataError(f"{name}: too short to be an IDX file ({len(data)} bytes); re-download it")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: bad IDX magic number {data[:4].hex()} "
                        "(expected 0000 then dtype and dims); is this an IDX file?")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != UINT8_CODE:
        raise DataError(f"{name}: unsupported IDX dtype code 0x{dtype_code:02x} "
                        "(only 0x08 = uint8 is supported)")
    if not 1 <= ndim <= 4:
        raise DataError(f"{name}: IDX header has {ndim} dims (expected 1 to 4); re-download it")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{name}: IDX header truncated ({len(data)} bytes, need {header_len}); "
                        "re-download it")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(shape)  # Python ints: four large dims cannot overflow
    payload = len(data) - header_len
    if payload != expected:
        problem = "truncated" if payload < expected else "has trailing bytes"
        raise DataError(f"{name}: IDX payload {problem}: header shape {shape} needs "
                        f"{expected} bytes, file has {payload}; re-download it")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape)


def gunzip(data: bytes, name: str) -> bytes:
    """Decompress gzip `data`, turning the library's several failure types into one DataError."""
    try:
        return gzip.decompress(data)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
        raise DataError(f"{name}: corrupt or truncated gzip ({e}); re-download it") from e


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
