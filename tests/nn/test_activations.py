"""LeakyReLU, ELU, GELU, Softplus: finite differences in float64, values by hand, stability, dtypes."""

import math

import numpy as np
import pytest

from layerwise.nn.activations import ELU, GELU, LeakyReLU, Softplus
from layerwise.views.gradcheck import check_layer

TOL = 1e-6
ACTIVATIONS = [LeakyReLU, lambda: LeakyReLU(0.2), ELU, lambda: ELU(alpha=0.5), GELU, Softplus]


def away_from_kink(rng, shape):
    """|x| >= 0.05, so LeakyReLU's and ELU's kinks at 0 are never inside the finite-difference step."""
    x = rng.standard_normal(shape) * 3
    return np.where(np.abs(x) < 0.05, 0.05, x)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("make", ACTIVATIONS)
def test_backward_matches_finite_differences(seed, make):
    rng = np.random.default_rng(seed)
    x = away_from_kink(rng, (int(rng.integers(1, 9)), int(rng.integers(1, 12))))
    (_, rel), = check_layer(make(), x, rng).values()
    assert rel < TOL


def test_values_by_hand():
    x = np.array([[-2.0, 0.0, 3.0]])
    # leaky_relu(slope 0.1): [-0.2, 0, 3]; elu(alpha 2): [2 (e^-2 - 1), 0, 3]
    np.testing.assert_allclose(LeakyReLU(0.1).forward(x), [[-0.2, 0, 3]])
    np.testing.assert_allclose(ELU(2.0).forward(x), [[2 * (math.exp(-2) - 1), 0, 3]])
    # softplus(0) = ln 2; softplus(3) = ln(1 + e^3)
    np.testing.assert_allclose(Softplus().forward(x), [[math.log1p(math.exp(-2)), math.log(2), math.log1p(math.exp(3))]])
    # gelu(1) with the tanh approximation: 0.5 (1 + tanh(sqrt(2/pi) * 1.044715)) = 0.8411919906...
    assert GELU().forward(np.array([[1.0]]))[0, 0] == pytest.approx(0.8411919906082768, abs=1e-12)
    # slopes: leaky_relu 0.1 / 1; elu at x = -2: alpha e^-2
    layer = ELU(2.0)
    layer.forward(x)
    np.testing.assert_allclose(layer.backward(np.ones((1, 3))), [[2 * math.exp(-2), 2, 1]])
    layer = LeakyReLU(0.1)
    layer.forward(x)
    np.testing.assert_allclose(layer.backward(np.ones((1, 3))), [[0.1, 0.1, 1]])


def test_gelu_is_the_tanh_approximation_not_the_erf_form():
    # at x = -1 the two differ by about 1.6e-4: exact -0.15865525..., tanh form -0.15880800...
    y = GELU().forward(np.array([[-1.0]]))[0, 0]
    assert y == pytest.approx(-0.15880800939172324, abs=1e-12)
    assert abs(y - (-1.0 * 0.5 * (1 + math.erf(-1 / math.sqrt(2))))) > 1e-4


def test_softplus_and_elu_are_stable_for_huge_inputs():
    x = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = Softplus().forward(x)
        layer = Softplus()
        layer.forward(x)
        grad = layer.backward(np.ones_like(x))
        e = ELU().forward(x)
    np.testing.assert_allclose(y, [[0, 0, math.log(2), 100, 1e4]], atol=1e-6)
    np.testing.assert_allclose(grad, [[0, 0, 0.5, 1, 1]], atol=1e-7)
    np.testing.assert_allclose(e, [[-1, -1, 0, 100, 1e4]])


@pytest.mark.parametrize("make", ACTIVATIONS)
def test_float32_stays_float32_and_input_grad_false_skips(make):
    layer = make()
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    assert layer.forward(x).dtype == np.float32
    assert layer.backward(np.ones_like(x)).dtype == np.float32
    assert layer.backward(np.ones_like(x), input_grad=False) is None


def test_repr_shows_arguments():
    assert repr(LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(ELU()) == "ELU(alpha=1.0)"
    assert repr(GELU()) == "GELU()" and repr(Softplus()) == "Softplus()"
