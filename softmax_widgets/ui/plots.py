"""bqplot figures of a Trainer: built once, then updated in place from its current state."""

from __future__ import annotations

import html
import math

import numpy as np
from bqplot import Axis, Bars, ColorScale, Figure, HeatMap, LinearScale, Lines, OrdinalScale
from ipywidgets import HTML, HBox, Layout, VBox

from softmax_widgets.data import Dataset

from .presentation import Sizer

__all__ = ["MAX_POINTS", "Plots", "debias", "decimate_indices", "iteration_ticks", "nice_ceil", "smoothed"]

MAX_POINTS = 300  # most points per curve sent (a 440 px plot shows no more); each push costs bytes
SMOOTH = 50  # iterations the smoothed curve averages over (an exponential moving average of about that span)
BETA = 1 - 2 / (SMOOTH + 1)  # the EMA whose centre of mass matches a 50-point window
STRIP = 8  # images shown from the current batch
RIGHT, WRONG, OTHER = "#2ca02c", "#d62728", "#9e9e9e"
LEVELS = 127  # colour levels each side of 0 sent for a heatmap
FEW = 20  # a curve with fewer points shows them as markers
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
SHRINK = 4  # a colour limit shrinks when the values fall below 1/SHRINK of it (hysteresis)


def _levels(values: np.ndarray, m: float) -> np.ndarray:
    """±m as int8 levels ±127: the colour is all the browser makes of a heatmap, at a quarter of float32's bytes."""
    v = np.nan_to_num(values, nan=0.0, posinf=m, neginf=-m) * (LEVELS / m)
    return np.clip(np.rint(v), -LEVELS, LEVELS).astype(np.int8)


