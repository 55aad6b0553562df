"""YAML config -> validated dataclasses.

Every error names the file and the dotted key, says what was expected and what was received.
Overrides (`-s optimizer.lr=0.05`) are typed by YAML rules and applied before validation, so they are
checked exactly like the file.
"""

import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .configoptim import check_optimizer, check_schedule
from .configyaml import MAX_CHARS, MAX_DEPTH, ConfigRefused, check_tree, parse_yaml, shorten
from .errors import ConfigError, did_you_mean


def _spec(default, *, minimum=None, above=None, choices=None, doc=""):
    """A dataclass field with its validation rule: value >= minimum, value > above, or one of choices."""
    rule = {"minimum": minimum, "above": above, "choices": choices, "doc": doc}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=rule)
    return field(default=default, metadata=rule)


@dataclass
class MnistData:
    dataset: str = "mnist"
    root: typing.Optional[str] = _spec(None, doc="directory with the four MNIST IDX files (.gz or raw)")
    val_size: int = _spec(5000, minimum=1, doc="training images held out for validation")
    scale: bool = _spec(True, doc="divide pixels by 255")
    normalize: bool = _spec(True, doc="then subtract mean and divide by std")
    mean: float = _spec(0.1307)
    std: float = _spec(0.3081, above=0)
    train_limit: typing.Optional[int] = _spec(None, minimum=2, doc="use only the first N training images")
    test_limit: typing.Optional[int] = _spec(None, minimum=1, doc="use only the first N test images")


@dataclass
class FashionMnistData(MnistData):
    dataset: str = "fashion_mnist"
    root: typing.Optional[str] = _spec(None, doc="directory with the four Fashion-MNIST IDX files (.gz or raw)")
    mean: float = _spec(0.2860)
    std: float = _spec(0.3530, above=0)


@dataclass
class IdxData:
    dataset: str = "idx"
    root: typing.Optional[str] = _spec(None, doc="directory with four IDX files: train/test images (idx3) and labels (idx1)")
    class_names: typing.Optional[typing.List[str]] = _spec(None, doc="one name per label value 0, 1, ...")
    val_size: int = _spec(5000, minimum=1, doc="training images held out for validation")
    scale: bool = _spec(True, doc="divide pixels by 255")
    normalize: bool = _spec(True, doc="then subtract mean and divide by std")
    mean: typing.Optional[float] = _spec(None, doc="null: the training images' pixel mean")
    std: typing.Optional[float] = _spec(None, above=0, doc="null: the training images' pixel std")
    train_limit: typing.Optional[int] = _spec(None, minimum=2, doc="use only the first N training images")
    test_limit: typing.Optional[int] = _spec(None, minimum=1, doc="use only the first N test images")


@dataclass
class RegressionData:
    dataset: str = "regression"
    n_samples: int = _spec(2000, minimum=3, doc="samples in all (train + val + test)")
    weights: typing.List[float] = _spec([3.0, 4.0, 2.0], doc="true w; its length is the input size")
    bias: float = _spec(5.0)
    noise_std: float = _spec(0.5, minimum=0)
    inputs: str = _spec("normal", choices=("normal", "uniform"), doc="X ~ N(0, 1) or U(low, high)")
    low: typing.Optional[typing.List[float]] = _spec(None, doc="per-feature lower bounds (uniform)")
    high: typing.Optional[typing.List[float]] = _spec(None, doc="per-feature upper bounds (uniform)")
    standardize: bool = _spec(False, doc="standardise inputs with the training mean/std")
    val_size: int = _spec(200, minimum=1)
    test_size: int = _spec(200, minimum=1)


