"""Models that leave layerwise: a trained run as a file other runtimes read.

    to_onnx.py      `layerwise export RUN model.onnx`: the model, its preprocessing and its output
                    link as one ONNX graph (the optional extra layerwise[onnx])
"""
