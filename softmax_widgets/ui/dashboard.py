"""Dashboard: wires a Trainer to the controls, the plots and the tabs below; clicks become Trainer calls.

Play lives in player.py, the push timing in ../throttle.py, the keyboard table in controls.py.
"""

from __future__ import annotations

import html
import json
import logging
import random

from ipywidgets import Button, Layout, VBox

from softmax_widgets import model
from softmax_widgets.data import load_or_offline
from softmax_widgets.phases import DivergenceError, Phase, TrainerError
from softmax_widgets.throttle import ALL, BATCH, CONTROLS, CURVES, DIRTY, GRAD, PARTS, PushClock
from softmax_widgets.trainer import Trainer

from . import rerun
from .controls import DEFAULT_LABELS, KEYS, KEYS_LIST, PASS_KEYS, WAY_BUTTONS, Controls, descendants
from .graph_panel import GraphPanel, MathLine
from .player import Player, current_loop
from .plots import Plots
from .presentation import (
    CELLS_CLASS,
    FITS_720,
    PRESENTATION,
    cells_css,
    check_scale,
    check_scale_notebook,
    is_compact,
    scale_class,
    scale_css,
)
from .views import Views

__all__ = ["KEYS", "Dashboard"]

log = logging.getLogger(__name__)
PANE_PARTS = {"W.grad": GRAD, "batch": BATCH}  # heatmaps that live behind a tab: pushed only while it is open
HIDDEN = GRAD | BATCH
# the tab a click on each phase opens, while one of these two is open: where that phase's change shows
FOLLOW = {Phase.NEXT_BATCH: "batch", Phase.FORWARD: "batch", Phase.ZERO_GRAD: "W.grad", Phase.BACKWARD: "W.grad"}


DEFAULT_WAYS = ("reset",)  # an event without its ways (a listener's own divergence event): Reset always works
# a way out without a button, in the dashboard's words (a page without code cells must not say "type ...")
NO_BUTTON = {"lesson_function": "{label} back (the softmax toggle: lesson's)"}


def event_ways(event) -> list[dict]:
    """A divergence event's ways out, as data (detail["ways"]; codes alone for an event that has only those)."""
    detail = event.detail or {}
    ways = detail.get("ways")
    if ways:
        return list(ways)
    return [{"code": c, "label": DEFAULT_LABELS.get(c, c), "lr": None, "steps": 0, "undo": None}
            for c in detail.get("ways_out", DEFAULT_WAYS)]


