"""How long `data.dataset: csv` takes to load a big numeric CSV: 1,000,000 rows x 20 columns.

Writes the file into /tmp once (19 standard-normal features and a target, '%.6g', about 180 MB; kept
for later runs, --rewrite to make it again), then times, each the median of --repeat runs:
  read     the CSV parse alone (layerwise.data.csvfile.read_csv: np.loadtxt's C parser into float64);
  dataset  the whole csv dataset as training builds it (parse, seeded split, encode, standardise);
and, for scale, np.loadtxt of the same file straight into float32.

    python scripts/csv_load_time.py [--rows 1000000] [--repeat 3]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layerwise.config.data import CsvData  # noqa: E402
from layerwise.data.csvfile import read_csv  # noqa: E402
from layerwise.data.load import load_dataset  # noqa: E402


def generate(path, rows, cols=20, chunk=100_000):
    rng = np.random.default_rng(0)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        f.write(",".join([f"f{i}" for i in range(cols - 1)] + ["y"]) + "\n")
        for start in range(0, rows, chunk):
            np.savetxt(f, rng.standard_normal((min(chunk, rows - start), cols)), delimiter=",", fmt="%.6g")
    os.replace(tmp, path)


def timed(fn, repeat):
    """Median wall seconds, the wall seconds of each run, the result, and the median CPU seconds of this
    process (less sensitive than wall time to other processes on a busy machine)."""
    times, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(times), times, result, statistics.median(cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rewrite", action="store_true")
    args = parser.parse_args()
    path = Path(f"/tmp/layerwise-csv-{args.rows}x20.csv")
    if args.rewrite or not path.is_file():
        print(f"writing {path} ...", flush=True)
        generate(path, args.rows)
    size = path.stat().st_size / 1e6
    print(f"file      {path}: {args.rows:,} rows x 20 columns, {size:.0f} MB")
    print(f"machine   {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (other processes slow every figure)")

    read, runs, table, cpu = timed(lambda: read_csv(path), args.repeat)
    assert len(table) == args.rows
    print(f"read      {read:6.2f} s  ({size / read:.0f} MB/s; CPU {cpu:.2f} s)  runs: {', '.join(f'{t:.2f}' for t in runs)}")
    cfg = CsvData(path=str(path), target="y")
    whole, runs, data, cpu = timed(lambda: load_dataset(cfg, seed=0, echo=lambda *_: None, task="regression"), args.repeat)
    print(f"dataset   {whole:6.2f} s  (CPU {cpu:.2f} s; read + split + standardise: {len(data.train):,} / {len(data.val):,} / "
          f"{len(data.test):,} rows)  runs: {', '.join(f'{t:.2f}' for t in runs)}")
    raw, runs, _, cpu = timed(lambda: np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32), args.repeat)
    print(f"loadtxt   {raw:6.2f} s  (CPU {cpu:.2f} s; plain np.loadtxt into float32, for scale)  runs: {', '.join(f'{t:.2f}' for t in runs)}")


if __name__ == "__main__":
    main()
