"""The dashboard without a browser: real widgets, real Trainer; clicks via Button.click()."""

from __future__ import annotations

import asyncio
import logging
import random

import numpy as np
import pytest
import torch

from softmax_widgets import Phase, Trainer
from softmax_widgets.app import Dashboard
from softmax_widgets.ui.controls import PAUSE, PLAY
from softmax_widgets.ui.plots import MAX_POINTS, decimate_indices, nice_ceil
from tests.conftest import wait_until

PHASES = [p.value for p in Phase]
CLICKABLE = [*PHASES, "step", "iteration", "reset"]
# states a student can reach with the phase buttons (prefixes of the loop, plus the classic mistakes)
STATES = [[], ["next_batch"], ["next_batch", "forward"], ["next_batch", "forward", "zero_grad"],
          ["next_batch", "forward", "zero_grad", "backward"], [*PHASES],
          ["next_batch", "forward", "zero_grad", "backward", "zero_grad"],
          ["next_batch", "forward", "backward"], ["next_batch", "forward", "zero_grad", "backward", "forward"]]


@pytest.fixture(scope="module")
def shared(digits):
    d = Dashboard(Trainer(digits, seed=0))
    yield d
    d.close()


@pytest.fixture
def fresh(shared):
    """The module's dashboard, reset as a student would (building ~40 figures per case is slow)."""
    shared.buttons["reset"].click()
    assert shared.trainer.iteration == 0 and shared.controls.status_level == "info"
    return shared


@pytest.fixture
def dash(digits):
    d = Dashboard(Trainer(digits, seed=0))
    yield d
    d.close()


def trainer_state(t: Trainer):
    return (t.W.detach().clone(), t.b.detach().clone(), t.iteration, t.epoch, t.next_phase, t.last_phase,
            None if t.W.grad is None else t.W.grad.clone(), t.position)


def same_trainer(a, b) -> bool:
    (wa, ba, *ra, ga, pa), (wb, bb, *rb, gb, pb) = a, b
    grads = (ga is None and gb is None) or (ga is not None and gb is not None and torch.equal(ga, gb))
    return torch.equal(wa, wb) and torch.equal(ba, bb) and ra == rb and grads and pa == pb


def view(d: Dashboard) -> dict:
    """What the browser holds for each mark, as plain numbers (after opening the tabs that hold W.grad and the
    batch: a closed tab's heatmaps are pushed when it opens)."""
    for name in ("batch", "W.grad"):
        d.views.select(name)
    p = d.plots
    return {
        "loss": (p.loss_line.x.copy(), p.loss_line.y.copy()),
        "acc": (p.train_line.y.copy(), p.test_line.y.copy()),
        "W": np.stack([m.color for m in p.w_maps]), "b": p.bias_bars.y.copy(),
        "grad": np.stack([m.color for m in p.g_maps]),
        "batch": np.stack([m.color for m in p.img_maps]), "probs": np.stack([b.y for b in p.prob_bars]),
        "titles": [f.title for f in p.img_figs], "grad_note": p.g_note.value,
    }


def changed(a: dict, b: dict) -> set[str]:
    out = set()
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, tuple):
            if any(u.shape != v.shape or not np.array_equal(u, v) for u, v in zip(x, y, strict=True)):
                out.add(k)
        elif isinstance(x, np.ndarray):
            if x.shape != y.shape or not np.array_equal(x, y):
                out.add(k)
        elif x != y:
            out.add(k)
    return out


# what each button must visibly move when it works
EXPECT = {"next_batch": {"batch"}, "forward": {"probs"}, "backward": {"grad"}, "sgd": {"W", "loss"},
          "iteration": {"W", "loss"}}


