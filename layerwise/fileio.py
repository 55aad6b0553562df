"""Atomic file writes: a crash or kill -9 at any moment leaves the old file or the new one, never half."""

import os
import tempfile
from pathlib import Path


def atomic_write(path, write):
    """Call write(f) on a temporary binary file next to `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text):
    atomic_write(path, lambda f: f.write(text.encode()))
