"""Issue 17, "what a new user hit in the first hour": each item through the CLI or the API, on tiny
tables and images the tests write themselves."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from layerwise.cli import main

MLP = "model.layers=[{type: linear, out_features: 8}, {type: relu}, {type: linear}]"


def table(n=80, seed=0):
    """a, b (numbers), color (text), label (yes/no), y = 300 * (2a - b) + 5000 (a target far from 0 +- 1)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n).round(3), rng.normal(size=n).round(3)
    color = np.array(["red", "green", "blue"])[np.arange(n) % 3]
    label = np.where(a > 0, "no", "yes")
    rows = [f"{a[i]},{b[i]},{color[i]},{label[i]},{300 * (2 * a[i] - b[i]) + 5000:.3f}" for i in range(n)]
    return "a,b,color,label,y\n" + "\n".join(rows) + "\n"


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def train_table(tmp_path, config, target, *more):
    from conftest import REPO

    result = invoke("train", REPO / "configs" / f"{config}.yaml", "-s", "data.path=t.csv", "-s", f"data.target={target}",
                    "-s", "train.epochs=3", "-s", MLP, *more)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    (tmp_path / "t.csv").write_text(table())
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- b. --json: stdout is one JSON document, every note on stderr ---------------------------------


def test_every_json_command_prints_pure_json(in_tmp):
    from conftest import REPO

    trained = invoke("train", REPO / "configs" / "tabular_classification.yaml", "-s", "data.path=t.csv", "-s",
                     "data.target=label", "-s", "train.epochs=2", "-s", MLP, "--json")
    assert trained.exit_code == 0, trained.output
    doc = json.loads(trained.stdout)
    assert doc["test"]["accuracy"] >= 0 and len(doc["history"]) == 2
    assert "read t.csv" in trained.stderr and "epoch 2/2" in trained.stderr
    run = doc["run_dir"]
    (in_tmp / "cfg.yaml").write_text("data: {dataset: csv, path: t.csv, target: label}\ntrain: {epochs: 1}\n"
                                     "model: {layers: [{type: linear, out_features: 4}, {type: relu}, {type: linear}]}\n")
    commands = {
        "eval": ["eval", run, "--json"],
        "eval --data": ["eval", run, "--data", "t.csv", "--json"],
        "predict": ["predict", run, "t.csv", "--json"],
        "gradcheck": ["gradcheck", "cfg.yaml", "--json"],
        "summary": ["summary", run, "--json"],
        "trace": ["trace", run, "--json"],
        "compare": ["compare", run, run, "--json"],
        "export": ["export", run, "m.onnx", "--json"],
        "sweep": ["sweep", "cfg.yaml", "-s", "seed=0,1", "--jobs", "1", "--json"],
    }
    for name, args in commands.items():
        result = invoke(*args)
        assert result.exit_code == 0, (name, result.output)
        json.loads(result.stdout)  # nothing but the document
        if name in ("eval", "gradcheck"):
            assert "read t.csv" in result.stderr, name  # the note is still shown, on stderr


# --- a. regression metrics in the target's own units, with standardize_target ----------------------


def test_standardised_target_metrics_are_in_the_targets_units(in_tmp):
    # 100 epochs: the shipped config's batches of 64 make an epoch of these 56 rows one step
    trained = train_table(in_tmp, "tabular_regression", "y", "-s", "optimizer.lr=0.02", "-s", "train.epochs=100")
    assert "standardised target" in trained.output  # the loss's unit is said once
    run = in_tmp / "runs" / "tabular_regression-t"
    test = json.loads((run / "test.json").read_text())
    # y's std is about 670: an MSE in the target's units is far above the standardised loss
    assert test["test_mse"] > 1000 * test["test_loss"]
    assert test["test_r2"] > 0.5
    evaluated = json.loads(invoke("eval", run, "--json").stdout)
    assert evaluated["mse"] == pytest.approx(test["test_mse"], rel=1e-5)
    # eval --data and predict on the same file agree (they did not: standardised against raw)
    on_file = invoke("eval", run, "--data", "t.csv", "--json")
    predicted = json.loads(invoke("predict", run, "t.csv", "--json").stdout)
    scored = json.loads(on_file.stdout)
    for key in ("mse", "mae", "r2"):
        assert scored[key] == pytest.approx(predicted[key], rel=1e-4), key
    assert "standardised target" in on_file.stderr
    metrics = (run / "metrics.csv").read_text().splitlines()
    header, last = metrics[0].split(","), metrics[-1].split(",")
    val_mse, val_loss = float(last[header.index("val_mse")]), float(last[header.index("val_loss")])
    assert val_mse > 1000 * val_loss
    assert f"mse {val_mse:.4f}" in trained.output  # the epoch line prints the same number


