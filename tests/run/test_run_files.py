"""Edited run files (metrics.csv, test.json) are untrusted input: every command that reads them back
(compare, plot, plot SWEEP, the sweep report) goes through one reader (run/runfiles.py), and a bad
file is one error line naming it, never a traceback."""

import json
import os
import shutil
import textwrap

import pytest
from click.testing import CliRunner

import layerwise.run.runfiles as runfiles
from layerwise.cli import main

REGRESSION = """
seed: 0
data: {dataset: regression, n_samples: 200, val_size: 40, test_size: 40}
model:
  layers:
    - {type: linear, out_features: 1}
loss: mse
optimizer: {lr: 0.05}
train: {epochs: 2, batch_size: 32}
"""


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runfiles")
    config = tmp / "linreg.yaml"
    config.write_text(textwrap.dedent(REGRESSION).lstrip())
    result = run("train", config, "-s", f"output={tmp / 'linreg'}")
    assert result.exit_code == 0, result.output
    return tmp / "linreg"


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write(name, content):
    def edit(run_dir):
        path = run_dir / name
        path.unlink()
        if content == "fifo":
            os.mkfifo(path)
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return edit


def metrics_edit(change):
    """Edit the good metrics.csv text with `change(lines) -> lines`."""
    def edit(run_dir):
        path = run_dir / "metrics.csv"
        path.write_text("\n".join(change(path.read_text().splitlines())) + "\n")
    return edit


def json_edit(change):
    def edit(run_dir):
        path = run_dir / "test.json"
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return edit


def replace_cell(lines, row, column, value):
    cells = lines[row].split(",")
    cells[column] = value
    return lines[:row] + [",".join(cells)] + lines[row + 1:]


METRICS = {
    "not-a-number": metrics_edit(lambda lines: replace_cell(lines, 1, 2, "lots")),
    "short-row": metrics_edit(lambda lines: lines[:1] + [",".join(lines[1].split(",")[:2])] + lines[2:]),
    "long-row": metrics_edit(lambda lines: lines[:1] + [lines[1] + ",7"] + lines[2:]),
    "epochs-out-of-order": metrics_edit(lambda lines: [lines[0], lines[2], lines[1]]),
    "no-epoch-column": metrics_edit(lambda lines: [lines[0].replace("epoch", "epoque")] + lines[1:]),
    "non-utf8": write("metrics.csv", b"epoch,lr\n1,\xff\xfe\n"),
    "huge": write("metrics.csv", "epoch,lr\n" + "1,0.1\n" * 400),
    "field-over-csv-limit": write("metrics.csv", "epoch," + "x" * 200_000 + "\n1,2\n"),
    "fifo": write("metrics.csv", "fifo"),
    "sparse-8-GiB": lambda run_dir: os.truncate(run_dir / "metrics.csv", 8 << 30),  # never read: refused by its size
    "a-directory": lambda run_dir: ((run_dir / "metrics.csv").unlink(), (run_dir / "metrics.csv").mkdir()),
}
TEST_JSON = {
    "a-list": write("test.json", "[1, 2, 3]"),
    "nested-100000-deep": write("test.json", "[" * 100_000 + "]" * 100_000),
    "nested-40-deep-in-an-object": write("test.json", '{"epoch": 1, "val_mse": 1, "x": ' + "[" * 40 + "]" * 40 + "}"),
    "ragged-confusion": json_edit(lambda d: {**d, "test_confusion": [[1, 2], [3]]}),
    "confusion-of-text": json_edit(lambda d: {**d, "test_confusion": [["a", "b"], ["c", "d"]]}),
    "metric-of-text": json_edit(lambda d: {**d, "test_mse": "low"}),
    "metric-a-list": json_edit(lambda d: {**d, "val_mse": [1]}),
    "epoch-a-string": json_edit(lambda d: {**d, "epoch": "two"}),
    "integer-of-200-digits": write("test.json", '{"epoch": 1, "val_mse": 1, "test_mse": 1' + "0" * 200 + "}"),
    "nan-token": write("test.json", '{"epoch": 1, "val_mse": NaN}'),
    "non-utf8": write("test.json", b'{"epoch": 1, "\xff": 2}'),
    "truncated": write("test.json", '{"epoch": 1, "val_'),
    "fifo": write("test.json", "fifo"),
}


def commands(run_dir, what):
    found = [["compare", run_dir]]
    if _has_matplotlib():
        found.append(["plot", run_dir, "-o", run_dir.parent / f"{run_dir.name}.png"] if what == "metrics.csv"
                     else ["plot", run_dir, "--what", "confusion", "-o", run_dir.parent / f"{run_dir.name}.png"])
    return found


