"""The data sets shipped inside the package (softmax_widgets/datasets/): no network, no data folder."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from ._idx import read_idx

BUNDLED = Path(__file__).resolve().parent / "datasets"


def fashion_small() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """6,000 train / 1,000 test Fashion-MNIST images as uint8 (N, 28, 28) and int64 labels."""
    folder = BUNDLED / "fashion-mnist-small"
    split = []
    for name in ("train", "t10k"):
        images = read_idx(folder / f"{name}-images-idx3-ubyte.gz")
        labels = read_idx(folder / f"{name}-labels-idx1-ubyte.gz").long()
        split += [images, labels]
    return tuple(split)


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits, read as sklearn.datasets.load_digits reads them, split 80/20 with seed 0."""
    with gzip.open(BUNDLED / "digits" / "digits.csv.gz", "rt") as f:
        table = np.loadtxt(f, delimiter=",")  # float64, as scikit-learn's loader: the same division below
    x = torch.from_numpy((table[:, :-1] / 16.0).astype(np.float32))
    y = torch.from_numpy(table[:, -1].astype(np.int64))
    order = torch.from_numpy(np.random.RandomState(0).permutation(len(y)))
    cut = int(0.8 * len(y))
    tr, te = order[:cut], order[cut:]
    return x[tr], y[tr], x[te], y[te]
