"""Hostile input files for `predict`, `eval --data`, `train` and the API (issue 17, the input classes).

One test per class of failure; each fails on the code before the fix (a traceback, a hang, a wrong
message or an allocation of tens of GiB) and passes after it:
  1  npy/npz inputs: object members, bad CRCs, zips called .npy, headers that break NumPy's tokenizer;
  2  zero rows: one "no rows" error naming the file;
  3  memory: forged sizes are refused from the header, gzip never inflates past what it declares,
     a CSV's long cell does not widen its column;
  4  the csv module's field limit in a header;
  6  FIFOs, devices, directories where a file is expected: refused, never waited on;
  7  input names over 255 bytes;
  18 wrong messages: a FIFO called "no such file", X.CSV.GZ read as text, a UTF-8 config under LC_ALL=C.
Every file is tiny and written here; a hang fails the test after ALARM seconds instead of blocking.
"""

import gzip
import io
import json
import os
import signal
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

import layerwise
from layerwise.cli import main
from layerwise.data.csvfile import read_csv
from layerwise.data.inputs import read_inputs
from layerwise.errors import LayerwiseError
from layerwise.util import memory

from conftest import REPO
from tinyidx import write_tiny

ALARM = 20  # seconds: a read that blocks (a FIFO) fails the test instead of hanging the suite

IMAGE = {"data": {"dataset": "mnist", "root": None, "val_size": 10},
         "model": {"layers": [{"type": "linear", "out_features": 10}]},
         "optimizer": {"lr": 0.05}, "train": {"epochs": 1, "batch_size": 16}}
ARRAY = {"data": {"dataset": "regression", "n_samples": 60, "weights": [3.0, 4.0, 2.0], "bias": 5.0,
                  "val_size": 10, "test_size": 10},
         "model": {"layers": [{"type": "linear", "out_features": 1}]}, "loss": "mse",
         "optimizer": {"lr": 0.05}, "train": {"epochs": 1, "batch_size": 16}}
TABLE = {"data": {"dataset": "csv", "path": None, "target": "label"},
         "model": {"layers": [{"type": "linear", "out_features": 2}]}, "loss": "softmax_cross_entropy",
         "optimizer": {"lr": 0.05}, "train": {"epochs": 1, "batch_size": 16}}


