"""Every way out of a divergence gets the student out: lr 10 during Play with the lesson's softmax, a bias set by
hand, then one click on what the dashboard offers, and training goes on. Headless: real widgets, real Trainer."""

from __future__ import annotations

import re

import pytest
import torch

from softmax_widgets import DivergenceError, Phase, Trainer, load_dataset, model
from softmax_widgets.app import Dashboard

WAYS = ("way_lr", "way_undo", "way_stable", "way_reset")


@pytest.fixture(scope="module", params=["digits", "fashion-mnist-small"])
def data(request):
    return load_dataset(request.param)


def visible(widget) -> bool:
    return widget.layout.display != "none"


def shown_ways(d: Dashboard) -> list[str]:
    """The way-out buttons a student sees, left to right."""
    return [w.description for w in d.controls.way_out.children[1:-1] if visible(w)]


def lesson_then_lr(d: Dashboard, lr: float, lesson_iterations: int = 5, limit: int = 60) -> int:
    """The tester's path: a few iterations at the lesson's lr 0.1, then the lr slider to `lr` during Play, until it
    diverges; returns the iterations taken at `lr`."""
    d.run_for(lesson_iterations)
    assert d.trainer.iteration == lesson_iterations and d.controls.status_level != "error"
    d.controls.lr.value = lr
    start = d.trainer.iteration
    d.run_for(limit)
    assert d.controls.status_level == "error" and visible(d.controls.way_out), f"no divergence at lr {lr}"
    return d.trainer.iteration - start


def trains_on(d: Dashboard, iterations: int = 60) -> None:
    """Play at the settings the way out left: no divergence, every step recorded."""
    start = d.trainer.iteration
    assert d.run_for(iterations) == iterations, d.status
    assert d.controls.status_level != "error" and d.trainer.iteration == start + iterations


def assert_names_only_shown_buttons(d: Dashboard) -> None:
    """Every button the status names in quotes is one the student can see."""
    named = re.findall(r"“([^”]+)”", d.status)
    shown = shown_ways(d) if visible(d.controls.way_out) else []
    assert all(name in shown for name in named), (named, shown, d.status)


def blown_up_after_five_iterations(data) -> tuple[Dashboard, Trainer, torch.Tensor]:
    """Five iterations at the lesson's lr (W then kept), then lr 10 until it diverges."""
    d = Dashboard(Trainer(data, batch_size=64))
    t = d.trainer
    d.run_for(5)
    W5 = t.W.detach().clone()
    d.controls.lr.value = 10
    d.run_for(60)
    assert d.controls.status_level == "error"
    return d, t, W5


def test_the_lr_way_out_takes_back_the_large_steps_too_so_training_goes_on_without_diverging(data):
    d, t, W5 = blown_up_after_five_iterations(data)
    taken = t.iteration - 5
    label = d.buttons["way_lr"].description
    # one click, and its words say both halves: the steps at lr 10 taken back, the lr lowered
    steps = "the sgd step" if taken == 1 else f"the {taken} sgd steps"
    assert visible(d.buttons["way_lr"]) and label == f"↶ undo {steps} at lr 10, lr → 0.1", label
    d.buttons["way_lr"].click()
    assert t.lr == 0.1 and t.iteration == 5 and torch.equal(t.W, W5), "W is not back to before the blow-up"
    assert "Took back" in d.status and "lr → 0.1" in d.status and not visible(d.controls.way_out)
    trains_on(d)
    d.close()


def test_the_reset_way_out_resets_to_an_lr_that_works_and_says_what_it_keeps(data):
    d = Dashboard(Trainer(data, batch_size=64))
    t = d.trainer
    lesson_then_lr(d, 10)
    assert d.buttons["way_reset"].description == "Reset, lr → 0.1"
    d.buttons["way_reset"].click()
    assert t.iteration == 0 and t.lr == 0.1 and d.controls.lr.value == 0.1
    assert "lr → 0.1" in d.status and "kept: the lesson's softmax" in d.status, d.status
    trains_on(d)
    # the same from a run that started at lr 10 (no lower lr in its past): the lesson's 0.1
    d.controls.lr.value = 10
    t.reset()
    d.run_for(60)
    assert d.controls.status_level == "error" and d.buttons["way_reset"].description == "Reset, lr → 0.1"
    d.buttons["way_reset"].click()
    trains_on(d)
    d.close()


def test_after_a_way_out_at_the_lessons_lr_no_lr_warning_and_no_hidden_button_is_named(data):
    """The student lowers the lr back to 0.1 by hand after lr 10 blew W up: the next divergence blames the steps
    at lr 10, offers to take them back (no "lower it" at the lesson's own lr), and names only buttons it shows."""
    d, t, W5 = blown_up_after_five_iterations(data)
    assert_names_only_shown_buttons(d)
    d.controls.lr.value = 0.1  # by hand: W keeps what lr 10 made
    d.run_for(60)
    if d.controls.status_level == "error":  # W too large for lr 0.1 too: the way out is the undo alone
        assert_names_only_shown_buttons(d)
        assert not visible(d.buttons["way_lr"]) and visible(d.buttons["way_undo"])
        assert d.buttons["way_undo"].description.startswith("↶ undo the") and "lr 10" in \
            d.buttons["way_undo"].description and "lr →" not in d.buttons["way_undo"].description
        d.buttons["way_undo"].click()
        assert torch.equal(t.W, W5) and t.lr == 0.1
    html = d.controls.status_html.value
    assert "still" not in html and "lower it" not in html.lower() and "× 0.1" not in html, html
    assert_names_only_shown_buttons(d)
    trains_on(d)
    d.close()


