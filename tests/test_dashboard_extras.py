"""Undo, divergence ways out, the softmax toggle and keyboard control, headless: real widgets, real Trainer."""

from __future__ import annotations

import asyncio
import html
import itertools
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import softmax_widgets.ui
from softmax_widgets import DivergenceError, Phase, Trainer, model
from softmax_widgets.app import KEYS, Dashboard
from softmax_widgets.ui.controls import KEYS_HELP, KEYS_LIST, KEYS_ON, PASS_KEYS, UNDO, descendants
from softmax_widgets.ui.front_end import KeyReader
from tests.conftest import wait_until

PHASES = [p.value for p in Phase]


@pytest.fixture
def dash(digits):
    d = Dashboard(Trainer(digits, batch_size=64, seed=0))
    yield d
    d.close()


def visible(widget) -> bool:
    return widget.layout.display != "none"


PRESSES = itertools.count(1)


def key_message(key: str, **mods) -> dict:
    """What the page's key script (ui/keys.js) sends, as a custom message, for one keydown."""
    return {"view": "test", "n": next(PRESSES), "key": key, "shiftKey": False, "repeat": False, **mods}


def send(d: Dashboard, content) -> None:
    """A custom message from the page to the key reader (anywidget's model.send), delivered through its comm."""
    comm = d.controls.keys.comm
    comm.handle_msg({"content": {"comm_id": comm.comm_id, "data": {"method": "custom", "content": content}},
                     "buffers": [], "metadata": {}})


def press(d: Dashboard, key: str, **mods) -> None:
    """A key as the browser sends it: the key reader's message, delivered through the widget's comm."""
    send(d, key_message(key, **mods))


def diverge(d: Dashboard, clicks: int = 20) -> int:
    """Click Iteration until the Trainer diverges; returns the iteration it stopped at."""
    for _ in range(clicks):
        d.buttons["iteration"].click()
        if d.controls.status_level == "error":
            return d.trainer.iteration
    raise AssertionError(f"no divergence within {clicks} clicks at lr {d.trainer.lr}")


def loss_points(d: Dashboard) -> np.ndarray:
    return d.plots.loss_line.y.reshape(2, -1)[0]  # bqplot squeezes a (2, 1) array to (2,)


# ---- undo ----
def test_undo_with_nothing_to_undo_says_so_in_words(dash):
    assert dash.buttons["undo"].description == UNDO
    W = dash.trainer.W.detach().clone()
    dash.buttons["undo"].click()
    assert dash.controls.status_level == "error" and dash.status.startswith("Nothing to undo")
    assert "Traceback" not in dash.status and torch.equal(dash.trainer.W, W)


def test_undo_after_sgd_restores_W_exactly_and_drops_the_loss_point(dash):
    t = dash.trainer
    W0 = t.W.detach().clone()
    for name in PHASES[:-1]:
        dash.buttons[name].click()
    W_before = t.W.detach().clone()
    dash.buttons["sgd"].click()
    assert t.iteration == 1 and len(dash.plots.loss_line.x) == 1 and not torch.equal(t.W, W_before)
    dash.buttons["undo"].click()
    assert torch.equal(t.W, W_before) and t.iteration == 0 and t.history.loss == []
    assert len(dash.plots.loss_line.x) == 0, "the loss curve kept the undone point"
    assert dash.status.startswith("undo: back to before sgd") and dash.controls.status_level == "info"
    assert "iteration 0" in dash.controls.counter.value
    assert dash.buttons["sgd"].button_style == "primary"  # the phase it took back is next again
    for _ in PHASES[:-1]:
        dash.buttons["undo"].click()
    assert torch.equal(t.W, W0) and t.next_phase is Phase.NEXT_BATCH
    dash.buttons["undo"].click()
    assert dash.status.startswith("Nothing to undo")


def test_undo_after_iterations_moves_the_curves_back(dash):
    t = dash.trainer
    dash.run_for(3)
    losses = list(t.history.loss)
    for _ in range(5):  # one whole iteration, phase by phase
        dash.buttons["undo"].click()
    assert t.iteration == 2 and t.history.loss == losses[:2]
    assert list(dash.plots.loss_line.x) == [1, 2] and loss_points(dash)[-1] == np.float32(losses[1])
    dash.buttons["iteration"].click()  # and forward again: the same batch, the same loss, exactly
    assert t.history.loss == losses


