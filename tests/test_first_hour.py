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
