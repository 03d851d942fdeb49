"""The evaluation tab: the test set's confusion matrix; a click on a cell shows its images; accuracy per class."""

from __future__ import annotations

import html
import io

import numpy as np
from bqplot import Axis, Bars, ColorScale, GridHeatMap, LinearScale, OrdinalScale
from bqplot.traits import array_from_json
from ipywidgets import HTML, Button, HBox, Image, Layout, VBox
from traitlets import Any

from softmax_widgets import evaluation
from softmax_widgets.runs import when

from .base import fig

__all__ = ["EXAMPLES", "ConfusionMatrix", "EvaluationPane", "short_name"]

EXAMPLES = 12  # test images shown for a clicked cell


def short_name(name: str, limit: int = 9) -> str:
    """A class name that fits under a rotated tick: "T-shirt/top" → "T-shirt", "Ankle boot" → "Boot"."""
    name = name.split("/")[0].strip()
    if len(name) <= limit:
        return name
    return name.split()[-1].capitalize() if " " in name else name[:limit - 1] + "."


def _cells_from_json(value, obj=None):
    """bqplot sends a selection as [[row, column], ...]: ints, never an object array (which cannot go back)."""
    if value is None:
        return None
    ar = array_from_json(value) if isinstance(value, dict) else np.asarray(value, dtype=np.int64)
    return np.asarray(ar, dtype=np.int64).reshape(-1, 2)


def _cells_to_json(value, obj=None):
    return None if value is None else np.asarray(value, dtype=np.int64).reshape(-1, 2).tolist()


class ConfusionMatrix(GridHeatMap):
    """GridHeatMap whose click selection round-trips: bqplot turns [[6, 0]] into a numpy object array and then
    fails to send it back ("ValueError: Unsupported dtype object" in the kernel's log on every cell click)."""

    selected = Any(None, allow_none=True).tag(sync=True, from_json=_cells_from_json, to_json=_cells_to_json)



def _png(pixels: np.ndarray, shape: tuple[int, int], side: int = 56) -> bytes:
    """A test image as PNG bytes, upscaled without blurring (one <img> each: lighter than a canvas heatmap)."""
    from PIL import Image as PILImage  # comes with torchvision

    img = PILImage.fromarray((pixels.reshape(shape) * 255).round().clip(0, 255).astype(np.uint8), "L")
    buf = io.BytesIO()
    img.resize((side, side), PILImage.NEAREST).save(buf, format="PNG")
    return buf.getvalue()



