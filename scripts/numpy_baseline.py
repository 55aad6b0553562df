"""A careful, minimal NumPy MLP (no framework), for scale next to scripts/bench.py.

Same model, batch size, optimizer and data as the benchmark: 784-512-256-10 ReLU, batch 128, float32,
SGD lr 0.05 momentum 0.9 on MNIST's first 55,000 training images. Prints seconds per epoch.
Like bench.py it should run without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE to compare like with like:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/numpy_baseline.py [--data DIR]
"""

import argparse
import time
from pathlib import Path

import numpy as np

from layerwise.config.data import MnistData
from layerwise.data.load import load_dataset


def train(X, Y, epochs, seed=0):
    """Train the minimal MLP; returns (seconds per epoch list, predict function)."""
    rng = np.random.default_rng(seed)
    sizes = [784, 512, 256, 10]
    W = [(rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
    b = [np.zeros(n, np.float32) for n in sizes[1:]]
    params, grads = W + b, [np.zeros_like(p) for p in W + b]
    velocity = [np.zeros_like(p) for p in params]
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(len(X))
        for s in range(0, len(X), 128):
            idx = order[s : s + 128]
            x, y, n = X[idx], Y[idx], len(idx)
            h1 = x @ W[0]
            h1 += b[0]
            np.maximum(h1, 0, out=h1)
            h2 = h1 @ W[1]
            h2 += b[1]
            np.maximum(h2, 0, out=h2)
            z = h2 @ W[2]
            z += b[2]
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
            z[np.arange(n), y] -= 1
            z /= n  # dL/dz = (softmax - onehot) / N
            np.matmul(h2.T, z, out=grads[2])
            z.sum(axis=0, out=grads[5])
            d2 = z @ W[2].T
            d2 *= h2 > 0
            np.matmul(h1.T, d2, out=grads[1])
            d2.sum(axis=0, out=grads[4])
            d1 = d2 @ W[1].T
            d1 *= h1 > 0
            np.matmul(x.T, d1, out=grads[0])
            d1.sum(axis=0, out=grads[3])
            for p, g, v in zip(params, grads, velocity):
                v *= 0.9
                v += g
                p -= 0.05 * v
        times.append(time.perf_counter() - start)

    def predict(x):
        h = np.maximum(x @ W[0] + b[0], 0)
        return np.maximum(h @ W[1] + b[1], 0) @ W[2] + b[2]

    return times, predict


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    data = load_dataset(MnistData(root=args.data), echo=lambda *_: None)
    times, predict = train(data.train.x, data.train.y, args.epochs)
    for t in times:
        print(f"minimal NumPy MLP: {t:.3f} s/epoch")
    accuracy = np.mean(predict(data.test.x).argmax(axis=1) == data.test.y)
    print(f"test accuracy after {args.epochs} epochs: {100 * accuracy:.2f}%")


if __name__ == "__main__":
    main()
