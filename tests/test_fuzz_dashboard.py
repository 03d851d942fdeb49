"""Stateful fuzzing of the Dashboard: every button and box, in any order, as thirty students would."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from softmax_widgets import DivergenceError, Phase, Trainer, TrainerError, load_dataset, model
from softmax_widgets.app import Dashboard
from softmax_widgets.ui.controls import LR_STOPS, SPEEDS

DIGITS = load_dataset("digits")
N_TRAIN = len(DIGITS.y_train)
PHASES = [p.value for p in Phase]
CLICKS = [*PHASES, "step", "iteration", "reset", "new_seed", "undo"]  # the buttons that need no event loop
WAYS_OUT = ["way_stable", "way_lr", "way_undo", "way_reset"]  # shown only after a divergence
KEYS = ["s", "ArrowRight", "u", "r", "x"]  # Space (Play) only where an event loop runs
PRESSES = itertools.count(1)  # the page numbers its key messages: the same key twice is two messages

# 50 click sequences of up to 40 actions (~2,000 clicks and edits) without Play, replayed for determinism, and
# 30 sequences of up to 40 with Play/Pause/Run epoch on a real asyncio loop. Derandomized, no database: CI
# runs the same sequences every time.
EXAMPLES, PLAY_EXAMPLES, STEPS = 50, 30, 40
COMMON = {"stateful_step_count": STEPS, "deadline": None, "derandomize": True, "database": None,
          "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much]}

# what reaches the kernel from the browser: the lr slider sends one of its 1-2-5 stops, the boxes take any integer
# (50: the lesson's softmax overflows within a few iterations, and the ways out appear)
LR_VALUES = st.sampled_from(LR_STOPS) | st.sampled_from([1e-4, 0.1, 10.0, 50.0])
BATCH_VALUES = st.integers(1, 200) | st.sampled_from([0, -1, -256, N_TRAIN, N_TRAIN + 1, 10**9, 1])


class _Errors(logging.Handler):
    """Collects what would have been a traceback in the notebook: logged errors and swallowed callbacks."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record):
        if record.exc_info or record.levelno >= logging.ERROR or "Exception in callback" in record.getMessage():
            self.records.append(f"{record.name}: {record.getMessage()} {record.exc_info and record.exc_info[1]!r}")


def nan_softmax(X):
    return model.softmax(X) * math.nan


def raising_optimizer(params, lr, batch_size):
    raise IndexError("list index out of range")


SWAPS = [("softmax", model.stable_softmax), ("softmax", model.softmax), ("softmax", nan_softmax),
         ("optimizer", raising_optimizer), ("optimizer", model.sgd)]


def act(dash: Dashboard, kind: str, arg=None) -> None:
    """One thing a student does; replay calls the very same sequence."""
    c = dash.controls
    if kind == "click":
        dash.buttons[arg].click()
    elif kind == "lr":
        c.lr.value = arg
    elif kind == "lr_text":  # typed into the box beside the slider, then Enter
        c.lr_text.value = arg
    elif kind == "batch":
        c.batch_size.value = arg
    elif kind == "seed":
        c.seed.value = arg
    elif kind == "swap":
        setattr(dash.trainer, *SWAPS[arg])
    elif kind == "toggle":
        c.softmax.value = arg
    elif kind == "key":  # what the page's key module (ui/keys.js) sends, through the key reader's comm (one a press)
        comm = c.keys.comm
        content = {"view": "fuzz", "n": next(PRESSES), "key": arg, "shiftKey": False, "repeat": False}
        comm.handle_msg({"content": {"comm_id": comm.comm_id, "data": {"method": "custom", "content": content}},
                         "buffers": [], "metadata": {}})
    elif kind == "cell":  # `t.train_step()` typed in another cell while the dashboard is shown
        try:
            dash.trainer.train_step()
        except TrainerError:
            pass
    else:
        raise AssertionError(kind)


