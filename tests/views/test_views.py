"""The views: `summary`, `trace` (and its graph), `config`, and --json on every command that has it.

Tiny synthetic-regression configs written to tmp_path; runs trained for one or two epochs.
"""

import json
import re
import shutil
import subprocess
import textwrap

import numpy as np
import pytest
import yaml

from layerwise.run.checkpoint import load_run_checkpoint, with_prefix
from layerwise.config.schema import load_config
from layerwise.nn.registry import build_loss, build_model
from layerwise.util.fileio import json_text
from layerwise.views.summary import summarize
from layerwise.views.trace import trace_model, trace_step
from layerwise.run.build import build
from test_cli import CONFIGS, MNIST_SLICE, assert_error, assert_ok, needs_mnist, run, write

# 3 features -> 4 ReLU units -> 1 output, on y = x1 + 2 x2 + 3 x3 + 1.
SMALL = """
seed: 3
data: {dataset: regression, n_samples: 200, weights: [1, 2, 3], bias: 1, val_size: 40, test_size: 40}
model:
  layers:
    - {type: linear, out_features: 4}
    - {type: relu}
    - {type: linear, out_features: 1}
loss: mse
optimizer: {lr: 0.01, momentum: 0.9}
train: {epochs: 2, batch_size: 16}
"""


@pytest.fixture
def small(tmp_path):
    return write(tmp_path, SMALL, "small.yaml")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("views")
    config = write(tmp, SMALL, "small.yaml")
    assert_ok(run("train", config, "-s", f"output={tmp / 'run'}"))
    return tmp / "run"


# --- summary -----------------------------------------------------------------------------------


def test_summary_totals_match_the_model_and_hand_counted_flops(small):
    s = summarize(small, batch=5)
    cfg = load_config(small)
    _, model, _, _ = build(cfg)
    t = s["totals"]
    assert t["params"] == model.num_parameters() == (3 * 4 + 4) + (4 * 1 + 1)
    # Forward, a multiply-add = 2: Linear(3,4) 2*3*4 + 4 = 28; ReLU 4; Linear(4,1) 2*4*1 + 1 = 9.
    assert [r["flops_forward"] for r in s["layers"]] == [28, 4, 9]
    assert t["flops_forward"] == 41
    # Backward: first Linear dW 24 + db 4 (no dx); ReLU 4; last Linear dW 8 + db 1 + dx 8.
    assert [r["flops_backward"] for r in s["layers"]] == [28, 4, 17]
    assert t["flops_forward_backward"] == 41 + 49
    assert [r["output_shape"] for r in s["layers"]] == [[5, 4], [5, 4], [5, 1]]
    assert t["activation_bytes"] == 5 * (4 + 4 + 1) * 4
    assert t["weights_mb"] == pytest.approx(21 * 4 / 1e6)
    assert t["optimizer_state_floats"] == 21  # SGD keeps one velocity per parameter


def test_summary_table_and_run_weight_statistics(small_run):
    result = run("summary", small_run)
    assert_ok(result)
    assert "Linear(in_features=3, out_features=4" in result.stdout
    assert re.search(r"trainable parameters\s+21 ", result.stdout)
    s = json.loads(run("summary", small_run, "--json").stdout)
    arrays, _ = load_run_checkpoint(small_run / "best.npz")
    weights = with_prefix(arrays, "model/")
    assert [w["name"] for w in s["weights"]] == list(weights)
    for w in s["weights"]:
        assert w["l2_norm"] == pytest.approx(float(np.linalg.norm(weights[w["name"]])), rel=1e-6)
        assert w["std"] == pytest.approx(float(weights[w["name"]].std()), rel=1e-5, abs=1e-7)


def test_summary_shows_shape_errors_exactly_as_train(tmp_path):
    bad = write(tmp_path, SMALL.replace("{type: linear, out_features: 1}", "{type: linear, in_features: 5, out_features: 1}"))
    trained = run("train", bad, "-s", f"output={tmp_path / 'run'}")
    summarized = run("summary", bad)
    assert_error(trained, 2, "model.layers[2].in_features: 5 does not chain")
    assert_error(summarized, 2)
    assert summarized.stderr == trained.stderr
    assert not (tmp_path / "run").exists()


# --- trace -------------------------------------------------------------------------------------


