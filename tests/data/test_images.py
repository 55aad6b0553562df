"""layerwise.images: MNIST-style preprocessing of image files, and the block-character picture.

The preprocessing tests build their images in NumPy (no Pillow needed); reading files and the
rendered-digit case (thick digits drawn with Pillow, recognised by a small MLP trained on real MNIST)
need Pillow.
"""

import builtins
import sys

import numpy as np
import pytest

from conftest import MNIST_ROOT
from layerwise.errors import DataError
from layerwise.data.images import load_digit_image, mnist_style, render_blocks, resize


def centre_of_mass(image):
    image = image.astype(np.float64)
    ys, xs = np.indices(image.shape)
    return (ys * image).sum() / image.sum(), (xs * image).sum() / image.sum()


def ink_box(image, level=1):
    rows, cols = np.flatnonzero((image >= level).any(axis=1)), np.flatnonzero((image >= level).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def paper(h=100, w=100, value=1.0):
    return np.full((h, w), value)


# --- mnist_style -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.0, 1.0, 0.5, 255.0])
def test_blank_or_uniform_image_has_no_ink(value):
    """A uniform picture (white, black or grey) is all background: nothing to crop, zeros out."""
    out = mnist_style(paper(value=value))
    assert out.dtype == np.uint8 and out.shape == (28, 28)
    assert not out.any()


def test_faint_marks_are_not_ink():
    image = paper()
    image[40:60, 40:60] = 0.95  # 5 % contrast: paper texture, not a digit
    assert not mnist_style(image).any()


def test_ink_to_every_edge_fills_the_box():
    """A thick cross touching all four borders: cropped to the whole image, scaled to 20x20."""
    image = paper()
    image[45:55, :] = 0.0
    image[:, 45:55] = 0.0
    out = mnist_style(image)
    assert ink_box(out) == (20, 20)
    assert out.max() == 255


@pytest.mark.parametrize("background, ink", [(1.0, 0.0), (0.9, 0.2), (0.0, 1.0), (0.1, 0.7)])
def test_light_and_dark_backgrounds_give_white_ink_on_black(background, ink):
    """Dark ink on light paper is inverted; light ink on a dark background is kept. Either way the
    stroke comes out at full white and the background at 0."""
    image = paper(value=background)
    image[20:80, 45:55] = ink  # a vertical bar
    out = mnist_style(image)
    assert out[0, 0] == 0 and out[-1, -1] == 0
    assert out.max() == 255
    h, w = ink_box(out, 128)
    assert h == 20 and 2 <= w <= 4  # 60 x 10 scaled by 20 / 60


def test_light_and_dark_versions_of_the_same_digit_agree():
    image = paper()
    image[30:70, 35:45] = 0.0
    image[30:40, 35:65] = 0.0  # an upside-down L
    np.testing.assert_array_equal(mnist_style(image), mnist_style(1 - image))


@pytest.mark.parametrize("h, w", [(60, 15), (15, 60), (40, 40), (90, 30)])
def test_aspect_ratio_is_kept_and_the_long_side_is_20(h, w):
    image = paper(120, 120)
    image[10 : 10 + h, 20 : 20 + w] = 0.0
    out = mnist_style(image)
    rows, cols = ink_box(out)
    assert max(rows, cols) == 20
    assert min(rows, cols) == pytest.approx(20 * min(h, w) / max(h, w), abs=1)


@pytest.mark.parametrize("where", ["top left", "bottom right", "lopsided"])
def test_centre_of_mass_lands_at_the_centre(where):
    image = paper(200, 160)
    if where == "top left":
        image[5:60, 5:40] = 0.0
    elif where == "bottom right":
        image[120:195, 100:155] = 0.0
    else:  # most of the ink on one side: the centre of mass is not the box centre
        image[50:150, 40:50] = 0.0
        image[50:150, 50:110] = 0.6
        image[140:150, 50:110] = 0.0
    out = mnist_style(image)
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5  # MNIST's own: mean (14.0, 14.0), std 0.3


def test_a_real_mnist_digit_keeps_its_label_shape():
    """An MNIST digit is already prepared this way: doing it again changes it little."""
    if not (MNIST_ROOT / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"no MNIST in {MNIST_ROOT}")
    from layerwise.data.idx import read_idx

    digits = read_idx(MNIST_ROOT / "t10k-images-idx3-ubyte.gz")[:50]
    again = np.stack([mnist_style(d.astype(np.float64) / 255) for d in digits])
    for before, after in zip(digits, again):
        assert abs(np.array(centre_of_mass(before)) - centre_of_mass(after)).max() < 1.5
    assert np.abs(again.astype(int) - digits).mean() < 25  # of 255


def test_resize_averages_areas():
    image = np.arange(16, dtype=np.float64).reshape(4, 4)
    np.testing.assert_allclose(resize(image, 2, 2), [[2.5, 4.5], [10.5, 12.5]])  # means of 2x2 blocks
    np.testing.assert_allclose(resize(image, 4, 4), image)
    assert resize(np.ones((7, 3)), 20, 9).min() == pytest.approx(1)  # an even field stays even


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((0, 3)), np.full((4, 4), np.nan)])
def test_bad_arrays_are_data_errors(bad):
    with pytest.raises(DataError):
        mnist_style(bad)


