"""Losses: finite-difference checks in float64, numerical stability, and hand-worked values."""

import numpy as np
import pytest

from layerwise.views.gradcheck import check_loss
from layerwise.errors import ConfigError, DataError
from layerwise.nn.losses import MAE, MSE, BinaryCrossEntropy, Huber, SoftmaxCrossEntropy

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


@pytest.mark.parametrize("seed", range(4))
def test_class_weighted_softmax_cross_entropy_backward_matches_finite_differences(seed):
    rng = np.random.default_rng(seed)
    N, C = int(rng.integers(2, 10)), int(rng.integers(2, 6))
    loss = SoftmaxCrossEntropy()
    loss.class_weight = rng.uniform(0.2, 5.0, C)
    _, rel = check_loss(loss, rng.standard_normal((N, C)) * 3, rng.integers(0, C, N), rng)
    assert rel < TOL


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothed_softmax_cross_entropy_backward_matches_finite_differences(seed, weighted):
    rng = np.random.default_rng(seed)
    N, C = int(rng.integers(2, 10)), int(rng.integers(2, 6))
    loss = SoftmaxCrossEntropy(label_smoothing=float(rng.uniform(0.05, 0.5)))
    loss.class_weight = rng.uniform(0.2, 5.0, C) if weighted else None
    _, rel = check_loss(loss, rng.standard_normal((N, C)) * 3, rng.integers(0, C, N), rng)
    assert rel < TOL


def test_label_smoothed_softmax_cross_entropy_by_hand():
    # logits [0, ln 3] -> log p = [ln 1/4, ln 3/4]; target 1, e = 0.2, C = 2 -> q = [0.1, 0.9]:
    # loss -(0.1 ln 1/4 + 0.9 ln 3/4), gradient p - q = [0.15, -0.15]
    loss = SoftmaxCrossEntropy(label_smoothing=0.2)
    value = loss.forward(np.array([[0.0, np.log(3.0)]]), np.array([1]))
    assert value == pytest.approx(-(0.1 * np.log(0.25) + 0.9 * np.log(0.75)))
    np.testing.assert_allclose(loss.backward(), [[0.15, -0.15]])


@pytest.mark.parametrize("value", [-0.1, 1.0, float("nan")])
def test_label_smoothing_out_of_range_is_refused(value):
    with pytest.raises(ConfigError, match="label_smoothing"):
        SoftmaxCrossEntropy(label_smoothing=value)


def test_class_weighted_softmax_cross_entropy_by_hand():
    # two rows with logits [0, 0]: each loses ln 2; weights 1 (class 0) and 3 (class 1) -> weighted
    # mean ln 2, gradient row n = w_n / 4 * (softmax - onehot): [1/8, -1/8] and [3/8, -3/8] * [-1, 1]
    loss = SoftmaxCrossEntropy()
    loss.class_weight = np.array([1.0, 3.0])
    assert loss.forward(np.zeros((2, 2)), np.array([0, 1])) == pytest.approx(np.log(2))
    np.testing.assert_allclose(loss.backward(), [[-0.125, 0.125], [0.375, -0.375]])


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


# --- binary cross-entropy, huber, mae -----------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("labels", [True, False])  # integer class labels, or a 0/1 array like the output
def test_binary_cross_entropy_backward_matches_finite_differences(seed, labels):
    rng = np.random.default_rng(seed)
    N, C = int(rng.integers(1, 10)), int(rng.integers(1, 8))
    logits = rng.standard_normal((N, C)) * 4
    target = rng.integers(0, C, N) if labels else rng.integers(0, 2, (N, C)).astype(np.float64)
    _, rel = check_loss(BinaryCrossEntropy(), logits, target, rng)
    assert rel < TOL


