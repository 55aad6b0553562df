"""Every file a user names (predict -o, trace --dot, plot -o, export OUT.onnx, sweep --output) follows one
rule (util/outputs.py): checked early (empty, over NAME_MAX, existing, a dangling link: one error line),
created at the end without replacing anything that appeared meanwhile."""

import os
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

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


def assert_error(result, code, *fragments):
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(config, run directory, an .npy of inputs) of a 2-epoch linear regression."""
    tmp = tmp_path_factory.mktemp("outputs")
    config = tmp / "linreg.yaml"
    config.write_text(textwrap.dedent(REGRESSION).lstrip())
    result = run("train", config, "-s", f"output={tmp / 'linreg'}")
    assert result.exit_code == 0, result.output
    import layerwise

    x = np.zeros((3, layerwise.load(tmp / "linreg").model.layers[0].params["W"].shape[0]), dtype=np.float32)
    np.save(tmp / "x.npy", x)
    return config, tmp / "linreg", tmp / "x.npy"


def _has(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def commands(tiny, out):
    """(name, argv) writing the user-named file `out`, for each command that writes one."""
    config, run_dir, x = tiny
    found = [("predict -o", ["predict", run_dir, x, "-o", out]), ("trace --dot", ["trace", config, "--dot", out])]
    if _has("matplotlib"):
        found.append(("plot -o", ["plot", run_dir, "-o", out]))
    if _has("onnx"):
        found.append(("export", ["export", run_dir, out]))
    return found


SUFFIX = {"predict -o": ".csv", "trace --dot": ".dot", "plot -o": ".png", "export": ".onnx"}


def test_a_name_over_name_max_is_one_error_line_for_every_output(tiny, tmp_path):
    for name, _ in commands(tiny, None):
        out = tmp_path / ("n" * 300 + SUFFIX[name])
        (argv,) = [a for n, a in commands(tiny, out) if n == name]
        assert_error(run(*argv), 2, "at most 255 bytes")
    config = tiny[0]
    assert_error(run("sweep", config, "-s", "optimizer.lr=0.01,0.02", "--output", tmp_path / ("d" * 300)), 2,
                 "at most 255 bytes")
    assert os.listdir(tmp_path) == []


def test_an_empty_name_says_it_is_empty(tiny):
    for name, argv in commands(tiny, ""):
        result = run(*argv)
        assert_error(result, 2, "empty")
        assert "already exists" not in result.output


def test_an_existing_file_or_a_dangling_link_is_refused_before_the_work(tiny, tmp_path):
    for name, _ in commands(tiny, None):
        mine = tmp_path / f"mine{SUFFIX[name]}"
        mine.write_text("my notes")
        link = tmp_path / f"link{SUFFIX[name]}"
        link.symlink_to(tmp_path / f"nowhere{SUFFIX[name]}")
        for out in (mine, link):
            (argv,) = [a for n, a in commands(tiny, out) if n == name]
            assert_error(run(*argv), 2, "already exists")
        assert mine.read_text() == "my notes" and link.is_symlink() and not link.exists()


@pytest.mark.parametrize("name, slow_step", [("trace --dot", "layerwise.views.trace.trace_step"),
                                             ("plot -o", "layerwise.views.plot._curves_data"),
                                             ("predict -o", "layerwise.predict.summarise")])
def test_a_file_created_during_the_work_is_never_replaced(tiny, tmp_path, monkeypatch, name, slow_step):
    """The replace race: the name is free when checked, the user creates it while layerwise works."""
    if name == "plot -o" and not _has("matplotlib"):
        pytest.skip("matplotlib is not installed")
    import importlib

    module_name, function = slow_step.rsplit(".", 1)
    module = importlib.import_module(module_name)
    original = getattr(module, function)
    out = tmp_path / f"race{SUFFIX[name]}"

    def meanwhile(*args, **kwargs):
        out.write_text("the user's file")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, function, meanwhile)
    (argv,) = [a for n, a in commands(tiny, out) if n == name]
    assert_error(run(*argv), 2, "appeared while")
    assert out.read_text() == "the user's file"
    assert sorted(os.listdir(tmp_path)) == [out.name]  # no temporary file left beside it
