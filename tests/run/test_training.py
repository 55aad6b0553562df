"""Runs that never lose work: resume is bit-identical, Ctrl-C saves, kill -9 leaves a loadable run,
divergence stops cleanly; and gradcheck catches a planted wrong backward."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from layerwise.nn.activations import ReLU
from layerwise.nn.batchnorm import BatchNorm
from layerwise.nn.linear import Linear
from layerwise.nn import losses
from layerwise.util.npz import load_checkpoint, save_checkpoint
from layerwise.cli import main
from layerwise.config.schema import load_config
from layerwise.errors import CheckpointError, ConfigError
from layerwise.errors import TrainingDiverged, TrainingInterrupted
from layerwise.run.fit import fit, resume

MLP = """
seed: 3
data: {dataset: regression, n_samples: %(n)d, weights: [1, -2, 3], bias: 0.5, val_size: 100, test_size: 100}
model:
  layers:
    - {type: linear, out_features: 32}
    - {type: tanh}
    - {type: linear, out_features: 16}
    - {type: relu}
    - {type: linear, out_features: 1}
loss: mse
optimizer: {lr: 0.01, momentum: 0.9, nesterov: true, weight_decay: 0.001, schedule: cosine}
train: {epochs: %(epochs)d, batch_size: 16}
"""


STEPS_PER_EPOCH = 25  # 600 samples - 100 val - 100 test = 400 train, batches of 16


def write_config(tmp_path, n=600, epochs=4):
    path = tmp_path / "mlp.yaml"
    path.write_text(MLP % {"n": n, "epochs": epochs})
    return path


def quiet(*_):
    pass


def arrays(path):
    return load_checkpoint(path)[0]


def assert_same_arrays(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def interrupt_after(monkeypatch, steps):
    """Deliver a real SIGINT to this process after `steps` optimizer steps (of any optimizer)."""
    from layerwise.optim.optimizers import Optimizer as SGD

    real_step = SGD.step
    count = {"n": 0}

    def step(self):
        real_step(self)
        count["n"] += 1
        if count["n"] == steps:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(SGD, "step", step)


@pytest.mark.parametrize("stop_after", [1, 37, 50])  # epoch 1, mid epoch 2, the last step of epoch 2
def test_interrupted_then_resumed_run_is_bit_identical(tmp_path, monkeypatch, stop_after):
    config = write_config(tmp_path)
    straight = fit(load_config(config, [f"output={tmp_path / 'straight'}"]), echo=quiet)

    interrupt_after(monkeypatch, stop_after)
    with pytest.raises(TrainingInterrupted) as info:
        fit(load_config(config, [f"output={tmp_path / 'split'}"]), echo=quiet)
    assert info.value.exit_code == 130
    assert f"layerwise train --resume {tmp_path / 'split'}" in str(info.value)
    monkeypatch.undo()
    state = load_checkpoint(tmp_path / "split" / "last.npz")[1]["state"]
    # the epoch in progress and the steps taken in it (an interrupted last step leaves a full epoch
    # whose validation and checkpoints the resumed run does)
    assert (state["epoch"], state["step"]) == ((stop_after - 1) // STEPS_PER_EPOCH, (stop_after - 1) % STEPS_PER_EPOCH + 1)

    resumed = resume(tmp_path / "split", echo=quiet)
    for name in ("last.npz", "best.npz"):
        assert_same_arrays(arrays(tmp_path / "straight" / name), arrays(tmp_path / "split" / name))
    assert [r["train_loss"] for r in resumed["history"]] == [r["train_loss"] for r in straight["history"]]
    assert resumed["test"] == straight["test"]


MLP_DROPOUT_BATCHNORM = MLP.replace(
    "    - {type: linear, out_features: 32}\n",
    "    - {type: linear, out_features: 32}\n    - {type: batchnorm}\n    - {type: dropout, p: 0.3}\n",
)


@pytest.mark.parametrize("stop_after", [13, 37])  # mid epoch 1, mid epoch 2
def test_resume_with_dropout_and_batchnorm_is_bit_identical(tmp_path, monkeypatch, stop_after):
    config = tmp_path / "mlp.yaml"
    config.write_text(MLP_DROPOUT_BATCHNORM % {"n": 600, "epochs": 3})
    straight = fit(load_config(config, [f"output={tmp_path / 'straight'}"]), echo=quiet)
    interrupt_after(monkeypatch, stop_after)
    with pytest.raises(TrainingInterrupted):
        fit(load_config(config, [f"output={tmp_path / 'split'}"]), echo=quiet)
    monkeypatch.undo()
    saved, meta = load_checkpoint(tmp_path / "split" / "last.npz")
    assert {"model/1.running_mean", "model/1.running_var"} <= set(saved)  # BatchNorm's buffers
    assert set(meta["layer_rng"]) == {"2"}  # the Dropout layer's mask stream, mid-epoch
    resumed = resume(tmp_path / "split", echo=quiet)
    for name in ("last.npz", "best.npz"):
        assert_same_arrays(arrays(tmp_path / "straight" / name), arrays(tmp_path / "split" / name))
    assert [r["train_loss"] for r in resumed["history"]] == [r["train_loss"] for r in straight["history"]]
    assert resumed["test"] == straight["test"]


def test_eval_uses_the_saved_batchnorm_running_statistics(tmp_path):
    from layerwise.run.evaluate import evaluate_run

    config = tmp_path / "mlp.yaml"
    config.write_text(MLP_DROPOUT_BATCHNORM % {"n": 600, "epochs": 2})
    trained = fit(load_config(config, [f"output={tmp_path / 'run'}"]), echo=quiet)
    result = evaluate_run(tmp_path / "run", echo=quiet)
    assert result["mse"] == trained["test"]["mse"]  # eval: the same model, evaluation mode, same numbers
    path = tmp_path / "run" / "best.npz"
    saved, meta = load_checkpoint(path)
    assert not np.array_equal(saved["model/1.running_mean"], 0)
    saved["model/1.running_mean"] = np.zeros_like(saved["model/1.running_mean"])
    save_checkpoint(path, saved, meta)
    assert evaluate_run(tmp_path / "run", echo=quiet)["mse"] != result["mse"]  # they are really used


def test_resume_refuses_a_malformed_dropout_rng_state(tmp_path):
    config = tmp_path / "mlp.yaml"
    config.write_text(MLP_DROPOUT_BATCHNORM % {"n": 600, "epochs": 1})
    fit(load_config(config, [f"output={tmp_path / 'run'}"]), echo=quiet)
    path = tmp_path / "run" / "last.npz"
    saved, meta = load_checkpoint(path)
    for bad, fragment in [({}, "expected layers ['2'], found []"), ({"2": {"state": 1}}, "layer 2 is malformed")]:
        meta["layer_rng"] = bad
        save_checkpoint(path, saved, meta)
        with pytest.raises(CheckpointError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
            resume(tmp_path / "run", ["train.epochs=2"], echo=quiet)


ADAM = """
seed: 3
data: {dataset: regression, n_samples: 600, weights: [1, -2, 3], bias: 0.5, val_size: 100, test_size: 100}
model:
  layers:
    - {type: linear, out_features: 32}
    - {type: tanh}
    - {type: linear, out_features: 1}
