"""Checkpoints are written at most every SAVE_SECONDS (and at a run's end, stop or divergence), not after
every epoch: a small table's epochs take milliseconds. What is written is what writing every epoch gives."""

import numpy as np
import pytest

from layerwise.config.schema import load_config
from layerwise.errors import TrainingInterrupted
from layerwise.run import callbacks
from layerwise.run.fit import fit, resume
from layerwise.util import npz
from layerwise.util.npz import load_checkpoint

from test_tabular_budget import interrupt_after, quiet, write_run


def arrays(path):
    return load_checkpoint(path)[0]


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def count_writes(monkeypatch):
    names, real = [], npz.save_checkpoint

    def save(path, *args):
        names.append(path.name)
        real(path, *args)

    monkeypatch.setattr(npz, "save_checkpoint", save)
    import layerwise.run.checkpoint as checkpoint
    import layerwise.run.trainer as trainer

    monkeypatch.setattr(checkpoint, "save_checkpoint", save)
    monkeypatch.setattr(trainer, "save_checkpoint", save)
    return names


def test_a_fast_run_writes_its_checkpoints_once_and_the_same_bits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_run(tmp_path)
    monkeypatch.setattr(callbacks, "SAVE_SECONDS", 0.0)  # every epoch, as before
    every = fit(load_config(config, ["output=every"]), echo=quiet)
    monkeypatch.setattr(callbacks, "SAVE_SECONDS", 3600.0)
    names = count_writes(monkeypatch)
    held = fit(load_config(config, ["output=held"]), echo=quiet)
    epochs = len(held["history"])
    assert epochs >= 10 and held["best"]["epoch"] < epochs  # the best epoch was held in memory
    # the first last.npz (the run directory's), then best.npz and last.npz once, at the end
    assert names == ["last.npz", "best.npz", "last.npz"], names
    for name in ("best.npz", "last.npz"):
        assert same(arrays(tmp_path / "every" / name), arrays(tmp_path / "held" / name)), name
    assert load_checkpoint(tmp_path / "held" / "best.npz")[1]["state"]["epoch"] == held["best"]["epoch"]
    rows = (tmp_path / "held" / "metrics.csv").read_text().splitlines()
    assert len(rows) == epochs + 1 and held["test"]["f1"] == every["test"]["f1"]


def test_checkpoints_after_the_interval_and_on_a_stop(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_run(tmp_path)
    ticks = iter(range(0, 10**6, 4))  # every clock reading 4 "seconds" later: an epoch reads it once
    monkeypatch.setattr(callbacks, "seconds", lambda: next(ticks))
    monkeypatch.setattr(callbacks, "SAVE_SECONDS", 10.0)
    names = count_writes(monkeypatch)
    interrupt_after(monkeypatch, 6 * 5 + 2)  # Ctrl-C in epoch 6 (6 steps an epoch)
    with pytest.raises(TrainingInterrupted, match="at epoch 6, step 2"):
        fit(load_config(config, ["output=run"]), echo=quiet)
    state = load_checkpoint(tmp_path / "run" / "last.npz")[1]["state"]
    assert (state["epoch"], state["step"]) == (5, 2)  # the stop wrote the state it stopped in
    # the run directory's first one; after epoch 3, 12 "seconds" after the start (the clock is read when
    # training starts, after every epoch and after each write); the stop's: not one per epoch
    assert names == ["last.npz", "best.npz", "last.npz", "best.npz", "last.npz"], names
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    resumed = resume(tmp_path / "run", echo=quiet)
    straight = fit(load_config(config, ["output=straight"]), echo=quiet)
    assert resumed["best"] == straight["best"]
    for name in ("best.npz", "last.npz"):
        assert same(arrays(tmp_path / "straight" / name), arrays(tmp_path / "run" / name)), name
