"""50 steps of every optimizer, with weight decay, gradient clipping and each schedule, against
PyTorch on random float64 data: parameters must agree to 1e-10 relative at every step.

Skipped (and reported as skipped) when torch is not importable. Each case trains a small linear
regression y = x @ W + b (mean squared error) in both libraries, each computing its own gradients,
for 10 epochs of 5 steps; schedules step once per epoch, plateau on the validation loss.
`python tests/optim/test_torch_optim.py` prints the largest relative difference per optimizer.
"""

import importlib.util

import numpy as np
import pytest

from layerwise.optim.optimizers import OPTIMIZERS
from layerwise.optim.schedules import Constant, Cosine, Exponential, Plateau, Step

# torch is imported when the tests run, not at collection (as tests/nn/test_torch_layers.py does: a
# collected torch inflates the peak RSS that forked children inherit).
if importlib.util.find_spec("torch") is None:
    pytest.skip("torch is not installed: the PyTorch optimizer cross-check did not run (pip install torch==2.13.0)",
                allow_module_level=True)
torch = None  # set by the fixture below, at run time


@pytest.fixture(autouse=True)
def _import_torch():
    global torch
    torch = pytest.importorskip("torch")

EPOCHS, STEPS_PER_EPOCH, LR, WD, CLIP = 10, 5, 0.05, 0.01, 3.0
RTOL = 1e-10

OPTIMIZER_CASES = {
    "sgd": (dict(momentum=0.9, weight_decay=WD), dict(momentum=0.9, weight_decay=WD)),
    "sgd-nesterov": (dict(momentum=0.9, nesterov=True, weight_decay=WD), dict(momentum=0.9, nesterov=True, weight_decay=WD)),
    "adam": (dict(betas=(0.8, 0.95), eps=1e-6, weight_decay=WD), dict(betas=(0.8, 0.95), eps=1e-6, weight_decay=WD)),
    "adamw": (dict(betas=(0.9, 0.99), weight_decay=WD), dict(betas=(0.9, 0.99), weight_decay=WD)),
    "rmsprop": (dict(alpha=0.9, weight_decay=WD), dict(alpha=0.9, weight_decay=WD)),
    "rmsprop-centered-momentum": (dict(alpha=0.9, momentum=0.5, centered=True, weight_decay=WD),
                                  dict(alpha=0.9, momentum=0.5, centered=True, weight_decay=WD)),
}
TORCH_CLASSES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}
WARMUP = 2 * STEPS_PER_EPOCH  # two epochs


def ours_schedule(name):
    if name == "constant":
        return Constant(LR)
    if name == "cosine":
        return Cosine(LR, EPOCHS)
    if name == "step":
        return Step(LR, step_size=3, gamma=0.5)
    if name == "exponential":
        return Exponential(LR, gamma=0.8)
    if name == "plateau":
        return Plateau(LR, factor=0.5, patience=0, threshold=0.2, higher_is_better=False)
    if name == "warmup-constant":
        return Constant(LR, warmup_steps=WARMUP)
    if name == "warmup-step":
        return Step(LR, step_size=3, gamma=0.5, warmup_steps=WARMUP)
    raise AssertionError(name)


def torch_schedule(name, opt):
    """(scheduler, steps it per step?) for the PyTorch side."""
    S = torch.optim.lr_scheduler
    warm = dict(start_factor=1 / WARMUP, end_factor=1.0, total_iters=WARMUP - 1)  # factor (t+1)/W
    return {
        "constant": lambda: (None, False),
        "cosine": lambda: (S.CosineAnnealingLR(opt, T_max=EPOCHS, eta_min=0.0), False),
        "step": lambda: (S.StepLR(opt, step_size=3, gamma=0.5), False),
        "exponential": lambda: (S.ExponentialLR(opt, gamma=0.8), False),
        "plateau": lambda: (S.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=0, threshold=0.2,
                                                threshold_mode="rel", cooldown=0, min_lr=0.0), False),
        "warmup-constant": lambda: (S.LinearLR(opt, **warm), True),
        # StepLR in steps (3 epochs = 15 steps) chained with the per-step warmup
        "warmup-step": lambda: (S.ChainedScheduler([S.LinearLR(opt, **warm),
                                                    S.StepLR(opt, step_size=3 * STEPS_PER_EPOCH, gamma=0.5)]), True),
    }[name]()


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((EPOCHS * STEPS_PER_EPOCH, 8, 6))  # one batch of 8 per step
    y = rng.standard_normal((EPOCHS * STEPS_PER_EPOCH, 8, 3))
    xv, yv = rng.standard_normal((16, 6)), rng.standard_normal((16, 3))
    return x, y, xv, yv, rng.standard_normal((6, 3)), rng.standard_normal(3)


