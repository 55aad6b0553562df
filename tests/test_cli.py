"""The `layerwise` command end to end through CliRunner: train, eval, and every user-error path.

Runs are written into tmp_path (always `-s output=...`, never the default runs/<name>), on tiny
configs, so the whole file takes a few seconds.
"""

import csv
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from layerwise import __version__
from layerwise.cli import main

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
from conftest import MNIST_ROOT
needs_mnist = pytest.mark.skipif(not MNIST_ROOT.is_dir(), reason=f"no MNIST in {MNIST_ROOT}")
MNIST_SLICE = [
    "-s", f"data.root={MNIST_ROOT}", "-s", "data.train_limit=2000", "-s", "data.val_size=500",
    "-s", "data.test_limit=500", "-s", "train.epochs=2",
]

# y = 3 x1 + 4 x2 + 2 x3 + 5 + noise: a single linear layer recovers w and b in a few epochs.
REGRESSION = """
seed: 0
data: {dataset: regression, n_samples: 600, weights: [3, 4, 2], bias: 5, noise_std: 0.1,
       val_size: 100, test_size: 100}
model:
  layers:
    - {type: linear, out_features: 1}
loss: mse
optimizer: {lr: 0.05, momentum: 0.9, schedule: cosine}
train: {epochs: 8, batch_size: 32}
"""

# A two-layer net on the same data, for tests that need more than one linear layer.
MLP = """
seed: 0
data: {dataset: regression, n_samples: 300, weights: [3, 4, 2], bias: 5, val_size: 50, test_size: 50}
model:
  layers:
    - {type: linear, out_features: 8}
    - {type: relu}
    - {type: linear, out_features: 1}
loss: mse
optimizer: {lr: 0.01, momentum: 0.9}
train: {epochs: 2, batch_size: 32}
"""


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def train(config, output, *args):
    return run("train", config, "-s", f"output={output}", *args)


def assert_ok(result):
    assert result.exit_code == 0, result.output
    assert result.exception is None, result.output