class EvaluationPane:
    """The test set's confusion matrix; a click on a cell shows its images; accuracy per class."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.classes = list(trainer.data.classes)
        self.shape = tuple(trainer.data.image_shape)
        k = len(self.classes)
        self.result: evaluation.TestEvaluation | None = None
        self.cell: tuple[int, int] | None = None
        self._shown: tuple | None = None
        rows, cols = OrdinalScale(reverse=True), OrdinalScale()  # row 0 (the first class) on top
        # white → orange up to the largest mistake count; the diagonal (right answers) saturates on purpose, so
        # the off-diagonal cells, the mistakes, get the whole colour range
        self.color_scale = ColorScale(colors=["#ffffff", "#fdae6b", "#e6550d"], min=0, max=1,
                                      extrapolation="constant")
        # GridHeatMap, not the canvas HeatMap of the W maps: 100 SVG cells are cheap, redrawn once per epoch at
        # most, and only GridHeatMap has a click selection and a number printed in each cell
        short = [short_name(c) for c in self.classes]
        self.matrix = ConfusionMatrix(row=short, column=short, color=np.zeros((k, k), np.float32),
                                  scales={"row": rows, "column": cols, "color": self.color_scale},
                                  display_format=".0f", font_style={"font-size": "10px"},
                                  interactions={"click": "select"}, selected_style={"stroke": "#000",
                                                                                    "stroke-width": "3"})
        self.matrix_fig = fig([self.matrix], [Axis(scale=cols, label="predicted", tick_rotate=-35),
                                               Axis(scale=rows, side="left",
                                                    label="true class", label_offset="62px")],
                               "confusion matrix of the test set", "470px", "440px",
                               (30, 75, 85, 10), display_toolbar=False)  # its hover toolbar hid the top-right cell
        # horizontal bars: every class name fits on its own line, unrotated
        bx, by = OrdinalScale(reverse=True), LinearScale(min=0.0, max=1.0)
        self.acc_bars = Bars(x=self.classes, y=np.zeros(k, np.float32), scales={"x": bx, "y": by},
                             colors=["#3182bd"], orientation="horizontal", padding=0.25)
        self.acc_fig = fig([self.acc_bars], [Axis(scale=bx, side="left"),
                                              Axis(scale=by, tick_format=".0%", tick_values=np.linspace(0, 1, 6))],
                            "test accuracy per class", "380px", "320px", (30, 40, 90, 16))
        self.button = Button(description="evaluate now", tooltip="confusion matrix of the test set with W now")
        self.button.on_click(lambda _: self.refresh())
        self.note = HTML("<small>Recomputed after every epoch. Click a cell to see its test images.</small>")
        self.title = HTML()
        self.images = [Image(format="png", layout=Layout(width="56px", height="56px")) for _ in range(EXAMPLES)]
        self.captions = [HTML() for _ in range(EXAMPLES)]
        self.tiles = [VBox([i, c], layout=Layout(width="118px", display="none"))
                      for i, c in zip(self.images, self.captions, strict=True)]
        self.matrix.observe(self._on_selected, "selected")
        self.matrix.on_element_click(self._on_click)
        self.tiles_box = HBox(self.tiles, layout=Layout(flex_flow="row wrap"))
        self.widget = VBox([HBox([self.button, self.note]), HBox([self.matrix_fig, self.acc_fig]), self.title,
                            self.tiles_box])

    def refresh(self) -> None:
        """One pass over the test set: matrix, bars, and the clicked cell's images again."""
        self.result = ev = evaluation.evaluate_test_set(self.trainer)
        m = ev.confusion.numpy()
        off = m[~np.eye(len(m), dtype=bool)]
        with self.color_scale.hold_sync():
            self.color_scale.max = float(max(off.max(initial=0), 1))
        with self.matrix.hold_sync():
            self.matrix.color = m.astype(np.float32)
        with self.acc_bars.hold_sync():
            self.acc_bars.y = np.nan_to_num(ev.per_class_accuracy.numpy()).astype(np.float32)
        self.note.value = (f"<small>test accuracy {ev.accuracy:.1%} {when(self.trainer.history, ev.iteration)}. "
                           "Click a cell to see its test images.</small>")
        if self.cell is not None:
            self.show_cell(*self.cell)

    def _on_selected(self, change) -> None:
        sel = change["new"]
        if sel is not None and len(sel):
            r, c = np.asarray(sel).reshape(-1, 2)[-1]  # bqplot sends [[row, column], ...]
            self.show_cell(int(r), int(c))

    def _on_click(self, _mark, content: dict) -> None:
        data = content.get("data") or {}
        if "rowNum" in data and "columnNum" in data:
            self.show_cell(int(data["rowNum"]), int(data["columnNum"]))

    def show_cell(self, true: int, predicted: int) -> None:
        """Fill the strip with the first images of cell (true, predicted), the most confident first."""
        if self.result is None:
            self.refresh()
        # the images of the matrix on screen (self.result), so the title's count is the number clicked
        if self._shown is not None and self._shown[0] is self.result and self._shown[1:] == (true, predicted):
            return  # a click arrives twice from the browser: as `selected` and as element_click
        self.cell, self._shown = (true, predicted), (self.result, true, predicted)
        ex = evaluation.cell_examples(self.result, true, predicted, k=EXAMPLES)
        t, p = self.classes[true], self.classes[predicted]
        what = f"{t} predicted right" if true == predicted else f"{t} taken for {p}"
        self.title.value = (f"<b>{html.escape(what)}: {ex.count} image{'s' * (ex.count != 1)}</b>"
                            + (f" <small>(the {len(ex.indices)} most confident shown)</small>"
                               if ex.count > len(ex.indices) else ""))
        x = self.trainer.data.test_images(ex.indices)  # only the images shown are converted from uint8
        for i, (img, cap, tile) in enumerate(zip(self.images, self.captions, self.tiles, strict=True)):
            if i < len(ex.indices):
                img.value = _png(x[i].numpy(), self.shape)
                cap.value = (f"<div style='font-size:11px;line-height:1.25;white-space:nowrap'>p({html.escape(p)}) "
                             f"{float(ex.p_predicted[i]):.2f}" + ("" if true == predicted else
                                                                   f"<br>p({html.escape(t)}) {float(ex.p_true[i]):.2f}")
                             + "</div>")
            tile.layout.display = "flex" if i < len(ex.indices) else "none"

    @property
    def shown_count(self) -> int:
        return sum(t.layout.display != "none" for t in self.tiles)