@dataclass
class CsvData:
    dataset: str = "csv"
    path: typing.Optional[str] = _spec(None, doc="the .csv or .csv.gz file, with a header row")
    target: typing.Union[str, typing.List[str], None] = _spec(None, doc="column(s) to predict")
    features: typing.Optional[typing.List[str]] = _spec(None, doc="input columns; default every other column")
    test_path: typing.Optional[str] = _spec(None, doc="a separate test file; otherwise test_fraction of path")
    val_fraction: float = _spec(0.1, above=0, doc="share of the rows held out for validation")
    test_fraction: float = _spec(0.2, above=0, doc="share of the rows held out for the test (without test_path)")
    standardize: bool = _spec(True, doc="(x - mean) / std per encoded column, from the training rows")
    standardize_target: bool = _spec(False, doc="regression: train on (y - mean) / std of the training rows")
    missing: str = _spec("error", choices=("error", "drop"), doc="a missing or unparsable cell: error, or drop its row")


@dataclass
class NpzData:
    dataset: str = "npz"
    path: typing.Optional[str] = _spec(None, doc=".npz with arrays x and y (optional x_test, y_test)")
    val_fraction: float = _spec(0.1, above=0)
    test_fraction: float = _spec(0.2, above=0, doc="used when the file has no x_test/y_test")
    standardize: bool = _spec(True, doc="(x - mean) / std per input column, from the training rows")
    standardize_target: bool = _spec(False, doc="regression: train on (y - mean) / std of the training rows")


DATASETS = {"mnist": MnistData, "fashion_mnist": FashionMnistData, "idx": IdxData, "regression": RegressionData,
            "csv": CsvData, "npz": NpzData}

# Data paths a config file may give relative to its own directory (see load_config).
PATH_KEYS = ("root", "path", "test_path")


@dataclass
class ModelConfig:
    layers: typing.List[dict] = _spec([])


@dataclass
class OptimizerConfig:
    """Keys left out (None) take the defaults of configoptim.OPTIMIZER_KEYS / SCHEDULE_KEYS for the
    chosen type and schedule; a key the chosen type or schedule does not use is an error, not silently ignored."""

    type: str = _spec("sgd", choices=("sgd", "adam", "adamw", "rmsprop"))
    lr: typing.Optional[float] = _spec(None, above=0, doc="learning rate")
    momentum: typing.Optional[float] = _spec(None, minimum=0)
    nesterov: typing.Optional[bool] = _spec(None)
    weight_decay: typing.Optional[float] = _spec(None, minimum=0)
    beta1: typing.Optional[float] = _spec(None, minimum=0)
    beta2: typing.Optional[float] = _spec(None, minimum=0)
    eps: typing.Optional[float] = _spec(None, above=0)
    alpha: typing.Optional[float] = _spec(None, minimum=0)
    centered: typing.Optional[bool] = _spec(None)
    clip_norm: typing.Optional[float] = _spec(None, above=0, doc="clip the gradients' global L2 norm to this")
    schedule: str = _spec("constant", choices=("constant", "cosine", "step", "exponential", "plateau"))
    warmup_epochs: int = _spec(0, minimum=0, doc="linear warmup, per step, over the first N epochs")
    step_size: typing.Optional[int] = _spec(None, minimum=1)
    gamma: typing.Optional[float] = _spec(None, above=0)
    factor: typing.Optional[float] = _spec(None, above=0)
    patience: typing.Optional[int] = _spec(None, minimum=0)
    threshold: typing.Optional[float] = _spec(None, minimum=0)
    min_lr: typing.Optional[float] = _spec(None, minimum=0)


@dataclass
class EarlyStoppingConfig:
    patience: int = _spec(5, minimum=1, doc="epochs in a row without improvement before stopping")
    min_delta: float = _spec(0.0, minimum=0, doc="an improvement must beat the best by more than this")


@dataclass
class TrainConfig:
    epochs: int = _spec(10, minimum=1)
    batch_size: int = _spec(128, minimum=1)
    eval_batch_size: int = _spec(5000, minimum=1)
    early_stopping: typing.Optional[EarlyStoppingConfig] = _spec(None, doc="stop when validation stops improving")


