"""layerwise: neural networks with hand-derived forward and backward passes in NumPy.

Python API (imported on first use, so `import layerwise` stays fast):
    model = layerwise.load("runs/mnist")      # .predict(x), .predict_proba(x) on raw inputs
    result = layerwise.train("configs/mnist.yaml", train__epochs=3)
"""

__version__ = "0.1.0"
__all__ = ["load", "train", "__version__"]


def __getattr__(name):
    if name == "load":
        from .run.loaded import load

        return load
    if name == "train":
        from .api import train

        return train
    raise AttributeError(f"module 'layerwise' has no attribute {name!r}")