loss: mse
optimizer: {type: adam, lr: 0.03, weight_decay: 0.001, clip_norm: 2.0, warmup_epochs: 1,
            schedule: plateau, patience: 0, factor: 0.5, threshold: 0.2}
train: {epochs: 12, batch_size: 16, early_stopping: {patience: 1}}
"""


# Straight, this run warms up over epoch 1, the plateau halves lr after epochs 4 and 5, and early
# stopping ends it after epoch 7 (best epoch 6). Interrupt in the warmup, mid epoch 5 (after a
# reduction) and at the last step of epoch 7 (the resumed run makes the stopping decision).
@pytest.mark.parametrize("stop_after", [10, 110, 175])
def test_adam_plateau_early_stopping_resume_bit_identically(tmp_path, monkeypatch, stop_after):
    config = tmp_path / "adam.yaml"
    config.write_text(ADAM)
    lines = []
    straight = fit(load_config(config, [f"output={tmp_path / 'straight'}"]), echo=lines.append)
    assert "early stopping: val mse has not improved by more than 0 for 1 epoch; stopped after epoch 7 of 12, best epoch 6" in lines
    assert [r["lr"] for r in straight["history"]] == [0.03] * 4 + [0.015] + [0.0075] * 2
    assert straight["best"]["epoch"] == 6
    assert load_checkpoint(tmp_path / "straight" / "best.npz")[1]["state"]["epoch"] == 6  # best.npz is epoch 6's

    interrupt_after(monkeypatch, stop_after)
    with pytest.raises(TrainingInterrupted):
        fit(load_config(config, [f"output={tmp_path / 'split'}"]), echo=quiet)
    monkeypatch.undo()
    resumed = resume(tmp_path / "split", echo=quiet)
    for name in ("last.npz", "best.npz"):
        assert_same_arrays(arrays(tmp_path / "straight" / name), arrays(tmp_path / "split" / name))
    assert "optim/step" in arrays(tmp_path / "split" / "last.npz")
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(resumed["history"]) == drop(straight["history"])  # lr, losses, grad norms, val metrics
    assert resumed["test"] == straight["test"]


def test_early_stopped_run_reports_it_and_refuses_to_resume(tmp_path):
    config = tmp_path / "adam.yaml"
    config.write_text(ADAM)
    result = CliRunner().invoke(main, ["train", str(config), "-s", f"output={tmp_path / 'run'}"])
    assert result.exit_code == 0, result.output
    assert "stopped after epoch 7 of 12, best epoch 6" in result.output
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert "grad_norm_mean,grad_norm_max" in header  # clip_norm is set: the norms before clipping
    test = (tmp_path / "run" / "test.json").read_text()
    assert '"epoch": 6' in test
    before = (tmp_path / "run" / "last.npz").read_bytes()
    result = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "run"), "-s", "train.epochs=20"])
    assert result.exit_code == 2
    assert result.output.count("error:") == 1 and "Traceback" not in result.output
    assert "already stopped early after epoch 7 (best epoch 6" in result.output
    assert (tmp_path / "run" / "last.npz").read_bytes() == before


@pytest.mark.parametrize("field,value,fragment", [
    ("schedule", {"lr": -1.0, "best": None, "bad_epochs": 0}, "plateau schedule state"),
    ("early_stopping", {"best": "high", "bad_epochs": 0}, "early-stopping state"),
    ("stopped", {"epoch": 99, "best_epoch": 1}, "stopped is"),
    ("grad_norm_max", float("nan"), "grad_norm_max"),
])
def test_a_forged_schedule_or_early_stopping_state_is_refused_before_anything_is_written(tmp_path, monkeypatch, field, value, fragment):
    config = tmp_path / "adam.yaml"
    config.write_text(ADAM)
    interrupt_after(monkeypatch, 60)  # mid epoch 3
    with pytest.raises(TrainingInterrupted):
        fit(load_config(config, [f"output={tmp_path / 'run'}"]), echo=quiet)
    monkeypatch.undo()
    last = tmp_path / "run" / "last.npz"
    saved, meta = load_checkpoint(last)
    assert meta["state"]["schedule"]["lr"] == 0.03 and meta["state"]["early_stopping"]["bad_epochs"] == 0
    meta["state"][field] = value
    save_checkpoint(last, saved, meta)
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    with pytest.raises(CheckpointError, match=fragment):
        resume(tmp_path / "run", echo=quiet)
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()} == before


ADAM_DBN = ADAM.replace("""    - {type: linear, out_features: 32}
    - {type: tanh}
