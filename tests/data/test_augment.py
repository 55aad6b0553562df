"""data.augment_shift / _flip / _rotate / _erase: what each does to an image, the stream they draw
from, and a CNN run with augmentation resumed bit for bit."""

import numpy as np
import pytest

from layerwise.config.schema import load_config
from layerwise.data.augment import Augment, erase, erase_boxes, rotate
from layerwise.errors import ConfigError, TrainingInterrupted
from layerwise.run.fit import fit, resume
from tinycnn import tiny_cnn


def dots(b, h=6, w=5):
    """b images (1, h, w), each with one bright pixel at (2, 2) on a background of -1."""
    x = np.full((b, 1, h, w), -1.0, np.float32)
    x[:, 0, 2, 2] = 5.0
    return x.reshape(b, -1)


def test_a_shift_moves_each_image_by_its_own_offset_and_fills_with_the_background():
    aug = Augment((1, 6, 5), shift=2, fill=-1.0, seed=7)
    x = dots(64)
    out = aug(x, epoch=0, step=0).reshape(64, 6, 5)
    assert out.dtype == np.float32 and out.shape == (64, 6, 5)
    moved = [tuple(np.argwhere(img == 5.0)[0]) for img in out]  # every dot still inside (|shift| <= 2)
    assert all(np.count_nonzero(img == 5.0) == 1 and np.count_nonzero(img == -1.0) == 29 for img in out)
    dy = {r - 2 for r, _ in moved}
    dx = {c - 2 for _, c in moved}
    assert dy == dx == {-2, -1, 0, 1, 2}  # all five offsets drawn over 64 images
    assert np.array_equal(x, dots(64))  # the batch given is not changed


def test_flip_mirrors_about_half_the_images():
    aug = Augment((1, 6, 5), flip=True, seed=3)
    x = dots(200).reshape(200, 6, 5)
    x[:, 2, 2], x[:, 2, 1] = -1.0, 5.0  # the dot at column 1: mirrored, column 3
    out = aug(x.reshape(200, -1), 0, 0).reshape(200, 6, 5)
    flipped = out[:, 2, 1] != 5.0
    assert np.all(out[flipped, 2, 3] == 5.0) and np.all(out[~flipped, 2, 1] == 5.0)
    assert 70 < flipped.sum() < 130


def test_rotate_by_quarter_turns_is_rot90_and_zero_is_the_identity():
    rng = np.random.default_rng(0)
    images = rng.standard_normal((3, 2, 7, 7)).astype(np.float32)  # square: a quarter turn maps the grid onto itself
    out = rotate(images, [0.0, 90.0, -90.0], fill=-1.0)
    assert out.dtype == np.float32 and out.shape == images.shape
    np.testing.assert_allclose(out[0], images[0], atol=1e-6)
    np.testing.assert_allclose(out[1], np.rot90(images[1], k=1, axes=(1, 2)), atol=1e-5)  # counter-clockwise
    np.testing.assert_allclose(out[2], np.rot90(images[2], k=-1, axes=(1, 2)), atol=1e-5)


def test_a_small_rotation_keeps_the_centre_blends_neighbours_and_fills_the_corners():
    image = np.full((1, 1, 9, 9), -1.0, np.float32)
    image[0, 0, 4, :] = 3.0  # a horizontal bar through the centre
    out = rotate(image, [10.0], fill=-1.0)[0, 0]
    assert out[4, 4] == pytest.approx(3.0)  # the centre does not move
    assert -1.0 < out[3, 0] < 3.0 or -1.0 < out[5, 0] < 3.0  # the bar's end tilts: blended, bilinear
    assert out.min() >= -1.0 - 1e-6 and out.max() <= 3.0 + 1e-6  # bilinear never overshoots
    corner = rotate(np.zeros((1, 1, 9, 9), np.float32), [45.0], fill=-1.0)[0, 0]
    assert corner[0, 0] == pytest.approx(-1.0)  # turned in from outside: the fill


def test_rotation_draws_after_the_shift_and_flip_so_they_stay_the_same():
    x = dots(16)
    shifted = Augment((1, 6, 5), shift=2, flip=True, fill=-1.0, seed=[5])(x, 1, 4)
    turned = Augment((1, 6, 5), shift=2, flip=True, fill=-1.0, seed=[5], rotate=0.001)(x, 1, 4)
    np.testing.assert_allclose(turned, shifted, atol=1e-3)


