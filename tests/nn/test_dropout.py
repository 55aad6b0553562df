"""Dropout: keep rate 1 - p (statistically), inverted scaling, identity in evaluation, its own seeded
stream, a JSON-able RNG state, and its backward with the mask held."""

import json

import numpy as np
import pytest

from layerwise.nn.dropout import Dropout
from layerwise.errors import CheckpointError, ConfigError
from layerwise.views.gradcheck import check_layer
from layerwise.nn.sequential import Sequential
from layerwise.nn.registry import build_model


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keep_rate_is_one_minus_p_and_the_mean_is_preserved(p, dtype):
    n = 400_000
    layer = Dropout(p)
    layer.reset_rng(1)
    y = layer.forward(np.ones((400, n // 400), dtype))
    kept = np.count_nonzero(y) / n
    # Binomial(n, 1 - p): 5 standard deviations is a false alarm once in ~3.5 million runs.
    sd = np.sqrt(p * (1 - p) / n)
    assert abs(kept - (1 - p)) < 5 * sd, (kept, 1 - p)
    # inverted dropout: kept entries are scaled by 1 / (1 - p), so E[y] = x (mean 1 here)
    np.testing.assert_allclose(np.unique(y), [0, 1 / (1 - p)], rtol=1e-6)
    assert abs(y.mean(dtype=np.float64) - 1) < 5 * sd / (1 - p)


def test_masks_are_independent_across_calls_and_entries():
    layer = Dropout(0.5)
    a = layer.forward(np.ones((200, 500))).copy()
    b = layer.forward(np.ones((200, 500))).copy()
    both = np.mean((a > 0) & (b > 0))  # 1/4 if independent
    assert abs(both - 0.25) < 5 * np.sqrt(0.25 * 0.75 / a.size)
    assert abs(np.corrcoef((a > 0)[:, :-1].ravel(), (a > 0)[:, 1:].ravel())[0, 1]) < 0.02


def test_backward_uses_the_forward_mask():
    layer = Dropout(0.25)
    x = np.arange(1.0, 13.0).reshape(3, 4)
    y = layer.forward(x).copy()
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx, y / x)  # dx = dout * m / (1 - p), and y = x * m / (1 - p)


@pytest.mark.parametrize("seed", range(3))
def test_backward_matches_finite_differences_with_the_mask_held(seed):
    rng = np.random.default_rng(seed)
    layer = Dropout(0.4)
    (_, rel), = check_layer(layer, rng.standard_normal((6, 9)), rng).values()
    assert rel < 1e-6
    assert not layer.hold_mask  # restored


def test_evaluation_mode_is_the_identity_and_p_zero_never_drops():
    x = np.random.default_rng(0).standard_normal((5, 7))
    layer = Dropout(0.5)
    layer.training = False
    assert np.array_equal(layer.forward(x), x)
    assert np.array_equal(layer.backward(x * 2), x * 2)
    assert np.array_equal(Dropout(0.0).forward(x), x)


def test_streams_are_seeded_per_layer_and_the_state_round_trips_through_json():
    model = Sequential([Dropout(0.5), Dropout(0.5)])
    model.seed_random([7, 3])
    x = np.ones((50, 40))
    first = model.layers[0].forward(x).copy()
    assert not np.array_equal(first, model.layers[1].forward(x))  # each layer its own stream
    again = Sequential([Dropout(0.5), Dropout(0.5)])
    again.seed_random([7, 3])
    assert np.array_equal(first, again.layers[0].forward(x))  # same seed, same masks

    saved = json.loads(json.dumps(model.rng_state()))
    expected = model.layers[0].forward(x).copy()
    again.load_rng_state(saved)
    assert np.array_equal(again.layers[0].forward(x), expected)


def test_a_wrong_rng_state_is_a_checkpoint_error():
    model = Sequential([Dropout(0.5)])
    with pytest.raises(CheckpointError, match=r"expected layers \['0'\], found \['3'\]"):
        model.load_rng_state({"3": model.rng_state()["0"]})
    with pytest.raises(CheckpointError, match="layer 0 is malformed"):
        model.load_rng_state({"0": {"bit_generator": "MT19937", "state": 5}})
    with pytest.raises(CheckpointError, match="layer 0 is malformed"):
        model.load_rng_state({"0": "PCG64"})


@pytest.mark.parametrize("p, fragment", [(1, "received 1.0"), (-0.1, "received -0.1"), ("half", "expected a finite number")])
def test_p_out_of_range_is_a_config_error_naming_the_key(p, fragment):
    with pytest.raises(ConfigError) as info:
        build_model([{"type": "dropout", "p": p}, {"type": "linear", "out_features": 2}], 3)
    assert str(info.value).startswith("model.layers[0].p: ")
    assert fragment in str(info.value)


def test_predict_runs_in_evaluation_mode_and_restores_training_mode():
    model = Sequential([Dropout(0.9)])
    x = np.ones((10, 10))
    assert np.array_equal(model.predict(x), x)
    assert model.layers[0].training
    assert not np.array_equal(model.forward(x), x)