""", """    - {type: linear, out_features: 32}
    - {type: batchnorm}
    - {type: tanh}
    - {type: dropout, p: 0.2}
""").replace("early_stopping: {patience: 1}", "early_stopping: {patience: 2}")  # dropout's noisier validation


@pytest.mark.parametrize("where", ["warmup", "after a reduction", "last step before stopping"])
def test_adam_plateau_early_stopping_dropout_batchnorm_resume_bit_identically(tmp_path, monkeypatch, where):
    """As above with Dropout (its mask stream) and BatchNorm (its running statistics) in the model; the
    interrupt points come from the straight run: epoch 1, the epoch after the first lr reduction, and
    the last step of the epoch that early stopping ends."""
    config = tmp_path / "adam.yaml"
    config.write_text(ADAM_DBN)
    lines = []
    straight = fit(load_config(config, [f"output={tmp_path / 'straight'}"]), echo=lines.append)
    lrs = [r["lr"] for r in straight["history"]]
    assert any(line.startswith("early stopping:") for line in lines) and len(lrs) < 12
    assert min(lrs) < 0.03  # the plateau reduced the rate
    reduced = next(i for i, lr in enumerate(lrs) if lr < 0.03)  # 0-based epoch that trains at a lower rate
    stop_after = {"warmup": 10, "after a reduction": reduced * STEPS_PER_EPOCH + 12, "last step before stopping": len(lrs) * STEPS_PER_EPOCH}[where]

    interrupt_after(monkeypatch, stop_after)
    with pytest.raises(TrainingInterrupted):
        fit(load_config(config, [f"output={tmp_path / 'split'}"]), echo=quiet)
    monkeypatch.undo()
    resumed = resume(tmp_path / "split", echo=quiet)
    for name in ("last.npz", "best.npz"):
        assert_same_arrays(arrays(tmp_path / "straight" / name), arrays(tmp_path / "split" / name))
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(resumed["history"]) == drop(straight["history"])
    assert resumed["test"] == straight["test"]


def test_ctrl_c_through_the_cli_exits_130_and_prints_the_resume_command(tmp_path, monkeypatch):
    config = write_config(tmp_path)
    interrupt_after(monkeypatch, 5)
    result = CliRunner().invoke(main, ["train", str(config), "-s", f"output={tmp_path / 'run'}"])
    assert result.exit_code == 130
    assert f"Resume with: layerwise train --resume {tmp_path / 'run'}" in result.output
    assert "Traceback" not in result.output
    monkeypatch.undo()
    result = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert f"resuming mlp in {tmp_path / 'run'} at epoch 1, step 6" in result.output


def test_kill_9_at_random_moments_always_leaves_a_resumable_run(tmp_path):
    """SIGKILL a training subprocess at up to 5 random moments; after each, last.npz must load, and
    the run finally resumes to the same weights as an uninterrupted run."""
    config = write_config(tmp_path, n=60000, epochs=8)  # about 2.5 s of training
    run_dir = tmp_path / "killed"
    reference = tmp_path / "reference"
    fit(load_config(config, [f"output={reference}"]), echo=quiet)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    rng = random.Random(1234)
    kills = 0
    for _ in range(5):
        args = ["--resume", str(run_dir)] if (run_dir / "last.npz").exists() else [str(config), "-s", f"output={run_dir}"]
        proc = subprocess.Popen([sys.executable, "-m", "layerwise", "train", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.2, 0.9))
        if proc.poll() is not None:  # finished before the kill
            assert proc.returncode == 0, proc.stderr.read().decode()
            break
        proc.kill()
        proc.wait()
        kills += 1
        if run_dir.exists():
            checkpoint, meta = load_checkpoint(run_dir / "last.npz")  # must never be torn
            assert meta["state"]["epoch"] <= 8 and "model/0.W" in checkpoint
    assert kills >= 1
    print(f"killed the training process {kills} times")
    if not (run_dir / "last.npz").exists():
        subprocess.run([sys.executable, "-m", "layerwise", "train", str(config), "-s", f"output={run_dir}"], check=True,
                       stdout=subprocess.DEVNULL)
    elif load_checkpoint(run_dir / "last.npz")[1]["state"]["epoch"] < 8:
        done = subprocess.run([sys.executable, "-m", "layerwise", "train", "--resume", str(run_dir)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert_same_arrays(arrays(reference / "last.npz"), arrays(run_dir / "last.npz"))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no staging directory left behind


def test_divergence_stops_at_once_and_keeps_the_last_good_checkpoints(tmp_path, monkeypatch):
    config = write_config(tmp_path, epochs=3)
    run_dir = tmp_path / "run"
    real_forward = losses.MSE.forward
    calls = {"n": 0}

    def forward(self, output, target):
        calls["n"] += 1
        value = real_forward(self, output, target)
        return float("nan") if calls["n"] == STEPS_PER_EPOCH + 1 + 5 else value  # epoch 2, step 5 (+1 val pass)

    monkeypatch.setattr(losses.MSE, "forward", forward)
    with pytest.raises(TrainingDiverged) as info:
        fit(load_config(config, [f"output={run_dir}"]), echo=quiet)
    message = str(info.value)
    assert "epoch 2, step 5" in message and "smaller learning rate" in message
    # The advice is the command that works: the same config, --overwrite, a tenth of the rate.
    assert f"layerwise train {config} --overwrite -s optimizer.lr=" in message
    assert info.value.exit_code == 3
    state = load_checkpoint(run_dir / "last.npz")[1]["state"]
    assert (state["epoch"], state["step"]) == (1, 0)  # the end of epoch 1: the last good one
    assert load_checkpoint(run_dir / "best.npz")[1]["state"]["epoch"] == 1
    for name, array in arrays(run_dir / "last.npz").items():
        assert np.all(np.isfinite(array)), name


def test_huge_learning_rate_diverges_with_exit_code_3(tmp_path):
    config = write_config(tmp_path)
    result = CliRunner().invoke(main, ["train", str(config), "-s", "optimizer.lr=1e6", "-s", f"output={tmp_path / 'run'}"])
    assert result.exit_code == 3
    assert "--overwrite -s optimizer.lr=1e+05" in result.output and "Traceback" not in result.output
    for name in ("last.npz",):
        for key, array in arrays(tmp_path / "run" / name).items():
            assert np.all(np.isfinite(array)), key


def test_eval_chooses_best_or_last(tmp_path):
    config = write_config(tmp_path, epochs=3)
    fit(load_config(config, [f"output={tmp_path / 'run'}"]), echo=quiet)
    runner = CliRunner()
    best = runner.invoke(main, ["eval", str(tmp_path / "run")])
    last = runner.invoke(main, ["eval", str(tmp_path / "run"), "--checkpoint", "last"])
    assert best.exit_code == 0 and last.exit_code == 0
    assert "weights after epoch 3" in last.output
    best_epoch = load_checkpoint(tmp_path / "run" / "best.npz")[1]["state"]["epoch"]
    assert f"weights after epoch {best_epoch}" in best.output


def test_resume_refuses_overrides_that_would_change_the_run(tmp_path):
    config = write_config(tmp_path, epochs=1)
    fit(load_config(config, [f"output={tmp_path / 'run'}"]), echo=quiet)
    with pytest.raises(ConfigError, match="a resumed run can only change train.epochs"):
        resume(tmp_path / "run", overrides=["model.layers.0.out_features=8", "train.epochs=2"], echo=quiet)


def test_resume_with_more_epochs_rewrites_config_yaml(tmp_path):
    config = write_config(tmp_path, epochs=1)
    fit(load_config(config, [f"output={tmp_path / 'run'}"]), echo=quiet)
    lines = []
    resume(tmp_path / "run", overrides=["train.epochs=2"], echo=lines.append)
    assert load_config(tmp_path / "run" / "config.yaml").train.epochs == 2
    assert any("cosine learning-rate schedule now spans 2 epochs" in line for line in lines)
    assert load_checkpoint(tmp_path / "run" / "last.npz")[1]["state"]["epoch"] == 2


def test_resume_refuses_weights_that_do_not_match_the_stored_config(tmp_path):
    config = write_config(tmp_path, epochs=1)
    fit(load_config(config, [f"output={tmp_path / 'run'}"]), echo=quiet)
    fit(load_config(config, [f"output={tmp_path / 'narrow'}", "model.layers.0.out_features=8"]), echo=quiet)
    _, meta = load_checkpoint(tmp_path / "run" / "last.npz")
    save_checkpoint(tmp_path / "run" / "last.npz", arrays(tmp_path / "narrow" / "last.npz"), meta)
    with pytest.raises(CheckpointError, match="does not match the model"):
        resume(tmp_path / "run", overrides=["train.epochs=2"], echo=quiet)


# --- gradcheck ---------------------------------------------------------------------------------

GRADCHECK_CONFIG = """
seed: 0
data: {dataset: regression, n_samples: 300, weights: [1, 2, 3, 4], val_size: 50, test_size: 50}
model:
  layers:
    - {type: linear, out_features: 12}
    - {type: relu}
    - {type: linear, out_features: 8}
    - {type: tanh}
    - {type: linear, out_features: 6}
    - {type: sigmoid}
    - {type: linear, out_features: 1}
