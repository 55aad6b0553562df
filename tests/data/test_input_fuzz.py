"""Fuzz: random mutations of valid small input files through predict's and eval's read path.

Each input is a valid tiny file of one kind (.npy, .npz with x and y, .npy.gz, IDX raw and gzipped,
CSV, PNG) with a few random edits to its bytes: flips, deletions, insertions, truncations,
duplicated spans, and header edits (a dimension or a length made huge, a dtype changed, a quote or
bracket dropped). It is read for one of three tiny trained models (images, arrays, a table) by
`read_inputs`, the one function predict, eval --data and layerwise.load(...).predict(path) read
files with; every outcome must be success or a LayerwiseError, never another exception. The
memory the readers see is 64 MiB, so a huge declared size is refused from its header, not
allocated. A few cases also go through the CLI (`predict`, `eval --data`), which must exit with one error line.

Run it longer by hand: `python tests/data/test_input_fuzz.py 5000 [seed]` prints what it found.
"""

import collections
import gzip
import io
import json
import random
import re
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from layerwise.errors import LayerwiseError  # noqa: E402
from layerwise.util import memory  # noqa: E402

SEED = 17
INPUTS = 400
CLI_INPUTS = 16
MEMORY = 64 << 20


def _npy(array):
    f = io.BytesIO()
    np.save(f, array)
    return f.getvalue()


def _npz(**arrays):
    f = io.BytesIO()
    np.savez(f, **arrays)
    return f.getvalue()


def _idx(array):
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _png(image):
    from PIL import Image

    f = io.BytesIO()
    Image.fromarray(image).save(f, format="PNG")
    return f.getvalue()


def bases():
    """(model, file name, valid bytes) for every kind of input."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 28, 28)).astype(np.uint8)
    x = rng.normal(size=(4, 3))
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    result = [
        ("array", "x.npy", _npy(x)),
        ("array", "x.npy", _npy(x.astype(np.float32))),
        ("array", "xy.npz", _npz(x=x, y=x.sum(axis=1))),
        ("array", "x.npy.gz", gzip.compress(_npy(x))),
        ("image", "x.npy", _npy(images)),
        ("image", "xy.npz", _npz(x=images, y=np.array([1, 2, 3]))),
        ("image", "t-images-idx3-ubyte", _idx(images)),
        ("image", "t-images-idx3-ubyte.gz", gzip.compress(_idx(images))),
        ("table", "t.csv", b"a,b,c,label\n0.5,1,x,p\n1.5,-1,y,q\n2,0,x,p\n"),
        ("table", "t.csv.gz", gzip.compress(b"a,b,c,label\n0.5,1,x,p\n1.5,-1,y,q\n")),
        ("table", "t.csv", b'a;b;c\n"1";2;x\n3;4;"y"\n'),
    ]
    try:
        result.append(("image", "digit.png", _png(digit)))
    except ImportError:
        pass
    return result


HUGE = [b"0", b"4294967295", b"99999999999999999999", b"-1", b"1e9", b"(", b")", b"'", b'"', b"None"]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random edit of a file's bytes."""
    kind = rng.randrange(9)
    pos = rng.randrange(len(data) + 1)
    if kind == 0:  # flip a byte to anything
        return data[:pos] + bytes([rng.randrange(256)]) + data[pos + 1:]
    if kind == 1:  # delete a span
        return data[:pos] + data[pos + rng.randrange(1, 64):]
    if kind == 2:  # truncate
        return data[:pos]
    if kind == 3:  # insert random bytes
        return data[:pos] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16))) + data[pos:]
    if kind == 4:  # duplicate a span
        end = min(len(data), pos + rng.randrange(1, 200))
        return data[:end] + data[pos:end] + data[end:]
    if kind == 5:  # an .npy header's numbers made huge or broken
        numbers = [m.span() for m in re.finditer(rb"\d+", data[:300])]
        if numbers:
            a, b = rng.choice(numbers)
            return data[:a] + rng.choice(HUGE) + data[b:]
        return data + bytes(rng.randrange(256) for _ in range(8))
    if kind == 6:  # an .npy dtype changed
        return re.sub(rb"'[<>|][a-zA-Z]\d*'", rng.choice([b"'|O'", b"'<c16'", b"'|V8'", b"'<U3'", b"'<M8[s]'",
                                                         b"'<f99'", b"'x'", b"[('a', '<f8')]"]), data, count=1)
    if kind == 7:  # an IDX or zip length field made huge
        if len(data) >= 8:
            at = rng.randrange(0, min(len(data), 64) - 3)
            return data[:at] + struct.pack(">I", rng.choice([0, 1, 2**31, 2**32 - 1])) + data[at + 4:]
        return data
    # a CSV cell made long or a line made ragged
    return data[:pos] + rng.choice([b"x" * 140_000, b",,,", b"\n", b'"', b"\x00", b"\xff\xfe"]) + data[pos:]


