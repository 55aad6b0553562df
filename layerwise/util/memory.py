"""What a config will allocate, checked before allocating it.

A size typo (`out_features: 100000000000`, `n_samples: 1e12` written as an integer) should end in one
line saying how much memory it would need, not in numpy's "Maximum allowed dimension exceeded", a
MemoryError traceback, or a machine swapping until the kernel kills the run. The model and the data
each estimate their bytes from the config alone and call `check_fits` first.
"""

import os

from ..errors import ConfigError

# Copies of every parameter a training run keeps: the weights, their gradients, the optimizer's
# momentum buffer and the copy a checkpoint save makes; plus the float64 draw at initialisation (two).
PARAMETER_COPIES = 6


def available_bytes():
    """Memory this process can still use: MemAvailable (Linux; free plus reclaimable cache), else the
    free physical pages, capped by the address-space limit (`ulimit -v`) when one is set."""
    limit = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limit = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if limit is None:
        try:
            limit = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            limit = 1 << 62  # unknown (e.g. Windows): only the absurd is refused
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limit = min(limit, soft)
    except (ImportError, ValueError, OSError):
        pass
    return limit


def check_fits(nbytes, what, fix, error=ConfigError):
    """Raise `error` (ConfigError) when `nbytes` exceed the memory available. `what` says what needs
    them and names the key ("model.layers: 3 layers, 1,000,000,000 parameters"), `fix` what to change."""
    limit = available_bytes()
    if nbytes > limit:
        raise error(f"{what} would need {format_bytes(nbytes)} of memory, more than the "
                          f"{format_bytes(limit)} available; {fix}")


def format_bytes(n):
    """1536 -> '1.5 KiB', up to YiB; beyond, a power of two (an int may exceed a float's range)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    if n >= 1024 ** len(units):
        return f"over 2^{int(n).bit_length() - 1} B"
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:.0f} B" if i == 0 else f"{n:.1f} {units[i]}"
