"""A trained run as an ONNX model: preprocessing, layers and output link in one graph.

The graph takes what `layerwise predict` takes in a .npy: raw pixels 0-255 as float32 (N, H*W) for an
image model (input "pixels"), or raw numbers (N, D) for an array or table model (input "features"; for a
table, the encoded columns in the stored order: numeric columns as they are and one 0/1 column per
category, named in the metadata's feature_names). It returns what predict returns: class probabilities
("probabilities", softmax, or sigmoid for a binary_cross_entropy model), the arg-max class index
("label") and its name ("class"); or the regression values in the target's units ("values").

Each layer type maps to ONNX ops through LAYER_OPS, one entry per type.
"""

import json

import numpy as np

from .. import __version__
from ..data.preprocess import linear_copies
from ..errors import CheckpointError, ConfigError, MissingExtra
from ..util.outputs import check_name, check_output, create_output

DEFAULT_OPSET = 20
MIN_OPSET = 13  # Softmax over the last axis alone, BatchNormalization without training outputs
# IR version 10 (onnx 1.16) is what onnxruntime >= 1.17 loads; newer onnx releases stamp newer IR
# versions that older runtimes refuse, so it is set explicitly.
IR_VERSION = 10
GELU_C, GELU_K = float(np.sqrt(2 / np.pi)), 0.044715  # as nn.activations.GELU


def _onnx():
    try:
        import onnx
    except ImportError:
        raise MissingExtra("layerwise export needs the onnx package: pip install 'layerwise[onnx]'") from None
    return onnx


class Graph:
    """Nodes and constants of the graph being built, with fresh value names."""

    def __init__(self, onnx, opset):
        self.onnx, self.opset = onnx, opset
        self.nodes, self.initializers, self._count = [], [], 0

    def name(self, hint):
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint, value, dtype=np.float32):
        name = self.name(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def op(self, op_type, inputs, hint=None, output=None, **attrs):
        out = output or self.name(hint or op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], **attrs))
        return out


# --- layers: (graph, layer, x) -> y -------------------------------------------------------------


def _linear(g, layer, x):
    W = g.const("W", layer.params["W"])  # (D, M): y = x @ W + b, Gemm's A @ B + C
    inputs = [x, W] + ([g.const("b", layer.params["b"])] if layer.bias else [])
    return g.op("Gemm", inputs, "linear")


def _batchnorm(g, layer, x):
    p, b = layer.params, layer.buffers
    inputs = [x, g.const("gamma", p["gamma"]), g.const("beta", p["beta"]),
              g.const("running_mean", b["running_mean"]), g.const("running_var", b["running_var"])]
    return g.op("BatchNormalization", inputs, "batchnorm", epsilon=layer.eps)


def _gelu(g, layer, x):
    if g.opset >= 20:
        return g.op("Gelu", [x], "gelu", approximate="tanh")
    # 0.5 x (1 + tanh(c (x + k x^3))), the same tanh approximation in plain ops
    cube = g.op("Mul", [g.op("Mul", [x, x]), x])
    inner = g.op("Mul", [g.op("Add", [x, g.op("Mul", [cube, g.const("k", GELU_K)])]), g.const("c", GELU_C)])
    one_plus = g.op("Add", [g.op("Tanh", [inner]), g.const("one", 1.0)])
    return g.op("Mul", [g.op("Mul", [x, one_plus]), g.const("half", 0.5)], "gelu")


def _conv2d(g, layer, x):
    W = g.const("W", layer.params["W"].transpose(3, 2, 0, 1))  # (kh, kw, C, M) -> ONNX's (M, C, kh, kw)
    inputs = [x, W] + ([g.const("b", layer.params["b"])] if layer.bias else [])
    p, k = layer.padding, layer.kernel_size
    return g.op("Conv", inputs, "conv2d", kernel_shape=[k, k], strides=[layer.stride] * 2, pads=[p] * 4)


def _pool(op):
    def to_ops(g, layer, x):
        k = layer.kernel_size
        return g.op(op, [x], layer.name, kernel_shape=[k, k], strides=[layer.stride] * 2)
    return to_ops


def _flatten(g, layer, x):
    # layerwise flattens channels-last (N, H, W, C); the graph computes in (N, C, H, W): transpose first
    return g.op("Flatten", [g.op("Transpose", [x], perm=[0, 2, 3, 1])], "flatten", axis=1)


