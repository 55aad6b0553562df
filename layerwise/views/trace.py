"""`layerwise trace`: one training step on a real batch, layer by layer, as the chain rule runs.

Forward: each layer's equation with the real shapes and statistics of its output (and, after a ReLU,
the units that are zero for every example: dead). Backward, from the loss down: the norm of dL/dy
arriving at each layer, each parameter gradient's norm and the update-to-weight ratio
lr * ||g|| / ||W|| (about 1e-3 is healthy: much smaller learns slowly, much larger is unstable).
The weights are not changed and nothing is written, except the graph with --dot (tracegraph.py).
"""

import math

import numpy as np

from ..run.resolve import load_target

VANISHING, EXPLODING = 1e-7, 1e3
RATIO_GOOD, RATIO_FACTOR = 1e-3, 10  # ratios outside [1e-4, 1e-2] are flagged
DEAD_WARN = 0.5  # flag a ReLU layer when at least half its units are dead

BACKWARD = {  # layer type -> dx formula (Linear's three formulas are written in _backward_lines)
    "relu": "dx = dy * 1[x > 0]",
    "sigmoid": "dx = dy * y * (1 - y)",
    "tanh": "dx = dy * (1 - y**2)",
    "maxpool2d": "dx = dy at each window's arg-max, 0 elsewhere",
    "avgpool2d": "dx = dy / k^2 on every entry of its window",
    "global_avgpool": "dx = dy / (H W) on every pixel",
    "flatten": "dx = dy reshaped to (N, H, W, C)",
}


