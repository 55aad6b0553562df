"""Augmentation of training images, per batch: random shifts (zero-pad and crop), horizontal flips,
small rotations (bilinear) and random erasing (a rectangle blanked, Zhong et al. 2017).

Random numbers: batch `step` of epoch `epoch` draws from np.random.default_rng([seed, AUGMENT_STREAM,
epoch, step]), its own stream derived from the run's seed and where the run is. That is the whole
state, and the checkpoint already records (epoch, step): a run resumed mid-epoch augments its
remaining batches exactly as the uninterrupted run did, bit for bit, with nothing more to save.
No Python loop runs over images: the shifted crops are one gather from a sliding-window view, and a
rotation is four gathers (the bilinear corners) with per-image sampling coordinates.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

AUGMENT_STREAM = 4  # after run.build's DATA, INIT, SHUFFLE and LAYER streams


def rotate(images, degrees, fill=0.0):
    """images (B, C, H, W) each turned by its angle degrees[b] (counter-clockwise) about its centre,
    bilinear, pixels from outside the image taking `fill`.

    Output pixel (i, j) samples the input at the inverse rotation of its offset from the centre
    (ci, cj) = ((H - 1) / 2, (W - 1) / 2):
        si = ci + cos(t) (i - ci) + sin(t) (j - cj),   sj = cj - sin(t) (i - ci) + cos(t) (j - cj)
    (rows grow downwards, so this turns the picture counter-clockwise as it is shown, like PIL's rotate)
    and mixes the four pixels around (si, sj) by their distances (bilinear interpolation).
    """
    b, c, h, w = images.shape
    t = np.deg2rad(np.asarray(degrees, dtype=np.float64))[:, None, None]
    cos, sin = np.cos(t), np.sin(t)
    di = np.arange(h, dtype=np.float64)[None, :, None] - (h - 1) / 2
    dj = np.arange(w, dtype=np.float64)[None, None, :] - (w - 1) / 2
    si = (h - 1) / 2 + cos * di + sin * dj  # (B, H, W) where each output pixel samples
    sj = (w - 1) / 2 - sin * di + cos * dj
    padded = np.full((b, c, h + 2, w + 2), fill, dtype=images.dtype)  # a border of `fill` all round
    padded[:, :, 1:-1, 1:-1] = images
    flat = padded.reshape(b, c, (h + 2) * (w + 2))
    # a sample beyond the image is moved onto the border of `fill` around it (-1 or H, -1 or W)
    si, sj = np.clip(si, -1, h), np.clip(sj, -1, w)
    i0, j0 = np.floor(si), np.floor(sj)
    wi, wj = (si - i0).astype(images.dtype), (sj - j0).astype(images.dtype)  # weights of the far corners
    i0, j0 = (i0 + 1).astype(np.intp), (j0 + 1).astype(np.intp)  # padded coordinates, 0 .. H + 1
    i1, j1 = np.minimum(i0 + 1, h + 1), np.minimum(j0 + 1, w + 1)

    def corner(i, j):  # (B, C, H*W): padded[b, c, i[b], j[b]] for every output pixel
        return np.take_along_axis(flat, (i * (w + 2) + j).reshape(b, 1, h * w), axis=2)

    top = corner(i0, j0) * (1 - wj.reshape(b, 1, -1)) + corner(i0, j1) * wj.reshape(b, 1, -1)
    bottom = corner(i1, j0) * (1 - wj.reshape(b, 1, -1)) + corner(i1, j1) * wj.reshape(b, 1, -1)
    out = top * (1 - wi.reshape(b, 1, -1)) + bottom * wi.reshape(b, 1, -1)
    return out.reshape(b, c, h, w)


def erase_boxes(rng, b, h, w, area=(0.02, 0.33), aspect=(0.3, 3.3)):
    """(top, left, height, width), each (B,): one rectangle per image covering a fraction of it uniform in
    `area`, its height/width ratio log-uniform in `aspect` (torchvision's RandomErasing defaults),
    clipped to the image and placed uniformly where it fits."""
    fraction = rng.uniform(*area, size=b)
    ratio = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1]), size=b))
    height = np.clip(np.round(np.sqrt(fraction * h * w * ratio)), 1, h).astype(np.intp)
    width = np.clip(np.round(np.sqrt(fraction * h * w / ratio)), 1, w).astype(np.intp)
    top = (rng.random(b) * (h - height + 1)).astype(np.intp)
    left = (rng.random(b) * (w - width + 1)).astype(np.intp)
    return top, left, height, width


def erase(images, chosen, boxes, fill=0.0):
    """images (B, C, H, W) with the rectangle boxes[.][b] set to `fill` in every image where chosen[b]."""
    _, _, h, w = images.shape
    top, left, height, width = (v[:, None, None, None] for v in boxes)
    rows = np.arange(h)[None, None, :, None]
    cols = np.arange(w)[None, None, None, :]
    inside = (rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width)  # (B, 1, H, W)
    return np.where(inside & chosen[:, None, None, None], np.asarray(fill, images.dtype), images)


class Augment:
    """x (B, C*H*W) rows of model inputs -> the same batch, each image shifted by (dy, dx) with
    |dy|, |dx| <= shift (uniform), with `flip` mirrored left-right with probability 1/2, and with
    `rotate` turned by an angle uniform in [-rotate, rotate] degrees, and with probability `erase` a
    random rectangle of 2-33 % of it blanked.

    Pixels shifted or turned in take `fill`, the model-input value of a black pixel (0 after scaling
    and normalising), so a shifted digit sits on the same background as the rest.
    """

    def __init__(self, image_shape, shift=0, flip=False, fill=0.0, seed=0, rotate=0.0, erase=0.0):
        self.shape = tuple(int(d) for d in image_shape)  # (C, H, W)
        self.shift, self.flip, self.fill = int(shift), bool(flip), float(fill)
        self.rotate, self.erase = float(rotate), float(erase)
        self.seed = seed if isinstance(seed, list) else [seed]
        self._padded = None

    @property
    def active(self):
        return self.shift > 0 or self.flip or self.rotate > 0 or self.erase > 0

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
        if self.rotate:  # drawn last: the shifts and flips of a seed stay what they were without it
            images = rotate(images, rng.uniform(-self.rotate, self.rotate, size=b), self.fill)
        if self.erase:  # drawn after the others, for the same reason
            chosen = rng.random(b) < self.erase
            images = erase(images, chosen, erase_boxes(rng, b, h, w), self.fill)
        return np.ascontiguousarray(images, dtype=x.dtype).reshape(b, c * h * w)


def check_augment(data_cfg, dataset):
    """What the config check cannot know before the data is read: a shift must be smaller than the images."""
    shift = getattr(data_cfg, "augment_shift", 0) or 0
    if shift and dataset.input_shape is not None and shift >= min(dataset.input_shape[1:]):
        from ..errors import ConfigError

        raise ConfigError(f"data.augment_shift: {shift} pixels is not smaller than the images "
                          f"({dataset.input_shape[1]}×{dataset.input_shape[2]}); 2 is usual for 28×28")


def build_augment(data_cfg, dataset, seed):
    """The Augment a config's data section asks for (data.augment_shift, _flip, _rotate, _erase), or None."""
    shift, flip = getattr(data_cfg, "augment_shift", 0) or 0, bool(getattr(data_cfg, "augment_flip", False))
    degrees = float(getattr(data_cfg, "augment_rotate", 0) or 0)
    erasing = float(getattr(data_cfg, "augment_erase", 0) or 0)
    if not (shift or flip or degrees or erasing) or dataset.input_shape is None:
        return None
    check_augment(data_cfg, dataset)
    pre = dataset.preprocessing or {}
    fill = 0.0
    if pre.get("kind") == "image" and pre.get("mean") is not None:
        fill = (0.0 - pre["mean"]) / pre["std"]
    return Augment(dataset.input_shape, shift, flip, fill, seed, rotate=degrees, erase=erasing)