@pytest.mark.parametrize("state", STATES, ids=lambda s: "+".join(s) or "fresh")
@pytest.mark.parametrize("button", CLICKABLE)
def test_every_button_in_every_state_moves_the_plots_or_explains_in_red(fresh, state, button):
    dash = fresh
    for name in state:
        dash.buttons[name].click()
        assert dash.controls.status_level != "error", (name, dash.status)
    t = dash.trainer
    before, seen = trainer_state(t), view(dash)
    events = []
    t.on_change(lambda _, e: events.append(e))
    dash.buttons[button].click()
    after = trainer_state(t)
    if dash.controls.status_level == "error":
        assert same_trainer(before, after), f"{button} failed but changed the Trainer"
        assert "color:#c00000" in dash.controls.status_html.value
        assert "Traceback" not in dash.status and dash.status.endswith(".")
        return
    moved = changed(seen, view(dash))
    if button == "reset":
        assert t.iteration == 0 and t.last_phase is None
        if state:
            assert moved, "reset did not redraw"
        return
    assert any(e.kind == "phase" for e in events), f"{button} neither ran nor explained why"
    ran = t.last_phase.value if button in ("step",) else button
    expect = EXPECT.get(ran, set())
    if ran == "forward" and "forward" in state[max(i for i, n in enumerate(state) if n == "next_batch"):]:
        expect = set()  # the same W on the same batch: the same probabilities (status says forward ran)
    assert moved >= expect, (button, moved)
    if ran == "zero_grad":
        assert not np.any(view(dash)["grad"]) and "zero" in dash.plots.g_note.value
    assert moved or ran in ("zero_grad", "forward"), f"{button} changed nothing on screen"
    assert dash.buttons[t.next_phase.value].button_style == "primary"
    assert sum(dash.buttons[p].button_style == "primary" for p in PHASES) == 1
    assert t.last_phase.value in dash.status


def test_out_of_order_clicks_say_what_to_do(dash):
    dash.buttons["sgd"].click()
    assert dash.controls.status_level == "error" and "backward" in dash.status
    dash.buttons["forward"].click()
    assert "next_batch" in dash.status
    dash.buttons["next_batch"].click()
    assert dash.controls.status_level == "info" and dash.status.startswith("next_batch")
    assert "X, y" in dash.controls.code.value  # the line of the lesson that just ran


def test_skipping_zero_grad_shows_the_accumulation_warning(dash):
    for name in [*PHASES, "next_batch", "forward", "backward", "sgd"]:
        dash.buttons[name].click()
    assert "accumulated over 2 backward passes" in dash.controls.status_html.value


def test_lr_slider_and_batch_size_box_are_validated(dash):
    t, c = dash.trainer, dash.controls
    c.lr.value = 0.5
    assert t.lr == pytest.approx(0.5)
    c.batch_size.value = 0
    assert c.status_level == "error" and "batch size" in dash.status
    assert c.batch_size.value == 256 and t.batch_size == 256  # reverted, Trainer untouched
    c.batch_size.value = 10**9
    assert c.status_level == "error" and c.batch_size.value == 256
    c.batch_size.value = 64
    assert t.batch_size == 64 and c.status_level == "info"
    dash.buttons["next_batch"].click()
    assert len(t.y) == 64
    t.lr = 0.02  # changed from code: the widget follows
    dash.push()
    assert c.lr.value == pytest.approx(0.02)


def test_curves_are_decimated_and_end_on_the_exact_last_point(dash):
    assert dash.run_for(700) == 700
    h, line = dash.trainer.history, dash.plots.loss_line
    assert len(line.x) <= MAX_POINTS and line.x.dtype == np.float32 and line.y.dtype == np.float32
    assert line.x[-1] == dash.trainer.iteration and line.y[0, -1] == np.float32(h.loss[-1])
    assert len(dash.plots.test_line.x) == dash.trainer.epoch > 0
    assert list(dash.plots.test_line.x) == h.epoch_iteration


def test_decimation_and_scale_helpers():
    for n in [0, 1, 299, 300, 301, 1000, 12345]:
        idx = decimate_indices(n)
        assert len(idx) <= MAX_POINTS and (n == 0 or idx[-1] == n - 1)
        assert np.all(np.diff(idx) > 0)
    assert set(decimate_indices(5000)[:-1]) <= set(decimate_indices(5001))  # points stay put as n grows
    assert [nice_ceil(x) for x in (0.03, 0.05, 0.051, 0.7, 3)] == [0.05, 0.05, 0.1, 1, 5]


def test_heatmaps_share_one_symmetric_scale_titled_by_class(dash, digits):
    p = dash.plots
    assert [f.title for f in p.w_figs] == digits.classes
    # one fixed scale: every map's colour scale has the same limits, symmetric around 0 (white), and never moves
    scales = {(m.scales["color"].scheme, m.scales["color"].min, m.scales["color"].max) for m in p.w_maps}
    assert scales == {("RdBu", p.w_scale.min, p.w_scale.max)}
    assert p.w_scale.min == -p.w_scale.max and p.w_scale.mid == 0
    assert all(m.color.shape == digits.image_shape for m in p.w_maps)
    dash.run_for(30)
    W = dash.trainer.W.detach().numpy()
    assert p.w_range >= np.quantile(np.abs(W), 0.99)  # the trained W is visible, not saturated
    k = int(np.argmax(np.abs(W[:, 3])))  # the strongest pixel of class 3 has the strongest colour
    assert abs(int(p.w_maps[3].color.reshape(-1)[k])) == max(abs(int(v)) for v in p.w_maps[3].color.reshape(-1))


