"""Sequential: a chain of layers, its named parameters and its state dict."""

import numpy as np

from ..errors import CheckpointError
from .shape import from_internal, to_internal


class Sequential:
    """y = layers[-1](... layers[1](layers[0](x)))

    Parameters are named "<layer index>.<key>", e.g. "0.W", "0.b", "2.W"; so are buffers (saved, not
    trained: "1.running_mean", "1.running_var" of a BatchNorm).

    Modes: train() (the default) and eval() set every layer's `training` flag: Dropout drops and
    BatchNorm normalises with batch statistics only in training mode. predict() always runs in
    evaluation mode and then restores the mode it found.

    Images: with `input_shape` (C, H, W) (a model whose layers include conv2d or pooling) x is
    (N, C, H, W), or rows (N, C*H*W) in that order, and is viewed channels-last (N, H, W, C) once here,
    the layout the spatial layers compute in; backward returns dx in the layout x came in.
    """

    def __init__(self, layers, input_shape=None):
        self.layers = list(layers)
        self.input_shape = input_shape

    def internal(self, x):
        """x as the first layer takes it: channels-last images for a spatial model, else x itself."""
        return x if self.input_shape is None else to_internal(x, self.input_shape)

    def train(self, mode=True):
        for layer in self.layers:
            layer.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    @property
    def training(self):
        return any(layer.training for layer in self.layers)

    def forward(self, x):
        self._x_shape = x.shape
        x = self.internal(x)
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout, input_grad=True):
        """Backpropagate dL/d(output) through every layer, last to first, filling each layer's grads.

        Returns dL/dx; with input_grad=False the first layer skips that product (training never
        needs the gradient with respect to the data) and None is returned.
        """
        for layer in reversed(self.layers[1:]):
            dout = layer.backward(dout)
        dx = self.layers[0].backward(dout, input_grad=input_grad)
        return dx if dx is None or self.input_shape is None else from_internal(dx, self._x_shape)

    def named_parameters(self):
        """(name, parameter, gradient) for every parameter array, in layer order."""
        return [
            (f"{i}.{key}", layer.params[key], layer.grads[key])
            for i, layer in enumerate(self.layers)
            for key in layer.params
        ]

    def named_buffers(self):
        """(name, array) for every buffer (state saved with the weights but not trained), in layer order."""
        return [(f"{i}.{key}", buf) for i, layer in enumerate(self.layers) for key, buf in layer.buffers.items()]

    def num_parameters(self):
        return sum(p.size for _, p, _ in self.named_parameters())

    def reset_parameters(self, rng):
        for layer in self.layers:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters(rng)

    def random_layers(self):
        """(index, layer) of the layers that draw random numbers (Dropout), in order."""
        return [(i, layer) for i, layer in enumerate(self.layers) if hasattr(layer, "rng_state")]

    def seed_random(self, seed):
        """Give each random layer its own stream: np.random.default_rng([*seed, layer index])."""
        for i, layer in self.random_layers():
            layer.reset_rng([*seed, i])

    def rng_state(self):
        """{layer index (str): generator state} of the random layers: JSON-able, for checkpoint metadata."""
        return {str(i): layer.rng_state() for i, layer in self.random_layers()}

    def load_rng_state(self, states):
        """Restore rng_state(); the layer indices must match exactly (else CheckpointError)."""
        own = {str(i): layer for i, layer in self.random_layers()}
        if not isinstance(states, dict) or set(states) != set(own):
            found = sorted(states) if isinstance(states, dict) else repr(states)
            raise CheckpointError(
                f"random-layer state does not match the model: expected layers {sorted(own) or 'none'}, found {found}"
            )
        for key, layer in own.items():
            try:
                layer.set_rng_state(states[key])
            except (TypeError, ValueError, KeyError, OverflowError) as e:
                raise CheckpointError(f"random-layer state of layer {key} is malformed ({str(e)[:80]})") from None

    def predict(self, x, batch_size=4096):
        """Outputs for all rows of x in evaluation mode, computed in batches (a copy, safe to keep)."""
        modes = [layer.training for layer in self.layers]
        self.eval()
        try:
            outputs = [self.forward(x[i : i + batch_size]).copy() for i in range(0, len(x), batch_size)]
        finally:
            for layer, mode in zip(self.layers, modes):
                layer.training = mode
        return np.concatenate(outputs) if outputs else np.empty((0,))

    def config(self):
        return [layer.config() for layer in self.layers]

    def state_dict(self):
        """Parameters and buffers by name (copies)."""
        state = {name: param.copy() for name, param, _ in self.named_parameters()}
        state.update({name: buf.copy() for name, buf in self.named_buffers()})
        return state

    def load_state_dict(self, state):
        """Copy arrays into the parameters and buffers; every name and shape must match exactly."""
        own = {name: param for name, param, _ in self.named_parameters()}
        own.update(self.named_buffers())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise CheckpointError(
                f"weights do not match the model: missing {missing or 'none'}, unexpected {unexpected or 'none'}"
            )
        for name, param in own.items():
            value = np.asarray(state[name])
            if value.shape != param.shape:
                raise CheckpointError(
                    f"weights do not match the model: {name} has shape {value.shape}, the model expects {param.shape}"
                )
            param[...] = value

    def __repr__(self):
        lines = [f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"