def trace_step(target, overrides=(), batch=8, echo=print):
    """Run one forward and backward pass on the first `batch` training examples of a CONFIG (its
    seeded initial weights) or a RUN directory (its trained weights).

    Returns (report, arrays): `report` is plain data (what --json prints), `arrays` holds the
    input, each layer's output and every gradient, for drawing the graph.
    """
    from ..data.load import load_dataset
    from ..errors import CheckpointError
    from ..nn.losses import task_of
    from ..optim.schedules import build_schedule
    from ..run.build import DATA_STREAM
    from ..run.metrics import monitor_for

    found = load_target(target, overrides, which="last", echo=echo)
    cfg, model, loss_fn = found.cfg, found.model, found.loss
    data = load_dataset(cfg.data, seed=[cfg.seed, DATA_STREAM], source=cfg.source, echo=echo, task=task_of(cfg.loss))
    x, y = data.train.x[:batch], data.train.y[:batch]
    epoch = min(found.run["epoch"], cfg.train.epochs - 1) if found.run else 0
    # the rate the run's next step uses: its schedule (and plateau state, warmup) at the epoch's first step
    steps = -(-len(data.train) // cfg.train.batch_size)
    schedule = build_schedule(cfg.optimizer, cfg.train.epochs, steps, monitor_for(cfg.train, data.task, cfg.source)[1])
    if found.run and found.run.get("schedule"):
        try:
            schedule.load_state_dict(found.run["schedule"])
        except CheckpointError:
            pass  # a malformed schedule state: trace with the schedule's fresh rate
    lr = schedule.lr(epoch, epoch * steps)
    weights = found.run["checkpoint"] if found.run else f"initialised from seed {cfg.seed}"
    return trace_model(model, loss_fn, x, y, lr, name=cfg.name, weights=weights, momentum=cfg.optimizer.momentum or 0.0)


def trace_model(model, loss_fn, x, y, lr, name="model", weights="", momentum=0.0):
    """trace_step on a model at hand: forward and backward on (x, y), recording every layer."""
    if hasattr(model, "train"):
        model.train()  # Dropout and BatchNorm as in a training step
    if getattr(model, "input_shape", None) is not None:
        x = model.internal(x)  # images channels-last (N, H, W, C), as the layers compute
    arrays = {"x": x.copy(), "y": [], "dy": [None] * len(model.layers), "dx": None}
    forward = []
    h = x
    for i, layer in enumerate(model.layers):
        out = layer.forward(h).copy()
        forward.append(_forward_row(i, layer, h, out))
        arrays["y"].append(out)
        h = out
    loss = loss_fn.forward(h, y)
    dout = loss_fn.backward().copy()
    backward = []
    for i in reversed(range(len(model.layers))):
        layer = model.layers[i]
        arrays["dy"][i] = dout
        dx = layer.backward(dout, input_grad=True)
        backward.append(_backward_row(i, layer, arrays["x"] if i == 0 else arrays["y"][i - 1], dout, lr))
        dout = dx.copy()
    arrays["dx"] = dout
    arrays["grads"] = {name: g.copy() for name, _, g in model.named_parameters()}
    arrays["params"] = {name: p.copy() for name, p, _ in model.named_parameters()}
    report = {
        "name": name,
        "weights": weights,
        "batch": int(len(x)),
        "lr": lr,
        "momentum": momentum,
        "input": {"shape": list(x.shape), **_stats(x)},
        "forward": forward,
        "loss": {"name": type(loss_fn).__name__, "formula": _doc(loss_fn), "value": loss},
        "backward": backward,
        "input_grad_norm": float(np.linalg.norm(dout)),
    }
    report["warnings"] = _warnings(report)
    return report, arrays


def _forward_row(i, layer, x, y):
    row = {"index": i, "layer": repr(layer), "type": getattr(layer, "name", type(layer).__name__),
           "equation": _equation(layer, x.shape, y.shape), "shape": list(y.shape), **_stats(y)}
    if not layer.params and row["type"] == "relu":
        dead = np.all(y == 0, axis=0)
        row["dead_units"], row["units"] = int(dead.sum()), int(dead.size)
    return row


def _backward_row(i, layer, x, dout, lr):
    grads = []
    for key, g in layer.grads.items():
        w_norm = float(np.linalg.norm(layer.params[key]))
        g_norm = float(np.linalg.norm(g))
        grads.append({"name": f"{i}.{key}", "shape": list(g.shape), "grad_norm": g_norm, "param_norm": w_norm,
                      "update_ratio": lr * g_norm / w_norm if w_norm > 0 else None})
    return {"index": i, "layer": repr(layer), "dy_norm": float(np.linalg.norm(dout)), "dy_shape": list(dout.shape),
            "equations": _backward_lines(layer, x.shape, dout.shape), "grads": grads}


def _equation(layer, xs, ys):
    if getattr(layer, "name", "") == "conv2d":
        k, c, m = layer.kernel_size, layer.in_channels, layer.out_channels
        n, ho, wo = ys[:3]
        bias = f"+({m},)" if "b" in layer.params else ""
        return (f"y = im2col(x) @ W + b   {_shape(xs)} -> cols ({n * ho * wo},{k * k * c}) @ ({k * k * c},{m}){bias} "
                f"-> {_shape(ys)}  (k {k}, stride {layer.stride}, padding {layer.padding})")
    if "W" in layer.params:
        D, M = layer.params["W"].shape
        if "b" in layer.params:
            return f"y = x @ W + b   {_shape(xs)}@({D},{M})+({M},) -> {_shape(ys)}"
        return f"y = x @ W   {_shape(xs)}@({D},{M}) -> {_shape(ys)}"
    return f"{_doc(layer)}   {_shape(xs)} -> {_shape(ys)}"


def _backward_lines(layer, xs, ys):
    if getattr(layer, "name", "") == "conv2d":
        k, c, m = layer.kernel_size, layer.in_channels, layer.out_channels
        rows = ys[0] * ys[1] * ys[2]
        how = ("dx = im2col(pad(dy)) @ rot180(W)" if layer.stride == 1 else "dx = col2im(dy @ W.T)")
        return [f"dW = cols.T @ dy   ({k * k * c},{rows})@({rows},{m}) -> ({k},{k},{c},{m})",
                *([f"db = sum over n, p, q of dy   {_shape(ys)} -> ({m},)"] if "b" in layer.params else []),
                f"{how}   {_shape(ys)} -> {_shape(xs)}"]
    if "W" in layer.params:
        (N, D), M = xs, layer.params["W"].shape[1]
        lines = [f"dW = x.T @ dy   ({D},{N})@({N},{M}) -> ({D},{M})"]
        if "b" in layer.params:
            lines.append(f"db = sum over the batch of dy   ({N},{M}) -> ({M},)")
        return lines + [f"dx = dy @ W.T   ({N},{M})@({M},{D}) -> ({N},{D})"]
    return [BACKWARD.get(getattr(layer, "name", ""), "dx = dy * f'(x)") + f"   {_shape(ys)} -> {_shape(xs)}"]


def _doc(obj):
    formula = getattr(obj, "formula", None)  # a loss whose arguments change its formula says so
    return formula or (type(obj).__doc__ or type(obj).__name__).strip().splitlines()[0].strip()


def _shape(shape):
    return "(" + ",".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _stats(a):
    a = np.asarray(a, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max())}


