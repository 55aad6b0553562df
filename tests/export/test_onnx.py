"""`layerwise export`: the ONNX graph, run by onnxruntime (onnx.reference without it), against layerwise's
own predictions: the same arg-max on every input and probabilities (or values) within 1e-5."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from tinyidx import write_tiny

from layerwise.cli import main
from layerwise.data.mnist import FILES
from layerwise.run.loaded import load

onnx = pytest.importorskip("onnx")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
MLP = [{"type": "linear", "out_features": 32}, {"type": "relu"}, {"type": "linear", "out_features": 10}]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def run_onnx(path, inputs):
    """The model's outputs by name, from onnxruntime, or onnx's reference evaluator without it."""
    try:
        import onnxruntime
    except ImportError:
        from onnx.reference import ReferenceEvaluator

        session = ReferenceEvaluator(str(path))
        names = [o.name for o in onnx.load(str(path)).graph.output]
        return dict(zip(names, session.run(None, inputs)))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs)))


def train(tmp, name, config):
    (tmp / f"{name}.yaml").write_text(yaml.safe_dump(config))
    result = cli("train", tmp / f"{name}.yaml", "-s", f"output={tmp / name}")
    assert result.exit_code == 0, result.output
    return tmp / name


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    write_tiny(tmp / "mnist", n_train=200, n_test=50)
    return tmp


def image_config(tmp, layers, loss="softmax_cross_entropy", epochs=2):
    return {"data": {"dataset": "mnist", "root": str(tmp / "mnist"), "val_size": 20}, "model": {"layers": layers},
            "loss": loss, "optimizer": {"lr": 0.05}, "train": {"epochs": epochs, "batch_size": 32}}


def test_image_model_matches_predict(tmp):
    run = train(tmp, "mlp", image_config(tmp, MLP))
    result = cli("export", run, tmp / "mlp.onnx")
    assert result.exit_code == 0, result.output
    assert "input pixels; outputs probabilities, label, class; ops: Gemm 2" in result.output
    from layerwise.data.idx import read_idx

    pixels = read_idx(tmp / "mnist" / f"{FILES['test_images']}.gz").reshape(-1, 784).astype(np.float32)
    got, model = run_onnx(tmp / "mlp.onnx", {"pixels": pixels}), load(run)
    expected = model.predict_proba(pixels)
    assert np.array_equal(got["label"], expected.argmax(axis=1))
    assert np.abs(got["probabilities"] - expected).max() < 1e-5
    assert list(got["class"]) == [str(c) for c in model.predict(pixels)]  # the graph gives the names as text
    props = {p.key: p.value for p in onnx.load(str(tmp / "mlp.onnx")).metadata_props}
    assert json.loads(props["class_names"]) == model.classes and props["input"] == "pixels"
    assert yaml.safe_load(props["config"])["model"]["layers"][0]["out_features"] == 32


@pytest.mark.parametrize("opset", [20, 17])  # 17: Gelu decomposed into Mul/Add/Tanh
def test_every_layer_type_of_the_layers_tour(tmp, opset):
    tour = yaml.safe_load((CONFIGS / "layers_tour.yaml").read_text())
    run = tmp / "tour"
    if not run.exists():
        train(tmp, "tour", image_config(tmp, tour["model"]["layers"], tour["loss"], epochs=1))
    out = tmp / f"tour{opset}.onnx"
    assert cli("export", run, out, "--opset", opset).exit_code == 0
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"Gemm", "BatchNormalization", "Relu", "LeakyRelu", "Elu", "Softplus", "Tanh", "Sigmoid"} <= ops
    assert ("Gelu" in ops) == (opset >= 20) and "Dropout" not in ops
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (64, 784)).astype(np.float32)
    got, model = run_onnx(out, {"pixels": pixels}), load(run)
    expected = model.predict_proba(pixels)  # binary_cross_entropy: one sigmoid per class
    assert np.array_equal(got["label"], expected.argmax(axis=1))
    assert np.abs(got["probabilities"] - expected).max() < 1e-5


def table(n=90, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n).round(3), rng.normal(size=n).round(3)
    color = np.array(["red", "green", "blue"])[rng.integers(0, 3, n)]
    label = np.where(a + (color == "red") > 0.3, "yes", "no")
    rows = ["a,b,color,label,y"] + [f"{a[i]},{b[i]},{color[i]},{label[i]},{100 * a[i] - 50 * b[i] + 7:.3f}" for i in range(n)]
    return "\n".join(rows) + "\n"


def encoded_columns(model, csv_path):
    """The graph's `features` for a CSV: the encoded columns, unstandardised (what the metadata names)."""
    from layerwise.data.tabular import table_inputs

    x, _ = table_inputs(dict(model.preprocessing, mean=None, std=None, clip=None, linear=None), csv_path)
    return x.astype(np.float32)


