"""load_dataset: the dataset a config's `data` section describes (images, csv, npz or synthetic regression)."""

import numpy as np

from ..errors import CheckpointError, ConfigError, DataError
from ..util.memory import check_fits
from .dataset import SPLITS, Dataset, Split
from .preprocess import array_preprocessing, image_preprocessing, pixels


def load_dataset(data_cfg, seed=0, source="<config>", echo=print, task="classification", splits=SPLITS,
                 preprocessing=None):
    """Build the dataset a config's `data` section describes.

    `splits` names the splits needed (the others are None, and their files are not read: scoring the
    test split of an image dataset reads only the test files); `preprocessing`, from a checkpoint,
    replaces what would otherwise be computed from the training data. For csv and npz data the task
    is `task` (what the loss fits: nn.losses.task_of; class labels for a classification loss, numbers for mse); a csv test split alone
    from a separate data.test_path reads only that file.
    """
    if data_cfg.dataset in ("mnist", "fashion_mnist", "idx"):
        return _images(data_cfg, source, echo, splits, preprocessing)
    if data_cfg.dataset in ("csv", "npz"):
        if data_cfg.dataset == "csv":
            from .tabular import load_csv

            return load_csv(data_cfg, task, seed, source, echo, splits, preprocessing)
        from .arrays import load_npz

        return load_npz(data_cfg, task, seed, source, echo)
    return _regression(data_cfg, seed, source)


def _images(cfg, source, echo, splits, preprocessing):
    from . import mnist  # imports tqdm and urllib: only when image data is used

    if preprocessing is not None and preprocessing.get("kind") != "image":
        raise CheckpointError(f"{source}: the checkpoint's preprocessing is for {preprocessing.get('kind')!r} data "
                              f"but its config reads images ({cfg.dataset}); corrupt or forged?")

    keys = []
    if "train" in splits or "val" in splits:
        keys += ["train_images", "train_labels"]
    if "test" in splits:
        keys += ["test_images", "test_labels"]
    found = {}
    if cfg.dataset == "idx":
        from .idx_files import load_idx_folder

        raw = load_idx_folder(cfg.root, keys, sources=found)
        class_names = _idx_classes(cfg, raw, found, preprocessing)
    else:
        spec = mnist.MNIST
        if cfg.dataset == "fashion_mnist":
            from .fashion_mnist import FASHION_MNIST as spec
        raw = mnist.load_mnist(cfg.root, spec=spec, echo=echo, keys=keys, sources=found)
        class_names = spec.class_names
    sources = [found[key] for key in keys]
    train = val = test = None
    if "train_images" in raw:
        train_x, train_y = raw["train_images"], raw["train_labels"]
        if cfg.train_limit is not None:
            train_x, train_y = train_x[: cfg.train_limit], train_y[: cfg.train_limit]
        if cfg.val_size >= len(train_x):
            raise ConfigError(
                f"{source}: data.val_size: {cfg.val_size} leaves no training images out of {len(train_x)}"
            )
        # The validation split is the last val_size training images (as Keras's validation_split takes
        # the tail), so choosing a model never looks at the test set.
        n_train = len(train_x) - cfg.val_size
    images = [raw[key] for key in keys if key.endswith("images")]
    check_fits(4 * sum(a.size for a in images), f"{source}: data: {sum(len(a) for a in images):,} images "
               f"as float32", "use data.train_limit / data.test_limit")
    if preprocessing is None:
        mean, std = cfg.mean, cfg.std
        if cfg.normalize and (mean is None or std is None):  # idx: from the training images
            from .preprocess import pixel_stats

            mean_, std_ = pixel_stats(train_x[:n_train])
            mean, std = (mean_ if mean is None else mean), (std_ if std is None else std)
            std = std if std > 0 else 1.0
        shape = (raw.get("train_images") if "train_images" in raw else raw["test_images"]).shape[1:]
        preprocessing = image_preprocessing(cfg.dataset, shape, class_names, 1 / 255 if cfg.scale else 1.0,
                                            mean if cfg.normalize else None, std if cfg.normalize else None,
                                            getattr(cfg, "image_files", "auto"))
    if "train_images" in raw:
        train = Split(_pixels(preprocessing, train_x[:n_train], source), train_y[:n_train].astype(np.int64))
        val = Split(_pixels(preprocessing, train_x[n_train:], source), train_y[n_train:].astype(np.int64))
    if "test_images" in raw:
        test_x, test_y = raw["test_images"], raw["test_labels"]
        if cfg.test_limit is not None:
            test_x, test_y = test_x[: cfg.test_limit], test_y[: cfg.test_limit]
        test = Split(_pixels(preprocessing, test_x, source, sources[-2]), test_y.astype(np.int64))
    return Dataset(train=train, val=val, test=test, task="classification",
                   num_outputs=len(preprocessing["class_names"]), preprocessing=preprocessing, sources=sources)


