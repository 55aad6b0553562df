"""BatchNorm: finite differences in both modes, a step by hand, running statistics used in
evaluation and predict, and saved through the state dict."""

import numpy as np
import pytest

from layerwise.nn.batchnorm import BatchNorm
from layerwise.errors import CheckpointError, ConfigError
from layerwise.views.gradcheck import check_layer
from layerwise.nn.linear import Linear
from layerwise.nn.sequential import Sequential
from layerwise.nn.registry import build_model


def random_batchnorm(rng, D, training=True):
    layer = BatchNorm(D, dtype=np.float64)
    layer.params["gamma"][...] = rng.standard_normal(D)
    layer.params["beta"][...] = rng.standard_normal(D)
    layer.buffers["running_mean"][...] = rng.standard_normal(D)
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2, D)
    layer.training = training
    return layer


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("training", [True, False])
def test_backward_matches_finite_differences(seed, training):
    rng = np.random.default_rng(seed)
    N, D = int(rng.integers(2, 10)), int(rng.integers(1, 8))
    layer = random_batchnorm(rng, D, training)
    errors = check_layer(layer, rng.standard_normal((N, D)) * 3 + 1, rng)
    assert set(errors) == {"x", "gamma", "beta"}
    for name, (_, rel) in errors.items():
        assert rel < 1e-6, f"{name}: {rel:.2e}"


def test_one_training_step_by_hand():
    # x = [[1], [2], [3]]: batch mean 2, biased var 2/3, so xhat = [-1, 0, 1] / sqrt(2/3) (eps ~ 0);
    # with gamma = sqrt(2/3), beta = 0: y = [-1, 0, 1], and gamma / std = 1.
    # running_mean = 0.9 * 0 + 0.1 * 2 = 0.2; running_var = 0.9 * 1 + 0.1 * (2/3 * 3/2) = 1.0 (unbiased)
    layer = BatchNorm(1, eps=1e-14, dtype=np.float64)  # eps small enough to vanish at this precision
    layer.params["gamma"][...] = np.sqrt(2 / 3)
    y = layer.forward(np.array([[1.0], [2.0], [3.0]]))
    np.testing.assert_allclose(y, [[-1], [0], [1]], atol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_mean"], [0.2])
    np.testing.assert_allclose(layer.buffers["running_var"], [1.0])
    # dout = [[1], [0], [0]]: dbeta = 1, dgamma = sum(dout * xhat) = -sqrt(3/2), xhat * dgamma = [1.5, 0, -1.5]
    # dx = gamma / std * (dout - (dbeta + xhat * dgamma) / N) = [1, 0, 0] - [2.5, 1, -0.5] / 3 = [1/6, -1/3, 1/6]
    dx = layer.backward(np.array([[1.0], [0.0], [0.0]]))
    np.testing.assert_allclose(layer.grads["beta"], [1])
    np.testing.assert_allclose(layer.grads["gamma"], [-np.sqrt(1.5)])
    np.testing.assert_allclose(dx, [[1 / 6], [-1 / 3], [1 / 6]], atol=1e-12)


def test_training_normalises_each_feature_of_the_batch():
    rng = np.random.default_rng(0)
    y = BatchNorm(5, dtype=np.float64).forward(rng.standard_normal((64, 5)) * 10 + 3)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=0), 1, atol=1e-5)


def test_evaluation_uses_running_statistics_so_a_row_does_not_depend_on_its_batch():
    rng = np.random.default_rng(1)
    layer = random_batchnorm(rng, 4, training=False)
    x = rng.standard_normal((6, 4))
    before = {k: v.copy() for k, v in layer.buffers.items()}
    y = layer.forward(x).copy()
    expected = (x - before["running_mean"]) / np.sqrt(before["running_var"] + 1e-5) * layer.params["gamma"] + layer.params["beta"]
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    np.testing.assert_allclose(layer.forward(x[2:3]), y[2:3], rtol=1e-12)
    for k in before:
        assert np.array_equal(layer.buffers[k], before[k])  # evaluation never updates them


def test_running_statistics_converge_to_the_data_statistics():
    rng = np.random.default_rng(2)
    layer = BatchNorm(3, dtype=np.float64)
    for _ in range(200):
        layer.forward(rng.standard_normal((256, 3)) * [1, 2, 3] + [5, -1, 0])
    np.testing.assert_allclose(layer.buffers["running_mean"], [5, -1, 0], atol=0.1)
    np.testing.assert_allclose(layer.buffers["running_var"], [1, 4, 9], rtol=0.1)


def test_predict_uses_running_statistics_and_the_state_dict_carries_them():
    rng = np.random.default_rng(3)
    model = Sequential([Linear(3, 4, dtype=np.float64), BatchNorm(4, dtype=np.float64)])
    model.reset_parameters(rng)
    for _ in range(5):
        model.forward(rng.standard_normal((32, 3)))
    state = model.state_dict()
    assert set(state) == {"0.W", "0.b", "1.gamma", "1.beta", "1.running_mean", "1.running_var"}
    assert [name for name, _, _ in model.named_parameters()] == ["0.W", "0.b", "1.gamma", "1.beta"]  # buffers are not trained
    x = rng.standard_normal((7, 3))
    predicted = model.predict(x)
    assert np.array_equal(model.state_dict()["1.running_mean"], state["1.running_mean"])  # predict changed nothing

    fresh = Sequential([Linear(3, 4, dtype=np.float64), BatchNorm(4, dtype=np.float64)])
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.predict(x), predicted)
    state["1.running_var"] = np.ones(5)
    with pytest.raises(CheckpointError, match=r"1.running_var has shape \(5,\), the model expects \(4,\)"):
        fresh.load_state_dict(state)
    del state["1.running_var"]
    with pytest.raises(CheckpointError, match=r"missing \['1.running_var'\]"):
        fresh.load_state_dict(state)


def test_float32_stays_float32():
    layer = BatchNorm(4)
    x = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    assert layer.forward(x).dtype == np.float32
    assert layer.backward(np.ones_like(x)).dtype == np.float32
    assert all(a.dtype == np.float32 for a in (*layer.grads.values(), *layer.buffers.values()))


@pytest.mark.parametrize("arg, value, fragment", [
    ("momentum", 1.5, "model.layers[1].momentum: expected 0 <= momentum <= 1"),
    ("eps", 0, "model.layers[1].eps: expected a small positive number"),
    ("in_features", 3, "model.layers[1].in_features: 3 does not chain"),
])
def test_bad_arguments_are_config_errors(arg, value, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        build_model([{"type": "linear", "out_features": 4}, {"type": "batchnorm", arg: value}], 2)


def test_infers_its_width_and_round_trips_its_config():
    model = build_model([{"type": "linear", "out_features": 6}, {"type": "batchnorm", "momentum": 0.2}], 2)
    assert repr(model.layers[1]) == "BatchNorm(in_features=6, momentum=0.2, eps=1e-05)"
    assert build_model(model.config(), 2).config() == model.config()
