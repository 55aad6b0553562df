"""layerwise: neural networks with hand-derived forward and backward passes in NumPy."""

__version__ = "0.1.0"
