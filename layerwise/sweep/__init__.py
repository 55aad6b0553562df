"""Sweeps: many runs of one config with settings varied, each an ordinary run directory.

    axes.py         `-s key=a,b,c` grid axes, `-s key=loguniform(a,b)` sampled ones, --seeds; the trials
    trial.py        one trial: exactly `layerwise train` (or its resume) into trials/<id>, with one BLAS
                    thread; the callback that reports its epochs
    runner.py       the sweep directory (manifest sweep.yaml, lock, results.csv), the local process pool,
                    progress, and `sweep --resume`
    report.py       the trials ranked by their validation metric, the best one and how to reproduce it
"""