def test_batch_strip_marks_mistakes(dash):
    dash.views.select("batch")  # the strip is drawn while its tab is open
    for name in ["next_batch", "forward"]:
        dash.buttons[name].click()
    t, p = dash.trainer, dash.plots
    pred = t.y_hat.argmax(1)
    for i, fig in enumerate(p.img_figs):
        ok = bool(pred[i] == t.y[i])
        assert fig.title.startswith("✓" if ok else "✗")
        np.testing.assert_allclose(p.prob_bars[i].y, t.y_hat[i].detach().numpy(), rtol=1e-6)
        assert np.flatnonzero(p.true_bars[i].y).tolist() == [int(t.y[i])]  # green: the true class
        assert np.flatnonzero(p.wrong_bars[i].y).tolist() == ([] if ok else [int(pred[i])])  # red: a wrong guess


def test_random_click_sequences_never_raise(digits, caplog):
    d = Dashboard(Trainer(digits, batch_size=300))
    rng = random.Random(0)
    with caplog.at_level(logging.WARNING):
        for _ in range(300):
            d.buttons[rng.choice([*CLICKABLE, "new_seed"])].click()
            if rng.random() < 0.05:
                d.controls.batch_size.value = rng.choice([-1, 0, 1, 50, 5000])
            if rng.random() < 0.05:
                d.controls.lr.value = rng.choice([1e-4, 0.1, 10.0])
    assert not [r for r in caplog.records if "Exception in callback" in r.getMessage()
                or "dashboard update failed" in r.getMessage()]
    d.close()


def test_close_unsubscribes_and_closes_the_widgets(digits):
    t = Trainer(digits)
    n = t.listener_count
    d = Dashboard(t)
    assert t.listener_count > n
    d.close()
    assert t.listener_count == n and d.plots.w_maps[0].comm is None and d.buttons["play"].comm is None


def test_from_dataset_falls_back_to_the_bundled_fashion_subset_with_a_note(tmp_path):
    d = Dashboard.from_dataset("fashion-mnist", root=tmp_path, download=False, batch_size=64)
    assert d.trainer.data.name == "fashion-mnist-small" and d.trainer.batch_size == 64
    note = d.controls.note.value
    # one short line above the buttons (load_or_offline's note; its .details, with root=, belong in a tooltip)
    assert "6,000-image subset" in note and "SOFTMAX_WIDGETS_DATA" in note
    assert "title=" in note and "root=" in note.split("title=", 1)[1]  # the details: a tooltip
    d.close()


# ---- Play: an asyncio task on the loop that built the dashboard (the kernel's, in a notebook) ----
def test_play_pause_on_the_event_loop(digits):
    async def main():
        d = Dashboard(Trainer(digits))
        d.buttons["play"].click()
        assert d.is_playing and d.buttons["play"].description == PAUSE
        await wait_until(lambda: d.trainer.iteration >= 20)
        d.controls.lr.value = 0.01  # takes effect at the next iteration, no reset
        await asyncio.sleep(0.05)
        assert d.trainer.lr == pytest.approx(0.01) and d.is_playing
        d.buttons["play"].click()  # Pause
        assert not d.is_playing and d.buttons["play"].description == PLAY
        await asyncio.sleep(0.1)
        n = d.trainer.iteration
        await asyncio.sleep(0.2)
        assert d.trainer.iteration == n and d.last_step_time <= d.pause_time
        assert d.plots.loss_line.x[-1] == n  # the final push after pause shows the last iteration
        d.close()

    asyncio.run(main())


