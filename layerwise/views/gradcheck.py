"""Compare hand-derived gradients with central finite differences (run in float64).

    dL/dv[i] ~ (L(v + eps e_i) - L(v - eps e_i)) / (2 eps)

The relative error of an array is ||analytic - numeric|| / (||analytic|| + ||numeric||) (2-norms over the
checked entries). Per-entry ratios are meaningless for entries whose true gradient is tiny (a saturated
tanh, a near-zero softmax probability): there the finite difference is dominated by rounding in L.
"""

from pathlib import Path

import numpy as np

EPS = 1e-6  # finite-difference step
FLOOR = 1e-8  # denominator floor of the relative error, for arrays whose gradient is all zero
TOLERANCE = 1e-6  # a gradcheck row passes below this relative error
TIE_BREAK = 1e-4  # relative size of the offset that breaks ties in a max-pool's input


def numerical_gradient(loss, array, indices, eps=EPS):
    """Central differences of the scalar function `loss()` w.r.t. `array` at the flat `indices`.

    `array` is perturbed in place and restored exactly.
    """
    flat = array.reshape(-1)  # a view: writing to it perturbs `array`
    grad = np.empty(len(indices))
    for k, i in enumerate(indices):
        old = flat[i]
        flat[i] = old + eps
        plus = loss()
        flat[i] = old - eps
        minus = loss()
        flat[i] = old
        grad[k] = (plus - minus) / (2 * eps)
    return grad


def compare(analytic, numeric):
    """(max abs error, relative error) between two equally shaped arrays."""
    analytic, numeric = np.ravel(analytic), np.ravel(numeric)
    if analytic.size == 0:
        return 0.0, 0.0
    diff = analytic - numeric
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.abs(diff).max()), float(np.linalg.norm(diff) / max(scale, FLOOR))


def sample_indices(size, samples, rng):
    """All flat indices if size <= samples, else a sorted random sample of `samples` of them."""
    if samples is None or size <= samples:
        return np.arange(size)
    return np.sort(rng.choice(size, samples, replace=False))


def check_layer(layer, x, rng, samples=None, eps=EPS):
    """Check one layer's backward on input x with L = sum(forward(x) * R), R random, so dL/dy = R.

    Returns {name: (max abs error, relative error)} for "x" and each parameter (see `compare`).
    A random layer (Dropout) is checked with the mask of its first forward held fixed, so L is a
    function of x alone; the layer runs in whatever mode it is in (check_config puts it in training mode).
    """
    upstream = rng.standard_normal(layer.forward(x).shape)
    holds = hasattr(layer, "hold_mask")
    if holds:
        layer.hold_mask = True

    def loss():
        return float(np.sum(layer.forward(x) * upstream))

    try:
        layer.forward(x)
        dx = layer.backward(upstream).copy()
        analytic = {"x": dx, **{k: g.copy() for k, g in layer.grads.items()}}
        arrays = {"x": x, **layer.params}
        result = {}
        for name, array in arrays.items():
            idx = sample_indices(array.size, samples, rng)
            numeric = numerical_gradient(loss, array, idx, eps)
            result[name] = compare(analytic[name].reshape(-1)[idx], numeric)
    finally:
        if holds:
            layer.hold_mask = False
    return result


def check_loss(loss_fn, output, target, rng=None, samples=None, eps=EPS):
    """Check a loss's backward against finite differences w.r.t. its `output` argument."""
    rng = rng or np.random.default_rng(0)
    loss_fn.forward(output, target)
    analytic = loss_fn.backward().copy()
    idx = sample_indices(output.size, samples, rng)
    numeric = numerical_gradient(lambda: loss_fn.forward(output, target), output, idx, eps)
    return compare(analytic.reshape(-1)[idx], numeric)


def check_target(target, overrides=(), samples=30, batch=8):
    """gradcheck of a CONFIG file (its seeded initial weights) or of a RUN directory, read as summary and
    trace read it: its config.yaml, at its trained weights (best.npz, else last.npz)."""
    from ..config.schema import load_config
    from ..run.resolve import run_config

    if not Path(target).is_dir():
        return check_config(load_config(target, overrides), samples, batch)
    cfg, path = run_config(target, overrides)
    return check_config(cfg, samples, batch, weights=path)


def check_config(cfg, samples=30, batch=8, weights=None):
    """Check each layer of the configured model, and its loss, on `batch` real training examples.

    The model is built in float64 from the config's seed. Each layer is checked on its own, with the
    input it receives in the real forward pass and L = sum(y * R) for a random R, so a wrong backward
    fails its own row only instead of corrupting every row below it. The batch runs through the model
    in evaluation mode; each layer itself is checked in training mode (see check_layer).
    """
    from ..run.build import build

    rng = np.random.default_rng(cfg.seed)
    data, model, loss_fn, _ = build(cfg, dtype=np.float64)
    if weights is not None:  # a run's checkpoint: checked where the run's weights are
        from ..run.resolve import load_run_weights

        load_run_weights(weights, model, cfg)
    x = np.ascontiguousarray(model.internal(data.train.x[:batch].astype(np.float64)))  # channels-last images
    target = data.train.y[:batch]
    if target.dtype.kind == "f":
        target = target.astype(np.float64)
    rows = []
    model.eval()
    for i, layer in enumerate(model.layers):
        # Checked in training mode (Dropout with its mask held, BatchNorm with batch statistics: the
        # backward training runs); the input for the next layer comes from evaluation mode.
        layer.training = True
        checked = x.copy()
        if getattr(layer, "TIES", False):
            # A max over equal entries (ReLU's zeros) has no derivative, so there the finite difference
            # measures a one-sided slope: ties are broken by an offset far above eps (the check's x only).
            checked += TIE_BREAK * (np.abs(checked).max() + 1) * rng.standard_normal(checked.shape)
        errors = check_layer(layer, checked, rng, samples)
        layer.training = False
        rows.append(_row(f"{i}: {layer!r}", errors))
        x = layer.forward(x).copy()
    rows.append(_row(f"loss: {type(loss_fn).__name__}", {"output": check_loss(loss_fn, x, target, rng, samples)}))
    return rows


def _row(label, errors):
    max_abs = max(e[0] for e in errors.values())
    max_rel = max(e[1] for e in errors.values())
    return {"layer": label, "arrays": ", ".join(errors), "max_abs": max_abs, "max_rel": max_rel, "passed": max_rel < TOLERANCE}


def format_table(rows):
    width = max(len(r["layer"]) for r in rows)
    checked = max(10, *(len(r["arrays"]) for r in rows))
    lines = [f"{'layer':<{width}}  {'checked':<{checked}}  {'max abs err':>11}  {'rel err':>9}  result"]
    for r in rows:
        lines.append(
            f"{r['layer']:<{width}}  {r['arrays']:<{checked}}  {r['max_abs']:>11.2e}  {r['max_rel']:>9.2e}  "
            f"{'PASS' if r['passed'] else 'FAIL'}"
        )
    return "\n".join(lines)
