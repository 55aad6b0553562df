"""Every layer's forward/backward and every loss's value/gradient against PyTorch, in float64.

Skipped (and the skip reported) when torch is not importable; `.ci/run` installs it so CI runs this.
Agreement is required to 1e-10 relative: max |ours - torch| / max |torch| per array. The largest
relative difference seen for each layer and loss is printed at the end of the test session.

torch is imported when these tests run, not when pytest collects this module: importing it at
collection would grow every later-forked child process's inherited peak RSS by ~150 MB (the memory
bounds of tests/run/test_hostile_runs.py measure a child's ru_maxrss, which counts the forked parent).
"""

import importlib.util

import numpy as np
import pytest

from layerwise.nn.activations import ELU, GELU, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from layerwise.nn.batchnorm import BatchNorm
from layerwise.nn.dropout import Dropout
from layerwise.nn.registry import LAYERS
from layerwise.nn.linear import Linear
from layerwise.nn.losses import LOSSES, MAE, MSE, BinaryCrossEntropy, Huber, SoftmaxCrossEntropy


def _torch_installed():
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError, AttributeError):
        return False


if not _torch_installed():
    pytest.skip("torch is not installed: the PyTorch cross-check did not run (pip install torch==2.13.0)",
                allow_module_level=True)

torch = F = None  # set by the fixture below, at run time


@pytest.fixture(autouse=True, scope="module")
def _import_torch():
    global torch, F
    torch = pytest.importorskip("torch")
    F = torch.nn.functional

TOL = 1e-10
LARGEST = {}  # "name" -> largest relative difference seen, printed by conftest's terminal summary
SEEDS = range(4)


def rel_diff(ours, theirs):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape
    scale = max(np.abs(theirs).max(initial=0.0), 1e-300)
    return float(np.abs(ours - theirs).max(initial=0.0) / scale)


def agree(name, pairs):
    """Every (ours, torch) pair agrees to TOL; records the largest difference under `name`."""
    worst = max(rel_diff(a, b) for a, b in pairs)
    LARGEST[name] = max(LARGEST.get(name, 0.0), worst)
    assert worst < TOL, f"{name}: relative difference {worst:.2e}"


def t(array, grad=False):
    return torch.tensor(array, dtype=torch.float64, requires_grad=grad)


def run_layer(layer, x, dout):
    """Our forward and backward: (y, dx, grads) as copies."""
    y = layer.forward(x).copy()
    dx = layer.backward(dout).copy()
    return y, dx, {k: g.copy() for k, g in layer.grads.items()}


def data(seed, shape=None):
    rng = np.random.default_rng(seed)
    shape = shape or (int(rng.integers(2, 12)), int(rng.integers(1, 10)))
    return rng, rng.standard_normal(shape) * 3, rng.standard_normal(shape)


ELEMENTWISE = {
    "relu": (ReLU, {}, lambda x: F.relu(x)),
    "leaky_relu": (LeakyReLU, {"negative_slope": 0.2}, lambda x: F.leaky_relu(x, 0.2)),
    "elu": (ELU, {"alpha": 1.5}, lambda x: F.elu(x, 1.5)),
    "gelu": (GELU, {}, lambda x: F.gelu(x, approximate="tanh")),
    "softplus": (Softplus, {}, lambda x: F.softplus(x)),
    "sigmoid": (Sigmoid, {}, lambda x: torch.sigmoid(x)),
    "tanh": (Tanh, {}, lambda x: torch.tanh(x)),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_layers_match_torch(name, seed):
    cls, kwargs, torch_fn = ELEMENTWISE[name]
    _, x, dout = data(seed)
    y, dx, _ = run_layer(cls(**kwargs), x, dout)
    tx = t(x, grad=True)
    ty = torch_fn(tx)
    ty.backward(t(dout))
    agree(name, [(y, ty), (dx, tx.grad)])


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_matches_torch(seed):
    rng, x, _ = data(seed)
    M = int(rng.integers(1, 10))
    layer = Linear(x.shape[1], M, dtype=np.float64)
    layer.reset_parameters(rng)
    layer.params["b"][...] = rng.standard_normal(M)
    dout = rng.standard_normal((len(x), M))
    y, dx, grads = run_layer(layer, x, dout)
    tx, tW, tb = t(x, True), t(layer.params["W"], True), t(layer.params["b"], True)
    ty = tx @ tW + tb  # PyTorch's F.linear with the weight transposed: layerwise keeps W as (D, M)
    ty.backward(t(dout))
    agree("linear", [(y, ty), (dx, tx.grad), (grads["W"], tW.grad), (grads["b"], tb.grad)])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_matches_torch_given_the_same_mask(seed, p):
    # The masks come from different generators, so torch's dropout rule is applied to ours: the
    # kept entries scaled by 1 / (1 - p) (F.dropout's inverted scaling), the rest zero.
    _, x, dout = data(seed)
    layer = Dropout(p)
    layer.reset_rng(seed)
    y, dx, _ = run_layer(layer, x, dout)
    keep = t((y != 0).astype(np.float64))
    tx = t(x, True)
    ty = tx * keep / (1 - p)
    ty.backward(t(dout))
    agree("dropout", [(y, ty), (dx, tx.grad)])
    # and torch's own F.dropout keeps 1 - p of the entries too (same rule, its own stream)
    kept = (F.dropout(torch.ones(400, 500, dtype=torch.float64), p) != 0).double().mean().item()
    assert abs(kept - (1 - p)) < 5 * np.sqrt(p * (1 - p) / 200_000)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_matches_torch(seed, training):
    rng, x, dout = data(seed)
    x = x + rng.standard_normal(x.shape[1])  # a per-feature offset
    D = x.shape[1]
    layer = BatchNorm(D, momentum=0.2, eps=1e-4, dtype=np.float64)
    layer.params["gamma"][...] = rng.standard_normal(D)
    layer.params["beta"][...] = rng.standard_normal(D)
    layer.buffers["running_mean"][...] = rng.standard_normal(D)
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2, D)
    rm, rv = t(layer.buffers["running_mean"].copy()), t(layer.buffers["running_var"].copy())
    layer.training = training
    y, dx, grads = run_layer(layer, x, dout)
    tx, tg, tb = t(x, True), t(layer.params["gamma"], True), t(layer.params["beta"], True)
    ty = F.batch_norm(tx, rm, rv, tg, tb, training=training, momentum=0.2, eps=1e-4)  # updates rm, rv in place
    ty.backward(t(dout))
    agree("batchnorm", [
        (y, ty), (dx, tx.grad), (grads["gamma"], tg.grad), (grads["beta"], tb.grad),
        (layer.buffers["running_mean"], rm), (layer.buffers["running_var"], rv),
    ])


