"""bqplot figures of a Trainer: built once, then updated in place from its current state.

The curves' arithmetic (decimation, smoothing, ticks, the kept runs' palette) is curves.py.
"""

from __future__ import annotations

import html

import numpy as np
from bqplot import Axis, Bars, Figure, LinearScale, Lines
from ipywidgets import HTML, HBox, Layout, VBox

from softmax_widgets.data import Dataset

from .curves import (
    DIGIT_PX,
    FEW,
    MAX_POINTS,
    SMOOTH,
    Series,
    debias,
    decimate_indices,
    iteration_ticks,
    kept_curve,
    legend,
    nice_ceil,
    run_colour,
    set_ticks,
    smoothed,
    value_ticks,
)
from .presentation import Sizer, title_shift
from .weight_maps import WeightMaps, _fig, _title_style

__all__ = ["CURVE_PX", "DIGIT_PX", "MAX_POINTS", "Plots", "debias", "decimate_indices", "iteration_ticks",
           "nice_ceil", "smoothed", "value_ticks"]

STRIP = 8  # images shown from the current batch
RIGHT, WRONG, OTHER = "#2ca02c", "#d62728", "#9e9e9e"
# the loss and accuracy curves each take a column at least CURVE_W px wide (CURVE_W_COMPACT in the compact layout
# of the presentation scale) and grow to the width the W maps leave: one above the other in JupyterLab with the file
# browser open, side by side where the row holds two (the Voila app, a wide screen), so no width stays empty
CURVE_W, CURVE_W_COMPACT = 330, 210
CURVE_H = {"loss": 140, "acc": 116}  # heights at scale 1: controls, status, both curves and a code cell fit 720 px
CURVE_MARGIN = (8, 34, 46, 12)  # top, bottom, left, right
CURVE_PX = CURVE_W - 46 - 12  # the narrowest plotting width (the column less the left and right margins) at scale 1
CURVE_PX_COMPACT = CURVE_W_COMPACT - 46 - 12  # and in the compact layout: the iteration ticks never touch there
# (width, height) at scale 1 in the compact layout of the presentation scale: 1.5 × these fit a 1280×720 Lab (a
# width of None: the column's, see CURVE_W_COMPACT)
COMPACT = {"loss": (None, 150), "acc": (None, 150), "map": (75, 84)}


def _grid(figures, per_row: int = 5) -> VBox:
    """Rows of `per_row` figures: the same grid at every page width (a wrapping row would reflow)."""
    rows = [HBox(list(figures[i:i + per_row]), layout=Layout(flex_flow="row nowrap"))
            for i in range(0, len(figures), per_row)]
    return VBox(rows)


