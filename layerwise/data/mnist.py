"""Find, download and verify the four files of an MNIST-format dataset, then load them as uint8 arrays.

Generic over an `IdxSpec` (file names, checksums, mirrors, classes): MNIST is defined here,
Fashion-MNIST in fashion_mnist.py. Search order per file: an explicit directory (`root`, i.e. the
config's data.root, else $LAYERWISE_DATA), then the user cache, then each mirror in turn. Files from
an explicit directory are only checked structurally, so tiny hand-made datasets work; cached and
downloaded files must also match a checksum: the SHA256 of the decompressed bytes (so a recompressed
copy still passes) or, when the spec has one, the MD5 of the original .gz.
"""

import errno
import gzip
import hashlib
import http.client
import os
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..errors import DataError
from ..util.fileio import atomic_write
from ..util.openfile import kind_of
from .fingerprint import remember
from .idx import GZIP_MAGIC, read_idx, read_idx_bytes

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class IdxSpec:
    """What identifies an MNIST-format dataset: where it is cached, its files and how to get them."""

    name: str  # data.dataset, and the cache subdirectory
    title: str  # for messages: "MNIST", "Fashion-MNIST"
    sha256: dict  # file name -> sha256 of the decompressed IDX bytes
    mirrors: tuple  # base URLs, tried in order
    class_names: tuple
    mean: float  # pixel mean and std after scaling to [0, 1], over the training images
    std: float
    md5_gz: dict = field(default_factory=dict)  # file name -> md5 of the original .gz (optional)
    files: dict = field(default_factory=lambda: dict(FILES))