class DashboardMachine(RuleBasedStateMachine):
    """Clicks, slider and box edits, code in other cells; the view must always match the Trainer."""

    def __init__(self):
        super().__init__()
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.errors = _Errors()
        logging.getLogger().addHandler(self.errors)
        random.seed(1234)  # New seed draws from `random`: the replay must draw the same seeds
        self.t = Trainer(DIGITS, lr=0.1, batch_size=64, seed=0)
        self.bare = self.t.listener_count  # before the dashboard (and its views) subscribe
        self.dash = Dashboard(self.t)
        self.listeners = self.t.listener_count
        self.log: list[tuple[str, object]] = []
        self.timed = False  # Play ran: the number of steps depends on the clock, so no exact replay

    def _act(self, kind, arg=None):
        act(self.dash, kind, arg)
        self.log.append((kind, arg))

    def _check_view(self):
        """After a click the dashboard has pushed: buttons, status and plots show the Trainer as it is."""
        t, c, p = self.t, self.dash.controls, self.dash.plots
        lit = [name for name in PHASES if c.buttons[name].button_style == "primary"]
        assert lit == [t.next_phase.value], (lit, t.next_phase)
        assert self.dash.status and "Traceback" not in self.dash.status
        n = len(t.history.loss)
        assert (n == 0 and len(p.loss_line.x) == 0) or p.loss_line.x[-1] == n  # iteration n is on the plot
        if n:
            # the last point is exact (bqplot squeezes a (2, 1) array to (2,): reshape it back)
            assert p.loss_line.y.reshape(2, -1)[0][-1] == np.float32(t.history.loss[-1])
        assert len(p.test_line.y) == t.epoch
        assert np.array_equal(p.bias_bars.y, t.b.detach().numpy().astype(np.float32))
        assert f"iteration {t.iteration}" in c.counter.value
        # the toggle shows the softmax in use (neither for a student's own)
        assert c.softmax.value == {id(model.softmax): "lesson", id(model.stable_softmax): "stable"}.get(id(t.softmax))
        if c.way_out.layout.display != "none":  # the ways out only while a divergence is what the status says
            assert c.status_level == "error", self.dash.status

    @rule(name=st.sampled_from(CLICKS))
    def click(self, name):
        before = self.t.iteration
        self._act("click", name)
        self._check_view()
        if self.dash.controls.status_level == "error":  # a refused or failed click says why, in words
            assert len(self.dash.status) > 20
        if name == "iteration" and self.dash.controls.status_level != "error":
            assert self.t.iteration == before + 1

    @rule(lr=LR_VALUES)
    def set_lr(self, lr):
        self._act("lr", lr)
        assert self.t.lr == pytest.approx(self.dash.controls.lr.value)

    @rule(bs=BATCH_VALUES)
    def set_batch(self, bs):
        before = self.t.batch_size
        self._act("batch", bs)
        if 1 <= bs <= N_TRAIN:
            assert self.t.batch_size == bs
        else:  # refused: the box goes back to the Trainer's value and the status says why
            assert self.t.batch_size == before and self.dash.controls.batch_size.value == before
            assert self.dash.controls.status_level == "error" and "batch size" in self.dash.status

    @rule(text=st.sampled_from(["0.05", "1e-3", "100", "-1", "0", "fast", "", "2,5"]))
    def type_lr(self, text):
        before = self.t.lr
        self._act("lr_text", text)
        if self.dash.controls.status_level == "error":
            assert self.t.lr == before
        # what the student reads as lr is the Trainer's lr, whatever was typed
        assert self.dash.controls.lr_text.value == f"{self.t.lr:g}" and self.dash.controls.lr.value == self.t.lr

    @rule(seed=st.integers(0, 2**32 - 1))
    def reset_with_seed(self, seed):
        self._act("seed", seed)
        self._act("click", "reset")
        assert self.t.seed == seed and self.t.iteration == 0 and self.t.next_phase is Phase.NEXT_BATCH
        self._check_view()

    @rule(i=st.integers(0, len(SWAPS) - 1))
    def swap_function(self, i):
        self._act("swap", i)

    @rule()
    def undo(self):
        t = self.t
        phases, before = len(t.snapshots), (t.iteration, len(t.history.loss))
        self._act("click", "undo")
        self._check_view()
        if phases == 0:  # nothing to undo: said in words, nothing changed
            assert self.dash.controls.status_level == "error" and self.dash.status.startswith("Nothing to undo")
            assert (t.iteration, len(t.history.loss)) == before
        else:  # one phase back: at most one iteration (and its loss point) gone
            assert self.dash.status.startswith("undo: back to before") and len(t.snapshots) == phases - 1
            if not self.dash.status.startswith("undo: back to before reset"):  # a reset undone brings a run back
                assert t.iteration in (before[0], before[0] - 1)

    @rule(value=st.sampled_from(["lesson", "stable"]))
    def toggle_softmax(self, value):
        changes = self.dash.controls.softmax.value != value
        self._act("toggle", value)
        if changes:
            assert self.t.softmax is (model.stable_softmax if value == "stable" else model.softmax)
            assert self.dash.status.startswith("softmax set to")

    @rule(name=st.sampled_from(WAYS_OUT))
    def way_out(self, name):
        # no precondition: with Play running, whether the ways out are shown depends on the clock, and a rule
        # set that changes with time makes hypothesis' draws unreplayable (FlakyStrategyDefinition)
        if self.dash.controls.way_out.layout.display != "none":
            self._take_way_out(name)

    @rule(name=st.sampled_from(WAYS_OUT))
    def blow_up_then_way_out(self, name):
        """From whatever state the fuzz reached: lr 50 with the lesson's softmax until it diverges, then a way out."""
        self._act("toggle", "lesson")
        self._act("lr", 50.0)
        for _ in range(10):
            if self.dash.controls.way_out.layout.display != "none":
                assert np.isfinite(self.dash.plots.loss_line.y).all(), "a NaN reached the loss curve"
                self._take_way_out(name)
                return
            self._act("click", "iteration")

    def _take_way_out(self, name):
        if self.dash.buttons[name].layout.display == "none":
            return  # not offered (the stable softmax is already in use): a student cannot click it
        code = {"way_stable": "stable_softmax", "way_lr": "lower_lr", "way_undo": "undo", "way_reset": "reset"}[name]
        # the way the divergence offered; None when code in a cell moved on since (the row is pushed by time): the
        # click then says in words that nothing changed
        event = self.dash.status_line.last_event
        way = next((w for w in (event.detail or {}).get("ways", ()) if w["code"] == code), None) \
            if event is not None and event.kind == "divergence" else None
        lr = self.t.lr
        self._act("click", name)
        self._check_view()
        if way is None:
            assert self.dash.controls.status_level == "error" and "nothing changed" in self.dash.status
        elif self.dash.controls.status_level != "error":  # it did what its label says
            assert self.t.lr == (way["lr"] if way["lr"] is not None else lr)
            assert self.dash.controls.way_out.layout.display == "none"
            # the status names only buttons that are shown (none now) and never code
            assert "“" not in self.dash.status and "trainer." not in self.dash.status
        if name == "way_stable":
            assert self.t.softmax is model.stable_softmax

    @rule(key=st.sampled_from(KEYS))
    def key(self, key):
        self._act("key", key)
        self._check_view()

    @rule()
    def code_in_another_cell(self):
        self._act("cell")

    @invariant()
    def consistent(self):
        t = self.t
        assert not self.errors.records, self.errors.records
        assert bool(torch.isfinite(t.W).all()) and bool(torch.isfinite(t.b).all())
        assert len(t.history.loss) == t.iteration and len(t.history.test_acc) == t.epoch
        assert self.dash.controls.batch_size.value == t.batch_size
        assert self.dash.controls.lr.value == t.lr and self.dash.controls.lr_text.value == f"{t.lr:g}"
        assert t.listener_count == self.listeners  # nothing subscribes twice, nothing is dropped

    def teardown(self):
        try:
            self.dash.pause()
            self.loop.run_until_complete(asyncio.sleep(0))  # let a Play task see the flag and finish
            task = self.dash.player.task
            if task is not None and not task.done():  # a slow Play naps ≤ 50 ms between steps
                self.loop.run_until_complete(asyncio.wait([task], timeout=2))
            if not self.timed:
                random.seed(1234)
                t2 = Trainer(DIGITS, lr=0.1, batch_size=64, seed=0)
                d2 = Dashboard(t2)
                for kind, arg in self.log:
                    act(d2, kind, arg)
                assert torch.equal(t2.W, self.t.W) and t2.history.loss == self.t.history.loss
                d2.push()  # code in a cell pushes by time: flush both before comparing what the student reads
                self.dash.push()
                assert d2.status == self.dash.status
                d2.close()
            self.dash.close()
            assert self.t.listener_count == self.bare, "close() left a listener on the Trainer"
            assert not self.errors.records, self.errors.records
        finally:
            logging.getLogger().removeHandler(self.errors)
            asyncio.set_event_loop(None)
            self.loop.close()


