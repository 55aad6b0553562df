"""The CNN case of scripts/bench.py: a LeNet-like net, layerwise against PyTorch CPU at the same thread count.

Model: conv32 kxk - ReLU - maxpool 2 - conv64 kxk - ReLU - maxpool 2 - flatten - linear 128 - ReLU -
linear 10 ("same" padding, (k - 1) / 2), batch 128, float32, SGD (lr 0.02, momentum 0.9), on MNIST's
first training images; k = 5 (LeNet's kernels) and k = 3 (Keras's "simple MNIST convnet"), each its row.
Both train `--steps` steps (after 3 untimed warm-up steps) from the same initial weights on the same
batches; the seconds per step, the epoch they imply (430 steps: 55,000 images) and the ratio are printed.
Each side runs in its own child process with --threads BLAS / intra-op threads (1 by default), in
alternating order, --repeats times; the median is reported, as wall seconds and as CPU seconds (process
time: on a machine shared with other jobs, the CPU ratio moves less than the wall ratio).

`--layers` prints instead where layerwise's step goes: each layer's forward and backward, CPU
milliseconds (process time, so other jobs on the machine inflate it less), the median of --steps steps.

Run:  python scripts/bench_cnn.py [--steps 40] [--repeats 3] [--threads 1] [--kernel 5 --kernel 3]
      python scripts/bench_cnn.py --layers [--kernel 5]
      python scripts/bench.py --cnn      (the same, from the main benchmark)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

LR, MOMENTUM, SEED, BATCH, EPOCH_STEPS = 0.02, 0.9, 0, 128, 430


def specs(kernel):
    """The layerwise model for kernel size `kernel`, "same" padding."""
    conv = {"type": "conv2d", "kernel_size": kernel, "padding": (kernel - 1) // 2}
    return [{**conv, "out_channels": 32}, {"type": "relu"}, {"type": "maxpool2d", "kernel_size": 2},
            {**conv, "out_channels": 64}, {"type": "relu"}, {"type": "maxpool2d", "kernel_size": 2},
            {"type": "flatten"}, {"type": "linear", "out_features": 128}, {"type": "relu"},
            {"type": "linear", "out_features": 10}]


def batches(spec):
    """The benchmark's batches: MNIST's first training images, scaled and normalised as layerwise does."""
    import numpy as np

    from layerwise.config.data import MnistData
    from layerwise.data.load import load_dataset

    data = load_dataset(MnistData(root=spec["data"], val_size=5000), echo=lambda *a, **k: None, splits=("train",))
    n = (spec["steps"] + 3) * BATCH
    x, y = np.ascontiguousarray(data.train.x[:n]), data.train.y[:n]
    return [(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, n, BATCH)]


def lw_model(kernel):
    import numpy as np

    from layerwise.nn.registry import build_model

    return build_model(specs(kernel), 784, 10, rng=np.random.default_rng(SEED), input_shape=(1, 28, 28))


def child_layerwise(spec):
    from threadpoolctl import threadpool_limits

    from layerwise.nn.losses import SoftmaxCrossEntropy
    from layerwise.optim.optimizers import SGD
    from layerwise.run.trainer import train_step

    threadpool_limits(spec["threads"])
    data = batches(spec)
    model, loss_fn = lw_model(spec["kernel"]), SoftmaxCrossEntropy()
    opt = SGD(model.named_parameters(), lr=LR, momentum=MOMENTUM, nesterov=False, weight_decay=0.0)
    for x, y in data[:3]:
        train_step(model, loss_fn, opt, x, y)
    start, cpu = time.perf_counter(), time.process_time()
    losses = [train_step(model, loss_fn, opt, x, y) for x, y in data[3:]]
    return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu, "loss": losses[-1]}


def child_torch(spec):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(spec["threads"])
    data = batches(spec)
    nn = torch.nn
    k = spec["kernel"]
    model = nn.Sequential(nn.Conv2d(1, 32, k, padding=(k - 1) // 2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, k, padding=(k - 1) // 2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    with torch.no_grad():  # the same initial weights; layerwise's flatten is channels-last, so the first
        mine = [layer for layer in lw_model(k).layers if layer.params]  # linear's rows are permuted to match
        convs = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
        for i, (theirs, layer) in enumerate(zip(convs, mine)):
            W = torch.from_numpy(layer.params["W"].copy())
            if W.ndim == 4:
                theirs.weight.copy_(W.permute(3, 2, 0, 1))  # (kh, kw, C, M) -> (M, C, kh, kw)
            elif i == 2:
                theirs.weight.copy_(W.reshape(7, 7, 64, 128).permute(3, 2, 0, 1).reshape(128, 3136))
            else:
                theirs.weight.copy_(W.T)
            theirs.bias.copy_(torch.from_numpy(layer.params["b"]))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(torch.from_numpy(x).view(-1, 1, 28, 28)), torch.from_numpy(y))
        loss.backward()
        opt.step()
        return loss.item()

    for x, y in data[:3]:
        step(x, y)
    start, cpu = time.perf_counter(), time.process_time()
    losses = [step(x, y) for x, y in data[3:]]
    return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu, "loss": losses[-1],
            "threads": torch.get_num_threads()}


CHILDREN = {"layerwise": child_layerwise, "torch": child_torch}


def run_child(what, args, kernel):
    spec = {"what": what, "data": args.data, "steps": args.steps, "threads": args.threads, "kernel": kernel}
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads)}
    p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
                       env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench_cnn: child {what!r} failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def bench(args):
    """Median seconds per step of each side for each kernel size; prints the side-by-side tables and
    returns the figures, {kernel: {"per_step": ..., "runs": ...}}."""
    try:
        import torch  # noqa: F401

        sides = ["layerwise", "torch"]
    except ImportError:
        sides = ["layerwise"]
    figures = {}
    for kernel in args.kernel:
        runs, cpu = {s: [] for s in sides}, {s: [] for s in sides}
        for r in range(args.repeats):
            for side in sides if r % 2 == 0 else sides[::-1]:
                res = run_child(side, args, kernel)
                runs[side].append(res["seconds"] / args.steps)
                cpu[side].append(res["cpu"] / args.steps)
        per_step = {s: statistics.median(v) for s, v in runs.items()}
        cpu_step = {s: statistics.median(v) for s, v in cpu.items()}
        print(f"CNN (conv32-pool-conv64-pool-fc128, {kernel}x{kernel} kernels, batch {BATCH}, float32, SGD), "
              f"{args.threads} thread(s), {args.steps} steps, median of {args.repeats}:")
        print(f"  {'':10}{'s/step':>10}{'s/epoch':>10}{'CPU s/step':>12}   runs (s/step)")
        for s, t in per_step.items():
            print(f"  {s:10}{t:>10.4f}{t * EPOCH_STEPS:>10.1f}{cpu_step[s]:>12.4f}   "
                  + ", ".join(f"{x:.4f}" for x in runs[s]))
        if "torch" in per_step:
            print(f"  layerwise / pytorch = {per_step['layerwise'] / per_step['torch']:.2f}x "
                  f"(fastest runs: {min(runs['layerwise']) / min(runs['torch']):.2f}x; "
                  f"CPU time: {cpu_step['layerwise'] / cpu_step['torch']:.2f}x)")
        else:
            print("  pytorch not installed: no ratio")
        figures[kernel] = {"per_step": per_step, "cpu_per_step": cpu_step, "runs": runs}
    return figures


def layer_times(args):
    """Median CPU ms of each layer's forward and backward over --steps training steps (layerwise only)."""
    from threadpoolctl import threadpool_limits

    from layerwise.nn.losses import SoftmaxCrossEntropy

    threadpool_limits(args.threads)
    for kernel in args.kernel:
        model, loss_fn = lw_model(kernel), SoftmaxCrossEntropy()
        x, y = batches({"data": args.data, "steps": 1})[0]
        times = {(i, way): [] for i in range(len(model.layers)) for way in ("forward", "backward")}
        for step in range(args.steps + 2):
            h = np.ascontiguousarray(model.internal(x))
            for i, layer in enumerate(model.layers):
                start = time.process_time()
                h = layer.forward(h)
                times[i, "forward"].append(time.process_time() - start)
            loss_fn.forward(h, y)
            d = loss_fn.backward()
            for i in reversed(range(len(model.layers))):
                start = time.process_time()
                d = model.layers[i].backward(d, input_grad=i > 0)
                times[i, "backward"].append(time.process_time() - start)
        print(f"where a step goes: conv32-pool-conv64-pool-fc128, {kernel}x{kernel} kernels, batch {BATCH}, "
              f"{args.threads} thread(s), CPU ms, median of {args.steps} steps")
        total = 0.0
        for i, layer in enumerate(model.layers):
            f, b = (1000 * statistics.median(times[i, way][2:]) for way in ("forward", "backward"))
            total += f + b
            print(f"  {i:2}  {layer.describe():66}  forward {f:7.2f}  backward {b:7.2f}")
        print(f"  total {total:.1f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="/work/shared/data/mnist", help="directory with the MNIST IDX files")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--kernel", type=int, action="append", choices=(3, 5),
                    help="kernel size (repeatable; default: 5, then 3)")
    ap.add_argument("--layers", action="store_true", help="per-layer forward/backward CPU time (layerwise only)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(CHILDREN[spec["what"]](spec)))
        return
    args.kernel = args.kernel or [5, 3]
    if args.layers:
        return layer_times(args)
    bench(args)


if __name__ == "__main__":
    main()
