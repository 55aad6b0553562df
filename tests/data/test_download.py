"""load_mnist: explicit directories, the cache, and downloads from a local HTTP server."""

import functools
import gzip
import hashlib
import http.server
import shutil
import threading

import numpy as np
import pytest

from layerwise.data.idx import write_idx
from layerwise.data.mnist import FILES, SHA256, load_mnist
from layerwise.errors import DataError

from conftest import MNIST_ROOT as REAL_MNIST


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    # Never pick up the developer's data or cache: everything stays in tmp_path.
    monkeypatch.delenv("LAYERWISE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def make_tiny_mnist(directory, n_train=20, n_test=10, suffix=".gz"):
    """Write four small IDX files into `directory`; return {file name: decompressed sha256}."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    digests = {}
    for key, name in FILES.items():
        path = directory / f"{name}{suffix}"
        write_idx(path, arrays[key])
        raw = gzip.decompress(path.read_bytes()) if suffix else path.read_bytes()
        digests[name] = hashlib.sha256(raw).hexdigest()
    return digests


def check_tiny(arrays, n_train=20, n_test=10):
    assert arrays["train_images"].shape == (n_train, 28, 28)
    assert arrays["train_labels"].shape == (n_train,)
    assert arrays["test_images"].shape == (n_test, 28, 28)
    assert arrays["test_labels"].shape == (n_test,)
    assert all(a.dtype == np.uint8 for a in arrays.values())


# ---- explicit directories: data.root and $LAYERWISE_DATA -------------------------------------


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_root_loads_tiny_files(tmp_path, suffix):
    make_tiny_mnist(tmp_path / "data", suffix=suffix)
    check_tiny(load_mnist(tmp_path / "data", mirrors=[], cache_dir=tmp_path / "cache"))


def test_root_missing_file_names_it_and_does_not_download(tmp_path):
    make_tiny_mnist(tmp_path / "data")
    (tmp_path / "data" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte") as info:
        load_mnist(str(tmp_path / "data"), mirrors=["http://127.0.0.1:9/"], echo=pytest.fail)
    assert str(tmp_path / "data") in str(info.value)


def test_root_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(str(tmp_path / "nowhere"), mirrors=[], echo=pytest.fail)


def test_count_mismatch_names_both_files(tmp_path):
    make_tiny_mnist(tmp_path / "data")
    write_idx(tmp_path / "data" / "train-labels-idx1-ubyte.gz", np.zeros(19, dtype=np.uint8))
    with pytest.raises(DataError, match="20 images") as info:
        load_mnist(tmp_path / "data", mirrors=[])
    message = str(info.value)
    assert "19 labels" in message
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message


def test_label_out_of_range(tmp_path):
    make_tiny_mnist(tmp_path / "data")
    write_idx(tmp_path / "data" / "t10k-labels-idx1-ubyte.gz", np.full(10, 10, dtype=np.uint8))
    with pytest.raises(DataError, match="out of range"):
        load_mnist(tmp_path / "data", mirrors=[])


def test_images_must_be_3d(tmp_path):
    make_tiny_mnist(tmp_path / "data")
    write_idx(tmp_path / "data" / "train-images-idx3-ubyte.gz", np.zeros((20, 784), dtype=np.uint8))
    with pytest.raises(DataError, match="3-D"):
        load_mnist(tmp_path / "data", mirrors=[])


def test_env_var_used_when_root_is_none(tmp_path, monkeypatch):
    make_tiny_mnist(tmp_path / "env-data")
    monkeypatch.setenv("LAYERWISE_DATA", str(tmp_path / "env-data"))
    check_tiny(load_mnist(mirrors=[], cache_dir=tmp_path / "cache"))


def test_env_var_missing_file_is_an_error_not_a_download(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("LAYERWISE_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataError, match=r"\$LAYERWISE_DATA"):
        load_mnist(mirrors=["http://127.0.0.1:9/"], echo=pytest.fail)


# ---- downloads from a local server --------------------------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1; yields the base URL."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(www)))
    # A short poll interval keeps shutdown() (and so each test) fast.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download_caches_then_loads_from_cache(tmp_path, server):
    digests = make_tiny_mnist(tmp_path / "www" / "good")
    cache = tmp_path / "cache"
    lines = []
    check_tiny(load_mnist(mirrors=[server + "good/"], cache_dir=cache, sha256=digests,
                          echo=lines.append))
    assert lines == []
    for name in FILES.values():
        served = tmp_path / "www" / "good" / f"{name}.gz"
        assert (cache / f"{name}.gz").read_bytes() == served.read_bytes()
    assert not list(cache.glob("*.tmp"))
    # Second load: no mirrors at all, so it must come from the cache.
    check_tiny(load_mnist(mirrors=[], cache_dir=cache, sha256=digests, echo=pytest.fail))


def test_default_cache_is_under_xdg_cache_home(tmp_path, server):
    digests = make_tiny_mnist(tmp_path / "www" / "good")
    load_mnist(mirrors=[server + "good/"], sha256=digests)
    assert (tmp_path / "xdg-cache" / "layerwise" / "mnist" / "train-images-idx3-ubyte.gz").is_file()


def test_404_mirror_then_good_mirror(tmp_path, server):
    digests = make_tiny_mnist(tmp_path / "www" / "good")
    lines = []
    check_tiny(load_mnist(mirrors=[server + "missing/", server + "good/"],
                          cache_dir=tmp_path / "cache", sha256=digests, echo=lines.append))
    # One line per file, each naming the bad mirror's URL for that file.
    assert len(lines) == len(FILES)
    for line, name in zip(lines, FILES.values()):
        assert line == f"mirror {server}missing/{name}.gz failed: HTTP 404 File not found"


def test_bad_checksum_on_every_mirror(tmp_path, server):
    make_tiny_mnist(tmp_path / "www" / "a")
    make_tiny_mnist(tmp_path / "www" / "b")
    lines = []
    with pytest.raises(DataError, match="checksum") as info:
        load_mnist(mirrors=[server + "a/", server + "b/"], cache_dir=tmp_path / "cache",
                   sha256=SHA256, echo=lines.append)
    message = str(info.value)
    assert "all 2 mirrors failed" in message and "LAYERWISE_DATA" in message
    assert len(lines) == 2 and all("checksum mismatch" in line for line in lines)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_unreachable_mirror(tmp_path, server):
    digests = make_tiny_mnist(tmp_path / "www" / "good")
    lines = []
    # Port 9 (discard) on localhost is closed: connection refused, immediately.
    load_mnist(mirrors=["http://127.0.0.1:9/", server + "good/"], cache_dir=tmp_path / "cache",
               sha256=digests, echo=lines.append)
    assert len(lines) == len(FILES)
    assert all(line.startswith("mirror http://127.0.0.1:9/") for line in lines)


def test_bad_gzip_on_mirror(tmp_path, server):
    digests = make_tiny_mnist(tmp_path / "www" / "good")
    broken = tmp_path / "www" / "broken"
    shutil.copytree(tmp_path / "www" / "good", broken)
    for path in broken.iterdir():
        path.write_bytes(path.read_bytes()[:-10])
    lines = []
    load_mnist(mirrors=[server + "broken/", server + "good/"], cache_dir=tmp_path / "cache",
               sha256=digests, echo=lines.append)
    assert len(lines) == len(FILES) and all("bad gzip" in line for line in lines)


def test_corrupt_cache_is_reported_and_replaced(tmp_path, server):
    digests = make_tiny_mnist(tmp_path / "www" / "good")
    cache = tmp_path / "cache"
    load_mnist(mirrors=[server + "good/"], cache_dir=cache, sha256=digests)
    cached = cache / "t10k-images-idx3-ubyte.gz"
    good_bytes = cached.read_bytes()
    cached.write_bytes(good_bytes[:-10])
    lines = []
    check_tiny(load_mnist(mirrors=[server + "good/"], cache_dir=cache, sha256=digests,
                          echo=lines.append))
    assert len(lines) == 1
    assert "corrupt" in lines[0] and str(cached) in lines[0]
    assert cached.read_bytes() == good_bytes


def test_cached_file_with_wrong_content_is_replaced(tmp_path, server):
    digests = make_tiny_mnist(tmp_path / "www" / "good")
    cache = tmp_path / "cache"
    make_tiny_mnist(cache, n_train=5, n_test=3)  # valid IDX, wrong checksums
    lines = []
    check_tiny(load_mnist(mirrors=[server + "good/"], cache_dir=cache, sha256=digests,
                          echo=lines.append))
    assert len(lines) == len(FILES) and all("checksum mismatch" in line for line in lines)


def test_recompressed_gz_passes_verification(tmp_path, server):
    digests = make_tiny_mnist(tmp_path / "www" / "good")
    for path in (tmp_path / "www" / "good").iterdir():
        original = path.read_bytes()
        recompressed = gzip.compress(gzip.decompress(original), compresslevel=1, mtime=1)
        assert recompressed != original
        path.write_bytes(recompressed)
    check_tiny(load_mnist(mirrors=[server + "good/"], cache_dir=tmp_path / "cache",
                          sha256=digests, echo=pytest.fail))


def test_raw_file_in_cache_is_verified_and_used(tmp_path):
    cache = tmp_path / "cache"
    digests = make_tiny_mnist(cache, suffix="")
    check_tiny(load_mnist(mirrors=[], cache_dir=cache, sha256=digests, echo=pytest.fail))


# ---- the real files, when this machine has them -------------------------------------------


@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason=f"{REAL_MNIST} not present")
def test_real_mnist(tmp_path):
    arrays = load_mnist(REAL_MNIST, mirrors=[])
    assert arrays["train_images"].shape == (60000, 28, 28)
    assert arrays["train_labels"].shape == (60000,)
    assert arrays["test_images"].shape == (10000, 28, 28)
    assert arrays["test_labels"].shape == (10000,)
    for key in ("train_labels", "test_labels"):
        assert set(np.unique(arrays[key])) == set(range(10))
    for name in FILES.values():
        raw = gzip.decompress((REAL_MNIST / f"{name}.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == SHA256[name]
    # The same files as a cache pass the real checksums with no network.
    shutil.copytree(REAL_MNIST, tmp_path / "cache")
    cached = load_mnist(mirrors=[], cache_dir=tmp_path / "cache", echo=pytest.fail)
    np.testing.assert_array_equal(cached["test_labels"], arrays["test_labels"])


def test_a_corrupt_cached_file_is_never_deleted_before_a_good_copy_exists(tmp_path, server):
    """The cache is a link into the user's own data directory: a file there that fails its checksum is
    reported and kept when no mirror has a good copy, and only a verified download replaces it."""
    digests = make_tiny_mnist(tmp_path / "www" / "good")
    mine = tmp_path / "my-data"
    make_tiny_mnist(mine)
    cache = tmp_path / "cache"
    cache.symlink_to(mine)
    damaged = mine / "t10k-images-idx3-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:-10])
    before = damaged.read_bytes()
    lines = []
    with pytest.raises(DataError, match="left as it is") as info:
        load_mnist(mirrors=[server + "missing/"], cache_dir=cache, sha256=digests, echo=lines.append,
                   keys=("test_images", "test_labels"))
    assert str(damaged.name) in str(info.value)
    assert damaged.read_bytes() == before  # still there, untouched
    assert any("corrupt" in line for line in lines)
    check_tiny(load_mnist(mirrors=[server + "good/"], cache_dir=cache, sha256=digests, echo=lines.append))
    assert damaged.read_bytes() == (tmp_path / "www" / "good" / damaged.name).read_bytes()
    assert not list(mine.glob(".*.tmp"))


def test_a_corrupt_cached_link_is_replaced_not_its_target(tmp_path, server):
    digests = make_tiny_mnist(tmp_path / "www" / "good")
    cache = tmp_path / "cache"
    cache.mkdir()
    users = tmp_path / "users-file.gz"
    users.write_bytes(b"not a dataset, but the user's")
    (cache / "t10k-labels-idx1-ubyte.gz").symlink_to(users)
    check_tiny(load_mnist(mirrors=[server + "good/"], cache_dir=cache, sha256=digests, echo=lambda line: None))
    assert users.read_bytes() == b"not a dataset, but the user's"
    assert not (cache / "t10k-labels-idx1-ubyte.gz").is_symlink()