class PlayMachine(DashboardMachine):
    """The same, with Play, Pause and Run epoch running as a task on a real asyncio loop between clicks."""

    @rule(name=st.sampled_from(["play", "epoch"]))
    def click_play(self, name):
        self.timed = True
        self.dash.buttons[name].click()

    @rule(ms=st.sampled_from([0, 1, 5, 20]))
    def let_the_kernel_run(self, ms):
        # the kernel's loop runs for a moment: Play steps, flushes happen, clicks wait their turn
        self.timed = True
        self.loop.run_until_complete(asyncio.sleep(ms / 1000))

    @rule()
    def pause(self):
        self.dash.pause()
        self.loop.run_until_complete(asyncio.sleep(0.002))
        assert not self.dash.is_playing
        task = self.dash.player.task
        assert task is None or task.done() or not self.dash.is_playing

    @rule()
    def space(self):
        self.timed = True
        playing = self.dash.is_playing
        self._act("key", " ")
        assert self.dash.is_playing != playing or self.dash.controls.status_level == "error"

    @rule(speed=st.sampled_from(list(SPEEDS)))
    def set_speed(self, speed):
        self.dash.controls.speed.value = speed

    @rule(name=st.sampled_from(CLICKS))
    def click_while_playing(self, name):
        # whether Play is still running depends on the clock: no precondition on it (see way_out); it is started
        # here when it has stopped, so the rule is always "a click during Play"
        self.timed = True
        if not self.dash.is_playing:
            self.dash.buttons["play"].click()
        self._act("click", name)  # a phase click pauses Play first, then runs the phase
        assert not self.dash.is_playing

    @invariant()
    def play_stops_on_divergence(self):
        if self.dash.controls.status_level == "error" and not self.dash.is_playing:
            assert self.dash.buttons["play"].description.endswith("Play")


