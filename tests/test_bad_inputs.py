"""Bad inputs through the `layerwise` CLI: each exits non-zero with one error line and writes nothing.

One table, one row per bad input. A row's setup writes what the case needs into tmp_path (a config,
tiny MNIST IDX files, a copy of a trained run) and returns the command line. The test then snapshots
every file under tmp_path, runs the command through CliRunner with tmp_path as the working directory,
and checks: the expected exit code; exactly one `error:` line (click's `Error:` for usage errors), on
stderr, naming the problem; no traceback and no crash; and no file created, changed or removed.

Nothing outside tmp_path is read or written: $LAYERWISE_DATA points at an empty directory,
$XDG_CACHE_HOME into tmp_path, every MNIST case names its data.root, and urlopen refuses any host but
127.0.0.1. The one cache case swaps the MNIST mirrors for a local server that answers 404.
"""

import copy
import functools
import gzip
import hashlib
import http.server
import json
import shutil
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from layerwise.cli import main
from layerwise.data.idx import write_idx
from layerwise.data.mnist import FILES

# y = 3 x1 + 4 x2 + 2 x3 + 5: a 3-4-1 net, two epochs, so training the shared run takes milliseconds.
REGRESSION = {
    "seed": 0,
    "data": {"dataset": "regression", "n_samples": 60, "weights": [3.0, 4.0, 2.0], "bias": 5.0,
             "val_size": 10, "test_size": 10},
    "model": {"layers": [{"type": "linear", "out_features": 4}, {"type": "relu"},
                         {"type": "linear", "out_features": 1}]},
    "loss": "mse",
    "optimizer": {"lr": 0.01, "momentum": 0.9},
    "train": {"epochs": 2, "batch_size": 16},
}
# 784 -> 10 softmax regression on tiny MNIST files; data.root is filled in by the setup.
MNIST = {
    "seed": 0,
    "data": {"dataset": "mnist", "root": None},
    "model": {"layers": [{"type": "linear", "out_features": 10}]},
    "loss": "softmax_cross_entropy",
    "optimizer": {"lr": 0.1},
    "train": {"epochs": 1, "batch_size": 16},
}
N_TRAIN, N_TEST = 40, 10
MARKER = "UNPICKLED"  # a planted pickle creates this file in tmp_path if anything ever unpickles it


@dataclass
class Env:
    """What a row's setup may use: its tmp_path (also the cwd), monkeypatch, the trained run, a 404 URL."""

    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    trained: Path
    not_found_url: str


@dataclass(frozen=True)
class Case:
    setup: Callable[[Env], list]  # writes files, returns the command line
    code: int  # expected exit code
    fragments: tuple  # each must be in the error line
    usage: bool = False  # a click usage error ("Error: ..."), not a LayerwiseError ("error: ...")
    removed: tuple = ()  # files (relative to tmp_path) the command is expected to delete
    output_has: tuple = ()  # fragments expected elsewhere in the output (e.g. progress messages)
    absent: tuple = ()  # fragments the error line must not contain


def case(id, setup, code, *fragments, **kwargs):
    return pytest.param(Case(setup, code, fragments, **kwargs), id=id)


# --- setups ------------------------------------------------------------------------------------


def patched(base, values):
    """A deep copy of `base` with each dotted key ("model.layers.0.type") set to its value."""
    raw = copy.deepcopy(base)
    for dotted, value in (values or {}).items():
        *path, last = dotted.split(".")
        node = raw
        for part in path:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        node[int(last) if isinstance(node, list) else last] = value
    return raw


def write_config(env, raw=None, text=None, name="exp.yaml"):
    path = env.tmp / name
    path.write_text(text if text is not None else yaml.safe_dump(raw, sort_keys=False))
    return path


def config(values=None, *args, base=REGRESSION, text=None, command="train"):
    """Setup: exp.yaml is `base` with `values` set (or `text` verbatim); runs `command exp.yaml *args`."""

    def setup(env):
        write_config(env, patched(base, values), text)
        return [command, "exp.yaml", *args]

    return setup


