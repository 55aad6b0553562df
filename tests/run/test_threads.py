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
