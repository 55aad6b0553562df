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

from ..errors import ConfigError, did_you_mean
from ..util.openfile import NotRegularFile, open_regular
from .data import (  # noqa: F401 - the dataset classes are imported from here too
    DATASETS,
    PATH_KEYS,
    CsvData,
    FashionMnistData,
    IdxData,
    MnistData,
    NpzData,
    RegressionData,
    check_data,
)
from .data import (
    spec as _spec,
)
from .optim import check_optimizer, check_schedule
from .yaml_loader import (
    MAX_CHARS,
    MAX_DEPTH,
    ConfigRefused,
    check_tree,
    parse_yaml,
    shorten,
)


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
    weight_decay_choices: typing.Optional[typing.List[float]] = _spec(
        None, doc="instead of weight_decay: the first pass is trained once per value and the best on validation is kept")
    beta1: typing.Optional[float] = _spec(None, minimum=0)
    beta2: typing.Optional[float] = _spec(None, minimum=0)
    eps: typing.Optional[float] = _spec(None, above=0)
    alpha: typing.Optional[float] = _spec(None, minimum=0)
    centered: typing.Optional[bool] = _spec(None)
    clip_norm: typing.Optional[float] = _spec(None, above=0, doc="clip the gradients' global L2 norm to this")
    decay_rows: typing.Optional[int] = _spec(None, minimum=1, doc="with more training rows than this, weight_decay "
                                             "is scaled by decay_rows / rows (a prior that weakens with more data)")
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
    monitor: typing.Optional[str] = _spec(None, choices=("val_loss", "val_accuracy", "val_f1", "val_mse", "val_r2"),
                                          doc="what picks best.npz and drives early stopping and plateau; "
                                              "null: val_accuracy (classification) or val_mse (regression)")
    min_steps: int = _spec(0, minimum=0, doc="early stopping waits until this many steps are taken")
    refit: bool = _spec(False, doc="after the first pass, train again from the initial weights on the training + "
                                   "validation rows for the best epoch's count of epochs; best.npz is that model")


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
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)  # é as é, not "\xE9"


# --- loading -----------------------------------------------------------------------------------


def load_config(path, overrides=()):
    """Read a YAML file, apply `key.path=value` overrides, validate. Raises ConfigError."""
    path = Path(path)
    try:
        with open_regular(path, "r", encoding="utf-8") as f:  # never the locale's encoding; never a FIFO
            text = f.read(MAX_CHARS + 1)  # a larger file is refused without reading it all
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (IsADirectoryError, NotRegularFile) as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}; a config is a YAML file") from None
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
    merged = apply_overrides(raw, overrides, str(path))
    _name_run_after_data(raw, merged)
    return config_from_dict(merged, str(path))


def _name_run_after_data(raw, merged):
    """A config whose data file is given on the command line (-s data.path=penguins.csv, as the shipped
    tabular configs are used) trains by default into runs/<config name>-<data file name>, so a second
    data file gets its own run directory instead of being refused."""
    data, given = merged.get("data"), raw.get("data")
    path = data.get("path") if isinstance(data, dict) else None
    before = given.get("path") if isinstance(given, dict) else None
    if merged.get("output") is not None or not isinstance(path, str) or not path or path == before:
        return
    stem = os.path.basename(os.path.normpath(path))
    for suffix in (".gz", ".csv", ".npz", ".npy", ".tsv"):
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
    name = f"{merged.get('name')}-{stem}"
    name = name.encode()[:200].decode(errors="ignore")  # a file name within NAME_MAX, with room for temporaries
    merged["output"] = str(Path("runs") / name)


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
    check_data(cfg.data, source)
    return cfg


# Keys that say the same thing two ways: an override of one drops the other (a sweep axis on
# optimizer.weight_decay over a config with weight_decay_choices, or the other way round).
REPLACES = {"optimizer.weight_decay": "weight_decay_choices", "optimizer.weight_decay_choices": "weight_decay"}


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
                # At most 18 digits: int() of a 5000-digit string raises ValueError (the int digit limit).
                if not re.fullmatch(r"[0-9]{1,18}", part) or int(part) >= len(node):
                    raise ConfigError(
                        f"override {shorten(item)!r}: {'.'.join(parts[:i])} has {len(node)} entries; {shorten(part)!r} is not an index"
                    )
                part = int(part)
            elif not isinstance(node, dict):
                raise ConfigError(f"override {shorten(item)!r}: {'.'.join(parts[:i])} is not a mapping")
            if last:
                node[part] = value
                if key in REPLACES and value is not None:  # the command line's choice wins over the file's
                    node.pop(REPLACES[key], None)
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
            fail("one of " + ", ".join(rule["choices"]) if rule.get("choices") else "a string")
    elif typ is dict:
        if not isinstance(value, dict):
            fail("a mapping")
    if rule.get("choices") and value not in rule["choices"]:
        fail("one of " + ", ".join(rule["choices"]))
    if rule.get("minimum") is not None and not value >= rule["minimum"]:
        fail(f"a value >= {rule['minimum']}")
    if rule.get("above") is not None and not value > rule["above"]:
        fail(f"a value > {rule['above']}")
    if rule.get("maximum") is not None and not value <= rule["maximum"]:
        fail(f"a value <= {rule['maximum']}")
    return value


def _check_loss(loss, source):
    """The loss is a name or a mapping with a string 'type'; names and arguments are checked by the registry."""
    if isinstance(loss, str) or (isinstance(loss, dict) and isinstance(loss.get("type"), str)):
        return
    raise ConfigError(
        f"{source}: loss: expected a loss name (softmax_cross_entropy) or a mapping with a 'type' key like "
        f"{{type: huber, delta: 1.0}}, received {loss!r}"
    )


def _kind(value):
    return {dict: "a mapping", list: "a list", str: "a string"}.get(type(value), repr(value))
