"""Checkpoints: named arrays plus JSON metadata in one .npz, written atomically, read without pickle."""

import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import CheckpointError
from .fileio import atomic_write

META_KEY = "__meta__"


def save_checkpoint(path, arrays, meta):
    """Write `arrays` (name -> ndarray) and `meta` (JSON-able dict) to `path` atomically.

    Written under a temporary name, flushed to disk and renamed over `path` (fileio.atomic_write).
    """
    path = Path(path)
    payload = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    payload[META_KEY] = np.array(json.dumps(meta))  # a unicode array: loads with allow_pickle=False
    atomic_write(path, lambda f: np.savez(f, **payload))


def load_checkpoint(path, meta_only=False):
    """Return (arrays, meta) ({} for arrays with meta_only). Refuses pickled object arrays; every
    problem is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a layerwise checkpoint (not an .npz archive; corrupt or truncated?)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = [META_KEY] if meta_only and META_KEY in npz.files else npz.files
            arrays = {name: npz[name] for name in names}
    except ValueError as e:
        if "pickle" in str(e):
            raise CheckpointError(f"{path}: holds a pickled object array; refusing to load it (not a layerwise checkpoint)") from None
        raise CheckpointError(f"{path}: not a valid checkpoint ({e})") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(e).__name__}: {e})") from None
    if META_KEY not in arrays:
        raise CheckpointError(f"{path}: not a layerwise checkpoint (no {META_KEY} entry)")
    try:
        meta = json.loads(str(arrays.pop(META_KEY)))
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: its metadata is not valid JSON") from None
    return arrays, meta


# --- training checkpoints (last.npz, best.npz) --------------------------------------------------

CHECKPOINT_FORMAT = "layerwise-checkpoint"
CHECKPOINT_VERSION = 1


def save_run_checkpoint(path, cfg, model, optimizer, state, data=None):
    """Weights, optimizer state, the run state (epoch, step, RNG) and the resolved config, atomically;
    with `data` (a Dataset) also what using the model needs without its training data: the task and
    sizes ("data"), the preprocessing, and the data's fingerprint."""
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": cfg.to_dict(), "state": state}
    if data is not None:
        meta["data"] = {"task": data.task, "num_features": data.num_features, "num_outputs": data.num_outputs}
        meta["preprocessing"] = data.preprocessing
        meta["fingerprint"] = data.fingerprint
    save_checkpoint(path, arrays, meta)


def load_run_checkpoint(path, meta_only=False):
    """(arrays, meta) of a training checkpoint; a file that is not one is a CheckpointError."""
    arrays, meta = load_checkpoint(path, meta_only)
    if (
        not isinstance(meta, dict)
        or meta.get("format") != CHECKPOINT_FORMAT
        or not isinstance(meta.get("config"), dict)
        or not isinstance(meta.get("state"), dict)
    ):
        raise CheckpointError(f"{path}: not a layerwise training checkpoint (its metadata is missing or malformed)")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {meta.get('version')!r}; this layerwise reads {CHECKPOINT_VERSION}")
    return arrays, meta


def is_run_checkpoint(path):
    try:
        load_run_checkpoint(path, meta_only=True)
    except CheckpointError:
        return False
    return True


def with_prefix(arrays, prefix):
    """The entries of `arrays` whose names start with `prefix`, without it ("model/0.W" -> "0.W")."""
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
