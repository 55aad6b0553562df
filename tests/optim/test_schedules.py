"""Learning-rate schedules, warmup and early stopping worked by hand, and their state."""

import math

import pytest

from layerwise.errors import CheckpointError
from layerwise.optim.schedules import Constant, Cosine, EarlyStopping, Exponential, Plateau, Step


def test_constant():
    assert [Constant(0.1).lr(e, 10 * e) for e in range(3)] == [0.1, 0.1, 0.1]


def test_cosine_by_hand():
    # base 0.1 over 4 epochs: 0.1*(1+cos(0))/2 = 0.1, 0.1*(1+cos(pi/4))/2 = 0.0853553,
    # 0.1*(1+cos(pi/2))/2 = 0.05, 0.1*(1+cos(3pi/4))/2 = 0.0146447
    cos = Cosine(0.1, epochs=4)
    assert [cos.epoch_lr(e) for e in range(4)] == pytest.approx([0.1, 0.0853553, 0.05, 0.0146447], abs=1e-7)


def test_step_by_hand():
    # step_size 2, gamma 0.5: epochs 0,1 -> 0.1; 2,3 -> 0.05; 4 -> 0.025
    s = Step(0.1, step_size=2, gamma=0.5)
    assert [s.epoch_lr(e) for e in range(5)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_exponential_by_hand():
    # gamma 0.5: 0.1, 0.05, 0.025
    s = Exponential(0.1, gamma=0.5)
    assert [s.epoch_lr(e) for e in range(3)] == pytest.approx([0.1, 0.05, 0.025])


def test_linear_warmup_is_per_step():
    # warmup over 4 steps (e.g. one epoch of 4 steps): step t uses lr*(t+1)/4: 0.025, 0.05, 0.075, 0.1,
    # then the schedule's own rate
    s = Constant(0.1, warmup_steps=4)
    assert [s.lr(t // 4, t) for t in range(6)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    # over a decaying schedule the factor multiplies the epoch's rate: step 2 of epoch 1 with
    # 2 steps per epoch and a 2-epoch warmup: 0.05 * (2+1)/4 = 0.0375
    s = Step(0.1, step_size=1, gamma=0.5, warmup_steps=4)
    assert s.lr(1, 2) == pytest.approx(0.0375)


def test_plateau_by_hand():
    # factor 0.5, patience 1, threshold 0, higher is better. values:
    #   0.5 best; 0.6 best; 0.6 bad 1 (not > patience); 0.6 bad 2 > 1 -> lr 1 -> 0.5, bad 0;
    #   0.7 best; 0.7 bad 1; 0.7 bad 2 -> lr 0.25
    p = Plateau(1.0, factor=0.5, patience=1, threshold=0.0)
    rates = []
    for v in [0.5, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7]:
        p.end_epoch(v)
        rates.append(p.epoch_lr(0))
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_plateau_threshold_is_relative_and_min_lr_holds():
    # lower is better, threshold 0.1: after 1.0, 0.95 is no improvement (needs < 0.9); patience 0 reduces
    # at once: 1 -> 0.1, then max(0.01, min_lr 0.05) = 0.05, then 0.05 stays (no reduction below min_lr)
    p = Plateau(1.0, factor=0.1, patience=0, threshold=0.1, min_lr=0.05, higher_is_better=False)
    rates = []
    for v in [1.0, 0.95, 0.95, 0.85, 0.85]:
        p.end_epoch(v)
        rates.append(p.current)
    assert rates == [1.0, 0.1, 0.05, 0.05, 0.05]
    assert p.best == 0.85


def test_plateau_state_round_trips_and_refuses_garbage():
    p = Plateau(1.0, factor=0.5, patience=1)
    for v in [0.5, 0.4, 0.4]:
        p.end_epoch(v)
    q = Plateau(1.0, factor=0.5, patience=1)
    q.load_state_dict(p.state_dict())
    assert (q.current, q.best, q.bad_epochs) == (0.5, 0.5, 0)
    with pytest.raises(CheckpointError, match="plateau schedule state"):
        q.load_state_dict({"lr": "fast", "best": None, "bad_epochs": 0})
    with pytest.raises(CheckpointError, match="keeps none"):
        Constant(0.1).load_state_dict({"lr": 1.0})


def test_early_stopping_by_hand():
    # patience 2, min_delta 0.01, higher is better:
    #   0.5 best; 0.505 not > 0.51: bad 1; 0.52 > 0.51: best, bad 0; 0.52 bad 1; 0.525 not > 0.53: bad 2 -> stop
    es = EarlyStopping(patience=2, min_delta=0.01)
    assert [es.update(v) for v in [0.5, 0.505, 0.52, 0.52, 0.525]] == [False, False, False, False, True]
    assert es.best == 0.52


def test_early_stopping_lower_is_better_and_nan_is_no_improvement():
    es = EarlyStopping(patience=1, higher_is_better=False)
    assert es.update(2.0) is False
    assert es.update(1.0) is False
    assert es.update(math.nan) is True
    restored = EarlyStopping(patience=1, higher_is_better=False)
    restored.load_state_dict(es.state_dict())
    assert (restored.best, restored.bad_epochs) == (1.0, 1)
    with pytest.raises(CheckpointError, match="early-stopping state"):
        restored.load_state_dict({"best": 1.0})
