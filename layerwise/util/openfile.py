"""Opening the files a user names: regular files only, never a hang, gzip by content.

A FIFO where a file is expected blocks open() until some writer appears (forever), /dev/zero reads
without end, and a directory, a socket or a 300-byte name gives an OSError traceback. `open_regular`
opens with O_NONBLOCK (so opening a FIFO returns at once), checks with fstat that what it opened is a
regular file, then clears O_NONBLOCK; anything else raises an OSError whose strerror says what it is
("not a regular file (a FIFO)"), as a missing file raises FileNotFoundError. The check is made on the
open descriptor, so the file cannot be swapped between the check and the read. `open_input` also
decompresses gzip, recognised by its magic bytes whatever the file is called (X.CSV.GZ, data.gz).

Every reader of a path a user gives (configs, CSV, .npy/.npz, IDX, images, checkpoints, lock and
run files) opens through these; `kind_of` names what a path is, for messages, without opening it.
"""

import errno
import gzip
import io
import os
import stat

GZIP_MAGIC = b"\x1f\x8b"
NAME_MAX = 255  # bytes in one file name (Linux, macOS)
FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class NotRegularFile(OSError):
    """The path exists but is not a regular file: a FIFO, a device, a socket (directories raise
    IsADirectoryError)."""


def describe_mode(mode):
    """'a FIFO', 'a directory', ... for an st_mode that is not a regular file's."""
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


def not_regular(path, mode):
    """The OSError for opening `path` whose st_mode is `mode`: IsADirectoryError or NotRegularFile."""
    if stat.S_ISDIR(mode):
        return IsADirectoryError(errno.EISDIR, "is a directory, not a file", os.fspath(path))
    return NotRegularFile(errno.EINVAL, f"not a regular file ({describe_mode(mode)})", os.fspath(path))


def check_regular_fd(fd, path):
    """Raise not_regular() unless the open descriptor `fd` is a regular file; then make it blocking."""
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        raise not_regular(path, mode)
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)


def open_fd(path, flags=FLAGS, mode=0o666):
    """os.open(path, flags | O_NONBLOCK) of a regular file, checked with fstat: the descriptor, or an
    OSError (FileNotFoundError, IsADirectoryError, NotRegularFile, 'File name too long', ...)."""
    flags |= getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, mode)
    except OSError as e:
        if e.errno in (errno.ENXIO, errno.EOPNOTSUPP, errno.ENODEV):  # a socket or a device: say which
            try:
                st = os.stat(path)
            except OSError:
                raise e from None
            raise not_regular(path, st.st_mode) from None
        if e.errno == errno.ENAMETOOLONG:
            raise OSError(e.errno, name_too_long(path), os.fspath(path)) from None
        raise
    try:
        check_regular_fd(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(path, mode="rb", encoding="utf-8", errors=None, newline=None):
    """open(path, mode) for reading a regular file; text is always UTF-8 unless `encoding` says
    otherwise (never the locale's: a UTF-8 file must read the same under LC_ALL=C)."""
    if any(c in mode for c in "wax+"):
        raise ValueError(f"open_regular reads; mode {mode!r}")
    fd = open_fd(path)
    if "b" in mode:
        return os.fdopen(fd, mode)
    return os.fdopen(fd, mode, encoding=encoding, errors=errors, newline=newline)


class _Gzip(gzip.GzipFile):
    """A GzipFile that closes the file it decompresses."""

    def __init__(self, raw):
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self):
        try:
            super().close()
        finally:
            self._raw.close()


class _Capped(io.RawIOBase):
    """A decompressing stream that refuses to give more than `cap` bytes (a gzip bomb)."""

    def __init__(self, stream, cap, path):
        self._stream, self._cap, self._path, self._given = stream, cap, path, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = self._stream.readinto(buffer)
        self._given += n
        if self._given > self._cap:
            raise InputTooLarge(errno.EFBIG, f"decompresses to more than {self._cap:,} bytes (a gzip bomb?)",
                                os.fspath(self._path))
        return n

    def close(self):
        try:
            self._stream.close()
        finally:
            super().close()


class InputTooLarge(OSError):
    """A gzip file decompresses to more than its reader allows."""


def open_input(path, text=False, encoding="utf-8", cap=None):
    """A binary (or, with `text`, a UTF-8 text) reader of a regular file, decompressed when it starts
    with gzip's magic bytes. Reads are bounded by what the caller asks for (gzip decompresses as it
    is read), so a caller that reads at most n bytes never inflates more; with `cap`, reading more than
    `cap` decompressed bytes raises InputTooLarge (an OSError) for a caller that reads to the end."""
    raw = open_regular(path, "rb")
    try:
        compressed = raw.peek(2)[:2] == GZIP_MAGIC
        stream = _Gzip(raw) if compressed else raw
        if compressed and cap is not None:
            stream = io.BufferedReader(_Capped(stream, cap, path))
    except BaseException:
        raw.close()
        raise
    return io.TextIOWrapper(stream, encoding=encoding) if text else stream


def is_gzip(path):
    """Whether the regular file at `path` starts with gzip's magic bytes (OSErrors propagate)."""
    with open_regular(path) as f:
        return f.read(2) == GZIP_MAGIC


def kind_of(path):
    """None for a regular file (after symlinks), else what `path` is: 'missing', 'a FIFO', 'a
    directory', ..., or the OS's words when it cannot be looked at ('File name too long')."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            return name_too_long(path)
        if e.errno == errno.ENOTDIR:
            return "missing"
        return e.strerror or type(e).__name__
    return None if stat.S_ISREG(mode) else describe_mode(mode)


def name_too_long(path):
    """'file name too long (300 bytes; at most 255)' or the path's, for ENAMETOOLONG."""
    longest = max((len(os.fsencode(part)) for part in os.fspath(path).split(os.sep)), default=0)
    if longest > NAME_MAX:
        return f"file name too long ({longest} bytes; a name has at most {NAME_MAX})"
    return f"path too long ({len(os.fsencode(os.fspath(path)))} bytes)"


def suffixes(path):
    """The file kind by name: its lower-case suffix, gz-aware: ('.csv', True) for X.CSV.GZ, ('.npy',
    False) for x.NPY, ('', True) for data.gz."""
    name = os.path.basename(os.fspath(path)).lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    dot = name.rfind(".")
    return (name[dot:] if dot > 0 else ""), gz
