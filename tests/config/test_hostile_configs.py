"""Hostile configs and data through the `layerwise` CLI (issue 9, config and data side).

Same house pattern as test_bad_inputs.py: one table, one row per input; each exits with its
documented code, prints exactly one `error:` line on stderr naming the problem, no traceback, and
creates, changes or removes nothing. The memory the checks compare against is pinned (MEMORY) so
the rows do not depend on the machine. Then unit tests of what the table cannot show: merge keys
work, the bounds hold for plain data too, and the limits are exact.
"""

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from layerwise.util import memory
from layerwise.cli import main
from layerwise.config.schema import apply_overrides, load_config
from layerwise.config.yaml_loader import MAX_DEPTH, MAX_VALUES, parse_yaml
from layerwise.data.idx import write_idx
from layerwise.data.mnist import FILES
from layerwise.errors import ConfigError
from test_bad_inputs import MNIST, N_TEST, N_TRAIN, REGRESSION, patched, write_tiny_mnist

MEMORY = 256 << 20  # what memory.available_bytes reports during these tests
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NOBODY = 65534  # root ignores file permissions: permission rows then run as this user


@dataclass(frozen=True)
class Case:
    setup: Callable  # (tmp_path, monkeypatch) -> command line
    code: int
    fragments: tuple
    memory: int = MEMORY
    unprivileged: bool = False  # needs permissions enforced: as root, runs in a child as NOBODY


def case(id, setup, code, *fragments, **kwargs):
    return pytest.param(Case(setup, code, fragments, **kwargs), id=id)


# --- setups ------------------------------------------------------------------------------------


def text(content, *args, command="train"):
    """exp.yaml holds `content` verbatim."""

    def setup(tmp, monkeypatch):
        (tmp / "exp.yaml").write_text(content)
        return [command, "exp.yaml", *args]

    return setup


def config(values=None, *args, base=REGRESSION):
    """exp.yaml is `base` with dotted `values` set."""

    def setup(tmp, monkeypatch):
        (tmp / "exp.yaml").write_text(yaml.safe_dump(patched(base, values), sort_keys=False))
        return ["train", "exp.yaml", *args]

    return setup


def mnist(values=None, *args, damage=None, root=None, env=None):
    """Tiny MNIST in tmp/mnist, then `damage(dir)`; data.root is tmp/mnist unless `root` says else
    (None in `root` means: no data.root, $LAYERWISE_DATA decides)."""

    def setup(tmp, monkeypatch):
        write_tiny_mnist(tmp / "mnist")
        if damage:
            damage(tmp / "mnist")
        chosen = str(tmp / "mnist") if root is None else root(tmp)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value(tmp))
        (tmp / "exp.yaml").write_text(yaml.safe_dump(patched(MNIST, {"data.root": chosen, **(values or {})})))
        return ["train", "exp.yaml", "-s", "data.val_size=10", *args]

    return setup


def images(name, shape):
    return lambda d: write_idx(d / f"{FILES[name]}.gz", np.zeros(shape, dtype=np.uint8))


def labels(name, n):
    return lambda d: write_idx(d / f"{FILES[name]}.gz", np.zeros(n, dtype=np.uint8))


def both(*damages):
    return lambda d: [damage(d) for damage in damages]


