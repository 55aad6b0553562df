"""conv2d, maxpool2d, avgpool2d, global_avgpool, flatten and per-channel batchnorm against PyTorch, in
float64, at several kernel sizes, strides and paddings; agreement to 1e-10 relative (as
test_torch_layers.py, whose helpers these are).

PyTorch computes in (N, C, H, W) with weights (M, C, kh, kw); layerwise inside the model in (N, H, W, C)
with W (kh, kw, C, M): the inputs are transposed to compare, which is exactly what Sequential does.
"""

import numpy as np
import pytest

import test_torch_layers as ttl
from layerwise.nn.batchnorm import BatchNorm
from layerwise.nn.conv import Conv2d
from layerwise.nn.pool import AvgPool2d, GlobalAvgPool, MaxPool2d
from layerwise.nn.shape import Flatten

SPATIAL_CHECKED = {"conv2d", "maxpool2d", "avgpool2d", "global_avgpool", "flatten"}
agree, run_layer, t = ttl.agree, ttl.run_layer, ttl.t


@pytest.fixture(autouse=True, scope="module")
def _import_torch():  # torch at run time, not collection (see test_torch_layers.py)
    ttl.torch = pytest.importorskip("torch")
    ttl.F = ttl.torch.nn.functional


def nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def nhwc(a):
    return a.detach().numpy().transpose(0, 2, 3, 1)


CONV_CASES = [  # (C, M, kernel, stride, padding, H, W)
    (1, 3, 3, 1, 0, 7, 7), (2, 4, 3, 1, 1, 8, 6), (3, 2, 5, 2, 2, 11, 9), (2, 3, 2, 2, 0, 6, 7),
    (4, 5, 3, 3, 1, 10, 10), (3, 1, 1, 1, 0, 4, 5), (2, 2, 4, 2, 3, 5, 5),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_torch(case, bias):
    import torch.nn.functional as F

    C, M, k, s, p, H, W = case
    rng = np.random.default_rng(sum(case))
    layer = Conv2d(C, M, k, stride=s, padding=p, bias=bias, dtype=np.float64)
    layer.reset_parameters(rng)
    if bias:
        layer.params["b"][...] = rng.standard_normal(M)
    x = rng.standard_normal((3, H, W, C))
    y = layer.forward(x)
    dout = rng.standard_normal(y.shape)
    y, dx, grads = run_layer(layer, x, dout)
    tx = t(nchw(x), True)
    tW = t(np.ascontiguousarray(layer.params["W"].transpose(3, 2, 0, 1)), True)  # HWIO -> OIHW
    tb = t(layer.params["b"], True) if bias else None
    ty = F.conv2d(tx, tW, tb, stride=s, padding=p)
    ty.backward(t(nchw(dout)))
    pairs = [(y, nhwc(ty)), (dx, nhwc(tx.grad)), (grads["W"], tW.grad.numpy().transpose(2, 3, 1, 0))]
    if bias:
        pairs.append((grads["b"], tb.grad))
    agree("conv2d", pairs)


POOL_CASES = [(2, None, 8, 8), (2, None, 7, 9), (3, 2, 9, 8), (2, 1, 5, 6), (3, 3, 9, 9), (3, 1, 6, 5)]


@pytest.mark.parametrize("kind", ["maxpool2d", "avgpool2d"])
@pytest.mark.parametrize("case", POOL_CASES)
def test_pools_match_torch(kind, case):
    import torch.nn.functional as F

    k, s, H, W = case
    rng = np.random.default_rng(H * W + k)
    layer = (MaxPool2d if kind == "maxpool2d" else AvgPool2d)(k, s)
    x = rng.standard_normal((3, H, W, 4))
    dout = rng.standard_normal(layer.forward(x).shape)
    y, dx, _ = run_layer(layer, x, dout)
    tx = t(nchw(x), True)
    ty = (F.max_pool2d if kind == "maxpool2d" else F.avg_pool2d)(tx, k, s or k)
    ty.backward(t(nchw(dout)))
    agree(kind, [(y, nhwc(ty)), (dx, nhwc(tx.grad))])


def test_maxpool_sends_a_tie_to_one_entry_as_torch_does():
    import torch.nn.functional as F

    x = np.zeros((2, 4, 4, 3))  # every window a four-way tie (ReLU's zeros)
    x[0, 1, 1, 0] = 1.0
    layer = MaxPool2d(2)
    dout = np.arange(1, 2 * 2 * 2 * 3 + 1, dtype=np.float64).reshape(2, 2, 2, 3)
    _, dx, _ = run_layer(layer, x, dout)
    assert dx.sum() == dout.sum() and np.count_nonzero(dx) == dout.size  # one entry per window
    tx = t(nchw(x), True)
    F.max_pool2d(tx, 2).backward(t(nchw(dout)))
    agree("maxpool2d", [(dx, nhwc(tx.grad))])


def test_global_avgpool_and_flatten_match_torch():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5, 4, 6))
    layer = GlobalAvgPool()
    dout = rng.standard_normal((3, 6))
    y, dx, _ = run_layer(layer, x, dout)
    tx = t(nchw(x), True)
    ty = tx.mean(dim=(2, 3))
    ty.backward(t(dout))
    agree("global_avgpool", [(y, ty), (dx, nhwc(tx.grad))])
    flat = Flatten()
    dflat = rng.standard_normal((3, 5 * 4 * 6))
    y, dx, _ = run_layer(flat, x, dflat)
    tx = t(x, True)  # flatten of channels-last data: torch's flatten of the same (N, H, W, C) array
    ty = tx.flatten(1)
    ty.backward(t(dflat))
    agree("flatten", [(y, ty), (dx, tx.grad)])


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_per_channel_matches_torch_batchnorm2d(training):
    import torch.nn.functional as F

    rng = np.random.default_rng(11)
    C = 4
    x = rng.standard_normal((3, 5, 6, C)) * 2 + rng.standard_normal(C)
    layer = BatchNorm(C, momentum=0.2, eps=1e-4, dtype=np.float64)
    layer.params["gamma"][...] = rng.standard_normal(C)
    layer.params["beta"][...] = rng.standard_normal(C)
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2, C)
    rm, rv = t(layer.buffers["running_mean"].copy()), t(layer.buffers["running_var"].copy())
    layer.training = training
    dout = rng.standard_normal(x.shape)
    y, dx, grads = run_layer(layer, x, dout)
    tx, tg, tb = t(nchw(x), True), t(layer.params["gamma"], True), t(layer.params["beta"], True)
    ty = F.batch_norm(tx, rm, rv, tg, tb, training=training, momentum=0.2, eps=1e-4)
    ty.backward(t(nchw(dout)))
    agree("batchnorm", [(y, nhwc(ty)), (dx, nhwc(tx.grad)), (grads["gamma"], tg.grad), (grads["beta"], tb.grad),
                        (layer.buffers["running_mean"], rm), (layer.buffers["running_var"], rv)])
