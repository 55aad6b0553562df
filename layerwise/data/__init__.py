"""Datasets: the IDX reader, MNIST, and batching."""