def test_undo_during_play_pauses_first(digits):
    async def main():
        d = Dashboard(Trainer(digits, batch_size=64))
        d.play()
        await wait_until(lambda: d.trainer.iteration >= 5)
        n = d.trainer.iteration  # Play runs whole iterations: this click lands after an sgd
        d.buttons["undo"].click()
        assert not d.is_playing and d.trainer.iteration == n - 1 and d.status.startswith("undo: back to before sgd")
        await wait_until(lambda: d.player.task.done())
        assert d.trainer.iteration == n - 1, "Play went on after undo"
        assert d.buttons["play"].description.endswith("Play")
        d.close()

    asyncio.run(main())


def test_a_keyboard_interrupt_inside_play_pauses_with_the_message(digits, monkeypatch):
    """■ can land while ipykernel's own SIGINT handler is in place (just after a request): then the
    KeyboardInterrupt surfaces inside Play's task, which must stop with the message, not die silently."""
    async def main():
        d = Dashboard(Trainer(digits, batch_size=64))
        real, calls = d.trainer.train_step, []

        def interrupted_once():
            calls.append(1)
            if len(calls) == 5:
                raise KeyboardInterrupt
            return real()

        monkeypatch.setattr(d.trainer, "train_step", interrupted_once)
        d.play()
        await wait_until(lambda: len(calls) >= 5 and d.player.task.done())
        assert not d.is_playing and d.buttons["play"].description.endswith("Play")
        assert "kernel interrupt" in d.status and d.trainer.iteration == 4
        monkeypatch.undo()
        d.buttons["iteration"].click()  # still usable
        assert d.trainer.iteration == 5
        d.close()

    asyncio.run(main())


# ---- divergence: the explanation and the ways out ----
def test_lr_50_with_the_lesson_softmax_explains_and_offers_ways_out(dash):
    c, t = dash.controls, dash.trainer
    assert not visible(c.way_out)
    c.lr.value = 50  # the slider reaches 50 (and the Trainer takes it)
    assert t.lr == 50
    stopped = diverge(dash)
    assert "exp()" in dash.status and "overflow" in dash.status and "Ways out" in dash.status
    assert "color:#c00000" in c.status_html.value and "Traceback" not in c.status_html.value
    # read aloud: the cause and the ways out; the rows and images of the batch wait behind "details"
    assert "rows" not in dash.status and "rows" not in c.status_html.value and visible(c.details)
    c.details.value = True  # the whole explanation, in the same box (it grows to hold it; the first line on top)
    assert "rows" in dash.status and "rows" in c.status_html.value and "max-height:160px" in c.status_html.value
    c.details.value = False
    assert "rows" not in dash.status and "Ways out" in dash.status
    # lr 50 is the cause: the stable softmax alone would overflow again, the lr way out also takes the steps back
    assert visible(c.way_out) and not visible(dash.buttons["way_stable"])
    assert dash.buttons["way_lr"].description.startswith("↶ undo the")
    assert dash.buttons["way_lr"].description.endswith("at lr 50, lr → 0.1")
    # the curves hold only finite numbers: the diverged iteration was never recorded
    assert len(t.history.loss) == stopped and all(map(math.isfinite, t.history.loss))
    assert np.isfinite(dash.plots.loss_line.y).all() and np.isfinite(dash.plots.train_line.y).all()
    assert bool(torch.isfinite(t.W).all())


def test_play_stops_on_divergence_and_shows_the_ways_out(digits):
    async def main():
        d = Dashboard(Trainer(digits, lr=50, batch_size=64))
        d.play()
        await wait_until(lambda: not d.is_playing)
        assert d.controls.status_level == "error" and "overflow" in d.status and visible(d.controls.way_out)
        assert np.isfinite(d.plots.loss_line.y).all()
        d.close()

    asyncio.run(main())


def test_way_out_stable_softmax(dash):
    t = dash.trainer
    for _ in range(3):
        dash.buttons["iteration"].click()
    with torch.no_grad():
        t.b += 100  # every logit +100: the lesson's softmax overflows, the stable one does not mind
    diverge(dash)
    assert visible(dash.buttons["way_stable"])
    dash.buttons["way_stable"].click()
    assert t.softmax is model.stable_softmax and dash.controls.softmax.value == "stable"
    assert not visible(dash.controls.way_out) and dash.status.startswith("The stable softmax is on")
    dash.buttons["step"].click()  # the forward that overflowed now gives a finite loss
    assert t.last_phase is Phase.FORWARD and dash.controls.status_level == "info"


