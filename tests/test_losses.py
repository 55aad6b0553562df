"""Losses: finite-difference checks in float64, numerical stability, and hand-worked values."""

import numpy as np
import pytest

from layerwise.gradcheck import check_loss
from layerwise.losses import MSE, SoftmaxCrossEntropy

TOL = 1e-6


@pytest.mark.parametrize("seed", range(8))
def test_softmax_cross_entropy_backward_matches_finite_differences(seed):
    rng = np.random.default_rng(seed)
    N, C = int(rng.integers(1, 10)), int(rng.integers(2, 12))
    logits = rng.standard_normal((N, C)) * 3
    target = rng.integers(0, C, N)
    _, rel = check_loss(SoftmaxCrossEntropy(), logits, target, rng)
    assert rel < TOL


@pytest.mark.parametrize("seed", range(8))
def test_mse_backward_matches_finite_differences(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 10)), int(rng.integers(1, 4)))
    _, rel = check_loss(MSE(), rng.standard_normal(shape), rng.standard_normal(shape), rng)
    assert rel < TOL


def test_softmax_cross_entropy_by_hand():
    # logits [0, ln 3] -> softmax [1/4, 3/4]; target 1 -> loss -ln(3/4) = 0.28768...
    # gradient (softmax - onehot) / N = [1/4, -1/4] for N = 1
    loss = SoftmaxCrossEntropy()
    value = loss.forward(np.array([[0.0, np.log(3.0)]]), np.array([1]))
    assert value == pytest.approx(-np.log(0.75))
    np.testing.assert_allclose(loss.backward(), [[0.25, -0.25]])


@pytest.mark.parametrize("scale", [1e4, -1e4, 1e30])
def test_softmax_cross_entropy_is_stable_for_huge_logits(scale):
    logits = np.array([[scale, 0.0, -scale], [0.0, scale, 1.0]], dtype=np.float32)
    loss = SoftmaxCrossEntropy()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss.forward(logits, np.array([0, 2]))
        grad = loss.backward()
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    if scale > 0:
        # Row 0 is confidently right (loss 0), row 1 confidently wrong (loss = scale - 1).
        assert value == pytest.approx((scale - 1) / 2, rel=1e-6)


def test_softmax_cross_entropy_backward_can_be_called_twice():
    loss = SoftmaxCrossEntropy()
    loss.forward(np.array([[1.0, 2.0, 3.0]]), np.array([0]))
    np.testing.assert_array_equal(loss.backward(), loss.backward())


def test_mse_by_hand():
    # y = [[1, 2]], t = [[0, 4]]: errors 1, -2 -> mean of squares (1 + 4) / 2 = 2.5
    # gradient 2 (y - t) / (N*M) = [[1, -2]]
    loss = MSE()
    assert loss.forward(np.array([[1.0, 2.0]]), np.array([[0.0, 4.0]])) == 2.5
    np.testing.assert_allclose(loss.backward(), [[1.0, -2.0]])
