"""Dashboard: wires a Trainer to the controls, the plots and the tabs below; clicks become Trainer calls.

Play lives in player.py, the push timing in ../throttle.py, what the status line says in status.py, the keys in
keys.py (their table in controls.py), the ways out of a divergence in ways.py, the settings widgets in settings.py,
the presentation scale in presentation.py.
"""

from __future__ import annotations

import html
import logging
import random

from ipywidgets import Button, Layout, VBox

from softmax_widgets.data import load_or_offline
from softmax_widgets.phases import Phase
from softmax_widgets.throttle import ALL, BATCH, CONTROLS, CURVES, DIRTY, GRAD, PARTS, PushClock
from softmax_widgets.trainer import Trainer

from . import rerun, ways
from .controls import KEYS, Controls, descendants
from .graph_panel import GraphPanel, MathLine
from .keys import Keys
from .messages import say
from .player import Player, current_loop
from .plots import Plots
from .presentation import PRESENTATION, Zoom, check_scale, check_scale_notebook
from .settings import Quiet, Settings
from .status import OFF_PAGE, Status, kept, opening, paused, scaled
from .views import Views
from .ways import WAY_BUTTONS

__all__ = ["KEYS", "Dashboard"]

log = logging.getLogger(__name__)
PANE_PARTS = {"W.grad": GRAD, "batch": BATCH}  # heatmaps that live behind a tab: pushed only while it is open
HIDDEN = GRAD | BATCH
# the tab a click on each phase opens, while one of these two is open: where that phase's change shows
FOLLOW = {Phase.NEXT_BATCH: "batch", Phase.FORWARD: "batch", Phase.ZERO_GRAD: "W.grad", Phase.BACKWARD: "W.grad"}


