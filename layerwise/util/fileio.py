"""Atomic file writes: a crash or kill -9 at any moment leaves the old file or the new one, never half.

A write the file system refuses (disk full, read-only, permission denied) is a StorageError naming
the file; the temporary file is removed and the previous version of the file is left intact.
"""

import json
import math
import os
import re
import tempfile
from pathlib import Path

from ..errors import StorageError


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()  # mkstemp/mkdtemp create private files; give ours the modes open() would

# The temporary names atomic_write uses: ".<name>.<8 characters of mkstemp>.tmp", e.g.
# ".last.npz.k3j_x9ab.tmp". A kill -9 during a write leaves one behind; remove_stale_temps deletes them.
TEMP_NAME = re.compile(r"\.[^/]+\.[a-z0-9_]{8}\.tmp")


def describe_os_error(e):
    """'No space left on device' etc.: the OS's words for an OSError, without the Python noise."""
    return e.strerror or str(e) or type(e).__name__


NAME_MAX = 255  # bytes in one file name (Linux, macOS)
TEMP_EXTRA = len("..") + 8 + len(".tmp")  # mkstemp's 8 random characters, our dots and suffix


def _temp_stem(name):
    """`name`, cut to the bytes that leave room for the temporary name's 14 extra characters, so a legal
    output name of up to 255 bytes gets a legal temporary name too."""
    raw = os.fsencode(name)
    return name if len(raw) + TEMP_EXTRA <= NAME_MAX else os.fsdecode(raw[: NAME_MAX - TEMP_EXTRA])


def _write_temp(path, write):
    """write(f) into a new temporary file next to `path` (usual file mode, flushed to disk); returns
    its name. If writing fails, the temporary file is removed before the error propagates."""
    fd, tmp = tempfile.mkstemp(prefix=f".{_temp_stem(path.name)}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~UMASK)
            os.fsync(f.fileno())
    except BaseException:
        _discard(tmp)
        raise
    return tmp


def atomic_write(path, write):
    """Call write(f) on a temporary binary file next to `path`, fsync it, then rename it over `path`
    and fsync the directory, so the rename itself survives a power cut."""
    path = Path(path)
    tmp = None
    try:
        tmp = _write_temp(path, write)
        os.replace(tmp, path)
    except OSError as e:
        _discard(tmp)
        reason = describe_os_error(e)
        raise StorageError(f"cannot write {path}: {reason}", reason) from None
    except BaseException:
        _discard(tmp)
        raise
    fsync_dir(path.parent)


def _discard(tmp):
    if tmp is not None:
        try:
            Path(tmp).unlink(missing_ok=True)
        except OSError:
            pass


def atomic_create(path, write):
    """Like atomic_write, but the file must not exist: it appears complete or not at all, and a file
    that appeared meanwhile is never replaced (os.link refuses an existing name: FileExistsError)."""
    path = Path(path)
    tmp = None
    try:
        tmp = _write_temp(path, write)
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as e:
        reason = describe_os_error(e)
        raise StorageError(f"cannot write {path}: {reason}", reason) from None
    finally:
        _discard(tmp)
    fsync_dir(path.parent)


def atomic_write_text(path, text):
    atomic_write(path, lambda f: f.write(text.encode()))


def json_text(obj, indent=1):
    """JSON for `obj` in which NaN and infinities are written as null (JSON has no such numbers;
    Python's json would write the invalid tokens NaN and Infinity). Use it for every JSON layerwise
    writes: files and --json output."""
    return json.dumps(_finite(obj), indent=indent, allow_nan=False)


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # NumPy scalars and arrays
        return _finite(obj.tolist())
    return obj


def write_json(path, obj):
    """Write `obj` as JSON (non-finite floats as null) to `path` atomically."""
    atomic_write_text(path, json_text(obj) + "\n")


def remove_stale_temps(directory):
    """Delete the temporary files atomic_write left in `directory` when it was killed mid-write.

    Only for a directory this process owns (a locked run directory): a temp file there belongs to a
    writer that is gone. Only regular files whose name matches TEMP_NAME are touched."""
    removed = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if TEMP_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    except OSError as e:
        reason = describe_os_error(e)
        raise StorageError(f"cannot clean up temporary files in {directory}: {reason}", reason) from None
    return removed


def fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. on Windows, where directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
