"""`layerwise plot`: every kind writes a PNG of the stated size; outputs, refusals and the missing extra.

Runs are tiny: a 784-32-10 net on 2,000 MNIST digits for 2 epochs, and a linear regression.
"""

import builtins
import json
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import MNIST_ROOT, REPO
from layerwise.cli import main
from layerwise.views.plot import class_names, display_pixels, initial_weights, pixel_size, run_names

def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


needs_matplotlib = pytest.mark.skipif(not _has_matplotlib(), reason="matplotlib is not installed (pip install 'layerwise[plot]')")

MNIST = """
seed: 0
data: {dataset: mnist, root: %s, train_limit: 2000, val_size: 500, test_limit: 500}
model:
  layers:
    - {type: linear, out_features: 32}
    - {type: relu}
    - {type: linear, out_features: 10}
optimizer: {lr: 0.05, momentum: 0.9}
train: {epochs: 2}
"""

REGRESSION = """
seed: 0
data: {dataset: regression, n_samples: 300, val_size: 50, test_size: 50}
model:
  layers:
    - {type: linear, out_features: 1}
loss: mse
optimizer: {lr: 0.05, momentum: 0.9}
train: {epochs: 3, batch_size: 32}
"""


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def train(tmp, text, name):
    config = tmp / f"{name}.yaml"
    config.write_text(textwrap.dedent(text).lstrip())
    result = run("train", config, "-s", f"output={tmp / name}")
    assert result.exit_code == 0, result.output
    return tmp / name


