"""`layerwise compare`: exactly the differing config keys, rows sorted by the validation metric."""

import csv
import json

import pytest

from layerwise.views.compare import flatten
from test_cli import assert_error, assert_ok, run, write
from test_views import SMALL


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    config = write(tmp, SMALL, "small.yaml")
    variants = {
        "base": [],
        "lr": ["-s", "optimizer.lr=0.003"],
        "wide": ["-s", "model.layers.0.out_features=8"],
    }
    for name, args in variants.items():
        assert_ok(run("train", config, "-s", f"output={tmp / name}", *args))
    return tmp


def test_compare_finds_exactly_the_differing_keys(runs):
    result = run("compare", runs / "base", runs / "lr", runs / "wide", "--json")
    assert_ok(result)
    doc = json.loads(result.stdout)
    # The wider first layer also changes the inferred in_features of the layer after its ReLU.
    assert doc["differing_keys"] == ["model.layers.0.out_features", "model.layers.2.in_features", "optimizer.lr"]
    by_run = {r["run"]: r for r in doc["runs"]}
    assert by_run[str(runs / "lr")]["differs"]["optimizer.lr"] == 0.003
    assert by_run[str(runs / "wide")]["differs"]["model.layers.0.out_features"] == 8
    # Sorted by validation MSE, lowest first; each row carries its epochs and test metrics.
    vals = [r["best_val"] for r in doc["runs"]]
    assert vals == sorted(vals)
    for r in doc["runs"]:
        assert r["epochs"] == 2 and r["monitor"] == "mse" and set(r["test"]) == {"loss", "mse", "mae", "r2"}


def test_compare_identical_configs_and_table(runs):
    result = run("compare", runs / "base", runs / "base")
    assert_ok(result)
    assert "configs are identical" in result.stdout
    table = run("compare", runs / "base", runs / "lr").stdout
    assert table.splitlines()[0].split()[:2] == ["run", "optimizer.lr"]


def test_compare_refuses_a_directory_that_is_not_a_run(runs, tmp_path):
    assert_error(run("compare", runs / "base", tmp_path), 1, "not a layerwise run directory")


def test_flatten_uses_the_override_syntax():
    assert flatten({"a": {"b": 1}, "layers": [{"type": "relu"}], "w": [1, 2]}) == \
        {"a.b": 1, "layers.0.type": "relu", "w": [1, 2]}


def test_runs_whose_losses_measure_different_things_are_ranked_by_their_task_metric(tmp_path):
    # label smoothing raises the loss's floor: the val losses of these two runs are not comparable
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.normal(size=120).round(3)
    label = np.where(a + rng.normal(scale=0.5, size=120) > 0, "yes", "no")
    write(tmp_path, "a,label\n" + "".join(f"{a[i]},{label[i]}\n" for i in range(120)), "t.csv")
    config = write(tmp_path, f"""
data: {{dataset: csv, path: {tmp_path / 't.csv'}, target: label}}
model: {{layers: [{{type: linear, out_features: 8}}, {{type: relu}}, {{type: linear}}]}}
optimizer: {{lr: 0.05}}
train: {{epochs: 5, batch_size: 16, monitor: val_loss}}
""", "c.yaml")
    for name, e in (("plain", 0.0), ("smooth", 0.3)):
        assert_ok(run("train", config, "-s", f"output={tmp_path / name}", "-s",
                      f"loss={{type: softmax_cross_entropy, label_smoothing: {e}}}"))
    doc = json.loads(run("compare", tmp_path / "plain", tmp_path / "smooth", "--json").stdout)
    assert doc["loss_keys"] == ["loss.label_smoothing"]
    assert [r["monitor"] for r in doc["runs"]] == ["accuracy", "accuracy"]
    accuracies = [r["best_val"] for r in doc["runs"]]
    assert accuracies == sorted(accuracies, reverse=True)
    for r in doc["runs"]:  # the accuracy of the epoch each run kept (its lowest val loss), not its best accuracy
        rows = list(csv.DictReader(open(f"{r['run']}/metrics.csv")))
        kept = min(rows, key=lambda row: (float(row["val_loss"]), -int(row["epoch"])))
        assert r["best_epoch"] == int(kept["epoch"]) and r["best_val"] == pytest.approx(float(kept["val_accuracy"]))
    text = run("compare", tmp_path / "plain", tmp_path / "smooth").stdout
    assert "ranked by val accuracy, not val loss: loss.label_smoothing changes what the loss measures" in text
    # the same loss written twice: compared by the runs' own monitor, the val loss
    doc = json.loads(run("compare", tmp_path / "plain", tmp_path / "plain", "--json").stdout)
    assert doc["loss_keys"] == [] and doc["runs"][0]["monitor"] == "loss"
