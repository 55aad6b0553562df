"""Does the SGD update get faster on two threads? Times layerwise's SGD.step on the benchmark model's
535k parameters (momentum 0.9, as scripts/bench.py) against the same blocks split between the main
thread and one worker thread. A dead end kept as evidence: on the 2-core machine of README's
Performance section two threads were slower (NumPy's per-block calls take turns on the GIL and
share one memory bus), so SGD.step stays single-threaded.

    python scripts/update_threads.py [--steps 430] [--repeats 5]
"""

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from layerwise.nn.registry import build_model
from layerwise.optim.optimizers import SGD

LR, MOMENTUM = 0.05, 0.9


def momentum_update(blocks):
    """SGD.step's rule for momentum without Nesterov or weight decay, on some of its blocks."""
    for p, g, v, _, update in blocks:
        v *= MOMENTUM
        v += g
        np.multiply(v, LR, out=update)
        p -= update


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=430, help="updates per measurement (430 = one epoch)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    specs = [{"type": "linear", "out_features": 512}, {"type": "relu"},
             {"type": "linear", "out_features": 256}, {"type": "relu"}, {"type": "linear", "out_features": 10}]
    model = build_model(specs, 784, 10, rng=np.random.default_rng(0))
    for _, _, grad in model.named_parameters():
        grad[...] = np.random.default_rng(1).standard_normal(grad.shape) * 1e-3
    opt = SGD(model.named_parameters(), lr=LR, momentum=MOMENTUM)
    # The worker gets every other block, with scratch arrays of its own.
    mine = opt._blocks[::2]
    worker = [(p, g, v, np.empty_like(p), np.empty_like(p)) for p, g, v, _, _ in opt._blocks[1::2]]
    pool = ThreadPoolExecutor(1)

    def two_threads():
        done = pool.submit(momentum_update, worker)
        momentum_update(mine)
        done.result()

    def seconds(step):
        step()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        return time.perf_counter() - start

    one, two = [], []
    for _ in range(args.repeats):  # alternating, so drifts in machine speed hit both alike
        one.append(seconds(opt.step))
        two.append(seconds(two_threads))
    print(f"{args.steps} momentum updates of {model.num_parameters():,} parameters, median of {args.repeats}:")
    print(f"  1 thread  (SGD.step): {1000 * np.median(one):6.1f} ms")
    print(f"  2 threads (split):    {1000 * np.median(two):6.1f} ms   ({np.median(two) / np.median(one):.2f}x)")


if __name__ == "__main__":
    main()
