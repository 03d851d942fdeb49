"""Dashboard: wires a Trainer to the controls and the plots, and owns Play and the push timing."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import threading
import time
import warnings
import weakref

from ipyevents import Event as DomEvent
from ipywidgets import VBox

from . import model
from .data import DatasetUnavailableError, load_dataset
from .phases import Phase, TrainerError
from .plots import Plots
from .trainer import Trainer
from .views import Views
from .widgets import KEYS_HELP, Controls, descendants

__all__ = ["Dashboard"]

log = logging.getLogger(__name__)

# what an event makes stale; bit flags keep the listener a few hundred nanoseconds
CONTROLS, CURVES, WEIGHTS, GRAD, BATCH = 1, 2, 4, 8, 16
HEAVY = WEIGHTS | GRAD | BATCH  # the heatmaps: most of the bytes, so pushed less often during Play
ALL = CONTROLS | CURVES | HEAVY
DIRTY = {
    Phase.NEXT_BATCH: CONTROLS | BATCH, Phase.FORWARD: CONTROLS | BATCH, Phase.ZERO_GRAD: CONTROLS | GRAD,
    Phase.BACKWARD: CONTROLS | GRAD, Phase.SGD: CONTROLS | CURVES | WEIGHTS,
    "epoch": CONTROLS | CURVES, "reset": ALL, "undo": ALL, "settings": CONTROLS, "warning": CONTROLS,
    "divergence": ALL,
}
PARTS = {CURVES: "curves", WEIGHTS: "weights", GRAD: "grad", BATCH: "batch"}
PHASE_MODE_RATE = 2.0  # at or below this many iterations/s, Play walks phase by phase
# at full speed a push also waits for this many iterations: bytes per iteration stay bounded (≤ ~350 B) on a
# slow or busy machine too, where the browser shares the cores and must not fall behind
EVERY_LIGHT, EVERY_HEAVY = 50, 150
# KeyboardEvent.key -> what the key does (the help line in widgets.KEYS_HELP says the same)
KEYS = {"ArrowRight": "step", "s": "step", "S": "step", " ": "play", "u": "undo", "U": "undo",
        "r": "reset", "R": "reset"}


def _current_loop() -> asyncio.AbstractEventLoop | None:
    """The loop Play will run on: the kernel's (running) loop, else this thread's loop if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return asyncio.get_event_loop()
        except RuntimeError:
            return None


_PLAYING: weakref.WeakSet = weakref.WeakSet()  # dashboards whose Play a kernel interrupt (■) must stop


def _on_sigint(signum, frame) -> None:
    """The kernel's interrupt while Play runs between requests (ipykernel ignores SIGINT there): pause Play."""
    for dash in list(_PLAYING):
        dash._interrupted()


