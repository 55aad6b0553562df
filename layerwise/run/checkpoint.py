"""Training checkpoints (last.npz, best.npz): the model, optimizer and run state, and what using the
model needs without its training data. The bytes are read and written by util/npz.py."""

from pathlib import Path

import numpy as np

from ..errors import CheckpointError, StorageError
from ..util.npz import load_checkpoint, save_checkpoint

CHECKPOINT_FORMAT = "layerwise-checkpoint"
CHECKPOINT_VERSION = 1


def expected_arrays(model, optimizer=None):
    """Everything a training checkpoint holds for this model (and optimizer), by name: what
    save_run_checkpoint writes and what load_run_arrays accepts."""
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    return arrays


def save_run_checkpoint(path, cfg, model, optimizer, state, data=None):
    """Weights and buffers, optimizer state, the run state (epoch, step, RNG), the random layers' RNG
    states and the resolved config, atomically; with `data` (a Dataset) also what using the model needs
    without its training data: the task and sizes ("data"), the preprocessing, and the data's fingerprint."""
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": cfg.to_dict(), "state": state,
            "layer_rng": model.rng_state()}  # Dropout's mask streams, so a resumed run draws the same masks
    if data is not None:
        meta["data"] = {"task": data.task, "num_features": data.num_features, "num_outputs": data.num_outputs}
        if data.train is not None:  # what "epoch 20, step 311 of 469" needs without the training data
            meta["data"]["steps_per_epoch"] = -(-len(data.train) // cfg.train.batch_size)
        meta["preprocessing"] = data.preprocessing
        meta["fingerprint"] = data.fingerprint
    save_checkpoint(path, expected_arrays(model, optimizer), meta)


def load_run_meta(path):
    """The metadata of a training checkpoint: format, version, config (a dict), state (a dict)."""
    _, meta = load_checkpoint(path, meta_only=True)
    if (
        not isinstance(meta, dict)
        or meta.get("format") != CHECKPOINT_FORMAT
        or not isinstance(meta.get("config"), dict)
        or not isinstance(meta.get("state"), dict)
    ):
        raise CheckpointError(f"{path}: not a layerwise training checkpoint (its metadata is missing or malformed)")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {str(meta.get('version'))[:40]}; this layerwise reads {CHECKPOINT_VERSION}")
    return meta


def load_run_arrays(path, model, optimizer=None, against="the model"):
    """Load a training checkpoint's arrays into `model` (and `optimizer`; without one, the optimizer
    state is not read). Every array is checked against their state_dict()s before it is read, and
    nothing is copied in unless all of them are valid."""
    expected = expected_arrays(model, optimizer)
    skip = () if optimizer is not None else ("optim/",)
    arrays, _ = load_checkpoint(path, expected, skip=skip, against=against)
    for name, array in arrays.items():  # layerwise never saves NaN or infinity (training checks first)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise CheckpointError(f"{path}: array {name!r} holds NaN or infinite values (corrupt or forged)")
    model.load_state_dict(with_prefix(arrays, "model/"))
    if optimizer is not None:
        optimizer.load_state_dict(with_prefix(arrays, "optim/"))


def load_run_checkpoint(path, meta_only=False):
    """(arrays, meta) of a training checkpoint, for tools and tests that read one without building its
    model: any numeric arrays, MAX_UNEXPECTED_BYTES at most. Loading into a model goes through
    load_run_arrays, which checks each array against the model before reading it."""
    meta = load_run_meta(path)
    return ({} if meta_only else load_checkpoint(path)[0]), meta


def is_run_checkpoint(path):
    try:
        load_run_meta(path)
    except (CheckpointError, StorageError):
        return False
    return True


def with_prefix(arrays, prefix):
    """The entries of `arrays` whose names start with `prefix`, without it ("model/0.W" -> "0.W")."""
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def resolve_checkpoint(target, which="best"):
    """A run directory (-> its best.npz or last.npz) or a checkpoint file."""
    target = Path(target)
    try:
        target.stat()
    except FileNotFoundError:
        raise CheckpointError(f"no run directory or checkpoint at {_short(target)}") from None
    except OSError as e:  # a name too long, a loop of links, no permission
        raise CheckpointError(f"cannot read {_short(target)}: {e.strerror or type(e).__name__}") from None
    if target.is_dir():
        path = target / f"{which}.npz"
        if not path.is_file():
            hint = " (no epoch finished yet: try --checkpoint last)" if (target / "last.npz").is_file() else \
                ": is it a layerwise run directory?"
            raise CheckpointError(f"{target} holds no {which}.npz{hint}")
        return path
    if not target.exists():
        raise CheckpointError(f"no run directory or checkpoint at {target}")
    return target


def _short(path, limit=120):
    text = str(path)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
