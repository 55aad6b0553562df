"""Ctrl-C and SIGTERM in every phase, with real processes and real signals: the final test evaluation,
the last epoch's validation, predict -o writing its file. Each answers with one line and 130 / 143,
leaves no temporary file, and a run stopped after its last epoch is completed by --resume.

Each child process runs `layerwise` with one function wrapped to touch a marker file and then wait;
the test sends the signal once the marker exists (no blind sleeps)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from conftest import REPO

CONFIG = """
seed: 0
data: {dataset: regression, n_samples: 200, val_size: 40, test_size: 40}
model:
  layers:
    - {type: linear, out_features: 1}
loss: mse
optimizer: {lr: 0.05}
train: {epochs: 2, batch_size: 32}
"""

# Runs `layerwise ARGS...` with TARGET (module:attribute) wrapped: the Nth call (N = $LW_CALL, 1 = the
# first) touches $LW_MARKER, then waits up to 30 s (a signal ends the wait when it raises; a deferred
# signal lets it finish after 0.5 s more), then does the real work.
DRIVER = textwrap.dedent("""
    import importlib, os, sys, time
    module_name, attribute = os.environ["LW_TARGET"].split(":")
    module = importlib.import_module(module_name)
    owner, _, name = attribute.rpartition(".")
    holder = getattr(module, owner) if owner else module
    original = getattr(holder, name)
    calls = [0]
    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(os.environ.get("LW_CALL", "1")):
            open(os.environ["LW_MARKER"], "w").close()
            deadline = time.monotonic() + float(os.environ.get("LW_WAIT", "30"))
            while time.monotonic() < deadline:
                time.sleep(0.05)
        return original(*args, **kwargs)
    setattr(holder, name, wrapped)
    from layerwise.cli import main
    main(sys.argv[1:], prog_name="layerwise")
""")


def start(tmp_path, target, *args, call=1, wait=30):
    env = {**os.environ, "PYTHONPATH": str(REPO), "LW_TARGET": target, "LW_MARKER": str(tmp_path / "marker"),
           "LW_CALL": str(call), "LW_WAIT": str(wait), "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", DRIVER, *map(str, args)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def signal_at_marker(proc, tmp_path, signum, timeout=60):
    deadline = time.monotonic() + timeout
    while not (tmp_path / "marker").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            out, err = proc.communicate()
            pytest.fail(f"the marker never appeared (exit {proc.returncode}):\n{out}\n{err}")
        time.sleep(0.02)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=timeout)
    return out + err, proc.returncode


def layerwise(tmp_path, *args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "layerwise", *map(str, args)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.stdout + done.stderr, done.returncode


def one_error_line(output, code, returncode, *fragments):
    assert returncode == code, output
    assert "Traceback" not in output and "Aborted!" not in output, output
    errors = [line for line in output.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1, output
    for fragment in fragments:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"


def temp_files(directory):
    return [p.name for p in directory.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(textwrap.dedent(CONFIG).lstrip())
    return path


@pytest.mark.parametrize("signum, code, cause", [(signal.SIGTERM, 143, "stopped by SIGTERM"),
                                                 (signal.SIGINT, 130, "interrupted")])
def test_a_signal_during_the_test_evaluation_stops_with_one_line_and_resume_completes_it(tmp_path, config, signum,
                                                                                       code, cause):
    proc = start(tmp_path, "layerwise.run.trainer:Trainer._test", "train", config, "-s", "output=run")
    output, returncode = signal_at_marker(proc, tmp_path, signum)
    one_error_line(output, code, returncode, cause, "test evaluation", "layerwise train --resume run")
    assert not (tmp_path / "run" / "test.json").exists() and not temp_files(tmp_path / "run")
    output, returncode = layerwise(tmp_path, "train", "--resume", "run")
    assert returncode == 0, output
    assert "completing" in output and (tmp_path / "run" / "test.json").is_file()
    output, returncode = layerwise(tmp_path, "train", "--resume", "run")
    one_error_line(output, 2, returncode, "already finished 2 epochs")


def test_sigterm_in_the_last_epochs_validation_stops_after_the_epoch(tmp_path, config):
    # evaluate's calls: epoch 1's validation, epoch 2's (the last), then the test split.
    proc = start(tmp_path, "layerwise.run.trainer:evaluate", "train", config, "-s", "output=run", call=2, wait=0.5)
    output, returncode = signal_at_marker(proc, tmp_path, signal.SIGTERM)
    one_error_line(output, 143, returncode, "stopped by SIGTERM after epoch 2", "layerwise train --resume run")
    assert not (tmp_path / "run" / "test.json").exists()
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 3  # header and both epochs
    output, returncode = layerwise(tmp_path, "train", "--resume", "run")
    assert returncode == 0 and (tmp_path / "run" / "test.json").is_file(), output


def test_sigterm_while_predict_writes_its_file_leaves_no_temporary_file(tmp_path, config):
    output, returncode = layerwise(tmp_path, "train", config, "-s", "output=run")
    assert returncode == 0, output
    np.save(tmp_path / "x.npy", np.zeros((4, 3), np.float32))
    out = tmp_path / "out"
    out.mkdir()
    # fsync_dir runs once the bytes are in the temporary file: the signal arrives with it on disk.
    proc = start(tmp_path, "layerwise.util.fileio:os.fsync", "predict", "run", "x.npy", "-o", out / "preds.csv")
    output, returncode = signal_at_marker(proc, tmp_path, signal.SIGTERM)
    one_error_line(output, 143, returncode, "stopped by SIGTERM")
    assert os.listdir(out) == []


def test_ctrl_c_while_a_command_reads_is_one_line_not_aborted(tmp_path, config):
    output, returncode = layerwise(tmp_path, "train", config, "-s", "output=run")
    assert returncode == 0, output
    proc = start(tmp_path, "layerwise.views.compare:read_run", "compare", "run")
    output, returncode = signal_at_marker(proc, tmp_path, signal.SIGINT)
    one_error_line(output, 130, returncode, "interrupted")


def test_sweep_answers_a_signal_sent_to_its_process_alone(tmp_path):
    # `kill -INT PID` (not the terminal's Ctrl-C to the whole group) reaches the sweep only: it passes the
    # signal on to its workers, so the running trials save and stop instead of training to the end.
    (tmp_path / "c.yaml").write_text(CONFIG)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "layerwise", "sweep", "c.yaml", "-s", "optimizer.lr=0.01,0.02",
                             "-s", "train.epochs=5000", "-s", "data.n_samples=20000", "--jobs", "2", "--output", "sw"],
                            cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not all((tmp_path / "sw" / "trials" / t / "last.npz").exists() for t in ("t000", "t001")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    # last.npz appears when a trial's run directory does, a moment before its training loop (which answers
    # signals; an idle worker ignores them) starts: give both that moment (each trains for a minute)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [err.strip()]
    assert "sweep interrupted" in err and "Traceback" not in err
    assert out.count("interrupted; its last.npz is saved") == 2
