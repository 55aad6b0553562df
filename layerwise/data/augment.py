"""Augmentation of training images, per batch: random shifts (zero-pad and crop) and horizontal flips.

Random numbers: batch `step` of epoch `epoch` draws from np.random.default_rng([seed, AUGMENT_STREAM,
epoch, step]), its own stream derived from the run's seed and where the run is. That is the whole
state, and the checkpoint already records (epoch, step): a run resumed mid-epoch augments its
remaining batches exactly as the uninterrupted run did, bit for bit, with nothing more to save.
No Python loop runs over images: the shifted crops are one gather from a sliding-window view.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

AUGMENT_STREAM = 4  # after run.build's DATA, INIT, SHUFFLE and LAYER streams


class Augment:
    """x (B, C*H*W) rows of model inputs -> the same batch, each image shifted by (dy, dx) with
    |dy|, |dx| <= shift (uniform) and, with `flip`, mirrored left-right with probability 1/2.

    Pixels shifted in take `fill`, the model-input value of a black pixel (0 after scaling and
    normalising), so a shifted digit sits on the same background as the rest.
    """

    def __init__(self, image_shape, shift=0, flip=False, fill=0.0, seed=0):
        self.shape = tuple(int(d) for d in image_shape)  # (C, H, W)
        self.shift, self.flip, self.fill = int(shift), bool(flip), float(fill)
        self.seed = seed if isinstance(seed, list) else [seed]
        self._padded = None

    @property
    def active(self):
        return self.shift > 0 or self.flip

    def __call__(self, x, epoch, step):
        if not self.active:
            return x
        c, h, w = self.shape
        b, s = len(x), self.shift
        rng = np.random.default_rng([*self.seed, AUGMENT_STREAM, int(epoch), int(step)])
        images = x.reshape(b, c, h, w)
        if s:
            shape = (b, c, h + 2 * s, w + 2 * s)
            if self._padded is None or self._padded.shape[0] < b or self._padded.dtype != x.dtype:
                self._padded = np.full(shape, self.fill, dtype=x.dtype)  # its border stays `fill`
            padded = self._padded[:b]
            padded[:, :, s : s + h, s : s + w] = images
            offsets = rng.integers(0, 2 * s + 1, size=(2, b))  # top-left corner of each crop
            windows = sliding_window_view(padded, (h, w), axis=(2, 3))  # (B, C, 2s+1, 2s+1, H, W)
            images = windows[np.arange(b), :, offsets[0], offsets[1]]  # (B, C, H, W), one gather
        if self.flip:
            mirrored = rng.random(b) < 0.5
            images = np.where(mirrored[:, None, None, None], images[..., ::-1], images)
        return np.ascontiguousarray(images, dtype=x.dtype).reshape(b, c * h * w)


def build_augment(data_cfg, dataset, seed):
    """The Augment a config's data section asks for (data.augment_shift, data.augment_flip), or None."""
    shift, flip = getattr(data_cfg, "augment_shift", 0) or 0, bool(getattr(data_cfg, "augment_flip", False))
    if not (shift or flip) or dataset.input_shape is None:
        return None
    if shift >= min(dataset.input_shape[1:]):
        from ..errors import ConfigError

        raise ConfigError(f"data.augment_shift: {shift} pixels is not smaller than the images "
                          f"({dataset.input_shape[1]}×{dataset.input_shape[2]}); 2 is usual for 28×28")
    pre = dataset.preprocessing or {}
    fill = 0.0
    if pre.get("kind") == "image" and pre.get("mean") is not None:
        fill = (0.0 - pre["mean"]) / pre["std"]
    return Augment(dataset.input_shape, shift, flip, fill, seed)
