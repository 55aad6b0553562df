"""CSV files as people have them: other delimiters, a pandas index column, excluded columns, dates,
times of day, ID columns, missing cells imputed, unseen and rare categories; each decision in one note
line, stored in the checkpoint and applied again by eval and predict.

Every file is a tiny table the test writes into tmp_path.
"""

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from layerwise.cli import main
from layerwise.config.data import CsvData
from layerwise.data.csvfile import read_csv
from layerwise.data.load import load_dataset
from layerwise.data.tabular import table_inputs
from layerwise.errors import ConfigError, DataError

MLP = {"layers": [{"type": "linear", "out_features": 8}, {"type": "relu"}, {"type": "linear"}]}


def rows(n=40, seed=0):
    """(a, b, color, label) columns: label is 'yes' when a + b > 0."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n).round(3), rng.normal(size=n).round(3)
    color = np.array(["red", "green", "blue"])[np.arange(n) % 3]
    label = np.where(a + b > 0, "yes", "no")
    return a, b, color, label


def write_table(path, header, lines, sep=","):
    path.write_text(sep.join(header) + "\n" + "".join(sep.join(map(str, r)) + "\n" for r in lines))
    return path


def load(path, notes, **kw):
    return load_dataset(CsvData(path=str(path), **{"target": "label", **kw}), seed=0, echo=notes.append)


@pytest.mark.parametrize("sep,name", [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_delimiter_is_sniffed_and_can_be_forced(tmp_path, sep, name):
    a, b, color, label = rows()
    path = write_table(tmp_path / "t.csv", ["a", "b", "color", "label"], zip(a, b, color, label), sep)
    notes = []
    data = load(path, notes)
    assert data.preprocessing["columns"] == ["a", "b", "color=blue", "color=green", "color=red"]
    assert f"note: t.csv: {name}-separated" in notes
    assert read_csv(path, delimiter=sep).names == ["a", "b", "color", "label"]
    assert read_csv(path, delimiter=",").names == [sep.join(["a", "b", "color", "label"])]  # forced: one column


def test_pandas_index_column_is_left_out(tmp_path):
    a, b, color, label = rows()
    path = write_table(tmp_path / "t.csv", ["", "a", "b", "color", "label"],
                       [(i, *r) for i, r in enumerate(zip(a, b, color, label))])
    notes = []
    data = load(path, notes)
    assert data.preprocessing["inputs"] == ["a", "b", "color"]
    assert any("column 1 ('') is a row index" in n for n in notes)
    # R's write.csv(): an unnamed first column of distinct row names
    path = write_table(tmp_path / "r.csv", ["", "a", "b", "color", "label"],
                       [(f"row {i}", *r) for i, r in enumerate(zip(a, b, color, label))])
    notes = []
    assert load(path, notes).preprocessing["inputs"] == ["a", "b", "color"]
    assert any("column 1 ('') is a row index (distinct row names)" in n for n in notes)
    # an unnamed first column that is not an index stays an error
    write_table(tmp_path / "u.csv", ["", "a", "label"], [(1.5, 1, "x"), (2.5, 2, "y")])
    with pytest.raises(DataError, match="column 1 of the header has no name"):
        read_csv(tmp_path / "u.csv")
    write_table(tmp_path / "v.csv", ["", "a", "label"], [("x", 1, "x"), ("x", 2, "y")])  # repeated texts
    with pytest.raises(DataError, match="column 1 of the header has no name"):
        read_csv(tmp_path / "v.csv")


def test_exclude_leaves_columns_out_and_names_unknown_ones(tmp_path):
    a, b, color, label = rows()
    path = write_table(tmp_path / "t.csv", ["a", "b", "color", "label"], zip(a, b, color, label))
    data = load(path, [], exclude=["b", "color"])
    assert data.preprocessing["columns"] == ["a"] and data.train.x.shape[1] == 1
    with pytest.raises(ConfigError, match="data.exclude: no column 'colour'.*did you mean 'color'"):
        load(path, [], exclude=["colour"])


def test_dates_become_year_day_of_year_weekday_or_are_dropped(tmp_path):
    a, b, color, label = rows()
    days = [f"2021-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(40)]
    days[5] = "2024-02-29"  # a leap day: Thursday, day 60
    path = write_table(tmp_path / "t.csv", ["when", "a", "label"], zip(days, a, label))
    notes = []
    data = load(path, notes, standardize=False, test_fraction=0.5)
    prep = data.preprocessing
    assert prep["derived"] == {"when": "date"}
    assert prep["columns"] == ["when year", "when day of year", "when weekday", "a"]
    assert any("'when' holds dates: used as year, day of year, weekday" in n for n in notes)
    x, _ = table_inputs(json.loads(json.dumps(prep)), write_table(tmp_path / "n.csv", ["a", "when"], [(0.5, "2024-02-29")]))
    assert x.tolist() == [[2024, 60, 3, 0.5]]
    dropped = load(path, notes, dates="drop")
    assert dropped.preprocessing["columns"] == ["a"]
    assert any("'when' holds dates: left out (data.dates: drop)" in n for n in notes)


def test_datetimes_and_times_of_day(tmp_path):
    a, _, _, label = rows()
    stamps = [f"2020/03/{1 + i % 28:02d} {i % 24:02d}:30" for i in range(40)]
    times = [f"{i % 24}:{15 * (i % 4):02d}" for i in range(40)]
    path = write_table(tmp_path / "t.csv", ["stamp", "clock", "a", "label"], zip(stamps, times, a, label))
    data = load(path, [], standardize=False)
    prep = data.preprocessing
    assert prep["derived"] == {"stamp": "date", "clock": "time"}
    assert prep["columns"] == ["stamp year", "stamp day of year", "stamp weekday", "stamp hour", "clock hours", "a"]
    x, _ = table_inputs(prep, write_table(tmp_path / "n.csv", ["stamp", "clock", "a"], [("2020/03/02 13:30", "7:45", 1)]))
    assert x.tolist() == [[2020, 62, 0, 13.5, 7.75, 1]]  # 2 March 2020 was a Monday


def test_id_like_columns_are_dropped(tmp_path):
    a, b, color, label = rows()
    names = [f"item-{i:03d}" for i in range(40)]
    path = write_table(tmp_path / "t.csv", ["ID", "name", "a", "color", "label"],
                       zip(range(100, 140), names, a, color, label))
    notes = []
    data = load(path, notes)
    assert data.preprocessing["inputs"] == ["a", "color"]
    line = next(n for n in notes if n.startswith("note:"))
    assert "'ID' is an ID (distinct integers): left out" in line
    assert "'name' is ID-like (40 distinct texts in 40 rows): left out" in line
    kept = load(path, [], ids="keep")
    assert kept.preprocessing["inputs"] == ["ID", "name", "a", "color"]


def test_impute_fills_from_training_rows_with_indicators_and_eval_applies_it(tmp_path):
    a, b, color, label = rows(60)
    cells = [[str(v) for v in r] for r in zip(a, b, color, label)]
    for i in range(0, 60, 7):
        cells[i][1] = "NA"
    for i in range(3, 60, 11):
        cells[i][2] = ""
    cells[4][3] = ""  # a missing target: its row is dropped
    path = write_table(tmp_path / "t.csv", ["a", "b", "color", "label"], cells)
    notes = []
    data = load(path, notes, missing="impute", standardize=False)
    prep = data.preprocessing
    assert prep["missing"] == "impute" and prep["indicators"] == ["b", "color"]
    assert prep["columns"] == ["a", "b", "b missing", "color=blue", "color=green", "color=red", "color missing"]
    assert len(data.train) + len(data.val) + len(data.test) == 59
    line = next(n for n in notes if n.startswith("note:"))
    assert "dropped 1 of 60 rows of t.csv with no target value (data.missing: impute)" in line
    assert "missing cells in 2 columns of the training rows imputed" in line
    x = data.train.x
    assert not np.isnan(x).any()
    missing_b = x[:, 2] == 1
    assert missing_b.any() and np.all(x[missing_b, 1] == np.float32(prep["fill"]["b"]))
    # the fill values are the training rows' median and most frequent category
    new = write_table(tmp_path / "n.csv", ["a", "b", "color"], [("1", "", ""), ("2", "0.5", "red")])
    x, _ = table_inputs(json.loads(json.dumps(prep)), new)
    fill_color = prep["categories"]["color"].index(prep["fill"]["color"])
    assert x[0, :3].tolist() == [1, np.float32(prep["fill"]["b"]), 1] and x[0, 3 + fill_color] == 1 and x[0, 6] == 1
    assert x[1].tolist() == [2, 0.5, 0, 0, 0, 1, 0]


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_eval_and_predict_apply_the_runs_missing_policy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b, color, label = rows(60)
    write_table(tmp_path / "t.csv", ["a", "b", "color", "label"], zip(a, b, color, label))
    test_rows = [(0.5, "", "red", "yes"), (-1, -1, "blue", "no"), (1, 1, "", "yes")]
    write_table(tmp_path / "test.csv", ["a", "b", "color", "label"], test_rows)
    for policy in ("drop", "impute"):
        (tmp_path / f"{policy}.yaml").write_text(yaml.safe_dump({
            "data": {"dataset": "csv", "path": "t.csv", "target": "label", "missing": policy, "test_path": "test.csv"},
            "model": MLP, "train": {"epochs": 1}}))
        result = run_cli("train", f"{policy}.yaml")
        assert result.exit_code == 0, result.output
        result = run_cli("eval", f"runs/{policy}")
        assert result.exit_code == 0, result.output
        assert (f"{3 if policy == 'impute' else 1} examples") in result.output
    result = run_cli("eval", "runs/drop")
    assert "dropped 2 of 3 rows of test.csv with a missing or unparsable cell (data.missing: drop)" in result.output
    result = run_cli("predict", "runs/impute", "test.csv")
    assert result.exit_code == 0 and len([x for x in result.output.splitlines() if x.startswith("test.csv:")]) == 3
    result = run_cli("predict", "runs/drop", "test.csv")
    assert result.exit_code == 1
    assert "trained with data.missing: drop, so a prediction needs every cell" in result.output


def test_unseen_categories_are_zeros_and_rare_ones_grouped(tmp_path):
    n = 60
    a, _, _, label = rows(n)
    town = np.array(["north", "south", "east"] * 20)
    town[[7, 8, 9]] = ["tiny1", "tiny2", "tiny3"]
    path = write_table(tmp_path / "t.csv", ["a", "town", "label"], zip(a, town, label))
    notes = []
    data = load(path, notes, min_category_count=2, standardize=False, test_fraction=0.3)
    prep = data.preprocessing
    assert prep["grouped"] == ["town"] and prep["categories"]["town"][-1] == "(other)"
    x, _ = table_inputs(prep, write_table(tmp_path / "n.csv", ["a", "town"], [(1, "nowhere"), (2, "north")]))
    other = prep["columns"].index("town=(other)")
    assert x[0, other] == 1 and x[0].sum() == 2 and x[1, prep["columns"].index("town=north")] == 1
    ungrouped = load(path, notes, standardize=False, test_fraction=0.3)
    assert "(other)" not in ungrouped.preprocessing["categories"]["town"]
    found = []
    x, _ = table_inputs(ungrouped.preprocessing, tmp_path / "n.csv", notes=found)
    assert x[0, 1:].sum() == 0 and found == ["1 input rows hold a category of 'town' unseen in the training rows: "
                                              "encoded as all zeros"]


def test_decimal_commas_are_read_as_numbers_stored_and_applied_again(tmp_path, monkeypatch):
    """A European spreadsheet export: semicolons, decimal commas, thousands dots; trains with only path and
    target set (the shipped config), the decision is a note and in the checkpoint, eval and predict apply it."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    a, b = rng.normal(10, 3, 60), rng.normal(2000, 500, 60)
    y = 2 * a + 0.01 * b
    comma = lambda v, d: f"{v:.{d}f}".replace(".", ",")  # noqa: E731
    thousands = lambda v: f"{int(v) // 1000}.{int(v) % 1000:03d},{int(100 * v) % 100:02d}"  # noqa: E731 (1.234,56)
    lines = [(comma(a[i], 3), thousands(b[i]), ["rot", "grün"][i % 2], comma(y[i], 2)) for i in range(60)]
    write_table(tmp_path / "eu.csv", ["Länge", "Preis", "Farbe", "Ziel"], lines, ";")
    table = read_csv(tmp_path / "eu.csv")
    assert table.decimal == "," and table["Länge"].numeric and table["Preis"].numeric
    assert table["Länge"].numbers[0] == pytest.approx(round(a[0], 3))
    assert table["Preis"].numbers[0] == pytest.approx(int(100 * b[0]) / 100)  # 1.234,56 -> 1234.56
    assert any("decimal commas (1,5) in 'Länge', 'Preis', 'Ziel'" in n for n in table.notes)
    forced = read_csv(tmp_path / "eu.csv", decimal=".")  # data.decimal: '.' keeps them text
    assert forced.decimal == "." and not forced["Länge"].numeric
    # numbers with a decimal point elsewhere in the file: "1,5" stays text (it may be two values)
    write_table(tmp_path / "d.csv", ["x", "y", "label"], [("1.25", "1,5", "a"), ("2.5", "2,5", "b"), ("3", "x", "a")], ";")
    assert read_csv(tmp_path / "d.csv").decimal == "." and not read_csv(tmp_path / "d.csv")["y"].numeric
    # a comma-separated file never has decimal commas (its commas are quoted cells)
    write_table(tmp_path / "c.csv", ["x", "label"], [('"1,5"', "a"), ('"2,5"', "b"), ("3", "a")])
    assert read_csv(tmp_path / "c.csv").decimal == "."
    assert read_csv(tmp_path / "c.csv", decimal=",")["x"].numbers.tolist() == [1.5, 2.5, 3.0]

    config = str(__import__("pathlib").Path(__file__).parents[2] / "configs" / "tabular_regression.yaml")
    result = run_cli("train", config, "-s", "data.path=eu.csv", "-s", "data.target=Ziel", "-s", "output=run",
                     "-s", "train.epochs=3", "-s", "train.min_steps=0")
    assert result.exit_code == 0, result.output
    assert "decimal commas (1,5) in 'Länge', 'Preis', 'Ziel'" in result.output
    assert "3 feature columns (1 categorical, one-hot encoded: 4 inputs)" in result.output  # numbers, not one-hots
    from layerwise.util.npz import load_checkpoint

    prep = load_checkpoint(tmp_path / "run" / "best.npz")[1]["preprocessing"]
    assert prep["decimal"] == "," and prep["numeric"] == ["Länge", "Preis"]
    result = run_cli("eval", "run", "--data", "eu.csv", "--json")
    assert result.exit_code == 0, result.output
    write_table(tmp_path / "new.csv", ["Länge", "Preis", "Farbe"], [("10,5", "1.500,25", "rot"), ("9", "2.000", "grün")], ";")
    assert table_inputs(prep, tmp_path / "new.csv")[0].shape == (2, 6)  # 2 numbers, 2 colours, 2 linear copies
    result = run_cli("predict", "run", "new.csv", "--json")
    assert result.exit_code == 0, result.output
    values = [p["prediction"] for p in json.loads(result.stdout)["predictions"]]
    assert len(values) == 2 and all(isinstance(v, float) for v in values)