class Plots(WeightMaps):
    """Loss, accuracy and W on one screen; W.grad, bias and the current batch as panes for the tabs below."""

    def __init__(self, data: Dataset, w_range: float | None = None):
        self.classes, self.shape = list(data.classes), tuple(data.image_shape)
        self.fixed_w_range = w_range
        self._loss, self._acc = Series(), Series()
        self.compact = False  # the presentation scale's tighter layout (see presentation.py)
        self._build_curves()
        self._build_maps()
        self._build_bias()
        strip = self._build_batch()
        self._name_figures()
        self._build_sizer()
        # kept runs beside the live one: their smoothed loss dashed on the loss figure, named under the W maps
        self.run_lines: dict[int, Lines] = {}
        self._runs_top = 0  # the longest kept run (iterations): the loss figure's x axis reaches it too
        self._runs_loss_top = 0.0
        self._build_layout()
        # behind the tabs below: what changes every phase, too fast to read during Play
        self.panes = {
            "W.grad": VBox([self.g_note, _grid(self.g_figs),
                            HTML("<small>sgd moves W against W.grad: W −= lr · W.grad / batch size</small>")]),
            "batch": VBox([HTML("<b>current batch</b>: true → predicted (✗ = mistake); bars = softmax "
                                "probabilities, the true class green, a wrong guess red"), _grid(strip, 8)]),
            "bias": VBox([self.bias_fig]),
        }

    def _build_curves(self) -> None:
        """Loss and accuracy: integer iteration axes from 0 to at least 10 (no "1 … 1" with one point)."""
        self.loss_x, ys = LinearScale(min=0.0, max=10.0), LinearScale(min=0.0)
        self.loss_line = Lines(x=np.zeros(0, np.float32), y=np.zeros((2, 0), np.float32),
                               scales={"x": self.loss_x, "y": ys}, colors=["#7fb2dc", "#08519c"],
                               labels=["per batch", f"mean of ~{SMOOTH}"], stroke_width=1.5, marker="circle",
                               marker_size=12)
        self.loss_xaxis = Axis(scale=self.loss_x, label="iteration", tick_format="d",
                               tick_values=iteration_ticks(10, CURVE_PX))
        # round values, six at most (bqplot's own twelve, 0 to 2.2 by 0.2, touched each other at scale 1.5)
        self.loss_yaxis = Axis(scale=ys, side="left", label="loss", tick_format="~g", tick_values=value_ticks(1.0))
        self.loss_fig = _fig([self.loss_line], "", "100%", f"{CURVE_H['loss']}px", CURVE_MARGIN,
                             [self.loss_xaxis, self.loss_yaxis])
        self.acc_x, ya = LinearScale(min=0.0, max=10.0), LinearScale(min=0.0, max=1.0)
        self.train_line = Lines(x=np.zeros(0, np.float32), y=np.zeros((2, 0), np.float32),
                                scales={"x": self.acc_x, "y": ya}, colors=["#f5b27a", "#d94801"],
                                labels=["train (batch)", f"train (mean of ~{SMOOTH})"], marker="circle",
                                marker_size=12)
        self.test_line = Lines(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32),
                               scales={"x": self.acc_x, "y": ya}, colors=["#238b45"], labels=["test (per epoch)"],
                               marker="circle", marker_size=40, stroke_width=2)
        self.acc_xaxis = Axis(scale=self.acc_x, label="iteration", tick_format="d",
                              tick_values=iteration_ticks(10, CURVE_PX))
        self.acc_fig = _fig([self.train_line, self.test_line], "", "100%", f"{CURVE_H['acc']}px", CURVE_MARGIN,
                            [self.acc_xaxis,
                             Axis(scale=ya, side="left", label="accuracy", tick_format=".0%",
                                  tick_values=np.linspace(0, 1, 5))])
        self.loss_legend = HTML("<div style='font-size:12px;line-height:18px'><b>loss</b> per iteration"
                                + legend([("#7fb2dc", "per batch", False), ("#08519c", f"mean of ~{SMOOTH}",
                                                                                 False)]) + "</div>")
        self.acc_legend = HTML("<div style='font-size:12px;line-height:18px'><b>accuracy</b>"
                               + legend([("#f5b27a", "train", False), ("#d94801", "mean", False),
                                         ("#238b45", "test (epoch)", False)]) + "</div>")

    def _build_batch(self) -> list[VBox]:
        """The current batch: image, true → predicted, probabilities; returns the strip's columns."""
        k = len(self.classes)
        pxs, pys = LinearScale(min=-0.5, max=k - 0.5), LinearScale(min=0.0, max=1.0)
        self.img_maps = [self._heatmap("Greys", 0, 255, np.uint8) for _ in range(STRIP)]

        # one colour per mark (bqplot's per-bar colours did not render): all classes grey, then the true class
        # in green and a wrong prediction in red drawn over them, at the same x so the bars line up
        def bars(color):
            return Bars(x=np.arange(k, dtype=np.float32), y=np.zeros(k, np.float32), scales={"x": pxs, "y": pys},
                        colors=[color], padding=0.1)

        self.prob_bars = [bars(OTHER) for _ in range(STRIP)]
        self.true_bars = [bars(RIGHT) for _ in range(STRIP)]
        self.wrong_bars = [bars(WRONG) for _ in range(STRIP)]
        self.img_figs = [_fig([m], "—", "105px", "120px", (18, 2, 2, 2)) for m in self.img_maps]
        self.prob_figs = [_fig(m, "", "105px", "80px", (2, 2, 2, 2))
                          for m in zip(self.prob_bars, self.true_bars, self.wrong_bars, strict=True)]
        # the figure's title holds the true class only; what the model said goes below the bars in HTML, which
        # wraps inside its column (one SVG title "✗ Shirt → Ankle boot" ran into its neighbour's)
        # each column may shrink (JupyterLab with its file browser open at 1280 px has ~840 px for eight); the
        # caption takes the column's width, whatever it is, and wraps inside it
        self.captions = [HTML(layout=Layout(width="100%", height="30px", overflow="hidden", margin="0"))
                         for _ in range(STRIP)]
        for c in self.captions:
            c.add_class("sw-batch-caption")
        for f in self.img_figs + self.prob_figs:
            f.layout.width = "100%"  # the column's width: 105 px, less where the page is narrow
        return [VBox([f, p, c], layout=Layout(flex="0 1 105px", min_width="0", margin="0 6px 0 0", overflow="hidden"))
                for f, p, c in zip(self.img_figs, self.prob_figs, self.captions, strict=True)]

    def _name_figures(self) -> None:
        """Stable names for CSS and the browser tests (figure titles are for people and may change)."""
        for fig, name in ([(self.loss_fig, "sw-loss"), (self.acc_fig, "sw-acc"), (self.bias_fig, "sw-bias")]
                          + [(f, "sw-weights") for f in self.w_figs] + [(f, "sw-grad") for f in self.g_figs]
                          + [(f, "sw-batch") for f in self.img_figs]):
            fig.add_class(name)

    def _build_sizer(self) -> None:
        """Every figure's size at scale 1, for the presentation scale; the compact layout (1.5 on a 1280×720
        projector) shortens the curves and shrinks the W maps so the one-screen set still fits."""
        self.sizer = Sizer()
        shift = title_shift(12)  # every figure here is made by _fig: its title is lifted
        self.sizer.add(self.loss_fig, COMPACT["loss"], shift)
        self.sizer.add(self.acc_fig, COMPACT["acc"], shift)
        for f in self.w_figs + self.g_figs:
            self.sizer.add(f, COMPACT["map"], shift)
        for f in [self.bias_fig, *self.img_figs, *self.prob_figs]:
            self.sizer.add(f, None, shift)
        self.sizer.on_scale(self._on_scale)

    def _build_layout(self) -> None:
        """On one screen: the curves on the left, the ten W maps and their colour scale on the right. Each curve is a
        column (its legend above it: one line, or two in a narrow column, never cut) that grows to the width the W
        maps leave; the row of curves wraps, so they stand one above the other unless two columns fit."""
        self.keep_slot = HBox(layout=Layout(margin="6px 0 0 0", align_items="center"))  # the Dashboard's button
        self.runs_legend = HTML(layout=Layout(max_height="64px", overflow="auto"))
        self.runs_legend.add_class("sw-runs-legend")
        self.w_box = VBox([self.w_note, _grid(self.w_figs), self.keep_slot, self.runs_legend],
                          layout=Layout(margin="0 0 0 8px"))
        self.w_box.add_class("sw-w-maps")
        self.w_note.add_class("sw-w-legend")
        for legend_html in (self.loss_legend, self.acc_legend):
            legend_html.layout.min_height = "20px"
        self.curve_columns = [VBox([self.loss_legend, self.loss_fig], layout=Layout(margin="0 6px 0 0")),
                              VBox([self.acc_legend, self.acc_fig], layout=Layout(margin="0 6px 0 0"))]
        self.curves = HBox(self.curve_columns, layout=Layout(flex_flow="row wrap", align_items="flex-start"))
        self.curves.add_class("sw-curves")
        self._curve_width(CURVE_W)
        self.widget = HBox([self.curves, self.w_box],
                           # side by side from ~850 px; on a phone the W maps go below the curves
                           layout=Layout(flex_flow="row wrap", align_items="flex-start"))

    def figures(self) -> dict[str, Figure]:
        """The figures worth a file (the export tab): the curves, the bias and each W map (not the per-step strips)."""
        return {"loss": self.loss_fig, "accuracy": self.acc_fig, "bias": self.bias_fig,
                **{f"W: {fig.title}": fig for fig in self.w_figs}}

    def set_scale(self, scale: float) -> None:
        """Every figure at `scale` (the dashboard's zoom enlarges the rest): see presentation.py."""
        self.sizer.apply(scale)

    def _curve_width(self, width: int) -> None:
        """Each curve's column at least `width` px (of the zoomed dashboard), growing into the room beside it."""
        self.curve_px = width - CURVE_MARGIN[2] - CURVE_MARGIN[3]
        for box in (*self.curve_columns, self.curves):
            box.layout.flex = f"1 1 {width}px"

    def _on_scale(self, scale: float, compact: bool) -> None:
        self.compact = compact
        self._curve_width(CURVE_W_COMPACT if compact else CURVE_W)
        set_ticks(self.loss_xaxis, iteration_ticks(max(10, self._loss.n, self._runs_top), self.curve_px))
        set_ticks(self.acc_xaxis, iteration_ticks(max(10, self._acc.n), self.curve_px))
        for fig in self.img_figs:  # their titles are set per batch: the font follows the scale
            fig.title_style = _title_style(11, scale, fill=fig.title_style.get("fill", "#000"))
        # the curves' strokes and markers grow with the text (bqplot draws them at zoom 1)
        for line, width, marker in ((self.loss_line, 1.5, 12), (self.train_line, 2.0, 12), (self.test_line, 2.0, 40)):
            with line.hold_sync():
                line.stroke_width, line.marker_size = width * scale, round(marker * scale * scale)
        for line in self.run_lines.values():
            line.stroke_width = 2.0 * scale

    def show_runs(self, runs) -> None:
        """Kept runs (runs.Run) on the loss figure, dashed, each in its colour; the live run's line on top."""
        wanted = {r.id: (i, r) for i, r in enumerate(runs)}
        for key in [k for k in self.run_lines if k not in wanted]:
            self.run_lines.pop(key).close()
        items = []
        for key, (i, run) in wanted.items():
            color = run_colour(i)
            if key not in self.run_lines:  # a kept run is frozen: its curve is computed once
                x, y = kept_curve(run.history.loss)
                self.run_lines[key] = Lines(x=x, y=y, scales=self.loss_line.scales,
                                            colors=[color], line_style="dashed",
                                            stroke_width=2.0 * self.sizer.scale)
            items.append((color, run.label, True))
        self._runs_top = max((len(r.history.loss) for r in runs), default=0)
        self._runs_loss_top = max((float(np.max(line.y)) for line in self.run_lines.values() if len(line.y)),
                                  default=0.0)
        set_ticks(self.loss_xaxis, iteration_ticks(max(10, self._loss.n, self._runs_top), self.curve_px))
        marks = [*self.run_lines.values(), self.loss_line]
        if list(self.loss_fig.marks) != marks:
            self.loss_fig.marks = marks
        self.runs_legend.value = ("" if not items else "<div style='font-size:12px;line-height:18px'>kept, mean "
                                  f"loss:{legend(items)}</div>")

    # ---- updates: each mark inside its own hold_sync, so its changes leave as one message ----
    def update(self, trainer, parts) -> None:
        """Copy the Trainer's state into the marks named in `parts` (curves, weights, grad, batch)."""
        if "curves" in parts:
            self._curves(trainer.history)
        if "weights" in parts:
            self._weights(trainer)
        if "grad" in parts:
            self._grad(trainer)
        if "batch" in parts:
            self._batch(trainer)

    def _curves(self, h) -> None:
        for series, line, src, xs, axis, others in ((self._loss, self.loss_line, h.loss, self.loss_x,
                                                     self.loss_xaxis, self._runs_top),
                                                    (self._acc, self.train_line, h.train_acc, self.acc_x,
                                                     self.acc_xaxis, 0)):
            n = series.sync(src)
            idx = decimate_indices(n)
            y = np.empty((2, len(idx)), np.float32)
            y[0] = series.values[idx]
            y[1] = series.running_mean(idx)
            marker = "circle" if n < FEW else None  # a single point has no line: show the points themselves
            with line.hold_sync():
                line.x = (idx + 1).astype(np.float32)  # iteration i is done after i sgd steps
                line.y = y
                if line.marker != marker:
                    line.marker = marker
            top = None if n >= 10 else 10.0  # at least 0..10: whole-number ticks from the first point
            if xs.max != top:
                xs.max = top
            set_ticks(axis, iteration_ticks(max(10, n, others), self.curve_px))
        loss = self.loss_line.y
        top = max(float(np.max(loss)) if loss.size else 0.0, self._runs_loss_top)
        set_ticks(self.loss_yaxis, value_ticks(top))
        if len(self.test_line.x) != len(h.test_acc) or len(h.test_acc) == 0:
            with self.test_line.hold_sync():
                self.test_line.x = np.asarray(h.epoch_iteration, np.float32)
                self.test_line.y = np.asarray(h.test_acc, np.float32)

    def _batch(self, trainer) -> None:
        X, y, p = trainer.X, trainer.y, trainer.y_hat
        n = 0 if X is None else min(STRIP, len(y))
        imgs = np.zeros((STRIP, *self.shape), np.uint8)
        if n:
            # pixels are k/255 (or k/16 for digits): uint8 is exact for the image sets, and a quarter of float32
            imgs[:n] = (X[:n].detach().cpu().numpy() * 255).round().clip(0, 255).reshape((n, *self.shape))
        probs = None if p is None or n == 0 else p[:n].detach().cpu().numpy().astype(np.float32)
        k = len(self.classes)
        zero = np.zeros(k, np.float32)
        for i in range(STRIP):
            with self.img_maps[i].hold_sync():
                self.img_maps[i].color = imgs[i]
            fig = self.img_figs[i]
            row, right, wrong = zero, zero.copy(), zero.copy()
            said = ""
            if i >= n:
                title, style = "—", "#000"
            else:
                true = int(y[i])
                if probs is None or not np.isfinite(probs[i]).all():
                    title, style = self.classes[true], "#000"
                    said = "→ ? (no forward yet)" if probs is None else "→ ? (not finite)"
                else:
                    row = probs[i]
                    pred = int(row.argmax())
                    right[true] = row[true]
                    if pred != true:
                        wrong[pred] = row[pred]
                    title, style = (f"{'✓' if pred == true else '✗'} {self.classes[true]}",
                                    RIGHT if pred == true else WRONG)
                    said = f"→ {self.classes[pred]} {row[pred]:.0%}"
            caption = (f"<div style='font-size:11px;line-height:14px;white-space:normal;overflow-wrap:anywhere;"
                       f"color:{style}' title='{html.escape(said, quote=True)}'>{html.escape(said)}</div>")
            if self.captions[i].value != caption:
                self.captions[i].value = caption
            with fig.hold_sync():
                fig.title, fig.title_style = title, _title_style(11, self.sizer.scale, fill=style)
            for mark, values in ((self.prob_bars[i], row), (self.true_bars[i], right), (self.wrong_bars[i], wrong)):
                with mark.hold_sync():
                    mark.y = values
