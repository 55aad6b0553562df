"""Reliability III classes 8, 13, 14, 15, 16, 17 and 19: temporary names within NAME_MAX, CSV formula
injection in predict -o, terminal escapes in printed text, a LoadedModel shared by threads, the int digit
limit in -s keys, stdout write errors, and the API raising only layerwise.errors classes."""

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import layerwise
from layerwise.cli import main
from layerwise.config.schema import apply_overrides
from layerwise.errors import CheckpointError, ConfigError, DataError
from layerwise.util.fileio import atomic_create, atomic_write
from layerwise.util.text import printable, spreadsheet_safe

REPO = Path(__file__).resolve().parents[1]
ESC_TITLE = "\x1b]0;owned\x07"  # an OSC sequence: would retitle the terminal


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A CSV classifier whose class names are a formula and an escape sequence."""
    tmp = tmp_path_factory.mktemp("untrusted")
    rng = np.random.default_rng(0)
    a = rng.normal(size=80).round(3)
    labels = np.where(a > 0, "=HYPERLINK(1)", f"{ESC_TITLE}low")
    (tmp / "t.csv").write_text("a,label\n" + "".join(f"{x},{y}\n" for x, y in zip(a, labels)))
    (tmp / "c.yaml").write_text(yaml.safe_dump({
        "data": {"dataset": "csv", "path": str(tmp / "t.csv"), "target": "label"},
        "model": {"layers": [{"type": "linear"}]}, "optimizer": {"lr": 0.1}, "train": {"epochs": 3, "batch_size": 16}}))
    result = cli("train", tmp / "c.yaml", "-s", f"output={tmp / 'run'}")
    assert result.exit_code == 0, result.output
    return tmp


def test_temporary_names_stay_within_name_max(tmp_path):
    for n in (241, 242, 250, 255):
        name = "é" * ((n - 4) // 2) + "x" * ((n - 4) % 2) + ".csv"  # two-byte characters: cut on a byte count
        assert len(name.encode()) == n
        atomic_write(tmp_path / name, lambda f: f.write(b"ok"))
        assert (tmp_path / name).read_bytes() == b"ok"
        (tmp_path / name).unlink()
        atomic_create(tmp_path / name, lambda f: f.write(b"new"))
        assert (tmp_path / name).read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_predict_csv_neutralises_formulas_and_the_terminal_sees_no_escape(table_run):
    out = table_run / "preds.csv"
    result = cli("predict", table_run / "run", table_run / "t.csv", "-o", out)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output and "\\x1b]0;owned\\x07low" in result.output
    text = out.read_text()
    assert "'=HYPERLINK(1)" in text and ",=HYPERLINK" not in text and "\n=" not in text
    assert spreadsheet_safe("-2+3") == "'-2+3" and spreadsheet_safe("plain") == "plain"
    assert printable("a\x1b[2Jb\x9bc\td\n") == "a\\x1b[2Jb\\x9bc\td\n"


def test_a_loaded_model_shared_by_four_threads_gives_each_its_own_result(table_run):
    model = layerwise.load(table_run / "run")
    inputs = [np.random.default_rng(i).normal(size=(200 + 37 * i, 1)).astype(np.float32) for i in range(4)]
    expected = [model.outputs(x) for x in inputs]
    got = [None] * 4

    def work(i):
        for _ in range(50):
            got[i] = model.outputs(inputs[i])
            if not np.array_equal(got[i], expected[i]):
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(g, e) for g, e in zip(got, expected))


def test_override_index_with_thousands_of_digits_is_a_config_error():
    with pytest.raises(ConfigError, match="is not an index"):
        apply_overrides({"model": {"layers": [{"type": "relu"}]}}, ["model.layers." + "9" * 5000 + ".x=1"], "c.yaml")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_stdout_on_a_full_device_is_one_error_line():
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "layerwise", "config", str(REPO / "configs" / "mnist.yaml")],
                              stdout=full, stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.returncode == 4
    assert proc.stderr.startswith("error: cannot write to standard output: No space left on device")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["--help"], ["--version"], ["eval", "--help"]])
def test_what_click_prints_to_a_full_device_is_one_error_line(args):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "layerwise", *args],
                              stdout=full, stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.returncode == 4
    assert proc.stderr == "error: cannot write to standard output: No space left on device\n"


@pytest.mark.parametrize("run", [3, None, 2.5, ["runs/x"]])
def test_api_load_of_a_non_path_is_a_config_error(run):
    with pytest.raises(ConfigError, match="expected a path"):
        layerwise.load(run)


def test_api_takes_bytes_paths_and_refuses_a_non_callable_echo(table_run, tmp_path):
    assert layerwise.load(str(table_run / "run").encode()).task == "classification"
    with pytest.raises(ConfigError, match="echo: expected a function"):
        layerwise.train({"seed": 0}, echo=3)
    with pytest.raises(ConfigError, match="config: expected a YAML path or a dict"):
        layerwise.train(7, echo=None)
    assert not list(tmp_path.iterdir())


def test_api_raises_layerwise_errors_and_takes_numpy_scalars(table_run, tmp_path):
    with pytest.raises(CheckpointError, match="characters"):
        layerwise.load("x" * 300)
    model = layerwise.load(table_run / "run")
    reg = {"data": {"dataset": "regression", "n_samples": 600}, "model": {"layers": [{"type": "linear"}]},
           "loss": "mse", "output": str(tmp_path / "reg")}
    result = layerwise.train(reg, echo=lambda *a: None, train__epochs=np.int64(1), optimizer__lr=np.float32(0.01))
    assert len(result["history"]) == 1
    arrays = layerwise.load(tmp_path / "reg")
    with pytest.raises(DataError, match="rectangular"):
        arrays.predict([[1.0, 2.0, 3.0], [1.0]])
    with pytest.raises(DataError, match="no rows"):
        arrays.predict(np.zeros((0, 3)))
    with pytest.raises(ConfigError, match="cannot be a config value"):
        layerwise.train(reg, echo=lambda *a: None, train__epochs=object())
    assert model.task == "classification"
