"""`layerwise sweep`: axes from -s, the manifest, trials that are ordinary runs (bit-identical to a
standalone `layerwise train` with one thread), --jobs 2 on a spawn pool, resume and interruption."""

import json
import os
import signal

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from layerwise.cli import main
from layerwise.errors import ConfigError
from layerwise.sweep.axes import make_trials, parse_axes, split_top_level
from layerwise.util.npz import load_checkpoint

CONFIG = {"data": {"dataset": "regression", "n_samples": 1000}, "model": {"layers": [{"type": "linear", "out_features": 1}]},
          "loss": "mse", "optimizer": {"lr": 0.01}, "train": {"epochs": 4, "batch_size": 32}}


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reg.yaml").write_text(yaml.safe_dump(CONFIG))
    return tmp_path / "reg.yaml"


def weights(path):
    arrays, _ = load_checkpoint(path)
    return {k: v for k, v in arrays.items() if k.startswith("model/")}


def same_weights(a, b):
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_axes_commas_lists_and_samplers():
    assert split_top_level("0.01,[1,2],{a: 1, b: 2},'x,y'") == ["0.01", "[1,2]", "{a: 1, b: 2}", "'x,y'"]
    fixed, grid, sampled = parse_axes(["optimizer.lr=0.01,0.1", "train.epochs=3", "model.layers.0.out_features=[1,2]",
                                       "optimizer.momentum=uniform(0.5,0.9)"])
    assert fixed == ["train.epochs=3", "model.layers.0.out_features=[1,2]"] and grid == {"optimizer.lr": ["0.01", "0.1"]}
    assert sampled == {"optimizer.momentum": ("uniform", [0.5, 0.9])}
    trials = make_trials({"a": ["1", "2"], "b": ["x", "y", "z"]}, {}, seeds=2)
    assert len(trials) == 12 and trials[0] == {"id": "t000", "overrides": {"a": "1", "b": "x", "seed": "0"}}
    drawn = make_trials({}, {"lr": ("loguniform", [1e-4, 1e-1]), "n": ("int", [2, 4])}, samples=20, sample_seed=1)
    assert drawn == make_trials({}, {"lr": ("loguniform", [1e-4, 1e-1]), "n": ("int", [2, 4])}, samples=20, sample_seed=1)
    assert all(1e-4 <= float(t["overrides"]["lr"]) <= 1e-1 and t["overrides"]["n"] in "234" for t in drawn)
    for bad in (["lr=loguniform(0,1)"], ["lr=uniform(2,1)"], ["lr=int(1.5,3)"], ["lr=1,,2"]):
        with pytest.raises(ConfigError):
            fixed, grid, sampled = parse_axes(bad)
            make_trials(grid, sampled, samples=1)
    with pytest.raises(ConfigError, match="--samples"):
        make_trials({}, {"lr": ("uniform", [0.0, 1.0])})


def test_grid_on_two_jobs_matches_standalone_train_and_resume_runs_nothing(config, tmp_path):
    result = cli("sweep", config, "-s", "optimizer.lr=0.003,0.01,0.03", "--jobs", "2", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)  # the JSON alone on stdout; progress went to stderr
    manifest = yaml.safe_load((tmp_path / "sweeps/reg/sweep.yaml").read_text())
    assert [t["overrides"] for t in manifest["trials"]] == [{"optimizer.lr": v} for v in ("0.003", "0.01", "0.03")]
    assert [t["status"] for t in out["trials"]] == ["finished"] * 3 and out["best"] == "t002"
    assert "reproduce with: layerwise train" in result.stderr and "-s optimizer.lr=0.03" in result.stderr
    for t in out["trials"]:
        assert cli("eval", t["run_dir"]).exit_code == 0
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        assert cli("train", config, "-s", "optimizer.lr=0.003", "-s", "output=solo").exit_code == 0
    trial = tmp_path / "sweeps/reg/trials/t000"
    assert same_weights(tmp_path / "solo/best.npz", trial / "best.npz")
    assert same_weights(tmp_path / "solo/last.npz", trial / "last.npz")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "sweeps").rglob("*.npz")}
    again = cli("sweep", "--resume", "sweeps/reg")
    assert again.exit_code == 0 and "3 of 3 trials finished" in again.output
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "sweeps").rglob("*.npz")} == before
    assert cli("sweep", config, "-s", "optimizer.lr=0.1,0.2").exit_code == 2  # sweeps/reg exists: refused