def write_tiny_mnist(directory):
    """The four MNIST files, gzipped, with N_TRAIN and N_TEST random 28x28 images."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, N_TRAIN, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, N_TEST, dtype=np.uint8),
    }
    directory.mkdir(parents=True)
    for key, name in FILES.items():
        write_idx(directory / f"{name}.gz", arrays[key])


def mnist(values=None, *args, damage=None, root="mnist"):
    """Setup: tiny MNIST in tmp/mnist (then `damage(dir)`), a config whose data.root is tmp/`root`."""

    def setup(env):
        write_tiny_mnist(env.tmp / "mnist")
        if damage:
            damage(env.tmp / "mnist")
        write_config(env, patched(MNIST, {"data.root": str(env.tmp / root), **(values or {})}))
        return ["train", "exp.yaml", "-s", "data.val_size=10", *args]

    return setup


def delete(name):
    return lambda d: (d / name).unlink()


def truncate(name):
    def damage(d):
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[: len(data) // 2])

    return damage


def replace_idx(name, array):
    return lambda d: write_idx(d / name, np.asarray(array, dtype=np.uint8))


def replace_gz(name, raw):
    """Replace a .gz file by a valid gzip of arbitrary bytes."""
    return lambda d: (d / name).write_bytes(gzip.compress(raw))


# IDX starts with two zero bytes; this label file starts 01 02.
BAD_MAGIC = bytes([1, 2, 8, 1]) + N_TRAIN.to_bytes(4, "big") + bytes(N_TRAIN)
# A header for (N_TEST, 28, 28) images followed by only 100 pixels.
SHORT_PAYLOAD = bytes([0, 0, 8, 3]) + np.array([N_TEST, 28, 28], ">u4").tobytes() + bytes(100)


def labels_with(value):
    labels = np.zeros(N_TRAIN, dtype=np.uint8)
    labels[7] = value
    return labels


def file_as_root():
    def setup(env):
        (env.tmp / "mnist-file").write_text("not a directory\n")
        return mnist(root="mnist-file")(env)

    return setup


def corrupt_cache(content):
    """Setup: no data.root, no $LAYERWISE_DATA, a corrupt train-images file in the user cache, and
    the only mirror a local server that answers 404 (load_mnist's mirrors swapped, so the real mirrors
    are never contacted). The cache file is reported and kept (never deleted), and the re-download fails."""

    def setup(env):
        from layerwise.data import mnist as mnist_module

        env.monkeypatch.delenv("LAYERWISE_DATA", raising=False)
        cache = env.tmp / "env" / "cache" / "layerwise" / "mnist"
        cache.mkdir(parents=True)
        (cache / "train-images-idx3-ubyte.gz").write_bytes(content)
        env.monkeypatch.setattr(
            mnist_module, "load_mnist", functools.partial(mnist_module.load_mnist, mirrors=[env.not_found_url])
        )
        write_config(env, MNIST)
        return ["train", "exp.yaml", "-s", "data.val_size=10"]

    return setup


CACHED = "env/cache/layerwise/mnist/train-images-idx3-ubyte.gz"


def run(*args, edit=None):
    """Setup: a copy of the trained run in tmp/run, then `edit(run_dir)`; runs `layerwise *args`."""

    def setup(env):
        shutil.copytree(env.trained, env.tmp / "run")
        if edit:
            edit(env.tmp / "run")
        return list(args)

    return setup


def remove(*names):
    def edit(run_dir):
        for name in names:
            (run_dir / name).unlink()

    return edit


def text_file(name, text="this is not a checkpoint\n"):
    return lambda run_dir: (run_dir / name).write_text(text)


def edit_config(values):
    """Change the run's config.yaml (what `eval` rebuilds the model from)."""

    def edit(run_dir):
        raw = yaml.safe_load((run_dir / "config.yaml").read_text())
        (run_dir / "config.yaml").write_text(yaml.safe_dump(patched(raw, values), sort_keys=False))

    return edit


def load_npz(path):
    with np.load(path) as npz:
        return {name: npz[name] for name in npz.files}


def rewrite_checkpoint(name, change):
    """Rewrite run/`name` with `change(arrays)` applied to its arrays (metadata in "__meta__")."""

    def edit(run_dir):
        arrays = load_npz(run_dir / name)
        change(arrays)
        np.savez(run_dir / name, **arrays)

    return edit


def set_meta(meta):
    def change(arrays):
        arrays["__meta__"] = np.array(json.dumps(meta(json.loads(str(arrays["__meta__"])))))

    return change


def drop_prefix(prefix):
    def change(arrays):
        for key in [k for k in arrays if k.startswith(prefix)]:
            del arrays[key]

    return change