LAYER_OPS = {
    "conv2d": _conv2d,
    "maxpool2d": _pool("MaxPool"),
    "avgpool2d": _pool("AveragePool"),
    "global_avgpool": lambda g, layer, x: g.op("Flatten", [g.op("GlobalAveragePool", [x])], axis=1),
    "flatten": _flatten,
    "linear": _linear,
    "relu": lambda g, layer, x: g.op("Relu", [x]),
    "sigmoid": lambda g, layer, x: g.op("Sigmoid", [x]),
    "tanh": lambda g, layer, x: g.op("Tanh", [x]),
    "softplus": lambda g, layer, x: g.op("Softplus", [x]),
    "leaky_relu": lambda g, layer, x: g.op("LeakyRelu", [x], alpha=layer.negative_slope),
    "elu": lambda g, layer, x: g.op("Elu", [x], alpha=layer.alpha),
    "gelu": _gelu,
    "batchnorm": _batchnorm,
    "dropout": lambda g, layer, x: x,  # identity at inference
}


# --- preprocessing and outputs --------------------------------------------------------------------


def _inputs(g, pre, num_features):
    """The graph input (name, feature names) and the value after the stored preprocessing."""
    kind = pre["kind"]
    if kind == "image":
        h, w = pre["image_shape"]
        x = name = "pixels"
        if pre["scale"] != 1:
            x = g.op("Mul", [x, g.const("scale", pre["scale"])], "scaled")
        if pre["mean"] is not None:
            x = g.op("Sub", [x, g.const("mean", pre["mean"])], "centred")
            x = g.op("Mul", [x, g.const("inv_std", np.float32(1) / np.float32(pre["std"]))], "normalised")
        return name, [f"pixel {i // w},{i % w}" for i in range(h * w)], x
    if kind == "table":
        names = list(pre["columns"])
    else:
        names = [f"x{i}" for i in range(num_features)]
    x = name = "features"
    linear = pre.get("linear")
    if linear is not None and linear.get("low") is not None:  # data.linear_copy: clamped to the training range
        low, high = np.full(len(names), -np.inf, np.float32), np.full(len(names), np.inf, np.float32)
        low[linear["index"]], high[linear["index"]] = linear["low"], linear["high"]
        x = g.op("Max", [x, g.const("clamp_low", low)], "above_low")
        x = g.op("Min", [x, g.const("clamp_high", high)], "clamped")
    if linear is not None:  # data.encoding.standardize: the number inputs again, standardised, not clipped
        copy = g.op("Gather", [x, g.const("linear_index", linear["index"], np.int64)], "linear_inputs", axis=1)
        copy = g.op("Sub", [copy, g.const("linear_mean", linear["mean"])], "linear_centred")
        copy = g.op("Mul", [copy, g.const("linear_inv_std", np.float32(1) / np.asarray(linear["std"], np.float32))],
                    "linear_normalised")
    if pre.get("mean") is not None:
        x = g.op("Sub", [x, g.const("mean", pre["mean"])], "centred")
        if kind == "table":  # the same float32 arithmetic as data.tabular: x * (1 / std)
            x = g.op("Mul", [x, g.const("inv_std", np.float32(1) / np.asarray(pre["std"], np.float32))], "normalised")
        else:  # data.preprocess.features: x / std
            x = g.op("Div", [x, g.const("std", pre["std"])], "normalised")
    if pre.get("clip") is not None:  # data.encoding.standardize: x / sqrt(1 + (x * clip)^2)
        t = g.op("Mul", [x, g.const("clip", pre["clip"])], "clip_scaled")
        t = g.op("Mul", [t, t], "clip_squared")
        t = g.op("Add", [t, g.const("one", np.ones(1, np.float32))], "clip_plus_one")
        t = g.op("Sqrt", [t], "clip_root")
        x = g.op("Div", [x, t], "clipped")
    if linear is not None:
        x = g.op("Concat", [x, copy], "with_linear", axis=1)
    return name, names, x