# --- h. a data file given with -s names the default run directory ----------------------------------


def test_a_second_data_file_gets_its_own_run_directory(in_tmp):
    from conftest import REPO

    from layerwise.config.schema import load_config

    (in_tmp / "Penguins.CSV.gz").write_bytes(b"")
    config = REPO / "configs" / "tabular_classification.yaml"
    assert load_config(config, ["data.path=Penguins.CSV.gz", "data.target=label"]).output == "runs/tabular_classification-Penguins"
    assert load_config(config, ["data.path=t.csv", "data.target=label", "output=mine"]).output == "mine"  # an output given wins
    (in_tmp / "own.yaml").write_text("data: {dataset: csv, path: t.csv, target: label}\n")
    assert load_config(in_tmp / "own.yaml").output == "runs/own"  # a path written in the config: as before
    train_table(in_tmp, "tabular_classification", "label")
    (in_tmp / "u.csv").write_text(table(seed=1))
    second = invoke("train", config, "-s", "data.path=u.csv", "-s", "data.target=label", "-s", "train.epochs=1")
    assert second.exit_code == 0, second.output
    assert (in_tmp / "runs" / "tabular_classification-t" / "test.json").is_file()
    assert (in_tmp / "runs" / "tabular_classification-u" / "test.json").is_file()


# --- e. eval --checkpoint last says exactly which weights it scores ---------------------------------


def test_eval_of_an_interrupted_run_names_the_step(in_tmp, monkeypatch):
    import os
    import signal

    from conftest import REPO

    import layerwise
    from layerwise.errors import TrainingInterrupted
    from layerwise.run import trainer

    calls, step = [0], trainer.train_step

    def interrupted_at_10(*args):
        calls[0] += 1
        if calls[0] == 10:  # epoch 2 (7 steps each: 56 rows in batches of 8), its 3rd step
            os.kill(os.getpid(), signal.SIGINT)
        return step(*args)

    monkeypatch.setattr(trainer, "train_step", interrupted_at_10)
    with pytest.raises(TrainingInterrupted):
        layerwise.train(REPO / "configs" / "tabular_classification.yaml", echo=None, data__path="t.csv",
                        data__target="label", train__batch_size=8, train__epochs=3, output="run",
                        data__val_fraction=0.1, optimizer__weight_decay_choices=None, optimizer__weight_decay=3.0)
    last = invoke("eval", "run", "--checkpoint", "last")
    assert last.exit_code == 0, last.output
    assert "weights from epoch 2, step 3 of 7 (interrupted)" in last.output
    best = invoke("eval", "run")
    assert "weights after epoch 1:" in best.output


# --- g. predict -o: `-` is stdout, the extension chooses the format ----------------------------------


