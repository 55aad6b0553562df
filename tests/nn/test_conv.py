"""conv2d, the pools and flatten: gradients in float64 (finite differences), gradcheck rows of a CNN config
with planted bugs, shapes that do not chain, and the buffers kept between steps."""

import numpy as np
import pytest
from click.testing import CliRunner

from layerwise.cli import main
from layerwise.errors import ConfigError
from layerwise.nn import conv
from layerwise.nn.conv import Conv2d
from layerwise.nn.pool import AvgPool2d, GlobalAvgPool, MaxPool2d
from layerwise.nn.registry import build_model
from layerwise.nn.shape import Flatten
from layerwise.views.gradcheck import check_layer
from tinycnn import tiny_cnn

TOL = 1e-7


@pytest.mark.parametrize("k,s,p", [(3, 1, 0), (3, 1, 1), (5, 2, 2), (2, 2, 0), (4, 3, 1)])
def test_conv2d_gradients_match_finite_differences(k, s, p):
    rng = np.random.default_rng(k * 10 + s + p)
    layer = Conv2d(3, 4, k, stride=s, padding=p, dtype=np.float64)
    layer.reset_parameters(rng)
    layer.params["b"][...] = rng.standard_normal(4)
    errors = check_layer(layer, rng.standard_normal((2, 9, 8, 3)), rng)
    assert set(errors) == {"x", "W", "b"}
    assert max(rel for _, rel in errors.values()) < TOL, errors


@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d])
@pytest.mark.parametrize("k,s", [(2, None), (3, 2), (2, 1), (3, 3)])
def test_pool_gradients_match_finite_differences(cls, k, s):
    rng = np.random.default_rng(k + (s or 0))
    errors = check_layer(cls(k, s), rng.standard_normal((2, 7, 9, 3)), rng)
    assert errors["x"][1] < TOL, errors


@pytest.mark.parametrize("layer", [GlobalAvgPool(), Flatten()])
def test_global_avgpool_and_flatten_gradients(layer):
    rng = np.random.default_rng(3)
    assert check_layer(layer, rng.standard_normal((3, 4, 5, 2)), rng)["x"][1] < TOL


def test_conv2d_by_hand():
    # A 3x3 image 1..9 and a 2x2 kernel [[1, 0], [0, -1]]: each output is top-left minus bottom-right,
    # 1-5, 2-6, 4-8, 5-9 = -4 everywhere, plus the bias 0.5.
    layer = Conv2d(1, 1, 2, dtype=np.float64)
    layer.params["W"][:, :, 0, 0] = [[1, 0], [0, -1]]
    layer.params["b"][...] = 0.5
    x = np.arange(1, 10, dtype=np.float64).reshape(1, 3, 3, 1)
    assert layer.forward(x)[0, :, :, 0].tolist() == [[-3.5, -3.5], [-3.5, -3.5]]
    # dL/dx for dout = 1: each input pixel gets the kernel entries that touched it
    dx = layer.backward(np.ones((1, 2, 2, 1)))[0, :, :, 0]
    assert dx.tolist() == [[1, 1, 0], [1, 0, -1], [0, -1, -1]]


def test_maxpool_sends_each_window_gradient_to_one_argmax():
    x = np.zeros((1, 2, 4, 1))  # two 2x2 windows, every entry tied
    x[0, 1, 3, 0] = 2.0  # except one clear maximum in the second window
    layer = MaxPool2d(2)
    assert layer.forward(x)[0, 0, :, 0].tolist() == [0.0, 2.0]
    dx = layer.backward(np.array([[[[5.0], [7.0]]]]))[0, :, :, 0]
    assert dx.tolist() == [[5, 0, 0, 0], [0, 0, 0, 7]]  # the first of the tie (row-major), the maximum


def test_model_input_is_channels_first_and_its_gradient_comes_back_so():
    rng = np.random.default_rng(0)
    model = build_model([{"type": "conv2d", "out_channels": 2, "kernel_size": 3}, {"type": "flatten"},
                         {"type": "linear"}], 12, 3, rng=rng, dtype=np.float64, input_shape=(2, 3, 2 * 1 + 2))
    x = rng.standard_normal((5, 2, 3, 4))  # (N, C, H, W)
    flat = model.forward(x.reshape(5, -1)).copy()  # rows of C*H*W in that order: the same model inputs
    assert np.array_equal(model.forward(x), flat)
    dx = model.backward(np.ones((5, 3)))
    assert dx.shape == (5, 2, 3, 4)
    # channel 0 of the input only reaches the kernel's channel 0: perturbing x[:, 0] changes the output
    # by exactly what dx[:, 0] predicts
    x2 = x.copy()
    x2[0, 1, 2, 3] += 1e-6
    change = (model.forward(x2).sum() - model.forward(x).sum()) / 1e-6
    assert abs(change - dx[0, 1, 2, 3]) < 1e-6


