"""The bottom layer, used by every other: files and memory, nothing about models.

    fileio.py       atomic writes (temp file, fsync, rename), JSON without NaN, OS error messages
    npz.py          .npz archives read without trusting them (headers and sizes checked first,
                    no pickle) and written atomically
    openfile.py     files a user names, opened for reading: regular files only (a FIFO or device is
                    refused, never waited on), UTF-8 text, gzip recognised by its bytes
    arrayfile.py    .npy/.npz/.npy.gz inputs read by npz.py's hardened reader
    memory.py       the size check before large allocations
    outputs.py      files a user names (-o, --dot, OUT.onnx): checked early, created without replacing
"""
