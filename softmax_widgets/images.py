"""A grid of a data set's images with their labels, as a PIL image (notebook 01 shows the data with it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .data import as_float

if TYPE_CHECKING:
    from PIL import Image

    from .data import Dataset

__all__ = ["image_grid"]


def image_grid(data: Dataset, count: int = 20, split: str = "train", start: int = 0, columns: int = 10,
               scale: int = 3, label_height: int = 14) -> Image.Image:
    """Images `start` .. `start + count` of the split, grey on white, each with its class name underneath."""
    from PIL import Image, ImageDraw  # PIL comes with torchvision; only needed here

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    # the stored pixels, converted image by image below: 20 images, not the whole 188 MB split as float32
    x, y = (data.pixels_train, data.y_train) if split == "train" else (data.pixels_test, data.y_test)
    picked = range(start, min(start + count, len(y)))
    if not picked:
        raise ValueError(f"no images from {start} on: the {split} split has {len(y)}")
    h, w = data.image_shape
    th, tw, pad = h * scale, w * scale, 2 * scale
    tw_label = max(tw, 6 * max(len(str(c)) for c in data.classes) // 2)  # room for most names
    rows = -(-len(picked) // columns)
    grid = Image.new("L", (columns * (tw_label + pad) + pad, rows * (th + pad + label_height) + pad), 255)
    draw = ImageDraw.Draw(grid)
    for k, i in enumerate(picked):
        r, c = divmod(k, columns)
        left, top = pad + c * (tw_label + pad), pad + r * (th + pad + label_height)
        # dark clothes on white paper: 1 - pixel, as the lesson's figures draw them
        pixels = ((1.0 - as_float(x[i]).reshape(h, w)) * 255).round().to(torch.uint8).numpy()
        grid.paste(Image.fromarray(pixels, "L").resize((tw, th), Image.NEAREST), (left + (tw_label - tw) // 2, top))
        draw.text((left, top + th + 1), str(data.classes[int(y[i])]), fill=0)
    return grid
