"""The optimizers' update rules worked by hand, clipping, blocked updates, allocation and state."""

import math

import tracemalloc

import numpy as np
import pytest

from layerwise.optim import optimizers as optim
from layerwise.errors import CheckpointError
from layerwise.optim.optimizers import SGD, Adam, AdamW, RMSprop
from layerwise.optim.schedules import Cosine


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


# --- Adam, AdamW, RMSprop by hand: one parameter p = 1, lr 0.1 (RMSprop 0.01), the gradients given --


def steps(cls, grads, **kwargs):
    p, g, params = one_param()
    opt = cls(params, **kwargs)
    out = []
    for value in grads:
        g[0] = value
        opt.step()
        out.append(p[0])
    return out


def test_adam_by_hand_bias_correction_uses_the_real_step_count():
    # t=1, g=0.5:  m = 0.1*0.5 = 0.05,  v = 0.001*0.25 = 0.00025
    #   m_hat = 0.05/(1-0.9) = 0.5,  v_hat = 0.00025/(1-0.999) = 0.25,  p = 1 - 0.1*0.5/(0.5+1e-8) = 0.900000002
    # t=2, g=-1:   m = 0.045 - 0.1 = -0.055,  v = 0.00024975 + 0.001 = 0.00124975
    #   m_hat = -0.055/0.19 = -0.2894737,  v_hat = 0.00124975/0.001999 = 0.6251876, sqrt 0.7906881
    #   p = 0.900000002 + 0.1*0.2894737/0.7906881 = 0.9366104
    # t=3, g=0.5:  m = -0.0495 + 0.05 = 0.0005, m_hat = 0.0005/0.271 = 0.0018450
    #   v = 0.0012485 + 0.00025 = 0.0014985, v_hat = 0.0014985/0.002997001 = 0.5, sqrt 0.7071068
    #   p = 0.9366104 - 0.1*0.0018450/0.7071068 = 0.9363494
    # (with t stuck at 1, step 2 would use m_hat = -0.55 and v_hat = 1.24975: p = 0.9492)
    assert steps(Adam, [0.5, -1.0, 0.5], lr=0.1) == pytest.approx([0.900000002, 0.9366104, 0.9363494], abs=1e-7)


def test_adam_eps_is_added_to_sqrt_v_hat():
    # eps = 0.1 makes its place visible. t=1: p = 1 - 0.1*0.5/(0.5 + 0.1) = 0.9166667
    # t=2 (g=-1): p = 0.9166667 + 0.1*0.2894737/(0.7906881 + 0.1) = 0.9491667
    # (inside the root, sqrt(v_hat + eps), step 1 would give 1 - 0.05/sqrt(0.35) = 0.9155)
    assert steps(Adam, [0.5, -1.0], lr=0.1, eps=0.1) == pytest.approx([0.9166667, 0.9491667], abs=1e-7)


def test_adam_weight_decay_is_l2_in_the_gradient():
    # t=1: g = 0.5 + 0.1*1 = 0.6, m_hat = 0.6, v_hat = 0.36: p = 1 - 0.1 = 0.9
    # t=2: g = 0.5 + 0.1*0.9 = 0.59; m = 0.054 + 0.059 = 0.113, m_hat = 0.5947368
    #   v = 0.00035964 + 0.0003481 = 0.00070774, v_hat = 0.3540470, sqrt 0.5950185
    #   p = 0.9 - 0.1*0.5947368/0.5950185 = 0.8000473
    assert steps(Adam, [0.5, 0.5], lr=0.1, weight_decay=0.1) == pytest.approx([0.9, 0.8000473], abs=1e-7)


def test_adamw_decays_the_parameter_not_the_gradient():
    # t=1: p = 1*(1 - 0.1*0.1) = 0.99, then the Adam step of g=0.5 (exactly lr): p = 0.89
    # t=2: p = 0.89*0.99 = 0.8811, then m_hat = 0.5, v_hat = 0.25 again: p = 0.7811
    assert steps(AdamW, [0.5, 0.5], lr=0.1, weight_decay=0.1) == pytest.approx([0.89, 0.7811], abs=1e-7)


def test_rmsprop_by_hand():
    # t=1: v = 0.01*0.25 = 0.0025, sqrt 0.05: p = 1 - 0.01*0.5/0.05 = 0.9
    # t=2: v = 0.002475 + 0.0025 = 0.004975, sqrt 0.0705337: p = 0.9 - 0.01*0.5/0.0705337 = 0.8291119
    assert steps(RMSprop, [0.5, 0.5], lr=0.01) == pytest.approx([0.9, 0.8291119], abs=1e-7)


def test_rmsprop_momentum_by_hand():
    # t=1: b = 0.5/0.05 = 10, p = 1 - 0.01*10 = 0.9
    # t=2: b = 0.9*10 + 0.5/0.0705337 = 16.088812, p = 0.9 - 0.16088812 = 0.7391119
    assert steps(RMSprop, [0.5, 0.5], lr=0.01, momentum=0.9) == pytest.approx([0.9, 0.7391119], abs=1e-7)


