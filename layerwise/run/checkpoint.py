"""Training checkpoints (last.npz, best.npz): the model, optimizer and run state, and what using the
model needs without its training data. The bytes are read and written by util/npz.py."""

from pathlib import Path

import numpy as np

from ..errors import CheckpointError, ConfigError, StorageError
from ..util.npz import MAX_META_CHARS, load_checkpoint, meta_text, parse_meta, save_checkpoint
from ..util.openfile import kind_of

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
    save_checkpoint(path, expected_arrays(model, optimizer), run_meta(cfg, model, state, data))


def run_meta(cfg, model, state, data=None):
    """The metadata of a training checkpoint (save_run_checkpoint's)."""
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": cfg.to_dict(), "state": state,
            "layer_rng": model.rng_state()}  # Dropout's mask streams, so a resumed run draws the same masks
    if data is not None:
        meta["data"] = {"task": data.task, "num_features": data.num_features, "num_outputs": data.num_outputs}
        if data.train is not None:  # what "epoch 20, step 311 of 469" needs without the training data
            meta["data"]["steps_per_epoch"] = -(-len(data.train) // cfg.train.batch_size)
        meta["preprocessing"] = data.preprocessing
        meta["fingerprint"] = data.fingerprint
    return meta


# The longest history row an epoch can add to the metadata: every column a run can have, each value the
# longest float JSON writes, plus what else grows (best, early stopping, schedule state) as slack.
_WORST_ROW = {k: -2.2250738585072014e-308 for k in (
    "epoch", "lr", "train_loss", "grad_norm_mean", "grad_norm_max", "val_loss", "val_accuracy", "val_mse", "val_mae",
    "val_r2", "val_precision", "val_recall", "val_f1", "val_auc", "seconds")}
ROW_CHARS = len(meta_text([_WORST_ROW]))
SLACK_CHARS = 4096


def _strings(tree):
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def check_storable(cfg, model, state, data):
    """Refuse, before training starts, a run whose own checkpoints could not be read back: its metadata
    (config, preprocessing, the run state) is put through the reader's parse (util/npz.py parse_meta,
    util/bounds.py's limits), with room for one history row per epoch still to train."""
    from ..config.yaml_loader import MAX_CHARS

    # config.yaml, read back by eval, --resume and compare as a config file is. Its text is at least as
    # long as its strings, which are counted first (dumping megabytes of YAML takes seconds).
    strings = sum(len(v) for v in _strings(cfg.to_dict()))
    written = cfg.to_yaml() if strings <= MAX_CHARS else "x" * strings
    if len(written) > MAX_CHARS:
        raise ConfigError(f"{cfg.source}: the resolved config is {len(written):,} characters as YAML; a config file "
                          f"is read back up to {MAX_CHARS:,}: shorten its names")
    text = meta_text(run_meta(cfg, model, state, data))
    rows = max(cfg.train.epochs - len(state.get("history", ())), 0)
    size = len(text) + rows * ROW_CHARS + SLACK_CHARS
    if size > MAX_META_CHARS:
        raise ConfigError(
            f"{cfg.source}: this run's checkpoints would hold {size:,} characters of metadata after "
            f"{cfg.train.epochs:,} epochs ({len(text):,} for the config and data description, ~{ROW_CHARS} per "
            f"epoch of history); at most {MAX_META_CHARS:,} can be read back: use fewer train.epochs or "
            f"shorter names")
    try:
        parse_meta(text, cfg.source)
    except CheckpointError as e:
        raise ConfigError(f"{e}; its checkpoints could not be read back, so the run is not started") from None


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
        kind = kind_of(path)
        if kind not in (None, "missing"):
            raise CheckpointError(f"{path}: not a regular file ({kind}); a checkpoint is a regular file")
        if kind == "missing":
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
