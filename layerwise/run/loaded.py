"""A trained model loaded with its preprocessing: `layerwise.load(run)`.

The checkpoint carries the config, the weights and the preprocessing, so nothing here reads the
training data.
"""

import threading
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, ConfigError, DataError


class LoadedModel:
    """A trained model with its preprocessing: give it raw inputs, get labels or values back.

    `predict(x)` returns class names (classification; integers when every name is an integer) or values, `predict_proba(x)` class
    probabilities; `x` is an array of raw inputs (pixels 0-255 for image models, unstandardised
    numbers for array models) or the path of an input file (CSV, .npy, .npz, IDX, PNG/JPEG).
    """

    def __init__(self, model, preprocessing, task, cfg, path, epoch):
        self.model = model
        self.preprocessing = preprocessing
        self.task = task
        self.config = cfg
        self.path = path
        self.epoch = epoch
        self.classes = preprocessing.get("class_names")
        # The layers keep their forward buffers between calls: one forward pass at a time, so threads
        # sharing this model each get their own result.
        self._lock = threading.Lock()
        loss = cfg.loss.get("type") if isinstance(cfg.loss, dict) else cfg.loss
        # The link the loss trained the logits for: one sigmoid per class for binary_cross_entropy
        # (one-vs-rest), a softmax over the classes otherwise.
        self.link = sigmoid if loss == "binary_cross_entropy" else softmax

    def __repr__(self):
        return f"LoadedModel({str(self.path)!r}, task={self.task!r}, epoch={self.epoch})"

    def inputs(self, x, where="input"):
        """Model inputs (float32 (N, D)) from a raw array or an input file path."""
        from ..data.inputs import merged, read_inputs
        from ..data.preprocess import model_inputs

        if isinstance(x, (str, Path)):
            return merged(read_inputs([x], self.preprocessing, self.task)).x
        return model_inputs(self.preprocessing, x, where)

    def outputs(self, x):
        """Model outputs for model inputs x: logits, or predicted values in the target's units."""
        from ..data.preprocess import target_units

        with self._lock, np.errstate(over="ignore", invalid="ignore"):
            outputs = np.array(self.model.predict(np.ascontiguousarray(x, dtype=np.float32)))  # a copy: ours
            return outputs if self.task == "classification" else target_units(self.preprocessing, outputs)

    def predict_proba(self, x):
        if self.task != "classification":
            raise DataError(f"{self.path}: predict_proba needs a classification model; this one predicts values")
        return self.probabilities(self.outputs(self.inputs(x)))

    def probabilities(self, logits):
        """Class probabilities from the model's logits, through the link its loss implies."""
        return self.link(logits)

    def predict(self, x):
        outputs = self.outputs(self.inputs(x))
        if self.task == "classification":
            return label_array(self.classes)[outputs.argmax(axis=1)]
        return outputs[:, 0] if outputs.shape[1] == 1 else outputs


def load(run, checkpoint="best"):
    """The model in a run directory (its best.npz, or `checkpoint`) or a checkpoint file."""
    from ..config.schema import config_from_dict
    from ..data.preprocess import check_stored, image_input_shape
    from ..nn.registry import build_model
    from .checkpoint import load_run_arrays, load_run_meta, resolve_checkpoint

    path = resolve_checkpoint(_path_argument(run, "run"), checkpoint)
    meta = load_run_meta(path)
    sizes, pre = meta.get("data"), meta.get("preprocessing")
    if not isinstance(sizes, dict) or not isinstance(pre, dict):
        raise CheckpointError(f"{path} does not store its preprocessing (made by an older layerwise); "
                              "retrain it to use it on new inputs, or score it with layerwise eval")
    check_stored(path, sizes, pre)
    try:
        cfg = config_from_dict(meta["config"], str(path))
        model = build_model(cfg.model.layers, sizes["num_features"], sizes["num_outputs"],
                            where=f"{path}: model.layers", input_shape=image_input_shape(pre))
    except ConfigError as e:
        raise CheckpointError(f"{path}: its stored config does not build a model ({e})") from None
    load_run_arrays(path, model, against=f"the model in {path}")
    return LoadedModel(model, pre, sizes["task"], cfg, path, meta["state"].get("epoch"))


def _path_argument(value, what):
    """A path given to the API: str, os.PathLike or bytes (decoded as the file system does); anything else
    is a ConfigError naming the argument, not a TypeError from deep inside."""
    import os

    if isinstance(value, bytes):
        return os.fsdecode(value)
    if isinstance(value, (str, os.PathLike)):
        return value
    raise ConfigError(f"{what}: expected a path (a run directory or a checkpoint file), received a "
                      f"{type(value).__name__}")


def label_array(names):
    """Class names as an array to index: integers when every name is an integer written plainly ("0".."9",
    "-1", "42"), so `(model.predict(x) == y).mean()` works with integer labels; strings otherwise."""
    if all(isinstance(n, str) and n.lstrip("-").isdigit() and n.isascii() and len(n) < 19
           and str(int(n)) == n for n in names):
        return np.array([int(n) for n in names], dtype=np.int64)
    return np.asarray(names)


def softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    p /= p.sum(axis=1, keepdims=True)
    return p


def sigmoid(logits):
    # (1 + tanh(z / 2)) / 2: sigmoid without overflow for any z
    return 0.5 * (1 + np.tanh(0.5 * logits))