def test_erasing_blanks_one_rectangle_of_the_drawn_size_in_the_chosen_images():
    rng = np.random.default_rng(4)
    top, left, height, width = erase_boxes(rng, 500, 28, 28)
    assert np.all(top >= 0) and np.all(left >= 0) and np.all(top + height <= 28) and np.all(left + width <= 28)
    area = height * width / 784
    assert 0.015 < area.min() and area.max() < 0.36 and 0.12 < area.mean() < 0.22  # about uniform in 2-33 %
    images = np.ones((3, 2, 6, 6), np.float32)
    boxes = tuple(np.array(v) for v in ([1, 0, 0], [2, 0, 0], [3, 6, 6], [2, 6, 6]))
    out = erase(images, np.array([True, False, True]), boxes, fill=-1.0)
    assert out.dtype == np.float32
    assert np.all(out[0, :, 1:4, 2:4] == -1.0) and np.count_nonzero(out[0] == -1.0) == 2 * 6
    assert np.all(out[1] == 1.0) and np.all(out[2] == -1.0)  # not chosen; a box over the whole image


def test_the_stream_is_a_function_of_seed_epoch_and_step():
    aug = Augment((1, 6, 5), shift=2, flip=True, fill=-1.0, seed=[5])
    x = dots(32)
    first = aug(x, 1, 4).copy()
    assert np.array_equal(first, Augment((1, 6, 5), 2, True, -1.0, [5])(x, 1, 4))  # a fresh object: the same
    assert not np.array_equal(first, aug(x, 1, 5)) and not np.array_equal(first, aug(x, 2, 4))
    assert not np.array_equal(first, Augment((1, 6, 5), 2, True, -1.0, [6])(x, 1, 4))


def test_a_shift_as_large_as_the_image_is_a_config_error(tmp_path):
    config = tiny_cnn(tmp_path, extra="")
    with pytest.raises(ConfigError, match="data.augment_shift: 28 pixels"):
        fit(load_config(config, [f"output={tmp_path / 'run'}", "data.augment_shift=28"]), echo=lambda *a: None)
    assert not (tmp_path / "run").exists()  # refused before the run directory is made


def test_a_rotation_over_a_half_turn_is_a_config_error(tmp_path):
    config = tiny_cnn(tmp_path, extra="")
    with pytest.raises(ConfigError, match="data.augment_rotate: expected a value <= 180, received 200"):
        load_config(config, [f"output={tmp_path / 'run'}", "data.augment_rotate=200"])
    assert not (tmp_path / "run").exists()


def test_an_erase_probability_above_one_is_a_config_error(tmp_path):
    config = tiny_cnn(tmp_path, extra="")
    with pytest.raises(ConfigError, match="data.augment_erase: expected a value <= 1, received 1.5"):
        load_config(config, [f"output={tmp_path / 'run'}", "data.augment_erase=1.5"])


def test_a_cnn_run_with_augmentation_resumes_bit_identically(tmp_path, monkeypatch):
    import os
    import signal

    from layerwise.optim.optimizers import Optimizer
    from layerwise.util.npz import load_checkpoint

    config = tiny_cnn(tmp_path)
    aug = ["data.augment_shift=2", "data.augment_flip=true", "data.augment_rotate=10", "data.augment_erase=0.5"]
    plain = fit(load_config(config, [f"output={tmp_path / 'plain'}"]), echo=lambda *a: None)
    straight = fit(load_config(config, [f"output={tmp_path / 'straight'}", *aug]), echo=lambda *a: None)
    assert straight["history"][0]["train_loss"] != plain["history"][0]["train_loss"]  # augmentation is used
    real_step, count = Optimizer.step, {"n": 0}

    def step(self):
        real_step(self)
        count["n"] += 1
        if count["n"] == 6:  # mid epoch 2
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Optimizer, "step", step)
    with pytest.raises(TrainingInterrupted):
        fit(load_config(config, [f"output={tmp_path / 'split'}", *aug]), echo=lambda *a: None)
    monkeypatch.undo()
    resumed = resume(tmp_path / "split", echo=lambda *a: None)
    for name in ("last.npz", "best.npz"):
        a, b = load_checkpoint(tmp_path / "straight" / name)[0], load_checkpoint(tmp_path / "split" / name)[0]
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), name
    assert [r["train_loss"] for r in resumed["history"]] == [r["train_loss"] for r in straight["history"]]
