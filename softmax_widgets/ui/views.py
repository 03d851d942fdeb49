"""The dashboard's row of tabs below the live plots: W.grad, the batch, the bias, the autograd graph, the
confusion matrix ↔ mistakes, kept runs side by side, export. Each pane is a module of panes/.

No pane is open at first: the dashboard at scale 1 (about 870 px) and the cell typed below it then fit one 720 px
screen with the plots. A click on a tab opens its pane; a second click on it, or "✕ close", closes it again. The
tabs are toggle buttons (a Tab's own bar cannot be clicked closed); the panes are a Tab whose bar the page CSS hides
(page.py), so a pane is shown and hidden as a tab's is: drawn once, kept, told when it is visible.

A tab's pane joins the page when the tab is first opened: a figure first drawn inside a hidden tab measures a
0-pixel box. The dashboard pushes a heatmap pane only while its tab is open. Nothing here runs per phase: one
Trainer listener wakes only on epoch, reset and undo events (a set lookup otherwise), and a refresh waits on the
dashboard's clock, so a fast Play on the 8x8 digits (an epoch every few ms) does not flood the browser.
"""

from __future__ import annotations

from ipywidgets import Box, Button, HBox, Layout, Tab, ToggleButton, VBox

from softmax_widgets.runs import RunStore
from softmax_widgets.throttle import Clock

from .controls import descendants
from .panes.compare import ComparePane
from .panes.evaluation import EvaluationPane
from .panes.export import ExportPane
from .presentation import Sizer

__all__ = ["TABS", "Views"]

WAKE = frozenset({"epoch", "reset", "undo"})  # events after which W differs from what the views show
# the row of tabs, in order; "graph" holds graph_panel.GraphPanel
TABS = ["W.grad", "batch", "bias", "graph", "evaluation", "compare runs", "export"]


