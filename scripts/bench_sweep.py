"""4 MNIST trials as one sweep with --jobs 2 against --jobs 1, side by side (alternating runs, each a
fresh `layerwise sweep` process); prints the wall times and their ratio.

    python scripts/bench_sweep.py [--root ../shared/data/mnist] [--epochs 2] [--rounds 2]

The issue's target: --jobs 2 takes at most 0.8x the wall time of --jobs 1 on 2 cores.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sweep(jobs, root, epochs, where):
    command = [sys.executable, "-m", "layerwise", "sweep", str(REPO / "configs" / "mnist.yaml"),
               "-s", "optimizer.lr=0.01,0.02,0.05,0.1", "-s", f"train.epochs={epochs}", "-s", f"data.root={root}",
               "--jobs", str(jobs), "--output", str(where)]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    failed = [line for line in (where / "results.csv").read_text().splitlines()[1:] if ",finished," not in line]
    if failed:
        sys.exit(f"trials failed: {failed[0]}")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    times = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for jobs in (1, 2) if r % 2 == 0 else (2, 1):
                times[jobs].append(sweep(jobs, args.root, args.epochs, Path(tmp) / f"r{r}-j{jobs}"))
                print(f"round {r + 1}: --jobs {jobs}: {times[jobs][-1]:.1f} s", flush=True)
    ratios = [a / b for a, b in zip(times[2], times[1])]
    print(f"4 trials x {args.epochs} epochs: --jobs 1 median {statistics.median(times[1]):.1f} s, --jobs 2 median "
          f"{statistics.median(times[2]):.1f} s; ratio jobs2/jobs1 per round {', '.join(f'{r:.2f}' for r in ratios)} "
          f"(median {statistics.median(ratios):.2f}; target <= 0.8)")


if __name__ == "__main__":
    main()
