"""Image files in, MNIST-style digits out; and a block-character picture of a digit for the terminal.

`load_digit_image` reads a PNG/JPEG (Pillow, the optional extra `images`) and hands the grayscale
pixels to `mnist_style`, the pure-NumPy preparation of LeCun's MNIST: ink made bright on black,
cropped to the ink, scaled to fit a 20x20 box keeping its aspect ratio, then placed in a 28x28 field
so that its centre of mass sits at the field's centre.
"""

import numpy as np

from .errors import DataError, MissingExtra

SIZE = 28  # the output field, as MNIST
BOX = 20  # the digit is scaled to fit this box
CENTRE = (SIZE - 1) / 2  # 13.5: the centre of a 28-pixel field in pixel-centre coordinates
MIN_CONTRAST = 0.1  # ink weaker than this (on a 0-1 scale) against the background: a blank image
INK_FLOOR = 0.15  # after contrast stretching, fainter ink (paper grain, JPEG noise) is dropped
MAX_SIDE = 512  # larger files are shrunk to this before preprocessing (a photo need not be 4000 px)


def load_digit_image(path):
    """A PNG/JPEG/... file -> uint8 (28, 28) MNIST-style digit (white ink on black).

    Transparent pixels count as white paper. A missing Pillow, or a file that is not a readable
    image, is a DataError.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise MissingExtra(f"{path}: reading image files needs Pillow: pip install 'layerwise[images]'") from None
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                image = image.convert("RGBA")
                paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(paper, image)
            gray = image.convert("L")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file Pillow can read (PNG, JPEG, BMP, GIF, ...)") from None
    except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt data
        raise DataError(f"{path}: cannot read this image; corrupt or truncated? ({e})") from None
    if max(gray.size) > MAX_SIDE:
        gray.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BOX)
    return mnist_style(np.asarray(gray, dtype=np.float32) / 255)


def mnist_style(gray):
    """Grayscale pixels (H, W), 0 = black .. 1 = white (values above 1 are read as 0-255) ->
    uint8 (28, 28): white ink on black, cropped to the ink, scaled to fit 20x20 keeping the aspect
    ratio, centred by centre of mass (LeCun's MNIST preparation). An image without ink gives zeros.
    """
    gray = np.asarray(gray, dtype=np.float64)
    if gray.ndim != 2 or gray.size == 0:
        raise DataError(f"expected a 2-D grayscale image, received shape {gray.shape}")
    if not np.isfinite(gray).all():
        raise DataError("the image holds NaN or infinite pixel values")
    if gray.max() > 1:
        gray = gray / 255
    ink = _ink(gray)
    if ink is None:
        return np.zeros((SIZE, SIZE), dtype=np.uint8)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = ink.shape
    scale = BOX / max(h, w)
    digit = resize(ink, max(1, round(h * scale)), max(1, round(w * scale)))
    return _centre_by_mass(digit)


def _ink(gray):
    """Ink in [0, 1] (1 = the strongest stroke) against the background, which is the median of the
    border pixels: light paper is inverted, dark stays. None when there is no ink to speak of."""
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    background = np.median(border)
    ink = (background - gray) if background > 0.5 else (gray - background)
    strongest = ink.max()
    if strongest < MIN_CONTRAST:
        return None
    ink = np.clip(ink / strongest, 0, 1)  # the strongest stroke becomes full white
    return np.where(ink >= INK_FLOOR, ink, 0.0)  # faint texture (paper grain, JPEG noise) is not ink


def resize(image, height, width):
    """Area-weighted resampling of a 2-D array to (height, width): each output pixel is the mean of
    the input area it covers (fractions at the edges), as two matrix products out = Ry @ image @ Rx.T."""
    return _area_matrix(image.shape[0], height) @ image @ _area_matrix(image.shape[1], width).T


def _area_matrix(n_in, n_out):
    """(n_out, n_in) weights: row i averages the input interval [i, i+1) * n_in / n_out."""
    edges = np.arange(n_out + 1) * (n_in / n_out)  # output pixel boundaries in input coordinates
    lo, hi = edges[:-1, None], edges[1:, None]
    pixel = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, pixel + 1) - np.maximum(lo, pixel), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def _centre_by_mass(digit):
    """Place `digit` (at most 20x20) in a 28x28 field with its centre of mass at the centre (to the
    nearest pixel), kept inside the field."""
    h, w = digit.shape
    total = digit.sum()
    cy = (digit.sum(axis=1) @ np.arange(h)) / total
    cx = (digit.sum(axis=0) @ np.arange(w)) / total
    top = int(np.clip(np.round(CENTRE - cy), 0, SIZE - h))
    left = int(np.clip(np.round(CENTRE - cx), 0, SIZE - w))
    field = np.zeros((SIZE, SIZE))
    field[top : top + h, left : left + w] = digit
    return np.round(np.clip(field, 0, 1) * 255).astype(np.uint8)


# Half blocks: each character is one pixel column and two pixel rows (top, bottom), so a 28x28 digit
# is 28 characters wide and 14 lines tall, about square in a terminal whose cells are twice as tall.
HALF_BLOCKS = np.array([" ", "\u2580", "\u2584", "\u2588"])  # by top + 2 * bottom
INK_LEVEL = 96  # pixels at or above this (of 255) are drawn


def render_blocks(image):
    """A uint8 2-D image (white ink on black, as MNIST) -> lines of half-block characters ("▀", "▄",
    "█", space), one character per pixel column and two pixel rows; every line has the same width."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise DataError(f"expected a 2-D image, received shape {image.shape}")
    on = image >= INK_LEVEL
    if len(on) % 2:
        on = np.vstack([on, np.zeros((1, on.shape[1]), dtype=bool)])
    top, bottom = on[0::2], on[1::2]
    chars = HALF_BLOCKS[top + 2 * bottom.astype(np.intp)]
    return "\n".join("".join(row) for row in chars)