def run_both(case, schedule):
    """Parameters after every step from both libraries, as lists of (W, b) float64 arrays."""
    kind = case.split("-")[0]
    ours_kw, torch_kw = OPTIMIZER_CASES[case]
    x, y, xv, yv, W0, b0 = data()

    W, b = W0.copy(), b0.copy()
    dW, db = np.zeros_like(W), np.zeros_like(b)
    opt = OPTIMIZERS[kind]([("W", W, dW), ("b", b, db)], lr=LR, clip_norm=CLIP, **ours_kw)
    sched = ours_schedule(schedule)
    ours, norms, lrs = [], [], []
    for t in range(EPOCHS * STEPS_PER_EPOCH):
        epoch = t // STEPS_PER_EPOCH
        opt.lr = sched.lr(epoch, t)
        d = 2 * (x[t] @ W + b - y[t]) / y[t].size  # d mean((xW + b - y)^2) / d pred
        np.matmul(x[t].T, d, out=dW)
        np.sum(d, axis=0, out=db)
        opt.step()
        norms.append(opt.grad_norm)
        lrs.append(opt.lr)
        ours.append((W.copy(), b.copy()))
        if (t + 1) % STEPS_PER_EPOCH == 0:
            sched.end_epoch(float(np.mean((xv @ W + b - yv) ** 2)))

    tW = torch.tensor(W0, requires_grad=True)
    tb = torch.tensor(b0, requires_grad=True)
    topt = getattr(torch.optim, TORCH_CLASSES[kind])([tW, tb], lr=LR, foreach=False, **torch_kw)
    tsched, per_step = torch_schedule(schedule, topt)
    theirs = []
    for t in range(EPOCHS * STEPS_PER_EPOCH):
        topt.zero_grad()
        loss = torch.mean((torch.tensor(x[t]) @ tW + tb - torch.tensor(y[t])) ** 2)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([tW, tb], CLIP)
        topt.step()
        theirs.append((tW.detach().numpy().copy(), tb.detach().numpy().copy()))
        if per_step:
            tsched.step()
        elif (t + 1) % STEPS_PER_EPOCH == 0 and tsched is not None:
            if schedule == "plateau":
                with torch.no_grad():
                    tsched.step(float(torch.mean((torch.tensor(xv) @ tW + tb - torch.tensor(yv)) ** 2)))
            else:
                tsched.step()
    return ours, theirs, norms, lrs


def largest_relative_difference(ours, theirs):
    return max(float(np.max(np.abs(a - b) / np.abs(b))) for o, t in zip(ours, theirs) for a, b in zip(o, t))


SCHEDULES = ["constant", "cosine", "step", "exponential", "plateau", "warmup-constant", "warmup-step"]


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("case", list(OPTIMIZER_CASES))
def test_fifty_steps_agree_with_pytorch(case, schedule):
    ours, theirs, norms, lrs = run_both(case, schedule)
    assert len(set(lrs)) > (schedule != "constant")  # the schedule did change the rate
    assert not np.allclose(ours[-1][0], data()[4])  # the parameters did move
    assert max(norms) > CLIP  # clipping acted (in most runs at some steps only)
    assert largest_relative_difference(ours, theirs) < RTOL


if __name__ == "__main__":
    import torch
    for case in OPTIMIZER_CASES:
        worst = max((largest_relative_difference(*run_both(case, s)[:2]), s) for s in SCHEDULES)
        print(f"{case:28} largest relative difference over 50 steps x {len(SCHEDULES)} schedules: {worst[0]:.2e} ({worst[1]})")
