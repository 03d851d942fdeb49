"""The presentation scale: every text and plot of a dashboard ×s for the back row of a classroom.

How it works: CSS `zoom` on the dashboard enlarges every text, button, slider, status line and HTML picture
together. bqplot cannot be zoomed that way: it sizes its SVG from getBoundingClientRect(), which inside a zoomed
element reports the zoomed size, so each of its redraws (a tab opened, a resize) would draw the figure s× too
large and clip it. Each figure is therefore zoomed back to 1 and given s× its size, margins and fonts from Python
(`Sizer`); to the eye the result is the same zoom.

At 1.5 the normal layout does not fit a 1280×720 projector in JupyterLab (file browser collapsed: about
1100 × 600 px for the output); above COMPACT_ABOVE the controls and the one-screen plots take a tighter layout
(`compact`) so that buttons, Play, lr and speed, the status, the loss curve and the ten W maps stay on one screen.

The notebook's own cells (the code being typed, a check_* printout, the markdown) can follow the scale too
(`Dashboard(scale_notebook=True)`, `cells_css`): their font sizes ×s, through JupyterLab's own font variables, in
the notebook that holds the dashboard only. Normal size (A+ released, or the dashboard gone) puts them back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["CELLS_CLASS", "COMPACT_ABOVE", "FITS_720", "MAX_SCALE", "MIN_SCALE", "PRESENTATION", "Sizer", "Zoom",
           "cells_css", "check_scale", "check_scale_notebook", "is_compact", "lift", "scale_class", "scale_css",
           "title_shift"]

MIN_SCALE, MAX_SCALE = 1.0, 2.0
PRESENTATION = 1.5  # what the A+ toggle turns on when the dashboard was made at scale 1: one screen at 1280×720
FITS_720 = 1.5  # the largest scale whose compact layout fits one 1280×720 screen in JupyterLab
COMPACT_ABOVE = 1.25  # up to 1.25 the normal layout still fits 1280×720 with the file browser collapsed
TICK_PX, AXIS_LABEL_PX = 12, 14  # bqplot's own fonts (--bq-font, --bq-axislabel-font)
CELLS_CLASS = "sw-scale-cells"  # a dashboard that enlarges its notebook's cells with it carries this class
# JupyterLab's font variables that its cells read: the code editor, prompts and text outputs (check_* printouts) the
# first, markdown and HTML outputs the second; the prompt column widens with its text
CELL_VARIABLES = ("--jp-code-font-size", "--jp-content-font-size1", "--jp-cell-prompt-width")


def check_scale(scale, name: str = "scale", example: str = f"Dashboard(trainer, scale={PRESENTATION:g})") -> float:
    """The scale as a float, or a ValueError that says what to pass, in the words of where it was passed
    (`name`, and an `example` of a good call: `dash.scale = 1.5`, `--scale 1.5`)."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) \
            or not MIN_SCALE <= scale <= MAX_SCALE:
        raise ValueError(f"{name} must be a number from {MIN_SCALE:g} (normal size) to {MAX_SCALE:g}; got "
                         f"{scale!r}. {example} enlarges every text and plot for a 1280×720 projector and keeps "
                         "the dashboard on one screen there.")
    return float(scale)


def check_scale_notebook(value, name: str = "scale_notebook") -> bool:
    """True or False, or a ValueError that says what to pass (a string "no" must not read as True)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}. {name}=True makes A+ enlarge the notebook's "
                         "own cells too (the code being typed, check_* printouts); False leaves them as they are.")
    return value


def is_compact(scale: float) -> bool:
    return scale > COMPACT_ABOVE


def scale_class(scale: float) -> str:
    """The CSS class a dashboard at this scale carries: sw-scale-150 for 1.5."""
    return f"sw-scale-{round(scale * 100)}"


def scale_css(scale: float) -> str:
    """The page CSS for one scale (empty at 1): the zoom, bqplot zoomed back, bqplot's own fonts ×scale."""
    if scale == 1:
        return ""
    c = f".sw-dashboard.{scale_class(scale)}"
    return (f"<style>{c} {{zoom: {scale:g}}} "
            # --bq-axis-tick-text-font is var(--bq-font) resolved at :root: both are set here
            f"{c} .bqplot {{zoom: {1 / scale:.6f}; --bq-font: {TICK_PX * scale:g}px sans-serif; "
            f"--bq-axis-tick-text-font: {TICK_PX * scale:g}px sans-serif; "
            f"--bq-axislabel-font: {AXIS_LABEL_PX * scale:g}px sans-serif}}</style>")


def cells_css(scale: float) -> str:
    """The page CSS that enlarges the cells of the notebook holding a dashboard of this scale that carries
    CELLS_CLASS (empty at 1). Each variable is ×scale of its value at the page's root (the theme's or the user's own
    font size), set on every cell but the dashboard's own (a wider prompt there would narrow the dashboard)."""
    if scale == 1:
        return ""
    cells = f".jp-Notebook:has(.sw-dashboard.{scale_class(scale)}.{CELLS_CLASS}) .jp-Cell:not(:has(.sw-dashboard))"
    root = " ".join(f"--sw-root{v[4:]}: var({v});" for v in CELL_VARIABLES)
    scaled = " ".join(f"{v}: calc(var(--sw-root{v[4:]}) * {scale:g});" for v in CELL_VARIABLES)
    return f"<style>:root {{{root}}} {cells} {{{scaled}}}</style>"