def png_size(path):
    """(width, height) from a PNG's signature and IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def assert_error(result, code, *fragments):
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plot")
    found = {"regression": train(tmp, REGRESSION, "linreg"), "regression2": train(tmp, REGRESSION.replace("seed: 0", "seed: 1"), "linreg2")}
    if (MNIST_ROOT / "train-images-idx3-ubyte.gz").is_file():
        found["mnist"] = train(tmp, MNIST % MNIST_ROOT, "digits")
    return found


def needs(runs, name):
    if name not in runs:
        pytest.skip(f"no MNIST in {MNIST_ROOT}")
    return runs[name]


# --- each kind: a PNG of the stated size at RUN/plots/<what>.png --------------------------------


@needs_matplotlib
@pytest.mark.parametrize("what", ["curves", "confusion", "errors", "weights"])
def test_each_kind_on_mnist_writes_a_png_of_the_stated_size(runs, what):
    run_dir = needs(runs, "mnist")
    result = run("plot", run_dir, "--what", what)
    assert result.exit_code == 0, result.output
    path = run_dir / "plots" / f"{what}.png"
    assert result.output == f"wrote {path}\n"
    assert png_size(path) == pixel_size(what)


@needs_matplotlib
@pytest.mark.parametrize("what", ["curves", "errors", "weights"])
def test_each_kind_on_regression_writes_a_png_of_the_stated_size(runs, what):
    result = run("plot", runs["regression"], "--what", what)
    assert result.exit_code == 0, result.output
    assert png_size(runs["regression"] / "plots" / f"{what}.png") == pixel_size(what)


def test_stated_sizes_are_the_documented_ones():
    assert [pixel_size(w) for w in ("curves", "confusion", "errors", "weights")] == [
        (1200, 800), (900, 800), (1200, 1000), (1600, 800)]
    sizes = "curves 1200x800, confusion 900x800, errors 1200x1000, weights 1600x800"
    assert " ".join(run("plot", "--help").output.split()).count(sizes) == 1
    readme = (REPO / "README.md").read_text()
    for what in ("curves", "confusion", "errors", "weights"):
        assert f"| `{what}` | {'x'.join(map(str, pixel_size(what)))} |" in readme


@needs_matplotlib
def test_several_runs_overlay_into_the_first_runs_plots(runs):
    result = run("plot", runs["regression"], runs["regression2"])
    assert result.exit_code == 0, result.output
    path = runs["regression"] / "plots" / "curves-vs-linreg2.png"
    assert result.output == f"wrote {path}\n"
    assert png_size(path) == pixel_size("curves")


@needs_matplotlib
def test_other_kinds_draw_one_picture_per_run(runs):
    result = run("plot", runs["regression"], runs["regression2"], "--what", "weights")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"wrote {r / 'plots' / 'weights.png'}" for r in (runs["regression"], runs["regression2"])]


@needs_matplotlib
def test_default_output_is_layerwise_own_and_replaced(runs):
    path = runs["regression"] / "plots" / "curves.png"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"an older picture")
    assert run("plot", runs["regression"]).exit_code == 0
    assert png_size(path) == pixel_size("curves")


# --- -o: a file the user names is never replaced without --overwrite -------------------------


@needs_matplotlib
def test_output_file_svg_and_refusal_to_overwrite(runs, tmp_path):
    out = tmp_path / "mine.svg"
    result = run("plot", runs["regression"], "--what", "weights", "-o", out)
    assert result.exit_code == 0 and result.output == f"wrote {out}\n"
    assert out.read_text().lstrip().startswith("<?xml")
    out.write_text("the user's own file")
    assert_error(run("plot", runs["regression"], "-o", out), 2, str(out), "already exists", "--overwrite")
    assert out.read_text() == "the user's own file"
    assert run("plot", runs["regression"], "--what", "weights", "-o", out, "--overwrite").exit_code == 0
    assert out.read_text() != "the user's own file"


def test_output_errors_write_nothing(runs, tmp_path):
    assert_error(run("plot", runs["regression"], "-o", tmp_path / "a.jpg"), 2, "a.jpg", ".png")
    assert_error(run("plot", runs["regression"], "-o", tmp_path / "no" / "a.png"), 2, "does not exist")
    assert_error(run("plot", runs["regression"], runs["regression2"], "--what", "weights", "-o", tmp_path / "w.png"),
                 2, "one picture per run")
    assert list(tmp_path.iterdir()) == []


@needs_matplotlib
def test_output_suffix_case_is_kept(runs, tmp_path):
    out = tmp_path / "Curves.PNG"
    assert run("plot", runs["regression"], "-o", out).exit_code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["Curves.PNG"] and png_size(out) == pixel_size("curves")


@needs_matplotlib
def test_plots_in_the_way_is_an_error(tmp_path, runs):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(runs["regression2"], copy)
    shutil.rmtree(copy / "plots", ignore_errors=True)
    (copy / "plots").write_text("not a directory")
    assert_error(run("plot", copy), 2, "plots is a file")
    (copy / "plots").unlink()
    (copy / "plots" / "curves.png").mkdir(parents=True)
    assert_error(run("plot", copy), 2, "curves.png is a directory")


@needs_matplotlib
def test_what_does_not_apply_or_run_is_not_finished(runs, tmp_path):
    assert_error(run("plot", runs["regression"], "--what", "confusion"), 2, "regression run", "--what errors")
    empty = tmp_path / "empty"
    empty.mkdir()
    for what in ("curves", "confusion", "errors", "weights"):
        assert_error(run("plot", empty, "--what", what), 1, str(empty))
    assert list(empty.iterdir()) == []


@needs_matplotlib
def test_classification_and_regression_are_not_overlaid(runs):
    mnist = needs(runs, "mnist")
    assert_error(run("plot", mnist, runs["regression"]), 2, "classification and regression")


# --- matplotlib is an optional extra ----------------------------------------------------------


def test_missing_matplotlib_is_one_line_saying_how_to_install(runs, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    before = sorted(p.name for p in runs["regression2"].iterdir())
    assert_error(run("plot", runs["regression2"]), 1, "matplotlib", "pip install 'layerwise[plot]'")
    assert sorted(p.name for p in runs["regression2"].iterdir()) == before


def test_the_cli_does_not_import_matplotlib():
    code = "import sys, layerwise.cli; print(sorted(m for m in ('matplotlib', 'numpy', 'PIL') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "[]"


# --- the helpers behind the pictures ----------------------------------------------------------


def test_class_names_from_the_checkpoint_else_indices():
    meta = {"preprocessing": {"class_names": ["cat", "dog", "eel"]}}
    assert class_names(meta, 3) == ["cat", "dog", "eel"]
    assert class_names({}, 3) == ["0", "1", "2"]
    assert class_names(meta, 4) == ["0", "1", "2", "3"]  # names that do not fit are not used


def test_a_table_is_drawn_as_images_only_when_its_inputs_can_be_pixels():
    from layerwise.views.plot import image_shape

    table = {"preprocessing": {"kind": "table", "columns": [f"p{i}" for i in range(64)], "linear": None}}
    assert image_shape(table, 64) == (8, 8)  # 64 pixel columns of a CSV: drawn as 8x8
    copies = {"preprocessing": {"kind": "table", "columns": [f"c{i}" for i in range(32)],
                                "linear": {"index": list(range(32)), "mean": [0.0] * 32, "std": [1.0] * 32}}}
    assert image_shape(copies, 64) is None  # 32 columns and their 32 linear copies are not an image


def test_display_pixels_undoes_the_normalisation():
    pixels = np.array([[0, 51, 255, 128]], dtype=np.float64)
    mnist = {"config": {"data": {"dataset": "mnist", "scale": True, "normalize": True, "mean": 0.1307, "std": 0.3081}}}
    x = (pixels / 255 - 0.1307) / 0.3081
    np.testing.assert_allclose(display_pixels(x, mnist), pixels / 255, atol=1e-12)
    stored = {"preprocessing": {"kind": "image", "image_shape": [2, 2], "scale": 1 / 255, "mean": 0.5, "std": 0.25}}
    np.testing.assert_allclose(display_pixels((pixels / 255 - 0.5) / 0.25, stored), pixels / 255, atol=1e-12)


def test_initial_weights_are_the_runs_own_start(runs):
    from layerwise.run.checkpoint import load_run_checkpoint

    run_dir = needs(runs, "mnist")
    arrays, meta = load_run_checkpoint(run_dir / "best.npz")
    W = arrays["model/0.W"].astype(np.float64)
    start = initial_weights(meta, 0, W, 10)
    assert start is not None and start.shape == W.shape and not np.array_equal(start, W)
    # a checkpoint's start under another seed does not look like this run's: not used
    other = json.loads(json.dumps(meta))
    other["config"]["seed"] = 1
    assert initial_weights(other, 0, W, 10) is None


def test_run_names_are_told_apart(tmp_path):
    a, b = tmp_path / "x" / "run", tmp_path / "y" / "run"
    assert run_names([a, b]) == ["x/run", "y/run"]
    assert run_names([a, tmp_path / "other"]) == ["run", "other"]


@needs_matplotlib
def test_errors_are_the_runs_mistakes_most_confident_first(runs):
    from layerwise.views.plot import _errors_data

    run_dir = needs(runs, "mnist")
    d = _errors_data(run_dir, "digits")
    confusion = np.array(json.loads((run_dir / "test.json").read_text())["test_confusion"])
    assert d["wrong"] == confusion.sum() - np.trace(confusion) and d["total"] == confusion.sum()
    assert len(d["images"]) == min(48, d["wrong"]) and d["images"].shape[1:] == (28, 28)
    assert 0 <= d["images"].min() and d["images"].max() <= 1 and d["images"].max() > 0.9  # pixels, not z-scores
    assert (d["true"] != d["pred"]).all()
    assert (np.diff(d["confidence"]) <= 0).all()
    assert d["ink"] and d["classes"] == [str(i) for i in range(10)]


@needs_matplotlib
@pytest.mark.parametrize("name", ["mnist", "regression"])
def test_curves_star_the_epoch_training_chose(runs, name):
    from layerwise.views.plot import _curves_data, _matplotlib
    from layerwise.views.figures import draw_curves

    run_dir = needs(runs, name)
    fig = _matplotlib()(figsize=(12, 8), dpi=100, layout="constrained")
    draw_curves(fig, _curves_data([run_dir], ["run"]))
    metric_ax = fig.axes[1]
    stars = [line for line in metric_ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 1
    assert stars[0].get_xdata()[0] == json.loads((run_dir / "test.json").read_text())["epoch"]


def test_the_loss_axis_says_when_the_labels_are_smoothed():
    from matplotlib.figure import Figure

    from layerwise.views.figures import draw_curves

    epochs = np.arange(1, 4)
    m = {"epoch": epochs, "train_loss": np.array([1.0, 0.5, 0.4]), "val_loss": np.array([1.1, 0.6, 0.5]),
         "val_accuracy": np.array([0.5, 0.8, 0.9]), "lr": np.full(3, 0.001)}
    for smoothing, label in ((0.0, "cross-entropy"), (0.1, "cross-entropy (smoothed labels, e = 0.1)")):
        fig = Figure()
        draw_curves(fig, [("run", dict(m, label_smoothing=smoothing))])
        assert fig.axes[0].get_ylabel() == label  # a smoothed loss levels off above 0
