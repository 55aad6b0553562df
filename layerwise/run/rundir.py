"""Run directories: refused when they hold something else, created atomically, replaced safely, and
locked (runlock.py) by the process training into them.

A new run is filled in a private staging directory next to it, `.layerwise-new-XXXXXXXX`, renamed
into place once complete. Staging directories (and `.layerwise-old-XXXXXXXX`, where a run being
overwritten waits until the new one is in place) hold a marker file naming the directory and are
locked by their owner; a later start removes only those whose marker matches and whose owner is
gone. Nothing is found by matching the user's run name, and nothing layerwise did not create is
ever deleted.
"""

import errno
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import ConfigError, RunInUse, StorageError
from ..util.openfile import open_fd
from ..util.fileio import (
    TEMP_NAME,
    UMASK,
    describe_os_error,
    fsync_dir,
    remove_stale_temps,
)
from . import lock as runlock
from .checkpoint import is_run_checkpoint

STAGING_PREFIX = ".layerwise-"
MARKER = ".layerwise-staging"  # inside a staging directory; holds that directory's own name

ELSEWHERE = ", or train elsewhere with -s output=<dir>"


def check_run_dir(path, overwrite):
    """Refuse a non-empty `path` unless `overwrite`, and then only if it is a layerwise run directory
    (its last.npz a layerwise checkpoint) that is neither the working directory nor above it and
    that no process is training into. Writes nothing."""
    path = Path(path)
    try:
        _check_run_dir(path, overwrite)
    except (OSError, ValueError) as e:  # a NUL byte, a name too long, an unreadable directory
        raise ConfigError(f"output: cannot use {_show(path)} as a run directory: {_reason(e)}") from None


def _check_run_dir(path, overwrite):
    if "\0" in str(path):
        raise ValueError("it contains a NUL byte")
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        raise ValueError("it cannot be encoded as a file name (a lone surrogate?)") from None
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"output: {path} cannot be a run directory: {parent} is a file")
    if path.is_symlink():
        raise ConfigError(f"output: {path} is a symbolic link; give the real directory")
    if not path.exists() or (path.is_dir() and is_empty(path)):
        return
    pid = runlock.holder(path)
    if pid is not None:
        raise RunInUse(runlock.in_use_message(path, pid, "; wait for it to finish" + ELSEWHERE))
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


def is_empty(path):
    """True if `path` holds nothing but what a killed start may leave: its lock file, temp files."""
    with os.scandir(path) as entries:
        return all(e.name == runlock.LOCK_NAME or TEMP_NAME.fullmatch(e.name) for e in entries)


def create_run_dir(path, populate, overwrite=False):
    """Create run directory `path`, filled by populate(directory), and return its RunLock (held).

    A new directory is filled in a staging directory renamed into place, so a kill at any moment
    leaves no run directory or a resumable one. With `overwrite`, a run already there (check_run_dir
    allowed it) is moved aside and deleted only once the new one is in place. An existing empty
    directory (the working directory, a mount point) is filled in place, last.npz first. Another
    process training into `path`, or creating it meanwhile, is a RunInUse naming it. A start that
    fails also removes the parent directories it created."""
    path = Path(path)
    target = Path(os.path.abspath(path))  # "." and "a/.." have no name to rename to
    missing = [p for p in target.parents if not os.path.lexists(p)]
    try:
        return _create(path, target, populate, overwrite)
    except BaseException:
        for parent in missing:  # innermost first; only while empty
            try:
                parent.rmdir()
            except OSError:
                break
        raise


def _create(path, target, populate, overwrite):
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        in_place = target.is_dir() and is_empty(target)
    except OSError as e:
        raise ConfigError(f"output: cannot create run directory {path}: {_reason(e)}") from None
    if in_place:
        return _fill_in_place(path, target, populate)
    remove_abandoned(target.parent)
    staging, lock = _private_dir(target.parent, "new", path)
    old = old_lock = old_dir_lock = None
    try:
        _populate(populate, staging, path)
        if overwrite and os.path.lexists(target):  # a run being overwritten (check_run_dir checked it)
            old_lock = runlock.acquire(target, "; wait for it to finish" + ELSEWHERE, shown=path)
            if not is_run_checkpoint(target / "last.npz"):
                raise ConfigError(f"{path} is no longer a layerwise run directory; refusing to delete it")
            old, old_dir_lock = _private_dir(target.parent, "old", path, target)
            _move(target, old / "run", f"cannot move the run in {path} aside")
        (staging / MARKER).unlink()
        try:
            os.rename(staging, target)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise _taken(path) from None
            raise StorageError(f"cannot create run directory {path}: {_reason(e)}", _reason(e)) from None
        lock.directory = path
        fsync_dir(target.parent)
    except BaseException:
        lock.release()
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and (old / "run").exists() and not os.path.lexists(target):
            try:
                os.rename(old / "run", target)  # put the old run back
            except OSError:
                pass  # kept in `old`, unmarked, below
        raise
    finally:
        if old is not None and not (old / "run").exists():
            shutil.rmtree(old, ignore_errors=True)
        elif old is not None:  # the old run could not be put back: keep it, never delete it
            (old / MARKER).unlink(missing_ok=True)
        for held in (old_lock, old_dir_lock):
            if held is not None:
                held.release()
    return lock


