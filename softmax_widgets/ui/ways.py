"""A divergence's ways out, as the core hands them over (event.detail["ways"]): which have a button, what one click
on a way does to the Trainer, and what the status says it did. No widget here: tests run it bare.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from softmax_widgets import model
from softmax_widgets.phases import TrainerError

from .messages import say

if TYPE_CHECKING:
    from collections.abc import Callable

    from softmax_widgets.phases import Event
    from softmax_widgets.trainer import Trainer

__all__ = ["DEFAULT_LABELS", "NO_BUTTON", "WAY_BUTTONS", "event_ways", "take", "way_done"]

# a divergence's ways out (detail["ways"] codes) and the buttons that take them
WAY_BUTTONS = {"stable_softmax": "way_stable", "lower_lr": "way_lr", "undo": "way_undo", "reset": "way_reset"}
DEFAULT_LABELS = {"stable_softmax": "use stable softmax", "lower_lr": "lr × 0.1", "undo": "↶ undo", "reset": "Reset"}
DEFAULT_WAYS = ("reset",)  # an event without its ways (a listener's own divergence event): Reset always works
# a way out without a button, in the dashboard's words (a page without code cells must not say "type ...")
NO_BUTTON = {"lesson_function": "status.way_no_button"}  # code -> the id of what the status line says


def event_ways(event: Event | None) -> list[dict]:
    """A divergence event's ways out, as data (detail["ways"]; codes alone for an event that has only those)."""
    detail = (event.detail if event is not None else None) or {}
    ways = detail.get("ways")
    if ways:
        return list(ways)
    return [{"code": c, "label": DEFAULT_LABELS.get(c, c), "lr": None, "steps": 0, "undo": None}
            for c in detail.get("ways_out", DEFAULT_WAYS)]


def take(t: Trainer, event: Event | None, code: str, reset: Callable[[int], None]) -> str:
    """One click on a way out: what the divergence's detail says it does (take back the change by hand or the
    large steps, lower the lr, the stable softmax, reset); returns what was done and what stays, in words."""
    way = next((w for w in event_ways(event) if w["code"] == code), None) if event is not None else None
    if way is None or event.kind != "divergence":
        raise TrainerError(say("way.stale"))
    lr = way.get("lr")
    if code == "reset":
        reset(t.seed)
    if way.get("undo"):
        t.undo(**way["undo"])
    if way.get("lesson"):
        t.use_lesson(way["lesson"])
    if code == "stable_softmax":
        t.use_stable_softmax()
    if lr is not None and lr != t.lr:
        t.lr = lr
    return way_done(t, code, way)


def way_done(t: Trainer, code: str, way: dict) -> str:
    """What a way out did, in words, and what Play does from there."""
    go = say("way.go_on", next=t.next_phase)
    kept = f"lr {t.lr:g}" if way.get("lr") is None else f"lr → {t.lr:g}"
    if code == "reset":
        softmax = {model.softmax: "the lesson's softmax", model.stable_softmax: "the stable softmax"}.get(
            t.softmax, "your softmax")
        return say("way.done_reset", seed=t.seed, init_std=t.init_std, kept=kept, softmax=softmax,
                   batch_size=t.batch_size, go=go)
    if code == "stable_softmax":
        return say("way.done_stable", kept=kept, go=go)
    undo = way.get("undo") or {}
    if way.get("lesson"):  # a student's optimizer made W that large: its steps back, the lesson's sgd in
        them = "its step" if way.get("steps") == 1 else f"its {way.get('steps', 0)} steps"
        return say("way.done_lesson", them=them, lesson=way["lesson"], iteration=t.iteration, kept=kept, go=go)
    if undo.get("before"):
        return say("way.done_hand", kept=kept, go=go)
    if way.get("steps"):
        steps, them = ("the sgd step", "it") if way["steps"] == 1 else (f"the {way['steps']} sgd steps", "them")
        return say("way.done_steps", steps=steps, them=them, iteration=t.iteration, kept=kept, go=go)
    return say("way.done_lr", kept=f"{kept[0].upper()}{kept[1:]}", go=go)
