"""Run directories: refused when they hold something else, created atomically, replaced safely."""

import os
import shutil
import tempfile
from pathlib import Path

from .checkpoint import is_run_checkpoint
from .errors import ConfigError
from .fileio import UMASK, fsync_dir


def check_run_dir(path, overwrite):
    """Refuse a non-empty `path` unless `overwrite`, and then only if it is a layerwise run directory
    (its last.npz a layerwise checkpoint) that is neither the working directory nor above it."""
    path = Path(path)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"output: {path} cannot be a run directory: {parent} is a file")
    if path.is_symlink():
        raise ConfigError(f"output: {path} is a symbolic link; give the real directory")
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return
    if not overwrite:
        raise ConfigError(
            f"run directory {path} already exists and is not empty; pass --overwrite to replace it, "
            f"-s output=<dir> to train elsewhere, or --resume {path} to continue it"
        )
    if not (path.is_dir() and is_run_checkpoint(path / "last.npz")):
        raise ConfigError(f"{path} is not a layerwise run directory (no layerwise last.npz); refusing to delete it")
    cwd = Path.cwd().resolve()
    if path.resolve() == cwd or path.resolve() in cwd.parents:
        raise ConfigError(f"output: {path} holds the working directory; refusing to delete it")


def create_run_dir(path, populate):
    """Create run directory `path` atomically: populate(staging) fills a hidden sibling directory,
    which is then renamed to `path`. A kill at any moment leaves no run directory or a resumable one;
    a run being overwritten is moved aside first and deleted only once the new one is in place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a start that was killed
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as e:
        raise ConfigError(f"output: cannot create run directory {path}: {e.strerror or e}") from None
    old = None
    try:
        staging.chmod(0o777 & ~UMASK)
        populate(staging)
        if path.exists():  # empty, or a run being overwritten (checked by check_run_dir)
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
            os.replace(path, old / "run")
        os.replace(staging, path)
        fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and not path.exists():
            os.replace(old / "run", path)  # put the old run back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return path