def test_trace_gradient_norms_equal_a_plain_backward(small):
    report, _ = trace_step(small, batch=8)
    cfg = load_config(small)
    data, model, loss_fn, _ = build(cfg)
    loss = loss_fn.forward(model.forward(data.train.x[:8]), data.train.y[:8])
    model.backward(loss_fn.backward(), input_grad=False)
    expected = {name: float(np.linalg.norm(g)) for name, _, g in model.named_parameters()}
    traced = {g["name"]: g["grad_norm"] for row in report["backward"] for g in row["grads"]}
    assert traced.keys() == expected.keys()
    for name in expected:
        assert traced[name] == pytest.approx(expected[name], rel=1e-6)
    assert report["loss"]["value"] == pytest.approx(loss, rel=1e-6)
    assert report["forward"][0]["equation"] == "y = x @ W + b   (8,3)@(3,4)+(4,) -> (8,4)"
    # update ratio = lr * ||g|| / ||W||
    g0 = report["backward"][-1]["grads"][0]
    assert g0["update_ratio"] == pytest.approx(0.01 * g0["grad_norm"] / g0["param_norm"])


def _tiny_model(rng):
    model = build_model([{"type": "linear", "out_features": 6}, {"type": "relu"}, {"type": "linear", "out_features": 1}],
                        3, 1, rng=rng)
    x = rng.standard_normal((10, 3)).astype(np.float32)
    y = rng.standard_normal((10, 1)).astype(np.float32)
    return model, build_loss("mse", "regression"), x, y


def test_trace_flags_a_planted_dead_layer():
    model, loss_fn, x, y = _tiny_model(np.random.default_rng(0))
    healthy, _ = trace_model(model, loss_fn, x, y, lr=0.01)
    assert not any("dead" in w for w in healthy["warnings"])
    model.layers[0].params["b"][...] = -100.0  # every pre-activation negative: the ReLU outputs only zeros
    report, _ = trace_model(model, loss_fn, x, y, lr=0.01)
    assert report["forward"][1]["dead_units"] == 6
    dead = [w for w in report["warnings"] if "dead" in w]
    assert len(dead) == 1 and dead[0].startswith("layer 1 ReLU()") and "every unit" in dead[0]
    # Nothing flows back below the dead ReLU: the first layer's gradients vanish, and say so.
    assert any(w.startswith("gradient of 0.W") and "vanishing" in w for w in report["warnings"])


def test_trace_prints_forward_then_backward(small):
    result = run("trace", small, "--batch", "4")
    assert_ok(result)
    out = result.stdout
    assert out.index("FORWARD") < out.index("y = x @ W + b   (4,3)@(3,4)+(4,) -> (4,4)") < out.index("BACKWARD")
    assert "dW = x.T @ dy   (3,4)@(4,4) -> (3,4)" in out
    assert "dead units" in out


# --- the graph ---------------------------------------------------------------------------------


def _node_labels(dot_text):
    return re.findall(r'^\s*(\w+) \[label="(.*?)", shape=(\w+)', dot_text, flags=re.M)


def test_dot_graph_has_one_record_per_array_and_parses(small, tmp_path):
    path = tmp_path / "step.dot"
    result = run("trace", small, "--dot", path)
    assert_ok(result)
    text = path.read_text()
    records = [n for n, _, shape in _node_labels(text) if shape == "record"]
    # input x, 3 layer outputs, 4 parameters (0.W 0.b 2.W 2.b), the loss
    assert sorted(records) == sorted(["x", "y0", "y1", "y2", "p0_W", "p0_b", "p2_W", "p2_b", "loss"])
    ops = [n for n, _, shape in _node_labels(text) if shape == "ellipse"]
    assert len(ops) == 3 + 1  # one per layer and the loss
    if shutil.which("dot"):
        done = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True)
        assert done.returncode == 0, done.stderr
        assert b"<svg" in done.stdout


def test_dot_units_draws_one_node_per_unit(small, tmp_path):
    path = tmp_path / "units.dot"
    assert_ok(run("trace", small, "--dot", path, "--units"))
    text = path.read_text()
    units = [n for n, _, _ in _node_labels(text) if re.fullmatch(r"(x|y\d)_\d+", n)]
    assert len(units) == 3 + 4 + 4 + 1
    if shutil.which("dot"):
        assert subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True).returncode == 0


def test_dot_units_refuses_a_wide_model(small, tmp_path):
    wide = write(tmp_path, SMALL.replace("out_features: 4", "out_features: 17"), "wide.yaml")
    result = run("trace", wide, "--dot", tmp_path / "g.dot", "--units")
    assert_error(result, 2, "at most 16 units", "17")
    assert not (tmp_path / "g.dot").exists()


