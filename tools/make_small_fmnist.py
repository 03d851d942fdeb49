"""Writes softmax_widgets/datasets/fashion-mnist-small/: the bundled offline subset of Fashion-MNIST.

The first 600 training and the first 100 test images of each class, in the files' own order, written
in the original idx format (gzip, mtime 0, so a rerun gives the same bytes). Usage:

    python tools/make_small_fmnist.py [FOLDER_HOLDING_FashionMNIST/raw]   # default: ../shared/data
"""

from __future__ import annotations

import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "softmax_widgets" / "datasets" / "fashion-mnist-small"
PER_CLASS = {"train": 600, "t10k": 100}


def read_idx(path: Path) -> np.ndarray:
    """An idx file (gzip or not) as a uint8 array; the header gives the shape."""
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def first_per_class(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first n images of each class, in file order (no randomness: nothing to seed)."""
    keep = np.concatenate([np.flatnonzero(labels == c)[:n] for c in range(10)])
    return np.sort(keep)


def main(root: Path) -> None:
    raw = root / "FashionMNIST" / "raw"
    OUT.mkdir(parents=True, exist_ok=True)
    for split, n in PER_CLASS.items():
        images = read_idx(raw / f"{split}-images-idx3-ubyte.gz")
        labels = read_idx(raw / f"{split}-labels-idx1-ubyte.gz")
        keep = first_per_class(labels, n)
        for kind, array in (("images-idx3", images[keep]), ("labels-idx1", labels[keep])):
            path = OUT / f"{split}-{kind}-ubyte.gz"
            with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0) as gz:
                gz.write(idx_bytes(array))
            print(f"{path.relative_to(REPO)}: {array.shape}, {path.stat().st_size:,} bytes, "
                  f"md5 {hashlib.md5(path.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data")