def test_way_out_lr_takes_back_the_large_steps_and_lowers_the_lr(dash):
    t = dash.trainer
    dash.controls.lr.value = 50
    weights = [t.W.detach().clone()]
    stopped = diverge(dash)
    dash.buttons["way_lr"].click()
    assert t.lr == 0.1 and dash.controls.lr.value == pytest.approx(0.1)
    assert t.iteration == 0 and torch.equal(t.W, weights[0]) and t.next_phase is Phase.SGD
    assert not visible(dash.controls.way_out) and dash.status.startswith(f"Took back the {stopped} sgd steps"
                                                                         if stopped > 1 else "Took back the sgd step")


def test_way_out_undo_goes_back_to_before_the_step_that_blew_up(dash):
    """lr 50, then the student lowers the lr by hand: W keeps what lr 50 made, so the next divergence offers to
    take those steps back (and no lower lr: 0.1 is the lesson's)."""
    t = dash.trainer
    dash.buttons["iteration"].click()
    dash.controls.lr.value = 50
    weights = [t.W.detach().clone()]
    diverge(dash)
    dash.controls.lr.value = 0.1
    with torch.no_grad():
        t.W *= 1  # written, to the same values: no change by hand
    dash.buttons["step"].click()  # the same forward overflows: W is what lr 50 made
    assert dash.controls.status_level == "error"
    assert visible(dash.buttons["way_undo"]) and not visible(dash.buttons["way_lr"])
    assert "lr 50" in dash.buttons["way_undo"].description
    dash.buttons["way_undo"].click()
    # just before the first step at lr 50: its batch, forward and gradients are back, sgd is lit
    assert t.iteration == 1 and torch.equal(t.W, weights[0]) and t.lr == 0.1
    assert t.next_phase is Phase.SGD and len(t.history.loss) == 1
    assert dash.buttons["sgd"].button_style == "primary"
    assert not visible(dash.controls.way_out) and dash.status.startswith("Took back the")
    assert "still" not in dash.controls.status_html.value
    assert dash.plots.w_range <= 2.5 * float(t.W.abs().max()), (dash.plots.w_range, float(t.W.abs().max()))
    for _ in range(20):
        dash.buttons["iteration"].click()
    assert dash.controls.status_level == "info" and t.iteration == 21


def test_the_ways_out_appear_for_a_divergence_driven_from_code(dash):
    t = dash.trainer
    t.lr = 50
    with pytest.raises(DivergenceError) as err:
        for _ in range(20):
            t.train_step()
    assert err.value.id == f"cause.{err.value.operation}"
    dash.push()  # code in a cell pushes by time; the kernel's loop would flush this a moment later
    assert visible(dash.controls.way_out) and dash.controls.status_level == "error"
    assert dash.controls.lr.value == 50
    t.reset()
    dash.push()
    assert not visible(dash.controls.way_out)


# ---- the softmax toggle ----
def test_softmax_toggle_both_ways_and_synced_from_code(dash):
    t, toggle = dash.trainer, dash.controls.softmax
    assert toggle.value == "lesson" and t.softmax is model.softmax
    toggle.value = "stable"
    assert t.softmax is model.stable_softmax and dash.status.startswith("softmax set to the stable softmax")
    toggle.value = "lesson"
    assert t.softmax is model.softmax and dash.status.startswith("softmax set to the lesson's softmax")
    t.use_stable_softmax()  # from code: the toggle follows
    dash.push()
    assert toggle.value == "stable"
    t.softmax = lambda X: torch.softmax(X, dim=1)  # a student's own, typed in a cell: neither lit, at once
    dash.push()
    assert toggle.value is None and t.softmax is not model.softmax
    assert dash.status.startswith("softmax set to your <lambda>: used from the next forward()")
    toggle.value = "lesson"  # choosing one replaces the student's
    assert t.softmax is model.softmax


