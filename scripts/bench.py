"""Benchmark layerwise training speed against the matmul floor and PyTorch CPU.

The model is 784-512-256-10 (ReLU), batch 128, float32, SGD (lr 0.05, momentum 0.9, no Nesterov, no
weight decay), trained on MNIST's first 55,000 training images (val_size 5000, as configs/mnist.yaml).
  floor      only the matrix products one epoch needs (430 batches of 128, the last partial), pure BLAS
             into preallocated `out=` arrays: 8 per step (3 forward, 3 weight gradients, 2 input
             gradients; layerwise skips the first layer's input gradient) and the 6-product variant
  layerwise  seconds per epoch through the library API (registry.build_model, SoftmaxCrossEntropy,
             optim.SGD, data.datasets.Batches) and training.train_step, the step `layerwise train`
             runs: forward, loss, backward(input_grad=False), optimizer step
  pytorch    the same model, initial weights, optimizer, thread count and data order (if installed)
  numpy-mlp  scripts/numpy_baseline.py: a minimal hand-written NumPy loop of the same model, for scale
  lw-adam    layerwise as above with Adam (lr 0.001, betas 0.9/0.999) instead of SGD: the cost of
             Adam's update (4 buffers per parameter instead of 2)
  dropout+batchnorm  layerwise with BatchNorm before and Dropout (p 0.2) after each hidden ReLU
  update     layerwise's SGD.step alone, 430 times (the cost beyond the floor no trainer can skip)
  torch-mm   the floor's 8 products through torch.mm (PyTorch's own BLAS), to show what PyTorch's
             epoch is made of
Each is measured --repeats times in alternating order and the median reported; then the test
accuracy both reach after --epochs epochs, a scaling table (batch size, width), and two commands run
as subprocesses: `layerwise train configs/mnist.yaml` (wall time, peak RSS) and `layerwise --help`.

Every measurement runs in a child process (this script with --child) whose environment lacks
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which pin OpenBLAS to an older kernel than a user's machine
would pick; --keep-env keeps them as set, for comparison. The parent's environment is never changed.

The full report ends with the CNN case (scripts/bench_cnn.py): a LeNet-like conv32-pool-conv64-pool-fc128
trained side by side with PyTorch CPU at 1 thread, printing the layerwise / PyTorch ratio; `--cnn` runs it alone.

Run:  python scripts/bench.py             full report (a few minutes)
      python scripts/bench.py --cnn       only the CNN case
      python scripts/bench.py --quick     smoke test: 1 repeat, 1 epoch, no scaling table or train run
      python scripts/bench.py --keep-env --json bench.json
"""

import argparse
import json
import math
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINNING_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
LR, MOMENTUM, SEED, VAL_SIZE = 0.05, 0.9, 0, 5000
ADAM_LR = 0.001


# --- child side: each function runs in a fresh process and returns a JSON-able dict ----------------


