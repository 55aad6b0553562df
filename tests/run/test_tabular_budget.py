"""The tabular budget and metrics: train.monitor picks best.npz and drives plateau and early stopping,
train.min_steps holds both off, optimizer.decay_rows weakens weight decay on larger tables; precision,
recall, F1 and ROC AUC worked by hand; and a run with all of it resumes bit for bit."""

import json
import os
import signal

import numpy as np
import pytest

from layerwise.config.schema import load_config
from layerwise.errors import ConfigError, TrainingInterrupted
from layerwise.optim.optimizers import Optimizer
from layerwise.run import metrics
from layerwise.run.fit import fit, resume
from layerwise.util.npz import load_checkpoint

CONFIG = """
seed: 1
data: {dataset: csv, path: t.csv, target: label, missing: impute, robust_scale: true}
model:
  layers: [{type: linear, out_features: 16}, {type: relu}, {type: linear}]
loss: softmax_cross_entropy
optimizer: {type: adamw, lr: 0.01, weight_decay: 1.0, decay_rows: 50, schedule: plateau, factor: 0.5, patience: 1}
train: {epochs: 40, batch_size: 16, min_steps: 60, monitor: %s, early_stopping: {patience: 3}}
"""


def write_run(tmp_path, monitor="val_loss"):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=120).round(3), rng.normal(size=120).round(3)
    label = np.where(a + 0.5 * b + rng.normal(scale=0.7, size=120) > 0, "yes", "no")
    lines = ["a,b,label"] + [f"{a[i]},{'' if i % 9 == 0 else b[i]},{label[i]}" for i in range(120)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "c.yaml").write_text(CONFIG % monitor)
    return tmp_path / "c.yaml"


def quiet(*_):
    pass


def test_class_metrics_worked_by_hand():
    # true 0: 3 right, 1 called 1; true 1: 2 called 0, 4 right
    macro, per_class = metrics.class_metrics(np.array([[3, 1], [2, 4]]))
    assert per_class["precision"] == pytest.approx([3 / 5, 4 / 5])  # column sums 5, 5
    assert per_class["recall"] == pytest.approx([3 / 4, 4 / 6])  # row sums 4, 6
    f1 = [2 * 0.6 * 0.75 / 1.35, 2 * 0.8 * (4 / 6) / (0.8 + 4 / 6)]  # 0.6667, 0.7273
    assert per_class["f1"] == pytest.approx(f1) and macro["f1"] == pytest.approx(np.mean(f1))
    # a class never predicted has precision 0 (scikit-learn's zero_division=0), not NaN
    macro, per_class = metrics.class_metrics(np.array([[5, 0], [5, 0]]))
    assert per_class["precision"] == [0.5, 0.0] and per_class["f1"][1] == 0.0


def test_roc_auc_worked_by_hand():
    # negatives 0.1, 0.4; positives 0.35, 0.8: of 4 (positive, negative) pairs, 3 are ordered right
    assert metrics.roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True])) == 0.75
    assert metrics.roc_auc(np.array([1.0, 1.0]), np.array([False, True])) == 0.5  # a tie counts half
    assert np.isnan(metrics.roc_auc(np.array([1.0, 2.0]), np.array([True, True])))


def test_monitor_f1_picks_best_and_lands_in_test_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = fit(load_config(write_run(tmp_path, "val_f1"), ["output=run"]), echo=quiet)
    history = result["history"]
    best = max(range(len(history)), key=lambda i: (history[i]["val_f1"], i))  # a tie goes to the later epoch
    assert result["best"] == {"epoch": best + 1, "metric": "f1", "value": history[best]["val_f1"]}
    test = json.loads((tmp_path / "run" / "test.json").read_text())
    assert test["val_f1"] == history[best]["val_f1"] and test["epoch"] == best + 1
    assert {"test_f1", "test_precision", "test_recall", "test_auc", "test_per_class"} <= set(test)
    assert len(test["test_per_class"]["f1"]) == 2 and 0 <= test["test_auc"] <= 1
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert "val_f1" in header and "per_class" not in header and "confusion" not in header


def test_monitor_of_the_other_task_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"train.monitor: val_r2 is not a classification metric; valid: val_loss, "
                                          r"val_accuracy, val_f1"):
        fit(load_config(write_run(tmp_path, "val_r2"), ["output=run"]), echo=quiet)


def test_min_steps_holds_off_early_stopping_and_plateau(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_run(tmp_path)
    lines = []
    result = fit(load_config(config, ["output=run", "train.min_steps=120"]), echo=lines.append)
    history = result["history"]
    steps = 6  # 84 training rows in batches of 16
    # val loss is best at epoch 6; without min_steps the plateau halves the rate at epoch 9 and early
    # stopping ends the run there; with 120 steps both wait until epoch 20
    assert [r["lr"] for r in history] == [0.01] * 20 and len(history) * steps == 120
    assert any("stopped after epoch 20 of 40, best epoch 6" in line for line in lines)
    short = fit(load_config(config, ["output=run0", "train.min_steps=0"]), echo=quiet)["history"]
    assert [r["lr"] for r in short] == [0.01] * 8 + [0.005]


def test_decay_rows_scales_weight_decay_on_larger_tables(tmp_path, monkeypatch):
    from layerwise.run.build import build
    from layerwise.run.state import RunState
    from layerwise.run.trainer import Trainer

    monkeypatch.chdir(tmp_path)
    cfg = load_config(write_run(tmp_path), ["output=run"])
    data, model, loss, optimizer = build(cfg, echo=quiet)
    Trainer(cfg, tmp_path / "run", data, model, loss, optimizer, RunState(), quiet)
    assert optimizer.weight_decay == pytest.approx(1.0 * 50 / 84)  # 84 training rows, decay_rows 50


def interrupt_after(monkeypatch, steps):
    real_step, count = Optimizer.step, {"n": 0}

    def step(self):
        real_step(self)
        count["n"] += 1
        if count["n"] == steps:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Optimizer, "step", step)