@dataclass
class Config:
    name: str = ""
    seed: int = _spec(0, minimum=0)
    output: typing.Optional[str] = _spec(None, doc="run directory; default runs/<name>")
    data: typing.Union[MnistData, FashionMnistData, IdxData, RegressionData, CsvData, NpzData] = field(default_factory=MnistData)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: object = _spec("softmax_cross_entropy", doc="a loss name, or {type: name, **arguments}")
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    source: str = field(default="<config>", repr=False)  # the file it came from, for messages

    def to_dict(self):
        """The resolved config as plain data (what config.yaml in a run directory holds)."""
        d = dataclasses.asdict(self)
        d.pop("source")
        # keys the optimizer type and schedule do not use stay out of config.yaml
        d["optimizer"] = {k: v for k, v in d["optimizer"].items() if v is not None}
        return d

    def to_yaml(self):
        """The resolved config as YAML: what `layerwise config` prints and a run's config.yaml holds."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# --- loading -----------------------------------------------------------------------------------


def load_config(path, overrides=()):
    """Read a YAML file, apply `key.path=value` overrides, validate. Raises ConfigError."""
    path = Path(path)
    try:
        with path.open() as f:
            text = f.read(MAX_CHARS + 1)  # a larger file is refused without reading it all
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file; is it really a YAML config?") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    if len(text) > MAX_CHARS:
        raise ConfigError(f"{path}: longer than {MAX_CHARS:,} characters; a config this large is refused "
                          "(is it really a config?)")
    try:
        raw = parse_yaml(text)
    except ConfigRefused as e:
        raise ConfigError(f"{path}: {_at(e.problem_mark)}{e.problem}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, received {_kind(raw)}")
    raw.setdefault("name", path.stem)
    _relative_to(raw, path.parent)
    return config_from_dict(apply_overrides(raw, overrides, str(path)), str(path))


def _relative_to(raw, directory):
    """Data paths written in a config file are relative to that file's directory (so a config works
    from any working directory); -s values, applied after this, stay relative to the working directory."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for key in PATH_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value and not os.path.isabs(os.path.expanduser(value)):
            data[key] = os.path.join(directory, value)


def config_from_dict(raw, source="<config>"):
    raw = dict(raw)
    data = raw.get("data") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: data: expected a mapping, received {_kind(data)}")
    dataset = data.get("dataset", "mnist")
    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise ConfigError(
            f"{source}: data.dataset: unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}"
        )
    cfg = _build(Config, raw, "", source, {"data": DATASETS[dataset]})
    cfg.source = source
    if not cfg.name:
        cfg.name = Path(source).stem
    if cfg.output is None:
        cfg.output = str(Path("runs") / cfg.name)
    cfg.output = os.path.expanduser(cfg.output)
    for key in PATH_KEYS:
        # Absolute from here on, so a run's config.yaml names the same files from any directory.
        if isinstance(getattr(cfg.data, key, None), str):
            setattr(cfg.data, key, os.path.abspath(os.path.expanduser(getattr(cfg.data, key))))
    _check_loss(cfg.loss, source)
    check_optimizer(cfg.optimizer, source)
    check_schedule(cfg.optimizer, cfg.train, source)
    _check_idx(cfg.data, source)
    _check_regression(cfg.data, source)
    _check_files(cfg.data, source)
    return cfg


