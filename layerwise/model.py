"""Sequential: a chain of layers, its named parameters and its state dict."""

import numpy as np

from .errors import CheckpointError


class Sequential:
    """y = layers[-1](... layers[1](layers[0](x)))

    Parameters are named "<layer index>.<key>", e.g. "0.W", "0.b", "2.W".
    """

    def __init__(self, layers):
        self.layers = list(layers)

    def forward(self, x):
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
        return self.layers[0].backward(dout, input_grad=input_grad)

    def named_parameters(self):
        """(name, parameter, gradient) for every parameter array, in layer order."""
        return [
            (f"{i}.{key}", layer.params[key], layer.grads[key])
            for i, layer in enumerate(self.layers)
            for key in layer.params
        ]

    def num_parameters(self):
        return sum(p.size for _, p, _ in self.named_parameters())

    def reset_parameters(self, rng):
        for layer in self.layers:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters(rng)

    def predict(self, x, batch_size=4096):
        """Outputs for all rows of x, computed in batches (a copy, safe to keep)."""
        outputs = [self.forward(x[i : i + batch_size]).copy() for i in range(0, len(x), batch_size)]
        return np.concatenate(outputs) if outputs else np.empty((0,))

    def config(self):
        return [layer.config() for layer in self.layers]

    def state_dict(self):
        return {name: param.copy() for name, param, _ in self.named_parameters()}

    def load_state_dict(self, state):
        """Copy arrays into the parameters; every name and shape must match exactly."""
        own = {name: param for name, param, _ in self.named_parameters()}
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
