"""The status line as a model, without a widget: which message wins, the warning's ageing, the ways out as data."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from softmax_widgets import DivergenceError, Phase, PhaseError, Trainer
from softmax_widgets.phases import Event
from softmax_widgets.ui.messages import say
from softmax_widgets.ui.settings import Quiet
from softmax_widgets.ui.status import OFF_PAGE, Status, View, divergence_status, kept, opening, scaled
from softmax_widgets.ui.ways import DEFAULT_LABELS, WAY_BUTTONS, event_ways, way_done

WAYS = [  # as diagnosis.Way.detail() writes them: the one that works first
    {"code": "lower_lr", "label": "↶ undo the 3 sgd steps at lr 50, lr → 0.1", "text": "undo ... (trainer.undo(...))",
     "lr": 0.1, "steps": 3, "undo": {"lr_above": 0.1}, "lesson": None},
    {"code": "reset", "label": "Reset, lr → 0.1", "text": "reset() at the lr 0.1", "lr": 0.1, "steps": 0,
     "undo": None, "lesson": None},
]


def phase(name: str = "forward") -> Event:
    return Event("phase", Phase(name), f"{name} done")


def divergence(ways=WAYS, **detail) -> Event:
    detail = {"cause": "exp() overflowed", "reason": "3 sgd steps at lr 50 pushed W there.", "what": "the whole story",
              "where": "rows 1, 2.", **({"ways": ways} if ways is not None else {}), **detail}
    return Event("divergence", Phase.FORWARD, "forward(): prose for code users. Ways out: ...", detail)


@pytest.fixture
def status():
    return Status(lambda: "press next_batch to start")


def test_before_any_event_the_opening_line_shows(status):
    assert status.view() == View("press next_batch to start", "info")
    assert status.last_event is None and not status.diverged and not status.has_error


def test_the_last_event_shows_at_its_level(status):
    status.event(phase("backward"))
    assert (status.view().text, status.view().level) == ("backward done", "info")
    status.event(Event("epoch", None, "epoch 1 done"))
    assert status.view().text == "epoch 1 done" and status.last_event.kind == "epoch"


def test_a_notice_beats_the_event_until_the_next_event(status):
    status.event(phase())
    status.notice("paused at iteration 3")
    assert status.view() == View("paused at iteration 3", "info")
    status.event(phase("zero_grad"))
    assert status.view().text == "zero_grad done"


def test_an_error_beats_everything_and_the_next_event_replaces_it(status):
    status.event(divergence())
    status.notice("a notice")
    status.warn("a warning")
    status.error("lr 'abc' is not a number")
    view = status.view()
    assert (view.text, view.level, view.extra, view.details) == ("lr 'abc' is not a number", "error", "", "")
    assert view.diverged and view.ways  # the ways out stay below while the last event is a divergence
    status.event(phase(), keep_error=True)  # the action that failed is still running: its error stays
    assert status.view().text == "lr 'abc' is not a number"
    status.event(phase())
    assert status.view().text == "forward done" and not status.has_error


def test_a_divergence_beats_a_notice_and_reads_its_ways_from_the_detail(status):
    status.notice("a notice")
    status.event(divergence())
    view = status.view()
    assert view.level == "error" and view.diverged and view.ways == tuple(WAYS)
    # the cause, why W got there, then the ways by their buttons' names, in the order given; never code
    assert view.text == ("forward(): exp() overflowed. 3 sgd steps at lr 50 pushed W there. Ways out, below: "
                         "“↶ undo the 3 sgd steps at lr 50, lr → 0.1” or “Reset, lr → 0.1”.")
    assert view.details.startswith("the whole story rows 1, 2. Nothing recorded so far is lost.")
    assert "prose for code users" not in view.text + view.details  # the message is not parsed


def test_the_ways_without_a_button_are_said_in_words():
    softmax = {"code": "lesson_function", "label": "the lesson's softmax", "text": "put it back (code)"}
    loss = {"code": "lesson_function", "label": "the lesson's cross_entropy", "text": "put the lesson's back (code)"}
    assert "the lesson's softmax back (the softmax toggle: lesson's) or “Reset" in divergence_status(
        divergence([softmax, WAYS[1]]))[0]
    assert "Ways out, below: put the lesson's back (code) or" in divergence_status(divergence([loss, WAYS[1]]))[0]


def test_an_event_without_its_ways_offers_what_its_codes_say_or_reset():
    assert [w["code"] for w in event_ways(divergence(None))] == ["reset"]
    ways = event_ways(divergence(None, ways_out=["undo", "reset"]))
    assert [(w["code"], w["label"]) for w in ways] == [("undo", DEFAULT_LABELS["undo"]), ("reset", "Reset")]
    assert set(WAY_BUTTONS) == set(DEFAULT_LABELS)


def test_a_warning_rides_beside_an_info_once(status):
    status.event(phase())
    status.event(Event("warning", None, "zero_grad was skipped"))
    assert status.view() == View("forward done", "info", "zero_grad was skipped")
    assert status.last_event.kind == "phase"  # a warning never becomes the line
    status.shown()
    assert status.view().extra == ""


def test_a_warning_goes_stale_two_phases_after_it_was_said(status):
    status.warn("W was changed by hand")
    status.event(phase("next_batch"))
    status.event(phase("forward"))
    assert status.view().extra == "W was changed by hand"  # its phase and the next: still fresh
    status.event(phase("zero_grad"))
    assert status.view().extra == ""
    status.warn("again")
    status.event(Event("reset", None, "reset"))  # only phases age it
    status.event(Event("undo", None, "undone"))
    assert status.view().extra == "again"


def test_a_warning_is_beside_a_divergence_or_a_notice_but_not_an_error(status):
    status.warn("orange")
    status.notice("a notice")
    assert status.view().extra == "orange"
    status.event(divergence(), keep_error=True)
    assert status.view().extra == "orange" and status.view().level == "error"
    status.error("red")
    assert status.view().extra == ""


def test_a_key_hint_goes_on_the_keys_line_and_the_next_event_or_click_clears_it(status):
    status.event(phase())
    status.key_hint("The key 'x' does nothing here.")
    view = status.view()
    assert view.key_hint == "The key 'x' does nothing here." and view.text == "forward done"
    status.event(phase("zero_grad"))
    assert status.view().key_hint == ""
    status.key_hint("again")
    status.notice("n")
    status.error("e")
    status.clear()  # a click starts afresh: the event and the warning stay
    assert status.view() == View("zero_grad done", "info")


def test_errors_are_said_in_words_and_a_divergence_by_its_event(status, caplog):
    assert status.error(PhaseError("call forward() first")) == "call forward() first"
    assert status.error(ValueError("lr must be positive")) == "lr must be positive"
    assert status.error(DivergenceError("the event says it")) == "" and not status.has_error
    with caplog.at_level(logging.ERROR):
        assert status.error(KeyError("w")) == "KeyError: 'w'"
    assert caplog.records[-1].exc_info is not None  # the log keeps the traceback, the line has words
    assert status.error("") == "" and not status.has_error


def test_a_real_divergence_carries_its_ways_as_data_on_the_event_and_the_error(digits):
    t = Trainer(digits, lr=50, batch_size=64, seed=0)
    status = Status(lambda: opening(t))
    assert status.view().text.startswith(f"{digits.name}: press next_batch")
    t.on_change(lambda _, e: status.event(e))
    with pytest.raises(DivergenceError) as info:
        for _ in range(200):
            t.train_step()
    err, view = info.value, status.view()
    assert status.diverged and [w["code"] for w in view.ways] == [w.code for w in err.ways]
    assert [w.detail() for w in err.ways] == list(view.ways) == status.last_event.detail["ways"]
    assert all(f"“{w.label}”" in view.text for w in err.ways if w.code in WAY_BUTTONS)
    assert status.error(err) == "" and status.view() == view  # the error adds nothing: its event said it
    # what a way out did, in words: the lr way takes the steps back and lowers the lr
    way = view.ways[0]
    assert way["code"] == "lower_lr"
    t.undo(**way["undo"])
    t.lr = way["lr"]
    assert way_done(t, way["code"], way).startswith(f"Took back the {way['steps']} sgd steps at the too large lr")


def test_the_dashboards_own_sentences():
    assert scaled(1.5, 1.5, False).startswith("presentation size ×1.5: every text and plot enlarged; A+ again")
    assert "no longer fits" in scaled(3, 3, True) and "the notebook's cells too" in scaled(3, 3, True)
    assert scaled(1, 1.5, False) == "normal size; A+ enlarges every text and plot ×1.5"
    assert kept(None).startswith("Nothing to keep yet") and "`dash`" in say(OFF_PAGE)


def test_quiet_nests():
    quiet = Quiet()
    assert not quiet
    with quiet():
        with quiet():
            assert quiet
        assert quiet
    assert not quiet


def test_the_status_model_imports_no_widgets():
    code = ("import sys; import softmax_widgets.ui.status, softmax_widgets.ui.ways, softmax_widgets.ui.settings; "
            "print([m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'bqplot', 'traitlets', 'anywidget')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