# ---- keyboard ----
def test_keys_through_the_key_box_messages(dash):
    """The page sends each key it heard (after a click on the dashboard) as one message of the hidden key reader
    (an anywidget: ui/keys.js), acted on by the same table as handle_key."""
    t = dash.trainer
    box = dash.controls.keys
    assert box in descendants(dash) and box.layout.display == "none" and isinstance(box, KeyReader)
    assert box.pass_keys == PASS_KEYS and "[role=slider]" in box.controls
    js = (Path(softmax_widgets.ui.__file__).parent / "keys.js").read_text()
    assert box._esm == js and "export default" in js and "model.send(" in js
    press(dash, "s")
    assert t.last_phase is Phase.NEXT_BATCH and dash.status.startswith("next_batch")
    press(dash, "ArrowRight", code="ArrowRight")
    assert t.last_phase is Phase.FORWARD
    press(dash, "S", shiftKey=True)
    assert t.last_phase is Phase.ZERO_GRAD
    press(dash, "u")
    assert t.last_phase is Phase.FORWARD and dash.status.startswith("undo")
    press(dash, "s", ctrlKey=True)  # Ctrl+S is the browser's, not a step
    press(dash, "ArrowRight", repeat=True)  # a held arrow keeps stepping
    assert t.last_phase is Phase.ZERO_GRAD
    for _ in range(3):
        press(dash, "s")
    assert t.iteration == 1
    dash.controls.seed.value = 7  # typed but not applied: r resets with the Trainer's own seed
    W0 = Trainer(t.data, seed=0).W
    press(dash, "r")
    assert t.iteration == 0 and t.seed == 0 and torch.equal(t.W, W0) and dash.status.startswith("reset: seed 0")
    assert dash.controls.seed.value == 0


def test_an_unknown_key_says_which_keys_work_on_the_keys_line(dash):
    status = dash.controls.status_html.value
    assert dash.handle_key("x") is False
    hint = dash.controls.help.value
    assert html.escape("'x' does nothing here") in hint and KEYS_LIST in hint and "Escape" in hint
    assert dash.controls.status_html.value == status  # the status line keeps its message: nothing is glued on
    dash.buttons["next_batch"].click()  # the next action takes the hint away
    assert html.escape("does nothing") not in dash.controls.help.value and KEYS_HELP in dash.controls.help.value


def test_jupyterlab_keys_pass_through_and_modified_keys_are_silent(dash):
    """Shift-Enter runs the next cell even while the dashboard has the keys: the page script never takes Enter, Tab,
    Escape, a modifier or a key with one (it names them all), and the dashboard says nothing about those keys."""
    assert {"Enter", "Tab", "Escape", "Shift", "Control", "Alt", "Meta"} <= set(PASS_KEYS)
    reader = dash.controls.keys  # keys.js reads its pass keys from the reader's synced trait
    assert reader.pass_keys == PASS_KEYS and "!(e.ctrlKey || e.metaKey || e.altKey)" in reader._esm
    before = (dash.controls.status_html.value, dash.controls.help.value)
    for key, mods in (("Enter", {"shiftKey": True}), ("Enter", {}), ("Enter", {"ctrlKey": True}), ("Tab", {}),
                      ("Escape", {}), ("x", {"shiftKey": True}), ("c", {"ctrlKey": True}), ("v", {"metaKey": True}),
                      ("s", {"altKey": True}), ("r", {"ctrlKey": True})):
        press(dash, key, **mods)
        assert (dash.controls.status_html.value, dash.controls.help.value) == before, (key, mods)
    assert dash.trainer.last_phase is None and dash.trainer.iteration == 0


def test_a_key_hint_never_grows_a_divergence_message(dash):
    dash.controls.lr.value = 50
    diverge(dash)  # the red cause and the ways out
    red = dash.controls.status_html.value
    assert dash.controls.status_level == "error"
    press(dash, "x")
    assert dash.controls.status_html.value == red and "'x' does nothing here" in html.unescape(dash.controls.help.value)


def test_space_plays_and_pauses(digits):
    async def main():
        d = Dashboard(Trainer(digits, batch_size=64))
        press(d, " ", code="Space")
        assert d.is_playing
        await wait_until(lambda: d.trainer.iteration >= 3)
        press(d, " ", code="Space", repeat=True)  # a held Space does not flicker Play
        assert d.is_playing
        press(d, " ", code="Space")
        assert not d.is_playing
        await wait_until(lambda: d.player.task.done())
        n = d.trainer.iteration
        press(d, "u")  # undo while paused: one phase back
        assert d.trainer.iteration == n - 1
        d.close()

    asyncio.run(main())


