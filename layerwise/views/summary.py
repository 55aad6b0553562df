"""`layerwise summary`: the model a config or run describes, layer by layer, without training.

FLOPs are counted per example: a multiply-add counts 2 (so a linear layer's x @ W + b is
2*D*M + M), an elementwise operation 1 per element (an activation and its derivative alike). The loss
is not counted. Backward counts dW, db and dx, except dx of the first layer, which training skips.
"""

import numpy as np

from ..run.resolve import load_target

FLOAT_BYTES = 4  # float32


def layer_flops(layer, in_features, out_features, first=False):
    """(forward, backward) FLOPs per example of one layer, counted as the module docstring says.
    A conv2d is its GEMM (2 per multiply-add, plus the bias), backward its dW and dx GEMMs; a pool its
    window reads forward and one per input entry backward."""
    if hasattr(layer, "flops"):
        forward = layer.flops(in_features)
        size_in = int(np.prod(in_features))
        if "W" in layer.params:
            bias = int(np.prod(out_features)) if "b" in layer.params else 0
            return forward + bias, forward + bias + (0 if first else forward)  # dW, db, dx
        return forward, 0 if first else size_in
    if "W" in layer.params:
        D, M = layer.params["W"].shape
        bias = M if "b" in layer.params else 0
        forward = 2 * D * M + bias
        backward = 2 * D * M + bias + (0 if first else 2 * D * M)  # dW, db, dx
        return forward, backward
    return int(np.prod(out_features)), (0 if first else int(np.prod(in_features)))


def summarize(target, overrides=(), batch=None, echo=print):
    """Rows and totals for a CONFIG (weights from its seed) or a RUN directory (trained weights, with
    per-parameter statistics)."""
    found = load_target(target, overrides, initialise=False, echo=echo)  # only a run's weights are shown
    cfg, model, optimizer, run = found.cfg, found.model, found.optimizer, found.run
    batch = batch or cfg.train.batch_size
    width = found.input_shape or found.features  # (C, H, W) for a model of images
    rows = []
    for i, layer in enumerate(model.layers):
        out = layer.output_features(width)
        forward, backward = layer_flops(layer, width, out, first=i == 0)
        rows.append({
            "index": i,
            "layer": layer.describe(),
            "output_shape": [batch, *out] if isinstance(out, tuple) else [batch, out],
            "params": int(sum(p.size for p in layer.params.values())),
            "flops_forward": int(forward),
            "flops_backward": int(backward),
            "activation_bytes": int(batch * np.prod(out) * FLOAT_BYTES),
        })
        width = out
    params = model.num_parameters()
    optimizer_floats = int(sum(v.size for v in optimizer.state_dict().values()))
    totals = {
        "params": int(params),
        "weights_mb": params * FLOAT_BYTES / 1e6,
        "flops_forward": sum(r["flops_forward"] for r in rows),
        "flops_forward_backward": sum(r["flops_forward"] + r["flops_backward"] for r in rows),
        "activation_bytes": sum(r["activation_bytes"] for r in rows),
        "optimizer_state_floats": optimizer_floats,
        "optimizer_state_mb": optimizer_floats * FLOAT_BYTES / 1e6,
    }
    shape = found.input_shape
    result = {"name": cfg.name, "batch": batch,
              "input_features": ", ".join(map(str, shape)) if shape else found.features,
              "layers": rows, "totals": totals, "optimizer": type(optimizer).__name__}
    if run is not None:
        result["run"] = run
        result["weights"] = [
            {"name": name, "shape": list(p.shape), "mean": float(p.mean()), "std": float(p.std()),
             "l2_norm": float(np.linalg.norm(p))}
            for name, p, _ in model.named_parameters()
        ]
    return result


def format_summary(s):
    """The table a person reads: one row per layer, then the totals."""
    header = ["#", "layer", "output shape", "params", "FLOPs/example", "activations"]  # the batch is in the first line
    table = [header]
    for r in s["layers"]:
        table.append([str(r["index"]), r["layer"], "(" + ", ".join(map(str, r["output_shape"])) + ")",
                      f"{r['params']:,}", f"{r['flops_forward']:,}", _bytes(r["activation_bytes"])])
    widths = [max(len(row[c]) for row in table) for c in range(len(header))]
    align = ["<", "<", "<", ">", ">", ">"]
    lines = [f"{s['name']}: {len(s['layers'])} layers, input ({s['batch']}, {s['input_features']})"
             + (f"; weights from {s['run']['checkpoint']} (epoch {s['run']['epoch']})" if "run" in s else "")]
    for n, row in enumerate(table):
        lines.append("  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths)).rstrip())
        if n == 0:
            lines.append("-" * len(lines[-1]))
    t = s["totals"]
    lines += [
        "-" * len(lines[1]),
        f"trainable parameters   {t['params']:,} ({t['weights_mb']:.2f} MB of float32 weights)",
        f"FLOPs per example      {t['flops_forward']:,} forward, {t['flops_forward_backward']:,} forward+backward",
        f"activations            {_bytes(t['activation_bytes'])} for a batch of {s['batch']} (each layer's output, kept for backward)",
        f"optimizer state        {t['optimizer_state_floats']:,} floats ({t['optimizer_state_mb']:.2f} MB: {s['optimizer']} velocity)",
        "(a multiply-add counts 2 FLOPs, an elementwise op 1 per element; the loss is not counted)",
    ]
    if "weights" in s:
        lines += ["", "weights", _weights_table(s["weights"])]
    return "\n".join(lines)


def _weights_table(weights):
    lines = [f"{'name':<8} {'shape':<12} {'mean':>10} {'std':>10} {'L2 norm':>10}"]
    for w in weights:
        shape = str(tuple(w["shape"])).replace(" ", "")
        lines.append(f"{w['name']:<8} {shape:<12} {w['mean']:>10.4f} {w['std']:>10.4f} {w['l2_norm']:>10.4f}")
    return "\n".join(lines)


def _bytes(n):
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"
