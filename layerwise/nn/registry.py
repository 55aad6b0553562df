"""Name -> class tables (LAYERS; LOSSES lives beside the losses), and building a model or a loss from config values."""

import inspect
import math

import numpy as np

from ..errors import ConfigError, did_you_mean
from ..util.memory import PARAMETER_COPIES, check_fits
from .activations import ELU, GELU, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from .batchnorm import BatchNorm
from .dropout import Dropout
from .linear import Linear
from .losses import LOSSES
from .sequential import Sequential

LAYERS = {
    cls.name: cls
    for cls in (Linear, ReLU, LeakyReLU, ELU, GELU, Softplus, Sigmoid, Tanh, Dropout, BatchNorm)
}


def build_model(specs, in_features, out_features=None, *, rng=None, dtype=np.float32, where="model.layers", rows=1):
    """Build a Sequential from layer specs ({"type": name, **kwargs}).

    A layer's in_features is inferred from the previous layer (or the data) when omitted, and checked
    when given, so sizes that do not chain fail here rather than on the first batch. `out_features`
    is what the task needs the last layer to produce. Before anything is allocated, the parameters
    (PARAMETER_COPIES copies of each) and the activations of a forward and backward pass over `rows`
    examples are checked against the memory available.
    """
    if not isinstance(specs, list) or not specs:
        raise ConfigError(f"{where}: expected a non-empty list of layers, e.g. [{{type: linear, out_features: 10}}]")
    plan = []  # (key, class, kwargs) per layer, every size checked before any is allocated
    width, width_from = in_features, "the data"
    parameters = activations = 0
    for i, spec in enumerate(specs):
        key = f"{where}[{i}]"
        if not isinstance(spec, dict) or "type" not in spec:
            raise ConfigError(f"{key}: expected a mapping with a 'type' key, received {spec!r}")
        kind = spec["type"]
        if not isinstance(kind, str) or kind not in LAYERS:
            raise ConfigError(f"{key}.type: unknown layer {kind!r}{did_you_mean(kind, LAYERS)}; valid: {', '.join(LAYERS)}")
        cls = LAYERS[kind]
        kwargs = {k: v for k, v in spec.items() if k != "type"}
        if i == len(specs) - 1 and "out_features" in cls.ARGS and "out_features" not in kwargs and out_features is not None:
            kwargs["out_features"] = out_features  # the last layer's width may be left to the task
        _check_kwargs(cls, kwargs, key)
        if "in_features" in cls.ARGS:
            given = kwargs.setdefault("in_features", width)
            if given != width:
                raise ConfigError(f"{key}.in_features: {given} does not chain: {width_from} gives {width} features")
        plan.append((key, cls, kwargs))
        width, count = cls.sizes(width, **{k: v for k, v in kwargs.items() if k != "in_features"})
        parameters, activations, width_from = parameters + count, activations + width, key
    if out_features is not None and width != out_features:
        raise ConfigError(f"{where}: the last layer gives {width} outputs but the task needs {out_features}")
    itemsize = np.dtype(dtype).itemsize
    check_fits(
        itemsize * (PARAMETER_COPIES * parameters + 2 * rows * activations),
        f"{where}: {len(specs)} layers with {parameters:,} parameters ({PARAMETER_COPIES} copies each) and "
        f"{activations:,} activations per example ({rows:,} examples per forward pass)",
        "use fewer or narrower layers (out_features)",
    )
    layers = []
    for key, cls, kwargs in plan:
        if "dtype" in inspect.signature(cls).parameters:
            kwargs["dtype"] = dtype
        try:
            layers.append(cls(**kwargs))
        except ConfigError as e:  # a value the layer itself refuses, e.g. an unknown init
            raise ConfigError(f"{key}.{e}") from None
    model = Sequential(layers)
    if rng is not None:
        model.reset_parameters(rng)
    return model


def _check_kwargs(cls, kwargs, key):
    """Every argument known to the layer type, of the right type; required ones present and positive."""
    for name, value in kwargs.items():
        if name not in cls.ARGS:
            valid = ", ".join(cls.ARGS) or "none"
            raise ConfigError(f"{key}.{name}: unknown argument for {cls.name}{did_you_mean(name, cls.ARGS)}; valid: {valid}")
        typ = cls.ARGS[name]
        if typ is float:  # an integer is a number too (`p: 0`), a bool or inf/nan is not
            if not _finite_number(value):
                raise ConfigError(f"{key}.{name}: expected a finite number, received {value!r}")
            kwargs[name] = float(value)
            continue
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ConfigError(f"{key}.{name}: expected {typ.__name__}, received {value!r}")
        if typ is int and value < 1:
            raise ConfigError(f"{key}.{name}: expected a positive integer, received {value}")
    required = [p.name for p in inspect.signature(cls).parameters.values()
                if p.default is inspect.Parameter.empty and p.name in cls.ARGS and p.name != "in_features"]
    for name in required:
        if name not in kwargs:
            raise ConfigError(f"{key}.{name}: required for a {cls.name} layer")


def _finite_number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def build_loss(spec, task, where="loss"):
    """A loss from its name (`mse`) or a mapping with its arguments (`{type: huber, delta: 2.0}`)."""
    if isinstance(spec, dict):
        if not isinstance(spec.get("type"), str):
            raise ConfigError(f"{where}: expected a loss name or a mapping with a 'type' key, received {spec!r}")
        name, kwargs = spec["type"], {k: v for k, v in spec.items() if k != "type"}
        type_where = f"{where}.type"
    else:
        name, kwargs, type_where = spec, {}, where
    if not isinstance(name, str) or name not in LOSSES:
        raise ConfigError(f"{type_where}: unknown loss {name!r}{did_you_mean(name, LOSSES)}; valid: {', '.join(LOSSES)}")
    cls = LOSSES[name]
    if cls.task != task:
        fits = [n for n, c in LOSSES.items() if c.task == task]
        raise ConfigError(f"{where}: {name} is a {cls.task} loss but the data is a {task} task; use {', '.join(fits)}")
    _check_kwargs(cls, kwargs, where)
    try:
        return cls(**kwargs)
    except ConfigError as e:  # a value the loss itself refuses, e.g. delta <= 0
        raise ConfigError(f"{where}.{e}") from None