def test_the_keys_line_says_how_to_arm_the_keys_and_how_to_give_them_back(dash):
    """No hover: the keys act after a click on the dashboard. The keys line holds both sentences; the page's CSS
    shows the one that is true (sw-keys-armed while the focus is inside the dashboard, outside its controls)."""
    line = dash.controls.help
    assert line in dash.children  # below the tabs
    assert "sw-keys-off" in line.value and html.escape(KEYS_HELP) in line.value
    assert "click the dashboard" in KEYS_HELP
    assert "sw-keys-on" in line.value and html.escape(KEYS_ON) in line.value and "Escape" in KEYS_ON
    assert "with the mouse over" not in line.value and set(KEYS.values()) == {"step", "play", "undo", "reset"}
    css = dash.controls.css.value
    assert ".sw-dashboard.sw-keys-armed .sw-keys-on {display: inline;}" in css
    assert ".sw-dashboard.sw-keys-armed {outline: 2px solid" in css  # the frame: the keys are armed
    # the script arms on focus, never on hover; a focused control (slider, text box, dropdown) keeps its keys
    box, js = dash.controls.keys, dash.controls.keys._esm
    assert "mouseenter" not in js and "mouseleave" not in js and "mouseover" not in js
    assert "input,textarea,select" in box.controls and 'model.get("controls")' in js


# ---- CSS classes, no tracebacks, closing ----
def test_stable_css_classes(dash):
    c, p = dash.controls, dash.plots
    assert "sw-dashboard" in dash._dom_classes and "sw-keys" in dash.keys_area._dom_classes
    for widget, name in ((c.status_html, "sw-status"), (c.counter, "sw-counter"), (c.widget, "sw-buttons"),
                         (c.way_out, "sw-way-out"), (c.softmax, "sw-softmax"), (p.loss_fig, "sw-loss")):
        assert name in widget._dom_classes, name
    assert all("sw-weights" in f._dom_classes for f in p.w_figs) and len(p.w_figs) == 10
    assert all("sw-grad" in f._dom_classes for f in p.g_figs)


def test_random_clicks_and_keys_never_raise(digits, caplog):
    d = Dashboard(Trainer(digits, batch_size=64))
    rng = random.Random(1)
    names = [*PHASES, "step", "iteration", "reset", "undo", "way_stable", "way_lr", "way_undo"]
    with caplog.at_level(logging.WARNING):
        for _ in range(300):
            r = rng.random()
            if r < 0.6:
                d.buttons[rng.choice(names)].click()
            elif r < 0.85:
                press(d, rng.choice(["s", "ArrowRight", "u", "r", "q", "Tab"]))
            elif r < 0.9:
                d.controls.softmax.value = rng.choice(["lesson", "stable"])
            else:
                d.controls.lr.value = rng.choice([0.01, 0.1, 50.0])
            assert "Traceback" not in d.controls.status_html.value
            assert bool(torch.isfinite(d.trainer.W).all())
    assert not [r for r in caplog.records if r.exc_info or "Exception" in r.getMessage()]
    d.close()


def test_close_closes_the_key_listener(digits):
    d = Dashboard(Trainer(digits))
    ev = d.controls.keys
    d.close()
    assert ev.comm is None and d.buttons["way_undo"].comm is None and d.controls.softmax.comm is None


# ---- a real kernel: keys arrive as the comm messages the page's key box sends ----
@pytest.mark.kernel
@pytest.mark.timeout(300)
def test_keys_by_comm_messages_in_a_real_kernel():
    pytest.importorskip("jupyter_client")
    from .kernel_client import run, start_kernel, value

    def key(kc, model_id, k):
        kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": model_id, "data": {
            "method": "custom", "content": key_message(k)}}))

    def settle(kc, cond_expr, timeout=30.0):
        end = time.monotonic() + timeout
        while not value(kc, cond_expr):
            assert time.monotonic() < end, f"timed out waiting for {cond_expr}"
            time.sleep(0.1)

    for _, kc in start_kernel():
        run(kc, "import torch; torch.set_num_threads(1)\n"
                "from softmax_widgets import Trainer, load_dataset\nfrom softmax_widgets.app import Dashboard\n"
                "dash = Dashboard(Trainer(load_dataset('digits'), batch_size=64))")
        # count what would reach the output area: tracebacks ipywidgets shows, errors the dashboard logs
        run(kc, "import logging\nip = get_ipython(); shown = []; _show = ip.showtraceback\n"
                "ip.showtraceback = lambda *a, **k: (shown.append(1), _show(*a, **k))\n"
                "class _Count(logging.Handler):\n    def emit(self, record): shown.append(record.getMessage())\n"
                "logging.getLogger().addHandler(_Count(logging.ERROR))")
        ev = value(kc, "dash.controls.keys.model_id")
        key(kc, ev, "s")
        settle(kc, "dash.trainer.last_phase == 'next_batch'")
        key(kc, ev, "ArrowRight")
        settle(kc, "dash.trainer.last_phase == 'forward'")
        key(kc, ev, " ")  # Play, on the kernel's loop
        settle(kc, "dash.is_playing and dash.trainer.iteration >= 3")
        key(kc, ev, " ")  # Pause
        settle(kc, "not dash.is_playing")
        time.sleep(0.3)
        n = value(kc, "dash.trainer.iteration")
        key(kc, ev, "u")
        settle(kc, "dash.status.startswith('undo')")
        assert value(kc, "dash.trainer.iteration") == n - 1
        key(kc, ev, "r")
        settle(kc, "dash.trainer.iteration == 0 and dash.status.startswith('reset')")
        key(kc, ev, "x")  # not a dashboard key: said in words, on the keys line
        settle(kc, "'does nothing here' in dash.controls.help.value")
        assert value(kc, "shown") == [], "a traceback or logged error reached the output area"


