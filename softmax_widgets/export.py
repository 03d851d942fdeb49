"""Export without a UI: the history as CSV, W as a PNG grid of ten images (the state file is Trainer.save)."""

from __future__ import annotations

import csv
import io
import os
from typing import TYPE_CHECKING

import torch

from .history import History

if TYPE_CHECKING:
    from PIL import Image

    from .trainer import Trainer

__all__ = ["CSV_COLUMNS", "history_to_csv", "save_weight_grid", "weight_grid_image"]

CSV_COLUMNS = ["iteration", "epoch", "loss", "train_acc", "batch_size",
               "epoch_loss", "epoch_train_acc", "test_acc"]  # the epoch columns fill the row that ended an epoch


def history_to_csv(source: Trainer | History, path: str | os.PathLike | None = None) -> str:
    """One row per iteration (mean loss per image, batch accuracy); epoch results on the epoch's last row."""
    h = source if isinstance(source, History) else source.history
    ends: dict[int, list[int]] = {}
    for e, it in enumerate(h.epoch_iteration):
        ends.setdefault(it, []).append(e)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)

    def epoch_cells(e: int) -> list:
        return [repr(h.epoch_loss[e]), repr(h.epoch_train_acc[e]), repr(h.test_acc[e])]

    for e in ends.get(0, []):  # an epoch that ended before any iteration (every batch skipped)
        w.writerow([0, e + 1, "", "", "", *epoch_cells(e)])
    epoch = len(ends.get(0, [])) + 1
    for i in range(len(h.loss)):
        it = i + 1
        row = [it, epoch, repr(h.loss[i]), repr(h.train_acc[i]), h.batch_size[i]]
        finished = ends.get(it, [])
        w.writerow(row + (epoch_cells(finished[0]) if finished else ["", "", ""]))
        for e in finished[1:]:  # two epochs ending at one iteration: a row of its own, no iteration values
            w.writerow([it, e + 1, "", "", "", *epoch_cells(e)])
        epoch += len(finished)
    text = out.getvalue()
    if path is not None:
        with open(path, "w", newline="") as f:
            f.write(text)
    return text


def _diverging(v: torch.Tensor) -> torch.Tensor:
    """Values in [-1, 1] -> RGB uint8: blue below 0, white at 0, red above (one scale for all ten)."""
    v = v.clamp(-1, 1).unsqueeze(-1)
    white = torch.ones(3)
    red, blue = torch.tensor([0.70, 0.09, 0.17]), torch.tensor([0.13, 0.40, 0.67])
    rgb = torch.where(v >= 0, white + v * (red - white), white - v * (blue - white))
    return (rgb * 255).round().to(torch.uint8)


def weight_grid_image(source: Trainer | torch.Tensor, image_shape: tuple[int, int] | None = None,
                      classes: list[str] | None = None, scale: int = 4, columns: int = 5,
                      label_height: int = 14) -> Image.Image:
    """W's ten columns as images on one symmetric scale (red = evidence for the class, blue = against)."""
    from PIL import Image, ImageDraw  # PIL comes with torchvision; only needed here

    if isinstance(source, torch.Tensor):
        W = source.detach().cpu()
        if image_shape is None:
            side = round(W.shape[0] ** 0.5)
            image_shape = (side, side)
    else:
        W = source.W.detach().cpu()
        image_shape = image_shape or tuple(source.data.image_shape)
        classes = classes if classes is not None else list(source.data.classes)
    h, w = image_shape
    if W.shape[0] != h * w:
        raise ValueError(f"W has {W.shape[0]} rows, not {h}x{w} = {h * w}: pass image_shape")
    n = W.shape[1]
    rows = -(-n // columns)
    top = float(W.abs().max()) or 1.0
    tiles = _diverging(W.T.reshape(n, h, w) / top)  # (n, h, w, 3)
    pad, th, tw = 2 * scale, h * scale, w * scale
    lab = label_height if classes else 0
    grid = Image.new("RGB", (columns * (tw + pad) + pad, rows * (th + pad + lab) + pad), "white")
    draw = ImageDraw.Draw(grid)
    for k in range(n):
        r, c = divmod(k, columns)
        x, y = pad + c * (tw + pad), pad + r * (th + pad + lab)
        tile = Image.fromarray(tiles[k].numpy(), "RGB").resize((tw, th), Image.NEAREST)
        grid.paste(tile, (x, y))
        if classes:
            draw.text((x, y + th + 1), str(classes[k])[: max(1, tw // 6)], fill=(0, 0, 0))
    return grid


def save_weight_grid(source: Trainer | torch.Tensor, path: str | os.PathLike, **kwargs) -> str:
    """Write weight_grid_image(...) as a PNG; returns the path."""
    weight_grid_image(source, **kwargs).save(path, format="PNG")
    return os.fspath(path)
