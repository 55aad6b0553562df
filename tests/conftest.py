"""Shared test settings."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _find_mnist():
    """The full MNIST files every developer checkout and CI has at ../shared/data/mnist
    ($LAYERWISE_TEST_MNIST overrides). End-to-end tests skip only when none is there."""
    candidates = [os.environ.get("LAYERWISE_TEST_MNIST"), REPO.parent / "shared" / "data" / "mnist", "/work/shared/data/mnist"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").is_file():
            return Path(candidate)
    return REPO.parent / "shared" / "data" / "mnist"


MNIST_ROOT = _find_mnist()


def pytest_terminal_summary(terminalreporter):
    """After a run that included tests/nn/test_torch_layers.py: the largest relative difference to
    PyTorch seen for each layer and loss."""
    import sys

    module = sys.modules.get("test_torch_layers") or sys.modules.get("tests.test_torch_layers")
    largest = getattr(module, "LARGEST", None)
    if largest:
        terminalreporter.write_line("largest relative difference to PyTorch (float64), per layer and loss:")
        for name, value in sorted(largest.items()):
            terminalreporter.write_line(f"  {name:<28} {value:.2e}")