loss: mse
"""


def gradcheck(tmp_path, *args):
    path = tmp_path / "gc.yaml"
    path.write_text(GRADCHECK_CONFIG)
    return CliRunner().invoke(main, ["gradcheck", str(path), *args])


def rows(output):
    return {line.split(":")[0]: line.split()[-1] for line in output.splitlines() if line[:1].isdigit() or line.startswith("loss")}


def test_gradcheck_passes_on_correct_layers(tmp_path):
    result = gradcheck(tmp_path)
    assert result.exit_code == 0, result.output
    assert rows(result.output) == {"0": "PASS", "1": "PASS", "2": "PASS", "3": "PASS", "4": "PASS", "5": "PASS", "6": "PASS", "loss": "PASS"}


def test_gradcheck_fails_exactly_a_planted_relu_bug(tmp_path, monkeypatch):
    # The well-known tutorial bug: the ReLU backward multiplies by its output instead of passing
    # the upstream gradient through its mask.
    monkeypatch.setattr(ReLU, "backward", lambda self, dout, input_grad=True: dout * self._y)
    result = gradcheck(tmp_path)
    assert result.exit_code == 1
    table = rows(result.output)
    assert table.pop("1") == "FAIL"
    assert set(table.values()) == {"PASS"}
    assert "FAILED: 1: ReLU()" in result.output


def test_gradcheck_fails_a_planted_linear_bias_bug(tmp_path, monkeypatch):
    real = Linear.backward

    def backward(self, dout, input_grad=True):
        dx = real(self, dout, input_grad)
        if self.bias:
            self.grads["b"] = dout.mean(axis=0)  # wrong: the bias gradient sums over the batch
        return dx

    monkeypatch.setattr(Linear, "backward", backward)
    table = rows(gradcheck(tmp_path).output)
    assert {k for k, v in table.items() if v == "FAIL"} == {"0", "2", "4", "6"}


BATCHNORM_GRADCHECK_CONFIG = GRADCHECK_CONFIG.replace(
    "    - {type: relu}\n", "    - {type: batchnorm}\n    - {type: dropout, p: 0.25}\n    - {type: gelu}\n    - {type: relu}\n"
)


def test_gradcheck_fails_exactly_a_batchnorm_backward_without_the_mean_term(tmp_path, monkeypatch):
    # BatchNorm's backward as if the batch mean were a constant: dx = gamma / std * (dout - xhat * dgamma / N),
    # dropping the dbeta / N term that the mean's dependence on every row contributes.
    real = BatchNorm.backward

    def backward(self, dout, input_grad=True):
        dx = real(self, dout, input_grad)
        if input_grad:
            dx += self._scale * self.grads["beta"] / len(dout)  # undo the "- dbeta / N" part
        return dx

    path = tmp_path / "gc.yaml"
    path.write_text(BATCHNORM_GRADCHECK_CONFIG)
    correct = CliRunner().invoke(main, ["gradcheck", str(path)])
    assert correct.exit_code == 0, correct.output
    assert set(rows(correct.output).values()) == {"PASS"} and len(rows(correct.output)) == 11
    monkeypatch.setattr(BatchNorm, "backward", backward)
    result = CliRunner().invoke(main, ["gradcheck", str(path)])
    assert result.exit_code == 1
    table = rows(result.output)
    assert {k for k, v in table.items() if v == "FAIL"} == {"1"}
    assert "FAILED: 1: BatchNorm(" in result.output


def test_run_files_get_the_usual_modes_and_tilde_expands(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = write_config(tmp_path, epochs=1)
    old = os.umask(0o022)
    try:
        fit(load_config(config, ["output=~/runs/mlp"]), echo=quiet)
    finally:
        os.umask(old)
    run_dir = tmp_path / "home" / "runs" / "mlp"
    assert sorted(p.name for p in run_dir.iterdir()) == [
        ".layerwise.lock", "best.npz", "config.yaml", "last.npz", "metrics.csv", "test.json"
    ]
    assert (run_dir.stat().st_mode & 0o777) == 0o755
    for path in run_dir.iterdir():
        assert (path.stat().st_mode & 0o777) == 0o644, path.name


def test_divergence_in_the_first_epoch_does_not_promise_a_best_checkpoint(tmp_path):
    config = write_config(tmp_path)
    with pytest.raises(TrainingDiverged) as info:
        fit(load_config(config, ["optimizer.lr=1e6", f"output={tmp_path / 'run'}"]), echo=quiet)
    assert "last.npz keeps the weights from before" in str(info.value)
    assert not (tmp_path / "run" / "best.npz").exists()


def test_test_metrics_are_saved_with_the_run(tmp_path):
    import json

    config = write_config(tmp_path, epochs=2)
    result = fit(load_config(config, [f"output={tmp_path / 'run'}"]), echo=quiet)
    saved = json.loads((tmp_path / "run" / "test.json").read_text())
    assert saved["epoch"] == result["best"]["epoch"] and saved["checkpoint"] == "best.npz"
    assert saved["test_mse"] == result["test"]["mse"] and saved["test_r2"] == result["test"]["r2"]


def test_a_non_finite_gradient_with_a_finite_loss_is_never_saved(tmp_path, monkeypatch):
    # The last step before Ctrl-C produces an infinite gradient while its loss was finite: the run
    # must stop as diverged instead of saving those weights into last.npz.
    from layerwise.optim.optimizers import SGD

    real_step = SGD.step
    count = {"n": 0}

    def step(self):
        count["n"] += 1
        if count["n"] == 30:
            self.params[0][2][0, 0] = np.inf  # the gradient of 0.W
            os.kill(os.getpid(), signal.SIGINT)
        real_step(self)

    monkeypatch.setattr(SGD, "step", step)
    with pytest.raises(TrainingDiverged, match="epoch 2"):
        fit(load_config(write_config(tmp_path), [f"output={tmp_path / 'run'}"]), echo=quiet)
    for array in arrays(tmp_path / "run" / "last.npz").values():
        assert np.all(np.isfinite(array))
    assert load_checkpoint(tmp_path / "run" / "last.npz")[1]["state"]["epoch"] == 1


def test_trace_uses_the_runs_schedule_state(tmp_path):
    from layerwise.views.trace import trace_step

    config = tmp_path / "adam.yaml"
    config.write_text(ADAM)
    fit(load_config(config, [f"output={tmp_path / 'run'}"]), echo=quiet)
    # after epoch 7 the plateau halved 0.0075 once more (0.3481 is no 20% improvement on 0.3443)
    assert trace_step(tmp_path / "run", echo=quiet)[0]["lr"] == 0.00375
    # a fresh config traces the first warmup step: 0.03 / 25
    assert trace_step(config, echo=quiet)[0]["lr"] == pytest.approx(0.03 / 25)