def blas_pools():
    """threadpoolctl's view of the loaded BLAS / OpenMP libraries, or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    keys = ("internal_api", "architecture", "num_threads", "version", "prefix")
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


def layer_specs(hidden, variant=None):
    """The benchmark model; variant "dropout+batchnorm" puts batchnorm before and dropout (p 0.2)
    after each hidden ReLU: 784-512-BN-ReLU-Drop-256-BN-ReLU-Drop-10."""
    extra = [{"type": "batchnorm"}] if variant == "dropout+batchnorm" else []
    after = [{"type": "dropout", "p": 0.2}] if variant == "dropout+batchnorm" else []
    return [{"type": "linear", "out_features": hidden, "init": "he"}, *extra, {"type": "relu"}, *after,
            {"type": "linear", "out_features": hidden // 2, "init": "he"}, *extra, {"type": "relu"}, *after,
            {"type": "linear", "out_features": 10, "init": "he"}]


def load_data(spec):
    """MNIST as layerwise splits it; `fraction` < 1 keeps only the first part of the training split."""
    from layerwise.config.data import MnistData
    from layerwise.data.dataset import Split
    from layerwise.data.load import load_dataset

    data = load_dataset(MnistData(root=spec["data"], val_size=VAL_SIZE), echo=lambda *a, **k: None)
    n = round(len(data.train) * spec.get("fraction", 1.0))
    return data, Split(data.train.x[:n], data.train.y[:n])


def lw_model(hidden, variant=None):
    import numpy as np

    from layerwise.nn.registry import build_model

    model = build_model(layer_specs(hidden, variant), 784, 10, rng=np.random.default_rng(SEED))
    model.seed_random([SEED])
    return model


def child_info(spec):
    import numpy as np

    out = {"numpy": np.__version__, "numpy_pools": blas_pools(), "torch": None}
    try:
        import torch
    except ImportError:
        return out
    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    out.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
               torch_blas=blas.group(1) if blas else "?", torch_cpu=torch.backends.cpu.get_cpu_capability(),
               torch_pools=[p for p in blas_pools() or [] if p not in (out["numpy_pools"] or [])])
    return out


def child_floor(spec):
    """The 8 (and 6) matrix products of every step of one epoch; then layerwise's SGD.step alone, and
    the 8 products with SGD.step after each step on the same arrays (the update evicts the weights
    from the caches the products use, which costs more than the two apart)."""
    import numpy as np

    from layerwise.optim.optimizers import SGD

    rng = np.random.default_rng(0)
    dims, n, bs = [784, spec["hidden"], spec["hidden"] // 2, 10], spec["n"], spec["batch"]
    sizes = [bs] * (n // bs) + ([n % bs] if n % bs else [])
    model = lw_model(spec["hidden"])
    linears = [layer for layer in model.layers if layer.params]
    W, dW = [layer.params["W"] for layer in linears], [layer.grads["W"] for layer in linears]
    opt = SGD(model.named_parameters(), lr=LR, momentum=MOMENTUM, nesterov=False, weight_decay=0.0)

    def buffers(N):  # a[i] input of linear i, z[i] its output, g[i] dL/dz[i], da[i] dL/da[i]
        a = [rng.standard_normal((N, d)).astype(np.float32) for d in dims[:-1]]
        g = [(rng.standard_normal((N, d)) * 1e-3).astype(np.float32) for d in dims[1:]]  # small: W stays tame
        return a, [np.empty((N, d), np.float32) for d in dims[1:]], g, [np.empty_like(x) for x in a]

    bufs = {N: buffers(N) for N in set(sizes)}

    def epoch(products=8, update=False, batches=sizes):
        start = time.perf_counter()
        for N in batches:
            a, z, g, da = bufs[N]
            if products:
                for i in range(3):
                    np.matmul(a[i], W[i], out=z[i])  # forward
                for i in range(3):
                    np.matmul(a[i].T, g[i], out=dW[i])  # weight gradients
                if products == 8:
                    for i in (2, 1):
                        np.matmul(g[i], W[i].T, out=da[i])  # input gradients (not for the data)
            if update:
                opt.step()
        return time.perf_counter() - start

    epoch(8, True, sorted(set(sizes)) * 3)  # warm-up: BLAS threads, every batch shape
    times = {"mm8": [], "mm6": [], "update": [], "mm8+update": []}
    for _ in range(spec["epochs"]):
        times["mm8"].append(epoch(8))
        times["mm6"].append(epoch(6))
        times["update"].append(epoch(0, update=True))
        times["mm8+update"].append(epoch(8, update=True))
    return {"times": times, "pools": blas_pools()}


def child_torch_floor(spec):
    """The same 8 matrix products through torch.mm (PyTorch's BLAS, same thread count)."""
    import torch

    torch.set_num_threads(spec["threads"])
    g = torch.Generator().manual_seed(0)
    dims, n, bs = [784, spec["hidden"], spec["hidden"] // 2, 10], spec["n"], spec["batch"]
    sizes = [bs] * (n // bs) + ([n % bs] if n % bs else [])
    W = [torch.randn(a, b, generator=g) / a**0.5 for a, b in zip(dims, dims[1:])]  # (in, out) as layerwise
    dW = [torch.empty_like(w) for w in W]

    def buffers(N):
        a = [torch.randn(N, d, generator=g) for d in dims[:-1]]
        grads = [torch.randn(N, d, generator=g) for d in dims[1:]]
        return a, [torch.empty(N, d) for d in dims[1:]], grads, [torch.empty_like(x) for x in a]

    bufs = {N: buffers(N) for N in set(sizes)}

    def epoch(batches=sizes):
        start = time.perf_counter()
        for N in batches:
            a, z, grads, da = bufs[N]
            for i in range(3):
                torch.mm(a[i], W[i], out=z[i])
            for i in range(3):
                torch.mm(a[i].T, grads[i], out=dW[i])
            for i in (2, 1):
                torch.mm(grads[i], W[i].T, out=da[i])
        return time.perf_counter() - start

    epoch(sorted(set(sizes)) * 3)
    return {"times": [epoch() for _ in range(spec["epochs"])]}


def lw_epoch(model, loss_fn, opt, batches):
    """One epoch of layerwise.run.trainer.train_step, the step `layerwise train` runs."""
    from layerwise.run.trainer import train_step

    total, seen = 0.0, 0
    for x, y in batches:
        loss = train_step(model, loss_fn, opt, x, y)
        if not math.isfinite(loss):
            raise RuntimeError(f"layerwise diverged: loss {loss}")
        total, seen = total + loss * len(x), seen + len(x)
    return total / seen


def child_layerwise(spec):
    import numpy as np

    from layerwise.data.batches import Batches
    from layerwise.data.dataset import Split
    from layerwise.nn.losses import SoftmaxCrossEntropy
    from layerwise.optim.optimizers import SGD, Adam

    data, train = load_data(spec)
    model, loss_fn = lw_model(spec["hidden"], spec.get("variant")), SoftmaxCrossEntropy()
    if spec.get("optimizer") == "adam":
        opt = Adam(model.named_parameters(), lr=ADAM_LR)
    else:
        opt = SGD(model.named_parameters(), lr=LR, momentum=MOMENTUM, nesterov=False, weight_decay=0.0)
    if spec.get("warmup"):  # a few untimed steps (scaling runs only: it moves the weights)
        few = Split(train.x[: 3 * spec["batch"]], train.y[: 3 * spec["batch"]])
        lw_epoch(model, loss_fn, opt, Batches(few, spec["batch"]))
    # Batches draws one rng.permutation(n) per epoch; the torch child replays the same stream.
    probe = next(iter(Batches(train, spec["batch"], np.random.default_rng(SEED + 1))))[1]
    order_ok = bool(np.array_equal(probe, train.y[np.random.default_rng(SEED + 1).permutation(len(train))[: len(probe)]]))
    batches = Batches(train, spec["batch"], np.random.default_rng(SEED + 1))
    times, losses = [], []
    for _ in range(spec["epochs"]):
        start = time.perf_counter()
        losses.append(lw_epoch(model, loss_fn, opt, batches))
        times.append(time.perf_counter() - start)
    acc = float(np.mean(model.predict(data.test.x).argmax(1) == data.test.y))
    return {"times": times, "train_loss": losses, "accuracy": acc, "order_ok": order_ok, "pools": blas_pools()}


def child_numpy(spec):
    """The minimal hand-written NumPy MLP of scripts/numpy_baseline.py, for scale."""
    import numpy as np
    from numpy_baseline import train

    data, split = load_data(spec)
    times, predict = train(split.x, split.y, spec["epochs"])
    acc = float(np.mean(predict(data.test.x).argmax(1) == data.test.y))
    return {"times": times, "accuracy": acc}


def child_torch(spec):
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(spec["threads"])
    data, train = load_data(spec)
    h = spec["hidden"]
    model = torch.nn.Sequential(torch.nn.Linear(784, h), torch.nn.ReLU(), torch.nn.Linear(h, h // 2),
                                torch.nn.ReLU(), torch.nn.Linear(h // 2, 10))
    with torch.no_grad():  # layerwise's W is (in, out), torch's weight (out, in)
        mine = [layer for layer in lw_model(h).layers if layer.params]
        for lin, layer in zip([m for m in model if isinstance(m, torch.nn.Linear)], mine):
            lin.weight.copy_(torch.from_numpy(layer.params["W"].T.copy()))
            lin.bias.copy_(torch.from_numpy(layer.params["b"]))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=False, weight_decay=0.0)
    X, Y, n, bs = torch.from_numpy(train.x), torch.from_numpy(train.y), len(train), spec["batch"]

    def epoch(rng, n):
        total, order = 0.0, torch.from_numpy(rng.permutation(n))
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            xb, yb = X.index_select(0, idx), Y.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        return total / n

    if spec.get("warmup"):
        epoch(np.random.default_rng(SEED), 3 * bs)
    rng, times, losses = np.random.default_rng(SEED + 1), [], []
    for _ in range(spec["epochs"]):
        start = time.perf_counter()
        losses.append(epoch(rng, n))
        times.append(time.perf_counter() - start)
    with torch.no_grad():
        pred = model(torch.from_numpy(data.test.x)).argmax(1).numpy()
    acc = float(np.mean(pred == data.test.y))
    return {"times": times, "train_loss": losses, "accuracy": acc, "threads": torch.get_num_threads()}


def child_run(spec):
    """Run a command; report its wall time and peak RSS (this process has no other children)."""
    start = time.perf_counter()
    p = subprocess.run(spec["cmd"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kilobytes on Linux
    return {"rc": p.returncode, "wall": wall, "rss_mb": rss_kb / 1024, "tail": (p.stdout + p.stderr).strip().splitlines()[-2:]}


CHILDREN = {"info": child_info, "floor": child_floor, "torch_floor": child_torch_floor, "layerwise": child_layerwise,
            "numpy": child_numpy, "torch": child_torch, "run": child_run}


# --- parent side ------------------------------------------------------------------------------------


def child_env(keep):
    env = dict(os.environ)
    if not keep:
        for var in PINNING_VARS:
            env.pop(var, None)
    return env


def run_child(what, args, **spec):
    spec.update(what=what, data=args.data)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    p = subprocess.run(cmd, env=child_env(args.keep_env), capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench: child {what!r} failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def med(xs):
    return statistics.median(xs)


def wall_times(cmd, env, n=5):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def machine():
    cpu = "unknown CPU"
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    return f"{cpu}, {os.cpu_count()} logical cores"


def describe_pools(pools):
    if pools is None:
        return "threadpoolctl not installed: kernel and thread count not reported"
    return "; ".join(f"{p['internal_api']} {p['version'] or ''}".strip() + f" kernel={p['architecture'] or '-'} "
                     f"threads={p['num_threads']}" for p in pools) or "none found"


def bench_main(args, has_torch, threads, n_train, out):
    """Floor, layerwise and pytorch in alternating order, then the accuracy both reach."""
    base = dict(hidden=512, batch=128, epochs=args.epochs)
    runs = {"mm8": [], "mm6": [], "layerwise": [], "numpy": [], "pytorch": [], "update": [], "mm8+update": [], "torch_mm8": [],
            "lw_adam": []}
    last = {}
    for r in range(args.repeats):
        floor = run_child("floor", args, n=n_train, **base)
        runs["mm8"].append(med(floor["times"]["mm8"]))
        runs["mm6"].append(med(floor["times"]["mm6"]))
        runs["update"].append(med(floor["times"]["update"]))
        runs["mm8+update"].append(med(floor["times"]["mm8+update"]))
        last["layerwise"] = run_child("layerwise", args, **base)
        runs["layerwise"].append(med(last["layerwise"]["times"]))
        last["lw-adam"] = run_child("layerwise", args, optimizer="adam", **base)
        runs["lw_adam"].append(med(last["lw-adam"]["times"]))
        last["numpy"] = run_child("numpy", args, **base)
        runs["numpy"].append(med(last["numpy"]["times"]))
        if has_torch:
            last["pytorch"] = run_child("torch", args, threads=threads, **base)
            runs["pytorch"].append(med(last["pytorch"]["times"]))
            runs["torch_mm8"].append(med(run_child("torch_floor", args, n=n_train, threads=threads, **base)["times"]))
        sys.stdout.flush()
        print(f"  repeat {r + 1}/{args.repeats}: " + "  ".join(f"{k} {v[-1]:.3f}s" for k, v in runs.items() if v), file=sys.stderr)
    m = {k: med(v) for k, v in runs.items() if v}
    out["seconds_per_epoch"], out["runs"] = m, runs
    out["ratios"] = {"layerwise/floor": m["layerwise"] / m["mm8"], "layerwise/pytorch": m["layerwise"] / m["pytorch"] if has_torch else None}
    out["ratios"]["numpy/floor"] = m["numpy"] / m["mm8"]
    cols = [("mm8", "floor 8-mm"), ("mm6", "floor 6-mm"), ("layerwise", "layerwise"), ("numpy", "numpy-mlp"),
            ("pytorch", "pytorch")]
    print(f"{f'seconds per epoch (median of {args.repeats})':34}" + "".join(f"{h:>12}" for _, h in cols))
    print(f"{'':34}" + "".join(f"{m[k]:>12.3f}" if k in m else f"{'skipped':>12}" for k, _ in cols))
    best = {k: min(v) for k, v in runs.items() if v}
    print(f"{'fastest run (noise check)':34}" + "".join(f"{best[k]:>12.3f}" if k in best else "" for k, _ in cols))
    for k, _ in cols:
        if runs[k]:
            print(f"  {k:10} runs: " + ", ".join(f"{t:.3f}" for t in runs[k]))
    for label, f in (("median", m), ("fastest", best)):
        print(f"{label:>8}: layerwise / floor = {f['layerwise'] / f['mm8']:.2f}x"
              + (f"   layerwise / pytorch = {f['layerwise'] / f['pytorch']:.2f}x" if has_torch else "")
              + f"   numpy-mlp / floor = {f['numpy'] / f['mm8']:.2f}x")
    print("(floor = the 8 matrix products a step needs, 3 forward + 3 weight grads + 2 input grads, so 1.00x = no "
          f"cost beyond BLAS; the 6-mm line drops the input grads; layerwise spends "
          f"{100 * (1 - m['mm8'] / m['layerwise']):.0f}% of its epoch outside those products)")
    print(f"layerwise with Adam (lr {ADAM_LR}): {m['lw_adam']:.3f}s per epoch (median; fastest {best['lw_adam']:.3f}s) "
          f"= {m['lw_adam'] / m['mm8']:.2f}x floor, {m['lw_adam'] / m['layerwise']:.2f}x layerwise with SGD")
    out["ratios"]["lw_adam/floor"] = m["lw_adam"] / m["mm8"]
    print("(numpy-mlp = scripts/numpy_baseline.py, a minimal hand-written NumPy loop of the same model, for scale)")
    print(f"numpy BLAS in the timed children: {describe_pools(last['layerwise']['pools'])}")
    if not last["layerwise"]["order_ok"]:
        print("WARNING: Batches no longer draws one rng.permutation per epoch: pytorch saw a different data order")
    out["budget"] = budget(m, has_torch)
    bench_layers(args, base, m, out)

    # accuracy from the same init and data order
    print(f"\ntest accuracy after {args.epochs} epoch(s), same init and data order (numpy-mlp: its own):")
    for name, res in last.items():
        losses = res.get("train_loss")
        print(f"  {name:10} {100 * res['accuracy']:.2f}%" + ("   train loss per epoch " + ", ".join(f"{x:.4f}" for x in losses) if losses else ""))
    if has_torch:
        gap = 100 * (last["layerwise"]["accuracy"] - last["pytorch"]["accuracy"])
        print(f"  difference {gap:+.2f} points (different BLAS summation orders: expect a few tenths)")
    out["accuracy"] = {k: v["accuracy"] for k, v in last.items()}
    out["train_loss"] = {k: v["train_loss"] for k, v in last.items() if "train_loss" in v}


def bench_layers(args, base, m, out):
    """Seconds per epoch with Dropout + BatchNorm in the benchmark model, next to the plain one."""
    times = [med(run_child("layerwise", args, variant="dropout+batchnorm", **base)["times"]) for _ in range(args.repeats)]
    t = med(times)
    out["seconds_per_epoch"]["layerwise_dropout_batchnorm"] = t
    print(f"\nwith Dropout + BatchNorm ({', '.join(s['type'] for s in layer_specs(512, 'dropout+batchnorm'))}):")
    print(f"  layerwise {t:.3f}s per epoch (median of {args.repeats}: {', '.join(f'{x:.3f}' for x in times)}) "
          f"= {t / m['layerwise']:.2f}x the plain model's {m['layerwise']:.3f}s, {t / m['mm8']:.2f}x the floor")


def budget(m, has_torch):
    """What the issue's two targets leave for everything that is not a matrix product, next to the
    one cost no trainer can skip: the optimizer update (its time alone, measured in the floor child)."""
    floor, update = m["mm8"], m["update"]
    out = {"update": update, "update/floor": update / floor, "floor_target": 1.25 * floor}
    print(f"\nbudget per epoch beyond the floor's {floor:.3f}s (the update alone, SGD.step x 430: {update:.3f}s "
          f"= {100 * update / floor:.0f}% of the floor):")
    print(f"  layerwise <= 1.25x floor  = {1.25 * floor:.3f}s: leaves {0.25 * floor:.3f}s for update, ReLU, bias, "
          f"loss and gathers; now {m['layerwise'] - floor:.3f}s")
    both = m["mm8+update"]
    out.update({"mm8+update": both, "mm8+update/floor": both / floor})
    print(f"  the 8 products with SGD.step after each step, nothing else: {both:.3f}s = {both / floor:.2f}x floor "
          f"(a trainer that skipped ReLU, loss and batching would still be there)")
    if has_torch:
        target = 0.7 * m["pytorch"]
        out.update(pytorch_target=target, torch_mm8=m["torch_mm8"], pytorch_target_over_floor=target / floor)
        print(f"  layerwise <= 0.7x pytorch = {target:.3f}s = {target / floor:.2f}x floor: leaves {target - floor:.3f}s; "
              f"now {m['layerwise'] - floor:.3f}s")
        print(f"  (pytorch's own 8 products through torch.mm take {m['torch_mm8']:.3f}s = {m['torch_mm8'] / floor:.2f}x "
              f"numpy's, so pytorch runs at {m['pytorch'] / m['torch_mm8']:.2f}x its own floor)")
    return out


def bench_scaling(args, has_torch, threads, out):
    """Seconds per epoch over batch size and width (a fraction of an epoch each)."""
    frac, reps = args.scale_fraction, args.scale_repeats
    print(f"\nscaling: seconds per epoch, fastest of {reps} run(s) (too few for a median; bursts of noise "
          f"only slow runs down), each over the first {100 * frac:.0f}% of an epoch after 3 untimed warm-up "
          f"steps, scaled to a full epoch")
    print(f"{'model':22}{'batch':>6}{'layerwise':>11}{'pytorch':>9}{'lw/pt':>7}")
    out["scaling"] = []
    for hidden, batch in [(512, 32), (512, 128), (512, 512), (256, 128), (1024, 128)]:
        cfg = dict(hidden=hidden, batch=batch, epochs=1, fraction=frac, warmup=True)
        t = {"layerwise": [], "pytorch": []}
        for _ in range(reps):
            t["layerwise"].append(run_child("layerwise", args, **cfg)["times"][0] / frac)
            if has_torch:
                t["pytorch"].append(run_child("torch", args, threads=threads, **cfg)["times"][0] / frac)
        lw, pt = min(t["layerwise"]), (min(t["pytorch"]) if has_torch else None)
        out["scaling"].append({"hidden": hidden, "batch": batch, "layerwise": lw, "pytorch": pt, "runs": t})
        model = f"784-{hidden}-{hidden // 2}-10"
        print(f"{model:22}{batch:>6}{lw:>11.3f}" + (f"{pt:>9.3f}{lw / pt:>6.2f}x" if pt else "  skipped"))


def bench_cli(args, out):
    """The CLI as a user runs it: `--help` start-up, a full `train`."""
    exe = shutil.which("layerwise")
    cli = [exe] if exe else [sys.executable, "-c", "from layerwise.cli import main; main()"]
    helps = wall_times(cli + ["--help"], child_env(args.keep_env))
    bare = wall_times([sys.executable, "-c", "pass"], child_env(args.keep_env))
    out["help_seconds"], out["python_seconds"] = med(helps), med(bare)
    print(f"\n`layerwise --help` start-up: {med(helps):.3f}s (median of 5; `python -c pass` takes {med(bare):.3f}s)")
    if not args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = cli + ["train", str(ROOT / "configs/mnist.yaml"), "-s", f"data.root={args.data}", "-s", f"output={tmp}/run"]
            res = run_child("run", args, cmd=cmd)
        out["train_cli"] = res
        print(f"`layerwise train configs/mnist.yaml` (12 epochs, its own settings): wall {res['wall']:.1f}s, "
              f"peak RSS {res['rss_mb']:.0f} MB, exit {res['rc']}")
        for line in res["tail"]:
            print(f"  | {line}")


def bench_cnn_case(args, out):
    """The CNN case: conv32-pool-conv64-pool-fc128 (5x5 and 3x3 kernels) against PyTorch at 1 thread (scripts/bench_cnn.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_cnn

    cnn_args = argparse.Namespace(data=args.data, steps=args.cnn_steps, repeats=args.repeats, threads=1,
                                  kernel=[5, 3])
    out["cnn"] = bench_cnn.bench(cnn_args)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="/work/shared/data/mnist", help="directory with the MNIST IDX files")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per measurement (accuracy after these)")
    ap.add_argument("--scale-fraction", type=float, default=0.25, help="part of an epoch per scaling run")
    ap.add_argument("--scale-repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="1 repeat, 1 epoch, no scaling table, no train run")
    ap.add_argument("--keep-env", action="store_true", help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in children")
    ap.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    ap.add_argument("--cnn", action="store_true", help="only the CNN case (scripts/bench_cnn.py: LeNet-like, 1 thread)")
    ap.add_argument("--cnn-steps", type=int, default=40, help="training steps per CNN measurement")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(CHILDREN[spec["what"]](spec)))
        return
    if args.quick:
        args.repeats, args.epochs = 1, 1
    out = {"args": vars(args)}
    if args.cnn:
        bench_cnn_case(args, out)
        return

    info = out["info"] = run_child("info", args)
    has_torch = info["torch"] is not None
    threads = next((p["num_threads"] for p in info["numpy_pools"] or [] if p["internal_api"] == "openblas"), os.cpu_count())
    env_note = ", ".join(f"{v}={os.environ.get(v, '(unset)')}" for v in PINNING_VARS)
    print(f"machine   {machine()}")
    print(f"python    {sys.version.split()[0]}, numpy {info['numpy']}, torch {info['torch'] or 'not installed: pytorch column skipped'}")
    print(f"env       {env_note}; children run {'WITH them (--keep-env)' if args.keep_env else 'without them'}")
    print(f"numpy BLAS  {describe_pools(info['numpy_pools'])}")
    if has_torch:
        print(f"torch BLAS  {info['torch_blas']} (CPU capability {info['torch_cpu']}), set_num_threads({threads}) "
              f"to match numpy; pools: {describe_pools(info['torch_pools'])}")
    n_train = 60000 - VAL_SIZE
    print(f"model 784-512-256-10 ReLU, batch 128, float32, SGD lr {LR} momentum {MOMENTUM}; {n_train:,} train images, "
          f"{-(-n_train // 128)} batches/epoch; {args.epochs} epoch(s) per measurement\n")

    bench_main(args, has_torch, threads, n_train, out)
    if not args.quick:
        bench_scaling(args, has_torch, threads, out)
    bench_cli(args, out)
    print()
    bench_cnn_case(args, out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