class Planted:
    """Unpickling this creates the file at `path`: proof that a loader unpickled it."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def plant_pickle(name, keep_checkpoint=False):
    """Replace run/`name` by an .npz holding a pickled object array (alone, or next to real arrays)."""

    def edit(run_dir):
        arrays = load_npz(run_dir / name) if keep_checkpoint else {}
        arrays["model/evil"] = np.array([Planted(run_dir.parent / MARKER)], dtype=object)
        np.savez(run_dir / name, **arrays)

    return edit


def binary_config(env):
    (env.tmp / "exp.yaml").write_bytes(b"\xff\xfe seed: 0\n")  # not UTF-8
    return ["train", "exp.yaml"]


def output_inside_a_file(env):
    (env.tmp / "notes.txt").write_text("a file, not a directory\n")
    return config({"output": "notes.txt/run"})(env)


def both_config_and_run(env):
    write_config(env, REGRESSION)
    shutil.copytree(env.trained, env.tmp / "run")
    return ["train", "exp.yaml", "--resume", "run"]


def eval_text_file(env):
    (env.tmp / "model.npz").write_text("weights: [1, 2, 3]\n")
    return ["eval", "model.npz"]


# --- the table ---------------------------------------------------------------------------------

CASES = [
    # config: syntax and structure
    case("yaml-syntax-error", config(text="seed: 0\noptimizer: {lr: 0.1\ntrain: {epochs: 2}\n"), 2,
         "exp.yaml", "YAML syntax error", "line 3"),
    case("yaml-top-level-list", config(text="- seed: 0\n- loss: mse\n"), 2,
         "exp.yaml", "mapping", "a list"),
    case("yaml-python-tag-is-not-constructed", config(text="seed: !!python/object/apply:os.getcwd []\n"), 2,
         "exp.yaml", "python/object"),
    case("config-not-utf8", binary_config, 2, "exp.yaml"),
    case("config-file-missing", lambda env: ["train", "nope.yaml"], 2,
         "nope.yaml", "does not exist", usage=True),
    # config: unknown keys
    case("unknown-top-level-key-hint", config({"optimzer": {"lr": 0.1}}), 2,
         "optimzer", "unknown key", "did you mean 'optimizer'"),
    case("unknown-nested-key-hint", config({"train.epoch": 3}), 2,
         "train.epoch", "did you mean 'epochs'"),
    case("unknown-nested-key-lists-valid", config({"optimizer.learning_rate": 0.1}), 2,
         "optimizer.learning_rate", "unknown key", "lr"),
    # config: wrong types
    case("lr-not-a-number", config({"optimizer.lr": "fast"}), 2,
         "optimizer.lr", "a finite number", "'fast'"),
    case("epochs-not-an-integer", config({"train.epochs": 2.5}), 2,
         "train.epochs", "an integer", "2.5"),
    case("nesterov-string-yes", config({"optimizer.nesterov": "yes"}), 2,
         "optimizer.nesterov", "true or false", "'yes'"),
    case("layers-not-a-list", config({"model.layers": {"type": "linear", "out_features": 1}}), 2,
         "model.layers", "a list"),
    case("layer-not-a-mapping", config({"model.layers": ["linear"]}), 2,
         "model.layers[0]", "mapping"),
    case("dataset-not-a-string", config({"data.dataset": ["regression"]}), 2,
         "exp.yaml", "data.dataset"),
    # config: out of range
    case("lr-zero", config({"optimizer.lr": 0}), 2, "optimizer.lr", "> 0"),
    case("lr-negative-override", config(None, "-s", "optimizer.lr=-1"), 2, "optimizer.lr", "> 0", "-1"),
    case("lr-nan", config({"optimizer.lr": float("nan")}), 2, "optimizer.lr", "finite", "nan"),
    case("lr-nan-override", config(None, "-s", "optimizer.lr=.nan"), 2, "optimizer.lr", "finite"),
    case("epochs-zero", config({"train.epochs": 0}), 2, "train.epochs", ">= 1"),
    case("batch-size-zero", config({"train.batch_size": 0}), 2, "train.batch_size", ">= 1"),
    case("momentum-negative", config({"optimizer.momentum": -0.1}), 2, "optimizer.momentum", ">= 0"),
    case("val-size-zero", config({"data.val_size": 0}), 2, "data.val_size", ">= 1"),
    case("uniform-inputs-without-bounds", config({"data.inputs": "uniform"}), 2,
         "data.low", "uniform inputs need 3 bounds"),
    # config: names of layers, losses, datasets
    case("unknown-layer-hint", config({"model.layers.1.type": "relux"}), 2,
         "model.layers[1].type", "unknown layer 'relux'", "did you mean 'relu'"),
    case("unknown-layer-argument-hint", config({"model.layers.0.out_feature": 4}), 2,
         "model.layers[0].out_feature", "unknown argument for linear", "did you mean 'out_features'"),
    case("unknown-loss", config({"loss": "hinge"}), 2, "loss", "unknown loss 'hinge'", "mse"),
    case("unknown-dataset", config({"data.dataset": "cifar10"}), 2,
         "data.dataset", "unknown dataset 'cifar10'", "mnist, fashion_mnist, idx, regression"),
    # config: model and task do not fit together
    case("layer-sizes-do-not-chain", config({"model.layers.2.in_features": 3}), 2,
         "model.layers[2].in_features", "does not chain", "gives 4"),
    case("regression-with-2-outputs", config({"model.layers.2.out_features": 2}), 2,
         "exp.yaml", "gives 2 outputs", "needs 1"),
    case("mnist-with-5-outputs", mnist({"model.layers.0.out_features": 5}), 2,
         "exp.yaml", "gives 5 outputs", "needs 10"),
    case("mse-on-mnist", mnist({"loss": "mse"}), 2, "loss", "mse is a regression loss", "softmax_cross_entropy"),
    case("cross-entropy-on-regression", config({"loss": "softmax_cross_entropy"}), 2,
         "softmax_cross_entropy", "regression task", "use mse"),
    # config: arguments of the dropout, batchnorm and activation layers and of the losses
    case("dropout-p-one", config({"model.layers.1": {"type": "dropout", "p": 1}}), 2,
         "exp.yaml", "model.layers[1].p", "0 <= p < 1", "received 1.0"),
    case("dropout-p-string", config({"model.layers.1": {"type": "dropout", "p": "half"}}), 2,
         "model.layers[1].p", "a finite number", "'half'"),
    case("batchnorm-momentum-above-one", config({"model.layers.1": {"type": "batchnorm", "momentum": 2}}), 2,
         "model.layers[1].momentum", "0 <= momentum <= 1", "received 2.0"),
    case("leaky-relu-slope-nan-override", config(None, "-s", "model.layers.1={type: leaky_relu, negative_slope: .nan}"), 2,
         "model.layers[1].negative_slope", "a finite number"),
    case("elu-unknown-argument-hint", config({"model.layers.1": {"type": "elu", "alpah": 1.0}}), 2,
         "model.layers[1].alpah", "unknown argument for elu", "did you mean 'alpha'"),
    case("huber-delta-zero", config({"loss": {"type": "huber", "delta": 0}}), 2,
         "exp.yaml", "loss.delta", "a positive number", "received 0"),
    case("huber-delta-override", config(None, "-s", "loss={type: huber, delta: -1}"), 2, "loss.delta", "received -1"),
    case("loss-mapping-without-type", config({"loss": {"delta": 1.0}}), 2, "exp.yaml", "loss", "'type' key"),
    case("loss-a-list", config({"loss": ["mse"]}), 2, "exp.yaml", "loss", "a loss name"),
    case("binary-cross-entropy-on-regression", config({"loss": "binary_cross_entropy"}), 2,
         "loss", "binary_cross_entropy is a classification loss", "use mse, huber, mae"),
    case("mnist-val-size-leaves-nothing", mnist(None, "-s", f"data.val_size={N_TRAIN}"), 2,
         "data.val_size", f"out of {N_TRAIN}"),
    # config: overrides and output
    case("override-without-equals", config(None, "-s", "optimizer.lr"), 2, "optimizer.lr", "key.path=value"),
    case("override-index-past-end", config(None, "-s", "model.layers.3.out_features=2"), 2,
         "model.layers.3.out_features", "3 entries"),
    case("output-inside-a-file", output_inside_a_file, 2, "notes.txt"),
    # gradcheck and eval check configs and options too
    case("gradcheck-unknown-layer-names-file", config({"model.layers.1.type": "relux"}, command="gradcheck"), 2,
         "exp.yaml", "model.layers[1].type", "did you mean 'relu'"),
    case("gradcheck-negative-samples", config(None, "--samples", "-1", command="gradcheck"), 2,
         "--samples", usage=True),
    case("gradcheck-zero-batch", config(None, "--batch", "0", command="gradcheck"), 2,
         "--batch", usage=True),
    case("eval-override-out-of-range", run("eval", "run", "-s", "train.eval_batch_size=0"), 2,
         "train.eval_batch_size", ">= 1"),
    case("eval-override-without-equals", run("eval", "run", "-s", "seed"), 2, "seed", "key.path=value"),
    # data: tiny MNIST files in a data.root
    case("mnist-root-missing", mnist(root="no-such-dir"), 1, "data.root", "no-such-dir", "does not exist"),
    case("mnist-root-is-a-file", file_as_root(), 1, "data.root", "mnist-file", "not a directory"),
    case("mnist-file-missing", mnist(damage=delete("t10k-labels-idx1-ubyte.gz")), 1,
         "data.root", "t10k-labels-idx1-ubyte"),
    case("mnist-truncated-gz", mnist(damage=truncate("train-images-idx3-ubyte.gz")), 1,
         "train-images-idx3-ubyte.gz", "truncated gzip"),
    case("mnist-wrong-magic", mnist(damage=replace_gz("train-labels-idx1-ubyte.gz", BAD_MAGIC)), 1,
         "train-labels-idx1-ubyte.gz", "magic number"),
    case("mnist-idx-payload-truncated", mnist(damage=replace_gz("t10k-images-idx3-ubyte.gz", SHORT_PAYLOAD)), 1,
         "t10k-images-idx3-ubyte.gz", "payload truncated"),
    case("mnist-count-mismatch", mnist(damage=replace_idx("train-labels-idx1-ubyte.gz", np.zeros(N_TRAIN - 1))), 1,
         f"{N_TRAIN} images", f"{N_TRAIN - 1} labels"),
    case("mnist-label-out-of-range", mnist(damage=replace_idx("train-labels-idx1-ubyte.gz", labels_with(10))), 1,
         "train-labels-idx1-ubyte.gz", "label 10 out of range"),
    case("mnist-labels-as-images", mnist(damage=replace_idx("train-images-idx3-ubyte.gz", np.zeros(N_TRAIN))), 1,
         "train-images-idx3-ubyte.gz", "3-D"),
    # data: the user cache and the mirrors
    case("cache-checksum-mismatch-and-404", corrupt_cache(gzip.compress(b"\x00\x00\x08\x01" + bytes(8))), 1,
         "train-images-idx3-ubyte", "mirrors failed", "HTTP 404",
         "left as it is", output_has=("checksum mismatch", "downloading a fresh copy")),
    case("cache-truncated-gzip-and-404", corrupt_cache(gzip.compress(bytes(1000))[:30]), 1,
         "train-images-idx3-ubyte", "mirrors failed", "HTTP 404",
         "left as it is", output_has=("is corrupt", "downloading a fresh copy")),
    # checkpoints: missing, corrupt, foreign
    case("eval-dir-without-checkpoints", run("eval", "run", edit=remove("best.npz", "last.npz")), 1,
         "run", "no best.npz"),
    case("eval-last-missing", run("eval", "run", "--checkpoint", "last", edit=remove("last.npz")), 1,
         "run", "no last.npz"),
    case("eval-truncated-best", run("eval", "run", edit=truncate("best.npz")), 1,
         "best.npz", "corrupt or truncated"),
    case("eval-text-file-as-checkpoint", eval_text_file, 1, "model.npz", "not a", absent=("pickle",)),
    case("eval-text-best-in-run", run("eval", "run", edit=text_file("best.npz")), 1,
         "best.npz", "not a", absent=("pickle",)),
    case("eval-npz-without-metadata", run("eval", "run", edit=lambda d: np.savez(d / "best.npz", w=np.zeros(3))), 1,
         "best.npz", "not a layerwise checkpoint"),
    case("eval-pickled-object-array", run("eval", "run", edit=plant_pickle("best.npz")), 1,
         "best.npz", "pickle"),
    case("eval-pickled-array-in-real-checkpoint", run("eval", "run", edit=plant_pickle("best.npz", True)), 1,
         "best.npz", "pickle"),
    case("resume-pickled-last", run("train", "--resume", "run", edit=plant_pickle("last.npz", True)), 1,
         "last.npz", "pickle"),
    case("eval-metadata-not-a-mapping",
         run("eval", "run", edit=rewrite_checkpoint("best.npz", set_meta(lambda meta: [meta]))), 1,
         "best.npz", "checkpoint"),
    case("eval-metadata-without-run-state",
         run("eval", "run", edit=rewrite_checkpoint("best.npz", set_meta(lambda meta: {**meta, "state": {}}))), 1,
         "best.npz", "checkpoint"),
    # config.yaml names every layer's in_features, so an edited width no longer chains (before the weights are read).
    case("eval-hidden-width-edited", run("eval", "run", edit=edit_config({"model.layers.0.out_features": 5})), 2,
         "config.yaml", "model.layers[2].in_features", "does not chain"),
    case("eval-input-width-edited", run("eval", "run", edit=edit_config({"data.weights": [1.0, 2.0, 3.0, 4.0]})), 2,
         "config.yaml", "model.layers[0].in_features", "does not chain"),
    # resume
    case("resume-without-last", run("train", "--resume", "run", edit=remove("last.npz")), 1,
         "no last.npz", "layerwise run directory"),
    case("resume-finished-run", run("train", "--resume", "run"), 2,
         "already finished 2 epochs", "train.epochs"),
    case("resume-npz-without-metadata",
         run("train", "--resume", "run", edit=lambda d: np.savez(d / "last.npz", w=np.zeros(3))), 1,
         "last.npz", "not a layerwise checkpoint"),
    case("resume-last-without-optimizer-state",
         run("train", "--resume", "run", "-s", "train.epochs=3",
             edit=rewrite_checkpoint("last.npz", drop_prefix("optim/"))), 1,
         "last.npz", "velocity/0.W"),
    # CLI usage
    case("unknown-command", lambda env: ["frobnicate"], 2, "No such command", "frobnicate", usage=True),
    case("unknown-option", config(None, "--bogus"), 2, "No such option", "--bogus", usage=True),
    case("train-without-config-or-resume", lambda env: ["train"], 2, "CONFIG", "--resume", usage=True),
    case("train-with-config-and-resume", both_config_and_run, 2, "CONFIG", "--resume", usage=True),
    case("eval-bogus-split", run("eval", "run", "--split", "bogus"), 2, "--split", "bogus", usage=True),
    case("eval-missing-path", lambda env: ["eval", "no-such-run"], 2, "no-such-run", "does not exist", usage=True),
    case("gradcheck-samples-not-integer", config(None, "--samples", "abc", command="gradcheck"), 2,
         "--samples", "'abc' is not a valid integer", usage=True),
]


def foreign_dir_with_config_yaml(env):
    """A non-empty directory that happens to hold a config.yaml: --overwrite must not delete it."""
    (env.tmp / "proj").mkdir()
    (env.tmp / "proj" / "config.yaml").write_text("foo: 1\n")
    (env.tmp / "proj" / "thesis.tex").write_text("years of work\n")
    write_config(env, REGRESSION)
    return ["train", "exp.yaml", "-s", "output=proj", "--overwrite"]


def run_in_cwd(env):
    """The trained run is the working directory's parent... here: the working directory itself."""
    shutil.copytree(env.trained, env.tmp / "run")
    (env.tmp / "run" / "exp.yaml").write_text(yaml.safe_dump(REGRESSION))
    env.monkeypatch.chdir(env.tmp / "run")
    return ["train", "exp.yaml", "-s", "output=.", "--overwrite"]


