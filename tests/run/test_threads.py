"""--threads N and $LAYERWISE_THREADS: the BLAS thread count a command computes with, named in the run's
first line; a bad value is one error line."""

import pytest
import yaml
from click.testing import CliRunner

from layerwise.cli import main

CONFIG = {"data": {"dataset": "regression", "n_samples": 600}, "model": {"layers": [{"type": "linear", "out_features": 1}]},
          "loss": "mse", "train": {"epochs": 1}}


def cli(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


@pytest.fixture
def config(tmp_path):
    (tmp_path / "reg.yaml").write_text(yaml.safe_dump(CONFIG))
    return tmp_path / "reg.yaml"


@pytest.mark.parametrize("how", ["option", "env"])
def test_the_first_line_names_the_thread_count(config, tmp_path, how):
    args, env = (["--threads", "1"], None) if how == "option" else ([], {"LAYERWISE_THREADS": "1"})
    result = cli("train", config, "-s", f"output={tmp_path / 'run'}", *args, env=env)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith("; 1 BLAS thread")
    for command in (["eval", tmp_path / "run"], ["predict", tmp_path / "run", tmp_path / "x.npy"]):
        if command[0] == "predict":
            import numpy as np

            np.save(tmp_path / "x.npy", np.zeros((2, 3), np.float32))
        assert cli(*command, *args, env=env).exit_code == 0


def test_a_bad_thread_count_is_one_error_line(config, tmp_path):
    result = cli("train", config, "-s", f"output={tmp_path / 'run'}", env={"LAYERWISE_THREADS": "many"})
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert result.output.startswith("error: $LAYERWISE_THREADS='many'") and not (tmp_path / "run").exists()
    assert cli("train", config, "--threads", "0").exit_code == 2  # click's range check


def test_threads_hold_in_a_fresh_process_where_numpy_is_not_yet_loaded(config, tmp_path):
    # threadpoolctl limits only the BLAS libraries loaded when it runs: the CLI applies --threads before
    # anything imports NumPy, so the limit must load it first (it once said "2 BLAS threads" here)
    import os
    import subprocess
    import sys

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    p = subprocess.run([sys.executable, "-m", "layerwise", "train", str(config), "-s", f"output={tmp_path / 'run'}",
                        "--threads", "1"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert (p.stdout + p.stderr).splitlines()[0].endswith("; 1 BLAS thread"), p.stdout + p.stderr
