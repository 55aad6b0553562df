"""Runs know their data: the fingerprint in every checkpoint, refused on resume and eval, eval --data."""

import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from layerwise.run.checkpoint import load_run_checkpoint
from layerwise.cli import main
from layerwise.data import fingerprint as fp
from layerwise.data.idx import write_idx
from layerwise.data.mnist import FILES

from tinyidx import write_tiny

CONFIG = {
    "data": {"dataset": "mnist", "root": None, "val_size": 10},
    "model": {"layers": [{"type": "linear", "out_features": 10}]},
    "optimizer": {"lr": 0.05},
    "train": {"epochs": 2, "batch_size": 16},
}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.delenv("LAYERWISE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.chdir(tmp_path)


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_refused(result, code, *fragments):
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def trained(tmp_path):
    """A 1-epoch run (of 2) on tiny MNIST in ./a; ./b holds other data with the same file names."""
    write_tiny(tmp_path / "a", seed=0)
    write_tiny(tmp_path / "b", seed=1)
    (tmp_path / "exp.yaml").write_text(json.dumps({**CONFIG, "data": {**CONFIG["data"], "root": "a"}}))
    result = cli("train", "exp.yaml", "-s", "output=run", "-s", "train.epochs=1")
    assert result.exit_code == 0, result.output
    return tmp_path / "run"


def test_checkpoint_stores_a_fingerprint_of_each_file(trained, tmp_path):
    _, meta = load_run_checkpoint(trained / "best.npz")
    entries = meta["fingerprint"]
    assert [os.path.basename(e["file"]) for e in entries] == [f"{n}.gz" for n in FILES.values()]
    for entry in entries:
        assert entry["sha256"] == fp.file_digest(entry["file"])
        assert entry["size"] == os.path.getsize(entry["file"])


def test_resume_with_other_data_is_refused_and_writes_nothing(trained, tmp_path):
    before = snapshot(trained)
    result = cli("train", "--resume", "run", "-s", "data.root=b", "-s", "train.epochs=2")
    assert_refused(result, 1, "trained on other data", "train-images-idx3-ubyte.gz", "start a new run")
    assert snapshot(trained) == before


def test_resume_with_the_same_data_moved_elsewhere_is_accepted(trained, tmp_path):
    shutil.copytree(tmp_path / "a", tmp_path / "moved")
    result = cli("train", "--resume", "run", "-s", "data.root=moved", "-s", "train.epochs=2")
    assert result.exit_code == 0, result.output
    assert "epoch 2/2" in result.output


def test_eval_refuses_other_data_and_says_how_to_score_it(trained, tmp_path, monkeypatch):
    result = cli("eval", "run", "-s", "data.root=b")
    assert_refused(result, 1, "trained on other data", "t10k-images-idx3-ubyte.gz",
                   "layerwise eval run --data FILE_OR_DIR")
    # The same through $LAYERWISE_DATA when the config has no data.root.
    import yaml

    cfg = yaml.safe_load((trained / "config.yaml").read_text())
    cfg["data"]["root"] = None
    (trained / "config.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("LAYERWISE_DATA", str(tmp_path / "b"))
    assert_refused(cli("eval", "run"), 1, "trained on other data")
    monkeypatch.setenv("LAYERWISE_DATA", str(tmp_path / "a"))
    assert cli("eval", "run").exit_code == 0


def test_eval_on_the_test_split_needs_no_training_files(trained, tmp_path):
    for key in ("train_images", "train_labels"):
        (tmp_path / "a" / f"{FILES[key]}.gz").unlink()
    result = cli("eval", "run")
    assert result.exit_code == 0, result.output
    assert "test split, 20 examples" in result.output
    assert_refused(cli("eval", "run", "--split", "val"), 1, "train-images-idx3-ubyte")


def test_eval_data_scores_other_data_on_purpose(trained, tmp_path):
    result = cli("eval", "run", "--data", "b")
    assert result.exit_code == 0, result.output
    assert "b (not the run's data), 20 examples" in result.output and "acc" in result.output
    # The same numbers as the model's own predictions on those files.
    arrays = write_tiny(tmp_path / "unused", seed=1)
    np.savez(tmp_path / "b.npz", x=arrays["test_images"], y=arrays["test_labels"])
    from_npz = cli("eval", "run", "--data", "b.npz")
    assert from_npz.exit_code == 0, from_npz.output
    assert from_npz.output.splitlines()[1] == result.output.splitlines()[1]  # same loss and accuracy
    # An IDX images file finds its labels file beside it.
    from_idx = cli("eval", "run", "--data", tmp_path / "b" / "t10k-images-idx3-ubyte.gz")
    assert from_idx.exit_code == 0, from_idx.output
    assert from_idx.output.splitlines()[1] == result.output.splitlines()[1]
    import layerwise

    model = layerwise.load("run")
    accuracy = np.mean(model.predict(arrays["test_images"]) == arrays["test_labels"])
    assert f"acc {100 * accuracy:.2f}%" in result.output


@pytest.mark.parametrize("args, fragments", [
    (["--data", "b.npy"], ["holds no targets", "layerwise predict"]),
    (["--data", "a", "--split", "val"], ["no validation split"]),
    (["--data", "empty"], ["has no test images file"]),
])
def test_eval_data_errors(trained, tmp_path, args, fragments):
    np.save(tmp_path / "b.npy", np.zeros((3, 28, 28), np.uint8))
    (tmp_path / "empty").mkdir()
    before = snapshot(tmp_path)
    result = cli("eval", "run", *args)
    assert_refused(result, 2 if "val" in args else 1, *fragments)
    assert snapshot(tmp_path) == before


def test_generated_data_has_a_fingerprint_too(tmp_path):
    (tmp_path / "reg.yaml").write_text(json.dumps({
        "data": {"dataset": "regression", "n_samples": 60, "val_size": 10, "test_size": 10},
        "model": {"layers": [{"type": "linear", "out_features": 1}]}, "loss": "mse", "train": {"epochs": 1}}))
    assert cli("train", "reg.yaml", "-s", "output=r").exit_code == 0
    _, meta = load_run_checkpoint(tmp_path / "r" / "best.npz")
    assert meta["fingerprint"][0]["file"] == "<generated>"
    assert cli("eval", "r").exit_code == 0


# --- the fingerprint functions ----------------------------------------------------------------


def test_digest_is_of_the_data_so_gz_and_raw_copies_agree(tmp_path):
    array = np.arange(600, dtype=np.uint8).reshape(6, 10, 10)
    write_idx(tmp_path / "x.gz", array)
    write_idx(tmp_path / "x", array)
    assert fp.file_digest(tmp_path / "x.gz") == fp.file_digest(tmp_path / "x")
    write_idx(tmp_path / "y", array + 1)
    assert fp.file_digest(tmp_path / "y") != fp.file_digest(tmp_path / "x")


def test_a_stored_entry_with_the_same_size_and_mtime_is_not_read_again(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("a,b\n1,2\n")
    (entry,) = fp.fingerprint([path])
    fp._MEMO.clear()
    # A stored digest for an unchanged file is trusted (no read): proven with a planted digest.
    planted = [{**entry, "sha256": "planted"}]
    assert fp.fingerprint([path], known=planted)[0]["sha256"] == "planted"
    # Once the file changes (size or mtime), it is hashed again.
    path.write_text("a,b\n1,3\n")
    os.utime(path, ns=(entry["mtime_ns"] + 10**9, entry["mtime_ns"] + 10**9))
    assert fp.fingerprint([path], known=planted)[0]["sha256"] not in ("planted", entry["sha256"])


def test_mismatch_accepts_a_subset_and_names_the_odd_file():
    stored = [{"file": "/d/a", "sha256": "1"}, {"file": "/d/b", "sha256": "2"}]
    assert fp.mismatch([{"file": "/e/b", "sha256": "2"}], stored) is None
    message = fp.mismatch([{"file": "/e/b", "sha256": "3" * 64}], stored)
    assert "/e/b" in message and "the run used /d/b" in message


def test_a_checkpoint_from_before_fingerprints_still_evaluates(trained, tmp_path):
    for name in ("best.npz", "last.npz"):
        with np.load(trained / name) as npz:
            saved = {key: npz[key] for key in npz.files}
        meta = json.loads(str(saved["__meta__"]))
        for key in ("preprocessing", "data", "fingerprint"):
            meta.pop(key)
        saved["__meta__"] = np.array(json.dumps(meta))
        np.savez(trained / name, **saved)
    result = cli("eval", "run", "-s", "data.root=b")  # nothing recorded to check against
    assert result.exit_code == 0, result.output
    assert "test split, 20 examples" in result.output
