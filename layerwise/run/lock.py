"""Run-directory locks: one process at a time trains into a run directory.

A run directory holds a lock file, `.layerwise.lock`. The process training into it holds an OS
file lock on it (fcntl.flock, exclusive) until it ends; the kernel releases the lock when the
process exits or is killed, even by kill -9, so a lock is never stale. The file holds the pid of
the process that holds (or last held) the lock, for messages only: the lock itself decides.
"""

import errno
import os
from pathlib import Path

from ..errors import RunInUse, StorageError

try:
    import fcntl
except ImportError:  # not on Windows: there, run directories are not locked
    fcntl = None
from ..util.fileio import UMASK, describe_os_error
from ..util.openfile import NotRegularFile, open_fd

LOCK_NAME = ".layerwise.lock"
OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)  # never through a symlink


class RunLock:
    """An exclusive lock on a directory's lock file; a context manager that releases it."""

    def __init__(self, fd, directory):
        self.fd = fd
        self.directory = Path(directory)

    def write_pid(self):
        """Record this process as the holder (what another process's refusal names)."""
        try:
            os.ftruncate(self.fd, 0)
            os.lseek(self.fd, 0, os.SEEK_SET)
            os.write(self.fd, f"{os.getpid()}\n".encode())
        except OSError as e:
            raise StorageError(f"cannot write {self.directory / LOCK_NAME}: {describe_os_error(e)}",
                               describe_os_error(e)) from None

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing the only descriptor releases the flock
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def acquire(directory, in_use_hint="", shown=None):
    """Lock `directory` (creating its lock file if needed) without waiting.

    Raises RunInUse naming the holder's pid when another process holds it, and StorageError when
    the lock file cannot be created or opened for writing (a read-only or unwritable directory).
    `shown` is the directory as messages name it (default: `directory`).
    """
    directory = Path(directory)
    shown = directory if shown is None else shown
    path = directory / LOCK_NAME
    try:
        fd = open_fd(path, os.O_RDWR | os.O_CREAT | OPEN_FLAGS, 0o666 & ~UMASK)  # a FIFO there is refused, not waited on
    except (IsADirectoryError, NotRegularFile) as e:
        raise StorageError(f"cannot lock run directory {shown}: {LOCK_NAME} is {e.strerror}; remove it",
                           e.strerror) from None
    except OSError as e:
        reason = describe_os_error(e)
        raise StorageError(f"cannot write in run directory {shown}: {reason}", reason) from None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        pid = _read_pid(fd)
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise RunInUse(in_use_message(shown, pid, in_use_hint)) from None
        reason = describe_os_error(e)
        raise StorageError(f"cannot lock run directory {shown}: {reason}", reason) from None
    return RunLock(fd, directory)


def holder(directory):
    """The pid ("" when unknown) of the process holding `directory`'s lock, or None when no process
    holds it. Creates nothing."""
    try:
        fd = open_fd(Path(directory) / LOCK_NAME, os.O_RDONLY | OPEN_FLAGS)
    except OSError:  # none, or not a regular file (a FIFO would block a plain open): no holder
        return None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _read_pid(fd)
    finally:
        os.close(fd)  # also drops the shared lock if it was taken
    return None


def in_use_message(directory, pid, hint=""):
    who = f"layerwise process {pid}" if pid else "another layerwise process"
    return f"run directory {directory} is in use: {who} is training into it{hint}"


def _read_pid(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