def test_pause_at_max_speed_is_said_on_the_status_line_after_the_step_in_progress(digits):
    """At max speed the step in progress when Pause lands finishes after the click: its event replaced "paused at
    ..." with "sgd: ... iteration N done" (4 pauses in 5), and only the button said Play had stopped."""
    async def main():
        d = Dashboard(Trainer(digits, batch_size=64))
        d.controls.speed.value = "max"
        d.buttons["play"].click()
        await wait_until(lambda: d.trainer.iteration >= 5)
        d.buttons["play"].click()  # Pause: the flag is cleared, Play's task has not seen it yet
        d.player.driving = True  # ... and the step it was running ends now, as Play's own step
        d.trainer.train_step()
        d.player.driving = False
        await wait_until(lambda: d.player.task.done())
        assert d.status == f"paused at iteration {d.trainer.iteration} (epoch {d.trainer.epoch + 1}) — ▶ Play goes on"
        assert d.controls.status_level == "info" and d.buttons["play"].description == PLAY
        d.close()

    asyncio.run(main())


def test_slow_play_walks_phase_by_phase(digits):
    async def main():
        d = Dashboard(Trainer(digits))
        d.controls.speed.value = "2"  # 2 iterations/s = 10 phases/s: each button lights in turn
        lit = []
        d.trainer.on_change(lambda t, e: lit.append(d.buttons[t.next_phase.value].button_style))
        d.play()
        await wait_until(lambda: d.trainer.last_phase is Phase.ZERO_GRAD)
        d.pause()
        await asyncio.sleep(0.1)
        t = d.trainer
        assert t.iteration == 0 and t.last_phase is Phase.ZERO_GRAD  # stopped inside an iteration
        assert d.buttons["backward"].button_style == "primary"
        d.close()

    asyncio.run(main())


def test_run_epoch_button_and_errors_stop_play(digits):
    async def main():
        d = Dashboard(Trainer(digits))
        d.buttons["epoch"].click()
        await wait_until(lambda: not d.is_playing)
        assert d.trainer.epoch == 1 and len(d.plots.test_line.y) == 1
        d.trainer.loss_fn = lambda y_hat, y: 1 / 0  # a student's broken loss
        d.play()
        await wait_until(lambda: not d.is_playing)
        assert d.controls.status_level == "error" and "loss_fn" in d.status
        assert "Traceback" not in d.controls.status_html.value
        d.close()

    asyncio.run(main())


@pytest.mark.slow
def test_a_student_who_only_clicks_play_completes_the_lesson(fashion):
    """Five epochs through Play land in the lesson's band, and every plot moved."""

    async def main():
        d = Dashboard(Trainer(fashion, lr=0.1, batch_size=256, seed=0))
        start = view(d)
        d.play()
        await wait_until(lambda: d.trainer.epoch >= 5, timeout=600)
        d.pause()
        await wait_until(lambda: d.player.task is None or d.player.task.done())
        acc = d.trainer.history.test_acc[4]
        assert 0.80 <= acc <= 0.85, acc
        assert changed(start, view(d)) >= {"loss", "acc", "W", "b", "grad", "batch", "probs"}
        assert d.plots.test_line.y[4] == pytest.approx(acc)
        d.close()

    asyncio.run(main())


def test_divergence_stops_play_and_says_the_way_out(digits):
    async def main():
        d = Dashboard(Trainer(digits, lr=1000.0))  # far too large: the naive softmax overflows
        d.play()
        await wait_until(lambda: not d.is_playing)
        assert d.controls.status_level == "error" and "lr → 0.1" in d.status
        assert d.buttons["play"].description == PLAY
        d.buttons["reset"].click()  # the way out works from the dashboard too
        d.controls.lr.value = 0.1
        d.buttons["iteration"].click()
        assert d.controls.status_level == "info" and d.trainer.iteration == 1
        d.close()

    asyncio.run(main())


def test_the_smoothed_curve_has_no_kink_where_a_window_would_fill(dash):
    """Issue 13: a 50-point running mean turns a corner at iteration 50 (its slope jumps from 1/2 to 1 on a
    ramp); the debiased moving average bends smoothly, from the first point on."""
    from softmax_widgets.ui.plots import debias, smoothed

    ramp = np.arange(200, dtype=np.float64)
    curve = debias(smoothed(ramp), np.arange(200)).astype(np.float64)
    bend = np.abs(np.diff(curve, 2))
    assert bend.max() < 0.05, bend.argmax()
    assert curve[0] == 0 and 170 < curve[-1] < 175  # lags ~25 iterations, like a 50-point window
    dash.run_for(5)
    line = dash.plots.loss_line
    np.testing.assert_allclose(line.y[1], debias(smoothed(np.array(dash.trainer.history.loss)), np.arange(5)),
                               rtol=1e-5)