class Zoom:
    """One dashboard's scale: its class and the page CSS, the compact layout of its `controls`, the size of its
    `parts` (plots and panes: each has set_scale), the A+ toggle (moved `quiet`ly). `presentation` is what A+ turns
    on; `notebook`: the notebook's cells follow the scale too."""

    def __init__(self, box, controls, parts, quiet, scale: float, notebook: bool):
        self.box, self.controls, self.parts, self.quiet = box, controls, parts, quiet
        self.scale, self.presentation, self.notebook = 1.0, scale if scale > 1 else PRESENTATION, notebook
        self.apply(scale)

    def set(self, value) -> float:
        """`dash.scale = value`: checked, then applied; a scale above 1 is what A+ turns on from now."""
        value = check_scale(value, "dash.scale", f"dash.scale = {PRESENTATION:g}")
        if value > 1:
            self.presentation = value
        self.apply(value)
        return value

    def apply(self, scale: float) -> None:
        """Zoom the dashboard (the page CSS and a class), and size its figures and rows for it."""
        box = self.box
        if self.scale != 1:
            box.remove_class(scale_class(self.scale))
        self.controls.set_page_css(scale_css(scale) + (cells_css(scale) if self.notebook else ""))
        if scale != 1:
            box.add_class(scale_class(scale))
        if self.notebook and CELLS_CLASS not in box._dom_classes:
            box.add_class(CELLS_CLASS)
        elif not self.notebook and CELLS_CLASS in box._dom_classes:
            box.remove_class(CELLS_CLASS)
        self.controls.set_compact(is_compact(scale))
        for part in self.parts:
            part.set_scale(scale)
        self.scale = scale
        with self.quiet():
            self.controls.show_scale(scale > 1, self.presentation)


def title_shift(px: float) -> float:
    """How far (px at scale 1, negative: up) a small figure's title of `px` is lifted clear of its plot: bqplot puts
    the baseline one font size below the middle of the top margin (dy 1em), inside the image of an 18 px margin;
    -5 px puts a 12 px title 2 px above."""
    return -(px - 7)


def lift(shift: float, scale: float = 1.0) -> dict:
    """The title style that moves a title by `shift` px (at scale 1) at `scale`."""
    return {"transform": f"translateY({shift * scale:g}px)"}


def _px(value: str | None) -> float | None:
    return float(value[:-2]) if isinstance(value, str) and value.endswith("px") else None


@dataclass
class _Figure:
    fig: object
    size: tuple[str, str]  # the layout's width and height at scale 1 ("330px", or "100%" left alone)
    margin: dict
    title_px: float | None
    title_shift: float | None
    compact: tuple[float | None, float] | None = None  # (width, height) in px at scale 1 in the compact layout


@dataclass
class Sizer:
    """The bqplot figures of a dashboard, with their sizes at scale 1; apply() sets them for a scale."""

    figures: list[_Figure] = field(default_factory=list)
    hooks: list = field(default_factory=list)  # callables(scale, compact) for what is not a figure's box
    scale: float = 1.0

    def add(self, fig, compact: tuple[float, float] | None = None, shift: float | None = None):
        """Remember `fig` as it is now (scale 1); `compact`: its (width, height) in the compact layout; `shift`:
        its title's lift at scale 1 (title_shift), if it has one."""
        title = _px((fig.title_style or {}).get("font-size"))
        self.figures.append(_Figure(fig, (fig.layout.width, fig.layout.height), dict(fig.fig_margin), title, shift,
                                    compact))
        return fig

    def on_scale(self, hook) -> None:
        self.hooks.append(hook)

    def px(self, base: float) -> str:
        """A length in px at the current scale, for a figure's own style (a title set later, a label offset)."""
        return f"{base * self.scale:g}px"

    def apply(self, scale: float) -> None:
        self.scale = scale
        compact = is_compact(scale)
        for f in self.figures:
            w, h = f.size
            if compact and f.compact:  # a width of None: the figure's own (a column's "100%")
                w, h = (own if c is None else f"{c:g}px" for c, own in zip(f.compact, f.size, strict=True))
            with f.fig.hold_sync():
                if _px(w) is not None:
                    f.fig.layout.width = self.px(_px(w))
                if _px(h) is not None:
                    f.fig.layout.height = self.px(_px(h))
                f.fig.fig_margin = {k: v * scale for k, v in f.margin.items()}
                if f.title_px:
                    style = {**f.fig.title_style, "font-size": self.px(f.title_px)}
                    if f.title_shift is not None:  # a title lifted clear of its plot (title_shift)
                        style.update(lift(f.title_shift, scale))
                    f.fig.title_style = style
        for hook in self.hooks:
            hook(scale, compact)
