"""Metrics computed from whole-split predictions."""

import numpy as np


def accuracy(logits, labels):
    return float(np.mean(logits.argmax(axis=1) == labels))


def confusion_matrix(logits, labels, num_classes):
    """counts[i, j] = how many examples of true class i were predicted as class j."""
    predicted = logits.argmax(axis=1)
    return np.bincount(labels * num_classes + predicted, minlength=num_classes**2).reshape(num_classes, num_classes)


def regression_metrics(pred, target):
    """MSE, MAE and R^2 = 1 - SS_res / SS_tot, over every entry."""
    err = pred.astype(np.float64) - target
    ss_tot = float(np.sum((target - target.mean(axis=0)) ** 2))
    ss_res = float(np.sum(err**2))
    return {
        "mse": float(np.mean(err**2)),
        "mae": float(np.mean(np.abs(err))),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
    }


# The metric that picks the best epoch for each task, and whether higher is better.
MONITOR = {"classification": ("accuracy", True), "regression": ("mse", False)}
