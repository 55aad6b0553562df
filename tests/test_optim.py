"""SGD's update rule, worked by hand, and the learning-rate schedule."""

import math

import numpy as np
import pytest

from layerwise.optim import SGD
from layerwise.schedules import Cosine


def one_param(value=1.0, grad=0.5):
    p = np.array([value])
    g = np.array([grad])
    return p, g, [("w", p, g)]


def test_plain_sgd():
    p, g, params = one_param()
    SGD(params, lr=0.1).step()
    assert p[0] == pytest.approx(1 - 0.1 * 0.5)


def test_momentum_by_hand():
    # v1 = 0.5, p1 = 1 - 0.1*0.5 = 0.95; v2 = 0.9*0.5 + 0.5 = 0.95, p2 = 0.95 - 0.1*0.95 = 0.855
    p, g, params = one_param()
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.step()
    assert p[0] == pytest.approx(0.95)
    opt.step()
    assert p[0] == pytest.approx(0.855)
    assert opt.velocity["w"][0] == pytest.approx(0.95)


def test_nesterov_by_hand():
    # v1 = 0.5; step uses g + mu*v1 = 0.5 + 0.45 = 0.95 -> p1 = 1 - 0.095 = 0.905
    # v2 = 0.45 + 0.5 = 0.95; g + mu*v2 = 0.5 + 0.855 = 1.355 -> p2 = 0.905 - 0.1355 = 0.7695
    p, g, params = one_param()
    opt = SGD(params, lr=0.1, momentum=0.9, nesterov=True)
    opt.step()
    assert p[0] == pytest.approx(0.905)
    opt.step()
    assert p[0] == pytest.approx(0.7695)


def test_weight_decay_by_hand_leaves_the_gradient_alone():
    # g' = 0.5 + 0.1 * 1 = 0.6; p = 1 - 0.1 * 0.6 = 0.94
    p, g, params = one_param()
    SGD(params, lr=0.1, weight_decay=0.1).step()
    assert p[0] == pytest.approx(0.94)
    assert g[0] == 0.5


@pytest.mark.parametrize("nesterov", [False, True])
def test_matches_a_naive_reference_over_many_steps(nesterov):
    rng = np.random.default_rng(0)
    p = rng.standard_normal((4, 3))
    g = np.zeros_like(p)
    opt = SGD([("p", p, g)], lr=0.05, momentum=0.8, nesterov=nesterov, weight_decay=0.01)
    ref_p, ref_v = p.copy(), np.zeros_like(p)
    for _ in range(10):
        g[...] = rng.standard_normal(p.shape)
        d = g + 0.01 * ref_p
        ref_v = 0.8 * ref_v + d
        ref_p = ref_p - 0.05 * (d + 0.8 * ref_v if nesterov else ref_v)
        opt.step()
    np.testing.assert_allclose(p, ref_p, rtol=1e-12)


def test_float32_parameters_stay_float32():
    p = np.ones(3, np.float32)
    g = np.full(3, 0.5, np.float32)
    SGD([("p", p, g)], lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4).step()
    assert p.dtype == np.float32


def test_state_dict_round_trip():
    p, g, params = one_param()
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.step()
    other = SGD([("w", p.copy(), g)], lr=0.1, momentum=0.9)
    other.load_state_dict(opt.state_dict())
    assert other.velocity["w"][0] == opt.velocity["w"][0]


def test_cosine_schedule():
    cos = Cosine(0.1, epochs=10)
    assert cos.epoch_lr(0) == 0.1
    assert cos.epoch_lr(5) == pytest.approx(0.05)
    assert cos.epoch_lr(9) == pytest.approx(0.05 * (1 + math.cos(math.pi * 0.9)))


@pytest.mark.parametrize("nesterov,weight_decay", [(False, 0.0), (True, 1e-3)])
def test_blocked_update_is_bit_identical_to_whole_array_float32_math(nesterov, weight_decay):
    # (300, 500) is cut into row blocks; (500,), (1, 70000) and (7,) are not or only by row
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(np.float32) for s in [(300, 500), (500,), (1, 70000), (7,)]]
    grads = [np.zeros_like(p) for p in params]
    opt = SGD([(str(i), p, g) for i, (p, g) in enumerate(zip(params, grads))], lr=0.1, momentum=0.9,
              nesterov=nesterov, weight_decay=weight_decay)
    assert len(opt._blocks) > len(params)
    ref_p = [p.copy() for p in params]
    ref_v = [np.zeros_like(p) for p in params]
    lr, mu, wd = np.float32(0.1), np.float32(0.9), np.float32(weight_decay)
    for _ in range(3):
        for g, p, v in zip(grads, ref_p, ref_v):
            g[...] = rng.standard_normal(g.shape)
            d = g + wd * p if weight_decay else g
            v[...] = v * mu + d
            p -= (mu * v + d if nesterov else v) * lr
        opt.step()
    for a, b in zip(params, ref_p):
        np.testing.assert_array_equal(a, b)
