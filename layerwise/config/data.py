"""The `data` section of a config: one dataclass per dataset kind, and the checks across its keys.

Field rules (minimum, maximum, above, choices) are checked by config._build; what spans several keys is here.
"""

import math
import typing
from dataclasses import dataclass, field

from ..errors import ConfigError


def spec(default, *, minimum=None, maximum=None, above=None, choices=None, doc=""):
    """A dataclass field with its validation rule: minimum <= value <= maximum, value > above, or one of choices."""
    rule = {"minimum": minimum, "maximum": maximum, "above": above, "choices": choices, "doc": doc}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=rule)
    return field(default=default, metadata=rule)


# How `predict` prepares PNG/JPEG files for an image model (stored in its checkpoint): digit = MNIST's
# preparation (crop to the ink, fit 20x20, centre of mass); resize = the whole picture resized (inverted
# when its background is light), as Fashion-MNIST's items fill their frame; auto: digit, resize for fashion_mnist.
IMAGE_FILES = ("auto", "digit", "resize")
IMAGE_FILES_DOC = "PNG/JPEG inputs: digit (crop to the ink, centre of mass) | resize | auto (by dataset)"


@dataclass
class MnistData:
    dataset: str = "mnist"
    root: typing.Optional[str] = spec(None, doc="directory with the four MNIST IDX files (.gz or raw)")
    val_size: int = spec(5000, minimum=1, doc="training images held out for validation")
    scale: bool = spec(True, doc="divide pixels by 255")
    normalize: bool = spec(True, doc="then subtract mean and divide by std")
    mean: float = spec(0.1307)
    std: float = spec(0.3081, above=0)
    train_limit: typing.Optional[int] = spec(None, minimum=2, doc="use only the first N training images")
    test_limit: typing.Optional[int] = spec(None, minimum=1, doc="use only the first N test images")
    image_files: str = spec("auto", choices=IMAGE_FILES, doc=IMAGE_FILES_DOC)
    augment_shift: int = spec(0, minimum=0, doc="augmentation: shift each training image by up to N pixels each way (pad + crop)")
    augment_flip: bool = spec(False, doc="augmentation: mirror training images left-right at random (clothes, not digits)")
    augment_rotate: float = spec(0.0, minimum=0, maximum=180, doc="augmentation: turn each training image by up to N degrees either way (bilinear; 10 is usual for digits)")
    augment_erase: float = spec(0.0, minimum=0, maximum=1, doc="augmentation: with this probability, blank a random rectangle (2-33 % of the image) of each training image")


@dataclass
class FashionMnistData(MnistData):
    dataset: str = "fashion_mnist"
    root: typing.Optional[str] = spec(None, doc="directory with the four Fashion-MNIST IDX files (.gz or raw)")
    mean: float = spec(0.2860)
    std: float = spec(0.3530, above=0)


@dataclass
class IdxData:
    dataset: str = "idx"
    root: typing.Optional[str] = spec(None, doc="directory with four IDX files: train/test images (idx3) and labels (idx1)")
    class_names: typing.Optional[typing.List[str]] = spec(None, doc="one name per label value 0, 1, ...")
    val_size: int = spec(5000, minimum=1, doc="training images held out for validation")
    scale: bool = spec(True, doc="divide pixels by 255")
    normalize: bool = spec(True, doc="then subtract mean and divide by std")
    mean: typing.Optional[float] = spec(None, doc="null: the training images' pixel mean")
    std: typing.Optional[float] = spec(None, above=0, doc="null: the training images' pixel std")
    train_limit: typing.Optional[int] = spec(None, minimum=2, doc="use only the first N training images")
    test_limit: typing.Optional[int] = spec(None, minimum=1, doc="use only the first N test images")
    image_files: str = spec("auto", choices=IMAGE_FILES, doc=IMAGE_FILES_DOC)
    augment_shift: int = spec(0, minimum=0, doc="augmentation: shift each training image by up to N pixels each way (pad + crop)")
    augment_flip: bool = spec(False, doc="augmentation: mirror training images left-right at random (clothes, not digits)")
    augment_rotate: float = spec(0.0, minimum=0, maximum=180, doc="augmentation: turn each training image by up to N degrees either way (bilinear; 10 is usual for digits)")
    augment_erase: float = spec(0.0, minimum=0, maximum=1, doc="augmentation: with this probability, blank a random rectangle (2-33 % of the image) of each training image")