def test_training_step_reuses_its_buffers():
    rng = np.random.default_rng(0)
    layer = Conv2d(3, 4, 3, padding=1)
    layer.reset_parameters(rng)
    x = rng.standard_normal((4, 6, 6, 3)).astype(np.float32)
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    kept = ("_cols", "_y", "_xp", "_dW_block", "_dcols", "_dxp", "_dx", "_flipped")
    ids = [id(getattr(layer, name)) for name in kept]
    y2 = layer.forward(x)
    layer.backward(np.ones_like(y2))
    assert [id(getattr(layer, name)) for name in kept] == ids
    assert np.shares_memory(y, y2) and dx.dtype == np.float32


@pytest.mark.parametrize("layers,fragments", [
    ([{"type": "conv2d", "out_channels": 4, "kernel_size": 9}], ["model.layers[0]: conv2d: input 1×8×8 is smaller than kernel 9"]),
    ([{"type": "maxpool2d", "kernel_size": 2}, {"type": "conv2d", "out_channels": 4, "kernel_size": 5}],
     ["model.layers[1]: conv2d: input 1×4×4 is smaller than kernel 5"]),
    ([{"type": "conv2d", "out_channels": 4, "kernel_size": 3}, {"type": "linear"}],
     ["model.layers[1]: linear takes rows of features but receives images 4×6×6", "flatten"]),
    ([{"type": "flatten"}, {"type": "conv2d", "out_channels": 4, "kernel_size": 3}],
     ["model.layers[1]: conv2d needs images", "receives 64 features"]),
    ([{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "in_channels": 3}],
     ["model.layers[0].in_channels: 3 does not chain", "1×8×8 (1 channels)"]),
    ([{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": -1}], ["padding: expected a non-negative integer"]),
    ([{"type": "conv2d", "out_channels": 4, "kernel_size": 3}], ["last layer gives 4×6×6 outputs but the task needs 10"]),
])
def test_shapes_that_do_not_chain_name_the_layer_and_shapes(layers, fragments):
    with pytest.raises(ConfigError) as e:
        build_model(layers, 64, 10, input_shape=(1, 8, 8))
    for fragment in fragments:
        assert fragment in str(e.value)


def test_spatial_layers_need_image_data():
    with pytest.raises(ConfigError, match="need image data"):
        build_model([{"type": "conv2d", "out_channels": 2, "kernel_size": 3}], 5, None)


def test_memory_check_counts_the_conv_buffers(monkeypatch):
    specs = [{"type": "conv2d", "out_channels": 64, "kernel_size": 5, "padding": 2}]
    needed = []
    monkeypatch.setattr("layerwise.nn.registry.check_fits", lambda n, what, fix: needed.append(n))
    build_model(specs, 784, None, input_shape=(1, 28, 28), rows=100)
    conv_only = needed[-1]
    # outputs 64x28x28 per example, the padded input 32x32, db's ones 28x28, and for dx (stride 1) the
    # dout padded by 2 (64x32x32) and dx (1x28x28); the patches are built a block of images at a time:
    # two buffers of BLOCK_BYTES (one image's input patches, 28*28*25 floats, and its dout's, 28*28*25*64
    # floats = 5 MB, more than BLOCK_BYTES) whatever the batch
    from layerwise.nn.conv import BLOCK_BYTES

    per_example = 64 * 784 + 32 * 32 + 784 + 64 * 32 * 32 + 784
    blocks = max(BLOCK_BYTES, 784 * 25 * 4) + max(BLOCK_BYTES, 784 * 25 * 64 * 4)
    assert conv_only == 4 * (6 * (25 * 64 + 64) + 2 * 100 * per_example) + blocks


def cnn_gradcheck(tmp_path):
    return CliRunner().invoke(main, ["gradcheck", str(tiny_cnn(tmp_path))])


def rows(output):
    return {line.split(":")[0]: line.split()[-1] for line in output.splitlines() if line[:1].isdigit() or line.startswith("loss")}


def test_gradcheck_passes_every_row_of_a_cnn(tmp_path):
    result = cnn_gradcheck(tmp_path)
    assert result.exit_code == 0, result.output
    assert rows(result.output) == {**{str(i): "PASS" for i in range(10)}, "loss": "PASS"}
    assert "Conv2d(in_channels=3, out_channels=4, kernel_size=3, stride=2" in result.output


def test_gradcheck_fails_exactly_the_stride_1_conv_row_without_the_kernel_flip(tmp_path, monkeypatch):
    # A stride-1 conv's dx is dout convolved with the kernel turned 180 degrees; this bug forgets the turn.
    monkeypatch.setattr(conv, "flipped_kernel", lambda W, out: np.copyto(out, W.transpose(0, 1, 3, 2)))
    result = cnn_gradcheck(tmp_path)
    assert result.exit_code == 1
    assert {k for k, v in rows(result.output).items() if v == "FAIL"} == {"0"}


def test_gradcheck_fails_exactly_the_strided_conv_row_with_col2im_unflipped(tmp_path, monkeypatch):
    # A strided conv's dx is im2col's adjoint; this bug sends offset (i, j)'s gradient to offset
    # (kh-1-i, kw-1-j) instead, as if the kernel were turned.
    def unflipped(dxp, dcols, kh, kw, stride):
        _, ho, wo = dcols.shape[:3]
        for i in range(kh):
            for j in range(kw):
                dxp[:, conv.window_slices(i, stride, ho), conv.window_slices(j, stride, wo), :] += \
                    dcols[:, :, :, kh - 1 - i, kw - 1 - j, :]

    monkeypatch.setattr(conv, "col2im_add", unflipped)
    result = cnn_gradcheck(tmp_path)
    assert result.exit_code == 1
    assert {k for k, v in rows(result.output).items() if v == "FAIL"} == {"4"}


def test_gradcheck_fails_exactly_a_maxpool_sending_gradient_to_every_entry(tmp_path, monkeypatch):
    def backward(self, dout, input_grad=True):  # wrong: the whole window gets the gradient (avg-pool-like)
        n, h, w, c = self._in_shape
        k = self.kernel_size
        dx = np.zeros(self._in_shape, dout.dtype)
        dx[:, : h // k * k, : w // k * k] = np.repeat(np.repeat(dout, k, axis=1), k, axis=2)
        return dx

    monkeypatch.setattr(MaxPool2d, "backward", backward)
    result = cnn_gradcheck(tmp_path)
    assert result.exit_code == 1
    assert {k for k, v in rows(result.output).items() if v == "FAIL"} == {"3"}


def test_gradcheck_fails_exactly_an_avgpool_without_its_1_over_k2(tmp_path, monkeypatch):
    real = AvgPool2d.backward
    monkeypatch.setattr(AvgPool2d, "backward", lambda self, dout, input_grad=True: real(self, dout) * 4)
    result = cnn_gradcheck(tmp_path)
    assert {k for k, v in rows(result.output).items() if v == "FAIL"} == {"6"}


@pytest.mark.parametrize("stride,channels", [(1, 3), (2, 3), (1, 1)])
def test_blocks_of_images_give_the_one_block_result_and_allocate_nothing(monkeypatch, stride, channels):
    import tracemalloc

    import layerwise.nn.conv as conv

    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 16, 16, channels))
    dout_shape = None
    results = []
    block_bytes = 2 * 256 * 9 * channels * 8 // (4 if stride == 2 else 1)  # patches of about 2 images
    for block_bytes in (2 ** 30, block_bytes):  # one block; blocks of 2 images, the last 1
        monkeypatch.setattr(conv, "BLOCK_BYTES", block_bytes)
        layer = Conv2d(channels, 4, 3, stride=stride, padding=1, dtype=np.float64)
        layer.reset_parameters(np.random.default_rng(0))
        y = layer.forward(x)
        dout_shape = dout_shape or y.shape
        dout = np.random.default_rng(2).standard_normal(dout_shape)
        dx = layer.backward(dout).copy()
        results.append((y.copy(), dx, layer.grads["W"].copy(), layer.grads["b"].copy()))
    assert len(conv.image_blocks(7, 256 * 9 * channels * 8 // (4 if stride == 2 else 1))) == 4
    for one, blocked in zip(*results):
        np.testing.assert_allclose(blocked, one, rtol=1e-12, atol=1e-12)
    tracemalloc.start()  # the batch's last, smaller block reuses the blocks' buffers
    for _ in range(2):
        layer.forward(x)
        layer.backward(dout)
    snap = tracemalloc.take_snapshot()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 65536, [str(st) for st in snap.statistics("lineno")[:3]]  # a block buffer is 28-110 KB here; small views come and go