def test_a_windows_1252_file_is_read_with_a_note(tmp_path):
    a, b, color, label = rows()
    cities = ["Zürich", "Genève", "Köln", "Zürich"] * 10
    path = tmp_path / "t.csv"
    path.write_bytes("\n".join(["a;b;ville;label"] + [f"{x};{y};{c};{z}" for x, y, c, z in zip(a, b, cities, label)])
                     .encode("cp1252") + b"\n")
    notes = []
    data = load(path, notes)
    assert "note: t.csv: not UTF-8: read as Windows-1252 (Latin-1) text; semicolon-separated" in notes
    assert "ville=Zürich" in data.preprocessing["columns"]
    # the same rows in UTF-8 encode to the same inputs (what predict on a re-saved file sees)
    utf8 = tmp_path / "u.csv"
    utf8.write_text(path.read_bytes().decode("cp1252"), encoding="utf-8")
    assert np.array_equal(load(utf8, []).train.x, data.train.x)


def test_a_delimiter_at_the_end_of_each_line_is_not_a_column(tmp_path):
    a, b, color, label = rows()
    path = tmp_path / "t.csv"
    path.write_text("\n".join(["a,b,color,label,"] + [f"{x},{y},{c},{z}," for x, y, c, z in zip(a, b, color, label)]) + "\n")
    notes = []
    data = load(path, notes)
    assert data.preprocessing["inputs"] == ["a", "b", "color"]
    assert any("column 5 has no name and no values (a delimiter at the end of each line): left out" in n for n in notes)
    # an unnamed last column that holds values stays an error
    path.write_text("a,b,label,\n1,2,x,\n3,4,y,5\n")
    with pytest.raises(DataError, match="column 4 of the header has no name; give it one"):
        read_csv(path)