def _catch_sigint() -> None:
    """Route SIGINT to Play while the kernel is idle; inside a request ipykernel's own handler stays in charge."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_sigint)


def _release_sigint() -> None:
    if (not _PLAYING and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is _on_sigint):
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class Dashboard(VBox):
    """Buttons for each phase, Play/Pause and live plots of one Trainer; display it as a cell's value."""

    def __init__(self, trainer: Trainer, *, fps: float = 10.0, heavy_fps: float = 0.5,
                 w_range: float | None = None, note: str = "", **kwargs):
        self.trainer = trainer
        # pushes by time, never per step: ≤ fps for curves and text, ≤ heavy_fps for the heatmaps. Measured in
        # JupyterLab on the busy 2-core box (bqplot redraws a HeatMap cell by cell): W alone at 0.5 Hz during
        # full-speed Play, Pause lands in 0.2 s; all 28 maps at 1 Hz, 0.4 s and the counter settles after 1.3 s
        self.fps, self.heavy_fps = fps, heavy_fps
        self._loop = _current_loop()
        self._task: asyncio.Task | None = None
        self._playing = False
        self._stop_epoch: int | None = None  # Run epoch: Play until this epoch count is reached
        self._driving = False  # a click or Play is running the Trainer and pushes when it is done
        self._dirty = ALL
        self._event = None
        self._warning = ""
        self._error = ""
        self._diverged = False  # the last event was a divergence: the ways out are shown
        self._t_light = self._t_heavy = 0.0
        self._it_light = self._it_heavy = 0
        self._flush_scheduled = False
        self._syncing = False
        self.last_step_time = self.pause_time = float("nan")  # time.time() of Play's last step / of pause()
        self.controls = Controls(trainer.lr, trainer.batch_size, trainer.seed)
        self.plots = Plots(trainer.data, w_range=w_range)
        self.buttons = self.controls.buttons
        if note:
            self.controls.note.value = f"<div style='color:#b35900'>{note}</div>"
        # keys act while the mouse is over this area (ipyevents takes every key there: no text boxes inside)
        self.keys_area = VBox([self.controls.readout, self.plots.widget])
        self.keys_area.add_class("sw-keys")
        # evaluation, run comparison and export tabs; outside the keys area (its text boxes need the keys)
        self.views = Views(self)
        super().__init__(children=[self.controls.widget, self.keys_area, self.views.widget], **kwargs)
        self.add_class("sw-dashboard")
        # prevent_default_action: Space must not scroll the page, → must not move the notebook's cursor
        self.key_events = DomEvent(source=self.keys_area, watched_events=["keydown"],
                                   prevent_default_action=True, ignore_modifier_key_events=True)
        self._wire()
        trainer.on_change(self._on_change)
        self.push()

    @classmethod
    def from_dataset(cls, name: str = "fashion-mnist", root=None, download: bool = True, **trainer_kwargs):
        """A Dashboard on a fresh Trainer; offline without the files it falls back to the 8x8 digits."""
        note = ""
        try:
            data = load_dataset(name, root=root, download=download)
        except DatasetUnavailableError as err:
            data = load_dataset("digits")
            where = getattr(err, "folder", None) or "the data folder"
            note = (f"Showing the offline 8×8 digits: {name} is not in {where} and could not be downloaded. "
                    "Set $SOFTMAX_WIDGETS_DATA (or root=) to the folder that holds its raw/ files.")
        return cls(Trainer(data, **trainer_kwargs), note=note)

    # ---- public API ----
    @property
    def status(self) -> str:
        """The status line's text (what the student reads)."""
        return self.controls.status_text

    @property
    def is_playing(self) -> bool:
        return self._playing

    def play(self, until_epoch_end: bool = False) -> None:
        """Start Play on the kernel's loop; returns at once (Pause is another click away)."""
        self._stop_epoch = self.trainer.epoch + 1 if until_epoch_end else None
        if self._playing:
            return
        if self._loop is None or self._loop.is_closed():
            self._error = "Play needs a running event loop (a Jupyter kernel); in a script call dash.run_for(n)."
            self.push()
            return
        self._error = ""
        self._playing = True
        self.controls.set_playing(True)
        self._loop.call_soon_threadsafe(self._ensure_task)

    def pause(self) -> None:
        """Stop Play after the step in progress; it only clears a flag, so it is honoured at once."""
        if self._playing:
            self.pause_time = time.time()
        self._playing = False
        self.controls.set_playing(False)

    def run_for(self, iterations: int) -> int:
        """Play's work without an event loop (scripts, tests): `iterations` whole iterations, pushed by time."""
        start = self.trainer.iteration
        self._driving = True
        try:
            while self.trainer.iteration - start < iterations and self._tick(phase_mode=False):
                self._maybe_push(full_speed=True)
        finally:
            self._driving = False
            self.push()
        return self.trainer.iteration - start

    def handle_key(self, key: str) -> bool:
        """One key press (KeyboardEvent.key, as ipyevents sends it): → or s step, Space play/pause, u undo,
        r reset with the same seed. False for a key that does nothing (the status says which keys do)."""
        action = KEYS.get(key)
        if action == "step":
            self._act(self.trainer.step)
        elif action == "play":
            self._guard(self.pause if self._playing else self.play)
        elif action == "undo":
            self._act(self.trainer.undo)
        elif action == "reset":
            self._act(lambda: self._reset(self.trainer.seed))
        else:
            self._warning = (f"The key {key!r} does nothing here: {KEYS_HELP}. Over the plots every key goes to "
                             "the dashboard; move the mouse away to type or run cells.")
            self._dirty |= CONTROLS
            self.push()  # like a click: whatever code in a cell left pending goes too
            return False
        return True

    def _on_dom_event(self, event: dict) -> None:
        """ipyevents' message from the browser; a shortcut with Ctrl, Alt or ⌘ is not ours."""
        try:
            if event.get("type") != "keydown" or any(event.get(k) for k in ("ctrlKey", "altKey", "metaKey")):
                return
            key = str(event.get("key", ""))
            if event.get("repeat") and KEYS.get(key) in ("play", "reset"):
                return  # a held Space would flicker Play on and off
            self.handle_key(key)
        except Exception as err:  # never a traceback in the output area
            self._show_error(err)
            self.push(CONTROLS)

    def push(self, parts: int | None = None) -> None:
        """Send what changed to the browser now (clicks and the end of Play; Play itself goes by time)."""
        parts = self._dirty if parts is None else parts
        self._dirty &= ~parts
        now = time.perf_counter()
        self._t_light, self._it_light = now, self.trainer.iteration
        if parts & HEAVY:
            self._t_heavy, self._it_heavy = now, self.trainer.iteration
        try:
            if parts & CONTROLS:
                self._update_controls()
            self.plots.update(self.trainer, [name for bit, name in PARTS.items() if parts & bit])
        except Exception:  # a drawing bug must not become a traceback under the student's click
            log.exception("dashboard update failed")

    def close(self) -> None:
        """Stop Play, unsubscribe from the Trainer and close every widget this dashboard made."""
        self._playing = False
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            trainer.on_change(self._on_change, remove=True)
        keys = getattr(self, "key_events", None)
        if keys is not None:  # it points at the keys area; nothing points back at it
            keys.close()
        views = getattr(self, "views", None)
        if views is not None:  # its Trainer and RunStore listeners, and the Lines of removed runs
            views.close()
        if getattr(self, "comm", None) is not None:
            # children, marks, scales, axes and every Layout, this VBox's own included (one comm each)
            for w in list(descendants(self))[1:]:
                w.close()
        super().close()

    # ---- wiring ----
    def _wire(self) -> None:
        c = self.controls
        for p in Phase:
            c.buttons[p.value].on_click(lambda _, p=p: self._act(getattr(self.trainer, p.value)))
        c.buttons["step"].on_click(lambda _: self._act(self.trainer.step))
        c.buttons["iteration"].on_click(lambda _: self._act(self.trainer.train_step))
        c.buttons["epoch"].on_click(lambda _: self._guard(lambda: self.play(until_epoch_end=True)))
        c.buttons["play"].on_click(lambda _: self._guard(self.pause if self._playing else self.play))
        c.buttons["reset"].on_click(lambda _: self._act(lambda: self._reset(c.seed.value)))
        c.buttons["new_seed"].on_click(lambda _: self._act(lambda: self._reset(random.randrange(2**31))))
        c.buttons["undo"].on_click(lambda _: self._act(self.trainer.undo))
        c.buttons["way_stable"].on_click(lambda _: self._act(self.trainer.use_stable_softmax))
        c.buttons["way_lr"].on_click(lambda _: self._act(lambda: setattr(self.trainer, "lr", self.trainer.lr / 10)))
        c.buttons["way_undo"].on_click(lambda _: self._act(self._undo_blowup))
        c.softmax.observe(lambda ch: self._choose_softmax(ch["new"]), "value")
        self.key_events.on_dom_event(self._on_dom_event)
        c.lr.observe(lambda ch: self._setting("lr", ch["new"], c.lr), "value")
        c.batch_size.observe(lambda ch: self._setting("batch_size", ch["new"], c.batch_size), "value")
        c.set_playing(False)

    def _reset(self, seed: int) -> None:
        self.controls.seed.value = seed
        self.plots.reset_scales()
        self.trainer.reset(seed=seed)

    def _undo_blowup(self) -> None:
        """Back to before the last sgd, the step that pushed W too far (and the half-done iteration after it)."""
        t = self.trainer
        wanted = 1 if t.next_phase is Phase.NEXT_BATCH else 2
        t.undo(min(wanted, t.snapshots.iterations) or None)  # none left: undo() says so in words

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
        self._error = ""
        self._driving = True
        try:
            fn()
        except Exception as err:
            self._show_error(err)
        finally:
            self._driving = False
            self.push()

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
                widget.value = getattr(self.trainer, name)
            finally:
                self._syncing = False
        self.push(CONTROLS)

    def _show_error(self, err: Exception) -> None:
        if isinstance(err, (TrainerError, ValueError)):
            self._error = str(err)
        else:  # not one of ours: still words, not a traceback; the log keeps the details
            log.exception("unexpected error in a dashboard action")
            self._error = f"{type(err).__name__}: {err}"
        self._dirty |= CONTROLS

    # ---- the Trainer's listener: O(1), sets flags; pushes happen by time ----
    def _on_change(self, trainer, event) -> None:
        self._dirty |= DIRTY.get(event.phase if event.kind == "phase" else event.kind, ALL)
        if event.kind == "warning":
            self._warning = event.message
        else:
            self._event = event
            self._diverged = event.kind == "divergence"
        if self._driving:
            return
        # the Trainer was driven from code (t.fit(5) in a cell): push by time, as Play does, and all once idle
        self._maybe_push()
        if self._dirty and not self._flush_scheduled and self._loop is not None and not self._loop.is_closed():
            self._flush_scheduled = True
            self._loop.call_soon_threadsafe(self._loop.call_later, 1 / self.fps, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._dirty and not self._driving:
            self.push()

    def _maybe_push(self, phase_mode: bool = False, full_speed: bool = False) -> None:
        """Push by time (≤ fps, heatmaps ≤ heavy_fps); at full speed also by iterations done since."""
        now, it = time.perf_counter(), self.trainer.iteration
        if now - self._t_light < 1 / self.fps or (full_speed and it - self._it_light < EVERY_LIGHT):
            return
        parts = self._dirty & (CONTROLS | CURVES)
        if phase_mode or (now - self._t_heavy >= 1 / self.heavy_fps
                          and not (full_speed and it - self._it_heavy < EVERY_HEAVY)):
            # at full speed only W moves on screen: W.grad and the batch change every step, too fast to read,
            # and cost the browser most; they are drawn when Play stops (the final push sends everything)
            parts = self._dirty & (CONTROLS | CURVES | WEIGHTS) if full_speed else self._dirty
        self.push(parts)

    def _update_controls(self) -> None:
        t, c = self.trainer, self.controls
        c.highlight(t.next_phase)
        c.show_code(t.last_phase)
        acc = f" · test acc {t.history.test_acc[-1]:.1%} after epoch {t.epoch}" if t.history.test_acc else ""
        c.show_counter(f"epoch {t.epoch + 1} (batch {t.batch_in_epoch} of {t.batches_per_epoch}) · "
                       f"iteration {t.iteration}{acc}")
        if self._error:
            c.show_status(self._error, "error")
        elif self._event is not None:
            c.show_status(self._event.message, self._event.level, self._warning)
        else:
            c.show_status(f"{t.data.name}: press next_batch (or Step) to start", "info", self._warning)
        self._warning = ""
        c.show_way_out(self._diverged, t.softmax is not model.stable_softmax, t.lr)
        self._syncing = True  # the Trainer changed from code: move the widgets to match
        try:
            if c.lr.value != t.lr:
                c.lr.value = t.lr
            if c.batch_size.value != t.batch_size:
                c.batch_size.value = t.batch_size
            # neither lit (None) while a student's own softmax is in use
            c.show_softmax("lesson" if t.softmax is model.softmax else "stable"
                           if t.softmax is model.stable_softmax else None)
        finally:
            self._syncing = False

    # ---- Play: an asyncio task on the kernel's loop; no threads, so Pause is just a flag ----
    def _ensure_task(self) -> None:
        if self._playing and (self._task is None or self._task.done()):
            self._task = self._loop.create_task(self._play_loop())

    def _tick(self, phase_mode: bool) -> bool:
        """One unit of Play (a phase, or a whole iteration); False when Play must stop."""
        t = self.trainer
        try:
            t.step() if phase_mode else t.train_step()
        except Exception as err:
            self._show_error(err)
            return False
        self.last_step_time = time.time()
        return self._stop_epoch is None or t.epoch < self._stop_epoch

    def _interrupted(self) -> None:
        """SIGINT during Play: only flags here (a signal handler must not send messages); the loop stops."""
        if self._playing:
            self.pause_time = time.time()
            self._error = "Play stopped by the kernel interrupt (■). The Trainer is consistent: press Play to go on."
        self._playing = False

    async def _play_loop(self) -> None:
        self._driving = True
        next_due = time.perf_counter()
        _PLAYING.add(self)
        try:
            while self._playing:
                _catch_sigint()  # every step: a click's request handler may have put the kernel's back
                rate = None if self._stop_epoch is not None else self.controls.rate
                phase_mode = rate is not None and rate <= PHASE_MODE_RATE
                if not self._tick(phase_mode):
                    break
                self._maybe_push(phase_mode, full_speed=rate is None)
                if rate is None:
                    await asyncio.sleep(0)  # let the kernel read Pause and other clicks
                    continue
                next_due = max(next_due + 1 / (rate * (5 if phase_mode else 1)), time.perf_counter() - 0.2)
                while self._playing and (delay := next_due - time.perf_counter()) > 0:
                    await asyncio.sleep(min(delay, 0.05))  # short naps: Pause still lands within 50 ms
        except KeyboardInterrupt:  # ■ landed while ipykernel's own handler was in place (just after a request)
            self._interrupted()
        except Exception as err:  # never let the task die with a traceback in the log only
            self._show_error(err)
        finally:
            _PLAYING.discard(self)
            _release_sigint()
            self._playing = False
            self._stop_epoch = None
            self._driving = False
            self.controls.set_playing(False)
            self.push()