def test_dot_picture_or_dot_text_with_advice(small, tmp_path, monkeypatch):
    import layerwise.views.trace_graph as tracegraph

    if shutil.which("dot"):
        result = run("trace", small, "--dot", tmp_path / "step.svg")
        assert_ok(result)
        assert (tmp_path / "step.svg").read_bytes().lstrip().startswith((b"<?xml", b"<svg"))
    monkeypatch.setattr(tracegraph.shutil, "which", lambda name: None)
    result = run("trace", small, "--dot", tmp_path / "other.png")
    assert_ok(result)
    assert not (tmp_path / "other.png").exists()
    assert (tmp_path / "other.dot").read_text().startswith("digraph")
    assert f"dot -Tpng {tmp_path / 'other.dot'} -o {tmp_path / 'other.png'}" in result.output


def test_dot_never_overwrites(small, tmp_path):
    path = tmp_path / "mine.dot"
    path.write_text("my notes")
    result = run("trace", small, "--dot", path)
    assert_error(result, 2, "already exists")
    assert path.read_text() == "my notes"


# --- config ------------------------------------------------------------------------------------


def test_config_prints_every_resolved_key(small):
    result = run("config", small)
    assert_ok(result)
    resolved = yaml.safe_load(result.stdout)
    assert resolved["model"]["layers"][0] == {"type": "linear", "in_features": 3, "out_features": 4, "bias": True, "init": "he"}
    assert resolved["model"]["layers"][2]["in_features"] == 4
    assert resolved["optimizer"]["nesterov"] is False and resolved["train"]["eval_batch_size"] == 5000


def test_config_round_trips_through_train(tmp_path, small):
    text = run("config", small, "-s", f"output={tmp_path / 'run'}").stdout
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(text)
    assert run("config", resolved).stdout == text  # the resolved config resolves to itself
    assert_ok(run("train", resolved))
    assert (tmp_path / "run" / "config.yaml").read_text() == text  # the run's config.yaml is this text
    # The resolved config.yaml still resumes and evaluates.
    assert_ok(run("train", "--resume", tmp_path / "run", "-s", "train.epochs=3"))
    assert_ok(run("eval", tmp_path / "run"))


def test_config_invalid_exits_2(tmp_path):
    bad = write(tmp_path, SMALL.replace("lr: 0.01", "lr: -1"))
    assert_error(run("config", bad), 2, "optimizer.lr")


# --- JSON --------------------------------------------------------------------------------------


def test_every_json_output_parses(small, small_run, tmp_path):
    outputs = {
        "eval": run("eval", small_run, "--json"),
        "summary": run("summary", small, "--json"),
        "trace": run("trace", small_run, "--json"),
        "compare": run("compare", small_run, small_run, "--json"),
        "gradcheck": run("gradcheck", small, "--json"),
    }
    for name, result in outputs.items():
        assert_ok(result)
        doc = json.loads(result.stdout)  # the whole of stdout is one document
        assert isinstance(doc, dict), name
    assert set(json.loads(outputs["eval"].stdout)) >= {"loss", "mse", "mae", "r2"}
    assert json.loads(outputs["gradcheck"].stdout)["passed"] is True
    assert "weights after epoch" in outputs["eval"].stderr  # the notes went to stderr


def test_json_writes_non_finite_as_null():
    assert json.loads(json_text({"r2": float("nan"), "m": [np.float32(np.inf), 1.5], "c": np.arange(2)})) == \
        {"r2": None, "m": [None, 1.5], "c": [0, 1]}


@needs_mnist
def test_eval_json_for_classification_has_accuracy_and_confusion(tmp_path):
    config = CONFIGS / "mnist.yaml"
    slice_ = [a.replace("train.epochs=2", "train.epochs=1") for a in MNIST_SLICE]
    assert_ok(run("train", config, "-s", f"output={tmp_path / 'run'}", *slice_))
    result = run("eval", tmp_path / "run", "--json", *slice_[:2])
    assert_ok(result)
    doc = json.loads(result.stdout)
    assert set(doc) == {"loss", "accuracy", "precision", "recall", "f1", "confusion", "per_class", "classes"}
    assert doc["classes"] == [str(d) for d in range(10)]
    counts = np.array(doc["confusion"])
    assert counts.shape == (10, 10) and counts.sum() == 500  # data.test_limit
    assert doc["accuracy"] == pytest.approx(np.trace(counts) / 500)
    recall = np.diag(counts) / counts.sum(axis=1)  # every digit occurs in the first 500 test images
    assert doc["per_class"]["recall"] == pytest.approx(recall.tolist()) and doc["recall"] == pytest.approx(recall.mean())


@pytest.mark.parametrize("command", ["summary", "trace", "gradcheck"])
def test_views_refuse_a_directory_that_is_not_a_run(command, tmp_path):
    assert_error(run(command, tmp_path), 1, str(tmp_path), "is it a layerwise run directory?")
    assert list(tmp_path.iterdir()) == []