def test_the_w_colour_scale_follows_w_down_after_an_undone_blow_up(dash):
    """One Iteration at lr 100 blows W up; undo takes it back, and the maps must not stay blank on a ±127 scale."""
    t, p = dash.trainer, dash.plots
    for _ in range(3):
        dash.buttons["iteration"].click()
    dash.controls.lr.value = 100
    dash.buttons["iteration"].click()
    assert p.w_range >= 1.0, p.w_range  # W took a huge step: the scale followed it up
    dash.buttons["undo"].click()  # back to before that sgd
    assert t.next_phase is Phase.SGD and float(t.W.abs().max()) < 1
    dash.controls.lr.value = 0.1
    dash.buttons["iteration"].click()
    top = float(t.W.abs().max())
    assert top <= p.w_range <= 4 * top, (p.w_range, top)
    assert np.abs(np.stack([m.color for m in p.w_maps])).max() >= 40  # the strongest weights are coloured


def test_colour_scale_hysteresis_keeps_play_steady(dash):
    """Small ups and downs of |W| during Play do not move the scale: it shrinks only below a quarter."""
    p = dash.plots
    dash.run_for(20)
    m = p.w_range
    values = [m * f for f in (0.9, 0.5, 0.3, 0.26)]
    for v in values:
        assert p._range(p.w_scale, np.array([v], np.float32)) == m
    assert p._range(p.w_scale, np.array([m * 0.2], np.float32)) < m


def test_the_tab_below_follows_the_clicked_phase(dash):
    """next_batch and forward move the batch strip, zero_grad and backward W.grad: a click opens that tab, unless
    the student opened another one (evaluation, compare...) on purpose; with no pane open, a click opens none (the
    cell below the dashboard stays on the screen)."""
    views = dash.views
    assert views.shown is None
    dash.buttons["next_batch"].click()
    assert views.shown is None
    views.select("W.grad")
    dash.buttons["forward"].click()
    assert views.shown == "batch" and dash.plots.img_figs[0].title != "—"  # drawn as the tab opened
    dash.buttons["zero_grad"].click()
    assert views.shown == "W.grad"
    views.select("evaluation")
    dash.buttons["backward"].click()
    assert views.shown == "evaluation"


def test_a_stale_error_is_replaced_by_what_code_does_next(dash):
    """Issue 13: after a refused click, the cells that drive the Trainer from code must show on the status line."""
    for name in [*PHASES, "sgd"]:
        dash.buttons[name].click()
    assert dash.controls.status_level == "error" and "already applied" in dash.status
    t = dash.trainer
    t.next_batch(); t.forward(); t.backward(); t.sgd()  # noqa: E702  the notebook's cell, zero_grad skipped
    dash.push()
    assert dash.controls.status_level != "error", dash.status
    assert "accumulated" in dash.controls.status_html.value or dash.status.startswith("sgd")


def test_the_same_key_twice_acts_twice_and_a_broken_message_is_ignored(dash):
    """Each press is its own message (the page numbers them): s, s steps twice; a message that is not a key (an old
    page, a hand-made one) changes nothing and raises nothing."""
    press(dash, "s")
    press(dash, "s")
    assert dash.trainer.last_phase is Phase.FORWARD
    for junk in ("not json", [1, 2], "", None, {}, {"key": 3}):
        send(dash, junk)
    assert dash.trainer.last_phase is Phase.FORWARD and dash.controls.status_level != "error"


