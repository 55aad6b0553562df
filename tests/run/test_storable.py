"""A config accepted at the start is a config whose checkpoints read back: the config's bounds and the
checkpoint metadata's are one table (util/bounds.py), and the whole metadata a run will write is put
through the checkpoint reader before training starts (run/checkpoint.py check_storable)."""

import random
from dataclasses import asdict

import numpy as np
import pytest
from click.testing import CliRunner

from layerwise.cli import main
from layerwise.config.schema import apply_overrides, config_from_dict
from layerwise.errors import ConfigError
from layerwise.run.build import build
from layerwise.run.checkpoint import check_storable, load_run_meta, save_run_checkpoint
from layerwise.run.state import RunState

BASE = {
    "name": "tiny", "seed": 0,
    "data": {"dataset": "regression", "n_samples": 60, "val_size": 10, "test_size": 10},
    "model": {"layers": [{"type": "linear", "out_features": 1}]},
    "loss": "mse", "optimizer": {"lr": 0.05}, "train": {"epochs": 2, "batch_size": 16},
}


def quiet(*args, **kwargs):
    pass


def big_int(rng, digits):
    return int("".join([str(rng.randint(1, 9))] + [str(rng.randint(0, 9)) for _ in range(digits - 1)]))


def text(rng, length, odd=False):
    """Random text: ASCII, accented, CJK, astral (emoji) code points; with `odd`, now and then a
    surrogate or a NUL (which a config refuses)."""
    gen = np.random.default_rng(rng.randint(0, 2**32))
    low, high = np.array([[0x20, 0x7F], [0xA0, 0x250], [0x4E00, 0xA000], [0x1F300, 0x1FB00], [0xD800, 0xE000], [0, 1]]).T
    weights = np.array([40, 20, 20, 20, 0.5 * odd, 0.5 * odd])
    pool = gen.choice(len(weights), size=length, p=weights / weights.sum())
    points = gen.integers(low[pool], high[pool]).astype("<u4")
    return points.tobytes().decode("utf-32-le", errors="surrogatepass")


def candidates(rng, tmp_path):
    """(dotted key, value) pairs, each a value a user could write in a config."""
    for _ in range(6):
        digits = rng.choice([1, 20, 39, 99, 100, 101, 151, 400])
        yield "seed", big_int(rng, digits)
        yield "train.eval_batch_size", big_int(rng, digits)
    for length in (0, 1, 300, 20_000, 400_000, 5_000_000):
        yield "name", text(rng, length)
    for length in (5, 300):
        yield "name", text(rng, length, odd=True)
    for length in (1, 5_000):
        yield "model.layers.0.init", text(rng, length)  # refused unless a known init, but never a crash
    for value in (5e-324, 1e-300, 1.7976931348623157e308, 0.1, 3):
        yield "optimizer.lr", value
    for epochs in (1, 1_000, 30_000, 10**6, big_int(rng, 100)):
        yield "train.epochs", epochs
    yield "output", str(tmp_path / text(rng, 50).replace("/", "_").replace("\0", "_"))


def test_every_config_value_accepted_at_the_start_round_trips_through_a_checkpoint(tmp_path):
    rng = random.Random(1234)
    accepted = refused = 0
    path = tmp_path / "last.npz"
    for key, value in candidates(rng, tmp_path):
        try:
            raw = apply_overrides(BASE, [], "<probe>")
            node = raw
            *parents, last = key.split(".")
            for part in parents:
                node = node[int(part) if isinstance(node, list) else part]
            node[last] = value
            cfg = config_from_dict(apply_overrides(raw, [], "<probe>"), "<probe>")
            data, model, _, optimizer = build(cfg, quiet)
            state = asdict(RunState(epoch_rng=np.random.default_rng(0).bit_generator.state))
            check_storable(cfg, model, state, data)
        except ConfigError:
            refused += 1
            continue
        accepted += 1
        save_run_checkpoint(path, cfg, model, optimizer, state, data)
        meta = load_run_meta(path)  # what eval, predict, --resume and --overwrite read
        assert meta["config"] == cfg.to_dict(), key
        again = config_from_dict(apply_overrides(meta["config"], [], str(path)), str(path))
        assert again.to_dict() == cfg.to_dict(), key
        RunState.from_meta(meta["state"], path)
    assert accepted >= 15 and refused >= 10, (accepted, refused)  # both sides of the bounds were probed


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def write_config(tmp_path):
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(BASE))
    return config


@pytest.mark.parametrize("override, key", [("seed=" + "7" * 151, "seed"), ("train.eval_batch_size=" + "9" * 151, "eval_batch_size"),
                                           ("train.epochs=1000000", "train.epochs")])
def test_values_whose_checkpoints_would_not_read_back_are_refused_before_training(tmp_path, override, key):
    result = run("train", write_config(tmp_path), "-s", override, "-s", f"output={tmp_path / 'run'}")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and key in lines[0], result.stderr
    assert not (tmp_path / "run").exists()


def test_a_long_non_ascii_name_trains_and_its_run_is_read_back(tmp_path):
    name = "🙂" * 360_000  # 4.3 million characters as JSON escapes (\ud83d\ude42): over the old 4 Mi bound
    out = tmp_path / "run"
    result = run("train", write_config(tmp_path), "-s", f"name={name}", "-s", f"output={out}")
    assert result.exit_code == 0, result.output[-500:]
    for argv in (["eval", out], ["eval", out, "--checkpoint", "last"], ["train", "--resume", out, "-s", "train.epochs=3"]):
        result = run(*argv)
        assert result.exit_code == 0, result.output[-500:]
    assert load_run_meta(out / "last.npz")["config"]["name"] == name
