"""Fuzz: random mutations of the shipped configs through load_config and the builders.

Each input is a shipped config (configs/*.yaml) with a few random edits to its bytes (flips,
deletions, duplicated or swapped lines, YAML fragments such as anchors, aliases, merge keys, tags and
deep brackets) and a few random `-s` overrides (known and garbage keys, hostile values). It goes
through load_config, then the model, loss and optimizer builders and one training step on a tiny
fake batch (no real data, no training run). Every outcome must be success or a LayerwiseError with a
one-line message, never another exception; the peak RSS of the process stays under MEMORY_BOUND
(the builders see MEMORY available, so a wide model is refused, not allocated).

Run it longer by hand: `python tests/config/test_config_fuzz.py 20000 [seed]` prints what it found.
"""

import collections
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from layerwise.util import memory  # noqa: E402
from layerwise.config.data import RegressionData
from layerwise.config.schema import load_config
from layerwise.errors import LayerwiseError  # noqa: E402
from layerwise.nn.registry import build_loss, build_model
from layerwise.optim.optimizers import build_optimizer
from layerwise.run.trainer import train_step  # noqa: E402

SEED = 9
INPUTS = 2000
MEMORY = 32 << 20  # what memory.available_bytes reports to the builders
MEMORY_BOUND = 200 << 20  # peak RSS of the fuzz process (Python, NumPy and PyYAML take ~60 MiB)
ROWS = 4  # the fake batch


def without_comments(text):
    """The config without its comments (most of its bytes; the fuzz then spends its time on YAML)."""
    lines = (line.split(" #")[0].rstrip() for line in text.splitlines() if not line.lstrip().startswith("#"))
    return "\n".join(line for line in lines if line) + "\n"


SHIPPED = {path.name: without_comments(path.read_text()).encode() for path in sorted((REPO / "configs").glob("*.yaml"))}
KEYS = [
    "name", "seed", "output", "loss", "data", "data.dataset", "data.root", "data.val_size", "data.scale",
    "data.normalize", "data.mean", "data.std", "data.train_limit", "data.test_limit", "data.n_samples",
    "data.weights", "data.bias", "data.noise_std", "data.inputs", "data.low", "data.high", "data.standardize",
    "data.test_size", "model", "model.layers", "model.layers.0", "model.layers.0.out_features",
    "model.layers.1.type", "model.layers.2.in_features", "model.layers.0.init", "model.layers.0.bias",
    "model.layers.9", "optimizer", "optimizer.type", "optimizer.lr", "optimizer.momentum", "optimizer.nesterov",
    "optimizer.weight_decay", "optimizer.schedule", "train", "train.epochs", "train.batch_size",
    "train.eval_batch_size", "data.weights.0", "data.low.1", "a.b.c", "model.layers.²", "model.layers.-1",
    "model.layers.0.type.x", "", ".", "data..root", "<<", "x" * 300,
]
VALUES = [
    "0", "1", "-1", "2", "3", "10", "0.5", "1e-3", "1e308", "-1e308", "1e-45", "1e39", "1" + "0" * 30,
    "9" * 1200, ".nan", ".inf", "-.inf", "null", "~", "true", "false", "yes", "''", "x", "mse", "relu",
    "uniform", "regression", "mnist", "cosine", '"\\0"', '"\\ud800"', '"a\\udcff"', "[]", "{}", "[1, 2, 3]",
    "[0, 0, 0]", "[1e308, 1e308, 1e308]", "[-1e308, 0, 0]", "{type: linear, out_features: 5}",
    "[{type: relu}]", "[{type: linear, out_features: 1}]", "{type: tanh}", "&a [*a]", "*nope", "&a 1",
    "{<<: {lr: 0.1}}", "{<<: 3}", "? [a, b]", "!!python/object/apply:os.getcwd []", "!!binary aGVsbG8=",
    "!!set {a, b}", "2001-12-14", "0x1F", "0o17", "1_000", "190:20:30", "[[[[]]]]", "'\t'", "\x85", "\ufeff",
    "{a: [1, {b: [2, {c: 3}]}]}", "- a\n- b", "a: b: c", "[", "}", "'", '"', "|\n  text", ">-\n  folded",
]
FRAGMENTS = [
    "&a ", "*a", "<<: *a\n", "<<: ", "? ", "!!str ", "!!int ", "!!float ", "!!map ", "!!seq ", "!!python/name:os.system ",
    "[", "]", "{", "}", ",", ": ", "- ", "\t", "\n", "#", "'", '"', "|", ">", "%YAML 1.1\n", "---\n", "...\n",
    "\\", "\0", "\x85", "\u2028", "\ufeff", "\xff", "~", "1e999", "-", ".nan", "&b [*b]", "*nope",
]


def nested(depth):
    return "[" * depth + "]" * depth


