"""The fully resolved config (`layerwise config`), and the model a config or run describes, built
without loading the training data.

A model's shapes depend on the data only through two numbers, its input features and its outputs.
For MNIST-like images and the synthetic regression those follow from the config alone, so `config`
and `summary` answer instantly; any other dataset is loaded to find them (`feature_counts`).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config.schema import load_config
from ..errors import CheckpointError, ConfigError
from ..util.openfile import kind_of
from .checkpoint import load_run_checkpoint, with_prefix

# Datasets whose shapes are known from the config: dataset -> (features, outputs, task, image shape)
IMAGE_SHAPES = {"mnist": (784, 10, "classification", (1, 28, 28)),
                "fashion_mnist": (784, 10, "classification", (1, 28, 28))}


def feature_counts(cfg, echo=print):
    """(input features, outputs, task, image shape (C, H, W) or None) of the config's data, loading it
    only when they are not known."""
    dataset = cfg.data.dataset
    if dataset in IMAGE_SHAPES:
        return IMAGE_SHAPES[dataset]
    if dataset == "regression":
        return len(cfg.data.weights), 1, "regression", None
    from ..data.load import load_dataset
    from ..nn.losses import task_of
    from .build import DATA_STREAM

    data = load_dataset(cfg.data, seed=[cfg.seed, DATA_STREAM], source=cfg.source, echo=echo, task=task_of(cfg.loss))
    return data.num_features, data.num_outputs, data.task, data.input_shape


@dataclass
class Target:
    """What `summary` and `trace` look at: a config's model, or a run's trained one."""

    cfg: object
    model: object
    loss: object
    optimizer: object
    features: int  # input width
    task: str
    input_shape: tuple = None  # (C, H, W) of one example for a model with convolution layers
    run: dict = None  # {"checkpoint", "epoch"} for a run directory


def build_uninitialised(cfg, echo=print):
    """A Target for `cfg` with zero weights, checked exactly as `train` checks it; cfg.model.layers
    becomes the resolved layer list (as training.build does)."""
    from ..nn.registry import build_loss, build_model
    from ..optim.optimizers import build_optimizer

    features, outputs, task, shape = feature_counts(cfg, echo)
    try:
        model = build_model(cfg.model.layers, features, outputs, where=f"{cfg.source}: model.layers",
                            input_shape=shape)
    except MemoryError as e:
        raise ConfigError(f"{cfg.source}: not enough memory for this model ({e})") from None
    loss = build_loss(cfg.loss, task, where=f"{cfg.source}: loss")
    cfg.model.layers = model.config()
    return Target(cfg, model, loss, build_optimizer(cfg.optimizer, model), features, task,
                  input_shape=model.input_shape)


def resolved_yaml(config_path, overrides=(), echo=print):
    """What `layerwise config` prints: the config with every default and layer argument filled in."""
    cfg = load_config(config_path, overrides)
    build_uninitialised(cfg, echo)
    return cfg.to_yaml()


def run_config(target, overrides=(), which="best"):
    """A RUN directory -> (its config.yaml with the overrides, the path of its `which`.npz, or last.npz
    when no epoch has finished yet): how summary, trace and gradcheck read a run."""
    target = Path(target)
    path = target / f"{which}.npz"
    if kind_of(path) not in (None, "missing"):
        raise CheckpointError(f"{path}: not a regular file ({kind_of(path)}); a checkpoint is a regular file")
    if not path.is_file() and (target / "last.npz").is_file():
        path = target / "last.npz"
    if not path.is_file():
        names = f"{which}.npz" + (" or last.npz" if which != "last" else "")
        raise CheckpointError(f"{target} holds no {names}: is it a layerwise run directory?")
    if not (target / "config.yaml").is_file():
        raise CheckpointError(f"{target} holds no config.yaml: is it a layerwise run directory?")
    return load_config(target / "config.yaml", overrides), path


def load_run_weights(path, model, cfg):
    """The model arrays of checkpoint `path` into `model` (any float dtype); returns the checkpoint's meta."""
    arrays, meta = load_run_checkpoint(path)
    try:
        model.load_state_dict(with_prefix(arrays, "model/"))
    except CheckpointError as e:
        raise CheckpointError(f"{path} does not match the model in {cfg.source}: {e}") from None
    return meta


def load_target(target, overrides=(), which="best", initialise=True, echo=print):
    """A CONFIG file or a RUN directory -> Target.

    A config's model is initialised from its seed, as `train` would start it; a run's weights come
    from its `which`.npz (falling back to last.npz when no epoch has finished yet). The run's own
    config.yaml is used, so the data is never needed here.
    """
    target = Path(target)
    if not target.is_dir():
        cfg = load_config(target, overrides)
        found = build_uninitialised(cfg, echo)
        if initialise:
            from .build import INIT_STREAM

            found.model.reset_parameters(np.random.default_rng([cfg.seed, INIT_STREAM]))
        return found
    cfg, path = run_config(target, overrides, which)
    found = build_uninitialised(cfg, echo)
    meta = load_run_weights(path, found.model, cfg)
    epoch = meta["state"].get("epoch", 0) if isinstance(meta.get("state"), dict) else 0
    schedule = meta["state"].get("schedule") if isinstance(meta.get("state"), dict) else None
    found.run = {"checkpoint": str(path), "epoch": epoch, "schedule": schedule}
    return found
