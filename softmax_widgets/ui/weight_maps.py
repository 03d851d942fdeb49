"""The W maps and the bias: what sgd moves, drawn as images of W's columns on one fixed colour scale.

A part of Plots (plots.py), with the small figure every plot of it is drawn in (`_fig`): the heatmaps are built
once and refilled in place; only the colour limit m changes.
"""

from __future__ import annotations

import html

import numpy as np
from bqplot import Axis, Bars, ColorScale, Figure, HeatMap, LinearScale, OrdinalScale
from ipywidgets import HTML, Layout

from softmax_widgets.models import shown

from .curves import nice_ceil
from .presentation import lift, title_shift

__all__ = ["G_COLOURS", "LEVELS", "W_COLOURS", "WeightMaps", "colour_bar"]

LEVELS = 127  # colour levels each side of 0 sent for a heatmap
SHRINK = 4  # a colour limit shrinks when the values fall below 1/SHRINK of it (hysteresis)
W_COLOURS = ("#2166ac", "#f7f7f7", "#b2182b")  # RdBu reversed, as the W maps: blue −, white 0, red +
G_COLOURS = ("#b35806", "#f7f7f7", "#542788")  # PuOr, as the W.grad maps: orange −, purple +


def _levels(values: np.ndarray, m: float) -> np.ndarray:
    """±m as int8 levels ±127: the colour is all the browser makes of a heatmap, at a quarter of float32's bytes."""
    v = np.nan_to_num(values, nan=0.0, posinf=m, neginf=-m) * (LEVELS / m)
    return np.clip(np.rint(v), -LEVELS, LEVELS).astype(np.int8)



def colour_bar(m: float, low: str, mid: str, high: str, what: str, width: int = 90) -> str:
    """The colour scale as a small gradient with its limits: −m … +m."""
    return (f"<span style='white-space:nowrap;font-size:12px'>{html.escape(what)} −{m:g} <span style='display:"
            f"inline-block;width:{width}px;height:10px;vertical-align:middle;border:1px solid #999;background:"
            f"linear-gradient(to right,{low},{mid},{high})'></span> +{m:g}</span>")



def _fig(marks, title="", width="96px", height="114px", margin=(18, 2, 2, 2), axes=(), **kw) -> Figure:
    top, bottom, left, right = margin
    # a white plot area: what the page shows is what an exported PNG/SVG shows, on any background
    return Figure(marks=list(marks), axes=list(axes), title=title, animation_duration=0, display_toolbar=False,
                  fig_margin=dict(top=top, bottom=bottom, left=left, right=right), padding_y=0.0,
                  title_style=_title_style(12), layout=Layout(width=width, height=height, margin="0",
                                                                   flex="none"),
                  background_style={"fill": "white"}, min_aspect_ratio=0.2, max_aspect_ratio=5, **kw)


def _title_style(px: float, scale: float = 1.0, **kw) -> dict:
    """A small figure's title, lifted clear of its plot (presentation.title_shift)."""
    return {"font-size": f"{px * scale:g}px", **lift(title_shift(px), scale), **kw}


class WeightMaps:
    """W, W.grad and b of a Plots: `shape`, `classes`, `compact` and `fixed_w_range` are the Plots' own."""

    def _heatmap(self, scheme, lo, hi, dtype, reverse=False) -> HeatMap:
        """One image-shaped heatmap with its own fixed scales. The maps carry int8 levels of ±m (see _levels), so
        every colour scale is fixed: only m changes, and all ten maps use the same m. Each map gets its own scale
        widgets with those same fixed limits: in the browser a shared scale makes every map that uses it redraw
        (cell by cell) when any one of them updates, which left JupyterLab 10-30 s behind during Play (measured);
        unshared, one update is one redraw."""
        h, w = self.shape
        px, py = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
        scales = {"x": LinearScale(min=-0.5, max=w - 0.5), "y": LinearScale(min=-0.5, max=h - 0.5, reverse=True),
                  "color": ColorScale(scheme=scheme, min=lo, max=hi, mid=0.0 if lo < 0 else None,
                                      reverse=reverse)}  # y reversed: row 0 on top, like the image
        return HeatMap(x=px, y=py, color=np.zeros((h, w), dtype), scales=scales)

    def _build_maps(self) -> None:
        """W and W.grad: one fixed, symmetric, diverging scale shared by all ten (0 is white)."""
        k = len(self.classes)
        self.w_maps = [self._heatmap("RdBu", -LEVELS, LEVELS, np.int8, reverse=True) for _ in range(k)]
        self.g_maps = [self._heatmap("PuOr", -LEVELS, LEVELS, np.int8) for _ in range(k)]
        self.w_scale, self.g_scale = self.w_maps[0].scales["color"], self.g_maps[0].scales["color"]
        self.reset_scales()
        self.w_figs = [_fig([m], name) for m, name in zip(self.w_maps, self.classes, strict=True)]
        self.g_figs = [_fig([m], name) for m, name in zip(self.g_maps, self.classes, strict=True)]
        self.w_note = HTML(layout=Layout(height="20px", overflow="hidden"))
        self.g_note = HTML(layout=Layout(height="22px", overflow="hidden"))

    def _build_bias(self) -> None:
        """b: horizontal bars, so every class name fits on its own line."""
        self.b_scale = LinearScale(min=-0.1, max=0.1)
        by = OrdinalScale(reverse=True)
        self.b_axis = Axis(scale=self.b_scale, tick_format="~g", tick_values=np.array([-0.1, -0.05, 0, 0.05, 0.1]),
                           label="b")
        self.bias_bars = Bars(x=self.classes, y=np.zeros(len(self.classes), np.float32),
                              scales={"x": by, "y": self.b_scale}, colors=["#6a51a3"], orientation="horizontal",
                              padding=0.25)
        self.bias_fig = _fig([self.bias_bars], "b (bias), one bar per class", "420px", "300px", (26, 40, 90, 16),
                             [Axis(scale=by, side="left"), self.b_axis])

    def _columns(self, t) -> np.ndarray:
        # W is stored column-major, so W.T is one contiguous (10, D) block; copy: numpy would share W's memory
        return t.detach().cpu().T.numpy().reshape((-1, *self.shape)).astype(np.float32, copy=True)

    @property
    def w_range(self) -> float:
        """The W colour scale runs from −w_range (blue) to +w_range (red)."""
        return self._m[id(self.w_scale)]

    def _weights(self, trainer) -> None:
        W = self._columns(shown(trainer)[0])
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
        b = shown(trainer)[2].cpu().numpy().astype(np.float32)
        top = nice_ceil(float(np.abs(b).max())) if np.isfinite(b).all() and b.any() else 0.1
        if top > self.b_scale.max or top < self.b_scale.max / 4:
            with self.b_scale.hold_sync():
                self.b_scale.min, self.b_scale.max = -top, top
            # five ticks at round values: never two the same label (".2f" printed 0.01, 0.01, 0.00, 0.00)
            self.b_axis.tick_values = np.array([-top, -top / 2, 0.0, top / 2, top])
        with self.bias_bars.hold_sync():
            self.bias_bars.y = b

    def _grad(self, trainer) -> None:
        g = shown(trainer)[1]
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