def bomb(levels=9):
    items = ["a0: &a0 [" + ", ".join(["x"] * 9) + "]"]
    items += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "{" + ", ".join(items) + "}"


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """One random edit of a config's bytes."""
    lines = data.split(b"\n")
    kind = rng.randrange(9)
    pos = rng.randrange(len(data) + 1)
    if kind == 0:  # flip a byte to anything
        return data[:pos] + bytes([rng.randrange(256)]) + data[pos + 1:]
    if kind == 1:  # delete a span
        return data[:pos] + data[pos + rng.randrange(1, 40):]
    if kind == 2:  # duplicate a line
        i = rng.randrange(len(lines))
        return b"\n".join(lines[: i + 1] + [lines[i]] + lines[i + 1:])
    if kind == 3:  # swap two lines
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return b"\n".join(lines)
    if kind == 4:  # insert a YAML fragment
        return data[:pos] + rng.choice(FRAGMENTS).encode("utf-8", "surrogatepass") + data[pos:]
    if kind == 5:  # a value becomes deep brackets
        return data[:pos] + nested(rng.choice([5, 31, 32, 40, 500, 3000])).encode() + data[pos:]
    if kind == 6:  # an alias bomb or a recursive alias appended
        return data + rng.choice([f"\nz: {bomb()}\n", "\nz: &r [*r]\n", "\nz: &r {k: *r}\n"]).encode()
    if kind == 7:  # truncate
        return data[:pos]
    # indent or dedent a line
    i = rng.randrange(len(lines))
    lines[i] = b"  " + lines[i] if rng.random() < 0.5 else lines[i].lstrip()
    return b"\n".join(lines)


def random_override(rng: random.Random) -> str:
    key = rng.choice(KEYS)
    if rng.random() < 0.05:
        key = ".".join(["a"] * rng.choice([33, 1000]))
    value = rng.choice(VALUES)
    if rng.random() < 0.05:
        value = rng.choice([nested(rng.choice([31, 32, 700])), bomb()])
    sep = "=" if rng.random() < 0.97 else ""
    return f"{key}{sep}{value}"


def exercise(cfg):
    """The builders and one step on a tiny fake batch, as training would run them."""
    regression = isinstance(cfg.data, RegressionData)
    task, width, outputs = ("regression", len(cfg.data.weights), 1) if regression else ("classification", 784, 10)
    model = build_model(cfg.model.layers, width, outputs, rng=np.random.default_rng(cfg.seed), rows=ROWS)
    loss = build_loss(cfg.loss, task)
    optimizer = build_optimizer(cfg.optimizer, model)
    x = np.random.default_rng(0).standard_normal((ROWS, width)).astype(np.float32)
    y = np.zeros((ROWS, 1), np.float32) if regression else np.arange(ROWS) % 10
    with np.errstate(all="ignore"):
        train_step(model, loss, optimizer, x, y)


def fuzz(directory, inputs=INPUTS, seed=SEED):
    """Run `inputs` mutated configs; returns (outcome counts, unexpected failures)."""
    rng = random.Random(seed)
    outcomes, failures = collections.Counter(), []
    original = memory.available_bytes
    memory.available_bytes = lambda: MEMORY
    try:
        for i in range(inputs):
            name, data = rng.choice(list(SHIPPED.items()))
            for _ in range(rng.choice([0, 1, 1, 2, 3])):
                data = mutate_bytes(data, rng)
            overrides = [random_override(rng) for _ in range(rng.choice([0, 0, 1, 2, 3]))]
            path = Path(directory) / f"fuzz-{i % 7}.yaml"
            path.write_bytes(data)
            try:
                exercise(load_config(path, overrides))
                outcomes["accepted"] += 1
            except LayerwiseError as e:
                outcomes[type(e).__name__] += 1
                if "\n" in str(e):
                    failures.append(f"{name} {overrides!r} {data[:300]!r}: message of several lines: {e}")
            except Exception as e:  # noqa: BLE001 - what the fuzz is looking for
                failures.append(f"{name} {overrides!r} {data[:300]!r}: {type(e).__name__}: {e}")
    finally:
        memory.available_bytes = original
    return outcomes, failures


def test_mutated_configs_end_in_success_or_a_layerwise_error():
    """The fuzz runs in a child process so that its peak RSS is its own (VmHWM of a fresh process)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, __file__, str(INPUTS), str(SEED)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.splitlines()[-1])
    assert not report["failures"], "\n".join(report["failures"][:5])
    outcomes = report["outcomes"]
    assert sum(outcomes.values()) == INPUTS
    # The mutations reach past parsing: inputs are both accepted and refused.
    # (how many are accepted depends on the shipped configs it mutates: about 4 % with today's 10)
    assert outcomes["accepted"] > INPUTS // 50 and outcomes["ConfigError"] > INPUTS // 4, outcomes
    assert report["peak_rss"] < MEMORY_BOUND, f"peak RSS {report['peak_rss'] / 2**20:.0f} MiB"


if __name__ == "__main__":
    import resource
    import tempfile
    import time

    n = int(sys.argv[1]) if len(sys.argv) > 1 else INPUTS
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else SEED
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        outcomes, failures = fuzz(tmp, n, seed)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    # On Linux ru_maxrss survives fork + exec: a child of a pytest process that has imported torch
    # (a cross-check module, at collection) would report the parent's peak. VmHWM is this process's own.
    status = Path("/proc/self/status")
    if status.is_file():
        hwm = [line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM:")]
        peak = int(hwm[0]) * 1024 if hwm else peak
    print(f"{n} inputs (seed {seed}) in {seconds:.1f}s, peak RSS {peak / 2**20:.0f} MiB: {dict(outcomes)}; "
          f"{len(failures)} unexpected exceptions", file=sys.stderr)
    for failure in failures[:20]:
        print(failure, file=sys.stderr)
    print(json.dumps({"outcomes": outcomes, "failures": failures, "peak_rss": peak}))
