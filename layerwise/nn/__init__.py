"""The math: layers and losses, each with a hand-derived forward and backward, and the Sequential model.

    base.py         Layer: the contract (forward keeps what backward needs; backward fills grads and
                    returns the input gradient), train/eval modes, named parameters
    linear.py       Linear: y = x @ W + b
    activations.py  ReLU, LeakyReLU, ELU, GELU, Softplus, Sigmoid, Tanh
    batchnorm.py    BatchNorm (batch statistics in training, running ones in eval)
    dropout.py      Dropout (inverted dropout with its own seeded stream)
    losses.py       SoftmaxCrossEntropy, BinaryCrossEntropy, MSE, Huber, MAE; LOSSES
    sequential.py   Sequential: forward through the layers, backward in reverse
    registry.py     LAYERS (name -> class), build_model and build_loss from config values

Nothing here imports the rest of layerwise (only errors and util.memory's size check).
"""