def assert_one_line_naming(result, path):
    assert result.exit_code in (1, 4), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(path) in lines[0], lines[0]


@pytest.mark.parametrize("name", sorted(METRICS))
def test_an_edited_metrics_csv_is_one_line_naming_it(good, tmp_path, monkeypatch, name):
    monkeypatch.setattr(runfiles, "MAX_BYTES", 1000)  # "huge": 2.4 kB stands for gigabytes
    run_dir = tmp_path / "run"
    shutil.copytree(good, run_dir)
    METRICS[name](run_dir)
    for argv in commands(run_dir, "metrics.csv"):
        assert_one_line_naming(run(*argv), run_dir / "metrics.csv")


@pytest.mark.parametrize("name", sorted(TEST_JSON))
def test_an_edited_test_json_is_one_line_naming_it(good, tmp_path, name):
    run_dir = tmp_path / "run"
    shutil.copytree(good, run_dir)
    TEST_JSON[name](run_dir)
    for argv in commands(run_dir, "test.json"):
        assert_one_line_naming(run(*argv), run_dir / "test.json")


def test_the_sweep_report_marks_a_trial_with_an_edited_test_json_failed(good, tmp_path):
    from layerwise.sweep.runner import _finished

    run_dir = tmp_path / "run"
    shutil.copytree(good, run_dir)
    assert _finished("t1", run_dir)["status"] == "finished"
    for name in ("a-list", "nested-100000-deep", "metric-a-list", "epoch-a-string"):
        TEST_JSON[name](run_dir)
        row = _finished("t1", run_dir)
        assert row["status"] == "failed" and str(run_dir / "test.json") in row["error"]
        shutil.copy(good / "test.json", run_dir / "test.json")


def test_null_metrics_are_shown_not_crashed_on(good, tmp_path):
    """json_text writes NaN as null (R2 of one example): compare prints it as n/a."""
    run_dir = tmp_path / "run"
    shutil.copytree(good, run_dir)
    json_edit(lambda d: {**d, "test_r2": None})(run_dir)
    result = run("compare", run_dir)
    assert result.exit_code == 0, result.output
    assert "r2 n/a" in result.output


def fake_sweep(tmp_path, good, manifest, results):
    sweep = tmp_path / "sweep"
    (sweep / "trials").mkdir(parents=True)
    shutil.copytree(good, sweep / "trials" / "t1")
    (sweep / "sweep.yaml").write_bytes(manifest if isinstance(manifest, bytes) else manifest.encode())
    (sweep / "results.csv").write_text(results)
    return sweep


MANIFEST = "config: /nowhere.yaml\nfixed: []\ntrials:\n- {id: t1, overrides: {optimizer.lr: 0.05}}\n"
RESULTS = "id,status,optimizer.lr,metric,best_val\nt1,finished,0.05,val_mse,0.5\n"


@pytest.mark.skipif(not _has_matplotlib(), reason="matplotlib is not installed")
@pytest.mark.parametrize("manifest, results, fragment", [
    (MANIFEST, RESULTS, None),
    (MANIFEST, "id,status,optimizer.lr,metric,best_val\nt1,finished\n", "no finished trial"),
    (MANIFEST, RESULTS.replace("val_mse", "val_bogus"), "val_bogus"),
    (MANIFEST, RESULTS.replace("0.05,val_mse", ",val_mse"), None),
    (MANIFEST, RESULTS.replace("optimizer.lr,", "optimizer.lr,extra,"), "no finished trial"),
    (b"config: \xff\n", RESULTS, "sweep.yaml"),
    ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1 if i else ''}" + ", *a" * 9 + f"{i - 1 if i else ''}]\n" for i in range(9)),
     RESULTS, "sweep.yaml"),
])
def test_plot_of_an_edited_sweep_is_a_picture_or_one_line(good, tmp_path, manifest, results, fragment):
    sweep = fake_sweep(tmp_path, good, manifest, results)
    result = run("plot", sweep, "-o", tmp_path / "sweep.png")
    if fragment is None:
        assert result.exit_code == 0, result.output
        assert (tmp_path / "sweep.png").is_file()
        return
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


@pytest.mark.parametrize("manifest", ["config: 3\nfixed: []\ntrials: []\n", "config: x.yaml\nfixed: []\ntrials: [1, 2]\n",
                                      "config: x.yaml\nfixed: []\ntrials:\n- {id: ../.., overrides: {}}\n",
                                      "[" * 50 + "]" * 50])
def test_sweep_resume_of_an_edited_manifest_is_one_line(good, tmp_path, manifest):
    sweep = fake_sweep(tmp_path, good, manifest, RESULTS)
    result = run("sweep", "--resume", sweep)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "sweep.yaml" in lines[0], result.stderr