def test_the_stable_softmax_is_not_offered_where_it_cannot_help(data):
    # lr 10 made W large: the stable softmax alone goes straight to log(0) at that lr
    d = Dashboard(Trainer(data, batch_size=64))
    lesson_then_lr(d, 10)
    assert not visible(d.buttons["way_stable"]), "the stable softmax offered although lr 10 is the cause"
    assert "stable" not in d.status
    d.close()
    # every logit +100 by hand: the stable softmax is a real way out (softmax is shift-invariant), and offered
    d = Dashboard(Trainer(data, batch_size=64))
    t = d.trainer
    d.run_for(3)
    with torch.no_grad():
        t.b += 100
    d.buttons["iteration"].click()
    assert d.controls.status_level == "error" and visible(d.buttons["way_stable"])
    d.buttons["way_stable"].click()
    assert t.softmax is model.stable_softmax
    trains_on(d, 20)
    d.close()


def test_a_diverged_forward_uses_no_undo_step_and_every_undo_visibly_takes_something_back(digits):
    t = Trainer(digits, lr=50, batch_size=64, seed=0)
    with pytest.raises(DivergenceError):
        for _ in range(20):
            t.train_step()
    assert t.last_phase is Phase.FORWARD
    depth = len(t.snapshots)
    with pytest.raises(DivergenceError):
        t.forward()  # Step again: the same overflow
    assert len(t.snapshots) == depth, "a diverged forward left an undo step"

    def seen():  # what the dashboard shows: the lit button, the counters, the batch, W
        return t.next_phase, t.iteration, t.batch_indices, t.W.detach().clone()

    for _ in range(6):
        before = seen()
        t.undo()
        after = seen()
        assert after[:2] != before[:2] or after[2] is not before[2] or not torch.equal(after[3], before[3]), \
            "an undo that changed nothing the student can see"


def test_the_way_back_takes_back_every_step_at_the_too_large_lr_not_just_the_last(digits):
    t = Trainer(digits, batch_size=64, seed=0)
    for _ in range(4):
        t.train_step()
    W4 = t.W.detach().clone()
    t.lr = 10
    t.train_step()
    t.train_step()  # two steps at lr 10
    t.next_batch()
    t.undo(lr_above=0.1)
    assert t.iteration == 4 and torch.equal(t.W, W4) and t.next_phase is Phase.SGD
    # the dashboard's way out after two steps at lr 10 (the forward after them diverges): lr 1 was not enough
    d = Dashboard(Trainer(digits, batch_size=64, seed=0))
    d.run_for(4)
    W4 = d.trainer.W.detach().clone()
    d.controls.lr.value = 10
    d.run_for(60)
    assert d.controls.status_level == "error" and d.trainer.iteration >= 5
    d.buttons["way_lr"].click()
    assert d.trainer.iteration == 4 and torch.equal(d.trainer.W, W4)
    trains_on(d)
    d.close()


def test_a_bias_changed_by_hand_is_noticed_undone_by_the_way_out_and_named_as_the_cause(digits):
    t = Trainer(digits, batch_size=64, seed=0)
    events = []
    t.on_change(lambda tr, e: events.append(e))
    for _ in range(3):
        t.train_step()
    b3 = t.b.detach().clone()
    with torch.no_grad():  # as examples/03_instructor_live_coding.ipynb does
        t.b += 100
    with pytest.raises(DivergenceError) as info:
        t.next_batch().forward()
    warning = next(e for e in events if e.kind == "warning")
    assert "b was changed outside the phases (largest change 100)" in warning.message
    msg = str(info.value)
    assert "b was changed outside the phases" in msg and "learning rate too large" not in msg
    assert "trainer.undo(before='hand')" in msg
    assert events[-1].detail["ways_out"][0] == "undo"
    t.undo()  # the plain undo: back over next_batch, then the change by hand
    t.undo()
    assert torch.equal(t.b, b3) and "change by hand" in events[-1].message
    t.next_batch().forward()  # finite again
    assert t.loss_value == t.loss_value
    # the dashboard's way out puts b back in one click, and training goes on
    d = Dashboard(Trainer(digits, batch_size=64, seed=0))
    d.run_for(3)
    b3 = d.trainer.b.detach().clone()
    with torch.no_grad():
        d.trainer.b += 100
    d.buttons["iteration"].click()
    assert d.controls.status_level == "error" and "b was changed outside the phases" in d.status
    assert shown_ways(d)[0] == "↶ undo the change by hand"
    d.buttons["way_undo"].click()
    assert torch.equal(d.trainer.b, b3) and "change by hand is taken back" in d.status
    trains_on(d, 20)
    d.close()


def test_the_ways_out_come_in_the_order_of_the_advice_and_the_status_names_buttons_not_code(data):
    d = Dashboard(Trainer(data, batch_size=64))
    lesson_then_lr(d, 10)
    detail = d.status_line.last_event.detail
    # structured: the ways as data, the one that works first; the buttons in that order
    assert [w["code"] for w in detail["ways"]] == detail["ways_out"] and detail["ways_out"][0] == "lower_lr"
    assert shown_ways(d) == [w["label"] for w in detail["ways"]]
    # the details text advises taking the large steps back first, and that is the first button
    assert "take those steps back" in detail["what"] and shown_ways(d)[0].startswith("↶ undo the")
    # the app has no cells: no code on the status, short or with its details
    for details in (False, True):
        d.controls.details.value = details
        assert not re.search(r"undo\(\)|trainer\.|use_stable_softmax|reset\(\)", d.status), d.status
        assert "Ways out, below: “↶ undo the" in d.status
    d.controls.details.value = False
    d.close()