def apply_overrides(raw, overrides, source):
    """Set each `a.b.c=value` (value parsed as YAML) in a copy of the nested dict `raw`.

    `raw` and the result are checked by `check_tree` (size, depth, strings), so whatever reaches
    validation is bounded and printable, whether it came from a file, a checkpoint or the command line.
    """
    check_tree(raw, source)  # before the copy: a checkpoint's config is bounded like a file's
    raw = _deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {shorten(item)!r}: expected key.path=value, e.g. optimizer.lr=0.05")
        try:
            value = parse_yaml(text)
        except ConfigRefused as e:
            raise ConfigError(f"override {shorten(item)!r}: {e.problem}") from None
        except yaml.YAMLError:
            raise ConfigError(f"override {shorten(item)!r}: the value is not valid YAML") from None
        parts = key.split(".")
        if len(parts) > MAX_DEPTH:
            raise ConfigError(f"override {shorten(item)!r}: the key has {len(parts)} parts; configs nest at most {MAX_DEPTH} levels")
        node = raw
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                # ASCII digits only: str.isdigit() also accepts '²' and '٣', which int() refuses.
                if not re.fullmatch(r"[0-9]+", part) or int(part) >= len(node):
                    raise ConfigError(
                        f"override {shorten(item)!r}: {'.'.join(parts[:i])} has {len(node)} entries; {shorten(part)!r} is not an index"
                    )
                part = int(part)
            elif not isinstance(node, dict):
                raise ConfigError(f"override {shorten(item)!r}: {'.'.join(parts[:i])} is not a mapping")
            if last:
                node[part] = value
            else:
                if isinstance(node, dict) and not isinstance(node.get(part), (dict, list)):
                    node[part] = {}
                node = node[part]
    if overrides:
        check_tree(raw, source)
    return raw


def _deepcopy(x):
    """A copy of plain nested data (depth bounded by check_tree, so the recursion is too)."""
    if isinstance(x, dict):
        return {k: _deepcopy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_deepcopy(v) for v in x]
    return x


def _at(mark):
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""