def test_rmsprop_centered_by_hand():
    # t=1: g_avg = 0.005, v~ = 0.0025 - 0.000025 = 0.002475, sqrt 0.0497494: p = 1 - 0.005/0.0497494 = 0.8994962
    # t=2: g_avg = 0.00495 + 0.005 = 0.00995, v~ = 0.004975 - 0.0000990025 = 0.0048759975, sqrt 0.0698283
    #   p = 0.8994962 - 0.005/0.0698283 = 0.8278921
    assert steps(RMSprop, [0.5, 0.5], lr=0.01, centered=True) == pytest.approx([0.8994962, 0.8278921], abs=1e-7)


def test_clip_norm_by_hand():
    # gradients 3 and 4: global norm 5 > 1, scaled by 1/(5 + 1e-6): 0.6 and 0.8 (to 1e-7); lr 1, p = 0
    a, b = np.zeros(1), np.zeros(1)
    ga, gb = np.array([3.0]), np.array([4.0])
    opt = SGD([("a", a, ga), ("b", b, gb)], lr=1.0, clip_norm=1.0)
    opt.step()
    assert opt.grad_norm == 5.0
    assert [a[0], b[0]] == pytest.approx([-0.6, -0.8], abs=1e-6)
    # a norm below clip_norm leaves the gradients alone: norm 5 < 10
    ga[0], gb[0] = 3.0, 4.0
    SGD([("a", a, ga), ("b", b, gb)], lr=1.0, clip_norm=10.0).step()
    assert (ga[0], gb[0]) == (3.0, 4.0)


def all_optimizers():
    return [
        (SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
        (Adam, dict(lr=0.01, weight_decay=1e-3)),
        (AdamW, dict(lr=0.01)),
        (RMSprop, dict(lr=0.01)),
        (RMSprop, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=1e-3)),
    ]


def model_params(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in [(300, 500), (500,), (1, 70000), (7,)]]
    return [(str(i), p, np.zeros_like(p)) for i, p in enumerate(params)]


def random_steps(opt, params, n, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        for _, _, g in params:
            g[...] = rng.standard_normal(g.shape)
        opt.step()


@pytest.mark.parametrize("cls,kwargs", all_optimizers(), ids=lambda x: getattr(x, "name", ""))
def test_blocked_update_is_bit_identical_to_one_block_per_parameter(cls, kwargs, monkeypatch):
    blocked = model_params()
    opt = cls(blocked, clip_norm=50.0, **kwargs)
    assert len(opt._blocks) > len(blocked)
    monkeypatch.setattr(optim, "BLOCK_SIZE", 1 << 30)
    whole = model_params()
    ref = cls(whole, clip_norm=50.0, **kwargs)
    assert len(ref._blocks) == len(whole)
    random_steps(opt, blocked, 3)
    random_steps(ref, whole, 3)
    for (_, a, _), (_, b, _) in zip(blocked, whole):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls,kwargs", all_optimizers(), ids=lambda x: getattr(x, "name", ""))
def test_a_step_allocates_nothing(cls, kwargs):
    params = model_params()
    opt = cls(params, clip_norm=1.0, **kwargs)
    random_steps(opt, params, 1)
    tracemalloc.start()  # numpy reports its array buffers to tracemalloc
    try:
        for _ in range(3):
            opt.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # one block's temporary would be 256 KB; a few small Python objects come and go
    assert peak < 4096, f"{cls.name} step allocated {peak} bytes"


@pytest.mark.parametrize("cls,kwargs", all_optimizers(), ids=lambda x: getattr(x, "name", ""))
def test_state_dict_resumes_bit_identically(cls, kwargs):
    straight = model_params()
    opt = cls(straight, **kwargs)
    random_steps(opt, straight, 2, seed=1)
    random_steps(opt, straight, 2, seed=2)
    split = model_params()
    first = cls(split, **kwargs)
    random_steps(first, split, 2, seed=1)
    state = {k: v.copy() for k, v in first.state_dict().items()}
    assert ("step" in state) == (cls is not SGD)
    again = [(n, p.copy(), g.copy()) for n, p, g in split]
    second = cls(again, **kwargs)
    second.load_state_dict(state)
    random_steps(second, again, 2, seed=2)
    for (_, a, _), (_, b, _) in zip(straight, again):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_names_what_is_wrong():
    params = model_params()
    opt = Adam(params)
    state = opt.state_dict()
    with pytest.raises(CheckpointError, match="optimizer state step: missing"):
        Adam(params).load_state_dict({k: v for k, v in state.items() if k != "step"})
    with pytest.raises(CheckpointError, match=r"exp_avg_sq/1: float32 \(3,\), expected float32 \(500,\)"):
        Adam(params).load_state_dict({**state, "exp_avg_sq/1": np.zeros(3, np.float32)})
    with pytest.raises(CheckpointError, match="velocity/0: not part of the adam optimizer"):
        Adam(params).load_state_dict({**state, "velocity/0": state["exp_avg/0"]})
    with pytest.raises(CheckpointError, match="step: expected a count >= 0"):
        Adam(params).load_state_dict({**state, "step": np.array([-1], np.int64)})
