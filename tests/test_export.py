"""Export: the history CSV reads back to the same numbers; the W grid PNG shows W's signs on one scale."""

from __future__ import annotations

import csv
import io

import torch
from PIL import Image

from softmax_widgets import Trainer
from softmax_widgets.export import CSV_COLUMNS, history_to_csv, save_weight_grid, weight_grid_image


def test_history_csv_round_trips_exactly(digits, tmp_path):
    t = Trainer(digits, lr=0.2, batch_size=500, seed=0)  # 3 iterations per epoch
    t.fit(2)
    t.train_step()
    text = history_to_csv(t, tmp_path / "h.csv")
    assert (tmp_path / "h.csv").read_text() == text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == CSV_COLUMNS and len(rows) == 7
    h = t.history
    assert [float(r["loss"]) for r in rows] == h.loss  # repr: every bit kept
    assert [float(r["train_acc"]) for r in rows] == h.train_acc
    assert [int(r["batch_size"]) for r in rows] == h.batch_size == [500, 500, 437] * 2 + [500]
    assert [int(r["epoch"]) for r in rows] == [1, 1, 1, 2, 2, 2, 3]
    ends = [r for r in rows if r["test_acc"]]
    assert [int(r["iteration"]) for r in ends] == h.epoch_iteration == [3, 6]
    assert [float(r["test_acc"]) for r in ends] == h.test_acc
    assert [float(r["epoch_loss"]) for r in ends] == h.epoch_loss


def test_empty_history_is_a_header():
    from softmax_widgets import History

    assert history_to_csv(History()) == ",".join(CSV_COLUMNS) + "\n"


def test_weight_grid_png_shows_signs_on_one_scale(digits, tmp_path):
    t = Trainer(digits, lr=0.5, batch_size=64, seed=0)
    for _ in range(20):
        t.train_step()
    path = save_weight_grid(t, tmp_path / "W.png", scale=3)
    img = Image.open(path)
    assert img.format == "PNG" and img.mode == "RGB"
    scale, pad, lab = 3, 6, 14
    assert img.size == (5 * (8 * scale + pad) + pad, 2 * (8 * scale + pad + lab) + pad)
    W = t.W.detach()
    top = W.abs().max()
    for k in (0, 7):
        for pix in (10, 36, 50):
            r, c = divmod(pix, 8)
            row, col = divmod(k, 5)
            x = pad + col * (8 * scale + pad) + c * scale + 1
            y = pad + row * (8 * scale + pad + lab) + r * scale + 1
            red, _, blue = img.getpixel((x, y))
            v = float(W[pix, k] / top)
            if v > 0.05:
                assert red > blue
            elif v < -0.05:
                assert blue > red
    k, pix = divmod(int(W.T.abs().argmax()), 64)  # the largest |W| is the full colour
    r, c = divmod(pix, 8)
    row, col = divmod(k, 5)
    x, y = pad + col * (8 * scale + pad) + c * scale, pad + row * (8 * scale + pad + lab) + r * scale
    assert img.getpixel((x, y)) in ((178, 23, 43), (33, 102, 171))


def test_weight_grid_from_a_bare_tensor():
    W = torch.zeros(784, 10)
    W[0, 0], W[1, 0] = 1.0, -1.0
    img = weight_grid_image(W, scale=1)
    assert img.getpixel((2, 2)) == (178, 23, 43) and img.getpixel((3, 2)) == (33, 102, 171)
    assert img.getpixel((4, 2)) == (255, 255, 255)