def alias_bomb(levels=12, width=10, flow=False):
    """`a0: &a0 [x, x, ...]`, `a1: &a1 [*a0, *a0, ...]`, ...: 11 levels of 10 expand to 10**12 values."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "{" + ", ".join(lines) + "}" if flow else "\n".join(lines) + "\n"


def nested(depth):
    return "[" * depth + "]" * depth


def block_nested(depth):
    return "".join("  " * i + "a:\n" for i in range(depth)) + "  " * depth + "b: 1\n"


def cache(file_mode=None, dir_mode=None):
    """No data.root and an empty $LAYERWISE_DATA: the user cache (XDG_CACHE_HOME in tmp) holds a
    train-images file; the file or the cache directory is then made unreadable."""

    def setup(tmp, monkeypatch):
        monkeypatch.delenv("LAYERWISE_DATA")
        directory = tmp / "env" / "cache" / "layerwise" / "mnist"
        directory.mkdir(parents=True)
        (directory / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b whatever")
        if file_mode is not None:
            (directory / "train-images-idx3-ubyte.gz").chmod(file_mode)
        if dir_mode is not None:
            directory.chmod(dir_mode)
        (tmp / "exp.yaml").write_text(yaml.safe_dump(MNIST))
        return ["train", "exp.yaml"]

    return setup


def chmod(mode, name=None):
    return lambda d: (d / name if name else d).chmod(mode)


LONG = "d" * 300  # one path component over the usual 255-byte limit
REG_TOTAL = REGRESSION["data"]["n_samples"]

# --- the table ---------------------------------------------------------------------------------

CASES = [
    # 1. what a config may expand to
    case("alias-bomb-file", text(alias_bomb()), 2, "exp.yaml", "line 5", f"more than {MAX_VALUES:,} values"),
    case("alias-bomb-override", config(None, "-s", "seed=" + alias_bomb(flow=True)), 2,
         "override 'seed={a0: &a0", f"more than {MAX_VALUES:,} values"),
    case("alias-bomb-through-merge-keys",
         text("m0: &m0 {" + ", ".join(f"k{i}: [{', '.join(['x'] * 10)}]" for i in range(10)) + "}\n"
              + "".join(f"m{i}: &m{i} {{<<: *m{i - 1}, " + ", ".join(f"j{j}: *m{i - 1}" for j in range(10)) + "}\n"
                        for i in range(1, 8))), 2,
         "exp.yaml", f"more than {MAX_VALUES:,} values"),
    case("config-file-of-5-mib", text("# " + "x" * (5 << 20) + "\nseed: 0\n"), 2, "exp.yaml", "4,194,304 characters"),
    case("recursive-alias", text("model: &m {layers: [*m]}\n"), 2, "exp.yaml", "*m is inside the node it names"),
    # 2. parsing holes: depth, complex keys, merge keys, non-ASCII digits, huge literals
    case("nesting-1000-flow", text("seed: " + nested(1000) + "\n"), 2, "exp.yaml", f"deeper than {MAX_DEPTH} levels"),
    case("nesting-600-block", text(block_nested(600)), 2, "exp.yaml", f"deeper than {MAX_DEPTH} levels"),
    case("nesting-1000-block-sequence", text("seed:\n" + "- " * 1000 + "x\n"), 2, "exp.yaml", f"deeper than {MAX_DEPTH} levels"),
    case("nesting-through-aliases",
         text("a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 40))), 2,
         "exp.yaml", f"deeper than {MAX_DEPTH} levels"),
    case("nesting-1000-override", config(None, "-s", "seed=" + nested(1000)), 2,
         "override 'seed=[[[", f"deeper than {MAX_DEPTH} levels"),
    case("override-key-of-1000-parts", config(None, "-s", "a." * 999 + "a=1"), 2,
         "override 'a.a.a.", "1000 parts", f"at most {MAX_DEPTH} levels"),
    case("complex-key-list", text("? [a, b]\n: 1\n"), 2, "exp.yaml", "line 1", "a key must be a name", "a list"),
    case("complex-key-mapping", text("optimizer:\n  ? {lr: 1}\n  : 2\n"), 2, "exp.yaml", "line 2", "a mapping"),
    case("duplicate-key-next-to-a-merge",
         text("base: &b {lr: 0.1}\noptimizer: {<<: *b, momentum: 0.5, momentum: 0.9}\n"), 2,
         "exp.yaml", "'momentum' appears twice"),
    case("key-tagged-as-a-mapping", text("data:\n  !!map n_samples: 2000\n"), 2,
         "exp.yaml", "line 2", "a key must be a name, received map 'n_samples'"),  # found by the fuzz test
    case("empty-tagged-integer", text("seed: !!int ''\n"), 2, "exp.yaml", "cannot read '' as int"),  # fuzz too
    case("merge-of-a-scalar", text("optimizer: {<<: 3}\n"), 2, "exp.yaml", "YAML syntax error", "for merging"),
    case("merged-key-still-validated", text("x: &x {lr: 0.1, speed: 3}\noptimizer: {<<: *x}\n"), 2,
         "exp.yaml", "unknown key"),  # `x` is not a config key either; the first unknown one is named
    case("superscript-digit-index", config(None, "-s", "model.layers.².out_features=3"), 2,
         "model.layers.².out_features=3", "'²' is not an index"),
    case("arabic-indic-digit-index", config(None, "-s", "model.layers.٣.out_features=3"), 2,
         "'٣' is not an index"),
    case("integer-of-5000-digits", config(None, "-s", "model.layers.0.out_features=" + "9" * 5000), 2,
         "override", "integer of 5,000 characters"),
    # 3. sizes too big to allocate: refused before allocating, with the memory they would need
    case("out-features-1e21-float", config({"model.layers.0.out_features": 1e21}), 2,
         "model.layers[0].out_features", "expected int"),
    case("out-features-10-to-21", config(None, "-s", "model.layers.0.out_features=" + "1" + "0" * 21), 2,
         "model.layers", "parameters", "would need", "more than the 256.0 MiB available", "out_features"),
    case("out-features-just-too-big", config({"model.layers.0.out_features": 3_000_000}), 2,
         "model.layers", "15,000,001 parameters", "would need", "256.0 MiB available"),
    case("hidden-width-too-big-for-the-batch", config({"model.layers.0.out_features": 1_000_000}), 2,
         "model.layers", "40 examples per forward pass", "would need"),  # the parameters alone would fit
    case("n-samples-1e30-float", config({"data.n_samples": 1e30}), 2, "data.n_samples", "an integer"),
    case("n-samples-10-to-30", config(None, "-s", "data.n_samples=1" + "0" * 30), 2,
         "data.n_samples", "would need", "256.0 MiB available"),
    case("weights-too-many", config({"data.weights": [1.0] * 5000, "data.n_samples": 5000}), 2,
         "data.n_samples", "5,000 features", "would need"),
    case("uniform-bounds-1e308", config({"data.inputs": "uniform", "data.low": [-1e308, 0, 0],
                                         "data.high": [1e308, 1, 1]}), 2,
         "data.high", "finite"),
    case("mnist-too-big-for-memory", mnist(), 2, "data:", f"{N_TRAIN + N_TEST} images", "would need",
         memory=1000),
    # 4. zero-size data
    case("idx-with-0-train-images", mnist(damage=both(images("train_images", (0, 28, 28)),
                                                       labels("train_labels", 0))), 1,
         "train-images-idx3-ubyte.gz", "no pixels", "0 images"),
    case("idx-with-0-test-images", mnist(damage=both(images("test_images", (0, 28, 28)),
                                                      labels("test_labels", 0))), 1,
         "t10k-images-idx3-ubyte.gz", "no pixels"),
    case("idx-images-0x0", mnist(damage=images("train_images", (N_TRAIN, 0, 0))), 1,
         "train-images-idx3-ubyte.gz", "no pixels", "0x0"),
    case("idx-images-0x28", mnist(damage=both(images("train_images", (N_TRAIN, 0, 28)),
                                              images("test_images", (N_TEST, 0, 28)))), 1,
         "train-images-idx3-ubyte.gz", "0x28"),
    # 5. paths: too long, NUL, surrogates, unreadable
    case("data-root-name-too-long", mnist(root=lambda tmp: str(tmp / LONG)), 1,
         "data.root", "name too long", "(", "characters)"),
    case("layerwise-data-name-too-long", mnist(root=lambda tmp: None, env={"LAYERWISE_DATA": lambda tmp: str(tmp / LONG)}),
         1, "$LAYERWISE_DATA", "name too long"),
    case("data-root-nul", mnist(None, "-s", 'data.root="mnist\\0x"'), 2, "data.root", "NUL"),
    case("output-nul", config(None, "-s", 'output="run\\0x"'), 2, "output", "NUL"),
    case("name-lone-surrogate", config(None, "-s", 'name="\\ud800"'), 2, "name", "'\\ud800'", "unpaired surrogate"),
    case("layer-key-lone-surrogate", config(None, "-s", 'model.layers.0={type: linear, "\\udc80": 1}'), 2,
         "model.layers[0]", "key '\\udc80'", "unpaired surrogate"),
    case("file-value-lone-surrogate", text('loss: "mse\\udfff"\n'), 2, "exp.yaml", "loss", "unpaired surrogate"),
    case("data-root-unreadable", mnist(damage=chmod(0)), 1,
         "data.root", "mnist", "permission denied", unprivileged=True),
    case("data-file-unreadable", mnist(damage=chmod(0, "train-labels-idx1-ubyte.gz")), 1,
         "train-labels-idx1-ubyte.gz", "Permission denied", unprivileged=True),
    case("cache-dir-unreadable", cache(dir_mode=0), 1, "the MNIST cache", "permission denied", unprivileged=True),
    case("cache-file-unreadable", cache(file_mode=0), 1,
         "the MNIST cache", "train-images-idx3-ubyte.gz", "permission denied", unprivileged=True),
    # 12. data made non-finite by the normalisation: the data's constants, not the learning rate
    case("mnist-std-1e-45", mnist(None, "-s", "data.std=1e-45"), 2, "data.std", "1e-45", "overflows float32"),
    case("mnist-mean-1e39", mnist(None, "-s", "data.mean=1e39"), 2, "data.mean", "overflows float32"),
]


# --- the test ----------------------------------------------------------------------------------


def invoke(args, unprivileged):
    """(exit code, output, stderr, exception) of the CLI; as root, in a forked child running as
    NOBODY (everything is imported already, and the child only reports back through a pipe)."""
    if not (unprivileged and AS_ROOT):
        result = CliRunner().invoke(main, args, catch_exceptions=True)  # click 8.2+: output has both streams
        return result.exit_code, result.output, result.stderr, result.exception
    import json

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            result = CliRunner().invoke(main, args, catch_exceptions=True)
            exc = None if result.exception is None or isinstance(result.exception, SystemExit) else repr(result.exception)
            with os.fdopen(write, "w") as f:
                json.dump([result.exit_code, result.output, result.stderr, exc], f)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        code, output, stderr, exc = json.load(f)
    os.waitpid(pid, 0)
    return code, output, stderr, (RuntimeError(exc) if exc else None)


def let_nobody_in(tmp_path):
    """Let NOBODY traverse (not list) tmp_path and pytest's directories above it, as a user's own
    directories would be: the only unreadable part is then the one the row made unreadable."""
    for directory in (tmp_path, *tmp_path.parents):
        directory.chmod(directory.stat().st_mode | 0o011)
        if directory.name.startswith("pytest-of-") or directory.parent == directory.parent.parent:
            break


def snapshot(root):
    """path -> (size, mtime_ns, sha256 or None if unreadable) for every file under root; "dir" for
    directories (a row's unreadable file or directory is compared by what can be seen of it)."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            files[rel] = "dir"
        else:
            stat = path.stat()
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except PermissionError:
                digest = None
            files[rel] = (stat.st_size, stat.st_mtime_ns, digest)
    return files


@pytest.mark.parametrize("case", CASES)
def test_hostile_input(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "env" / "data").mkdir(parents=True)
    monkeypatch.setenv("LAYERWISE_DATA", str(tmp_path / "env" / "data"))  # empty: never the real data
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "env" / "cache"))
    monkeypatch.setattr(memory, "available_bytes", lambda: case.memory)

    def no_download(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", no_download)
    args = case.setup(tmp_path, monkeypatch)
    if case.unprivileged and AS_ROOT:
        let_nobody_in(tmp_path)
    before = snapshot(tmp_path)

    code, output, stderr, exception = invoke(args, case.unprivileged)

    assert code == case.code, output
    assert exception is None or isinstance(exception, SystemExit), repr(exception)
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1, output
    line = errors[0]
    assert line.startswith("error: ") and line in stderr, output
    assert len(line) < 600, line  # one readable line, not the hostile input echoed back
    for fragment in case.fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert snapshot(tmp_path) == before


# --- merge keys, and the bounds on plain data --------------------------------------------------


def test_merge_keys_work_like_safe_load_and_written_keys_win(tmp_path):
    text = """\
defaults: &opt {type: sgd, lr: 0.1, momentum: 0.5}
tiny: &tiny {epochs: 2}
optimizer:
  <<: *opt
  momentum: 0.9
train: {<<: [*tiny, {batch_size: 8}]}
"""
    raw = parse_yaml(text)
    assert raw == yaml.safe_load(text)
    assert raw["optimizer"] == {"type": "sgd", "lr": 0.1, "momentum": 0.9}
    # A merge list with disjoint keys (which of two mappings wins a shared key changed in PyYAML 6.0.4).
    assert raw["train"] == {"epochs": 2, "batch_size": 8}
    path = tmp_path / "exp.yaml"
    path.write_text("model:\n  layers:\n    - &lin {type: linear, out_features: 10, init: he}\n"
                    "    - {type: relu}\n    - {<<: *lin, init: xavier}\n")
    cfg = load_config(path, ["model.layers.2.out_features=3"])  # an override reaches a merged key
    assert cfg.model.layers[0] == {"type": "linear", "out_features": 10, "init": "he"}
    assert cfg.model.layers[2] == {"type": "linear", "out_features": 3, "init": "xavier"}


@pytest.mark.parametrize("width, levels", [(10, 4), (10, 5), (2, 14), (2, 15)])
def test_the_expansion_bound_is_exact(width, levels):
    """Each level's list holds `width` aliases of the one before: refused exactly when the values it
    expands to (every list, scalar and key, the top mapping) pass MAX_VALUES, before anything is built."""
    sizes = [1 + width]  # a0: the list and its scalars
    for _ in range(1, levels):
        sizes.append(1 + width * sizes[-1])
    total = 1 + levels + sum(sizes)  # the top mapping, one key per level
    if total > MAX_VALUES:
        with pytest.raises(yaml.YAMLError, match="more than"):
            parse_yaml(alias_bomb(levels, width))
    else:
        assert len(parse_yaml(alias_bomb(levels, width))) == levels


def test_depth_bound_is_exact():
    assert parse_yaml("a: " + nested(MAX_DEPTH - 1)) == {"a": eval(nested(MAX_DEPTH - 1))}
    with pytest.raises(yaml.YAMLError, match="deeper than"):
        parse_yaml("a: " + nested(MAX_DEPTH))


def test_plain_data_is_bounded_too():
    """A checkpoint's stored config or an override result never reaches a recursive copy unbounded:
    shared lists (as an alias bomb builds) and deep nesting are refused by apply_overrides itself."""
    bomb = ["x"] * 10
    for _ in range(11):
        bomb = [bomb] * 10  # 10**12 values once expanded, a few hundred objects in memory
    with pytest.raises(ConfigError, match="more than 100,000 values"):
        apply_overrides({"seed": bomb}, [], "run/last.npz")
    deep = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ConfigError, match=f"seed.*deeper than {MAX_DEPTH}"):
        apply_overrides({"seed": deep}, [], "run/last.npz")
    with pytest.raises(ConfigError, match="NUL"):
        apply_overrides({"data": {"root": "a\0b"}}, [], "run/last.npz")


def test_memory_estimate_counts_what_training_allocates(monkeypatch):
    """The registry refuses the model a byte above its estimate and builds it a byte below."""
    from layerwise.nn.registry import build_model

    specs = [{"type": "linear", "out_features": 50}, {"type": "relu"}, {"type": "linear", "out_features": 2}]
    parameters, activations, rows = 3 * 50 + 50 + 50 * 2 + 2, 50 + 50 + 2, 16
    need = 4 * (memory.PARAMETER_COPIES * parameters + 2 * rows * activations)
    monkeypatch.setattr(memory, "available_bytes", lambda: need - 1)
    with pytest.raises(ConfigError, match=f"{parameters:,} parameters"):
        build_model(specs, 3, 2, rows=rows)
    monkeypatch.setattr(memory, "available_bytes", lambda: need)
    assert build_model(specs, 3, 2, rows=rows).num_parameters() == parameters


def test_available_memory_is_a_positive_number():
    assert memory.available_bytes() > 0
    assert memory.format_bytes(1536) == "1.5 KiB" and memory.format_bytes(10 ** 5000).startswith("over 2^")