def test_binary_cross_entropy_by_hand():
    # logits [[0, ln 3]], labels [1] -> one-hot [[0, 1]]; sigmoid = [1/2, 3/4]
    # entries: -ln(1 - 1/2) = ln 2, -ln(3/4); mean over the N*C = 2 entries
    # gradient (sigmoid - t) / (N*C) = [[1/2, -1/4]] / 2
    loss = BinaryCrossEntropy()
    value = loss.forward(np.array([[0.0, np.log(3.0)]]), np.array([1]))
    assert value == pytest.approx((np.log(2) - np.log(0.75)) / 2)
    np.testing.assert_allclose(loss.backward(), [[0.25, -0.125]])
    # the same with the 0/1 target array given directly, and a single-logit two-class output
    assert loss.forward(np.array([[0.0, np.log(3.0)]]), np.array([[0.0, 1.0]])) == pytest.approx(value)
    assert loss.forward(np.array([[np.log(3.0)]]), np.array([[0.0]])) == pytest.approx(-np.log(0.25))


@pytest.mark.parametrize("scale", [1e4, 1e30])
def test_binary_cross_entropy_is_stable_for_any_logit(scale):
    logits = np.array([[scale, -scale, 0.0], [-scale, scale, 1.0]], dtype=np.float32)
    loss = BinaryCrossEntropy()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss.forward(logits, np.array([0, 0]))
        grad = loss.backward()
    # row 0 confidently right on both huge logits; row 1 wrong on both: each costs `scale`
    expected = (0 + 0 + np.log(2) + scale + scale + (1 + np.log1p(np.exp(-1)))) / 6
    assert value == pytest.approx(expected, rel=1e-6)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad[:, :2] * 6, [[0, 0], [-1, 1]], atol=1e-7)


def test_binary_cross_entropy_refuses_targets_of_the_wrong_shape():
    with pytest.raises(DataError, match=r"expected integer class labels of shape \(2,\) or 0/1 targets of shape \(2, 3\)"):
        BinaryCrossEntropy().forward(np.zeros((2, 3)), np.zeros((2, 2)))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("delta", [0.5, 1.0, 3.0])
def test_huber_backward_matches_finite_differences(seed, delta):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 10)), int(rng.integers(1, 4)))
    target = rng.standard_normal(shape)
    diff = rng.standard_normal(shape) * 2
    diff = np.where(np.abs(np.abs(diff) - delta) < 0.01, delta + 0.05, diff)  # away from the kink at |d| = delta
    _, rel = check_loss(Huber(delta), target + diff, target, rng)
    assert rel < TOL


def test_huber_by_hand():
    # delta 1: errors [0.5, -3] -> [0.5^2 / 2, 1 * (3 - 0.5)] = [0.125, 2.5], mean 1.3125
    # gradient clip(d, -1, 1) / 2 = [0.25, -0.5]
    loss = Huber(1.0)
    assert loss.forward(np.array([[1.5, -1.0]]), np.array([[1.0, 2.0]])) == pytest.approx(1.3125)
    np.testing.assert_allclose(loss.backward(), [[0.25, -0.5]])


@pytest.mark.parametrize("seed", range(6))
def test_mae_backward_matches_finite_differences(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 10)), int(rng.integers(1, 4)))
    target = rng.standard_normal(shape)
    diff = rng.standard_normal(shape)
    diff = np.where(np.abs(diff) < 0.01, 0.05, diff)  # away from the kink at 0
    _, rel = check_loss(MAE(), target + diff, target, rng)
    assert rel < TOL


def test_mae_by_hand():
    # errors [1, -2, 0] -> mean |d| = 1; gradient sign(d) / 3 = [1/3, -1/3, 0]
    loss = MAE()
    assert loss.forward(np.array([[1.0], [0.0], [5.0]]), np.array([[0.0], [2.0], [5.0]])) == 1.0
    np.testing.assert_allclose(loss.backward(), [[1 / 3], [-1 / 3], [0]])


@pytest.mark.parametrize("loss_cls", [BinaryCrossEntropy, Huber, MAE])
def test_float32_stays_float32(loss_cls):
    rng = np.random.default_rng(0)
    out = rng.standard_normal((4, 3)).astype(np.float32)
    target = rng.integers(0, 3, 4) if loss_cls is BinaryCrossEntropy else rng.standard_normal((4, 3)).astype(np.float32)
    loss = loss_cls()
    assert np.isfinite(loss.forward(out, target))
    assert loss.backward().dtype == np.float32
