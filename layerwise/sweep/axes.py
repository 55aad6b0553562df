"""What a sweep varies, from `-s` overrides: a comma at the top level of a value makes a grid axis
(`-s optimizer.lr=0.01,0.05`; `[1,2]` stays one list value, as in Hydra), a sampler makes a random one
(`loguniform(1e-4,1e-1)`, `uniform(a,b)`, `choice(a,b,c)`, `int(a,b)`, drawn with --samples N), and
--seeds K adds a seed axis. The trials are the cartesian product of the grid axes (times the seeds),
or N random draws."""

import itertools
import math
import re

import numpy as np

from ..errors import ConfigError

SAMPLER = re.compile(r"^(loguniform|uniform|choice|int)\((.*)\)$")
OPEN, CLOSE = "[{(", "]})"


def split_top_level(text):
    """`a,b,[c,d]` -> ["a", "b", "[c,d]"]: commas inside brackets or quotes do not split."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in OPEN:
            depth += 1
        elif ch in CLOSE:
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def parse_axes(overrides):
    """(fixed overrides, grid axes {key: [value text]}, sampled axes {key: (kind, [args])})."""
    fixed, grid, sampled = [], {}, {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key.path=value, e.g. optimizer.lr=0.01,0.05")
        if key in grid or key in sampled:
            raise ConfigError(f"override {item!r}: {key} is swept twice")
        match = SAMPLER.match(value.strip())
        if match:
            sampled[key] = _sampler(key, match.group(1), split_top_level(match.group(2)))
            continue
        values = split_top_level(value)
        if len(values) > 1:
            if any(v == "" for v in values):
                raise ConfigError(f"override {item!r}: an empty value in the list")
            grid[key] = values
        else:
            fixed.append(item)
    return fixed, grid, sampled


def _sampler(key, kind, args):
    if kind == "choice":
        if len(args) < 1 or "" in args:
            raise ConfigError(f"-s {key}=choice(...): give one or more values, e.g. choice(32,64)")
        return kind, args
    try:
        low, high = (float(a) for a in args) if len(args) == 2 else (None, None)
    except ValueError:
        low = None
    if low is None or not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ConfigError(f"-s {key}={kind}(...): expected two numbers, low < high, e.g. {kind}(1e-4,1e-1)")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"-s {key}=loguniform({args[0]},{args[1]}): both bounds must be > 0")
    if kind == "int" and not (low.is_integer() and high.is_integer()):
        raise ConfigError(f"-s {key}=int({args[0]},{args[1]}): expected whole numbers")
    return kind, [low, high]


def _draw(rng, kind, args):
    if kind == "choice":
        return args[int(rng.integers(len(args)))]
    low, high = args
    if kind == "int":
        return str(int(rng.integers(int(low), int(high) + 1)))  # both ends included
    value = math.exp(rng.uniform(math.log(low), math.log(high))) if kind == "loguniform" else rng.uniform(low, high)
    return f"{value:.6g}"


def make_trials(grid, sampled, seeds=None, samples=None, sample_seed=0):
    """[{"id", "overrides": {key: value text}}], in a fixed order (ids t000, t001, ...)."""
    if sampled and not samples:
        raise ConfigError(f"-s {next(iter(sampled))}=... draws random values: give --samples N")
    if samples:
        rng = np.random.default_rng(sample_seed)
        combos = []
        for _ in range(samples):
            combo = {key: values[int(rng.integers(len(values)))] for key, values in grid.items()}
            combo.update({key: _draw(rng, kind, args) for key, (kind, args) in sampled.items()})
            combos.append(combo)
    else:
        combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    if seeds:
        combos = [{**combo, "seed": str(s)} for combo in combos for s in range(seeds)]
    width = max(3, len(str(len(combos) - 1)))
    return [{"id": f"t{i:0{width}d}", "overrides": combo} for i, combo in enumerate(combos)]