def assert_error(result, code, *fragments):
    """Exit `code`, no traceback, and the error is one line that contains every fragment."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not a crash
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def assert_usage_error(result, *fragments):
    """A click usage error: exit 2, one `Error:` line naming the problem, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def read_metrics(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def learned_weights(output):
    match = re.search(r"learned weights w = \[([^\]]*)\], bias b = (\S+)", output)
    assert match, output
    return [float(w) for w in match.group(1).split(",")], float(match.group(2))


# --- help and version --------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["-h"], ["train", "--help"], ["eval", "--help"]])
def test_help_and_version(args):
    result = run(*args)
    assert_ok(result)
    if args == ["--version"]:
        assert __version__ in result.output
    else:
        assert "Usage:" in result.output
    if args[0] == "eval":
        assert "--split" in result.output


# --- regression: train, files, eval ------------------------------------------------------------


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("regression")
    result = train(write(tmp, REGRESSION, "linreg.yaml"), tmp / "run")
    assert_ok(result)
    return tmp / "run", result


def test_train_regression_writes_run_dir(regression_run):
    run_dir, result = regression_run
    assert sorted(p.name for p in run_dir.iterdir()) == [".layerwise.lock", "best.npz", "config.yaml", "last.npz", "metrics.csv", "test.json"]
    rows = read_metrics(run_dir)
    assert len(rows) == 8 and [int(r["epoch"]) for r in rows] == list(range(1, 9))
    assert {"epoch", "lr", "train_loss", "val_loss", "val_mse"} <= set(rows[0])
    assert "training regression into" in result.output and "done in" in result.output
    with np.load(run_dir / "best.npz") as npz:
        assert npz["model/0.W"].shape == (3, 1) and npz["model/0.b"].shape == (1,)


def test_saved_config_is_the_resolved_config(regression_run):
    import yaml

    run_dir, _ = regression_run
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["name"] == "linreg" and saved["output"] == str(run_dir)
    assert saved["optimizer"]["lr"] == 0.05 and saved["train"]["epochs"] == 8
    assert saved["optimizer"]["weight_decay"] == 0.0  # defaults are written out too


@pytest.mark.parametrize("split", ["test", "val", "train"])
def test_eval_regression_recovers_weights(regression_run, split):
    run_dir, _ = regression_run
    result = run("eval", run_dir, "--split", split)
    assert_ok(result)
    assert f"{split} split" in result.output and "mse" in result.output
    w, b = learned_weights(result.output)
    np.testing.assert_allclose(w, [3, 4, 2], atol=0.1)
    assert b == pytest.approx(5, abs=0.1)


def test_eval_a_checkpoint_file(regression_run):
    run_dir, _ = regression_run
    result = run("eval", run_dir / "best.npz")
    assert_ok(result)
    np.testing.assert_allclose(learned_weights(result.output)[0], [3, 4, 2], atol=0.1)


def test_shipped_regression_config_recovers_w_and_b(tmp_path):
    assert_ok(train(CONFIGS / "regression.yaml", tmp_path / "run"))
    result = run("eval", tmp_path / "run")
    assert_ok(result)
    w, b = learned_weights(result.output)
    np.testing.assert_allclose(w, [3, 4, 2], atol=0.05)
    assert b == pytest.approx(5, abs=0.05)


def test_shipped_interpolation_config_fits(tmp_path):
    assert_ok(train(CONFIGS / "interpolation.yaml", tmp_path / "run"))
    last = read_metrics(tmp_path / "run")[-1]
    assert int(last["epoch"]) == 60
    assert float(last["val_mse"]) < 1.0


# --- determinism -------------------------------------------------------------------------------


def load_arrays(path):
    with np.load(path) as npz:
        return {name: npz[name] for name in npz.files if name != "__meta__"}


def test_same_seed_gives_bit_identical_weights(tmp_path):
    config = write(tmp_path, MLP)
    for name, seed in [("a", 0), ("b", 0), ("c", 1)]:
        assert_ok(train(config, tmp_path / name, "-s", f"seed={seed}"))
    a, b, c = (load_arrays(tmp_path / name / "best.npz") for name in "abc")
    assert {"model/0.W", "model/0.b", "model/2.W", "model/2.b", "optim/velocity/0.W"} <= a.keys()
    assert a.keys() == b.keys() == c.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    last_a, last_b = (load_arrays(tmp_path / name / "last.npz") for name in "ab")
    assert all(np.array_equal(last_a[k], last_b[k]) for k in last_a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


# --- MNIST slice -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    if not MNIST_ROOT.is_dir():
        pytest.skip(f"no MNIST in {MNIST_ROOT}")
    run_dir = tmp_path_factory.mktemp("mnist") / "run"
    result = train(CONFIGS / "mnist.yaml", run_dir, *MNIST_SLICE)
    assert_ok(result)
    return run_dir, result


def parse_eval(output):
    """(accuracy in [0, 1], 10x10 confusion counts) from `layerwise eval` on a classifier."""
    accuracy = re.search(r"acc (\d+(?:\.\d+)?)%", output)
    assert accuracy, output
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("true\\pred"))
    assert lines[header].split()[1:] == [str(j) for j in range(10)]
    rows = [[int(v) for v in line.split()] for line in lines[header + 1 : header + 11]]
    assert [row[0] for row in rows] == list(range(10))  # the true class labels each row
    counts = np.array([row[1:] for row in rows])
    assert counts.shape == (10, 10)
    return float(accuracy.group(1)) / 100, counts


@needs_mnist
def test_mnist_slice_trains(mnist_run):
    run_dir, result = mnist_run
    assert "1,500 train / 500 val / 500 test" in result.output
    rows = read_metrics(run_dir)
    assert len(rows) == 2 and 0.5 < float(rows[-1]["val_accuracy"]) <= 1
    assert (run_dir / "best.npz").is_file()


@needs_mnist
def test_mnist_eval_prints_accuracy_and_confusion(mnist_run):
    run_dir, _ = mnist_run
    result = run("eval", run_dir)
    assert_ok(result)
    assert "test split, 500 examples" in result.output
    accuracy, counts = parse_eval(result.output)
    assert counts.sum() == 500
    assert accuracy == pytest.approx(np.trace(counts) / 500, abs=1e-4)
    assert accuracy > 0.5
    # eval reports exactly what training recorded for the same (best) checkpoint
    import json

    saved = json.loads((run_dir / "test.json").read_text())
    assert saved["test_accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert np.array_equal(np.array(saved["test_confusion"]), counts)


@needs_mnist
def test_mnist_eval_val_split(mnist_run):
    run_dir, _ = mnist_run
    result = run("eval", run_dir, "--split", "val")
    assert_ok(result)
    assert "val split, 500 examples" in result.output
    accuracy, counts = parse_eval(result.output)
    assert counts.sum() == 500
    # the same model on the same split as the last epoch's validation
    assert accuracy == pytest.approx(float(read_metrics(run_dir)[-1]["val_accuracy"]), abs=1e-4)


@needs_mnist
def test_mnist_root_without_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("train", CONFIGS / "mnist.yaml", "-s", f"data.root={empty}", "-s", f"output={tmp_path / 'run'}")
    assert_error(result, 1, "data.root", str(empty), "train-images-idx3-ubyte")
    assert not (tmp_path / "run").exists()


# --- error paths -------------------------------------------------------------------------------


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert_usage_error(run("train", missing), "nope.yaml", "does not exist")


def test_yaml_syntax_error(tmp_path):
    config = write(tmp_path, "seed: 0\noptimizer: {lr: 0.1\ntrain: {epochs: 2}\n")
    assert_error(train(config, tmp_path / "run"), 2, str(config), "YAML syntax error", "line 3")


def test_malformed_override(tmp_path):
    config = write(tmp_path, REGRESSION)
    assert_error(run("train", config, "-s", "optimizer.lr"), 2, "optimizer.lr", "key.path=value")


def test_unknown_layer_writes_nothing(tmp_path):
    config = write(tmp_path, REGRESSION.replace("type: linear", "type: conv"))
    result = train(config, tmp_path / "run")
    assert_error(result, 2, str(config), "model.layers[0].type", "unknown layer 'conv'", "linear, relu")
    assert not (tmp_path / "run").exists()


def test_layer_type_that_is_not_a_name(tmp_path):
    config = write(tmp_path, REGRESSION.replace("type: linear", "type: [linear]"))
    result = train(config, tmp_path / "run")
    assert_error(result, 2, str(config), "model.layers[0].type")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("lr", ["0", "-0.1"])
def test_non_positive_lr(tmp_path, lr):
    config = write(tmp_path, REGRESSION)
    result = train(config, tmp_path / "run", "-s", f"optimizer.lr={lr}")
    assert_error(result, 2, str(config), "optimizer.lr", "> 0")
    assert not (tmp_path / "run").exists()


def test_layer_sizes_that_do_not_chain(tmp_path):
    config = write(tmp_path, MLP.replace("- {type: linear, out_features: 1}", "- {type: linear, in_features: 4, out_features: 1}"))
    result = train(config, tmp_path / "run")
    assert_error(result, 2, str(config), "model.layers[2].in_features", "does not chain", "gives 8")
    assert not (tmp_path / "run").exists()


def test_loss_that_does_not_fit_the_task(tmp_path):
    config = write(tmp_path, REGRESSION.replace("loss: mse", "loss: softmax_cross_entropy"))
    result = train(config, tmp_path / "run")
    assert_error(result, 2, str(config), "loss", "regression task", "use mse")
    assert not (tmp_path / "run").exists()


def test_existing_run_dir_needs_overwrite(tmp_path):
    config = write(tmp_path, MLP)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("keep me")
    result = train(config, run_dir)
    assert_error(result, 2, str(run_dir), "already exists", "--overwrite")
    assert sorted(p.name for p in run_dir.iterdir()) == ["notes.txt"]  # untouched

    # --overwrite only deletes what looks like a run directory, never an arbitrary one
    assert_error(train(config, run_dir, "--overwrite"), 2, "not a layerwise run directory")
    assert sorted(p.name for p in run_dir.iterdir()) == ["notes.txt"]

    (run_dir / "notes.txt").unlink()
    assert_ok(train(config, run_dir))
    assert_error(train(config, run_dir), 2, "already exists", "--overwrite")
    assert_ok(train(config, run_dir, "--overwrite"))
    assert sorted(p.name for p in run_dir.iterdir()) == [".layerwise.lock", "best.npz", "config.yaml", "last.npz", "metrics.csv", "test.json"]


def test_empty_existing_run_dir_is_used(tmp_path):
    (tmp_path / "run").mkdir()
    assert_ok(train(write(tmp_path, MLP), tmp_path / "run"))
    assert (tmp_path / "run" / "best.npz").is_file()


@pytest.fixture
def mlp_run(tmp_path):
    run_dir = tmp_path / "run"
    assert_ok(train(write(tmp_path, MLP), run_dir))
    return run_dir


def test_eval_missing_path(tmp_path):
    assert_usage_error(run("eval", tmp_path / "nothing-here"), "nothing-here", "does not exist")


def test_eval_directory_without_model(tmp_path):
    (tmp_path / "config.yaml").write_text(MLP)
    assert_error(run("eval", tmp_path), 1, str(tmp_path), "best.npz")


def test_eval_truncated_checkpoint(mlp_run):
    model = mlp_run / "best.npz"
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2])
    assert_error(run("eval", mlp_run), 1, str(model), "corrupt or truncated")