@dataclass
class RegressionData:
    dataset: str = "regression"
    n_samples: int = spec(2000, minimum=3, doc="samples in all (train + val + test)")
    weights: typing.List[float] = spec([3.0, 4.0, 2.0], doc="true w; its length is the input size")
    bias: float = spec(5.0)
    noise_std: float = spec(0.5, minimum=0)
    inputs: str = spec("normal", choices=("normal", "uniform"), doc="X ~ N(0, 1) or U(low, high)")
    low: typing.Optional[typing.List[float]] = spec(None, doc="per-feature lower bounds (uniform)")
    high: typing.Optional[typing.List[float]] = spec(None, doc="per-feature upper bounds (uniform)")
    standardize: bool = spec(False, doc="standardise inputs with the training mean/std")
    val_size: int = spec(200, minimum=1)
    test_size: int = spec(200, minimum=1)


@dataclass
class CsvData:
    dataset: str = "csv"
    path: typing.Optional[str] = spec(None, doc="the .csv or .csv.gz file, with a header row")
    target: typing.Union[str, typing.List[str], None] = spec(None, doc="column(s) to predict")
    features: typing.Optional[typing.List[str]] = spec(None, doc="input columns; default every other column")
    test_path: typing.Optional[str] = spec(None, doc="a separate test file; otherwise test_fraction of path")
    val_fraction: float = spec(0.1, above=0, doc="share of the rows held out for validation")
    test_fraction: float = spec(0.2, above=0, doc="share of the rows held out for the test (without test_path)")
    standardize: bool = spec(True, doc="(x - mean) / std per encoded column, from the training rows")
    standardize_target: bool = spec(False, doc="regression: train on (y - mean) / std of the training rows")
    robust_scale: bool = spec(False, doc="with standardize: number columns by median and IQR, then smoothly clipped to (-3, 3)")
    linear_copy: typing.Optional[str] = spec(
        None, choices=("unbounded", "clamped"),
        doc="with robust_scale: each number column is also an input, standardised and not clipped, so a trend past the "
            "clip stays linear; unbounded: it goes on past the training rows' range (a regression's trend goes on), "
            "clamped: held within that range (beyond it, predictions stay as at its edge)")
    missing: str = spec("error", choices=("error", "drop", "impute"),
                        doc="a missing or unparsable cell: error, drop its row, or impute it (median / most frequent, "
                            "with an is-missing input, fitted on the training rows)")
    delimiter: typing.Optional[str] = spec(None, choices=(",", ";", "\t", "tab", "|"),
                                           doc="the cell separator; null: sniffed from the first lines")
    decimal: typing.Optional[str] = spec(None, choices=(".", ","),
                                         doc="the decimal mark of the numbers; null: ',' when the file is not "
                                             "comma-separated and some column's numbers need it (1,5), else '.'")
    exclude: typing.Optional[typing.List[str]] = spec(None, doc="columns to leave out of the inputs")
    dates: str = spec("features", choices=("features", "drop"),
                      doc="a column of dates: year, day of year, weekday (and hour) as inputs, or drop it")
    ids: str = spec("drop", choices=("drop", "keep"), doc="a column with a distinct text per row (an ID): drop or keep")
    class_weight: typing.Optional[str] = spec(None, choices=("balanced",),
                                              doc="balanced: weigh each class by rows / (classes * its rows) in the loss")
    min_category_count: int = spec(1, minimum=1, doc="categories seen fewer times in the training rows share one input")


@dataclass
class NpzData:
    dataset: str = "npz"
    path: typing.Optional[str] = spec(None, doc=".npz with arrays x and y (optional x_test, y_test)")
    val_fraction: float = spec(0.1, above=0)
    test_fraction: float = spec(0.2, above=0, doc="used when the file has no x_test/y_test")
    standardize: bool = spec(True, doc="(x - mean) / std per input column, from the training rows")
    standardize_target: bool = spec(False, doc="regression: train on (y - mean) / std of the training rows")


DATASETS = {"mnist": MnistData, "fashion_mnist": FashionMnistData, "idx": IdxData, "regression": RegressionData,
            "csv": CsvData, "npz": NpzData}

# Data paths a config file may give relative to its own directory (see load_config).
PATH_KEYS = ("root", "path", "test_path")


def check_data(data, source):
    """The rules that span several keys of the data section (each message names file and key)."""
    _check_idx(data, source)
    _check_regression(data, source)
    _check_files(data, source)


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