def _fill_in_place(path, target, populate):
    before = set(os.listdir(target))
    lock = runlock.acquire(target, "; wait for it to finish" + ELSEWHERE, shown=path)
    if not is_empty(target):  # another start filled it meanwhile and has finished
        lock.release()
        raise _taken(path)
    try:
        lock.write_pid()
        remove_stale_temps(target)
        _populate(populate, target, path)
    except BaseException:
        for name in set(os.listdir(target)) - before - {runlock.LOCK_NAME}:
            _remove(target / name)
        if runlock.LOCK_NAME not in before:
            _remove(target / runlock.LOCK_NAME)
        lock.release()
        raise
    lock.directory = path
    return lock


def _populate(populate, directory, path):
    try:
        populate(directory)
    except StorageError as e:  # name the run, not the staging directory
        raise StorageError(f"cannot start a run in {path}: {e.reason}; nothing was kept", e.reason) from None


def lock_run_dir(run_dir):
    """Lock an existing run directory to continue it (RunInUse if a process trains into it).
    StorageError if it cannot be written."""
    return runlock.acquire(run_dir, "; wait for it to finish (--resume continues a run no process is training)")


def remove_abandoned(parent):
    """Delete the staging directories in `parent` whose owner is gone: named .layerwise-*, holding
    a marker with their own name, and whose lock no process holds. An abandoned `old` directory's
    run goes back to its name first, if that name is free."""
    try:
        entries = [e for e in os.scandir(parent) if e.name.startswith(STAGING_PREFIX) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for entry in entries:
        directory = Path(entry.path)
        marker = (_read_marker(directory) or "").split("\n")
        if marker[0] != entry.name:
            continue
        try:
            lock = runlock.acquire(directory)
        except (RunInUse, StorageError):
            continue  # its owner is alive (or it is not ours to judge)
        with lock:
            # A run moved aside by an --overwrite killed before the new run was renamed in: put it back.
            target = marker[1] if len(marker) > 1 else ""
            if target and "/" not in target and target not in (".", "..") and (directory / "run").is_dir():
                try:
                    os.rename(directory / "run", Path(parent) / target)
                except OSError:
                    continue  # the name is taken meanwhile: keep the old run where it is
            shutil.rmtree(directory, ignore_errors=True)


def _private_dir(parent, role, path, target=None):
    """A new .layerwise-<role>-XXXXXXXX directory in `parent`, locked by this process, marked as ours."""
    try:
        directory = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{role}-", dir=parent))
    except OSError as e:
        raise ConfigError(f"output: cannot create run directory {path}: {_reason(e)}") from None
    try:
        lock = runlock.acquire(directory)
        lock.write_pid()
        directory.chmod(0o777 & ~UMASK)
        # Only after the lock, so a marked directory is always locked while its owner lives. An "old"
        # directory also names the run it holds, to be put back if its owner dies (remove_abandoned).
        (directory / MARKER).write_text(directory.name + (f"\n{Path(target).name}\n" if role == "old" else ""))
    except (OSError, StorageError) as e:
        shutil.rmtree(directory, ignore_errors=True)
        reason = e.reason if isinstance(e, StorageError) else _reason(e)
        raise StorageError(f"cannot create run directory {path}: {reason}", reason) from None
    return directory, lock


def _read_marker(directory):
    try:
        fd = open_fd(directory / MARKER, os.O_RDONLY | runlock.OPEN_FLAGS)  # never blocks on a FIFO
    except OSError:
        return None
    try:
        return os.read(fd, 256).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _move(source, destination, what):
    try:
        os.rename(source, destination)
    except OSError as e:
        hint = " (is it a mount point? empty it yourself, or train elsewhere)" if e.errno == errno.EBUSY else ""
        raise StorageError(f"{what}: {_reason(e)}{hint}", _reason(e)) from None


def _taken(path):
    pid = runlock.holder(path)
    if pid is not None:
        return RunInUse(runlock.in_use_message(path, pid, "; it created it while this process was starting" + ELSEWHERE))
    return ConfigError(
        f"run directory {path} was created by another layerwise process while this one was starting; "
        f"pass --overwrite to replace it, or train elsewhere with -s output=<dir>"
    )


def _remove(path):
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError:
        pass


def _show(path):
    """A path for a message: quoted when it holds control characters, shortened when very long."""
    text = str(path)
    if not text.isprintable():
        text = repr(text)
    return text if len(text) <= 100 else f"{text[:60]}...{text[-30:]} ({len(text)} characters)"


def _reason(e):
    return describe_os_error(e) if isinstance(e, OSError) else str(e)