def test_interrupted_sweep_resumes_to_the_same_results(config, tmp_path, monkeypatch):
    assert cli("sweep", config, "-s", "optimizer.lr=0.003,0.01", "--jobs", "1", "--output", "whole").exit_code == 0
    from layerwise.sweep import trial

    real = trial.EpochReport.on_epoch_end

    def ctrl_c_in_second_trial(self, trainer, row):
        real(self, trainer, row)
        if self.trial_id == "t001" and row["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: the trial saves last.npz and stops

    monkeypatch.setattr(trial.EpochReport, "on_epoch_end", ctrl_c_in_second_trial)
    stopped = cli("sweep", config, "-s", "optimizer.lr=0.003,0.01", "--jobs", "1", "--output", "cut")
    assert stopped.exit_code == 130 and "layerwise sweep --resume cut" in stopped.output
    assert (tmp_path / "cut/trials/t001/last.npz").is_file() and not (tmp_path / "cut/trials/t001/test.json").exists()
    monkeypatch.setattr(trial.EpochReport, "on_epoch_end", real)
    resumed = cli("sweep", "--resume", "cut", "--json")
    assert resumed.exit_code == 0, resumed.output
    for t in ("t000", "t001"):
        assert same_weights(tmp_path / f"whole/trials/{t}/best.npz", tmp_path / f"cut/trials/{t}/best.npz")
    whole = (tmp_path / "whole/results.csv").read_text().replace("whole/", "")
    assert whole == (tmp_path / "cut/results.csv").read_text().replace("cut/", "")


def test_a_failing_trial_is_recorded_and_the_others_run(config):
    result = cli("sweep", config, "-s", "optimizer.lr=0.01,-1", "--jobs", "1", "--json")
    assert result.exit_code == 0, result.output
    trials = json.loads(result.stdout)["trials"]
    assert trials[0]["status"] == "finished" and trials[1]["status"] == "failed" and "optimizer.lr" in trials[1]["error"]


def test_ray_backend_gives_every_trial_the_local_result(config, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")  # the test extra installs it: CI runs a real local Ray cluster
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(__import__("pathlib").Path(__file__).resolve().parents[2]),
                                                      os.environ.get("PYTHONPATH", "")]))  # Ray's workers import this tree
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        result = cli("sweep", config, "-s", "optimizer.lr=0.003,0.03", "--backend", "ray", "--output", "onray", "--json")
    finally:
        ray.shutdown()
    assert result.exit_code == 0, result.output
    assert [t["status"] for t in json.loads(result.stdout)["trials"]] == ["finished", "finished"]
    assert cli("sweep", config, "-s", "optimizer.lr=0.003,0.03", "--jobs", "1", "--output", "here").exit_code == 0
    for t in ("t000", "t001"):
        assert same_weights(tmp_path / f"onray/trials/{t}/best.npz", tmp_path / f"here/trials/{t}/best.npz")
        assert same_weights(tmp_path / f"onray/trials/{t}/last.npz", tmp_path / f"here/trials/{t}/last.npz")


def test_plot_of_a_sweep_directory(config, tmp_path):
    pytest.importorskip("matplotlib")
    assert cli("sweep", config, "-s", "optimizer.lr=0.003,0.03", "-s", "train.batch_size=16,64", "--jobs", "1").exit_code == 0
    result = cli("plot", "sweeps/reg")
    assert result.exit_code == 0, result.output
    head = (tmp_path / "sweeps/reg/plots/sweep.png").read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(head[16:20], "big") == 1800  # 3 panels of 600 px
    (tmp_path / "sweeps/reg/results.csv").write_text("id,status\n")
    broken = cli("plot", "sweeps/reg", "-o", "x.png")
    assert broken.exit_code == 1 and broken.output.startswith("error: ") and "no finished trial" in broken.output


def test_the_best_trial_follows_the_monitors_direction():
    from layerwise.sweep.report import best_trial as _best

    rows = [{"id": "t0", "status": "finished", "metric": "val_f1", "best_val": 0.6},
            {"id": "t1", "status": "finished", "metric": "val_f1", "best_val": 0.9}]
    assert _best(rows) == "t1"  # a higher F1 is better (it was ranked as a loss)
    assert _best([dict(r, metric="val_mse") for r in rows]) == "t0"


def test_axes_that_change_the_loss_are_noted_when_the_val_loss_ranks(config):
    result = cli("sweep", config, "-s", "loss=mse,huber", "-s", "train.monitor=val_loss", "-s", "train.epochs=1")
    assert result.exit_code == 0, result.output
    note = "note: the axes change what the loss measures (loss): the trials' val losses are not comparable"
    assert result.output.count(note) == 2  # before the trials, and beside the ranking
    assert "-s train.monitor=val_mse (or val_r2)" in result.output
    result = cli("sweep", config, "-s", "optimizer.lr=0.01,0.02", "-s", "train.monitor=val_loss", "-s", "train.epochs=1",
                 "--output", "other")
    assert result.exit_code == 0, result.output
    assert "not comparable" not in result.output
