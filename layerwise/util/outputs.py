"""Files a user names for layerwise to write (predict -o, trace --dot, plot -o, export OUT.onnx, sweep
--output): one rule for all of them.

check_output, before the work: the name is not empty, every part of it fits in NAME_MAX bytes, nothing
is there yet (not even a dangling symbolic link), and its directory exists. create_output, at the end:
the bytes go to a temporary file beside it, which is then linked to the name with os.link. A link
refuses a name that exists, so a file that appeared meanwhile is never replaced. Only an explicit
overwrite (plot --overwrite) renames over the name instead. Either way the file appears complete or not
at all. Each problem is one ConfigError (exit 2) or StorageError (exit 4) line naming the option and
the file.
"""

import os
import stat
from pathlib import Path

from ..errors import ConfigError
from .fileio import NAME_MAX, atomic_create, atomic_write, describe_os_error


def _short(text, limit=120):
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def check_name(path, label):
    """`path` as a Path once its name is usable: not empty, no part over NAME_MAX bytes, no NUL."""
    text = os.fspath(path)
    if text == "":
        raise ConfigError(f"{label}: the file name is empty; give a file name")
    if "\0" in text:
        raise ConfigError(f"{label} {_short(ascii(text))}: a file name cannot hold a NUL character")
    path = Path(text).expanduser()
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            raise ConfigError(f"{label} {_short(text)}: the name {_short(part, 40)!r} is {size} bytes; a file or "
                              f"directory name is at most {NAME_MAX} bytes")
    return path


NEVER = "refusing to overwrite it (layerwise never does): choose another file name, or remove it"


def check_output(path, label, overwrite=False, hint=NEVER):
    """Refuse, before any work, an output `path` that cannot be created: see the module docstring.
    With `overwrite`, an existing file (not a directory) is accepted. `hint` follows "already exists; ".
    Returns the Path."""
    path = check_name(path, label)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise ConfigError(f"{label} {_short(str(path))}: {path.parent} is not a directory") from None
    except OSError as e:
        raise ConfigError(f"{label} {_short(str(path))}: {describe_os_error(e)}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{label} {_short(str(path))} is a directory; give a file name")
        if not overwrite:
            raise ConfigError(f"{label} {_short(str(path))} already exists; {hint}")
    try:
        parent_is_dir = stat.S_ISDIR(os.stat(path.parent).st_mode)
    except OSError:
        parent_is_dir = False
    if not parent_is_dir:
        raise ConfigError(f"{label} {_short(str(path))}: directory {_short(str(path.parent))} does not exist; create it first")
    return path


def create_output(path, write, label, overwrite=False):
    """Call write(f) on a temporary file beside `path`, then give it the name `path` without ever
    replacing what is there (os.link), or, with `overwrite`, by renaming over it. A file that
    appeared since check_output is a ConfigError and is left as it is."""
    path = Path(path)
    try:
        (atomic_write if overwrite else atomic_create)(path, write)
    except FileExistsError:
        raise ConfigError(f"{label} {_short(str(path))} appeared while layerwise was working; it is left as it "
                          f"is (layerwise never overwrites it): choose another file name") from None