def cases(n, seed):
    rng = random.Random(seed)
    pool = bases()
    for i in range(n):
        model, name, data = rng.choice(pool)
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            data = mutate(data, rng)
        yield i, model, name, data


def train_runs(tmp):
    """Three tiny trained runs: images (IDX), arrays (3 features), a table (CSV)."""
    from click.testing import CliRunner

    from layerwise.cli import main
    from tinyidx import write_tiny

    write_tiny(tmp / "data")
    rows = ["a,b,c,label"] + [f"{i % 7 / 3:.3f},{i % 5 - 2},{'xy'[i % 2]},{'pq'[i % 3 == 0]}" for i in range(60)]
    (tmp / "t.csv").write_text("\n".join(rows) + "\n")
    base = {"optimizer": {"lr": 0.05}, "train": {"epochs": 1, "batch_size": 16}}
    configs = {
        "image": {**base, "data": {"dataset": "mnist", "root": str(tmp / "data"), "val_size": 10},
                  "model": {"layers": [{"type": "linear", "out_features": 10}]}},
        "array": {**base, "data": {"dataset": "regression", "n_samples": 60, "weights": [3.0, 4.0, 2.0],
                                   "val_size": 10, "test_size": 10},
                  "model": {"layers": [{"type": "linear", "out_features": 1}]}, "loss": "mse"},
        "table": {**base, "data": {"dataset": "csv", "path": str(tmp / "t.csv"), "target": "label"},
                  "model": {"layers": [{"type": "linear", "out_features": 2}]}, "loss": "softmax_cross_entropy"},
    }
    for name, cfg in configs.items():
        (tmp / f"{name}.yaml").write_text(json.dumps(cfg))
        result = CliRunner().invoke(main, ["train", str(tmp / f"{name}.yaml"), "-s", f"output={tmp / name}"])
        assert result.exit_code == 0, result.output
    return {name: tmp / name for name in configs}


def run_fuzz(runs, work, n=INPUTS, seed=SEED):
    """Counter of outcomes ('ok', 'LayerwiseError', other exception names) and the first bad cases."""
    import layerwise
    from layerwise.data.inputs import read_inputs

    models = {name: layerwise.load(run) for name, run in runs.items()}
    outcomes, bad = collections.Counter(), []
    for i, model, name, data in cases(n, seed):
        path = work / f"{i}-{name}"
        path.write_bytes(data)
        try:
            read_inputs([path], models[model].preprocessing, models[model].task)
            outcomes["ok"] += 1
        except LayerwiseError as e:
            assert "\n" not in str(e).strip(), str(e)
            outcomes["LayerwiseError"] += 1
        except Exception as e:  # noqa: BLE001 - what the fuzz is looking for
            outcomes[type(e).__name__] += 1
            bad.append((i, model, name, f"{type(e).__name__}: {str(e)[:200]}"))
        path.unlink()
    return outcomes, bad


def test_input_fuzz_only_layerwise_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: MEMORY)
    runs = train_runs(tmp_path)
    work = tmp_path / "inputs"
    work.mkdir()
    outcomes, bad = run_fuzz(runs, work)
    assert not bad, bad[:5]
    assert outcomes["ok"] > 20 and outcomes["LayerwiseError"] > 100, outcomes  # both paths exercised


def test_input_fuzz_through_the_cli(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from layerwise.cli import main

    monkeypatch.setattr(memory, "available_bytes", lambda: MEMORY)
    runs = train_runs(tmp_path)
    for i, model, name, data in cases(CLI_INPUTS, SEED + 1):
        path = tmp_path / f"{i}-{name}"
        path.write_bytes(data)
        command = ["predict", str(runs[model]), str(path), "--no-show"] if i % 2 else \
            ["eval", str(runs[model]), "--data", str(path)]
        result = CliRunner().invoke(main, command)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        if result.exit_code != 0:
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


if __name__ == "__main__":
    memory.available_bytes = lambda: MEMORY
    count = int(sys.argv[1]) if len(sys.argv) > 1 else INPUTS
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else SEED
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        found_runs = train_runs(tmp)
        (tmp / "inputs").mkdir()
        found, problems = run_fuzz(found_runs, tmp / "inputs", count, seed)
    print(dict(found))
    for problem in problems[:40]:
        print(*problem)
