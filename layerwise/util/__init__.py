"""The bottom layer, used by every other: files and memory, nothing about models.

    fileio.py       atomic writes (temp file, fsync, rename), JSON without NaN, OS error messages
    npz.py          .npz archives read without trusting them (headers and sizes checked first,
                    no pickle) and written atomically
    memory.py       the size check before large allocations
    outputs.py      files a user names (-o, --dot, OUT.onnx): checked early, created without replacing
"""
