"""Image files in, pictures as the model's dataset has them out (MNIST-style digits, or resized
pictures for Fashion-MNIST-like data); and a block-character picture for the terminal.

`load_digit_image` reads a PNG/JPEG (Pillow, the optional extra `images`) and hands the grayscale
pixels to `mnist_style`, the pure-NumPy preparation of LeCun's MNIST: ink made bright on black,
cropped to the ink, scaled to fit a 20x20 box keeping its aspect ratio, then placed in a 28x28 field
so that its centre of mass sits at pixel (14, 14), where MNIST's digits have theirs.
"""

from pathlib import Path

import numpy as np

from ..errors import DataError, MissingExtra
from ..util.openfile import NotRegularFile, open_regular
from ..util.text import one_line

SIZE = 28  # the output field, as MNIST
BOX = 20  # the digit is scaled to fit this box
CENTRE = 14.0  # where MNIST puts the centre of mass: its training digits average (14.0, 14.0), std 0.3
MIN_CONTRAST = 0.1  # ink weaker than this (on a 0-1 scale, or 6 noise sigmas) against the background: blank
INK_FLOOR = 0.15  # after contrast stretching, fainter ink (paper grain, JPEG noise) is dropped
MAX_PIXELS = 1 << 26  # 67 million pixels (8192 x 8192): larger images are refused before decoding
MAX_SIDE = 512  # larger files are shrunk to this before preprocessing (a photo need not be 4000 px)


def load_image_file(path, style="digit", shape=(SIZE, SIZE)):
    """A PNG/JPEG/... file -> uint8 `shape` picture, bright on black, as the model's dataset has them:
    style "digit" is MNIST's preparation (`mnist_style`, 28x28), "resize" the whole picture resized
    (`resized_style`: Fashion-MNIST's items fill their frame)."""
    if style == "resize":
        return resized_style(_read_gray(path), shape)
    return mnist_style(_read_gray(path))


def load_digit_image(path):
    """A PNG/JPEG/... file -> uint8 (28, 28) MNIST-style digit (white ink on black)."""
    return mnist_style(_read_gray(path))


def _read_gray(path):
    """A PNG/JPEG/... file -> float32 grayscale (H, W), 0 = black .. 1 = white.

    Transparent pixels count as white paper. A missing Pillow, or a file that is not a readable
    image, is a DataError.
    """
    try:
        from PIL import Image, ImageOps, UnidentifiedImageError
    except ImportError:
        raise MissingExtra(f"{path}: reading image files needs Pillow: pip install 'layerwise[images]'") from None
    if Path(path).is_dir():
        raise DataError(f"{path} is a directory; give image files (PNG, JPEG, ...)")
    try:
        with open_regular(path) as f, Image.open(f) as image:  # never a FIFO or a device
            image.draft("L", (2 * MAX_SIDE, 2 * MAX_SIDE))  # a JPEG decodes at a reduced size: fast for photos
            if image.width * image.height > MAX_PIXELS:  # from the header, before decoding (a PNG bomb)
                raise DataError(f"{path}: {image.width:,} x {image.height:,} pixels; at most {MAX_PIXELS:,} are "
                                "read (shrink the image first)")
            image.load()
            image = ImageOps.exif_transpose(image)  # a phone photo's orientation
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                image = image.convert("RGBA")
                paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(paper, image)
            gray = image.convert("L")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (IsADirectoryError, NotRegularFile) as e:
        raise DataError(f"{path}: {e.strerror}; give image files (PNG, JPEG, ...)") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file Pillow can read (PNG, JPEG, BMP, GIF, ...)") from None
    except Image.DecompressionBombError as e:
        raise DataError(f"{path}: too many pixels to read safely ({one_line(e)})") from None
    except MemoryError:
        raise DataError(f"{path}: not enough memory to read this image") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # truncated or corrupt data
        raise DataError(f"{path}: cannot read this image; corrupt or truncated? ({one_line(e)})") from None
    if max(gray.size) > MAX_SIDE:
        gray.thumbnail((MAX_SIDE, MAX_SIDE), Image.BOX)
    return np.asarray(gray, dtype=np.float32) / 255


