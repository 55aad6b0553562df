"""Every view on a tiny CNN run (tests/tinycnn.py): summary, trace, gradcheck of the run, plot --what
weights, predict on .npy / IDX / PNG, export to ONNX (checked with onnxruntime); and an interrupted CNN
run resumed bit for bit."""

import json

import numpy as np
import pytest

from layerwise.config.schema import load_config
from layerwise.errors import TrainingInterrupted
from layerwise.run.fit import fit, resume
from test_cli import assert_ok, run
from tinycnn import tiny_cnn


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cnn")
    config = tiny_cnn(tmp)
    assert_ok(run("train", config, "-s", f"output={tmp / 'run'}"))
    return tmp / "run"


def test_summary_shows_image_shapes_params_and_conv_flops(cnn_run):
    result = run("summary", cnn_run, "--json")
    assert_ok(result)
    s = json.loads(result.stdout)
    rows = s["layers"]
    assert s["input_features"] == "1, 28, 28"
    assert rows[0]["output_shape"] == [16, 3, 28, 28] and rows[3]["output_shape"] == [16, 3, 14, 14]
    assert rows[4]["output_shape"] == [16, 4, 6, 6] and rows[6]["output_shape"] == [16, 4, 5, 5]
    assert rows[8]["output_shape"] == [16, 100]
    assert rows[0]["params"] == 5 * 5 * 1 * 3 + 3 and rows[4]["params"] == 3 * 3 * 3 * 4 + 4
    # conv 0: 28*28 outputs x 3 channels x 25 multiply-adds x 2, plus the bias per output entry
    assert rows[0]["flops_forward"] == 2 * 28 * 28 * 3 * 25 + 28 * 28 * 3
    assert rows[0]["activation_bytes"] == 16 * 3 * 28 * 28 * 4
    assert s["totals"]["params"] == sum(r["params"] for r in rows)


def test_trace_writes_the_im2col_equations_with_shapes(cnn_run):
    result = run("trace", cnn_run)
    assert_ok(result)
    assert "y = im2col(x) @ W + b   (8,28,28,1) -> cols (6272,25) @ (25,3)+(3,) -> (8,28,28,3)" in result.stdout
    assert "dx = col2im(dy @ W.T)" in result.stdout  # the strided conv
    assert "dW = cols.T @ dy   (25,6272)@(6272,3) -> (5,5,1,3)" in result.stdout


def test_gradcheck_of_the_trained_run_passes(cnn_run):
    result = run("gradcheck", cnn_run)
    assert_ok(result)
    assert "all 11 rows pass" in result.stdout


def test_plot_weights_draws_the_first_layer_filters(cnn_run, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "w.png"
    assert_ok(run("plot", cnn_run, "--what", "weights", "-o", out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_predict_on_npy_idx_and_png_agrees_with_the_model(cnn_run, tmp_path):
    import layerwise

    model = layerwise.load(cnn_run)
    from layerwise.data.idx import read_idx

    test = read_idx(cnn_run.parent / "idx" / "t10k-images-idx3-ubyte.gz")[:4]
    np.save(tmp_path / "x.npy", test)
    expected = [str(v) for v in model.predict(test)]
    for path in (tmp_path / "x.npy", cnn_run.parent / "idx" / "t10k-images-idx3-ubyte.gz"):
        result = run("predict", cnn_run, path)
        assert_ok(result)
        got = [line.split()[1] for line in result.stdout.splitlines() if f"{path.name}[" in line][:4]
        assert got, result.stdout
        assert got == expected
    PIL = pytest.importorskip("PIL.Image")
    PIL.fromarray(255 - test[0]).save(tmp_path / "digit.png")  # dark ink on white paper
    assert_ok(run("predict", cnn_run, tmp_path / "digit.png"))


def test_export_matches_the_model_in_onnxruntime(cnn_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import layerwise
    from layerwise.data.idx import read_idx

    out = tmp_path / "cnn.onnx"
    result = run("export", cnn_run, out)
    assert_ok(result)
    assert "Conv 2" in result.stdout and "MaxPool 1" in result.stdout and "AveragePool 1" in result.stdout
    x = read_idx(cnn_run.parent / "idx" / "t10k-images-idx3-ubyte.gz")[:5].reshape(5, -1).astype(np.float32)
    session = ort.InferenceSession(str(out))
    probs = session.run(["probabilities"], {"pixels": x})[0]
    assert np.allclose(probs, layerwise.load(cnn_run).predict_proba(x), atol=1e-5)


def test_interrupted_cnn_run_resumes_bit_identically(tmp_path, monkeypatch):
    import os
    import signal

    from layerwise.optim.optimizers import Optimizer
    from layerwise.util.npz import load_checkpoint

    def interrupt_after(steps):  # a real SIGINT after `steps` optimizer steps (as tests/run/test_training.py)
        real_step, count = Optimizer.step, {"n": 0}

        def step(self):
            real_step(self)
            count["n"] += 1
            if count["n"] == steps:
                os.kill(os.getpid(), signal.SIGINT)

        monkeypatch.setattr(Optimizer, "step", step)

    def assert_same_arrays(a, b):
        a, b = load_checkpoint(a)[0], load_checkpoint(b)[0]
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

    config = tiny_cnn(tmp_path)
    straight = fit(load_config(config, [f"output={tmp_path / 'straight'}"]), echo=quiet)
    interrupt_after(5)  # mid epoch 1 (4 steps of 16 per epoch: 50 training images)
    with pytest.raises(TrainingInterrupted):
        fit(load_config(config, [f"output={tmp_path / 'split'}"]), echo=quiet)
    monkeypatch.undo()
    resumed = resume(tmp_path / "split", echo=quiet)
    for name in ("last.npz", "best.npz"):
        assert_same_arrays(tmp_path / "straight" / name, tmp_path / "split" / name)
    assert [r["train_loss"] for r in resumed["history"]] == [r["train_loss"] for r in straight["history"]]


def test_plot_features_draws_one_image_through_the_spatial_layers(cnn_run, tmp_path):
    pytest.importorskip("matplotlib")
    from layerwise.views.features import features_data

    d = features_data(cnn_run, "cnn")
    assert [layer["index"] for layer in d["layers"]] == [0, 1, 2, 3, 4, 5, 6, 7]  # up to the flatten
    assert d["layers"][0]["maps"].shape == (3, 28, 28) and d["layers"][3]["maps"].shape == (3, 14, 14)
    assert d["image"].shape == (28, 28)
    out = tmp_path / "f.png"
    assert_ok(run("plot", cnn_run, "--what", "features", "-o", out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