def test_keep_this_run_beside_the_live_plots(dash):
    """Issue 13: a kept run's loss stays on the live loss figure (dashed) and is named under the W maps."""
    dash.keep.click()
    assert dash.controls.status_level != "error" and "Nothing to keep yet" in dash.controls.status_html.value
    dash.run_for(30)
    dash.keep.click()
    assert "kept lr 0.1, batch 64" in dash.controls.status_html.value
    lines = list(dash.plots.run_lines.values())
    assert len(lines) == 1 and lines[0].line_style == "dashed" and dash.plots.loss_fig.marks[-1] is dash.plots.loss_line
    assert len(lines[0].x) == 30 and "lr 0.1, batch 64" in dash.plots.runs_legend.value
    dash.views.runs.clear()
    assert not dash.plots.run_lines and list(dash.plots.loss_fig.marks) == [dash.plots.loss_line]


# ---- the ways out follow the event; lr and seed boxes; pause; a loaded run; the focus frame ----
def test_the_ways_out_are_those_the_event_names(dash):
    """A bias shift at iteration 0 (no sgd yet): no "lr × 0.1", no "back to before the last sgd"."""
    t, b = dash.trainer, dash.buttons
    dash.buttons["next_batch"].click()
    with torch.no_grad():
        t.b += 1e30  # the logits overflow float32 before any step: the lr is not the cause
    dash.buttons["forward"].click()
    ways = dash.status_line.last_event.detail["ways_out"]
    assert dash.status_line.diverged and "lower_lr" not in ways and visible(dash.controls.way_out)
    for code, name in (("stable_softmax", "way_stable"), ("lower_lr", "way_lr"), ("reset", "way_reset")):
        assert visible(b[name]) == (code in ways), (code, ways)
    assert visible(b["way_undo"]) == ("undo" in ways and t.snapshots.iterations > 0)
    if "reset" in ways:
        b["way_reset"].click()
        assert t.iteration == 0 and t.last_phase is None and bool(torch.isfinite(t.b).all())


def test_the_way_back_shows_only_when_undo_can_go_back(dash):
    dash.controls.lr.value = 50
    diverge(dash)
    ways = dash.status_line.last_event.detail["ways"]
    assert ways[0]["code"] == "lower_lr" and ways[0]["steps"] >= 1 and visible(dash.buttons["way_lr"])
    t = dash.trainer
    t.snapshots.clear()  # undo cannot reach the steps any more: no way out that takes them back
    dash.buttons["step"].click()
    assert [w["code"] for w in dash.status_line.view().ways] == ["reset"] and not visible(dash.buttons["way_lr"])
    assert dash.buttons["way_reset"].description == "Reset, lr → 0.1"


def test_the_lr_box_sets_the_trainers_lr_or_says_why_not(dash):
    c, t = dash.controls, dash.trainer
    assert not c.lr.readout  # the slider's own readout looked editable and ignored what was typed
    c.lr_text.value = "0.03"  # typed, then Enter
    assert t.lr == 0.03 and c.lr.value == 0.03 and dash.status == "learning rate set to 0.03"
    c.lr_text.value = "-1"
    assert t.lr == 0.03 and c.lr_text.value == "0.03" and c.status_level == "error" and "learning rate" in dash.status
    c.lr_text.value = "fast"
    assert t.lr == 0.03 and c.lr_text.value == "0.03" and "not a number" in dash.status
    c.lr.value = 0.5  # the slider moves the box too
    assert t.lr == 0.5 and c.lr_text.value == "0.5"
    t.lr = 2.5  # code moves both
    dash.push()
    assert c.lr.value == 2.5 and c.lr_text.value == "2.5"


def test_the_seed_box_says_what_it_is_for_and_refuses_a_negative_seed(dash):
    c, t = dash.controls, dash.trainer
    c.seed.value = 5
    assert dash.status.startswith("seed 5: used by Reset") and "New seed" in dash.status and t.seed == 0
    c.seed.value = -3
    assert c.seed.value == 5 and c.status_level == "error" and "seed -3 is refused" in dash.status
    dash.buttons["reset"].click()
    assert t.seed == 5 and dash.status.startswith("reset: seed 5")


def test_pause_says_where_the_run_stopped(digits):
    async def main():
        d = Dashboard(Trainer(digits, batch_size=64))
        d.buttons["play"].click()
        await wait_until(lambda: d.trainer.iteration >= 3)
        d.buttons["play"].click()
        await wait_until(lambda: d.controls.buttons["play"].description.endswith("Play"))
        t = d.trainer
        assert d.status == f"paused at iteration {t.iteration} (epoch {t.epoch + 1}) — ▶ Play goes on"
        d.buttons["step"].click()  # the next action replaces it
        assert not d.status.startswith("paused")
        d.close()

    asyncio.run(main())


