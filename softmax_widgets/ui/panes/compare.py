"""The compare runs tab: kept runs' loss (running mean) and test accuracy overlaid with the live run's."""

from __future__ import annotations

import html

import numpy as np
from bqplot import Axis, LinearScale, Lines
from ipywidgets import HTML, Button, HBox, Layout, SelectMultiple, Text, VBox

from softmax_widgets.runs import RunStore, short_name
from softmax_widgets.ui.curves import SMOOTH, iteration_ticks, kept_curve, run_colour, set_ticks

from .base import bad, fig, ok

__all__ = ["COMPARE_PX", "LIVE", "MAX_RUN_POINTS", "ComparePane"]

MAX_RUN_POINTS = 500  # points per compared curve
FITS_IN_LIST = 72  # characters of a kept run's description the 600 px list shows whole (13 px font)
COMPARE_PX = 460 - 60 - 10  # a compare figure's plotting width (its width less the left and right margins)
LIVE = "#000000"


class ComparePane:
    """Kept runs' loss (running mean) and test accuracy overlaid with the live run's."""

    def __init__(self, trainer, runs: RunStore):
        self.trainer, self.runs = trainer, runs
        xs, ys = LinearScale(), LinearScale(min=0.0)
        xa, ya = LinearScale(), LinearScale(min=0.0, max=1.0)
        self._scales = {"loss": {"x": xs, "y": ys}, "acc": {"x": xa, "y": ya}}
        self.lines: dict[object, tuple[Lines, Lines]] = {}  # run id (or "live") -> (loss, test accuracy)
        # both x axes run from 0 to the longest run, with whole-number ticks that fit (one epoch's single test
        # point made bqplot print "235" 17 times over a zero-width domain)
        self.x_axes = [Axis(scale=xs, label="iteration", tick_format="d"),
                       Axis(scale=xa, label="iteration", tick_format="d")]
        self.loss_fig = fig([], [self.x_axes[0], Axis(scale=ys, side="left", label="loss", tick_format=".2f")],
                             f"loss (mean of ~{SMOOTH} iterations)")
        self.acc_fig = fig([], [self.x_axes[1], Axis(scale=ya, side="left", label="test accuracy",
                                                      tick_format=".0%")],
                            "test accuracy (per epoch)")
        self.label = Text(placeholder=self.default_label(), description="label",
                          layout=Layout(width="260px"))
        self.keep = Button(description="keep this run", button_style="info",
                           tooltip="freeze this run's curves and settings to compare with the next one")
        self.kept = SelectMultiple(options=[], rows=4, description="kept", layout=Layout(width="600px"))
        # a list box cuts an entry longer than itself: such runs are written out in full below it, wrapping (and
        # every run is in the list's tooltip)
        self.kept_text = HTML(layout=Layout(max_width="900px"))
        self.remove = Button(description="remove selected")
        self.status = HTML("<small>Typical use: train at lr 0.1, keep; reset with lr 0.01, train, keep; "
                           "compare.</small>")
        self.keep.on_click(lambda _: self.keep_run())
        self.remove.on_click(lambda _: self.remove_selected())
        # the figures join the page when the tab is first opened (show_figures): bqplot drawn inside a hidden
        # tab measures a 0-pixel box and fills the browser console with negative-size SVG errors
        self.figures = HBox()
        # one legend above both figures, in HTML: bqplot's in-plot legend box is ~2x wider than its text and
        # covered the curves and the y axis whatever corner it was given
        self.legend = HTML()
        self.widget = VBox([HBox([self.label, self.keep]), HBox([self.kept, self.remove]), self.kept_text,
                            self.status, self.legend, self.figures])
        self.refresh_live()

    def show_figures(self) -> None:
        if not self.figures.children:
            self.figures.children = [self.loss_fig, self.acc_fig]

    def default_label(self, trainer=None) -> str:
        """lr and batch size, after the model where it is not the lesson's ("Sequential module, lr 0.1, ...")."""
        t = self.trainer if trainer is None else trainer
        model = short_name(t)
        return f"{model + ', ' if model else ''}lr {t.lr:g}, batch {t.batch_size}"

    def keep_run(self, trainer=None, label: str | None = None):
        """Keep the dashboard's run (the button), or another Trainer's: `keep_run(scratch, "from scratch")` sets a
        from-scratch run beside this dashboard's concise one."""
        other = trainer is not None and trainer is not self.trainer
        t = self.trainer if trainer is None else trainer
        if t.iteration == 0:
            self.status.value = bad("nothing to keep yet: this run has no iteration. Train first (Step, Run "
                                     "epoch or Play), then keep it.")
            return None
        typed = "" if other else self.label.value.strip()
        run = self.runs.add(t, label=label or typed or self.default_label(t))
        if not other:
            self.label.value = ""
        self.status.value = ok(f"kept {run}")
        self.refresh_live()  # the live run drawn up to now, beside its kept copy
        return run

    def remove_selected(self) -> None:
        chosen = list(self.kept.value)
        if not chosen:
            self.status.value = bad("select a kept run in the list first, then press remove")
            return
        for run_id in chosen:
            self.runs.remove(run_id)
        self.status.value = ok(f"removed {len(chosen)} run{'s' * (len(chosen) != 1)}")

    def _curves(self, history) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        x, mean = kept_curve(history.loss, MAX_RUN_POINTS)
        return (x, mean,
                np.asarray(history.epoch_iteration, np.float32), np.asarray(history.test_acc, np.float32))

    def _set(self, key, label: str, color: str, history, dashed: bool = False) -> None:
        if key not in self.lines:
            style = {"line_style": "dashed"} if dashed else {}
            self.lines[key] = (Lines(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32), colors=[color],
                                     scales=self._scales["loss"], **style),
                               Lines(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32), colors=[color],
                                     scales=self._scales["acc"], marker="circle",
                                     marker_size=30, **style))
        x, y, ex, ey = self._curves(history)
        for line, (lx, ly) in zip(self.lines[key], ((x, y), (ex, ey)), strict=True):
            with line.hold_sync():
                line.x, line.y, line.labels = lx, ly, [label]

    def refresh_runs(self, store: RunStore | None = None) -> None:
        """Kept runs changed: one pair of lines each (frozen curves: computed once), the list, the legends."""
        ids = {r.id for r in self.runs}
        for key in [k for k in self.lines if k != "live" and k not in ids]:
            for line in self.lines.pop(key):
                line.close()
        for i, run in enumerate(self.runs):
            if run.id not in self.lines:
                self._set(run.id, run.label, run_colour(i), run.history)
        self.kept.options = [(str(r), r.id) for r in self.runs]
        full = [str(r) for r in self.runs]
        self.kept.tooltip = "\n".join(full) or None
        long = [text for text in full if len(text) > FITS_IN_LIST]
        self.kept_text.value = "".join(f"<div style='font-size:12px;line-height:16px;white-space:normal;"
                                       f"overflow-wrap:anywhere'>in full: {html.escape(text)}</div>"
                                       for text in long)
        self._mount()

    def refresh_live(self) -> None:
        self._set("live", f"live: {self.default_label()}", LIVE, self.trainer.history, dashed=True)
        self.label.placeholder = self.default_label()
        self._mount()

    def _mount(self) -> None:
        order = [k for k in self.lines if k != "live"] + ["live"]
        loss, acc = [self.lines[k][0] for k in order], [self.lines[k][1] for k in order]
        if list(self.loss_fig.marks) != loss:
            self.loss_fig.marks, self.acc_fig.marks = loss, acc
        items = []
        for line in loss:
            border = f"3px {line.line_style if line.line_style == 'dashed' else 'solid'} {line.colors[0]}"
            items.append(f"<span style='margin-right:18px;white-space:nowrap'><span style='display:inline-block;"
                         f"width:26px;vertical-align:middle;border-top:{border}'></span> "
                         f"{html.escape(line.labels[0])}</span>")
        self.legend.value = f"<div style='font-size:12px'>{''.join(items)}</div>"
        self._x_range()

    def _x_range(self) -> None:
        """Both figures from iteration 0 to the longest run drawn (at least 10), ticks chosen to fit."""
        hi = max([10.0] + [float(m.x[-1]) for pair in self.lines.values() for m in pair if len(m.x)])
        for axis in self.x_axes:
            if axis.scale.min != 0.0 or axis.scale.max != hi:
                with axis.scale.hold_sync():
                    axis.scale.min, axis.scale.max = 0.0, hi
            set_ticks(axis, iteration_ticks(hi, COMPARE_PX))

    def labels(self) -> list[str]:
        """The legend, in drawing order (kept runs, then the live one)."""
        return [m.labels[0] for m in self.loss_fig.marks]
