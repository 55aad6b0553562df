"""Everything a run is made of, built from its config: data, model (initialised from the seed), loss and
optimizer; and the check that a checkpoint was trained on the data at hand."""

import numpy as np

from ..config.schema import Config
from ..data.augment import check_augment
from ..data.dataset import SPLITS
from ..data.fingerprint import fingerprint, mismatch, valid_fingerprint
from ..data.load import load_dataset
from ..errors import CheckpointError, ConfigError, DataError
from ..nn.losses import task_of
from ..nn.registry import build_loss, build_model
from ..optim.optimizers import build_optimizer

# Independent random streams from one seed: the data (regression), the weight init, the shuffling,
# and the random layers (Dropout i draws from [seed, LAYER_STREAM, i]).
DATA_STREAM, INIT_STREAM, SHUFFLE_STREAM, LAYER_STREAM = 0, 1, 2, 3


def new_model(cfg, data, dtype=np.float32):
    """The config's model for this data, initialised from the seed: the same weights every time."""
    model = build_model(
        cfg.model.layers, data.num_features, data.num_outputs,
        rng=np.random.default_rng([cfg.seed, INIT_STREAM]), dtype=dtype, where=f"{cfg.source}: model.layers",
        rows=data.batch_rows(cfg.train), input_shape=data.input_shape,
    )
    model.seed_random([cfg.seed, LAYER_STREAM])
    return model


def build(cfg: Config, echo=print, dtype=np.float32, splits=SPLITS, preprocessing=None, known=None):
    """Data, model (initialised from cfg.seed), loss and optimizer for a config.

    `splits` and `preprocessing` are load_dataset's (eval reads only the split it scores). The data's
    fingerprint is computed here, for every dataset that reads files; `known`, a checkpoint's stored
    fingerprint, spares re-hashing files whose path, size and mtime it recorded.
    """
    try:
        data = load_dataset(cfg.data, seed=[cfg.seed, DATA_STREAM], source=cfg.source, echo=echo,
                            task=task_of(cfg.loss), splits=splits, preprocessing=preprocessing)
        if data.fingerprint is None:
            data.fingerprint = fingerprint(data.sources, known)
        try:  # config against data, before anything is written (a shift as large as the images)
            check_augment(cfg.data, data)
        except ConfigError as e:
            raise ConfigError(f"{cfg.source}: {e}") from None
        model = new_model(cfg, data, dtype)
        loss = build_loss(cfg.loss, data.task, where=f"{cfg.source}: loss")
        weights = (data.preprocessing or {}).get("class_weight")
        if weights is not None and hasattr(loss, "class_weight"):  # data.class_weight: balanced
            loss.class_weight = np.asarray(weights, np.float64)
        cfg.model.layers = model.config()  # resolved: every layer's arguments, in_features inferred
    except MemoryError as e:
        raise ConfigError(f"{cfg.source}: not enough memory for this data and model ({e})") from None
    return data, model, loss, build_optimizer(cfg.optimizer, model)


def describe_data(cfg):
    """What the header line says is being trained: the dataset, and where it comes from when that is
    the user's own directory or file."""
    where = getattr(cfg.data, "root", None) if cfg.data.dataset == "idx" else getattr(cfg.data, "path", None)
    return f"{cfg.data.dataset} ({where})" if where else cfg.data.dataset


def check_fingerprint(data, meta, path, advice):
    """Refuse data whose fingerprint differs from the one `meta` (a checkpoint's) recorded."""
    stored = meta.get("fingerprint")
    if stored is None:
        return  # a checkpoint from before runs recorded their data: nothing to compare
    if not valid_fingerprint(stored):
        raise CheckpointError(f"{path}: its data fingerprint is malformed; corrupt or forged?")
    problem = mismatch(data.fingerprint, stored)
    if problem:
        raise DataError(f"{path} was trained on other data: {problem}; {advice}")