def _build(cls, raw, prefix, source, choose=None):
    """Validate the mapping `raw` into dataclass `cls`; `choose` picks the class of a union field."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'}: expected a mapping, received {_kind(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    for key in raw:
        if key not in fields:
            raise ConfigError(f"{source}: {prefix}{key}: unknown key{did_you_mean(key, fields)}; valid: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        if name not in raw:
            continue
        key = prefix + name
        typ = (choose or {}).get(name, hints[name])
        if typing.get_origin(typ) in (typing.Union, types.UnionType) and raw[name] is not None:
            typ = next((a for a in typing.get_args(typ) if dataclasses.is_dataclass(a)), typ)  # Optional[section]
        if dataclasses.is_dataclass(typ):
            values[name] = _build(typ, raw[name], key + ".", source)
        else:
            values[name] = _check_value(raw[name], typ, f.metadata, key, source)
    return cls(**values)


def _check_value(value, typ, rule, key, source):
    def fail(expected):
        raise ConfigError(f"{source}: {key}: expected {expected}, received {value!r}")

    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None:
            return None
        if len(args) > 1:  # e.g. a column name or a list of them
            if isinstance(value, list) and any(typing.get_origin(a) in (list, typing.List) for a in args):
                return _check_value(value, next(a for a in args if typing.get_origin(a) in (list, typing.List)), rule, key, source)
            if isinstance(value, str) and str in args:
                return _check_value(value, str, rule, key, source)
            fail("a string or a list of strings")
        return _check_value(value, args[0], rule, key, source)
    if origin in (list, typing.List):
        if not isinstance(value, list):
            fail("a list")
        (item,) = typing.get_args(typ)
        return [_check_value(v, item, {}, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if typ is bool:
        if not isinstance(value, bool):
            fail("true or false")
    elif typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail("an integer")
    elif typ is float:
        try:
            finite = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
        except OverflowError:  # an integer too large for a float
            finite = False
        if not finite:
            fail("a finite number")
        value = float(value)
    elif typ is str:
        if not isinstance(value, str):
            fail("a string")
    elif typ is dict:
        if not isinstance(value, dict):
            fail("a mapping")
    if rule.get("choices") and value not in rule["choices"]:
        fail("one of " + ", ".join(rule["choices"]))
    if rule.get("minimum") is not None and not value >= rule["minimum"]:
        fail(f"a value >= {rule['minimum']}")
    if rule.get("above") is not None and not value > rule["above"]:
        fail(f"a value > {rule['above']}")
    return value


def _check_loss(loss, source):
    """The loss is a name or a mapping with a string 'type'; names and arguments are checked by the registry."""
    if isinstance(loss, str) or (isinstance(loss, dict) and isinstance(loss.get("type"), str)):
        return
    raise ConfigError(
        f"{source}: loss: expected a loss name (softmax_cross_entropy) or a mapping with a 'type' key like "
        f"{{type: huber, delta: 1.0}}, received {loss!r}"
    )


def _check_idx(data, source):
    if not isinstance(data, IdxData):
        return
    if data.root is None:
        raise ConfigError(f"{source}: data.root: the idx dataset reads four IDX files from a directory; "
                          "set data.root to it (e.g. -s data.root=path/to/emnist)")
    names = data.class_names
    if names is not None:
        if not names or any(not name.strip() for name in names):
            raise ConfigError(f"{source}: data.class_names: expected a non-empty list of non-empty names, received {names!r}")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ConfigError(f"{source}: data.class_names: {repeated[0]!r} appears more than once; each class needs its own name")


def _check_regression(data, source):
    if not isinstance(data, RegressionData):
        return
    if data.inputs != "uniform" and (data.low is not None or data.high is not None):
        raise ConfigError(f"{source}: data.low/data.high: only used with data.inputs: uniform (inputs is {data.inputs!r})")
    n = len(data.weights)
    if n == 0:
        raise ConfigError(f"{source}: data.weights: expected at least one weight, received []")
    if data.inputs == "uniform":
        for key in ("low", "high"):
            bounds = getattr(data, key)
            if bounds is None or len(bounds) != n:
                raise ConfigError(
                    f"{source}: data.{key}: uniform inputs need {n} bounds (one per weight), received {bounds!r}"
                )
        if any(lo >= hi for lo, hi in zip(data.low, data.high)):
            raise ConfigError(f"{source}: data.low: every bound must be below data.high; received {data.low} and {data.high}")
        if not all(math.isfinite(hi - lo) for lo, hi in zip(data.low, data.high)):
            raise ConfigError(
                f"{source}: data.high: each range high - low must be a finite float64 (below about 1.8e308); "
                f"received {data.low} and {data.high}"
            )
    if data.val_size + data.test_size >= data.n_samples:
        raise ConfigError(
            f"{source}: data.n_samples: {data.n_samples} leaves no training samples after "
            f"val_size={data.val_size} and test_size={data.test_size}"
        )


def _check_files(data, source):
    if not isinstance(data, (CsvData, NpzData)):
        return
    if data.path is None:
        example = "data.csv -s data.target=label" if isinstance(data, CsvData) else "arrays.npz"
        raise ConfigError(f"{source}: data.path: required for data.dataset: {data.dataset}; e.g. -s data.path={example}")
    if data.val_fraction + (data.test_fraction if getattr(data, "test_path", None) is None else 0) >= 1:
        raise ConfigError(
            f"{source}: data.val_fraction: {data.val_fraction} + data.test_fraction {data.test_fraction} leave no "
            f"training rows; expected a sum below 1"
        )
    if isinstance(data, CsvData):
        if data.target is None or data.target == [] or data.target == "":
            raise ConfigError(f"{source}: data.target: required: the column (or list of columns) to predict, e.g. -s data.target=label")
        targets = [data.target] if isinstance(data.target, str) else data.target
        if len(set(targets)) != len(targets):
            raise ConfigError(f"{source}: data.target: a column is named twice in {targets}")
        if data.features is not None:
            if not data.features:
                raise ConfigError(f"{source}: data.features: expected at least one column, received []")
            both = [name for name in data.features if name in targets]
            if both:
                raise ConfigError(f"{source}: data.features: {both[0]!r} is also the target; a column is either input or target")
            if len(set(data.features)) != len(data.features):
                raise ConfigError(f"{source}: data.features: a column is named twice in {data.features}")


def _kind(value):
    return {dict: "a mapping", list: "a list", str: "a string"}.get(type(value), repr(value))