class Dashboard(VBox):
    """Buttons for each phase, Play/Pause and live plots of one Trainer; display it as a cell's value."""

    def __init__(self, trainer: Trainer, *, fps: float = 10.0, heavy_fps: float = 0.5,
                 w_range: float | None = None, note: str = "", scale: float | None = None,
                 scale_notebook: bool = False, **kwargs):
        # a wrong scale is refused before anything is built; none given: the size of the dashboard this one
        # replaces (a re-run during a lecture kept A+ on)
        scale = check_scale(rerun.scale_of_previous() if scale is None else scale)
        scale_notebook = check_scale_notebook(scale_notebook)
        self.trainer = trainer
        self.previous: Trainer | None = None  # the run a re-run of this cell replaced (rerun.py)
        # pushes by time, never per step: ≤ fps for curves and text, ≤ heavy_fps for the heatmaps. Measured in
        # JupyterLab on the busy 2-core box (bqplot redraws a HeatMap cell by cell): W alone at 0.5 Hz during
        # full-speed Play, Pause lands in 0.2 s; all 28 maps at 1 Hz, 0.4 s and the counter settles after 1.3 s.
        # One clock on the kernel's loop for every throttled push: code's flush, the tabs, the graph, the math line
        self.clock = PushClock(fps, heavy_fps, current_loop())
        self.player = Player(self)
        self.status_line = Status(lambda: opening(self.trainer))  # what the status says, and which message wins
        self._pause_asked = False  # Pause was pressed and Play's task has not stopped yet
        self.quiet = Quiet()  # `with self.quiet():` moves widgets without their observers acting on it
        self._hidden = HIDDEN  # heatmap parts whose tab is closed: they stay dirty until it opens
        self._code_flush = self.clock.lane(self._flush, 1 / fps)
        self.controls = Controls(trainer.lr, trainer.batch_size, trainer.seed)
        self.plots = Plots(trainer.data, w_range=w_range)
        self.buttons = self.controls.buttons
        if note:
            # one line above the buttons; the whole story (the folder looked in, root=) is its tooltip
            details = html.escape(str(getattr(note, "details", note)), quote=True)
            self.controls.note.value = (f"<div style='color:#b35900;white-space:nowrap;overflow:hidden;"
                                        f"text-overflow:ellipsis' title='{details}'>{html.escape(str(note))}</div>")
            self.controls.note.layout.display = None
        # the status and the plots (a stable name for CSS and the browser tests)
        self.keys_area = VBox([self.controls.readout, self.plots.widget])
        self.keys_area.add_class("sw-keys")
        # the row of tabs (W.grad, batch, bias, graph, evaluation, compare, export); outside the keys area: its
        # text boxes need the keys
        self._make_graph()
        self.views = Views(trainer, self.plots, self.graph, clock=self.clock, on_pane=self._on_pane)
        # keep this run, beside the live plots: its loss stays on the loss figure, dashed
        self.keep = Button(description="keep run", button_style="info", layout=Layout(width="auto"),
                           tooltip="freeze this run's curves (the compare runs tab shows test accuracy too)")
        self.plots.keep_slot.children = [self.keep]
        self.views.runs.on_change(self._on_runs)
        super().__init__(children=[self.controls.widget, self.keys_area, self.views.widget, self.controls.help],
                         **kwargs)
        self.add_class("sw-dashboard")
        self._wire()
        trainer.on_change(self._on_change)
        # the front end counts this widget's views (ipywidgets' _view_count: Lab, Notebook 7, Voila): when the
        # last one goes (output cleared, cell re-run) a Play nobody can see, or pause, stops by itself
        self._view_count = 0
        self.observe(self._on_views, "_view_count")
        # the presentation scale: every text and plot ×scale (presentation.py); A+ toggles it and back, and with
        # scale_notebook the notebook's own cells (the code being typed, check_* printouts) follow it
        self.zoom = Zoom(self, self.controls, (self.plots, self.views), self.quiet, scale, scale_notebook)
        self.status_line.notice(rerun.take_over(self))
        self.push()

    @classmethod
    def from_dataset(cls, name: str = "fashion-mnist", root=None, download: bool = True, scale: float | None = None,
                     scale_notebook: bool = False, **trainer_kwargs):
        """A Dashboard on a fresh Trainer; offline without the files it trains on the bundled Fashion-MNIST subset
        (the same lesson, 6,000 images) and says so at the top. `scale`: the presentation scale."""
        if scale is not None:  # first: a wrong scale is refused before the data is read
            scale = check_scale(scale, example=f'Dashboard.from_dataset("{name}", scale={PRESENTATION:g})')
        check_scale_notebook(scale_notebook)
        data, note = load_or_offline(name, root=root, download=download)
        return cls(Trainer(data, **trainer_kwargs), note=note, scale=scale, scale_notebook=scale_notebook)

    # ---- public API ----
    @property
    def status(self) -> str:
        """The status line's text (what the student reads)."""
        return self.controls.status_text

    @property
    def scale(self) -> float:
        """The presentation scale: 1 is the normal size, 1.5 every text and plot ×1.5 for a projector."""
        return self.zoom.scale

    @scale.setter
    def scale(self, value: float) -> None:
        value = self.zoom.set(value)
        self.status_line.notice(scaled(value, self.zoom.presentation, self.zoom.notebook))
        self.clock.dirty |= ALL  # the W note's wording follows the layout
        self.push()  # the status, and the W note whose wording follows the layout

    @property
    def scale_notebook(self) -> bool:
        """Whether the presentation scale enlarges the notebook's own cells too (code, outputs, markdown), not the
        dashboard only. Set it at any time: `dash.scale_notebook = True`; A+ then scales both, and back."""
        return self.zoom.notebook

    @scale_notebook.setter
    def scale_notebook(self, value: bool) -> None:
        self.zoom.notebook = check_scale_notebook(value, "dash.scale_notebook")
        self.zoom.apply(self.zoom.scale)
        self.clock.dirty |= ALL

    def say(self, text: str) -> None:
        """A line of your own on the status (an instructor's "now watch the loss"), until the next event."""
        self.status_line.notice(" ".join(str(text).split()))
        self.push(CONTROLS)

    @property
    def is_playing(self) -> bool:
        return self.player.playing

    @property
    def last_step_time(self) -> float:
        return self.player.last_step_time

    @property
    def pause_time(self) -> float:
        return self.player.pause_time

    def play(self, until_epoch_end: bool = False) -> None:
        """Start Play on the kernel's loop; returns at once (Pause is another click away)."""
        why = self.player.play(until_epoch_end)
        if why:
            self.status_line.error(why)
            self.push()
        elif self.player.playing:
            self.status_line.error("")

    def pause(self) -> None:
        """Stop Play after the step in progress; it only clears a flag, so it is honoured at once."""
        self.player.pause()
        self.controls.set_playing(False)

    def toggle_play(self) -> None:
        """The Play button and Space: Play, or Pause and say where the run stopped."""
        if not self.player.playing:
            self.play()
            return
        self.pause()
        self._pause_asked = True  # said again when Play's task has stopped (see play_stopped)
        self.status_line.notice(paused(self.trainer))
        self.push(CONTROLS)

    def run_for(self, iterations: int) -> int:
        """Play's work without an event loop (scripts, tests): `iterations` whole iterations, pushed by time."""
        self.status_line.error("")
        return self.player.run_for(iterations)

    def handle_key(self, key: str) -> bool:
        """One key press (KeyboardEvent.key, as the page sends it after a click on the dashboard): → or s step,
        Space play/pause, u undo, r reset with the same seed. False for a key that does nothing (the keys line says
        which keys do)."""
        return self.keyboard.press(key)

    def push(self, parts: int | None = None) -> None:
        """Send what changed to the browser now (clicks and the end of Play; Play itself goes by time)."""
        parts = self.clock.take(parts)
        hidden = parts & self._hidden
        if hidden:  # its tab is closed: sent when it opens
            self.clock.dirty |= hidden
            parts &= ~hidden
        self.clock.sent(parts, self.trainer.iteration)
        try:
            # the curves first: they are a few hundred floats, and after an sgd click the new loss point is what the
            # student looks for (it waited behind the controls' messages: median 110 ms against 20 for the rest)
            if parts & CURVES:
                self.plots.update(self.trainer, ["curves"])
            if parts & CONTROLS:
                self._update_controls()
            self.plots.update(self.trainer, [name for bit, name in PARTS.items() if parts & bit and bit != CURVES])
        except Exception:  # a drawing bug must not become a traceback under the student's click
            log.exception("dashboard update failed")

    def close(self) -> None:
        """Stop Play, unsubscribe from the Trainer and close every widget this dashboard made."""
        rerun.forget(self)
        player = getattr(self, "player", None)
        if player is not None:
            player.playing = False
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            trainer.on_change(self._on_change, remove=True)
        if getattr(self, "math", None) is not None:
            self.math.close()
        views = getattr(self, "views", None)
        if views is not None:
            views.runs.on_change(self._on_runs, remove=True)
            for line in self.plots.run_lines.values():  # kept runs' lines (the figure's marks change)
                line.close()
        if views is not None:  # its Trainer and RunStore listeners, the panes of closed tabs, removed runs
            views.close()
        if getattr(self, "comm", None) is not None:
            # children, marks, scales, axes and every Layout, this VBox's own included (one comm each)
            for w in list(descendants(self))[1:]:
                w.close()
        super().close()

    # ---- Play's host (player.Player calls these) ----
    def play_rate(self) -> float | None:
        return self.controls.rate

    def play_started(self) -> None:
        self.controls.set_playing(True)

    def play_pushed(self, phase_mode: bool, full_speed: bool) -> None:
        parts = self.clock.due(self.trainer.iteration, phase_mode, full_speed)
        if parts:
            self.push(parts)

    def play_stopped(self) -> None:
        self.controls.set_playing(False)
        if self._pause_asked:  # the step in progress when Pause landed has finished since: its event replaced the
            self._pause_asked = False  # notice (at max speed, 4 pauses in 5), and the iteration may have moved
            if not self.status_line.has_error and not self.status_line.diverged:
                self.status_line.notice(paused(self.trainer))
        self.push()

    def play_error(self, err) -> None:
        self.status_line.error(err)
        self.clock.dirty |= CONTROLS  # Play may have pushed everything just before: the stop reason must go

    # ---- wiring ----
    def _make_graph(self) -> None:
        """The autograd graph tab and the formula line (drawn on the dashboard's own push: its own timer showed
        sgd's code beside forward's math during Play)."""
        self.graph = GraphPanel(self.trainer, clock=self.clock)
        self.math = MathLine(self.trainer, follow=False, clock=self.clock)
        self.controls.math.children = [self.math.widget]

    def _wire(self) -> None:
        c = self.controls
        for p in Phase:
            c.buttons[p.value].on_click(lambda _, p=p: self._act(getattr(self.trainer, p.value)))
        c.buttons["step"].on_click(lambda _: self._act(self.trainer.step))
        c.buttons["iteration"].on_click(lambda _: self._act(self.trainer.train_step))
        c.buttons["epoch"].on_click(lambda _: self._guard(lambda: self.play(until_epoch_end=True)))
        c.buttons["play"].on_click(lambda _: self._guard(self.toggle_play))
        c.buttons["reset"].on_click(lambda _: self._act(lambda: self._reset(c.seed.value)))
        c.buttons["new_seed"].on_click(lambda _: self._act(lambda: self._reset(random.randrange(2**31))))
        c.buttons["undo"].on_click(lambda _: self._act(self.trainer.undo))
        for code, name in WAY_BUTTONS.items():
            c.buttons[name].on_click(lambda _, code=code: self._act(lambda: self._take_way(code)))
        self.keep.on_click(lambda _: self._guard(self._keep_run))
        c.details.observe(lambda ch: self.quiet or self.push(CONTROLS), "value")
        c.scale.observe(lambda ch: self._toggle_scale(ch["new"]), "value")
        t = self.trainer
        self.keyboard = Keys({"step": lambda: self._act(t.step), "play": lambda: self._guard(self.toggle_play),
                              "undo": lambda: self._act(t.undo),
                              "reset": lambda: self._act(lambda: self._reset(t.seed))},
                             self.status_line, self._show_status)
        c.keys.on_msg(lambda _, content, buffers: self.keyboard.message(content))
        self.settings = Settings(self.trainer, c, self.status_line, self.quiet, lambda: self.push(CONTROLS))
        c.set_playing(False)

    def _toggle_scale(self, on: bool) -> None:
        if not self.quiet:
            self._guard(lambda: setattr(self, "scale", self.zoom.presentation if on else 1.0))

    def _keep_run(self) -> None:
        """The keep button beside the plots: the same as the compare runs tab's, said on the status line."""
        run = self.views.compare.keep_run()
        self.status_line.warn(kept(run))
        self.push(CONTROLS)

    def _on_runs(self, store) -> None:
        self.plots.show_runs(list(store))

    def _on_views(self, change) -> None:
        if change["new"]:
            rerun.shown(self)  # a re-run of its cell keeps this run
        if change["old"] and not change["new"] and self.player.playing:
            self.pause()
            self.status_line.warn(say(OFF_PAGE))
            self.clock.dirty |= CONTROLS

    def _on_pane(self, name: str | None) -> None:
        """A tab opened: its heatmaps join the pushes, and what they missed goes now."""
        shown = PANE_PARTS.get(name, 0)
        self._hidden = HIDDEN & ~shown
        if shown and self.clock.dirty & shown and getattr(self, "comm", None) is not None:
            self.push(shown)

    def _reset(self, seed: int) -> None:
        with self.quiet():
            self.controls.seed.value = seed
        self.plots.reset_scales()
        self.trainer.reset(seed=seed)

    def _take_way(self, code: str) -> None:
        """One click on a way out: what the last divergence offered (ways.py), then the status says what was done."""
        self.status_line.notice(ways.take(self.trainer, self.status_line.last_event, code, self._reset))

    def _guard(self, fn) -> None:
        try:
            fn()
        except Exception as err:
            self._show_error(err)

    def _act(self, fn) -> None:
        """Run one click's worth of Trainer work; a teaching error goes to the status line in red."""
        self.pause()
        self.status_line.clear()
        self.player.driving = True
        try:
            fn()
        except Exception as err:
            self._show_error(err)
        finally:
            self.player.driving = False
            self._follow(self.trainer.last_phase)
            self.push()

    def _follow(self, phase: Phase | None) -> None:
        """After a click, the tab below shows what that phase moved (the batch, or W.grad), unless the student
        opened another tab (evaluation, compare...) on purpose."""
        want = FOLLOW.get(phase)
        if want is not None and self.views.shown in FOLLOW.values() and self.views.shown != want:
            self.views.select(want)

    def _show_error(self, err: Exception) -> None:
        self.status_line.error(err)  # in words, never a traceback (a divergence: its event says it)
        self.clock.dirty |= CONTROLS

    def _show_status(self) -> None:
        """Push the status now, with whatever else is pending (a key press is like a click)."""
        self.clock.dirty |= CONTROLS
        self.push()

    # ---- the Trainer's listener: O(1), sets flags; pushes happen by time ----
    def _on_change(self, trainer, event) -> None:
        self.clock.dirty |= DIRTY.get(event.phase if event.kind == "phase" else event.kind, ALL)
        # an error belongs to the action that caused it: what happens next replaces it (clicks and Play clear it
        # when they start; Play's own stop reason must stay)
        self.status_line.event(event, keep_error=self.player.driving)
        if event.kind == "undo":  # the colour scales fit W as it is now (after a blow-up undone, at once)
            self.plots.reset_scales()
        if event.kind == "divergence" and self.controls.details.value:  # a new divergence opens short again
            with self.quiet():
                self.controls.details.value = False
        if self.player.driving:
            return
        # the Trainer was driven from code (t.fit(5) in a cell): push by time, as Play does, and all once idle
        self.play_pushed(False, False)
        if self.clock.dirty & ~self._hidden:
            self._code_flush.later()

    def _flush(self) -> None:
        if self.clock.dirty & ~self._hidden and not self.player.driving:
            self.push()

    def _update_controls(self) -> None:
        t, c = self.trainer, self.controls
        c.highlight(t.next_phase)
        c.show_code(t.last_phase)
        acc = f" · test {t.history.test_acc[-1]:.1%}" if t.history.test_acc else ""
        c.show_counter(f"epoch {t.epoch + 1} · batch {t.batch_in_epoch}/{t.batches_per_epoch} · "
                       f"iteration {t.iteration}{acc}")
        said = self.status_line.view()
        c.show_status(said.text, said.level, said.extra, said.details)
        self.status_line.shown()  # the warning is said once
        c.show_key_hint(said.key_hint)
        c.show_way_out(said.diverged, said.ways)
        if self.math is not None:  # the math follows the same push as the code beside it: one phase, not two
            try:
                self.math.refresh()
            except Exception:
                log.exception("the math line could not be drawn")
        self.settings.match()  # the Trainer changed from code: move the widgets to match
