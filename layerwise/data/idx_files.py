"""`data.dataset: idx`: any four IDX files in one directory (EMNIST, KMNIST, ...), found by name.

A file is images when its name holds "idx3" or "image", labels when it holds "idx1" or "label"; it
belongs to the training split when its name holds "train", to the test split with "t10k" or "test".
So MNIST's names, EMNIST's (emnist-letters-train-images-idx3-ubyte.gz) and KMNIST's all match.
"""

from pathlib import Path

from ..errors import DataError
from .idx import read_idx
from .mnist import check_pair

ROLES = {
    "train_images": "training images",
    "train_labels": "training labels",
    "test_images": "test images",
    "test_labels": "test labels",
}


def role_of(name):
    """'train_images', ... for a file name, or None."""
    name = name.lower()
    kind = "images" if ("idx3" in name or "image" in name) else "labels" if ("idx1" in name or "label" in name) else None
    split = "test" if ("t10k" in name or "test" in name) else "train" if "train" in name else None
    return f"{split}_{kind}" if kind and split else None


def find_idx_files(directory, keys=tuple(ROLES), origin="data.root"):
    """{role: path} for each role in `keys`; a missing or ambiguous role is a DataError listing what
    the directory holds. A .gz and a raw copy of the same file count once (the .gz is read)."""
    directory = Path(directory)
    if not directory.is_dir():
        what = "is a file, not a directory" if directory.exists() else "does not exist"
        raise DataError(f"{origin} {directory} {what}; point it at the directory holding the IDX files")
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    stems = {p.name[:-3] for p in files if p.name.endswith(".gz")}
    files = [p for p in files if p.name.endswith(".gz") or p.name not in stems]
    found = {}
    for path in files:
        role = role_of(path.name)
        if role in keys:
            found.setdefault(role, []).append(path)
    for role in keys:
        paths = found.get(role, [])
        if len(paths) > 1:
            raise DataError(f"{origin} {directory}: several files could be the {ROLES[role]}: "
                            f"{', '.join(p.name for p in paths)}; keep one per role in that directory")
        if not paths:
            listing = ", ".join(p.name for p in files[:8]) or "nothing"
            raise DataError(f"{origin} {directory} has no {ROLES[role]} file (a name with "
                            f"{'train' if role.startswith('train') else 't10k or test'} and "
                            f"{'idx3 or images' if role.endswith('images') else 'idx1 or labels'}); it holds: {listing}")
    return {role: found[role][0] for role in keys}


def load_idx_folder(directory, keys=tuple(ROLES), origin="data.root", sources=None):
    """Like mnist.load_mnist for the files find_idx_files picks; `sources` receives {role: path}."""
    paths = find_idx_files(directory, keys, origin)
    arrays = {role: read_idx(path) for role, path in paths.items()}
    for split in ("train", "test"):
        if f"{split}_images" in arrays:
            check_pair(arrays[f"{split}_images"], arrays[f"{split}_labels"],
                       paths[f"{split}_images"], paths[f"{split}_labels"])
    if "train_images" in arrays and "test_images" in arrays:
        if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
            raise DataError(f"{origin} {directory}: training images are {arrays['train_images'].shape[1:]} "
                            f"but test images {arrays['test_images'].shape[1:]}; use files from one dataset")
    if sources is not None:
        sources.update({role: str(path) for role, path in paths.items()})
    return arrays
