"""CSV and NPZ datasets: reading, typing, one-hot categories, seeded stratified splits, the encoding
predict reuses (`table_inputs`), config-relative paths, and every bad CSV through the CLI.

Every file is a tiny table the test writes into tmp_path.
"""

import gzip
import hashlib
import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from layerwise.cli import main
from layerwise.config.data import CsvData, NpzData
from layerwise.config.schema import load_config
from layerwise.nn.losses import task_of
from layerwise.data.csvfile import read_csv
from layerwise.data.load import load_dataset
from layerwise.data.dataset import split_rows
from layerwise.data.tabular import table_inputs
from layerwise.data.preprocess import target_units
from layerwise.errors import ConfigError, DataError

MLP = {"layers": [{"type": "linear", "out_features": 8}, {"type": "relu"}, {"type": "linear"}]}


def quiet(*_):
    pass


def table(n=60, seed=0):
    """Rows of a, b (numbers), color (text: red/green/blue), label (yes/no, 2:1), y = 2a - b + 1."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n).round(3), rng.normal(size=n).round(3)
    color = np.array(["red", "green", "blue"])[np.arange(n) % 3]
    label = np.where(np.arange(n) % 3 == 0, "no", "yes")
    lines = ["a,b,color,label,y"] + [f"{a[i]},{b[i]},{color[i]},{label[i]},{2 * a[i] - b[i] + 1:.3f}" for i in range(n)]
    return "\n".join(lines) + "\n"


def write(path, text):
    path.write_text(text)
    return path


def csv_data(path, **kw):
    return CsvData(path=str(path), **{"target": "label", **kw})


# --- reading and encoding --------------------------------------------------------------------


def test_classification_one_hot_and_standardized(tmp_path):
    data = load_dataset(csv_data(write(tmp_path / "t.csv", table())), seed=0, echo=quiet)
    prep = data.preprocessing
    assert data.task == "classification" and data.num_outputs == 2
    assert prep["kind"] == "table" and prep["class_names"] == ["no", "yes"]
    assert prep["features"] == ["a", "b", "color", "y"] and prep["numeric"] == ["a", "b", "y"]
    assert prep["categories"] == {"color": ["blue", "green", "red"]}
    assert prep["columns"] == ["a", "b", "color=blue", "color=green", "color=red", "y"]
    assert data.train.x.dtype == np.float32 and data.train.x.shape[1] == 6
    assert np.allclose(data.train.x.mean(axis=0), 0, atol=1e-5) and np.allclose(data.train.x.std(axis=0), 1, atol=1e-4)
    raw = load_dataset(csv_data(tmp_path / "t.csv", standardize=False), seed=0, echo=quiet)
    onehot = raw.train.x[:, 2:5]
    assert set(np.unique(onehot)) == {0.0, 1.0} and (onehot.sum(axis=1) == 1).all()
    assert raw.preprocessing["mean"] is None and data.sources == [str(tmp_path / "t.csv")]


def test_linear_copy_appends_the_number_columns_standardised_and_unclipped(tmp_path):
    text = table() + "40,0.1,red,yes,1\n"  # an outlier in a: clipped near 3, linear far out
    write(tmp_path / "t.csv", text)
    clipped = load_dataset(csv_data(tmp_path / "t.csv", robust_scale=True), seed=0, echo=quiet)
    lines = []
    both = load_dataset(csv_data(tmp_path / "t.csv", robust_scale=True, linear_copy="unbounded"), seed=0,
                         echo=lines.append)
    numbers = [0, 1, 5]  # a, b, y among a, b, color=blue, color=green, color=red, y
    x = both.train.x
    assert x.shape == (len(x), 9) and x.flags.c_contiguous and x.dtype == np.float32
    assert np.array_equal(x[:, :6], clipped.train.x)  # the clipped inputs are unchanged
    assert np.abs(x[:, :6][:, numbers]).max() < 3  # clipped into (-3, 3)
    raw = load_dataset(csv_data(tmp_path / "t.csv", standardize=False), seed=0, echo=quiet).train.x[:, numbers]
    assert np.allclose(x[:, 6:], (raw - raw.mean(axis=0)) / raw.std(axis=0), atol=1e-5)  # mean / std, no clip
    assert "3 number columns also unclipped (data.linear_copy: unbounded): 9 inputs" in lines[0]
    prep = json.loads(json.dumps(both.preprocessing))
    write(tmp_path / "new.csv", "a,b,color,label,y\n40,0.1,red,yes,1\n")
    new, _ = table_inputs(prep, tmp_path / "new.csv")
    assert new[0, 0] < 3 and new[0, 6] > 5  # the outlier: clipped near 3, far out in the linear copy
    assert np.allclose(new[0, 6:], (np.array([40, 0.1, 1]) - raw.mean(axis=0)) / raw.std(axis=0), atol=1e-5)
    assert np.array_equal(table_inputs(prep, tmp_path / "t.csv")[0][:, :6],
                          table_inputs(clipped.preprocessing, tmp_path / "t.csv")[0])
    lines = []
    plain = load_dataset(csv_data(tmp_path / "t.csv", linear_copy="unbounded"), seed=0, echo=lines.append)
    assert plain.preprocessing["linear"] is None and plain.train.x.shape[1] == 6  # nothing clipped, no copy
    assert "data.linear_copy: unbounded makes no copies with data.robust_scale off (nothing is clipped)" in lines[1]


def test_clamped_linear_copy_holds_numbers_within_the_training_range(tmp_path):
    write(tmp_path / "t.csv", table())
    data = load_dataset(csv_data(tmp_path / "t.csv", robust_scale=True, linear_copy="clamped"), seed=0, echo=quiet)
    prep = json.loads(json.dumps(data.preprocessing))
    lo, hi = prep["linear"]["low"][0], prep["linear"]["high"][0]  # column a's training range
    assert lo < 0 < hi
    write(tmp_path / "new.csv", f"a,b,color,label,y\n{hi},0,red,yes,1\n1000,0,red,yes,1\n{lo},0,red,yes,1\n-1000,0,red,yes,1\n")
    x, _ = table_inputs(prep, tmp_path / "new.csv")
    assert np.array_equal(x[1], x[0]) and np.array_equal(x[3], x[2])  # past the range: as at its edge, both inputs
    assert x[0, 6] > x[2, 6] and x[0, 0] > x[2, 0]
    unbounded = load_dataset(csv_data(tmp_path / "t.csv", robust_scale=True, linear_copy="unbounded"), seed=0, echo=quiet)
    assert np.array_equal(unbounded.train.x, data.train.x)  # the training rows are in their own range
    lines = []  # eval with another linear_copy given: the stored copies apply, and the line names them
    again = load_dataset(csv_data(tmp_path / "t.csv", robust_scale=True, linear_copy="unbounded"), seed=0,
                         echo=lines.append, preprocessing=prep)
    assert "(data.linear_copy: clamped)" in lines[0] and np.array_equal(again.test.x, data.test.x)


OK3 = {"index": [0, 1, 5], "mean": [0.0] * 3, "std": [1.0] * 3, "low": None, "high": None}


@pytest.mark.parametrize("linear", [dict(OK3, index=[0, 1, 7]), dict(OK3, std=[1.0, 0, 1.0]), dict(OK3, mean=None, std=None),
                                    {"index": "0"}, [0], dict(OK3, mean=None), dict(OK3, clip=None), dict(OK3, low=[0.0] * 3),
                                    dict(OK3, low=[1.0] * 3, high=[0.0] * 3), dict(OK3, low=[0.0] * 2, high=[1.0] * 2),
                                    None])  # None: the copies' entry removed, the model still 3 inputs wider
def test_a_forged_linear_copy_entry_is_refused(tmp_path, linear):
    from layerwise.data.preprocess import check_stored
    from layerwise.errors import CheckpointError

    data = load_dataset(csv_data(write(tmp_path / "t.csv", table()), robust_scale=True, linear_copy="unbounded"),
                        seed=0, echo=quiet)
    sizes = {"task": "classification", "num_features": 9, "num_outputs": 2}
    check_stored("best.npz", sizes, data.preprocessing)  # the real one passes
    with pytest.raises(CheckpointError, match="malformed"):
        check_stored("best.npz", sizes, dict(data.preprocessing, linear=linear))


def test_splits_are_seeded_and_stratified(tmp_path):
    path = write(tmp_path / "t.csv", table(n=90))
    first = load_dataset(csv_data(path), seed=[3, 0], echo=quiet)
    again = load_dataset(csv_data(path), seed=[3, 0], echo=quiet)
    other = load_dataset(csv_data(path), seed=[4, 0], echo=quiet)
    assert np.array_equal(first.test.x, again.test.x) and not np.array_equal(first.test.x, other.test.x)
    assert (len(first.train), len(first.val), len(first.test)) == (63, 9, 18)
    for split in (first.train, first.val, first.test):  # "no" is a third of every split
        assert np.sum(split.y == 0) * 3 == len(split)
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    train, val, test = split_rows(100, 0.1, 0.2, labels, 0, "x")
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(100))
    assert np.bincount(labels[test]).tolist() == [10, 6, 4] and np.bincount(labels[val]).tolist() == [5, 3, 2]


def test_regression_targets_and_gz(tmp_path):
    with gzip.open(tmp_path / "t.csv.gz", "wt") as f:
        f.write(table())
    data = load_dataset(CsvData(path=str(tmp_path / "t.csv.gz"), target=["y", "a"], features=["b", "color"]),
                        seed=0, echo=quiet, task="regression")
    assert data.task == "regression" and data.num_outputs == 2 and data.train.y.shape[1] == 2
    assert data.preprocessing["target_names"] == ["y", "a"] and data.preprocessing["class_names"] is None
    huber = load_dataset(CsvData(path=str(tmp_path / "t.csv.gz"), target="y"), seed=0, echo=quiet,
                         task=task_of({"type": "huber", "delta": 2.0}))  # a loss given as a mapping: its type sets the task
    assert huber.task == "regression"
    scaled = load_dataset(CsvData(path=str(tmp_path / "t.csv.gz"), target="y", standardize_target=True),
                          seed=0, echo=quiet, task="regression")
    assert abs(scaled.train.y.mean()) < 1e-5 and abs(scaled.train.y.std() - 1) < 1e-4
    back = target_units(scaled.preprocessing, scaled.test.y)
    plain = load_dataset(CsvData(path=str(tmp_path / "t.csv.gz"), target="y"), seed=0, echo=quiet, task="regression")
    assert np.allclose(back, plain.test.y, atol=1e-4)


def test_integer_labels_sort_numerically_and_missing_drop(tmp_path):
    rows = ["x,label"] + [f"{i},{[2, 10, 9][i % 3]}" for i in range(30)] + ["NA,2", "5,"]
    messages = []
    data = load_dataset(csv_data(write(tmp_path / "t.csv", "\n".join(rows) + "\n"), missing="drop"),
                        seed=0, echo=messages.append)
    assert data.preprocessing["class_names"] == ["2", "9", "10"]
    assert any("dropped 2 of 32 rows" in m for m in messages)


def test_table_inputs_reencodes_columns_in_any_order(tmp_path):
    data = load_dataset(csv_data(write(tmp_path / "t.csv", table()), standardize=False), seed=0, echo=quiet)
    prep = json.loads(json.dumps(data.preprocessing))  # what a checkpoint gives back
    write(tmp_path / "new.csv", "color,y,extra,b,a\nred,1.5,x,2,3\nblue,0,y,-1,0.5\n")
    x, y = table_inputs(prep, tmp_path / "new.csv")
    assert y is None
    assert x.tolist() == [[3, 2, 0, 0, 1, 1.5], [0.5, -1, 1, 0, 0, 0]]
    write(tmp_path / "labelled.csv", "a,b,color,y,label\n1,2,green,3,yes\n1,2,red,3,no\n")
    x, y = table_inputs(prep, tmp_path / "labelled.csv")
    assert y.tolist() == [1, 0] and y.dtype == np.int64
    write(tmp_path / "unseen.csv", "a,b,color,y\n1,2,purple,3\n")
    notes = []  # a category the training rows never had: all zeros (handle_unknown="ignore"), counted
    x, _ = table_inputs(prep, tmp_path / "unseen.csv", notes=notes)
    assert x.tolist() == [[1, 2, 0, 0, 0, 3]]
    assert notes == ["1 input rows hold a category of 'color' unseen in the training rows: encoded as all zeros"]
    write(tmp_path / "short.csv", "a,color,y\n1,red,3\n")
    with pytest.raises(DataError, match="no column 'b'"):
        table_inputs(prep, tmp_path / "short.csv")


def test_quoted_cells_blank_lines_and_bom(tmp_path):
    text = '\ufeffname,x,label\n"Smith, J",1,a\n\n"Doe, K",2,b\n' + "".join(f"p{i},{i},{'ab'[i % 2]}\n" for i in range(20))
    data = load_dataset(csv_data(write(tmp_path / "q.csv", text), features=["x"]), seed=0, echo=quiet)
    assert read_csv(tmp_path / "q.csv").names == ["name", "x", "label"]  # the byte-order mark is not in the first name
    assert data.preprocessing["class_names"] == ["a", "b"] and len(data.train) + len(data.val) + len(data.test) == 22
    bad = text.replace("p7,7,", "p7,seven,")
    with pytest.raises(DataError, match=r"q.csv, line 12, column 'x': 'seven' is not a number"):
        load_dataset(csv_data(write(tmp_path / "q.csv", bad), features=["x"]), seed=0, echo=quiet)


def test_npz_dataset(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2, 3)).astype(np.float32)
    y = np.arange(50) % 2
    np.savez(tmp_path / "a.npz", x=x, y=y, x_test=x[:7], y_test=y[:7])
    data = load_dataset(NpzData(path=str(tmp_path / "a.npz")), seed=0, echo=quiet)
    assert data.train.x.shape[1] == 6 and len(data.test) == 7 and len(data.train) + len(data.val) == 50
    assert data.preprocessing["kind"] == "array" and data.preprocessing["class_names"] == ["0", "1"]
    reg = load_dataset(NpzData(path=str(tmp_path / "a.npz"), standardize=False), seed=0, echo=quiet, task="regression")
    assert reg.task == "regression" and reg.train.y.shape == (len(reg.train), 1)
    np.savez(tmp_path / "obj.npz", x=np.array([object()] * 3, dtype=object), y=np.arange(3))
    with pytest.raises(DataError, match="pickled"):
        load_dataset(NpzData(path=str(tmp_path / "obj.npz")), seed=0, echo=quiet)


# --- config paths ----------------------------------------------------------------------------


def test_paths_in_a_config_are_relative_to_its_directory(tmp_path, monkeypatch):
    (tmp_path / "exp" / "data").mkdir(parents=True)
    write(tmp_path / "exp" / "data" / "t.csv", table())
    write(tmp_path / "exp" / "c.yaml", yaml.safe_dump({
        "data": {"dataset": "csv", "path": "data/t.csv", "target": "label"}, "model": MLP,
        "train": {"epochs": 1}, "output": "out"}))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg = load_config("../exp/c.yaml")
    assert cfg.data.path == str(tmp_path / "exp" / "data" / "t.csv")
    assert load_config("../exp/c.yaml", ["data.path=mine.csv"]).data.path == str(tmp_path / "elsewhere" / "mine.csv")
    write(tmp_path / "exp" / "more.yaml", "data: {dataset: csv, path: /abs/t.csv, target: label, test_path: data/test.csv}\n")
    more = load_config("../exp/more.yaml")
    assert (more.data.path, more.data.test_path) == ("/abs/t.csv", str(tmp_path / "exp" / "data" / "test.csv"))
    write(tmp_path / "exp" / "m.yaml", "data: {dataset: mnist, root: digits}\n")
    assert load_config("../exp/m.yaml").data.root == str(tmp_path / "exp" / "digits")
    assert load_config("../exp/m.yaml", ["data.root=here"]).data.root == str(tmp_path / "elsewhere" / "here")
    result = CliRunner().invoke(main, ["train", "../exp/c.yaml"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "elsewhere" / "out" / "best.npz").is_file()  # output stays relative to the cwd
    saved = yaml.safe_load((tmp_path / "elsewhere" / "out" / "config.yaml").read_text())
    assert saved["data"]["path"] == str(tmp_path / "exp" / "data" / "t.csv")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["eval", "elsewhere/out"])
    assert result.exit_code == 0 and "test loss" in result.output and "acc" in result.output, result.output


def test_shipped_tabular_configs_train(tmp_path, monkeypatch):
    write(tmp_path / "t.csv", table())
    monkeypatch.chdir(tmp_path)
    from conftest import REPO

    for config, target in (("tabular_classification", "label"), ("tabular_regression", "y")):
        result = CliRunner().invoke(main, ["train", str(REPO / "configs" / f"{config}.yaml"), "-s", "data.path=t.csv",
                                           "-s", f"data.target={target}", "-s", "train.epochs=2"])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "runs" / f"{config}-t" / "test.json").is_file()
        # Every view of a table run reads its data with the run's loss (mse: numeric targets).
        run = str(tmp_path / "runs" / f"{config}-t")
        for args in (["summary", run], ["trace", run], ["predict", run, "t.csv", "--json"], ["eval", run, "--json"]):
            viewed = CliRunner().invoke(main, args)
            assert viewed.exit_code == 0, (args, viewed.output)


# --- bad CSVs through the CLI: exit code, one error line, no traceback, nothing written ------------


def snapshot(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def lines(*rows):
    return "\n".join(rows) + "\n"


GOOD = [f"{i},{i % 4},{'ab'[i % 2]}" for i in range(20)]
CSV_ERRORS = [
    # id, file text, overrides, exit code, fragments of the error line
    ("missing-cell", lines("x,z,label", *GOOD[:5], "7,,a", *GOOD[5:]), [], 1,
     ["t.csv, line 7, column 'z'", "missing value", "data.missing: impute"]),
    ("unparsable-cell", lines("x,z,label", *GOOD[:3], "3,abc,b", *GOOD[3:]), [], 1,
     ["t.csv, line 5, column 'z'", "'abc' is not a number"]),
    ("unknown-target", lines("x,z,label", *GOOD), ["data.target=labl"], 2,
     ["data.target", "no column 'labl'", "did you mean 'label'"]),
    ("unknown-feature", lines("x,z,label", *GOOD), ["data.features=[x, w]"], 2, ["data.features", "no column 'w'"]),
    ("one-class", lines("x,label", *[f"{i},a" for i in range(20)]), [], 1, ["only one class", "'a'"]),
    ("empty-file", "", [], 1, ["t.csv is empty", "header row"]),
    ("header-only", "x,label\n", [], 1, ["header row but no data rows"]),
    ("duplicate-header", lines("x,x,label", *GOOD), [], 1, ["line 1", "column 'x' twice"]),
    ("ragged-row", lines("x,z,label", *GOOD[:2], "1,2", *GOOD[2:]), [], 1, ["line 4", "2 cells", "3 columns"]),
    ("text-regression-target", lines("x,z,label", *GOOD), ["loss=mse"], 1,
     ["column 'label'", "not a number", "softmax_cross_entropy"]),
    ("fractional-labels", lines("x,label", *[f"{i},{i / 7:.3f}" for i in range(20)]), [], 1,
     ["line 3, column 'label'", "0.143 is not a class label", "loss: mse"]),
    ("no-path", None, ["data.path=null"], 2, ["data.path", "required"]),
    ("no-such-file", None, ["data.path=nope.csv"], 1, ["data.path", "nope.csv", "does not exist"]),
    ("too-few-rows", lines("x,label", "1,a", "2,b", "3,a", "4,b"), [], 1, ["leave no validation rows"]),
    ("not-utf8", None, ["data.path=bin.csv"], 1, ["bin.csv", "neither UTF-8 nor Windows-1252 text"]),
    # gzip is recognised by its bytes, not the name: a plain CSV called .gz is read as the text it is
    ("not-gzip", None, ["data.path=bin.csv.gz"], 1, ["bin.csv.gz", "leaves no validation rows"]),
    ("bad-gzip", None, ["data.path=bad.csv.gz"], 1, ["bad.csv.gz", "cannot read"]),
    ("name-too-long", None, ["data.path=" + "x" * 300 + ".csv"], 1, ["data.path", "cannot open"]),
]


@pytest.mark.parametrize("text,overrides,code,fragments", [c[1:] for c in CSV_ERRORS], ids=[c[0] for c in CSV_ERRORS])
def test_bad_csv(tmp_path, monkeypatch, text, overrides, code, fragments):
    monkeypatch.chdir(tmp_path)
    if text is not None:
        write(tmp_path / "t.csv", text)
    write(tmp_path / "test.csv", "x,c,label\n1,w,a\n")
    (tmp_path / "bin.csv").write_bytes(b"x,label\n\xff\x00\xfe,1\n")  # a NUL byte: not text
    (tmp_path / "bin.csv.gz").write_bytes(b"x,label\n1,2\n")
    (tmp_path / "bad.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    write(tmp_path / "exp.yaml", yaml.safe_dump({
        "data": {"dataset": "csv", "path": "t.csv", "target": "label"}, "model": MLP, "train": {"epochs": 1}}))
    before = snapshot(tmp_path)
    args = ["train", "exp.yaml"] + [a for o in overrides for a in ("-s", o)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"
    assert snapshot(tmp_path) == before


def npz_file(path, **arrays):
    np.savez(path, **arrays)


X = np.arange(40, dtype=np.float32).reshape(20, 2)
NPZ_ERRORS = [
    ("no-y", lambda p: npz_file(p, x=X), [], ["a.npz has no array 'y'", "holds x"]),
    ("rows-differ", lambda p: npz_file(p, x=X, y=np.arange(19)), [], ["y has shape (19,)", "20 rows"]),
    ("pickled", lambda p: npz_file(p, x=np.array([object()] * 20, dtype=object), y=np.arange(20)), [], ["pickled"]),
    ("not-an-npz", lambda p: p.write_text("x,y\n1,2\n"), [], ["not an .npz archive"]),
    ("text-x", lambda p: npz_file(p, x=np.array([["a", "b"]] * 20), y=np.arange(20)), [], ["x must be a numeric array"]),
    ("nan-x", lambda p: npz_file(p, x=np.full((20, 2), np.nan), y=np.arange(20)), [], ["NaN or infinite"]),
    ("float-labels", lambda p: npz_file(p, x=X, y=np.linspace(0, 1, 20)), [], ["one class label per row", "loss: mse"]),
    ("one-class", lambda p: npz_file(p, x=X, y=np.zeros(20, int)), [], ["only one class"]),
    ("x-test-alone", lambda p: npz_file(p, x=X, y=np.arange(20) % 2, x_test=X), [], ["only one of x_test and y_test"]),
    ("unknown-test-class", lambda p: npz_file(p, x=X, y=np.arange(20) % 2, x_test=X[:2], y_test=np.array([0, 5])), [],
     ["y_test holds class '5'"]),
]


@pytest.mark.parametrize("make,overrides,fragments", [c[1:] for c in NPZ_ERRORS], ids=[c[0] for c in NPZ_ERRORS])
def test_bad_npz(tmp_path, monkeypatch, make, overrides, fragments):
    monkeypatch.chdir(tmp_path)
    make(tmp_path / "a.npz")
    write(tmp_path / "exp.yaml", yaml.safe_dump({"data": {"dataset": "npz", "path": "a.npz"}, "model": MLP, "train": {"epochs": 1}}))
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, ["train", "exp.yaml"] + [a for o in overrides for a in ("-s", o)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"
    assert snapshot(tmp_path) == before


def test_stored_preprocessing_scores_a_test_file_alone(tmp_path):
    write(tmp_path / "t.csv", table())
    write(tmp_path / "test.csv", table(n=12, seed=1))
    cfg = csv_data(tmp_path / "t.csv", test_path=str(tmp_path / "test.csv"))
    trained = load_dataset(cfg, seed=0, echo=quiet)
    prep = json.loads(json.dumps(trained.preprocessing))
    (tmp_path / "t.csv").unlink()  # the training file is not needed to score the test file
    alone = load_dataset(cfg, seed=0, echo=quiet, splits=("test",), preprocessing=prep)
    assert alone.train is None and alone.sources == [str(tmp_path / "test.csv")]
    assert np.array_equal(alone.test.x, trained.test.x) and np.array_equal(alone.test.y, trained.test.y)
    write(tmp_path / "t.csv", table(seed=5))  # other training rows, the stored encoding still applies
    again = load_dataset(cfg, seed=0, echo=quiet, preprocessing=prep)
    assert again.preprocessing is prep and np.array_equal(again.test.x, trained.test.x)


def test_table_inputs_gives_regression_targets_in_their_units(tmp_path):
    write(tmp_path / "t.csv", table())
    data = load_dataset(CsvData(path=str(tmp_path / "t.csv"), target="y", standardize_target=True), seed=0,
                        echo=quiet, task="regression")
    write(tmp_path / "new.csv", "a,b,color,label,y\n1,2,red,yes,7.5\n")
    x, y = table_inputs(data.preprocessing, tmp_path / "new.csv")
    assert y.tolist() == [[7.5]] and x.shape == (1, 7)  # a, b, color (3 categories), label (2)
    cfg = CsvData(path=str(tmp_path / "t.csv"), target="y", standardize_target=True, test_path=str(tmp_path / "new.csv"))
    alone = load_dataset(cfg, seed=0, echo=quiet, task="regression", splits=("test",), preprocessing=data.preprocessing)
    assert np.allclose(target_units(data.preprocessing, alone.test.y), [[7.5]])  # scaled as the model learned


def test_a_one_hot_too_big_for_memory_is_refused(tmp_path, monkeypatch):
    import layerwise.util.memory

    monkeypatch.setattr(layerwise.util.memory, "available_bytes", lambda: 1000)
    with pytest.raises(ConfigError) as info:
        load_dataset(csv_data(write(tmp_path / "t.csv", table())), seed=0, echo=quiet)
    message = str(info.value)
    assert "60 rows one-hot encoded into 6 inputs (column 'color' has 3 categories)" in message
    assert "data.exclude" in message


def test_a_note_about_test_path_rows_names_that_file(tmp_path):
    write(tmp_path / "t.csv", table())
    write(tmp_path / "held.csv", "a,b,color,label,y\n1,,red,yes,1\n2,3,red,no,2\n")
    lines = []
    load_dataset(csv_data(tmp_path / "t.csv", test_path=str(tmp_path / "held.csv"), missing="impute"), seed=0,
                 echo=lambda *a, **k: lines.append(a[0]))
    assert any("1 missing cell of the test rows of held.csv imputed" in line for line in lines), lines