def _pixels(pre, images, source, where="input"):
    """preprocess.pixels, refusing a mean/std that make the pixels infinite or NaN (else the first loss
    is NaN and the run is blamed on the learning rate)."""
    x = pixels(pre, images, where)
    if not np.isfinite(x).all():
        mean, std = pre["mean"], pre["std"]
        key = "data.mean" if abs(mean) > float(np.finfo(np.float32).max) else "data.std"
        own = {"mnist": "MNIST: 0.1307 and 0.3081", "fashion_mnist": "Fashion-MNIST: 0.2860 and 0.3530"}.get(
            pre.get("dataset"), "null for both computes them from the training images")
        raise ConfigError(
            f"{source}: {key}: normalising the pixels as (x - {mean:g}) / {std:g} overflows float32 "
            f"(the data become infinite or NaN); data.mean and data.std must be the data's own ({own}), "
            f"or set data.normalize: false"
        )
    return x


def _idx_classes(cfg, raw, found, preprocessing):
    """The class names of an idx dataset: data.class_names, else the checkpoint's, else "0".."max label"."""
    if preprocessing is not None:
        names = preprocessing["class_names"]
    elif cfg.class_names is not None:
        names = cfg.class_names
    else:
        top = max(int(raw[k].max()) for k in ("train_labels", "test_labels") if k in raw and raw[k].size)
        names = [str(i) for i in range(top + 1)]
    for key in ("train_labels", "test_labels"):
        labels = raw.get(key)
        if labels is not None and labels.size and labels.max() >= len(names):
            raise DataError(f"{found[key]}: label {labels.max()} has no class name: data.class_names "
                            f"lists {len(names)} ({', '.join(names[:3])}, ...); give one name per label value")
    return names


def _regression(cfg, seed, source):
    """y = X @ w + b + noise, with X ~ N(0, 1) or U(low, high) per feature; seeded by the run's seed."""
    n, d = cfg.n_samples, len(cfg.weights)
    # float64 draws of X, y and the noise, then their float32 copies (and a standardised one).
    check_fits(n * (d + 2) * 16, f"{source}: data.n_samples: {n:,} samples of {d:,} features",
               "use fewer data.n_samples (or data.weights)")
    rng = np.random.default_rng(seed)
    w = np.asarray(cfg.weights, dtype=np.float64)
    if cfg.inputs == "uniform":
        x = rng.uniform(cfg.low, cfg.high, size=(n, d))
    else:
        x = rng.standard_normal((n, d))
    with np.errstate(over="ignore", invalid="ignore"):
        y = x @ w + cfg.bias + rng.normal(0.0, cfg.noise_std, size=n)
        x, y = x.astype(np.float32), y.astype(np.float32).reshape(n, 1)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ConfigError(f"{source}: data: these bounds, weights, bias or noise_std give values beyond float32's range")
    n_train = n - cfg.val_size - cfg.test_size
    n_val = cfg.val_size
    mean = std = None
    if cfg.standardize:
        # Statistics from the training rows only, applied to every split.
        mean, std = x[:n_train].mean(axis=0), x[:n_train].std(axis=0)
        std = np.where(std > 0, std, 1)
        x = (x - mean) / std
    from dataclasses import asdict

    from .fingerprint import generated

    return Dataset(
        train=Split(x[:n_train], y[:n_train]),
        val=Split(x[n_train : n_train + n_val], y[n_train : n_train + n_val]),
        test=Split(x[n_train + n_val :], y[n_train + n_val :]),
        task="regression",
        num_outputs=1,
        preprocessing=array_preprocessing(d, mean, std),
        sources=[],
        fingerprint=generated({"data": asdict(cfg), "seed": [int(v) for v in np.atleast_1d(seed)]}),
    )