# --- render_blocks -----------------------------------------------------------------------------


def test_render_blocks_half_blocks():
    image = np.zeros((4, 3), dtype=np.uint8)
    image[0, 0] = 255  # top half only
    image[3, 1] = 255  # bottom half only
    image[2:4, 2] = 200  # both halves
    assert render_blocks(image) == "\u2580  \n \u2584\u2588"


def test_render_blocks_of_a_digit_is_28_by_14():
    image = np.zeros((28, 28), dtype=np.uint8)
    image[4:24, 12:16] = 255
    lines = render_blocks(image).split("\n")
    assert len(lines) == 14 and {len(line) for line in lines} == {28}
    assert lines[2][12:16] == "\u2588" * 4 and lines[0].strip() == ""


# --- load_digit_image (Pillow) -----------------------------------------------------------------


def test_load_digit_image_png_jpeg_and_transparency(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rgb = Image.new("RGB", (120, 80), (250, 250, 240))  # off-white paper, colour file
    rgb.paste((20, 20, 90), (50, 10, 62, 70))  # a dark blue bar
    rgb.save(tmp_path / "bar.png")
    rgb.save(tmp_path / "bar.jpg", quality=90)
    rgba = Image.new("RGBA", (120, 80), (0, 0, 0, 0))  # transparent: counts as white paper
    rgba.paste((0, 0, 0, 255), (50, 10, 62, 70))
    rgba.save(tmp_path / "transparent.png")
    outs = [load_digit_image(tmp_path / name) for name in ("bar.png", "bar.jpg", "transparent.png")]
    for out in outs:
        assert out.dtype == np.uint8 and out.shape == (28, 28)
        assert ink_box(out, 128)[0] == 20
        assert out[0].max() == 0
    assert np.abs(outs[0].astype(int) - outs[1]).max() <= 40  # JPEG noise is not ink


def test_unreadable_files_are_data_errors_naming_them(tmp_path):
    pytest.importorskip("PIL")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DataError, match="notes.png"):
        load_digit_image(tmp_path / "notes.png")
    from PIL import Image

    Image.new("L", (60, 60), 255).save(tmp_path / "whole.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:60])  # truncated
    with pytest.raises(DataError, match="cut.png"):
        load_digit_image(tmp_path / "cut.png")
    with pytest.raises(DataError, match="missing.png"):
        load_digit_image(tmp_path / "missing.png")


def test_missing_pillow_says_how_to_install_it(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pil)
    for name in [m for m in sys.modules if m == "PIL" or m.startswith("PIL.")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(DataError, match=r"pip install 'layerwise\[images\]'"):
        load_digit_image(tmp_path / "digit.png")


# --- the rendered-digit case: drawn digits, recognised by a model trained on real MNIST ----------


def draw_digit(digit, size=200, width=18):
    """A thick dark digit on a white size x size canvas, drawn with lines and arcs (no font)."""
    from PIL import Image, ImageDraw

    s = size / 200
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    pen = {"fill": 10, "width": round(width * s)}
    if digit == 0:
        draw.ellipse([60 * s, 30 * s, 140 * s, 170 * s], outline=pen["fill"], width=pen["width"])
    elif digit == 1:
        draw.line([(100 * s, 30 * s), (100 * s, 170 * s)], **pen)
    elif digit == 3:
        draw.arc([60 * s, 30 * s, 140 * s, 100 * s], 200, 90, **pen)
        draw.arc([55 * s, 95 * s, 145 * s, 170 * s], 270, 160, **pen)
    elif digit == 4:
        draw.line([(120 * s, 170 * s), (120 * s, 30 * s), (50 * s, 120 * s), (150 * s, 120 * s)], joint="curve", **pen)
    elif digit == 7:
        draw.line([(55 * s, 40 * s), (145 * s, 40 * s), (85 * s, 170 * s)], joint="curve", **pen)
    return image


@pytest.fixture(scope="module")
def mnist_mlp(tmp_path_factory):
    """A 784-64-10 ReLU net trained for 3 epochs on 5,000 real MNIST digits (about 2 s), seeded."""
    pytest.importorskip("PIL")
    if not (MNIST_ROOT / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"no MNIST in {MNIST_ROOT}")
    from layerwise.config.schema import config_from_dict
    from layerwise.run.evaluate import load_run
    from layerwise.run.fit import fit

    output = tmp_path_factory.mktemp("mnist-mlp") / "run"
    cfg = config_from_dict({
        "seed": 0, "output": str(output),
        "data": {"dataset": "mnist", "root": str(MNIST_ROOT), "train_limit": 6000, "val_size": 1000, "test_limit": 500},
        "model": {"layers": [{"type": "linear", "out_features": 64}, {"type": "relu"}, {"type": "linear", "out_features": 10}]},
        "optimizer": {"lr": 0.05, "momentum": 0.9}, "train": {"epochs": 3},
    })
    fit(cfg, echo=lambda *args: None)
    cfg, _, model, _, _ = load_run(output)
    return cfg, model


# These five were right for each of 9 seeds of this model (the fixture uses seed 0).
@pytest.mark.parametrize("digit", [0, 1, 3, 4, 7])
def test_rendered_digit_is_recognised(mnist_mlp, tmp_path, digit):
    pytest.importorskip("PIL")
    cfg, model = mnist_mlp
    draw_digit(digit).save(tmp_path / f"{digit}.png")
    image = load_digit_image(tmp_path / f"{digit}.png")
    x = (image.reshape(1, 784).astype(np.float32) / 255 - cfg.data.mean) / cfg.data.std  # the run's normalisation
    logits = model.predict(x)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    assert probs.argmax() == digit, render_blocks(image) + f"\npredicted {probs.argmax()}: {np.round(probs, 3)}"


def photo_of(digit, seed=0):
    """The drawn digit as a phone photo might show it: grey ink on warm-tinted paper, light falling
    unevenly across the page, sensor noise; 240x240 RGB."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    page = np.asarray(draw_digit(digit, size=240), dtype=np.float64) / 255  # 1 paper, ~0 ink
    ys, xs = np.indices(page.shape)
    light = 0.55 + 0.35 * xs / page.shape[1] + 0.1 * ys / page.shape[0]  # brighter to the right and below
    grey = 255 * (0.25 + 0.7 * page) * light + rng.normal(0, 6, page.shape)
    rgb = np.stack([grey, 0.95 * grey, 0.85 * grey], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def test_uneven_light_and_noise_are_not_ink():
    """A plain page, lit from one side and grainy, holds no digit; with a bar on it, the crop is
    the bar's (20 tall, about 3 wide), not the page's."""
    rng = np.random.default_rng(0)
    ys, xs = np.indices((200, 200))
    page = 0.95 - 0.4 * xs / 200 + rng.normal(0, 0.03, (200, 200))
    assert not mnist_style(np.clip(page, 0, 1)).any()
    page[40:160, 95:110] = 0.1
    out = mnist_style(np.clip(page, 0, 1))
    h, w = ink_box(out, 128)
    assert h == 20 and 2 <= w <= 4


@pytest.mark.parametrize("digit", [3, 7])
def test_photo_like_digit_is_recognised(mnist_mlp, tmp_path, digit):
    cfg, model = mnist_mlp
    photo_of(digit).save(tmp_path / f"{digit}.jpg", quality=70)
    image = load_digit_image(tmp_path / f"{digit}.jpg")
    x = (image.reshape(1, 784).astype(np.float32) / 255 - cfg.data.mean) / cfg.data.std
    assert model.predict(x).argmax() == digit, render_blocks(image)