def decimate_indices(n: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Every k-th index (k a power of 2, so the picks stay put as n grows) plus the exact last one."""
    if n <= max_points:
        return np.arange(n)
    k = 1 << math.ceil(math.log2((n - 1) / (max_points - 1)))
    idx = np.arange(0, n, k)
    return idx if idx[-1] == n - 1 else np.append(idx, n - 1)


def nice_ceil(x: float) -> float:
    """The smallest of 1, 2, 5 × 10^k that is >= x: colour-scale limits a reader can quote."""
    if not (x > 0 and math.isfinite(x)):
        return 1.0
    e = math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if m * 10.0 ** e >= x * (1 - 1e-9):
            return m * 10.0 ** e
    return 10.0 ** (e + 1)


DIGIT_PX, TICK_GAP_PX = 7.5, 18  # a digit of a 12 px tick label is at most ~7 px wide; the room left between two


def iteration_ticks(hi: float, width_px: float, lo: float = 0.0) -> np.ndarray:
    """Whole-number ticks from lo to hi, spaced 1, 2 or 5 × 10^k apart: as many as `width_px` holds without two
    labels touching (bqplot's own choice ran "80100120140..." together near 300 iterations)."""
    hi = max(float(hi), lo + 1.0)
    label_px = DIGIT_PX * len(str(int(hi))) + TICK_GAP_PX
    most = max(2, int(width_px // label_px))
    step = max(1, round(nice_ceil((hi - lo) / most)))
    first = math.ceil(lo / step) * step
    return np.arange(first, hi + 1e-9, step, dtype=np.float64)


def value_ticks(hi: float, most: int = 6) -> np.ndarray:
    """Ticks from 0 to hi, spaced 1, 2 or 5 × 10^k apart, at most `most` + 1 of them: 0, 0.5, 1, 1.5, 2 for 2.3."""
    hi = float(hi) if math.isfinite(hi) and hi > 0 else 1.0
    step = nice_ceil(hi / most)
    return np.arange(0.0, hi + step * 1e-6, step, dtype=np.float64).round(12)


def set_ticks(axis: Axis, ticks: np.ndarray) -> None:
    """Send the tick values only when they change (a push per new tick, not per step)."""
    old = axis.tick_values
    if old is None or len(old) != len(ticks) or not np.array_equal(np.asarray(old, np.float64), ticks):
        axis.tick_values = ticks


def smoothed(values: np.ndarray, start: float = 0.0) -> np.ndarray:
    """An exponential moving average of `values`, continuing from `start` (not yet divided by 1 − β^i: see
    `debias`): smooth from the first point on, with no kink where a 50-point window would fill."""
    out = np.empty(len(values), np.float64)
    m = start
    for i, x in enumerate(values.tolist()):  # a few hundred new points per push: a Python loop is fine here
        m = BETA * m + (1 - BETA) * x
        out[i] = m
    return out


def debias(raw: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The average of the points so far, weighted towards the last ~SMOOTH (as Adam corrects its moments)."""
    return (raw / (1 - BETA ** (idx + 1))).astype(np.float32)


class _Series:
    """A history list mirrored into a growing float32 buffer, so a push never converts the whole list."""

    def __init__(self):
        self.source, self.n = None, 0
        self.values = np.empty(1024, np.float32)
        self.ema = np.zeros(1024, np.float64)  # the smoothed curve, kept up to date in O(new points)

    def sync(self, source: list) -> int:
        n = self.n
        # a reset gives a new History; an undo shortens it (and the next iteration may refill the same length)
        if source is not self.source or len(source) < n or (n and np.float32(source[n - 1]) != self.values[n - 1]):
            self.source, self.n = source, 0
        new = len(source) - self.n
        if new > 0:
            if len(source) > len(self.values):
                cap = max(2 * len(self.values), len(source))
                self.values = np.resize(self.values, cap)
                self.ema = np.resize(self.ema, cap)
            chunk = np.asarray(source[self.n:], np.float64)
            self.values[self.n:len(source)] = chunk
            self.ema[self.n:len(source)] = smoothed(chunk, self.ema[self.n - 1] if self.n else 0.0)
            self.n = len(source)
        return self.n

    def running_mean(self, idx: np.ndarray) -> np.ndarray:
        """The smoothed curve at `idx` (iterations − 1)."""
        return debias(self.ema[idx], idx)


def _fig(marks, title="", width="96px", height="114px", margin=(18, 2, 2, 2), axes=(), **kw) -> Figure:
    top, bottom, left, right = margin
    # a white plot area: what the page shows is what an exported PNG/SVG shows, on any background
    return Figure(marks=list(marks), axes=list(axes), title=title, animation_duration=0, display_toolbar=False,
                  fig_margin=dict(top=top, bottom=bottom, left=left, right=right), padding_y=0.0,
                  title_style=_title_style(12), layout=Layout(width=width, height=height, margin="0",
                                                                   flex="none"),
                  background_style={"fill": "white"}, min_aspect_ratio=0.2, max_aspect_ratio=5, **kw)


def _title_style(px: float, scale: float = 1.0, **kw) -> dict:
    """A small figure's title, lifted clear of its plot: bqplot puts the baseline one font size below the middle
    of the top margin (dy 1em), inside the image of an 18 px margin; -5 px puts it 2 px above."""
    return {"font-size": f"{px * scale:g}px", "transform": f"translateY({-(px - 7) * scale:g}px)", **kw}


def _grid(figures, per_row: int = 5) -> VBox:
    """Rows of `per_row` figures: the same grid at every page width (a wrapping row would reflow)."""
    rows = [HBox(list(figures[i:i + per_row]), layout=Layout(flex_flow="row nowrap"))
            for i in range(0, len(figures), per_row)]
    return VBox(rows)


def _legend(items) -> str:
    """A legend in HTML beside the figure, never over the curves: [(colour, label, dashed)]."""
    spans = "".join(f"<span style='margin-left:12px;white-space:nowrap'><span style='display:inline-block;width:18px;"
                    f"vertical-align:middle;border-top:3px {'dashed' if dashed else 'solid'} {color}'></span> "
                    f"{html.escape(label)}</span>" for color, label, dashed in items)
    return spans


def colour_bar(m: float, low: str, mid: str, high: str, what: str, width: int = 90) -> str:
    """The colour scale as a small gradient with its limits: −m … +m."""
    return (f"<span style='white-space:nowrap;font-size:12px'>{html.escape(what)} −{m:g} <span style='display:"
            f"inline-block;width:{width}px;height:10px;vertical-align:middle;border:1px solid #999;background:"
            f"linear-gradient(to right,{low},{mid},{high})'></span> +{m:g}</span>")


# kept runs in the order kept: the same colour on the main loss plot and in the compare runs tab (the live loss
# is blue on the one, black in the other, so neither palette starts with them)
RUN_COLOURS = ["#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def run_colour(i: int) -> str:
    """The colour of the i-th kept run, wherever it is drawn."""
    return RUN_COLOURS[i % len(RUN_COLOURS)]


def kept_curve(loss, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """A kept run's loss as drawn: its smoothed mean (bias-corrected), decimated; x is the iteration (1-based)."""
    loss = np.asarray(loss, np.float64)
    idx = decimate_indices(len(loss), max_points)
    y = debias(smoothed(loss)[idx], idx) if len(loss) else np.zeros(0, np.float32)
    return (idx + 1).astype(np.float32), y
W_COLOURS = ("#2166ac", "#f7f7f7", "#b2182b")  # RdBu reversed, as the W maps: blue −, white 0, red +
G_COLOURS = ("#b35806", "#f7f7f7", "#542788")  # PuOr, as the W.grad maps: orange −, purple +


class Plots:
    """Loss, accuracy and W on one screen; W.grad, bias and the current batch as panes for the tabs below."""

    def __init__(self, data: Dataset, w_range: float | None = None):
        self.classes, self.shape = list(data.classes), tuple(data.image_shape)
        h, w = self.shape
        k = len(self.classes)
        self.fixed_w_range = w_range
        self._loss, self._acc = _Series(), _Series()
        # ---- curves: integer iteration axes from 0 to at least 10 (no "1 … 1" with one point) ----
        self.loss_x, ys = LinearScale(min=0.0, max=10.0), LinearScale(min=0.0)
        self.loss_line = Lines(x=np.zeros(0, np.float32), y=np.zeros((2, 0), np.float32),
                               scales={"x": self.loss_x, "y": ys}, colors=["#7fb2dc", "#08519c"],
                               labels=["per batch", f"mean of ~{SMOOTH}"], stroke_width=1.5, marker="circle",
                               marker_size=12)
        self.loss_xaxis = Axis(scale=self.loss_x, label="iteration", tick_format="d",
                               tick_values=iteration_ticks(10, CURVE_PX))
        # round values, six at most (bqplot's own twelve, 0 to 2.2 by 0.2, touched each other at scale 1.5)
        self.loss_yaxis = Axis(scale=ys, side="left", label="loss", tick_format="~g", tick_values=value_ticks(1.0))
        self._runs_loss_top = 0.0
        self.loss_fig = _fig([self.loss_line], "", "100%", f"{CURVE_H['loss']}px", CURVE_MARGIN,
                             [self.loss_xaxis,
                              self.loss_yaxis])
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
                                + _legend([("#7fb2dc", "per batch", False), ("#08519c", f"mean of ~{SMOOTH}",
                                                                                  False)]) + "</div>")
        self.acc_legend = HTML("<div style='font-size:12px;line-height:18px'><b>accuracy</b>"
                               + _legend([("#f5b27a", "train", False), ("#d94801", "mean", False),
                                          ("#238b45", "test (epoch)", False)]) + "</div>")
        # ---- weights: one fixed, symmetric, diverging scale shared by all ten (0 is white) ----
        px, py = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
        # The heatmaps carry int8 levels of ±m (see _levels), so every colour scale is fixed: only m changes, and
        # all ten maps use the same m. Each map gets its own scale widgets with those same fixed limits: in the
        # browser a shared scale makes every map that uses it redraw (cell by cell) when any one of them updates,
        # which left JupyterLab 10-30 s behind during Play (measured); unshared, one update is one redraw.
        def heatmap(scheme, lo, hi, dtype, reverse=False):
            scales = {"x": LinearScale(min=-0.5, max=w - 0.5), "y": LinearScale(min=-0.5, max=h - 0.5, reverse=True),
                      "color": ColorScale(scheme=scheme, min=lo, max=hi, mid=0.0 if lo < 0 else None,
                                          reverse=reverse)}  # y reversed: row 0 on top, like the image
            return HeatMap(x=px, y=py, color=np.zeros((h, w), dtype), scales=scales)

        self.w_maps = [heatmap("RdBu", -LEVELS, LEVELS, np.int8, reverse=True) for _ in range(k)]
        self.g_maps = [heatmap("PuOr", -LEVELS, LEVELS, np.int8) for _ in range(k)]
        self.w_scale, self.g_scale = self.w_maps[0].scales["color"], self.g_maps[0].scales["color"]
        self.reset_scales()
        self.w_figs = [_fig([m], name) for m, name in zip(self.w_maps, self.classes, strict=True)]
        self.g_figs = [_fig([m], name) for m, name in zip(self.g_maps, self.classes, strict=True)]
        self.compact = False  # the presentation scale's tighter layout (see presentation.py)
        self.w_note = HTML(layout=Layout(height="20px", overflow="hidden"))
        self.g_note = HTML(layout=Layout(height="22px", overflow="hidden"))
        # ---- bias: horizontal bars, so every class name fits on its own line ----
        self.b_scale = LinearScale(min=-0.1, max=0.1)
        by = OrdinalScale(reverse=True)
        self.b_axis = Axis(scale=self.b_scale, tick_format="~g", tick_values=np.array([-0.1, -0.05, 0, 0.05, 0.1]),
                           label="b")
        self.bias_bars = Bars(x=self.classes, y=np.zeros(k, np.float32), scales={"x": by, "y": self.b_scale},
                              colors=["#6a51a3"], orientation="horizontal", padding=0.25)
        self.bias_fig = _fig([self.bias_bars], "b (bias), one bar per class", "420px", "300px", (26, 40, 90, 16),
                             [Axis(scale=by, side="left"), self.b_axis])
        # ---- the current batch: image, true → predicted, probabilities ----
        pxs, pys = LinearScale(min=-0.5, max=k - 0.5), LinearScale(min=0.0, max=1.0)
        self.img_maps = [heatmap("Greys", 0, 255, np.uint8) for _ in range(STRIP)]
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
        strip = [VBox([f, p, c], layout=Layout(flex="0 1 105px", min_width="0", margin="0 6px 0 0",
                                               overflow="hidden"))
                 for f, p, c in zip(self.img_figs, self.prob_figs, self.captions, strict=True)]
        # stable names for CSS and the browser tests (figure titles are for people and may change)
        for fig, name in ([(self.loss_fig, "sw-loss"), (self.acc_fig, "sw-acc"), (self.bias_fig, "sw-bias")]
                          + [(f, "sw-weights") for f in self.w_figs] + [(f, "sw-grad") for f in self.g_figs]
                          + [(f, "sw-batch") for f in self.img_figs]):
            fig.add_class(name)
        # every figure's size at scale 1, for the presentation scale; the compact layout (1.5 on a 1280×720
        # projector) shortens the curves and shrinks the W maps so the one-screen set still fits
        self.sizer = Sizer()
        self.sizer.add(self.loss_fig, COMPACT["loss"])
        self.sizer.add(self.acc_fig, COMPACT["acc"])
        for f in self.w_figs + self.g_figs:
            self.sizer.add(f, COMPACT["map"])
        for f in [self.bias_fig, *self.img_figs, *self.prob_figs]:
            self.sizer.add(f)
        self.sizer.on_scale(self._on_scale)
        # kept runs beside the live one: their smoothed loss dashed on the loss figure, named under the W maps
        self.run_lines: dict[int, Lines] = {}
        self._runs_top = 0  # the longest kept run (iterations): the loss figure's x axis reaches it too
        self.keep_slot = HBox(layout=Layout(margin="6px 0 0 0", align_items="center"))  # the Dashboard's button
        self.runs_legend = HTML(layout=Layout(max_height="64px", overflow="auto"))
        self.runs_legend.add_class("sw-runs-legend")
        self.w_box = VBox([self.w_note, _grid(self.w_figs), self.keep_slot, self.runs_legend],
                          layout=Layout(margin="0 0 0 8px"))
        self.w_box.add_class("sw-w-maps")
        self.w_note.add_class("sw-w-legend")
        # on one screen: the curves on the left, the ten W maps and their colour scale on the right. Each curve is a
        # column (its legend above it: one line, or two in a narrow column, never cut) that grows to the width the
        # W maps leave; the row of curves wraps, so they stand one above the other unless two columns fit
        for legend in (self.loss_legend, self.acc_legend):
            legend.layout.min_height = "20px"
        self.curve_columns = [VBox([self.loss_legend, self.loss_fig], layout=Layout(margin="0 6px 0 0")),
                              VBox([self.acc_legend, self.acc_fig], layout=Layout(margin="0 6px 0 0"))]
        self.curves = HBox(self.curve_columns, layout=Layout(flex_flow="row wrap", align_items="flex-start"))
        self.curves.add_class("sw-curves")
        self._curve_width(CURVE_W)
        self.widget = HBox([self.curves, self.w_box],
                           # side by side from ~850 px; on a phone the W maps go below the curves
                           layout=Layout(flex_flow="row wrap", align_items="flex-start"))
        # behind the tabs below: what changes every phase, too fast to read during Play
        self.panes = {
            "W.grad": VBox([self.g_note, _grid(self.g_figs),
                            HTML("<small>sgd moves W against W.grad: W −= lr · W.grad / batch size</small>")]),
            "batch": VBox([HTML("<b>current batch</b>: true → predicted (✗ = mistake); bars = softmax "
                                "probabilities, the true class green, a wrong guess red"), _grid(strip, 8)]),
            "bias": VBox([self.bias_fig]),
        }

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
                                  f"loss:{_legend(items)}</div>")

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

    def _columns(self, t) -> np.ndarray:
        # W is stored column-major, so W.T is one contiguous (10, D) block; copy: numpy would share W's memory
        return t.detach().cpu().T.numpy().reshape((-1, *self.shape)).astype(np.float32, copy=True)

    @property
    def w_range(self) -> float:
        """The W colour scale runs from −w_range (blue) to +w_range (red)."""
        return self._m[id(self.w_scale)]

    @property
    def grad_range(self) -> float:
        return self._m[id(self.g_scale)]

    def _weights(self, trainer) -> None:
        W = self._columns(trainer.W)
        m = self._range(self.w_scale, W, fixed=self.fixed_w_range)
        # compact: the W maps are narrower than the whole sentence; the short one says the same
        note = ("<div style='font-size:12px;line-height:20px;white-space:nowrap'><b>W</b>: "
                + (f"red votes for the class &nbsp;{colour_bar(m, *W_COLOURS, '', 60)}" if self.compact else
                   f"one image per class (red votes for it) &nbsp;{colour_bar(m, *W_COLOURS, 'colour scale')}")
                + "</div>")
        if self.w_note.value != note:
            self.w_note.value = note
        for mark, img in zip(self.w_maps, _levels(W, m), strict=True):
            with mark.hold_sync():
                mark.color = img
        b = trainer.b.detach().cpu().numpy().astype(np.float32)
        top = nice_ceil(float(np.abs(b).max())) if np.isfinite(b).all() and b.any() else 0.1
        if top > self.b_scale.max or top < self.b_scale.max / 4:
            with self.b_scale.hold_sync():
                self.b_scale.min, self.b_scale.max = -top, top
            # five ticks at round values: never two the same label (".2f" printed 0.01, 0.01, 0.00, 0.00)
            self.b_axis.tick_values = np.array([-top, -top / 2, 0.0, top / 2, top])
        with self.bias_bars.hold_sync():
            self.bias_bars.y = b

    def _grad(self, trainer) -> None:
        g = trainer.W.grad
        G = np.zeros((len(self.classes), *self.shape), np.float32) if g is None else self._columns(g)
        m = self._range(self.g_scale, G)
        passes = getattr(trainer, "grad_passes", 1)
        state = (" · W.grad is None: no backward() yet" if g is None else " · zero (after zero_grad)" if passes == 0
                 else f" · the sum of {passes} backward passes (no zero_grad between)" if passes > 1 else "")
        self.g_note.value = (f"<div style='font-size:12px;line-height:20px;white-space:nowrap'><b>W.grad</b> after "
                             f"backward &nbsp;{colour_bar(m, *G_COLOURS, 'colour scale')}{html.escape(state)}</div>")
        for mark, img in zip(self.g_maps, _levels(G, m), strict=True):
            with mark.hold_sync():
                mark.color = img

    def reset_scales(self) -> None:
        """Forget the colour limits (after reset()): the next update picks them from the new W."""
        self._m = {id(self.w_scale): 0.0, id(self.g_scale): 0.0}

    def _range(self, scale: ColorScale, values: np.ndarray, fixed: float | None = None) -> float:
        """The colour limit follows a robust max of |values| both ways, with hysteresis: it grows as soon as the
        values leave it, and shrinks only when they fall below a quarter of it, so Play does not flicker and an
        undone blow-up does not leave the maps blank (the limit stays within 4× of the values)."""
        m = self._m[id(scale)]
        if fixed:
            want = robust = fixed
        else:
            finite = np.abs(values[np.isfinite(values)])
            robust = float(np.quantile(finite, 0.995)) if finite.size else 0.0
            want = nice_ceil(robust) if robust > 0 else 0.01
        if fixed or m <= 0 or robust > m or robust < m / SHRINK:
            m = self._m[id(scale)] = want
        return m

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