def test_eval_checkpoint_that_is_text(mlp_run):
    (mlp_run / "best.npz").write_text("not a zip file\n")
    result = run("eval", mlp_run)
    assert_error(result, 1, "best.npz", "not a")
    assert "pickled" not in result.stderr  # a text file is not a pickle: say what it is, not a wrong guess


def test_eval_checkpoint_that_is_a_bare_npy(mlp_run):
    # np.save into best.npz: a valid .npy, not an .npz archive; must be an error, not a TypeError
    with open(mlp_run / "best.npz", "wb") as f:
        np.save(f, np.zeros((3, 8), dtype=np.float32))
    assert_error(run("eval", mlp_run), 1, "best.npz", "not a")


def test_eval_npz_that_is_not_a_layerwise_checkpoint(mlp_run):
    np.savez(mlp_run / "best.npz", **{"0.W": np.zeros((3, 8), dtype=np.float32)})
    assert_error(run("eval", mlp_run), 1, "best.npz", "not a layerwise checkpoint")


def test_eval_after_config_edit_that_breaks_the_weights(mlp_run):
    config = mlp_run / "config.yaml"
    text = config.read_text()
    assert "out_features: 8" in text and "in_features: 8" in text
    # A consistent edit (the hidden width and the next layer's in_features): the config builds, the weights do not fit.
    config.write_text(text.replace("out_features: 8", "out_features: 4", 1).replace("in_features: 8", "in_features: 4", 1))
    result = run("eval", mlp_run)
    assert_error(result, 1, "does not match", str(config), "0.W")


def test_eval_override_is_checked(mlp_run):
    result = run("eval", mlp_run, "-s", "train.eval_batch_size=0")
    assert_error(result, 2, "train.eval_batch_size", ">= 1")


def test_eval_bad_split_is_a_usage_error(mlp_run):
    assert_usage_error(run("eval", mlp_run, "--split", "holdout"), "holdout")