SHIPPED_EXTRAS = ["data.linear_copy=clamped", "loss={type: softmax_cross_entropy, label_smoothing: 0.1}"]


@pytest.mark.parametrize("extra", [[], SHIPPED_EXTRAS], ids=["plain", "linear-copy-smoothed"])
@pytest.mark.parametrize("stop_after", [20, 58])  # before min_steps (60) are done, and in the last epoch
def test_tabular_budget_resumes_bit_identically(tmp_path, monkeypatch, stop_after, extra):
    monkeypatch.chdir(tmp_path)
    config = write_run(tmp_path)
    straight = fit(load_config(config, ["output=straight", *extra]), echo=quiet)
    assert len(straight["history"]) < 40  # early stopping ended it
    interrupt_after(monkeypatch, stop_after)
    with pytest.raises(TrainingInterrupted):
        fit(load_config(config, ["output=split", *extra]), echo=quiet)
    monkeypatch.undo()
    resumed = resume(tmp_path / "split", echo=quiet)
    for name in ("last.npz", "best.npz"):
        a, b = load_checkpoint(tmp_path / "straight" / name)[0], load_checkpoint(tmp_path / "split" / name)[0]
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), name
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(resumed["history"]) == drop(straight["history"])
    assert resumed["best"] == straight["best"] and resumed["test"].keys() == straight["test"].keys()
    assert resumed["test"]["f1"] == straight["test"]["f1"] and resumed["test"]["auc"] == straight["test"]["auc"]


def test_balanced_class_weight_is_fitted_stored_and_used_by_eval(tmp_path, monkeypatch):
    from layerwise.run.evaluate import load_run

    monkeypatch.chdir(tmp_path)
    config = write_run(tmp_path)
    result = fit(load_config(config, ["output=run", "data.class_weight=balanced"]), echo=quiet)
    cfg, data, model, loss, _ = load_run(tmp_path / "run")
    labels = np.array(data.preprocessing["class_names"])
    assert labels.tolist() == ["no", "yes"]
    weights = data.preprocessing["class_weight"]
    # rows / (classes * rows of the class), over the 84 training rows: the two weights average to the
    # inverse of the class shares, so w_no * n_no == w_yes * n_yes == 84 / 2
    n_no = round(84 / (2 * weights[0]))
    assert n_no + round(84 / (2 * weights[1])) == 84 and weights[0] * n_no == pytest.approx(42)
    assert loss.class_weight.tolist() == weights  # eval's loss is weighted as training's was
    test = json.loads((tmp_path / "run" / "test.json").read_text())
    assert test["test_loss"] == result["test"]["loss"]


def test_compare_and_plot_use_the_runs_monitor(tmp_path, monkeypatch):
    from layerwise.views.compare import compare_runs, format_comparison
    from layerwise.views.plot import _curves_data

    monkeypatch.chdir(tmp_path)
    config = write_run(tmp_path, "val_f1")
    runs = [fit(load_config(config, [f"output=r{lr}", f"optimizer.lr={lr}"]), echo=quiet) for lr in (0.01, 0.003)]
    result = compare_runs([tmp_path / "r0.01", tmp_path / "r0.003"])
    by_dir = {r["run"]: r for r in result["runs"]}
    for lr, run in zip((0.01, 0.003), runs):
        row = by_dir[str(tmp_path / f"r{lr}")]
        assert row["monitor"] == "f1" and row["best_val"] == run["best"]["value"]
        assert row["best_epoch"] == run["best"]["epoch"] and row["test"]["f1"] == run["test"]["f1"]
    text = format_comparison(result)
    assert "F1" in text and "auc" in text
    (name, m), _ = _curves_data([tmp_path / "r0.01", tmp_path / "r0.003"], ["a", "b"])
    assert m["monitor"] == "val_f1" and m["best"] + 1 == runs[0]["best"]["epoch"]


def test_label_smoothing_is_noted_with_the_floor_of_its_loss(tmp_path, monkeypatch):
    from layerwise.nn.losses import SoftmaxCrossEntropy
    from layerwise.run.evaluate import evaluate_run

    monkeypatch.chdir(tmp_path)
    cfg = load_config(write_run(tmp_path), ["output=run", "loss={type: softmax_cross_entropy, label_smoothing: 0.2}"])
    lines = []
    fit(cfg, echo=lines.append)
    notes = [line for line in lines if line.startswith("note: loss.")]
    assert notes == ["note: loss.label_smoothing 0.2: the loss is on smoothed labels (0.9 for the true class, 0.1 for "
                     "each other), so it cannot go below 0.3251; accuracy and F1 are on the real labels"]
    # the floor is the loss of the logits log q: its cross-entropy with itself, the entropy of q
    q = np.array([[0.9, 0.1], [0.1, 0.9]])
    assert SoftmaxCrossEntropy(0.2).forward(np.log(q), np.array([0, 1])) == pytest.approx(0.3251, abs=5e-5)
    lines = []
    evaluate_run(tmp_path / "run", echo=lines.append)
    assert notes[0] in lines