def test_a_column_with_no_value_is_left_out(tmp_path):
    a, b, color, label = rows()
    path = write_table(tmp_path / "t.csv", ["a", "empty", "color", "label"], [(x, "", c, z) for x, c, z in zip(a, color, label)])
    notes = []
    data = load(path, notes)
    assert data.preprocessing["inputs"] == ["a", "color"]
    assert any("'empty' has no value in any row: left out" in n for n in notes)


def test_an_excel_sep_line_names_the_delimiter_and_predict_names_file_lines(tmp_path):
    a, b, color, label = rows()
    path = tmp_path / "t.csv"
    body = [f"{x};{y};{c};{z}" for x, y, c, z in zip(a, b, color, label)]
    path.write_text("\n".join(["sep=;", "a;b;color;label"] + body) + "\n")
    notes = []
    data = load(path, notes)
    assert data.preprocessing["inputs"] == ["a", "b", "color"]
    assert "note: t.csv: a 'sep=;' first line (for Excel): read as semicolon-separated" in notes
    assert read_csv(path, delimiter=";").notes == ["a 'sep=;' first line (for Excel): skipped"]
    # the file lines predict names: after the sep= line and the header, and past a blank line
    from layerwise.data.inputs import _csv

    (tmp_path / "new.csv").write_text("sep=;\na;b;color\n0.1;0.2;red\n\n0.3;0.4;blue\n")
    assert _csv(tmp_path / "new.csv", data.preprocessing, "classification").names == ["new.csv:3", "new.csv:5"]
