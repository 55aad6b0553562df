"""`layerwise plot RUN --what features`: one test image's feature maps, layer by layer, in a CNN run."""

import numpy as np

from ..errors import CheckpointError, ConfigError

MAX_CHANNELS = 16  # feature maps drawn per layer


def features_data(run, name):
    """The first test image and, for every layer whose output is still an image (conv2d, batchnorm and
    activations after it, the pools), up to MAX_CHANNELS of its channels."""
    from ..run.evaluate import load_run

    if not (run / "best.npz").is_file():
        raise CheckpointError(f"{run} holds no best.npz: no epoch has finished (or it is not a layerwise run directory)")
    cfg, data, model, _, state = load_run(run, "best")
    if getattr(model, "input_shape", None) is None:
        raise ConfigError(f"{run}: --what features draws the feature maps of convolution layers, and this model has "
                          "none; try --what weights")
    x = data.test.x[:1]
    model.eval()
    h = model.internal(x)
    maps = []
    for i, layer in enumerate(model.layers):
        h = layer.forward(h)
        if h.ndim == 4:  # (1, H, W, C) channels-last
            maps.append({"index": i, "layer": repr(layer), "maps": np.moveaxis(h[0], -1, 0)[:MAX_CHANNELS].copy(),
                         "channels": int(h.shape[-1])})
    probs = model.forward(x)[0]
    c, hh, ww = model.input_shape
    return {"name": name, "epoch": state.epoch, "image": x[0].reshape(c, hh, ww)[0], "layers": maps,
            "label": int(data.test.y[0]) if data.test.y.ndim == 1 else None, "predicted": int(np.argmax(probs))}


def draw_features(fig, d):
    """A row per layer: its first channels' maps, each on its own gray scale; the input image first."""
    rows = len(d["layers"]) + 1
    cols = MAX_CHANNELS
    grid = fig.add_gridspec(rows, cols)
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(d["image"], cmap="gray", interpolation="nearest")
    ax.set_axis_off()
    ax.set_title("input", fontsize=8)
    for r, layer in enumerate(d["layers"], start=1):
        for k, fmap in enumerate(layer["maps"]):
            ax = fig.add_subplot(grid[r, k])
            ax.imshow(fmap, cmap="viridis", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(f"[{layer['index']}] {layer['layer'].split('(')[0]}", fontsize=7)
    label = f"true class {d['label']}, " if d["label"] is not None else ""
    fig.suptitle(f"{d['name']} (epoch {d['epoch']}): the first test image's feature maps ({label}predicted "
                 f"{d['predicted']}); a row per layer whose output is an image, its first {MAX_CHANNELS} channels")
