"""A tiny CNN config on tiny IDX images (tinyidx), for the tests of conv layers, augmentation and views."""

import textwrap

from tinyidx import write_tiny

# Every new layer type once: conv2d (padded, then strided), batchnorm per channel, maxpool2d,
# avgpool2d, dropout after a conv, flatten, linear.
TINY_CNN = """
seed: 1
data: {{dataset: idx, root: {root}, val_size: 10}}
model:
  layers:
    - {{type: conv2d, out_channels: 3, kernel_size: 5, padding: 2}}
    - {{type: batchnorm}}
    - {{type: relu}}
    - {{type: maxpool2d, kernel_size: 2}}
    - {{type: conv2d, out_channels: 4, kernel_size: 3, stride: 2}}
    - {{type: tanh}}
    - {{type: avgpool2d, kernel_size: 2, stride: 1}}
    - {{type: dropout, p: 0.2}}
    - {{type: flatten}}
    - {{type: linear, out_features: 10}}
loss: softmax_cross_entropy
optimizer: {{lr: 0.05, momentum: 0.9}}
train: {{epochs: 2, batch_size: 16}}
"""


def tiny_cnn(tmp_path, extra="", name="cnn.yaml", **kwargs):
    """Write tiny IDX files and the TINY_CNN config (plus `extra` YAML lines) into tmp_path; its path."""
    root = tmp_path / "idx"
    if not root.is_dir():
        write_tiny(root, **kwargs)
    path = tmp_path / name
    path.write_text(textwrap.dedent(TINY_CNN.format(root=root)).lstrip() + textwrap.dedent(extra))
    return path