@pytest.fixture(autouse=True)
def no_hang():
    def hung(*_):
        raise TimeoutError(f"blocked for {ALARM} s (a FIFO read?)")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(ALARM)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error(result, *fragments, code=None):
    """The command failed with exactly one `error:` line holding every fragment, and no traceback."""
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code != 0 and (code is None or result.exit_code == code), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three tiny trained runs: images (IDX), arrays (3 features, regression), a table (CSV)."""
    tmp = tmp_path_factory.mktemp("hostile-inputs")
    write_tiny(tmp / "data")
    rows = ["a,b,c,label"] + [f"{i % 7 / 3:.3f},{i % 5 - 2},{'xy'[i % 2]},{'pq'[i % 3 == 0]}" for i in range(60)]
    (tmp / "t.csv").write_text("\n".join(rows) + "\n")
    configs = {"image": {**IMAGE, "data": {**IMAGE["data"], "root": str(tmp / "data")}}, "array": ARRAY,
               "table": {**TABLE, "data": {**TABLE["data"], "path": str(tmp / "t.csv")}}}
    for name, cfg in configs.items():
        (tmp / f"{name}.yaml").write_text(json.dumps(cfg))
        result = cli("train", tmp / f"{name}.yaml", "-s", f"output={tmp / name}")
        assert result.exit_code == 0, result.output
    return {name: tmp / name for name in configs}


def read(run, path):
    model = layerwise.load(run)
    return read_inputs([path], model.preprocessing, model.task)


def npy_bytes(array):
    f = io.BytesIO()
    np.save(f, array)
    return f.getvalue()


def npz_bytes(**arrays):
    f = io.BytesIO()
    np.savez(f, **arrays)
    return f.getvalue()


def forged_npy_header(shape, descr="<f8"):
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header = header.ljust(117) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


# --- 1. npy/npz inputs ---------------------------------------------------------------------------

def test_1_damaged_and_forged_array_files_are_one_error(runs, tmp_path):
    crc = bytearray(npz_bytes(x=np.ones((4, 3))))
    crc[crc.find(b"\x00\x00\xf0?")] ^= 0xFF  # one byte of the data: the member's CRC no longer matches
    cases = {
        "object.npz": (npz_bytes(x=np.array([1, None], dtype=object)), "pickled"),
        "crc.npz": (bytes(crc), "CRC"),
        "tokenizer.npy": (npy_bytes(np.ones((2, 3))).replace(b"(2, 3)", b"(2, (3"), ".npy header"),
        "quote.npy": (npy_bytes(np.ones((2, 3))).replace(b"'descr'", b"'descr\"", 1), ".npy header"),
        "structured.npy": (npy_bytes(np.zeros(2, dtype=[("a", "<f4")])), "structured"),
        "complex.npz": (npz_bytes(x=np.ones((2, 3), np.complex64)), "expected numbers"),
        "truncated.npy": (npy_bytes(np.ones((4, 3)))[:-5], "declares"),
        "trailing.npy": (npy_bytes(np.ones((4, 3))) + b"\0", "declares"),
        "not-an-array.npy": (b"hello, world\n", "not an .npz archive or an .npy file"),
    }
    for name, (data, fragment) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(LayerwiseError, match=fragment) as info:
            read(runs["array"], tmp_path / name)
        assert name in str(info.value)
    one_error(cli("predict", runs["array"], tmp_path / "crc.npz"), "crc.npz", "CRC")
    one_error(cli("eval", runs["array"], "--data", tmp_path / "object.npz"), "object.npz", "pickled")


def test_1_a_zip_called_npy_is_read_as_the_npz_it_is(runs, tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    (tmp_path / "zip.npy").write_bytes(npz_bytes(x=x, y=x.sum(axis=1)))
    (part,) = read(runs["array"], tmp_path / "zip.npy")
    assert part.x.shape == (4, 3) and part.y.shape == (4, 1)
    result = cli("eval", runs["array"], "--data", tmp_path / "zip.npy")
    assert result.exit_code == 0, result.output


def test_1_gzipped_npy_is_read(runs, tmp_path):
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    (tmp_path / "x.NPY.GZ").write_bytes(gzip.compress(npy_bytes(x)))
    (part,) = read(runs["array"], tmp_path / "x.NPY.GZ")
    assert part.x.shape == (2, 3)


# --- 2. zero rows --------------------------------------------------------------------------------

def test_2_inputs_without_rows_say_no_rows_naming_the_file(runs, tmp_path):
    (tmp_path / "zero.npy").write_bytes(npy_bytes(np.zeros((0, 3))))
    (tmp_path / "empty.npz").write_bytes(npz_bytes())
    (tmp_path / "zero-x.npz").write_bytes(npz_bytes(x=np.zeros((0, 3)), y=np.zeros(0)))
    (tmp_path / "zero-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 0, 28, 28))
    (tmp_path / "header.csv").write_text("a,b,c,label\n")
    for run, name in (("array", "zero.npy"), ("array", "empty.npz"), ("array", "zero-x.npz"),
                      ("image", "zero-images-idx3-ubyte"), ("table", "header.csv")):
        with pytest.raises(LayerwiseError, match="no rows") as info:
            read(runs[run], tmp_path / name)
        assert name in str(info.value)
        one_error(cli("predict", runs[run], tmp_path / name), name, "no rows")
        one_error(cli("eval", runs[run], "--data", tmp_path / name), name, "no rows")
    with pytest.raises(LayerwiseError, match="no rows"):
        layerwise.load(runs["array"]).predict(np.zeros((0, 3)))


# --- 3. memory -----------------------------------------------------------------------------------

@pytest.fixture
def little_memory(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 << 20)


def test_3_forged_sizes_are_refused_from_the_header(runs, tmp_path, little_memory):
    sparse = tmp_path / "sparse.npy"  # 8 GiB declared and present (a sparse file: no disk used)
    header = forged_npy_header((357913941, 3))
    sparse.write_bytes(header)
    os.truncate(sparse, len(header) + 357913941 * 3 * 8)
    with pytest.raises(LayerwiseError, match="would need"):
        read(runs["array"], sparse)
    one_error(cli("predict", runs["array"], sparse), "sparse.npy", "would need")
    # an .npz member declaring 12 GiB, deflated from zeros: refused before one byte is inflated
    rows = (12 << 30) // 24
    with zipfile.ZipFile(tmp_path / "big.npz", "w", zipfile.ZIP_DEFLATED) as zf, zf.open("x.npy", "w", force_zip64=True) as f:
        f.write(forged_npy_header((rows, 3)))
        chunk = bytes(1 << 24)
        for _ in range(2):  # only 32 MiB written: the central directory then says so, and the header disagrees
            f.write(chunk)
    with pytest.raises(LayerwiseError, match="declares"):
        read(runs["array"], tmp_path / "big.npz")
    member = tmp_path / "honest.npz"  # a member whose header matches its 96 MiB, deflated to ~100 KiB
    np.savez_compressed(member, x=np.zeros(((96 << 20) // 24, 3)))
    assert member.stat().st_size < 1 << 20
    with pytest.raises(LayerwiseError, match="would need"):
        read(runs["array"], member)


def test_3_an_idx_gzip_bomb_is_refused_without_inflating_it(runs, tmp_path, little_memory):
    bomb = tmp_path / "bomb-images-idx3-ubyte.gz"  # declares 200,000 images: 157 MB, gzipped to ~150 KB
    bomb.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">III", 200_000, 28, 28) + bytes(200_000 * 784)))
    with pytest.raises(LayerwiseError, match="would need"):
        read(runs["image"], bomb)
    one_error(cli("eval", runs["image"], "--data", bomb), "bomb-images", "would need")
    liar = tmp_path / "liar-images-idx3-ubyte.gz"  # declares 2 images, then decompresses to 150 MB more
    liar.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 28, 28) + bytes(150 << 20)))
    with pytest.raises(LayerwiseError, match="trailing bytes"):
        read(runs["image"], liar)
    huge = tmp_path / "huge-images-idx3-ubyte"  # a raw header of 4e9 x 4000 x 4000
    huge.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 4_000_000_000, 4000, 4000) + bytes(100))
    with pytest.raises(LayerwiseError, match="truncated"):
        read(runs["image"], huge)


def test_3_a_long_csv_cell_does_not_widen_its_column(tmp_path):
    # As fixed-width NumPy text, one 100,000-character cell in 50,000 rows of 4 columns is 74 GiB.
    path = tmp_path / "long.csv"
    path.write_text("a,b,c,label\n" + "1,2," + "x" * 100_000 + ",p\n" + "1,2,x,p\n" * 50_000)
    table = read_csv(path, "input", text=True)
    assert len(table) == 50_001 and len(table["c"].text[0]) == 100_000
    assert table["c"].text.dtype == object and table["c"].text.nbytes < 1 << 20


# --- 4. the csv field limit ------------------------------------------------------------------------

def test_4_a_header_cell_over_the_csv_field_limit_is_one_error(runs, tmp_path):
    path = tmp_path / "field.csv"
    path.write_text("a" * 200_000 + ",b,c,label\n1,2,x,p\n1,3,y,q\n")
    one_error(cli("predict", runs["table"], path), "field.csv", "131,072 characters")
    one_error(cli("eval", runs["table"], "--data", path), "field.csv", "131,072 characters")
    cfg = {**TABLE, "data": {**TABLE["data"], "path": str(path), "target": "b"}}
    (tmp_path / "t.yaml").write_text(json.dumps(cfg))
    one_error(cli("train", tmp_path / "t.yaml", "-s", f"output={tmp_path / 'run'}"), "field.csv", "131,072")
    assert not (tmp_path / "run").exists()


# --- 6. FIFOs, devices, directories ------------------------------------------------------------------

def test_6_a_fifo_or_device_anywhere_a_file_is_read_is_refused_not_waited_on(runs, tmp_path):
    fifo = tmp_path / "fifo.npy"
    os.mkfifo(fifo)
    for what in (fifo, "/dev/zero"):
        one_error(cli("predict", runs["array"], what), str(what), "not a regular file")
        one_error(cli("eval", runs["array"], "--data", what), str(what), "not a regular file")
    os.mkfifo(tmp_path / "fifo.csv")
    one_error(cli("predict", runs["table"], tmp_path / "fifo.csv"), "fifo.csv", "a FIFO")
    one_error(cli("eval", fifo), "fifo.npy", "a FIFO")  # a checkpoint
    os.mkfifo(tmp_path / "fifo.yaml")
    one_error(cli("train", tmp_path / "fifo.yaml"), "fifo.yaml", "a FIFO")  # a config
    one_error(cli("config", tmp_path / "fifo.yaml"), "fifo.yaml", "a FIFO")


def test_6_a_fifo_in_a_run_directory_is_refused(runs, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(runs["array"], run)
    (run / "last.npz").unlink()
    os.mkfifo(run / "last.npz")
    one_error(cli("eval", run, "--checkpoint", "last"), "last.npz", "a FIFO")
    one_error(cli("predict", run, "--checkpoint", "last", tmp_path / "x.npy"), "last.npz")
    one_error(cli("train", "--resume", run), "last.npz", "a FIFO")
    (run / "best.npz").unlink()
    os.mkfifo(run / "best.npz")
    one_error(cli("summary", run), "best.npz", "a FIFO")
    one_error(cli("eval", run), "best.npz", "a FIFO")
    (run / "best.npz").unlink()
    shutil.copy(runs["array"] / "best.npz", run / "best.npz")
    (run / "last.npz").unlink()
    shutil.copy(runs["array"] / "last.npz", run / "last.npz")
    lock = run / ".layerwise.lock"
    lock.unlink(missing_ok=True)
    os.mkfifo(lock)
    one_error(cli("train", "--resume", run), ".layerwise.lock", "a FIFO")
    from layerwise.run.lock import holder

    assert holder(run) is None


# --- 7. names over 255 bytes -------------------------------------------------------------------------

def test_7_an_input_name_over_255_bytes_is_one_error(runs, tmp_path):
    name = tmp_path / ("x" * 300 + ".npy")
    one_error(cli("predict", runs["array"], name), "file name too long")
    with pytest.raises(LayerwiseError, match="file name too long"):
        layerwise.load(runs["array"]).predict(str(name))
    with pytest.raises(LayerwiseError, match="too long"):
        layerwise.load(runs["array"]).predict(str(tmp_path / ("d/" * 3000) / "x.npy"))


# --- 18. wrong messages -------------------------------------------------------------------------------

def test_18_file_kinds_by_content_and_case_insensitive_names(runs, tmp_path):
    (tmp_path / "X.CSV.GZ").write_bytes(gzip.compress(b"a,b,c,label\n1,2,x,p\n0,1,y,q\n"))
    (part,) = read(runs["table"], tmp_path / "X.CSV.GZ")
    assert part.x.shape[0] == 2 and part.y is not None
    (tmp_path / "UPPER.NPY").write_bytes(npy_bytes(np.ones((2, 3))))
    (part,) = read(runs["array"], tmp_path / "UPPER.NPY")
    assert part.x.shape == (2, 3)
    fifo = tmp_path / "input.csv"
    os.mkfifo(fifo)
    message = one_error(cli("predict", runs["table"], fifo), "input.csv")
    assert "no such file" not in message and "FIFO" in message


def test_18_a_utf8_config_reads_under_the_c_locale(tmp_path):
    (tmp_path / "u.yaml").write_text('name: "café"\ndata: {dataset: regression}\n'
                                     "model: {layers: [{type: linear, out_features: 1}]}\nloss: mse\n",
                                     encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "layerwise", "config", str(tmp_path / "u.yaml")],
                            capture_output=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "caf" in result.stdout.decode("utf-8", "replace")


def test_3_a_csv_gzip_bomb_is_refused_as_it_inflates(runs, tmp_path, little_memory):
    bomb = tmp_path / "bomb.csv.gz"  # 100 MB of "1,2,x,p" rows, gzipped to ~100 KB; 64 MiB of memory
    with gzip.open(bomb, "wb") as f:
        f.write(b"a,b,c,label\n")
        for _ in range(100):
            f.write(b"1,2,x,p\n" * 125_000)
    with pytest.raises(LayerwiseError, match="decompresses to more than"):
        read(runs["table"], bomb)


def test_3_a_png_declaring_81_million_pixels_is_refused_before_decoding(runs, tmp_path):
    pytest.importorskip("PIL")
    import zlib

    from PIL import Image

    f = io.BytesIO()
    Image.new("L", (1, 1)).save(f, format="PNG")
    png = bytearray(f.getvalue())
    at = png.find(b"IHDR")
    png[at + 4 : at + 12] = struct.pack(">II", 9_000, 9_000)  # the header's width and height
    png[at + 17 : at + 21] = struct.pack(">I", zlib.crc32(bytes(png[at : at + 17])))
    (tmp_path / "bomb.png").write_bytes(bytes(png))
    with pytest.raises(LayerwiseError, match="9,000 x 9,000 pixels"):
        read(runs["image"], tmp_path / "bomb.png")


def test_6_a_fifo_in_data_root_is_named_not_taken_for_missing(tmp_path):
    from layerwise.data.mnist import find_in
    from layerwise.errors import DataError

    os.mkfifo(tmp_path / "train-images-idx3-ubyte.gz")
    with pytest.raises(DataError, match="not a regular file"):
        find_in(tmp_path, "train-images-idx3-ubyte", "data.root")