CASES_MORE = [
    case("yaml-duplicate-key", config(text="optimizer: {lr: 0.1}\noptimizer: {lr: 0.2}\n"), 2,
         "exp.yaml", "'optimizer' appears twice"),
    case("huge-integer-lr", config(None, "-s", "optimizer.lr=" + "1" * 400), 2, "optimizer.lr", "at most 100"),
    case("momentum-one", config({"optimizer.momentum": 1.0}), 2, "optimizer.momentum", "below 1"),
    case("nesterov-without-momentum", config({"optimizer.nesterov": True, "optimizer.momentum": 0.0}), 2,
         "optimizer.nesterov", "momentum > 0"),
    case("bounds-without-uniform-inputs", config({"data.low": [0, 0, 0]}), 2, "data.low", "uniform"),
    case("source-is-not-a-key", config({"source": "x"}), 2, "source", "unknown key"),
    case("data-overflows-float32", config({"data.bias": 1e300}), 2, "data", "float32"),
    case("output-unwritable", config(None, "-s", "output=/proc/layerwise-run"), 2, "output", "cannot create"),
    case("overwrite-refuses-a-foreign-directory", foreign_dir_with_config_yaml, 2,
         "proj", "not a layerwise run directory"),
    case("overwrite-refuses-the-working-directory", run_in_cwd, 2, "working directory"),
    case("resume-refuses-a-changing-override",
         run("train", "--resume", "run", "-s", "optimizer.lr=0.5"), 2, "optimizer.lr=0.5", "resumed run can only change"),
    case("resume-with-overwrite", run("train", "--resume", "run", "--overwrite"), 2,
         "--overwrite", "--resume", usage=True),
    case("eval-checkpoint-option-on-a-file", run("eval", "run/best.npz", "--checkpoint", "last"), 2,
         "--checkpoint", usage=True),
    case("eval-best-missing-suggests-last", run("eval", "run", edit=remove("best.npz")), 1,
         "no best.npz", "--checkpoint last"),
]