MNIST = IdxSpec(
    name="mnist",
    title="MNIST",
    sha256={
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    class_names=tuple(str(d) for d in range(10)),
    mean=0.1307,
    std=0.3081,
)
SHA256 = MNIST.sha256
MIRRORS = list(MNIST.mirrors)
TIMEOUT = 30  # seconds per connect or read, not for the whole file
CHUNK = 1 << 16
# What one mirror can fail with; anything else is a bug and keeps its traceback.
MIRROR_ERRORS = (OSError, http.client.HTTPException, EOFError, zlib.error, ValueError, DataError)


def load_mnist(root=None, *, spec=MNIST, mirrors=None, cache_dir=None, sha256=None, echo=print, keys=None,
               sources=None):
    """Return {"train_images", "train_labels", "test_images", "test_labels"} as uint8 arrays (only
    those in `keys` when given, e.g. the test pair); `sources`, a dict, receives {key: path or URL}.

    Images are (N, H, W) and labels (N,); real MNIST is 60000 / 10000 images of 28x28.
    `mirrors` and `sha256` default to the spec's (tests inject their own);
    `echo` receives the one-line progress and failure messages.
    """
    mirrors = spec.mirrors if mirrors is None else mirrors
    sha256 = spec.sha256 if sha256 is None else sha256
    explicit, origin = root, "data.root"
    if explicit is None and os.environ.get("LAYERWISE_DATA"):
        explicit, origin = os.environ["LAYERWISE_DATA"], "$LAYERWISE_DATA"
    arrays, sources = {}, ({} if sources is None else sources)
    for key, name in spec.files.items():
        if keys is not None and key not in keys:
            continue
        # Any OSError of a path here (a directory we may not list, a name too long, a cache we may not
        # read) is the data's problem, reported as one line naming the path and where it came from.
        try:
            if explicit is not None:
                path = find_in(explicit, name, origin, spec.title)
                arrays[key], sources[key] = read_idx(path), str(path)
            else:
                cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(spec.name)
                origin = f"the {spec.title} cache"
                arrays[key], sources[key] = cached_or_downloaded(
                    name, cache, mirrors, sha256[name], spec.md5_gz.get(name), echo, spec.title)
        except OSError as e:
            raise DataError(path_error(e, origin, spec.title)) from None
    check_splits(arrays, sources, len(spec.class_names), spec.title)
    return arrays


def path_error(e: OSError, origin: str, title="MNIST") -> str:
    """One line for an OSError of a data path: which path, what went wrong, what to do."""
    reason = {
        errno.EACCES: "permission denied (check its permissions with ls -ld)",
        errno.EPERM: "operation not permitted (check its permissions with ls -ld)",
        errno.ENAMETOOLONG: "name too long (file systems allow 255 bytes per name, 4096 per path)",
        errno.ELOOP: "too many levels of symbolic links",
    }.get(e.errno, (e.strerror or str(e)).lower())
    path = str(e.filename) if e.filename is not None else "a file"
    if len(path) > 120:
        path = f"{path[:40]}...{path[-60:]} ({len(path)} characters)"
    fix = f"set data.root or $LAYERWISE_DATA to a readable copy of {title}" if origin.endswith(" cache") \
        else f"fix {origin}"
    return f"{origin}: cannot use {path}: {reason}; {fix}"


def default_cache_dir(name="mnist") -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "layerwise" / name


def find_in(directory, name: str, origin: str, title="MNIST") -> Path:
    """Return the .gz or raw copy of `name` in a directory the user chose: no download fallback."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise DataError(f"{origin} {directory} is a file, not a directory; point {origin} at the directory holding the {title} files")
    if not directory.is_dir():
        raise DataError(f"{origin} directory {directory} does not exist; "
                        f"create it with the {title} files or fix {origin}")
    for path in (directory / f"{name}.gz", directory / name):
        kind = kind_of(path)
        if kind is not None and kind.startswith("a "):  # a FIFO or a device would hang: named, not skipped
            raise DataError(f"{origin} {path}: not a regular file ({kind}); put the {title} file there")
        if kind != "missing":  # a regular file, or one that cannot be looked at (the OSError says why)
            path.stat()
            return path
    raise DataError(f"{origin} directory {directory} has no {name}.gz or {name}; "
                    f"put the {title} files there or fix {origin}")


def cached_or_downloaded(name, cache: Path, mirrors, expected: str, md5_gz, echo, title="MNIST"):
    """Return (array, source) from a verified cache entry, else from the first good mirror.

    A cached file that fails its checksum is never deleted (the cache may be a link into the user's
    own data directory): it is reported, and only a download that verifies is renamed over it
    (atomic_write: a temporary file beside it, then os.replace). If no mirror gives a good copy, the
    error names the corrupt file, which is left exactly as it was."""
    corrupt = []
    for path in (cache / f"{name}.gz", cache / name):
        if not path.is_file():
            continue
        data = path.read_bytes()
        try:
            raw = gzip.decompress(data) if data[:2] == GZIP_MAGIC else data
            verify(raw, expected, data if data[:2] == GZIP_MAGIC else None, md5_gz)
        except (EOFError, zlib.error, gzip.BadGzipFile, DataError) as e:
            echo(f"cached file {path} is corrupt ({describe(e)}); downloading a fresh copy (the file is left "
                 f"as it is unless the download verifies)")
            corrupt.append(path)
            continue
        remember(path, hashlib.sha256(raw).hexdigest())
        return read_idx_bytes(raw, str(path)), str(path)
    try:
        gz, raw, url = download(name, mirrors, expected, md5_gz, echo, title)
    except DataError as e:
        if not corrupt:
            raise
        raise DataError(f"{e}; the cached {' and '.join(map(str, corrupt))} failed its checksum and was left as "
                        f"it is: replace it with a good copy, or remove it") from None
    path = cache / f"{name}.gz"  # searched first, so a corrupt raw copy beside it is never read again
    source = str(path) if save_atomically(path, gz, echo) else url
    remember(source, hashlib.sha256(raw).hexdigest())
    return read_idx_bytes(raw, url), source


def download(name, mirrors, expected: str, md5_gz, echo, title="MNIST"):
    """Return (gzip bytes, decompressed bytes, url) from the first mirror whose file verifies."""
    reason = "no mirrors given"
    for mirror in mirrors:
        url = f"{mirror}{name}.gz"
        try:
            gz = fetch(url, f"{name}.gz")
            raw = gzip.decompress(gz)
            verify(raw, expected, gz, md5_gz)
            return gz, raw, url
        except MIRROR_ERRORS as e:
            reason = describe(e)
            echo(f"mirror {url} failed: {reason}")
    raise DataError(f"{name}.gz: all {len(mirrors)} mirrors failed (last: {reason}); download the "
                    f"{title} files by hand into a directory and set data.root or $LAYERWISE_DATA")


def fetch(url: str, desc: str) -> bytes:
    # Some mirrors refuse urllib's default User-Agent with 403.
    request = urllib.request.Request(url, headers={"User-Agent": "layerwise"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        length = response.headers.get("Content-Length")
        chunks = []
        with tqdm(total=int(length) if length else None, unit="B", unit_scale=True,
                  desc=desc, disable=None) as bar:
            while chunk := response.read(CHUNK):
                chunks.append(chunk)
                bar.update(len(chunk))
    return b"".join(chunks)


def verify(raw: bytes, expected: str, gz: bytes = None, md5_gz: str = None) -> None:
    """Accept the sha256 of the decompressed bytes, or the md5 of the original .gz when known."""
    got = hashlib.sha256(raw).hexdigest()
    if got == expected:
        return
    if gz is not None and md5_gz is not None and hashlib.md5(gz).hexdigest() == md5_gz:
        return
    raise DataError(f"checksum mismatch: sha256 {got}, expected {expected}")


def describe(e: BaseException) -> str:
    """One short reason for a failed mirror, without urllib's nested reprs."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    if isinstance(e, (EOFError, zlib.error, gzip.BadGzipFile)):
        return f"bad gzip ({e})"
    return str(e) or type(e).__name__


def save_atomically(path: Path, data: bytes, echo) -> bool:
    """Write to a temp file in the same directory, then os.replace: never half a file on a crash."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: f.write(data))
    except OSError as e:
        # The data is already verified in memory; an unwritable cache only costs a re-download.
        echo(f"could not cache {path}: {e}")
        return False
    return True


def check_splits(arrays: dict, sources: dict, num_classes=10, title="MNIST") -> None:
    """Check what training relies on: (N,H,W) images, (N,) labels below num_classes, same H,W in
    both splits (only the splits loaded)."""
    for split in ("train", "test"):
        if f"{split}_images" not in arrays:
            continue
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        image_src, label_src = sources[f"{split}_images"], sources[f"{split}_labels"]
        check_pair(images, labels, image_src, label_src)
        if labels.size and labels.max() >= num_classes:
            raise DataError(f"{label_src}: label {labels.max()} out of range "
                            f"({title} labels are 0-{num_classes - 1}); is this a label file?")
    if "train_images" in arrays and "test_images" in arrays:
        train_hw, test_hw = arrays["train_images"].shape[1:], arrays["test_images"].shape[1:]
        if train_hw != test_hw:
            raise DataError(f"train images are {train_hw} but test images are {test_hw}; "
                            "use files from the same dataset")


def check_pair(images, labels, image_src, label_src) -> None:
    if images.ndim != 3:
        raise DataError(f"{image_src}: images must be 3-D (N, H, W), got shape {images.shape}; "
                        "is this an image file?")
    if len(images) == 0 or 0 in images.shape[1:]:
        raise DataError(f"{image_src}: holds no pixels (shape {images.shape}: {len(images)} images of "
                        f"{'x'.join(map(str, images.shape[1:]))}); is this the right file? re-download it")
    if labels.ndim != 1:
        raise DataError(f"{label_src}: labels must be 1-D (N,), got shape {labels.shape}; "
                        "is this a label file?")
    if len(images) != len(labels):
        raise DataError(f"{image_src} has {len(images)} images but {label_src} has "
                        f"{len(labels)} labels; use matching image and label files")
