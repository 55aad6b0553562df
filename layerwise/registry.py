"""Name -> class tables, and building a model, loss and optimizer from config values."""

import inspect

import numpy as np

from .config import _did_you_mean
from .errors import ConfigError
from .layers import LAYERS, Linear
from .losses import LOSSES
from .model import Sequential
from .optim import OPTIMIZERS

# Keyword arguments a config may give each layer type, and the type each must have.
LAYER_ARGS = {
    "linear": {"in_features": int, "out_features": int, "bias": bool, "init": str},
    "relu": {},
    "sigmoid": {},
    "tanh": {},
}


def build_model(specs, in_features, out_features=None, *, rng=None, dtype=np.float32, where="model.layers"):
    """Build a Sequential from layer specs ({"type": name, **kwargs}).

    Linear's in_features is inferred from the previous layer (or the data) when omitted, and checked
    when given, so sizes that do not chain fail here rather than on the first batch. `out_features`
    is what the task needs the last layer to produce.
    """
    if not isinstance(specs, list) or not specs:
        raise ConfigError(f"{where}: expected a non-empty list of layers, e.g. [{{type: linear, out_features: 10}}]")
    layers = []
    width, width_from = in_features, "the data"
    for i, spec in enumerate(specs):
        key = f"{where}[{i}]"
        if not isinstance(spec, dict) or "type" not in spec:
            raise ConfigError(f"{key}: expected a mapping with a 'type' key, received {spec!r}")
        kind = spec["type"]
        if not isinstance(kind, str) or kind not in LAYERS:
            raise ConfigError(f"{key}.type: unknown layer {kind!r}{_did_you_mean(kind, LAYERS)}; valid: {', '.join(LAYERS)}")
        kwargs = {k: v for k, v in spec.items() if k != "type"}
        _check_kwargs(kind, kwargs, key)
        if kind == "linear":
            given = kwargs.setdefault("in_features", width)
            if given != width:
                raise ConfigError(
                    f"{key}.in_features: {given} does not chain: {width_from} gives {width} features"
                )
            if kwargs.get("out_features") is None:
                raise ConfigError(f"{key}.out_features: required for a linear layer")
            if kwargs["out_features"] < 1:
                raise ConfigError(f"{key}.out_features: expected a positive integer, received {kwargs['out_features']}")
            layer = Linear(**kwargs, dtype=dtype)
        else:
            layer = LAYERS[kind](**kwargs)
        layers.append(layer)
        width, width_from = layer.output_features(width), key
    if out_features is not None and width != out_features:
        raise ConfigError(
            f"{where}: the last layer gives {width} outputs but the task needs {out_features}"
        )
    model = Sequential(layers)
    if rng is not None:
        model.reset_parameters(rng)
    return model


def _check_kwargs(kind, kwargs, key):
    allowed = LAYER_ARGS[kind]
    for name, value in kwargs.items():
        if name not in allowed:
            valid = ", ".join(allowed) or "none"
            raise ConfigError(f"{key}.{name}: unknown argument for {kind}{_did_you_mean(name, allowed)}; valid: {valid}")
        typ = allowed[name]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ConfigError(f"{key}.{name}: expected {typ.__name__}, received {value!r}")
    if "init" in kwargs and kwargs["init"] not in Linear.INITS:
        raise ConfigError(f"{key}.init: unknown init {kwargs['init']!r}; valid: {', '.join(Linear.INITS)}")


def build_loss(name, task, where="loss"):
    if name not in LOSSES:
        raise ConfigError(f"{where}: unknown loss {name!r}{_did_you_mean(name, LOSSES)}; valid: {', '.join(LOSSES)}")
    cls = LOSSES[name]
    if cls.task != task:
        fits = [n for n, c in LOSSES.items() if c.task == task]
        raise ConfigError(f"{where}: {name} is a {cls.task} loss but the data is a {task} task; use {', '.join(fits)}")
    return cls()


def build_optimizer(opt_cfg, model):
    cls = OPTIMIZERS[opt_cfg.type]
    accepted = inspect.signature(cls).parameters
    kwargs = {k: getattr(opt_cfg, k) for k in ("lr", "momentum", "nesterov", "weight_decay") if k in accepted}
    return cls(model.named_parameters(), **kwargs)