def test_every_layer_is_cross_checked():
    from test_torch_spatial import SPATIAL_CHECKED  # conv2d, the pools, flatten: tests/nn/test_torch_spatial.py

    assert set(LAYERS) == set(ELEMENTWISE) | {"linear", "dropout", "batchnorm"} | SPATIAL_CHECKED


# --- losses ---------------------------------------------------------------------------------------


def loss_case(name, rng):
    """(our loss, output, our target, torch loss function of (output tensor))."""
    N, C = int(rng.integers(1, 12)), int(rng.integers(2, 10))
    z = rng.standard_normal((N, C)) * 4
    if name == "softmax_cross_entropy":
        labels = rng.integers(0, C, N)
        return SoftmaxCrossEntropy(), z, labels, lambda tz: F.cross_entropy(tz, torch.tensor(labels))
    if name == "binary_cross_entropy":
        labels = rng.integers(0, C, N)
        onehot = np.eye(C)[labels]
        return BinaryCrossEntropy(), z, labels, lambda tz: F.binary_cross_entropy_with_logits(tz, t(onehot))
    target = rng.standard_normal((N, C)) * 2
    if name == "mse":
        return MSE(), z, target, lambda tz: F.mse_loss(tz, t(target))
    if name == "huber":
        return Huber(1.5), z, target, lambda tz: F.huber_loss(tz, t(target), delta=1.5)
    return MAE(), z, target, lambda tz: F.l1_loss(tz, t(target))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", LOSSES)
def test_losses_match_torch(name, seed):
    loss, z, target, torch_loss = loss_case(name, np.random.default_rng(seed))
    value = loss.forward(z, target)
    grad = loss.backward().copy()
    tz = t(z, True)
    tvalue = torch_loss(tz)
    tvalue.backward()
    agree(f"loss {name}", [(value, tvalue.item()), (grad, tz.grad)])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothed_cross_entropy_matches_torch(seed, weighted):
    # PyTorch's CrossEntropyLoss(weight, label_smoothing): the smoothing term weights class c by w_c
    rng = np.random.default_rng(seed)
    N, C = int(rng.integers(1, 12)), int(rng.integers(2, 10))
    z, labels, e = rng.standard_normal((N, C)) * 4, rng.integers(0, C, N), float(rng.uniform(0.05, 0.5))
    loss = SoftmaxCrossEntropy(label_smoothing=e)
    loss.class_weight = rng.uniform(0.2, 5.0, C) if weighted else None
    value = loss.forward(z, labels)
    grad = loss.backward().copy()
    tz = t(z, True)
    weight = t(loss.class_weight) if weighted else None
    tvalue = F.cross_entropy(tz, torch.tensor(labels), weight=weight, label_smoothing=e)
    tvalue.backward()
    agree("loss smoothed cross-entropy", [(value, tvalue.item()), (grad, tz.grad)])


def test_binary_cross_entropy_on_multi_label_targets_matches_torch():
    rng = np.random.default_rng(9)
    z, target = rng.standard_normal((7, 5)) * 4, rng.integers(0, 2, (7, 5)).astype(np.float64)
    loss = BinaryCrossEntropy()
    value = loss.forward(z, target)
    tz = t(z, True)
    tvalue = F.binary_cross_entropy_with_logits(tz, t(target))
    tvalue.backward()
    agree("loss binary_cross_entropy", [(value, tvalue.item()), (loss.backward(), tz.grad)])
