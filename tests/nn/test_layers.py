"""Every layer's backward against central finite differences, in float64, for random shapes."""

import numpy as np
import pytest

from layerwise.errors import ConfigError
from layerwise.views.gradcheck import check_layer
from layerwise.nn.registry import LAYERS
from layerwise.nn.linear import Linear
from layerwise.nn.activations import ReLU, Sigmoid, Tanh

TOL = 1e-6


def random_shape(rng):
    return int(rng.integers(1, 9)), int(rng.integers(1, 12))  # N, D


def away_from_kink(rng, shape):
    """Inputs with |x| >= 0.05, so a ReLU's kink at 0 is never inside the finite-difference step."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.05, 0.05 * np.sign(x) + (x == 0) * 0.05, x)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("init", Linear.INITS)
def test_linear_backward_matches_finite_differences(seed, bias, init):
    rng = np.random.default_rng(seed)
    N, D = random_shape(rng)
    M = int(rng.integers(1, 10))
    layer = Linear(D, M, bias=bias, init=init, dtype=np.float64)
    layer.reset_parameters(rng)
    if bias:
        layer.params["b"][...] = rng.standard_normal(M)
    errors = check_layer(layer, rng.standard_normal((N, D)), rng)
    assert set(errors) == ({"x", "W", "b"} if bias else {"x", "W"})
    for name, (_, rel) in errors.items():
        assert rel < TOL, f"{name}: relative error {rel:.2e}"


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("cls", [ReLU, Sigmoid, Tanh])
def test_activation_backward_matches_finite_differences(seed, cls):
    rng = np.random.default_rng(seed)
    x = away_from_kink(rng, random_shape(rng)) * 3
    (_, rel), = check_layer(cls(), x, rng).values()
    assert rel < TOL


def test_linear_by_hand():
    # x = [[1, 2]], W = [[1, -1], [0.5, 2]], b = [0.5, 0]
    # y = x @ W + b = [[1 + 1 + 0.5, -1 + 4 + 0]] = [[2.5, 3]]
    # with dout = [[1, -2]]: dW = x.T @ dout = [[1, -2], [2, -4]], db = [1, -2],
    # dx = dout @ W.T = [[1*1 + -2*-1, 1*0.5 + -2*2]] = [[3, -3.5]]
    layer = Linear(2, 2, dtype=np.float64)
    layer.params["W"][...] = [[1, -1], [0.5, 2]]
    layer.params["b"][...] = [0.5, 0]
    np.testing.assert_allclose(layer.forward(np.array([[1.0, 2.0]])), [[2.5, 3]])
    dx = layer.backward(np.array([[1.0, -2.0]]))
    np.testing.assert_allclose(layer.grads["W"], [[1, -2], [2, -4]])
    np.testing.assert_allclose(layer.grads["b"], [1, -2])
    np.testing.assert_allclose(dx, [[3, -3.5]])


def test_relu_passes_gradient_only_where_input_was_positive():
    relu = ReLU()
    relu.forward(np.array([[-1.0, 0.0, 2.0]]))
    np.testing.assert_array_equal(relu.backward(np.array([[5.0, 5.0, 5.0]])), [[0, 0, 5]])


def test_sigmoid_and_tanh_do_not_overflow():
    x = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = Sigmoid().forward(x)
    np.testing.assert_allclose(y, [[0, 0, 0.5, 1, 1]], atol=1e-7)
    assert np.all(np.isfinite(Tanh().forward(x)))


def test_backward_without_input_grad_still_fills_parameter_grads():
    rng = np.random.default_rng(0)
    layer = Linear(4, 3)
    layer.reset_parameters(rng)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    layer.forward(x)
    assert layer.backward(np.ones((5, 3), np.float32), input_grad=False) is None
    np.testing.assert_allclose(layer.grads["W"], x.T @ np.ones((5, 3)), rtol=1e-5)


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    layers = [Linear(6, 4), ReLU(), Linear(4, 3), Sigmoid(), Tanh()]
    layers[0].reset_parameters(rng)
    layers[2].reset_parameters(rng)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    for layer in layers:
        x = layer.forward(x)
        assert x.dtype == np.float32, type(layer).__name__
    dout = np.ones_like(x)
    for layer in reversed(layers):
        dout = layer.backward(dout)
        assert dout.dtype == np.float32, type(layer).__name__
        for g in layer.grads.values():
            assert g.dtype == np.float32


@pytest.mark.parametrize("init,expected_std", [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(2 / 600)), ("uniform", 1 / np.sqrt(400) / np.sqrt(3))])
def test_init_scales(init, expected_std):
    layer = Linear(400, 200, init=init)
    layer.reset_parameters(np.random.default_rng(0))
    assert abs(layer.params["W"].std() - expected_std) < 0.02 * expected_std
    assert np.all(layer.params["b"] == 0)


def test_unknown_init_is_a_config_error():
    with pytest.raises(ConfigError, match="init: unknown init 'zeros'; valid: he, xavier, uniform"):
        Linear(2, 2, init="zeros")


def test_repr_and_config_round_trip():
    layer = Linear(784, 512)
    assert repr(layer) == "Linear(in_features=784, out_features=512, bias=True, init='he')"
    config = layer.config()
    kind = config.pop("type")
    assert LAYERS[kind](**config).config() == layer.config()
    assert repr(ReLU()) == "ReLU()"


def test_describe_leaves_out_the_defaults():
    from layerwise.nn.conv import Conv2d

    assert Linear(784, 512).describe() == "Linear(in_features=784, out_features=512)"
    assert Linear(784, 512, bias=False).describe() == "Linear(in_features=784, out_features=512, bias=False)"
    assert Conv2d(1, 16, 5, padding=2).describe() == "Conv2d(in_channels=1, out_channels=16, kernel_size=5, padding=2)"