# --- fixtures and the test ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A finished 2-epoch run of REGRESSION; rows copy it, never touch it."""
    tmp = tmp_path_factory.mktemp("trained")
    (tmp / "exp.yaml").write_text(yaml.safe_dump(REGRESSION))
    result = CliRunner().invoke(main, ["train", str(tmp / "exp.yaml"), "-s", f"output={tmp / 'run'}"])
    assert result.exit_code == 0, result.output
    return tmp / "run"


class NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def not_found_url():
    """A local mirror that answers 404 to everything."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/mnist/"
    server.shutdown()
    server.server_close()
    thread.join()


def local_only(urlopen):
    """urlopen that refuses every host but 127.0.0.1, so no case can reach the real mirrors."""

    def guarded(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        if not url.startswith("http://127.0.0.1:"):
            raise AssertionError(f"a test tried to download {url}")
        return urlopen(request, *args, **kwargs)

    return guarded


def snapshot(root):
    """path -> (size, mtime_ns, sha256) for every file under root, "dir" for every directory."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            files[rel] = "dir"
        else:
            stat = path.stat()
            files[rel] = (stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return files


@pytest.mark.parametrize("case", CASES + CASES_MORE)
def test_bad_input(case, tmp_path, monkeypatch, trained_run, not_found_url):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "env" / "data").mkdir(parents=True)
    monkeypatch.setenv("LAYERWISE_DATA", str(tmp_path / "env" / "data"))  # empty: never the real data
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "env" / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", local_only(urllib.request.urlopen))
    args = case.setup(Env(tmp_path, monkeypatch, trained_run, not_found_url))
    before = snapshot(tmp_path)

    result = CliRunner().invoke(main, args, catch_exceptions=True)  # click 8.2+: output has both streams

    assert result.exit_code == case.code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1, result.output
    line = errors[0]
    assert line.startswith("Error: " if case.usage else "error: "), line
    assert line in result.stderr, result.stderr
    for fragment in case.fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    for fragment in case.absent:
        assert fragment not in line, f"{fragment!r} in {line!r}"
    for fragment in case.output_has:
        assert fragment in result.output, f"{fragment!r} not in the output:\n{result.output}"

    assert not (tmp_path / MARKER).exists(), "a planted pickle was unpickled"
    expected = {path: info for path, info in before.items() if path not in case.removed}
    assert set(case.removed) <= set(before)
    assert snapshot(tmp_path) == expected


def test_planted_pickle_fires_when_unpickled(tmp_path):
    """The trap the pickle rows rely on works: unpickling it does create the marker."""
    np.savez(tmp_path / "evil.npz", evil=np.array([Planted(tmp_path / MARKER)], dtype=object))
    with np.load(tmp_path / "evil.npz", allow_pickle=True) as npz:
        npz["evil"][0].close()
    assert (tmp_path / MARKER).exists()


def test_table_is_large_and_ids_are_unique():
    ids = [param.id for param in CASES]
    assert len(ids) >= 35 and len(ids) == len(set(ids))