@pytest.mark.parametrize("task,robust", [("classification", False), ("regression", False), ("classification", True),
                                         ("regression", True), ("classification", "clamped"), ("regression", "unbounded"),
                                         ("regression", "clamped")])
def test_csv_models_match_predict(tmp, task, robust):
    (tmp / "t.csv").write_text(table())
    loss = "softmax_cross_entropy" if task == "classification" else "mse"
    target = "label" if task == "classification" else "y"
    config = {"data": {"dataset": "csv", "path": str(tmp / "t.csv"), "target": target,
                       "standardize_target": task == "regression", "robust_scale": bool(robust),
                       "linear_copy": robust if isinstance(robust, str) else None},
              "model": {"layers": [{"type": "linear", "out_features": 16}, {"type": "tanh"}, {"type": "linear"}]},
              "loss": loss, "optimizer": {"lr": 0.05}, "train": {"epochs": 3, "batch_size": 16}}
    run = train(tmp, f"csv_{task}_{robust}", config)
    out = tmp / f"csv_{task}_{robust}.onnx"
    assert cli("export", run, out).exit_code == 0
    model = load(run)
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props["feature_names"]) == model.preprocessing["columns"]  # a, b, color=blue, ...
    # the training rows, and rows far outside their range (the clip, the linear copies, the clamp)
    (tmp / "far.csv").write_text("a,b,color,label,y\n40,-30,red,yes,1\n-25,8,blue,no,2\n1e4,0,green,no,0\n")
    for csv in (tmp / "t.csv", tmp / "far.csv"):
        x = encoded_columns(model, csv)
        got = run_onnx(out, {"features": x})
        if task == "classification":
            expected = model.predict_proba(csv)
            assert np.array_equal(got["label"], expected.argmax(axis=1))
            assert np.abs(got["probabilities"] - expected).max() < 1e-5
        else:
            expected = model.predict(csv)  # in the target's units: the graph undoes the standardisation
            assert np.abs(got["values"][:, 0] - expected).max() <= 1e-5 * np.abs(expected).max()


def test_existing_output_is_never_replaced_and_bad_names_are_one_line(tmp):
    run = tmp / "mlp" if (tmp / "mlp").exists() else train(tmp, "mlp", image_config(tmp, MLP))
    (tmp / "taken.onnx").write_bytes(b"mine")
    for args, fragment in [((run, tmp / "taken.onnx"), "already exists"), ((run, tmp / "x.txt"), "end in .onnx"),
                           ((run, tmp / "y.onnx", "--opset", "9"), "opsets 13 to")]:
        result = cli("export", *args)
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert result.output.count("\n") == 1 and result.output.startswith("error: ") and fragment in result.output
    assert (tmp / "taken.onnx").read_bytes() == b"mine" and not (tmp / "y.onnx").exists()


def test_missing_onnx_names_the_extra(tmp, monkeypatch):
    run = tmp / "mlp" if (tmp / "mlp").exists() else train(tmp, "mlp", image_config(tmp, MLP))
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    result = cli("export", run, tmp / "none.onnx")
    assert result.exit_code == 1 and "pip install 'layerwise[onnx]'" in result.output
    assert not (tmp / "none.onnx").exists()