def _single_thread(case):
    # one intra-op thread: on a loaded 2-core CI box two torch threads make each step ~20x slower
    class Case(case):
        def setUp(self):
            self._threads = torch.get_num_threads()
            torch.set_num_threads(1)

        def tearDown(self):
            torch.set_num_threads(self._threads)

    return Case


TestDashboardFuzz = _single_thread(DashboardMachine.TestCase)
TestDashboardFuzz.settings = settings(max_examples=EXAMPLES, **COMMON)
TestDashboardPlayFuzz = _single_thread(PlayMachine.TestCase)
TestDashboardPlayFuzz.settings = settings(max_examples=PLAY_EXAMPLES, **COMMON)


def test_divergence_click_keeps_the_dashboard_usable():
    """A scripted path the fuzz must reach: lr 10 with the NaN-prone softmax, then the way out."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        t = Trainer(DIGITS, lr=0.1, batch_size=64, seed=0)
        dash = Dashboard(t)
        t.softmax = nan_softmax
        dash.buttons["iteration"].click()
        assert dash.controls.status_level == "error" and "your softmax returned nan" in dash.status.lower()
        with pytest.raises(DivergenceError):
            t.forward()
        t.softmax = model.softmax
        dash.buttons["iteration"].click()
        assert t.iteration == 1 and dash.controls.status_level != "error"
        dash.close()
        assert t.listener_count == 0
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_the_play_fuzz_has_no_precondition_that_depends_on_the_clock():
    """With Play on a real loop, what is shown (Play running, the ways out) depends on time: a precondition on it
    changes which rules hypothesis can draw from run to run, and its replay fails with FlakyStrategyDefinition."""
    from hypothesis.stateful import RULE_MARKER

    rules = [getattr(getattr(PlayMachine, name), RULE_MARKER, None) for name in dir(PlayMachine)]
    rules = [r for r in rules if r is not None]
    assert len(rules) > 10
    assert [r.function.__name__ for r in rules if r.preconditions] == []