def test_a_dashboard_on_a_loaded_run_names_the_lit_phase(digits, tmp_path):
    t = Trainer(digits, batch_size=64)
    t.fit(2)
    t.next_batch()
    t.forward()
    t.save(tmp_path / "lesson.pt")
    loaded = Trainer.load(tmp_path / "lesson.pt", data=digits)
    d = Dashboard(loaded)
    assert loaded.next_phase is Phase.ZERO_GRAD and d.buttons["zero_grad"].button_style == "primary"
    assert "press next_batch" not in d.status and "under way" in d.status
    assert loaded.where() in d.status and "Press zero_grad" in d.status
    d.close()


def test_the_math_line_follows_the_code_line_on_one_push(dash):
    t = dash.trainer
    assert dash.math._on_change not in t._listeners._callbacks  # no timer of its own: drawn with the code
    dash.buttons["next_batch"].click()
    dash.buttons["forward"].click()
    code, math_text = dash.controls.code.value, dash.math.text
    assert "y_hat = net(X)" in html.unescape(code) and "title=" in code  # cut with "…", whole as a tooltip
    t.zero_grad()  # from code: neither line moves until the dashboard pushes
    assert dash.controls.code.value == code and dash.math.text == math_text
    dash.push()
    assert "zero_" in dash.controls.code.value and dash.math.text != math_text


def test_the_status_box_grows_then_scrolls_with_a_visible_bar_and_no_focus_frame(dash):
    """Three lines high at least, growing with a longer message up to eight lines (a divergence's details: all of
    it in view), above which it scrolls with its bar drawn. Nothing fixes its height or hides what overflows; the
    browser measures it in tests/browser/test_layout_browser.py."""
    from softmax_widgets.ui.controls import STATUS_CHARS

    c = dash.controls
    dash.controls.lr.value = 50
    diverge(dash)
    c.details.value = True
    box = c.status_html.value
    assert "min-height:60px;max-height:160px;overflow-y:auto" in box and ";height:" not in box
    assert c.status_html.layout.height is None and c.status_html.layout.overflow is None
    assert c.readout.layout.height is None and c.readout.layout.overflow is None  # the readout grows with it
    assert f"title='{html.escape(dash.status)}" in c.status_html.value  # and the whole text is its tooltip
    dash.buttons["undo"].click()
    assert "overflow-y:auto" in c.status_html.value
    dash.say("a long story " * (STATUS_CHARS // 10))  # more than eight lines: a visible scrollbar
    assert "overflow-y:scroll" in c.status_html.value
    assert c.css in c.widget.children and "outline: none" in c.css.value and "sw-keys-armed" in c.css.value


def test_a_warning_leaves_the_status_once_the_phases_after_it_have_run(dash):
    """Notebook 03 Run All: `b += 100`, then 50 iterations in code; the status still said 'b was changed … puts the
    old ones back' at iteration 50, where undo would take back the last phase, not the change."""
    t = dash.trainer
    t.train_step()
    with torch.no_grad():
        t.b += 0.5  # a change by hand that keeps the lesson's softmax finite
    t.next_batch()
    dash.push()
    assert "changed outside the phases" in dash.controls.status_html.value  # said with the phase it came before
    with torch.no_grad():
        t.b -= 0.5  # again, and this time the cell trains on before anything is drawn (as a for loop does)
    for _ in range(3):
        t.train_step()
    dash.push()
    assert "changed outside the phases" not in dash.controls.status_html.value
    assert "iteration 4 done" in dash.status  # the status is about what ran last


def test_the_way_out_of_a_students_wild_sgd_takes_its_steps_back_and_puts_the_lessons_sgd_back():
    dash = Dashboard(Trainer("fashion-mnist-small", seed=0))  # 784 inputs: 256 times the step overflows at once
    t = dash.trainer

    def sgd_no_batch(params, lr, batch_size):
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad

    t.optimizer = sgd_no_batch
    for _ in range(400):
        dash.buttons["iteration"].click()
        if dash.controls.status_level == "error":
            break
    assert dash.controls.status_level == "error" and "does not divide by batch_size" in dash.status
    assert "lower" not in dash.status  # the lr is not blamed
    dash.controls.buttons["way_undo"].click()
    assert t.optimizer is model.sgd and t.wild_steps == 0 and float(t.W.detach().abs().max()) < 0.2
    assert "put the lesson's sgd back" in dash.status
    for _ in range(5):
        dash.buttons["iteration"].click()
    assert dash.controls.status_level != "error" and "W -= 0.1 · W.grad / 256" in dash.status
    dash.close()