def resized_style(gray, shape=(SIZE, SIZE)):
    """Grayscale pixels (H, W), 0-1 -> uint8 `shape`: inverted when the background (the border's median)
    is light, so the object is bright on black as Fashion-MNIST's are; padded with the background to
    the target's aspect ratio (centred), then resized by area. No cropping and no centring by mass."""
    gray = np.asarray(gray, dtype=np.float64)
    if gray.ndim != 2 or gray.size == 0:
        raise DataError(f"expected a 2-D grayscale image, received shape {gray.shape}")
    if not np.isfinite(gray).all():
        raise DataError("the image holds NaN or infinite pixel values")
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:
        gray, border = 1 - gray, 1 - border
    h, w = gray.shape
    height, width = shape
    if h * width != w * height:  # pad the short side to the target's aspect ratio
        th, tw = max(h, -(-w * height // width)), max(w, -(-h * width // height))
        field = np.full((th, tw), float(np.median(border)))
        field[(th - h) // 2 : (th - h) // 2 + h, (tw - w) // 2 : (tw - w) // 2 + w] = gray
        gray = field
    return np.round(np.clip(resize(gray, height, width), 0, 1) * 255).astype(np.uint8)


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
    found = _ink(gray)
    if found is None:
        return np.zeros((SIZE, SIZE), dtype=np.uint8)
    ink, strokes = found
    rows, cols = np.flatnonzero(strokes.any(axis=1)), np.flatnonzero(strokes.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = ink.shape
    scale = BOX / max(h, w)
    digit = resize(ink, max(1, round(h * scale)), max(1, round(w * scale)))
    return _centre_by_mass(digit)


def _ink(gray):
    """(ink, strokes): ink in [0, 1] (1 = the strongest stroke) against the background, light paper
    inverted and a dark background kept; strokes, the pixels the crop goes around. None when there is
    no ink to speak of.

    The background is a plane fitted to the border pixels, so light falling unevenly across a photo is
    not taken for ink. Otsu's threshold t splits paper from strokes: ink fainter than t/2 is dropped
    (paper grain, JPEG noise) and the soft edges above it kept; strokes are the pixels above t with a
    neighbour above t, so a lone speck of noise does not widen the crop.
    """
    background, noise = _border_plane(gray)
    ink = (background - gray) if np.median(background) > 0.5 else (gray - background)
    strongest = ink.max()
    if strongest < max(MIN_CONTRAST, 6 * noise):  # the largest of 10^5 noise pixels is about 4.5 sigma
        return None
    ink = np.clip(ink / strongest, 0, 1)  # the strongest stroke becomes full white
    threshold = max(INK_FLOOR, otsu_threshold(ink))
    strong = np.pad(ink >= threshold, 1)
    neighbours = strong[:-2, 1:-1] | strong[2:, 1:-1] | strong[1:-1, :-2] | strong[1:-1, 2:]
    strokes = strong[1:-1, 1:-1] & neighbours
    if not strokes.any():  # a single pixel of ink: it is the digit
        strokes = strong[1:-1, 1:-1]
    return np.where(ink >= max(INK_FLOOR, threshold / 2), ink, 0.0), strokes


def _border_plane(gray):
    """(plane, noise): the plane a + b*y + c*x through the border pixels, fitted by least squares
    twice (the second fit leaves out border pixels far from the first: ink that touches the edge),
    and the noise's standard deviation about it (from the median absolute residual)."""
    h, w = gray.shape
    ys, xs = np.indices((h, w))
    border = np.zeros((h, w), dtype=bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    design = np.column_stack([np.ones(border.sum()), ys[border] / max(h - 1, 1), xs[border] / max(w - 1, 1)])
    values = gray[border]
    keep = np.ones(len(values), dtype=bool)
    for _ in range(2):
        coef = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
        residual = np.abs(design @ coef - values)
        keep = residual <= 2.5 * np.median(residual) + 0.02
    noise = 1.4826 * float(np.median(residual[keep]))  # MAD -> sigma for Gaussian noise
    return coef[0] + coef[1] * ys / max(h - 1, 1) + coef[2] * xs / max(w - 1, 1), noise


def otsu_threshold(values, bins=64):
    """Otsu's threshold of values in [0, 1]: the cut that maximises the variance between the two
    classes it makes (paper and ink), computed for every cut at once from a histogram."""
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)[:-1]  # pixels at or below each cut
    total = counts.sum()
    mass = np.cumsum(counts * centres)[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = mass / weight
        mean_high = (mass[-1] + counts[-1] * centres[-1] - mass) / (total - weight)
        between = weight * (total - weight) * (mean_low - mean_high) ** 2
    between = np.nan_to_num(between, nan=-1.0)
    return float(edges[1:-1][np.argmax(between)])


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
    """Place `digit` (at most 20x20) in a 28x28 field with its centre of mass at pixel (14, 14), as
    MNIST's digits are (to the nearest pixel, kept inside the field)."""
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
