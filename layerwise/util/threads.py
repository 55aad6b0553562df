"""How many BLAS threads NumPy's matrix products use: --threads N or $LAYERWISE_THREADS, applied with
threadpoolctl (what scikit-learn uses). One thread is often faster on a loaded machine and for many small
runs side by side; bit-identical results need the same thread count."""

import contextlib
import os

from ..errors import ConfigError

ENV = "LAYERWISE_THREADS"


def requested(threads=None):
    """The thread count asked for: `threads`, else $LAYERWISE_THREADS, else None (the library default)."""
    if threads is not None:
        return threads
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 1024:
        raise ConfigError(f"${ENV}={text[:40]!r}: expected a whole number of threads from 1 to 1024")
    return int(text)


def limited(threads=None):
    """A context in which BLAS uses `requested(threads)` threads (no change when nothing was asked)."""
    count = requested(threads)
    if count is None:
        return contextlib.nullcontext()
    import numpy  # noqa: F401  threadpoolctl limits only the BLAS libraries already loaded
    from threadpoolctl import threadpool_limits

    return threadpool_limits(count, user_api="blas")


def blas_threads():
    """The BLAS thread count in effect now (the largest of the loaded BLAS libraries), or None."""
    from threadpoolctl import threadpool_info

    counts = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return max(counts) if counts else None