def _outputs(g, onnx, task, pre, loss_type, y, num_outputs):
    """Output nodes and their value infos."""
    T = onnx.TensorProto
    if task == "classification":
        link = "Sigmoid" if loss_type == "binary_cross_entropy" else "Softmax"
        g.op(link, [y], output="probabilities", **({"axis": -1} if link == "Softmax" else {}))
        g.op("ArgMax", [y], output="label", axis=1, keepdims=0)
        names = g.const("class_names", np.array(pre["class_names"], dtype=object), dtype=object)
        g.op("Gather", [names, "label"], output="class", axis=0)
        return [onnx.helper.make_tensor_value_info("probabilities", T.FLOAT, ["N", num_outputs]),
                onnx.helper.make_tensor_value_info("label", T.INT64, ["N"]),
                onnx.helper.make_tensor_value_info("class", T.STRING, ["N"])]
    if pre.get("target_mean") is not None:  # the model learned standardised targets: undo it
        y = g.op("Mul", [y, g.const("target_std", pre["target_std"])])
        y = g.op("Add", [y, g.const("target_mean", pre["target_mean"])])
    g.op("Identity", [y], output="values")
    return [onnx.helper.make_tensor_value_info("values", T.FLOAT, ["N", num_outputs])]


def build_onnx(loaded, opset=DEFAULT_OPSET):
    """The onnx.ModelProto of a LoadedModel (run.loaded.load), checked by onnx.checker."""
    onnx = _onnx()
    top = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= top:
        raise ConfigError(f"--opset {opset}: this exporter writes opsets {MIN_OPSET} to {top} (the onnx package's newest)")
    model, pre, cfg = loaded.model, loaded.preprocessing, loaded.config
    g = Graph(onnx, opset)
    num_features = model.layers[0].in_features if hasattr(model.layers[0], "in_features") else None
    input_name, feature_names, x = _inputs(g, pre, len(pre.get("columns") or []) or num_features)
    num_features = len(feature_names)
    if model.input_shape is not None:  # images: rows of C*H*W -> (N, C, H, W) for Conv and the pools
        x = g.op("Reshape", [x, g.const("image_shape", [-1, *model.input_shape], np.int64)], "images")
    for i, layer in enumerate(model.layers):
        to_ops = LAYER_OPS.get(layer.name)
        if to_ops is None:
            raise ConfigError(f"model.layers.{i}: layer type {layer.name!r} has no ONNX export yet; "
                              f"exported types: {', '.join(LAYER_OPS)}")
        x = to_ops(g, layer, x)
    loss_type = cfg.loss.get("type") if isinstance(cfg.loss, dict) else cfg.loss
    model_width = num_features + linear_copies(pre)
    y_shape = model.predict(np.zeros((1, model_width), np.float32)).shape[1]
    outputs = _outputs(g, onnx, loaded.task, pre, loss_type, x, y_shape)
    inputs = [onnx.helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, ["N", num_features])]
    graph = onnx.helper.make_graph(g.nodes, f"layerwise_{cfg.name}", inputs, outputs, g.initializers)
    proto = onnx.helper.make_model(graph, producer_name="layerwise", producer_version=__version__,
                                   opset_imports=[onnx.helper.make_opsetid("", opset)])
    proto.ir_version = IR_VERSION
    meta = {
        "layerwise_version": __version__,
        "task": loaded.task,
        "input": input_name,
        "feature_names": json.dumps(feature_names),
        "class_names": json.dumps(pre.get("class_names")),
        "target_names": json.dumps(pre.get("target_names")),
        "config": cfg.to_yaml(),
    }
    onnx.helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(target, output, opset=DEFAULT_OPSET, checkpoint="best"):
    """Write the run or checkpoint `target` as ONNX to `output` (a new file, written atomically; an
    existing file is never replaced). Returns {"output", "bytes", "ops": {op_type: count}, ...}."""

    from ..run.loaded import load

    output = check_name(output, "OUT.onnx")
    if output.suffix.lower() != ".onnx":
        raise ConfigError(f"{output}: the output file name should end in .onnx")
    check_output(output, "OUT.onnx", hint="choose another name (exported models are never overwritten)")
    loaded = load(target, checkpoint)
    try:
        proto = build_onnx(loaded, opset)
    except ConfigError:
        raise
    except Exception as e:  # the onnx checker refusing what we built is a bug, reported with its cause
        raise CheckpointError(f"{loaded.path}: the exported graph failed onnx's checks: {e}") from e
    data = proto.SerializeToString()
    create_output(output, lambda f: f.write(data), "OUT.onnx")
    ops = {}
    for node in proto.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"output": str(output), "bytes": len(data), "opset": opset, "ir_version": proto.ir_version,
            "input": proto.graph.input[0].name, "outputs": [o.name for o in proto.graph.output], "ops": ops,
            "checkpoint": str(loaded.path), "epoch": loaded.epoch}
