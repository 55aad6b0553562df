"""data.dataset: fashion_mnist and idx: finding, downloading, loading, preprocessing in the checkpoint."""

import functools
import gzip
import hashlib
import http.server
import json
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from layerwise.run.checkpoint import load_run_checkpoint
from layerwise.cli import main
from layerwise.config.schema import config_from_dict
from layerwise.data.load import load_dataset
from layerwise.data.fashion_mnist import FASHION_MNIST
from layerwise.data.idx_files import find_idx_files, role_of
from layerwise.data.mnist import FILES, IdxSpec, load_mnist
from layerwise.errors import ConfigError, DataError

from tinyidx import write_tiny

EMNIST = {key: f"emnist-letters-{name.replace('t10k', 'test')}" for key, name in FILES.items()}
LINEAR = {"layers": [{"type": "linear", "out_features": 10}]}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.delenv("LAYERWISE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def cfg(data, **top):
    return config_from_dict({"data": data, "model": LINEAR, **top}, "exp.yaml")


# --- fashion_mnist ---------------------------------------------------------------------------


def test_fashion_mnist_spec_defaults_and_class_names(tmp_path):
    write_tiny(tmp_path / "fm")
    c = cfg({"dataset": "fashion_mnist", "root": str(tmp_path / "fm"), "val_size": 10})
    assert (c.data.mean, c.data.std) == (0.2860, 0.3530)
    data = load_dataset(c.data)
    pre = data.preprocessing
    assert pre["kind"] == "image" and pre["dataset"] == "fashion_mnist"
    assert pre["class_names"][0] == "T-shirt/top" and pre["class_names"][-1] == "Ankle boot"
    assert (pre["mean"], pre["std"], pre["image_shape"]) == (0.2860, 0.3530, [28, 28])
    assert (len(data.train), len(data.val), len(data.test)) == (50, 10, 20)
    # pixels -> /255 -> (x - mean) / std, in float32
    raw = gzip.decompress((tmp_path / "fm" / "t10k-images-idx3-ubyte.gz").read_bytes())[16:]
    expected = (np.frombuffer(raw, np.uint8)[:784] / 255 - 0.2860) / 0.3530
    np.testing.assert_allclose(data.test.x[0], expected, rtol=1e-5, atol=1e-5)
    assert data.test.x.dtype == np.float32 and data.test.x.flags.c_contiguous
    assert data.sources == [str(tmp_path / "fm" / f"{n}.gz") for n in FILES.values()]


def test_only_the_test_files_are_read_for_the_test_split(tmp_path):
    write_tiny(tmp_path / "fm")
    for key in ("train_images", "train_labels"):
        (tmp_path / "fm" / f"{FILES[key]}.gz").unlink()
    c = cfg({"dataset": "fashion_mnist", "root": str(tmp_path / "fm"), "val_size": 10})
    data = load_dataset(c.data, splits=("test",))
    assert data.train is None and data.val is None and len(data.test) == 20
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_dataset(c.data)


def test_fashion_real_files_match_the_issue_checksums():
    from conftest import REPO

    root = REPO.parent / "shared" / "data" / "fashion-mnist"
    if not (root / "t10k-labels-idx1-ubyte.gz").is_file():
        root = __import__("pathlib").Path("/work/shared/data/fashion-mnist")
    if not (root / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("no Fashion-MNIST on this machine")
    for name in ("t10k-labels-idx1-ubyte", "train-labels-idx1-ubyte"):  # the small ones: fast
        gz = (root / f"{name}.gz").read_bytes()
        assert hashlib.sha256(gzip.decompress(gz)).hexdigest() == FASHION_MNIST.sha256[name]
    labels = load_mnist(root, spec=FASHION_MNIST, keys=("test_labels",), mirrors=[])
    assert set(np.unique(labels["test_labels"])) == set(range(10))


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def digests(directory, algorithm, decompress):
    out = {}
    for name in FILES.values():
        data = (directory / f"{name}.gz").read_bytes()
        out[name] = hashlib.new(algorithm, gzip.decompress(data) if decompress else data).hexdigest()
    return out


def test_fashion_download_to_its_own_cache_with_the_fashion_mirrors(tmp_path, server, monkeypatch):
    write_tiny(tmp_path / "www" / "fashion")
    spec = IdxSpec(**{**FASHION_MNIST.__dict__, "mirrors": (server + "missing/", server + "fashion/"),
                      "sha256": digests(tmp_path / "www" / "fashion", "sha256", True)})
    monkeypatch.setattr("layerwise.data.fashion_mnist.FASHION_MNIST", spec)
    lines = []
    data = load_dataset(cfg({"dataset": "fashion_mnist", "val_size": 10}).data, echo=lines.append)
    assert len(data.test) == 20
    assert len(lines) == 4 and all(line.startswith(f"mirror {server}missing/") for line in lines)
    cache = tmp_path / "xdg-cache" / "layerwise" / "fashion_mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in FILES.values())
    assert data.sources == [str(cache / f"{n}.gz") for n in FILES.values()]
    # Second time: straight from the cache, no mirror contacted.
    monkeypatch.setattr("layerwise.data.fashion_mnist.FASHION_MNIST", IdxSpec(**{**spec.__dict__, "mirrors": ()}))
    assert len(load_dataset(cfg({"dataset": "fashion_mnist", "val_size": 10}).data, echo=pytest.fail).test) == 20


def test_md5_of_the_original_gz_is_accepted_instead_of_sha256(tmp_path, server):
    write_tiny(tmp_path / "www" / "f")
    wrong = {name: "0" * 64 for name in FILES.values()}
    spec = IdxSpec(**{**FASHION_MNIST.__dict__, "sha256": wrong,
                      "md5_gz": digests(tmp_path / "www" / "f", "md5", False)})
    arrays = load_mnist(spec=spec, mirrors=[server + "f/"], cache_dir=tmp_path / "c", echo=pytest.fail)
    assert arrays["train_images"].shape == (60, 28, 28)
    # Neither checksum matches: refused, naming the sha256 expected.
    bad = IdxSpec(**{**spec.__dict__, "md5_gz": {name: "0" * 32 for name in FILES.values()}})
    with pytest.raises(DataError, match="checksum"):
        load_mnist(spec=bad, mirrors=[server + "f/"], cache_dir=tmp_path / "c2", echo=lambda line: None)


def test_fashion_label_out_of_range_names_fashion(tmp_path):
    from layerwise.data.idx import write_idx

    write_tiny(tmp_path / "fm")
    write_idx(tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz", np.full(20, 12, np.uint8))
    with pytest.raises(DataError, match="Fashion-MNIST labels are 0-9"):
        load_dataset(cfg({"dataset": "fashion_mnist", "root": str(tmp_path / "fm"), "val_size": 10}).data)


# --- idx: any four IDX files in data.root -----------------------------------------------------


@pytest.mark.parametrize("name, role", [
    ("emnist-letters-train-images-idx3-ubyte.gz", "train_images"),
    ("emnist-letters-test-labels-idx1-ubyte", "test_labels"),
    ("t10k-images-idx3-ubyte.gz", "test_images"),
    ("kmnist-train-labels.idx1", "train_labels"),
    ("README.md", None),
    ("train.csv", None),
])
def test_role_of(name, role):
    assert role_of(name) == role


def test_idx_dataset_emnist_names_class_names_and_computed_stats(tmp_path):
    arrays = write_tiny(tmp_path / "em", names=EMNIST, classes=4)
    (tmp_path / "em" / "README.txt").write_text("not data")
    names = ["a", "b", "c", "d"]
    c = cfg({"dataset": "idx", "root": str(tmp_path / "em"), "val_size": 10, "class_names": names},
            model={"layers": [{"type": "linear", "out_features": 4}]})
    data = load_dataset(c.data)
    assert data.num_outputs == 4 and data.preprocessing["class_names"] == names
    scaled = arrays["train_images"][:50] / 255  # the mean/std come from the training rows only
    assert data.preprocessing["mean"] == pytest.approx(scaled.mean(), rel=1e-9)
    assert data.preprocessing["std"] == pytest.approx(scaled.std(), rel=1e-9)
    assert abs(float(data.train.x.mean())) < 1e-3 and abs(float(data.train.x.std()) - 1) < 1e-3


def test_idx_without_class_names_counts_labels(tmp_path):
    write_tiny(tmp_path / "k", classes=7)
    data = load_dataset(cfg({"dataset": "idx", "root": str(tmp_path / "k"), "val_size": 5}).data)
    top = max(int(data.train.y.max()), int(data.val.y.max()), int(data.test.y.max()))
    assert data.preprocessing["class_names"] == [str(i) for i in range(top + 1)]


def test_idx_errors(tmp_path):
    write_tiny(tmp_path / "d", names=EMNIST, classes=4)
    with pytest.raises(DataError, match="label 3 has no class name"):
        load_dataset(cfg({"dataset": "idx", "root": str(tmp_path / "d"), "val_size": 5,
                          "class_names": ["a", "b", "c"]}).data)
    (tmp_path / "d" / "old-train-images-idx3-ubyte").write_bytes(b"")
    with pytest.raises(DataError, match="several files could be the training images"):
        find_idx_files(tmp_path / "d")
    (tmp_path / "e").mkdir()
    with pytest.raises(DataError, match="has no training images file"):
        find_idx_files(tmp_path / "e")
    with pytest.raises(ConfigError, match="data.root"):
        cfg({"dataset": "idx"})
    with pytest.raises(ConfigError, match="data.class_names: 'a' appears more than once"):
        cfg({"dataset": "idx", "root": "x", "class_names": ["a", "a"]})


# --- through the CLI --------------------------------------------------------------------------


def test_train_fashion_names_the_dataset_and_stores_preprocessing(tmp_path):
    write_tiny(tmp_path / "fm")
    (tmp_path / "exp.yaml").write_text(json.dumps({
        "data": {"dataset": "fashion_mnist", "root": str(tmp_path / "fm"), "val_size": 10},
        "model": LINEAR, "optimizer": {"lr": 0.05}, "train": {"epochs": 1, "batch_size": 16}}))
    result = CliRunner().invoke(main, ["train", str(tmp_path / "exp.yaml"), "-s", f"output={tmp_path / 'run'}"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"training fashion_mnist into {tmp_path / 'run'}:")
    assert "training mnist" not in result.output
    for name in ("best.npz", "last.npz"):
        _, meta = load_run_checkpoint(tmp_path / "run" / name)
        assert meta["preprocessing"]["class_names"][9] == "Ankle boot"
        assert meta["data"] == {"task": "classification", "num_features": 784, "num_outputs": 10, "steps_per_epoch": 4}
        assert [entry["sha256"] for entry in meta["fingerprint"]] == [
            hashlib.sha256(gzip.decompress((tmp_path / "fm" / f"{n}.gz").read_bytes())).hexdigest()
            for n in FILES.values()]


def test_train_idx_header_names_its_directory(tmp_path):
    write_tiny(tmp_path / "em", names=EMNIST, classes=4)
    (tmp_path / "exp.yaml").write_text(json.dumps({
        "data": {"dataset": "idx", "root": str(tmp_path / "em"), "val_size": 10, "class_names": list("abcd")},
        "model": {"layers": [{"type": "linear", "out_features": 4}]}, "train": {"epochs": 1}}))
    result = CliRunner().invoke(main, ["train", str(tmp_path / "exp.yaml"), "-s", f"output={tmp_path / 'run'}"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"training idx ({tmp_path / 'em'}) into")


def test_idx_eval_uses_the_stored_stats_and_class_names_without_training_files(tmp_path):
    write_tiny(tmp_path / "em", names=EMNIST, classes=4)
    (tmp_path / "exp.yaml").write_text(json.dumps({
        "data": {"dataset": "idx", "root": str(tmp_path / "em"), "val_size": 10, "class_names": list("abcd")},
        "model": {"layers": [{"type": "linear", "out_features": 4}]}, "train": {"epochs": 2}}))
    run = tmp_path / "run"
    assert CliRunner().invoke(main, ["train", str(tmp_path / "exp.yaml"), "-s", f"output={run}"]).exit_code == 0
    before = CliRunner().invoke(main, ["eval", str(run)])
    assert before.exit_code == 0, before.output
    for key in ("train_images", "train_labels"):
        (tmp_path / "em" / f"{EMNIST[key]}.gz").unlink()
    after = CliRunner().invoke(main, ["eval", str(run)])
    assert after.exit_code == 0, after.output
    assert after.output == before.output  # same numbers: mean/std came from the checkpoint
    assert "test split, 20 examples" in after.output


def test_a_download_that_cannot_be_cached_still_has_a_fingerprint(tmp_path, server):
    from layerwise.data.fingerprint import fingerprint

    write_tiny(tmp_path / "www" / "f")
    (tmp_path / "blocker").write_text("a file where the cache directory should be")
    sha = digests(tmp_path / "www" / "f", "sha256", True)
    lines, sources = [], {}
    load_mnist(mirrors=[server + "f/"], cache_dir=tmp_path / "blocker" / "cache", sha256=sha,
               echo=lines.append, sources=sources)
    assert len(lines) == 4 and all(line.startswith("could not cache") for line in lines)
    entries = fingerprint(sources.values())
    assert [e["sha256"] for e in entries] == [sha[n] for n in FILES.values()]
    assert entries[0]["file"] == f"{server}f/train-images-idx3-ubyte.gz"