def divergence_status(event) -> tuple[str, str]:
    """A divergence read aloud: the cause in one sentence, why W got there, then the ways out by the names of their
    buttons below (never code: the app has no cells); the whole explanation (rows, images) waits behind details."""
    detail = event.detail or {}
    cause = (detail.get("cause") or detail.get("what") or "a number turned NaN or inf").strip()
    if event.phase is not None and not cause.startswith(f"{event.phase}()"):
        cause = f"{event.phase}(): {cause}"
    cause = cause if cause.endswith(".") else cause + "."
    reason = detail.get("reason", "")
    names = []
    for way in event_ways(event):
        if way["code"] in WAY_BUTTONS:
            names.append(f"“{way['label']}”")
        elif way["code"] in NO_BUTTON:
            names.append(NO_BUTTON[way["code"]].format(label=way["label"]) if "softmax" in way["label"] else
                         way["text"])  # the lesson's loss_fn or sgd: no button, a line of code
    ways = f" Ways out, below: {' or '.join(names)}." if names else ""
    what = (detail.get("what") or cause).strip()
    where = detail.get("where", "")
    details = f"{what}{' ' + where if where else ''} Nothing recorded so far is lost.{ways}"
    return f"{cause}{' ' + reason if reason else ''}{ways}", details


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
        self._event = None
        self._warning, self._warning_age = "", 0  # the orange line, and the phases run since it was said
        self._notice = ""  # replaces an info status until the next event: "paused at ...", "seed 5: ..."
        self._key_hint = ""  # a key that does nothing: said on the keys line, never glued to the status
        self._error = ""
        self._diverged = False  # the last event was a divergence: the ways out are shown
        self._pause_asked = False  # Pause was pressed and Play's task has not stopped yet
        self._syncing = False
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
        self._scale, self._presentation = 1.0, scale if scale > 1 else PRESENTATION
        self._scale_notebook = scale_notebook
        self._apply_scale(scale)
        self._notice = rerun.take_over(self)
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
        return self._scale

    @scale.setter
    def scale(self, value: float) -> None:
        value = check_scale(value, "dash.scale", f"dash.scale = {PRESENTATION:g}")
        if value > 1:
            self._presentation = value  # what A+ turns on from now
        self._apply_scale(value)
        if value > 1:
            fits = "" if value <= FITS_720 else \
                f" (above {FITS_720:g} the dashboard no longer fits one 1280×720 screen)"
            cells = ", the notebook's cells too" if self._scale_notebook else ""
            self._notice = (f"presentation size ×{value:g}: every text and plot enlarged{cells}; A+ again for the "
                            f"normal size{fits}")
        else:
            cells = ", the notebook's cells too" if self._scale_notebook else ""
            self._notice = f"normal size; A+ enlarges every text and plot ×{self._presentation:g}{cells}"
        self.push()  # the status, and the W note whose wording follows the layout

    @property
    def scale_notebook(self) -> bool:
        """Whether the presentation scale enlarges the notebook's own cells too (code, outputs, markdown), not the
        dashboard only. Set it at any time: `dash.scale_notebook = True`; A+ then scales both, and back."""
        return self._scale_notebook

    @scale_notebook.setter
    def scale_notebook(self, value: bool) -> None:
        self._scale_notebook = check_scale_notebook(value, "dash.scale_notebook")
        self._apply_scale(self._scale)

    def say(self, text: str) -> None:
        """A line of your own on the status (an instructor's "now watch the loss"), until the next event."""
        self._notice = " ".join(str(text).split())
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
            self._error = why
            self.push()
        elif self.player.playing:
            self._error = ""

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
        self._notice = self._paused_notice()
        self.push(CONTROLS)

    def _paused_notice(self) -> str:
        t = self.trainer
        return f"paused at iteration {t.iteration} (epoch {t.epoch + 1}) — ▶ Play goes on"

    def run_for(self, iterations: int) -> int:
        """Play's work without an event loop (scripts, tests): `iterations` whole iterations, pushed by time."""
        self._error = ""
        return self.player.run_for(iterations)

    def handle_key(self, key: str) -> bool:
        """One key press (KeyboardEvent.key, as the page sends it after a click on the dashboard): → or s step,
        Space play/pause, u undo, r reset with the same seed. False for a key that does nothing (the keys line says
        which keys do)."""
        action = KEYS.get(key)
        if action == "step":
            self._act(self.trainer.step)
        elif action == "play":
            self._guard(self.toggle_play)
        elif action == "undo":
            self._act(self.trainer.undo)
        elif action == "reset":
            self._act(lambda: self._reset(self.trainer.seed))
        else:
            self._key_hint = (f"The key {key!r} does nothing here. Keys: {KEYS_LIST}. To type elsewhere, click "
                              "there or press Escape.")
            self.clock.dirty |= CONTROLS
            self.push()  # like a click: whatever code in a cell left pending goes too
            return False
        return True

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
            if not self._error and not self._diverged:
                self._notice = self._paused_notice()
        self.push()

    def play_error(self, err) -> None:
        if isinstance(err, str):
            self._error = err
            self.clock.dirty |= CONTROLS  # Play may have pushed everything just before: the stop reason must go
        else:
            self._show_error(err)

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
        c.softmax.observe(lambda ch: self._choose_softmax(ch["new"]), "value")
        c.details.observe(lambda ch: self._syncing or self.push(CONTROLS), "value")
        c.scale.observe(lambda ch: self._toggle_scale(ch["new"]), "value")
        c.keys.observe(lambda ch: self._on_key_message(ch["new"]), "value")
        c.lr.observe(lambda ch: self._setting("lr", ch["new"], c.lr), "value")
        c.lr_text.observe(lambda ch: self._typed_lr(ch["new"]), "value")
        c.seed.observe(lambda ch: self._typed_seed(ch["old"], ch["new"]), "value")
        c.batch_size.observe(lambda ch: self._setting("batch_size", ch["new"], c.batch_size), "value")
        c.set_playing(False)

    def _apply_scale(self, scale: float) -> None:
        """Zoom this dashboard (the page CSS and a class), and size its figures and rows for it."""
        if self._scale != 1:
            self.remove_class(scale_class(self._scale))
        self.controls.set_page_css(scale_css(scale) + (cells_css(scale) if self._scale_notebook else ""))
        if scale != 1:
            self.add_class(scale_class(scale))
        if self._scale_notebook and CELLS_CLASS not in self._dom_classes:
            self.add_class(CELLS_CLASS)
        elif not self._scale_notebook and CELLS_CLASS in self._dom_classes:
            self.remove_class(CELLS_CLASS)
        self.controls.set_compact(is_compact(scale))
        self.plots.set_scale(scale)
        self.views.set_scale(scale)
        self._scale = scale
        self._syncing = True
        try:
            self.controls.show_scale(scale > 1, self._presentation)
        finally:
            self._syncing = False
        self.clock.dirty |= ALL  # the W note's wording follows the layout

    def _toggle_scale(self, on: bool) -> None:
        if not self._syncing:
            self._guard(lambda: setattr(self, "scale", self._presentation if on else 1.0))

    def _keep_run(self) -> None:
        """The keep button beside the plots: the same as the compare runs tab's, said on the status line."""
        run = self.views.compare.keep_run()
        self._warning = (f"kept {run.label}: its loss stays on the loss plot, dashed; the compare runs tab has its "
                         "test accuracy" if run is not None else
                         "Nothing to keep yet: this run has no iteration. Train first (Step, Run epoch or Play).")
        self.push(CONTROLS)

    def _on_runs(self, store) -> None:
        self.plots.show_runs(list(store))

    def _on_views(self, change) -> None:
        if change["new"]:
            rerun.shown(self)  # a re-run of its cell keeps this run
        if change["old"] and not change["new"] and self.player.playing:
            self.pause()
            self._warning = ("Play paused: the dashboard is no longer on the page (its output was cleared or its "
                             "cell run again). Show it again with `dash` in a cell, then press Play.")
            self.clock.dirty |= CONTROLS

    def _on_pane(self, name: str | None) -> None:
        """A tab opened: its heatmaps join the pushes, and what they missed goes now."""
        shown = PANE_PARTS.get(name, 0)
        self._hidden = HIDDEN & ~shown
        if shown and self.clock.dirty & shown and getattr(self, "comm", None) is not None:
            self.push(shown)

    def _on_key_message(self, text: str) -> None:
        """A key from the page (widgets.KEYS_JS): JSON written into the hidden key box, one message per press."""
        if not text:
            return
        try:
            event = json.loads(text)
        except ValueError:
            log.warning("a key message that is not JSON: %r", text[:80])
            return
        if isinstance(event, dict):
            self._on_key_event(event)

    def _on_key_event(self, event: dict) -> None:
        """One keydown the page heard while the dashboard had the focus; a shortcut with Ctrl, Alt or ⌘ is not ours
        (the page never sends one: this is the same rule once more)."""
        try:
            if any(event.get(k) for k in ("ctrlKey", "altKey", "metaKey")):
                return  # a shortcut: not the dashboard's, said nothing
            key = str(event.get("key", ""))
            if key in PASS_KEYS or (event.get("shiftKey") and key not in KEYS):
                return  # JupyterLab's (the page lets these through), or Shift + a key that is not ours: silent
            if event.get("repeat") and KEYS.get(key) in ("play", "reset"):
                return  # a held Space would flicker Play on and off
            self.handle_key(key)
        except Exception as err:  # never a traceback in the output area
            self._show_error(err)
            self.push(CONTROLS)

    def _reset(self, seed: int) -> None:
        self._syncing = True
        try:
            self.controls.seed.value = seed
        finally:
            self._syncing = False
        self.plots.reset_scales()
        self.trainer.reset(seed=seed)

    def _take_way(self, code: str) -> None:
        """One click on a way out: what the divergence's detail says it does (take back the change by hand or the
        large steps, lower the lr, the stable softmax, reset), then the status says what was done and what stays."""
        t = self.trainer
        event = self._event
        way = next((w for w in event_ways(event) if w["code"] == code), None) if event is not None else None
        if way is None or event.kind != "divergence":
            raise TrainerError("That way out belonged to a divergence that is no longer the last thing that "
                               "happened: nothing changed.")
        lr = way.get("lr")
        if code == "reset":
            self._reset(t.seed)
        if way.get("undo"):
            t.undo(**way["undo"])
        if way.get("lesson"):
            t.use_lesson(way["lesson"])
        if code == "stable_softmax":
            t.use_stable_softmax()
        if lr is not None and lr != t.lr:
            t.lr = lr
        self._notice = self._way_done(code, way)

    def _way_done(self, code: str, way: dict) -> str:
        """What a way out did, in words, and what Play does from there."""
        t = self.trainer
        go = f"▶ Play (or {t.next_phase}, lit) goes on from here."
        kept = f"lr {t.lr:g}" if way.get("lr") is None else f"lr → {t.lr:g}"
        if code == "reset":
            softmax = {model.softmax: "the lesson's softmax", model.stable_softmax: "the stable softmax"}.get(
                t.softmax, "your softmax")
            return (f"Reset to seed {t.seed}'s start (W ~ N(0, {t.init_std:g}²), b = 0), {kept}; kept: {softmax}, "
                    f"batch {t.batch_size}. ↶ undo takes the reset back. {go}")
        if code == "stable_softmax":
            return f"The stable softmax is on (it subtracts each row's max before exp): {kept}. {go}"
        undo = way.get("undo") or {}
        if way.get("lesson"):
            return (f"Took back {way['label'].split(', ')[0].removeprefix('↶ undo ')} and put the lesson's "
                    f"{way['lesson']} back: W as before (iteration {t.iteration}), {kept}. {go}")
        if undo.get("before"):
            return f"The change by hand is taken back: W and b as before it, {kept}. {go}"
        if way.get("steps"):
            steps, them = ("the sgd step", "it") if way["steps"] == 1 else (f"the {way['steps']} sgd steps", "them")
            return (f"Took back {steps} at the too large lr: W as it was before {them} (iteration {t.iteration}), "
                    f"{kept}. {go}")
        return f"{kept[0].upper()}{kept[1:]}: the step that overflowed runs again with it. {go}"

    def _choose_softmax(self, value: str | None) -> None:
        """The softmax toggle: the lesson's or the stable one (from the next forward)."""
        if self._syncing or value is None:
            return
        try:
            self.trainer.use_stable_softmax(value == "stable")
            self._error = ""
        except Exception as err:
            self._show_error(err)
        self.push(CONTROLS)

    def _guard(self, fn) -> None:
        try:
            fn()
        except Exception as err:
            self._show_error(err)

    def _act(self, fn) -> None:
        """Run one click's worth of Trainer work; a teaching error goes to the status line in red."""
        self.pause()
        self._error = self._notice = self._key_hint = ""
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

    def _typed_lr(self, text: str) -> None:
        """The lr box: a number typed (then Enter) sets trainer.lr; a refused one is put back, the error shown."""
        if self._syncing:
            return
        try:
            value = float(str(text).strip().replace(",", "."))
        except ValueError:
            self._error = (f"lr {str(text).strip()!r} is not a number: type one like 0.1 or 1e-3 "
                           f"(the lr stays {self.trainer.lr:g}).")
            self.clock.dirty |= CONTROLS
            self.push(CONTROLS)  # puts the box back to the Trainer's lr
            return
        self._setting("lr", value, None)

    def _typed_seed(self, old: int, new: int) -> None:
        """The seed box: say what the seed is for; a negative one is refused and put back."""
        if self._syncing:
            return
        if new < 0 or new >= 2**32:
            self._error = f"seed {new} is refused: a seed is a whole number from 0 to 2**32 - 1 (kept {old})."
            self._syncing = True
            try:
                self.controls.seed.value = old
            finally:
                self._syncing = False
        else:
            self._error = ""
            self._notice = (f"seed {new}: used by Reset (the same W, b and batches every time); New seed draws "
                            f"another. This run keeps seed {self.trainer.seed} until then.")
        self.push(CONTROLS)

    def _setting(self, name: str, value, widget) -> None:
        """lr / batch size from a widget: the Trainer validates; on a bad value, say why and put it back."""
        if self._syncing:
            return
        try:
            setattr(self.trainer, name, value)
            self._error = ""
        except ValueError as err:
            self._show_error(err)
            self._syncing = True
            try:
                if widget is not None:
                    widget.value = getattr(self.trainer, name)
            finally:
                self._syncing = False
        self.push(CONTROLS)

    def _show_error(self, err: Exception) -> None:
        if isinstance(err, DivergenceError):
            self._error = ""  # its event came first and is on the status line: the short sentence, the ways out
        elif isinstance(err, (TrainerError, ValueError)):
            self._error = str(err)
        else:  # not one of ours: still words, not a traceback; the log keeps the details
            log.exception("unexpected error in a dashboard action")
            self._error = f"{type(err).__name__}: {err}"
        self.clock.dirty |= CONTROLS

    # ---- the Trainer's listener: O(1), sets flags; pushes happen by time ----
    def _on_change(self, trainer, event) -> None:
        self.clock.dirty |= DIRTY.get(event.phase if event.kind == "phase" else event.kind, ALL)
        if not self.player.driving:  # an error belongs to the action that caused it: what happens next replaces it
            self._error = ""  # (clicks and Play clear it when they start; Play's own stop reason must stay)
        self._notice = self._key_hint = ""
        if event.kind == "undo":  # the colour scales fit W as it is now (after a blow-up undone, at once)
            self.plots.reset_scales()
        if event.kind == "warning":
            self._warning, self._warning_age = event.message, 0
        else:
            if event.kind == "phase":  # a warning belongs to the phase it came with and the next: then it is stale
                self._warning_age += 1
                if self._warning_age > 2:
                    self._warning, self._warning_age = "", 0  # the orange line, and the phases run since it was said
            self._event = event
            self._diverged = event.kind == "divergence"
            if self._diverged and self.controls.details.value:  # a new divergence opens short again
                self._syncing = True
                try:
                    self.controls.details.value = False
                finally:
                    self._syncing = False
        if self.player.driving:
            return
        # the Trainer was driven from code (t.fit(5) in a cell): push by time, as Play does, and all once idle
        self.play_pushed(False, False)
        if self.clock.dirty & ~self._hidden:
            self._code_flush.later()

    def _flush(self) -> None:
        if self.clock.dirty & ~self._hidden and not self.player.driving:
            self.push()

    def _opening_status(self) -> str:
        """Before any event: a fresh run says how to start; a run already under way (Trainer.load, or trained from
        code before the dashboard was made) says where it stands and which phase is lit."""
        t = self.trainer
        if t.iteration == 0 and t.last_phase is None:
            return (f"{t.data.name}: press next_batch (or Step) to start, then each lit button in turn; ▶ Play runs "
                    "the loop for you")
        return (f"{t.data.name}: a run already under way (loaded, or trained before this dashboard), at {t.where()}. "
                f"Press {t.next_phase} (the lit button) or Step to go on.")

    def _update_controls(self) -> None:
        t, c = self.trainer, self.controls
        c.highlight(t.next_phase)
        c.show_code(t.last_phase)
        acc = f" · test {t.history.test_acc[-1]:.1%}" if t.history.test_acc else ""
        c.show_counter(f"epoch {t.epoch + 1} · batch {t.batch_in_epoch}/{t.batches_per_epoch} · "
                       f"iteration {t.iteration}{acc}")
        if self._error:
            c.show_status(self._error, "error")
        elif self._event is not None and self._event.kind == "divergence":
            short, details = divergence_status(self._event)
            c.show_status(short, "error", self._warning, details)
        elif self._notice:
            c.show_status(self._notice, "info", self._warning)
        elif self._event is not None:
            c.show_status(self._event.message, self._event.level, self._warning)
        else:
            c.show_status(self._opening_status(), "info", self._warning)
        self._warning, self._warning_age = "", 0  # the orange line, and the phases run since it was said
        c.show_key_hint(self._key_hint)
        c.show_way_out(self._diverged, event_ways(self._event) if self._diverged else ())
        if self.math is not None:  # the math follows the same push as the code beside it: one phase, not two
            try:
                self.math.refresh()
            except Exception:
                log.exception("the math line could not be drawn")
        self._syncing = True  # the Trainer changed from code: move the widgets to match
        try:
            c.show_lr(t.lr)
            if c.batch_size.value != t.batch_size:
                c.batch_size.value = t.batch_size
            # neither lit (None) while a student's own softmax is in use
            c.show_softmax("lesson" if t.softmax is model.softmax else "stable"
                           if t.softmax is model.stable_softmax else None)
        finally:
            self._syncing = False