def test_predict_output_format_follows_the_name(in_tmp):
    import csv
    import io

    train_table(in_tmp, "tabular_classification", "label")
    run = "runs/tabular_classification-t"
    to_stdout = invoke("predict", run, "t.csv", "-o", "-")
    assert to_stdout.exit_code == 0, to_stdout.output
    rows = list(csv.reader(io.StringIO(to_stdout.stdout)))
    assert rows[0][:2] == ["input", "prediction"] and len(rows) == 81  # stdout is the CSV alone
    assert "accuracy" in to_stdout.stderr and not (in_tmp / "-").exists()
    assert invoke("predict", run, "t.csv", "-o", "p.json").exit_code == 0
    doc = json.loads((in_tmp / "p.json").read_text())
    assert doc["inputs"] == 80 and doc["predictions"][0]["prediction"] in ("yes", "no")
    assert invoke("predict", run, "t.csv", "-o", "p.npy").exit_code == 0
    proba = np.load(in_tmp / "p.npy")
    assert proba.shape == (80, 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert invoke("predict", run, "t.csv", "-o", "p.CSV").exit_code == 0
    assert (in_tmp / "p.CSV").read_text().startswith("input,prediction")
    refused = invoke("predict", run, "t.csv", "-o", "p.txt")
    assert refused.exit_code == 2 and "unknown extension .txt" in refused.output and not (in_tmp / "p.txt").exists()
    assert invoke("predict", run, "t.csv", "-o", "-", "--json").exit_code == 2


# --- i. eval's confusion matrix shows class names; gradcheck takes a run directory -----------------


def test_confusion_names_and_gradcheck_of_a_run(in_tmp):
    from layerwise.run.report import format_confusion

    train_table(in_tmp, "tabular_classification", "label")
    run = "runs/tabular_classification-t"
    shown = invoke("eval", run)
    assert shown.exit_code == 0, shown.output
    header, row_no, row_yes = shown.output.splitlines()[-3:]
    assert header.split()[1:] == ["no", "yes"] and row_no.split()[0] == "no" and row_yes.split()[0] == "yes"
    assert json.loads(invoke("eval", run, "--json").stdout)["classes"] == ["no", "yes"]
    lines = format_confusion(np.array([[3, 0], [1, 2]]), ["a" * 30, "b\x1b]0;x\x07"]).splitlines()
    assert lines[1].split()[1] == "a" * 11 + "~" and len(lines) == 4  # long names cut
    for args in (["summary", run], ["trace", run], ["gradcheck", run]):
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
    assert "rows pass" in result.output
    rows = json.loads(invoke("gradcheck", run, "--json").stdout)["rows"]
    assert rows and all(r["passed"] for r in rows)
    missing = invoke("gradcheck", in_tmp)  # not a run: the same message as summary's
    assert missing.exit_code == 1 and "is it a layerwise run directory?" in missing.output


# --- f. progress lines inside an epoch when no progress bar shows ---------------------------------


def test_progress_lines_at_a_bounded_rate(in_tmp, monkeypatch):
    import re

    from conftest import REPO

    from layerwise.config.schema import load_config
    from layerwise.run.callbacks import ProgressLog, default_callbacks
    from layerwise.run.fit import fit
    from layerwise.run.state import RunState

    ticks = iter(range(10**6))  # a clock that advances one second per look
    cfg = load_config(REPO / "configs" / "tabular_classification.yaml",
                      ["data.path=t.csv", "data.target=label", "train.batch_size=8", "train.epochs=2", "output=run",
                       "data.val_fraction=0.1"])
    lines = []
    fit(cfg, echo=lines.append, callbacks=[ProgressLog(interval=3, clock=lambda: float(next(ticks)))])
    progress = [line for line in lines if "ETA" in line]
    # 14 steps, one clock reading each (after the start): a line every 3rd second, not one per step
    assert 3 <= len(progress) <= 5, progress
    pattern = r"epoch (\d)/2  step (\d)/7 \(\d+%\)  loss \d+\.\d{4}  ETA epoch (\d+):(\d\d), run (\d+):(\d\d)"
    found = [re.fullmatch(pattern, line) for line in progress]
    assert all(found), progress
    runs_left = [int(m[5]) * 60 + int(m[6]) for m in found]
    assert runs_left == sorted(runs_left, reverse=True) and runs_left[-1] < runs_left[0]
    # only without a terminal (where tqdm's bar is off): the default list has a ProgressLog then
    assert any(isinstance(c, ProgressLog) for c in default_callbacks(cfg, True, RunState()))
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    assert not any(isinstance(c, ProgressLog) for c in default_callbacks(cfg, True, RunState()))


# --- c, d. image inputs: the pixel range is checked; PNGs are prepared as the dataset's images are -----


def train_images(directory, dataset):
    from tinyidx import write_tiny

    arrays = write_tiny(directory / "data")
    (directory / "exp.yaml").write_text(json.dumps({
        "data": {"dataset": dataset, "root": str(directory / "data"), "val_size": 10},
        "model": {"layers": [{"type": "linear", "out_features": 10}]}, "optimizer": {"lr": 0.05},
        "train": {"epochs": 3, "batch_size": 16}, "output": str(directory / "run")}))
    result = invoke("train", directory / "exp.yaml")
    assert result.exit_code == 0, result.output
    return arrays


def test_pixel_ranges_are_checked_scaled_or_refused(tmp_path):
    import warnings

    import layerwise
    from layerwise.errors import DataError, InputWarning

    arrays = train_images(tmp_path, "mnist")
    images = arrays["test_images"]
    np.save(tmp_path / "u8.npy", images)
    np.save(tmp_path / "unit.npy", images.astype(np.float32) / 255)  # the Keras/PyTorch habit
    np.save(tmp_path / "normalised.npy", (images.astype(np.float32) / 255 - 0.1307) / 0.3081)
    np.save(tmp_path / "deep.npy", images.astype(np.uint16) * 16)  # 12-bit pixels
    blank = images.copy()
    blank[[2, 5]] = 0
    np.save(tmp_path / "blank.npy", blank)
    run = tmp_path / "run"
    raw = json.loads(invoke("predict", run, tmp_path / "u8.npy", "--json").stdout)
    unit = invoke("predict", run, tmp_path / "unit.npy", "--json")
    assert unit.exit_code == 0, unit.output
    assert [p["prediction"] for p in json.loads(unit.stdout)["predictions"]] == [p["prediction"] for p in raw["predictions"]]
    assert "note: " in unit.stderr and "within [0, 1]" in unit.stderr and "scaled to 0-255" in unit.stderr
    for name in ("normalised", "deep"):
        refused = invoke("predict", run, tmp_path / f"{name}.npy")
        assert refused.exit_code == 1 and refused.stderr.startswith("error: ") and "Traceback" not in refused.output
        assert len(refused.stderr.splitlines()) == 1
    assert "negative pixel values" in invoke("predict", run, tmp_path / "normalised.npy").stderr
    assert "expected 0-255" in invoke("predict", run, tmp_path / "deep.npy").stderr
    noted = invoke("predict", run, tmp_path / "blank.npy", "--no-show")
    assert noted.exit_code == 0 and "2 of 20 images are blank (rows 2, 5)" in noted.stderr
    model = layerwise.load(run)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        same = model.predict(images.astype(np.float64) / 255)
    assert (same == model.predict(images)).all()
    assert any(issubclass(w.category, InputWarning) for w in caught)
    with pytest.raises(DataError, match="negative pixel values"):
        model.predict(-np.ones((1, 28, 28)))


def fashion_pngs(directory, n):
    """The first n Fashion-MNIST test items as a user has them: dark on a white background, 4x larger."""
    from conftest import MNIST_ROOT  # Fashion-MNIST sits beside it (../shared/data/fashion-mnist)
    from PIL import Image

    from layerwise.data.idx import read_idx

    items = read_idx(MNIST_ROOT.parent / "fashion-mnist" / "t10k-images-idx3-ubyte.gz")[:n]
    paths = []
    for i, item in enumerate(items):
        path = directory / f"item{i}.png"
        Image.fromarray(255 - np.kron(item, np.ones((4, 4), dtype=np.uint8))).save(path)
        paths.append(path)
    return items, paths


def test_image_files_are_prepared_as_the_dataset_has_them(tmp_path):
    pytest.importorskip("PIL")
    import layerwise
    from layerwise.data.images import load_image_file
    from layerwise.data.preprocess import image_files_style
    from layerwise.run.checkpoint import load_run_meta

    items, paths = fashion_pngs(tmp_path, 40)
    resized = np.stack([load_image_file(p, "resize") for p in paths]).astype(float)
    centred = np.stack([load_image_file(p, "digit") for p in paths]).astype(float)
    # The plain resize gives back the items (the PNG's inversion undone); digit centring does not.
    assert np.abs(resized - items).mean() < 1.0
    assert np.abs(centred - items).mean() > 10 * np.abs(resized - items).mean()
    (tmp_path / "fm").mkdir()
    train_images(tmp_path / "fm", "fashion_mnist")
    assert load_run_meta(tmp_path / "fm" / "run" / "best.npz")["preprocessing"]["image_files"] == "resize"
    model = layerwise.load(tmp_path / "fm" / "run")
    np.testing.assert_allclose(model.inputs(paths[0]), model.inputs(items[0]), atol=2 * model.preprocessing["scale"]
                               / (model.preprocessing["std"] or 1))
    # an older checkpoint has no image_files: by its dataset name
    assert image_files_style({"dataset": "fashion_mnist"}) == "resize" and image_files_style({"dataset": "mnist"}) == "digit"
    (tmp_path / "mn").mkdir()
    train_images(tmp_path / "mn", "mnist")
    assert load_run_meta(tmp_path / "mn" / "run" / "best.npz")["preprocessing"]["image_files"] == "digit"
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("L", (40, 40), 255).save(blank)
    for run in ("fm", "mn"):
        said = invoke("predict", tmp_path / run / "run", blank)
        assert said.exit_code == 0 and "blank.png: a blank image" in said.stderr, said.output
