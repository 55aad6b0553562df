"""Sequential: end-to-end gradients against finite differences, state dicts, batched predict."""

import numpy as np
import pytest

from layerwise.errors import CheckpointError
from layerwise.views.gradcheck import compare, numerical_gradient
from layerwise.nn.losses import MSE, SoftmaxCrossEntropy
from layerwise.nn.registry import build_model

SPECS = [
    {"type": "linear", "out_features": 7},
    {"type": "relu"},
    {"type": "linear", "out_features": 6, "init": "xavier"},
    {"type": "tanh"},
    {"type": "linear", "out_features": 5, "bias": False},
    {"type": "sigmoid"},
    {"type": "linear", "out_features": 4, "init": "uniform"},
]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("loss_cls", [SoftmaxCrossEntropy, MSE])
def test_sequential_gradients_match_finite_differences(seed, loss_cls):
    rng = np.random.default_rng(seed)
    N = int(rng.integers(2, 8))
    model = build_model(SPECS, 6, 4, rng=rng, dtype=np.float64)
    for _, p, _ in model.named_parameters():
        p += 0.1 * rng.standard_normal(p.shape)  # nonzero biases too
    x = rng.standard_normal((N, 6))
    target = rng.integers(0, 4, N) if loss_cls is SoftmaxCrossEntropy else rng.standard_normal((N, 4))
    loss_fn = loss_cls()

    def loss():
        return loss_fn.forward(model.forward(x), target)

    loss()
    dx = model.backward(loss_fn.backward()).copy()
    analytic = {name: g.copy() for name, _, g in model.named_parameters()}
    for name, param, _ in model.named_parameters():
        numeric = numerical_gradient(loss, param, np.arange(param.size))
        _, rel = compare(analytic[name], numeric)
        assert rel < 1e-6, f"{name}: relative error {rel:.2e}"
    _, rel = compare(dx, numerical_gradient(loss, x, np.arange(x.size)))
    assert rel < 1e-6


def test_backward_without_input_grad_gives_the_same_parameter_grads():
    rng = np.random.default_rng(0)
    model = build_model(SPECS, 6, 4, rng=rng)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    dout = rng.standard_normal((5, 4)).astype(np.float32)
    model.forward(x)
    model.backward(dout)
    full = {n: g.copy() for n, _, g in model.named_parameters()}
    model.forward(x)
    assert model.backward(dout, input_grad=False) is None
    for name, _, grad in model.named_parameters():
        np.testing.assert_array_equal(grad, full[name])


def test_parameters_are_named_by_layer_index():
    model = build_model(SPECS, 6, 4, rng=np.random.default_rng(0))
    names = [n for n, _, _ in model.named_parameters()]
    assert names == ["0.W", "0.b", "2.W", "2.b", "4.W", "6.W", "6.b"]
    assert model.num_parameters() == 6 * 7 + 7 + 7 * 6 + 6 + 6 * 5 + 5 * 4 + 4


def test_state_dict_round_trip_and_mismatch():
    a = build_model(SPECS, 6, 4, rng=np.random.default_rng(0))
    b = build_model(SPECS, 6, 4, rng=np.random.default_rng(1))
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(2).standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    state = a.state_dict()
    state["0.W"] = state["0.W"][:, :3]
    with pytest.raises(CheckpointError, match=r"0\.W has shape \(6, 3\)"):
        b.load_state_dict(state)
    del state["0.W"]
    with pytest.raises(CheckpointError, match=r"missing \['0\.W'\]"):
        b.load_state_dict(state)


def test_state_dict_is_a_copy():
    model = build_model(SPECS, 6, 4, rng=np.random.default_rng(0))
    state = model.state_dict()
    state["0.W"][...] = 0
    assert np.any(model.layers[0].params["W"] != 0)


def test_predict_in_batches_equals_one_forward():
    model = build_model(SPECS, 6, 4, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((23, 6)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, batch_size=5), model.forward(x), rtol=1e-6, atol=1e-6)


def test_same_seed_same_weights():
    a = build_model(SPECS, 6, 4, rng=np.random.default_rng(7))
    b = build_model(SPECS, 6, 4, rng=np.random.default_rng(7))
    for (_, p, _), (_, q, _) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p, q)


def peak_bytes_of_steps(model, loss, opt, x, y):
    """The most new memory held at once during three training steps, after two warm-up steps."""
    import tracemalloc

    from layerwise.run.trainer import train_step

    for _ in range(2):
        train_step(model, loss, opt, x, y)
    tracemalloc.start()
    try:
        for _ in range(3):
            train_step(model, loss, opt, x, y)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("loss_name", ["softmax_cross_entropy", "binary_cross_entropy"])
def test_a_training_step_allocates_no_activation_sized_array(loss_name):
    # Every layer writes into buffers it keeps: after two warm-up steps, three more steps must never
    # hold more new memory at once than NumPy's own fixed ~32 KB loop buffer (broadcasting ops) and the
    # loss's (N, C) scratch: less than the smallest activation here, 128 x 128 float32 = 64 KB.
    from layerwise.nn.losses import LOSSES
    from layerwise.optim.optimizers import SGD
    from layerwise.nn.registry import build_model

    specs = [{"type": "dropout", "p": 0.2}, {"type": "linear", "out_features": 256}, {"type": "batchnorm"},
             {"type": "relu"}, {"type": "dropout", "p": 0.5}]
    for act in ("leaky_relu", "elu", "gelu", "softplus", "sigmoid", "tanh"):
        specs += [{"type": "linear", "out_features": 128}, {"type": act}]
    specs.append({"type": "linear", "out_features": 10})
    model = build_model(specs, 784, 10, rng=np.random.default_rng(0))
    model.seed_random([0])
    loss, opt = LOSSES[loss_name](), SGD(model.named_parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((128, 784)).astype(np.float32), rng.integers(0, 10, 128)
    peak = peak_bytes_of_steps(model, loss, opt, x, y)
    assert peak < 60_000, f"a training step allocated {peak} bytes at once"


def test_a_cnn_training_step_allocates_no_activation_sized_array():
    # The spatial layers keep their buffers too: a batchnorm on the model's channels-last input view,
    # a strided padded conv (whose dx is a slice), overlapping max-pool windows, an average pool.
    from layerwise.nn.losses import LOSSES
    from layerwise.nn.registry import build_model
    from layerwise.optim.optimizers import SGD

    specs = [{"type": "batchnorm"}, {"type": "conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1},
             {"type": "batchnorm"}, {"type": "relu"}, {"type": "conv2d", "out_channels": 16, "kernel_size": 3,
             "stride": 2, "padding": 1}, {"type": "relu"}, {"type": "maxpool2d", "kernel_size": 3, "stride": 1},
             {"type": "avgpool2d", "kernel_size": 2}, {"type": "flatten"}, {"type": "linear", "out_features": 10}]
    model = build_model(specs, 3 * 32 * 32, 10, rng=np.random.default_rng(0), input_shape=(3, 32, 32))
    loss, opt = LOSSES["softmax_cross_entropy"](), SGD(model.named_parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((128, 3 * 32 * 32)).astype(np.float32), rng.integers(0, 10, 128)
    peak = peak_bytes_of_steps(model, loss, opt, x, y)
    # NumPy's strided loops over non-contiguous views (col2im, overlapping pool windows) use its fixed
    # 8192-element buffers, one per operand: about 100 KB whatever the batch. The smallest activation
    # here is 128 x 16x7x7 float32 = 401 KB, the input 1.6 MB.
    assert peak < 200_000, f"a training step allocated {peak} bytes at once"
