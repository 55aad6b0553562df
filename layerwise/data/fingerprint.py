"""Data fingerprints: which files a run was trained on, by content, so a run can refuse other data.

A file's digest is the sha256 of its data bytes, decompressed when it is gzip (a recompressed or
unpacked copy of the same data is the same data). Digests are remembered per process, keyed by
(real path, size, mtime), and a run's stored fingerprint serves as a second cache: a file whose path,
size and mtime match what the run recorded is not read again, so checking a large CSV costs a stat.
"""

import hashlib
import os
import zlib
from pathlib import Path

from ..errors import DataError
from ..util.openfile import open_input

CHUNK = 1 << 20
_MEMO = {}  # (real path, size, mtime_ns) -> sha256


def _key(path):
    if "://" in str(path):  # a download that could not be cached: known only by its URL
        return (str(path), None, None)
    st = os.stat(path)
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns)


def remember(path, digest):
    """Record the digest of `path` (or of a URL) computed by a loader that had the data anyway."""
    try:
        _MEMO[_key(path)] = digest
    except OSError:
        pass


def file_digest(path):
    """sha256 of the file's data (gzip decompressed), from the memo when the file is unchanged."""
    try:
        key = _key(path)
    except OSError as e:
        raise DataError(f"{path}: cannot read it to check the run's data ({e.strerror})") from None
    if key[1] is None and key not in _MEMO:
        raise DataError(f"{path}: no digest recorded for this download; set data.root to the downloaded files")
    if key not in _MEMO:
        h = hashlib.sha256()
        try:
            with open_input(path) as f:  # gzip by content; never a FIFO
                while chunk := f.read(CHUNK):
                    h.update(chunk)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: cannot read it to check the run's data ({e})") from None
        _MEMO[key] = h.hexdigest()
    return _MEMO[key]


def fingerprint(sources, known=None):
    """[{file, sha256, size, mtime_ns}] for each source path; `known` (a stored fingerprint) supplies
    the digest of a file whose path, size and mtime are unchanged."""
    previous = {entry.get("file"): entry for entry in (known if isinstance(known, list) else [])
                if isinstance(entry, dict)}
    entries = []
    for path in sources or []:
        path = str(path)
        real, size, mtime = _key(path) if os.path.exists(path) or "://" in path else (os.path.realpath(path), None, None)
        old = previous.get(real)
        if (old and old.get("size") == size and old.get("mtime_ns") == mtime and size is not None
                and isinstance(old.get("sha256"), str)):
            digest = old["sha256"]
        else:
            digest = file_digest(path)
        entries.append({"file": real, "sha256": digest, "size": size, "mtime_ns": mtime})
    return entries


def generated(description):
    """The fingerprint of data generated from a config (no files): a digest of its description."""
    import json

    digest = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()
    return [{"file": "<generated>", "sha256": digest, "size": None, "mtime_ns": None}]


def valid_fingerprint(stored):
    """Whether a checkpoint's stored fingerprint has the shape fingerprint() gives."""
    return isinstance(stored, list) and all(
        isinstance(e, dict) and isinstance(e.get("file"), str) and isinstance(e.get("sha256"), str)
        and all(e.get(k) is None or (isinstance(e.get(k), int) and not isinstance(e.get(k), bool))
                for k in ("size", "mtime_ns"))
        for e in stored)


def mismatch(current, stored):
    """None if every file read now is one the run was trained on (by content), else a message naming
    the first file that is not."""
    digests = {entry.get("sha256") for entry in stored if isinstance(entry, dict)}
    for entry in current:
        if entry["sha256"] not in digests:
            name = Path(entry["file"]).name
            if entry["file"] == "<generated>":
                return "the generated data differs from the run's"
            trained = [e["file"] for e in stored if isinstance(e, dict) and Path(e["file"]).name == name]
            was = f" (the run used {trained[0]})" if trained else ""
            return f"{entry['file']} (sha256 {entry['sha256'][:12]}) is not a file the run was trained on{was}"
    return None
