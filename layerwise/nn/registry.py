"""Name -> class tables (LAYERS; LOSSES lives beside the losses), and building a model or a loss from config values."""

import inspect
import math

import numpy as np

from ..errors import ConfigError, did_you_mean
from ..util.memory import PARAMETER_COPIES, check_fits
from .activations import ELU, GELU, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from .batchnorm import BatchNorm
from .conv import Conv2d, describe_shape
from .dropout import Dropout
from .linear import Linear
from .losses import LOSSES
from .pool import AvgPool2d, GlobalAvgPool, MaxPool2d
from .sequential import Sequential
from .shape import Flatten

LAYERS = {
    cls.name: cls
    for cls in (Linear, ReLU, LeakyReLU, ELU, GELU, Softplus, Sigmoid, Tanh, Dropout, BatchNorm,
                Conv2d, MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten)
}


def is_spatial(specs):
    """Whether a layer list holds a layer that takes images (conv2d, the pools)."""
    return isinstance(specs, list) and any(
        isinstance(s, dict) and isinstance(s.get("type"), str) and getattr(LAYERS.get(s["type"]), "SPATIAL", False)
        for s in specs
    )


def build_model(specs, in_features, out_features=None, *, rng=None, dtype=np.float32, where="model.layers", rows=1,
                input_shape=None):
    """Build a Sequential from layer specs ({"type": name, **kwargs}).

    A layer's in_features (in_channels) is inferred from the previous layer (or the data) when omitted,
    and checked when given, so sizes that do not chain fail here rather than on the first batch.
    `out_features` is what the task needs the last layer to produce. A model with spatial layers (conv2d,
    pools) takes images: `input_shape` (C, H, W) is then the shape of one example, and the shapes chain as
    (C, H, W) tuples until a flatten (or global_avgpool) turns them into features. Before anything is
    allocated, the parameters (PARAMETER_COPIES copies of each) and the activations of a forward and
    backward pass over `rows` examples (with the convolutions' im2col buffers) are checked against the
    memory available.
    """
    if not isinstance(specs, list) or not specs:
        raise ConfigError(f"{where}: expected a non-empty list of layers, e.g. [{{type: linear, out_features: 10}}]")
    plan = []  # (key, class, kwargs) per layer, every size checked before any is allocated
    spatial = is_spatial(specs)
    if spatial and input_shape is None:
        raise ConfigError(f"{where}: convolution and pooling layers need image data (channels x height x width); "
                          f"this data gives rows of {in_features} features")
    width = tuple(int(d) for d in input_shape) if spatial else in_features
    width_from = "the data"
    parameters = activations = fixed_bytes = 0
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
        image = isinstance(width, tuple)
        if "in_features" in cls.ARGS:
            if image and not getattr(cls, "PER_CHANNEL", False):
                raise ConfigError(f"{key}: {kind} takes rows of features but receives images {describe_shape(width)} "
                                  f"from {width_from}; put a flatten (or global_avgpool) before it")
            features = width[0] if image else width
            given = kwargs.setdefault("in_features", features)
            if given != features:
                what = "channels" if image else "features"
                raise ConfigError(f"{key}.in_features: {given} does not chain: {width_from} gives {features} {what}")
        if "in_channels" in cls.ARGS and image:
            given = kwargs.setdefault("in_channels", width[0])
            if given != width[0]:
                raise ConfigError(f"{key}.in_channels: {given} does not chain: {width_from} gives "
                                  f"{describe_shape(width)} ({width[0]} channels)")
        plan.append((key, cls, kwargs))
        shape_kwargs = {k: v for k, v in kwargs.items() if k not in ("in_features", "in_channels")}
        try:
            extra = cls.scratch(width, **shape_kwargs) if hasattr(cls, "scratch") else 0
            if hasattr(cls, "block_bytes"):  # buffers whose size does not grow with the batch
                fixed_bytes += cls.block_bytes(width, itemsize=np.dtype(dtype).itemsize, **shape_kwargs)
            width, count = cls.sizes(width, **shape_kwargs)
        except ConfigError as e:  # sizes that do not chain: the layer names the shapes
            raise ConfigError(f"{key}: {e}") from None
        parameters, width_from = parameters + count, key
        activations += int(np.prod(width)) + extra
    if out_features is not None and width != out_features:
        raise ConfigError(f"{where}: the last layer gives {describe_shape(width) if isinstance(width, tuple) else width} outputs but the task needs "
                          f"{out_features}" + ("; end with flatten and a linear layer" if isinstance(width, tuple) else ""))
    itemsize = np.dtype(dtype).itemsize
    check_fits(
        itemsize * (PARAMETER_COPIES * parameters + 2 * rows * activations) + fixed_bytes,
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
    model = Sequential(layers, input_shape=tuple(int(d) for d in input_shape) if spatial else None)
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
        zero_ok = name in getattr(cls, "ZERO_OK", ())  # conv2d's padding may be 0
        if typ is int and value < (0 if zero_ok else 1):
            kind = "non-negative" if zero_ok else "positive"
            raise ConfigError(f"{key}.{name}: expected a {kind} integer, received {value}")
    required = [p.name for p in inspect.signature(cls).parameters.values()
                if p.default is inspect.Parameter.empty and p.name in cls.ARGS and p.name not in ("in_features", "in_channels")]
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