class Views:
    """The row of tabs below the live plots of one Dashboard: its Trainer, its Plots (the W.grad, batch and bias
    panes, and the figures worth a file), its clock (refreshes wait on it) and its graph panel.

    `on_pane(name)` is called with the open tab's name (None: no pane open), so the dashboard pushes only what is on
    the page.
    """

    def __init__(self, trainer, plots, graph, clock: Clock | None = None, on_pane=None, min_interval: float = 1.0):
        self.trainer, self.graph, self.on_pane = trainer, graph, on_pane
        self.runs = RunStore()
        self.evaluation = EvaluationPane(trainer)
        self.compare = ComparePane(trainer, self.runs)
        figures = {"confusion matrix": self.evaluation.matrix_fig, "accuracy per class": self.evaluation.acc_fig,
                   "compared loss": self.compare.loss_fig, "compared test accuracy": self.compare.acc_fig}
        self.export = ExportPane(trainer, {**plots.figures(), **figures})
        self.panes = {**plots.panes, "graph": graph.widget, "evaluation": self.evaluation.widget,
                      "compare runs": self.compare.widget, "export": self.export.widget}
        self.names = list(TABS)
        self.widget = self._tabs()
        self._name_widgets()
        # the tabs' figures at the presentation scale (presentation.py): sizes, margins, fonts ×scale
        self.sizer = Sizer()
        for fig in figures.values():
            self.sizer.add(fig)
        self.sizer.on_scale(self._on_scale)
        self.clock = clock if clock is not None else Clock()
        self.refresher = self.clock.lane(self._refresh, min_interval)
        self.tab.observe(self._on_tab, "selected_index")
        self.runs.on_change(self.compare.refresh_runs)
        trainer.on_change(self._on_change)
        self.refresh()
        self._on_tab({"old": None, "new": self.tab.selected_index})  # and the graph panel hears it is hidden

    def _tabs(self) -> VBox:
        """The row of tabs, then the panes: one empty box per tab, none open; a pane moves into its box when its
        tab first opens (see _on_tab)."""
        self.buttons = {name: ToggleButton(value=False, description=name, tooltip=f"show or hide the {name} pane",
                                           layout=Layout(width="auto", flex="none", margin="0 2px 0 0"))
                        for name in self.names}
        self.close_button = Button(description="✕ close", tooltip="hide the open pane",
                                   layout=Layout(width="auto", flex="none", display="none"))
        for name, button in self.buttons.items():
            button.add_class("sw-tab")
            button.observe(lambda change, name=name: self._on_button(name, change["new"]), "value")
        self.close_button.add_class("sw-tab-close")
        self.close_button.on_click(lambda _: self.select(None))
        self._syncing = False
        self.boxes = [Box() for _ in self.names]
        self.tab = Tab(children=self.boxes, titles=self.names, layout=Layout(display="none"))
        self.tab.selected_index = None  # after the children: setting them opens the first tab
        self.tab.add_class("sw-panes")
        bar = HBox([*self.buttons.values(), self.close_button], layout=Layout(flex_flow="row wrap"))
        bar.add_class("sw-tabs")
        widget = VBox([bar, self.tab])
        widget.add_class("sw-views")
        return widget

    def _name_widgets(self) -> None:
        """Stable names for CSS and the browser tests."""
        for widget, name in ((self.evaluation.matrix_fig, "sw-confusion"), (self.evaluation.title, "sw-cell-title"),
                             (self.evaluation.tiles_box, "sw-cell-images"), (self.compare.loss_fig, "sw-compare-loss"),
                             (self.compare.legend, "sw-compare-legend"), (self.export.status, "sw-export-status")):
            widget.add_class(name)

    @property
    def min_interval(self) -> float:
        """Seconds between refreshes caused by training (clicks: always)."""
        return self.refresher.interval

    @min_interval.setter
    def min_interval(self, seconds: float) -> None:
        self.refresher.interval = seconds

    @property
    def shown(self) -> str | None:
        """The open tab's name (None when none is)."""
        i = self.tab.selected_index
        return None if i is None else self.names[i]

    def select(self, name: str | None) -> None:
        """Open a tab by its name (as a click on it does); None closes the open pane."""
        if name is not None:
            self.tab.layout.display = None  # visible before its pane is shown: bqplot measures it then
        self.tab.selected_index = None if name is None else self.names.index(name)

    def _on_button(self, name: str, on: bool) -> None:
        """A click on a tab: open its pane, or close it when it is the open one."""
        if not self._syncing:
            self.select(name if on else None if self.shown == name else self.shown)

    def set_scale(self, scale: float) -> None:
        """The tabs' figures at `scale` (the dashboard's zoom enlarges the rest)."""
        self.sizer.apply(scale)

    def _on_scale(self, scale: float, compact: bool) -> None:
        # what is not a figure's box: the numbers in the confusion cells, the rows' axis label beside the names
        self.evaluation.matrix.font_style = {"font-size": self.sizer.px(10)}
        self.evaluation.matrix_fig.axes[1].label_offset = self.sizer.px(62)

    def refresh(self) -> None:
        """Everything that follows W, now: the confusion matrix, the bars, the live curves."""
        self.refresher.run()

    def _refresh(self) -> None:
        self.evaluation.refresh()
        self.compare.refresh_live()

    def _on_change(self, trainer, event) -> None:
        if event.kind not in WAKE:  # every phase passes here: one set lookup, nothing else
            if event.kind == "settings":  # a slider moved: the live run's label and the default label follow
                self.compare.refresh_live()
            return
        self.refresher()

    def _on_tab(self, change) -> None:
        new = change["new"]
        name = None if new is None else self.names[new]
        self._syncing = True  # the tabs' buttons follow: the open one pressed, the others not
        try:
            for other, button in self.buttons.items():
                button.value = other == name
        finally:
            self._syncing = False
        self.close_button.layout.display = None if name is not None else "none"
        if name is None:
            self.tab.layout.display = "none"  # an empty Tab still draws its frame and padding
        if name is not None:
            # mounted the first time its tab opens, then kept: drawn while visible (a bqplot figure first drawn
            # hidden measures 0 px), and never rebuilt (bqplot leaks ~1 MB of page per figure view removed)
            if not self.boxes[new].children:
                self.boxes[new].children = (self.panes[name],)
            if name == "compare runs":  # the live curves as they are now, not as at the last epoch
                self.compare.refresh_live()
                self.compare.show_figures()
        self.graph.set_visible(name == "graph")
        if self.on_pane is not None:
            self.on_pane(name)

    def flush(self) -> None:
        """Refresh now if an event was held back by the interval (the end of Play, tests)."""
        self.refresher.flush()

    def close(self) -> None:
        self.trainer.on_change(self._on_change, remove=True)
        self.runs.on_change(self.compare.refresh_runs, remove=True)
        self.clock.drop(self.refresher)
        self.graph.close()
        lines = [m for pair in self.compare.lines.values() for m in pair]
        seen: set = set()  # a pane is in self.widget only while its tab is open
        for w in [*descendants(self.widget, seen), *(w for p in self.panes.values() for w in descendants(p, seen)),
                  *descendants(self.compare.loss_fig, seen), *descendants(self.compare.acc_fig, seen), *lines]:
            w.close()
