"""Data in: sources read into float32 splits, preprocessing kept for later, batches.

    dataset.py      Split, Dataset and the seeded (stratified) train / val / test row split
    load.py         load_dataset: a config's data section -> Dataset (images, csv, npz, synthetic)
    batches.py      Batches: shuffled mini-batches gathered into reused buffers
    idx.py          the IDX format (read and write, gzip)
    mnist.py        MNIST / Fashion-MNIST files: config path, $LAYERWISE_DATA, cache, download
    fashion_mnist.py  Fashion-MNIST's file names, checksums and class names
    idx_files.py    a folder of IDX files of any dataset (data.dataset: idx)
    csvfile.py      reading a CSV into typed columns
    tabular.py      csv data: columns -> features and targets, splits, missing cells
    columns.py      what a CSV column is: dates, IDs, missing-cell fills, rare categories
    encoding.py     labels, one-hot categories, target scaling, input standardisation (tabular's numbers)
    arrays.py       npz data (x, y arrays)
    preprocess.py   how raw inputs become model inputs, stored in checkpoints
    images.py       image files (PNG/JPEG) -> MNIST-style pixels; block pictures for the terminal
    inputs.py       predict/eval --data inputs: CSV, .npy/.npz, IDX and image files
    fingerprint.py  sha256 of the data files a run was trained on

Imports go one way: load -> tabular/arrays/mnist -> dataset, preprocess.
"""