def _warnings(report):
    out = []
    for row in report["forward"]:
        if "dead_units" in row and row["dead_units"] >= DEAD_WARN * row["units"]:
            what = "every unit is" if row["dead_units"] == row["units"] else f"{row['dead_units']}/{row['units']} units are"
            out.append(f"layer {row['index']} {row['layer']}: {what} zero for all {report['batch']} examples "
                       f"(dead: no gradient flows through them to the layers below)")
    for row in report["backward"]:
        checks = [(f"dL/dy at layer {row['index']}", row["dy_norm"])]
        checks += [(f"gradient of {g['name']}", g["grad_norm"]) for g in row["grads"]]
        for what, norm in checks:
            if not math.isfinite(norm) or norm > EXPLODING:
                out.append(f"{what}: norm {norm:.3g} is exploding (> {EXPLODING:g}); lower optimizer.lr or check the init")
            elif norm < VANISHING:
                out.append(f"{what}: norm {norm:.3g} is vanishing (< {VANISHING:g}); the layers below learn nothing")
        for g in row["grads"]:
            r = g["update_ratio"]
            if r is not None and not RATIO_GOOD / RATIO_FACTOR <= r <= RATIO_GOOD * RATIO_FACTOR:
                advice = ("small: these weights barely move; usual late in training, else raise optimizer.lr"
                          if r < RATIO_GOOD else
                          "large: big steps for these weights; usual at the start, lower optimizer.lr if the loss jumps")
                out.append(f"{g['name']}: update/weight ratio lr*||g||/||W|| = {r:.2g}, more than 10x from ~1e-3 ({advice})")
    return out


def format_trace(t):
    """The trace as a person reads it: forward top to bottom, then backward from the loss down."""
    lines = [f"one training step of {t['name']} on the first {t['batch']} training examples "
             f"(weights {t['weights']}; lr {t['lr']:.4g}; nothing is updated)"]
    if t.get("momentum"):
        lines.append(f"(update ratios use lr*||g||; with momentum {t['momentum']:g} a steady step is about "
                     f"{1 / (1 - t['momentum']):.0f}x that)")
    lines += ["",
             "FORWARD  (output statistics over the batch)",
             f"  input x {_shape(t['input']['shape'])}  {_fmt_stats(t['input'])}"]
    for row in t["forward"]:
        lines.append(f"  [{row['index']}] {row['layer']}")
        lines.append(f"      {row['equation']}")
        extra = ""
        if "dead_units" in row:
            extra = f"  dead units {row['dead_units']}/{row['units']} ({100 * row['dead_units'] / row['units']:.0f}%)"
        lines.append(f"      y: {_fmt_stats(row)}{extra}")
    loss = t["loss"]
    lines += [f"  loss {loss['name']}: {loss['formula']}", f"      L = {loss['value']:.6g}", "",
              "BACKWARD  (from the loss down: dy = dL/dy arriving at a layer, dx = dL/dx it passes on)"]
    for row in t["backward"]:
        lines.append(f"  [{row['index']}] {row['layer']}   ||dy|| = {row['dy_norm']:.3e}")
        for eq in row["equations"]:
            lines.append(f"      {eq}")
        for g in row["grads"]:
            ratio = "n/a (zero weights)" if g["update_ratio"] is None else f"{g['update_ratio']:.2e}"
            lines.append(f"      ||d{g['name'].split('.')[-1]}|| = {g['grad_norm']:.3e}   ||{g['name'].split('.')[-1]}|| = "
                         f"{g['param_norm']:.3e}   lr*||g||/||W|| = {ratio}")
    lines.append(f"  input: ||dL/dx|| = {t['input_grad_norm']:.3e}")
    lines.append("")
    if t["warnings"]:
        lines += ["WARNINGS"] + [f"  - {w}" for w in t["warnings"]]
    else:
        lines.append("no warnings: no dead layer, no vanishing or exploding gradient, update ratios within 10x of 1e-3")
    return "\n".join(lines)


def _fmt_stats(s):
    return f"mean {s['mean']:+.3f}  std {s['std']:.3f}  min {s['min']:+.3f}  max {s['max']:+.3f}"
