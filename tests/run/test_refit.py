"""train.refit: after the first pass picks the best epoch E, the run trains again from the initial weights
on the training + validation rows for E epochs with the first pass's rates; best.npz is that model, the
output and test.json say so, and a run stopped in either pass resumes to the same bits."""

import json

import numpy as np
import pytest

from layerwise.config.schema import load_config
from layerwise.errors import ConfigError, TrainingInterrupted
from layerwise.run.fit import fit, resume
from layerwise.run.refit import replayed_rates
from layerwise.util.npz import load_checkpoint

from test_tabular_budget import interrupt_after, quiet, write_run

STEPS = 6  # 84 training rows in batches of 16; train + val is 96 rows: 6 steps too


def arrays(path):
    return load_checkpoint(path)[0]


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_refit_trains_on_train_and_val_for_the_best_epoch_count(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_run(tmp_path)
    plain = fit(load_config(config, ["output=plain"]), echo=quiet)
    lines = []
    refit = fit(load_config(config, ["output=refit", "train.refit=true"]), echo=lines.append)
    # The first pass is the plain run, to the bit: same history, same best epoch, same last.npz.
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(refit["history"]) == drop(plain["history"]) and refit["best"] == plain["best"]
    assert same(arrays(tmp_path / "plain" / "last.npz"), arrays(tmp_path / "refit" / "last.npz"))
    epochs = plain["best"]["epoch"]
    assert refit["refit"] == {"epochs": epochs, "rows": 96}
    # best.npz is another model (trained on 12 more rows), marked as the refit in its run state
    weights, meta = load_checkpoint(tmp_path / "refit" / "best.npz")
    assert not same(weights, arrays(tmp_path / "plain" / "best.npz"))
    assert meta["state"]["refit"] == {"epochs": epochs, "rows": 96}
    assert meta["state"]["best"] == plain["best"]
    # its Adam step count: every step of E epochs over the 96 rows
    assert weights["optim/step"].max() == epochs * STEPS
    saved = json.loads((tmp_path / "refit" / "test.json").read_text())
    assert saved["refit_epochs"] == epochs and saved["refit_rows"] == 96
    assert saved["test_accuracy"] == refit["test"]["accuracy"]
    assert any(line.startswith("refit (train.refit): training again from the initial weights on the 84 training "
                               f"+ 12 validation rows for {epochs} epochs") for line in lines)
    assert any("refit on 96 training + validation rows" in line and line.startswith("done in") for line in lines)
    # deterministic: a second run refits to the same bits
    fit(load_config(config, ["output=again", "train.refit=true"]), echo=quiet)
    assert same(weights, arrays(tmp_path / "again" / "best.npz"))


def test_eval_and_load_use_the_refit_model(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import layerwise
    from layerwise.cli import main

    monkeypatch.chdir(tmp_path)
    result = fit(load_config(write_run(tmp_path), ["output=run", "train.refit=true"]), echo=quiet)
    out = CliRunner().invoke(main, ["eval", "run"])
    assert out.exit_code == 0, out.output
    assert f"weights refit on 96 training + validation rows for {result['refit']['epochs']} epochs" in out.output
    assert f"{100 * result['test']['accuracy']:.2f}%" in out.output
    model = layerwise.load("run")
    assert model.task == "classification"


def test_replayed_rates_undo_the_warmup_of_the_last_step():
    # a 2-epoch warmup: epoch 1's last step ran at half its rule's rate; epoch 3 at a plateau's cut
    history = [{"lr": 0.005}, {"lr": 0.01}, {"lr": 0.002}, {"lr": 0.002}]
    assert replayed_rates(history, 3, 2) == [0.01, 0.01, 0.002]
    assert replayed_rates(history, 4, 0) == [0.005, 0.01, 0.002, 0.002]


@pytest.mark.parametrize("where", ["first pass", "refit"])
def test_refit_resumes_bit_identically(tmp_path, monkeypatch, where):
    monkeypatch.chdir(tmp_path)
    config = write_run(tmp_path)
    straight = fit(load_config(config, ["output=straight", "train.refit=true"]), echo=quiet)
    first_pass = len(straight["history"]) * STEPS
    interrupt_after(monkeypatch, 20 if where == "first pass" else first_pass + 5)
    lines = []
    with pytest.raises(TrainingInterrupted) as stopped:
        fit(load_config(config, ["output=split", "train.refit=true"]), echo=lines.append)
    if where == "refit":
        assert "during the refit" in str(stopped.value) and not (tmp_path / "split" / "test.json").exists()
    monkeypatch.undo()
    resumed = resume(tmp_path / "split", echo=lines.append)
    for name in ("last.npz", "best.npz"):
        assert same(arrays(tmp_path / "straight" / name), arrays(tmp_path / "split" / name)), name
    assert resumed["refit"] == straight["refit"] and resumed["test"]["f1"] == straight["test"]["f1"]
    if where == "refit":
        assert any(line.startswith("completing") for line in lines)


def test_refit_must_be_true_or_false(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="train.refit"):
        load_config(write_run(tmp_path), ["train.refit=sometimes"])
