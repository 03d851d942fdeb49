"""The status line as a model: what it says and which message wins, without a widget (tests run it bare).

One message shows at a time, in this order: the last action's error (red), a divergence (its cause and the ways
out, read from the event's detail), a notice ("paused at ...", an instructor's `say`), the last event, the
opening line. A warning rides beside an info (orange) on the next push only, and goes stale two phases after it
was said; a key that does nothing is said on the keys line, never glued to the status.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from softmax_widgets.phases import DivergenceError, TrainerError

from .messages import say
from .presentation import FITS_720
from .ways import NO_BUTTON, WAY_BUTTONS, event_ways

if TYPE_CHECKING:
    from collections.abc import Callable

    from softmax_widgets.phases import Event
    from softmax_widgets.runs import Run
    from softmax_widgets.trainer import Trainer

__all__ = ["OFF_PAGE", "Status", "View", "divergence_status", "kept", "opening", "paused", "scaled"]

log = logging.getLogger(__name__)
WARNING_PHASES = 2  # a warning belongs to the phase it came with and the next: then it is stale


@dataclass(frozen=True)
class View:
    """What the status shows now: the text and its level ("info", "warning", "error"), the warning beside it, a
    divergence's whole explanation (behind the details toggle), the keys line's hint, and the ways out (their
    buttons show while `diverged`)."""

    text: str
    level: str = "info"
    extra: str = ""
    details: str = ""
    key_hint: str = ""
    diverged: bool = False
    ways: tuple[dict, ...] = ()


class Status:
    """The status line's state, fed by the Trainer's events and the dashboard's actions; `view()` says what wins.

    `opening` gives the line shown before any event (it reads the Trainer when asked)."""

    def __init__(self, opening: Callable[[], str] = str):
        self._opening = opening
        self._event: Event | None = None  # the last event that was not a warning
        self._warning, self._warning_age = "", 0  # the orange line, and the phases run since it was said
        self._notice = ""  # replaces an info status until the next event: "paused at ...", "seed 5: ..."
        self._key_hint = ""  # a key that does nothing: said on the keys line, never glued to the status
        self._error = ""

    # ---- what happened ----
    def event(self, event: Event, keep_error: bool = False) -> None:
        """A Trainer event: it replaces the notice, the key hint and (unless `keep_error`: the action that caused
        it is still running and owns its error) the error; a warning is said beside, the rest becomes the line."""
        if not keep_error:
            self._error = ""
        self._notice = self._key_hint = ""
        if event.kind == "warning":
            self.warn(event.message)
            return
        if event.kind == "phase":
            self._warning_age += 1
            if self._warning_age > WARNING_PHASES:
                self._warning, self._warning_age = "", 0
        self._event = event

    def warn(self, text: str) -> None:
        """The orange line beside the status, said on the next push."""
        self._warning, self._warning_age = text, 0

    def notice(self, text: str) -> None:
        """An info line of the dashboard's own, shown until the next event."""
        self._notice = text

    def key_hint(self, text: str) -> None:
        self._key_hint = text

    def error(self, error: str | Exception) -> str:
        """The last action's error, in words (never a traceback); "" clears it. A DivergenceError says nothing
        here: its event came first and is on the line, with the ways out. Returns the text."""
        if isinstance(error, DivergenceError):
            text = ""
        elif isinstance(error, (TrainerError, ValueError)):
            text = str(error)
        elif isinstance(error, Exception):  # not one of ours: still words; the log keeps the details
            log.error("unexpected error in a dashboard action", exc_info=error)
            text = f"{type(error).__name__}: {error}"
        else:
            text = error
        self._error = text
        return text

    def clear(self) -> None:
        """A click starts afresh: no error, notice or key hint left from before it."""
        self._error = self._notice = self._key_hint = ""

    # ---- what shows ----
    @property
    def last_event(self) -> Event | None:
        return self._event

    @property
    def diverged(self) -> bool:
        """The last event was a divergence: its ways out are shown."""
        return self._event is not None and self._event.kind == "divergence"

    @property
    def has_error(self) -> bool:
        return bool(self._error)

    def view(self) -> View:
        """What wins now: error, divergence, notice, the last event, the opening line (the warning beside all but
        an error)."""
        e, warning = self._event, self._warning
        ways = tuple(event_ways(e)) if self.diverged else ()
        common = {"key_hint": self._key_hint, "diverged": self.diverged, "ways": ways}
        if self._error:
            return View(self._error, "error", **common)
        if self.diverged:
            short, details = divergence_status(e)
            return View(short, "error", warning, details, **common)
        if self._notice:
            return View(self._notice, "info", warning, **common)
        if e is not None:
            return View(e.message, e.level, warning, **common)
        return View(self._opening(), "info", warning, **common)

    def shown(self) -> None:
        """The view went to the page: the warning was said once, and is dropped."""
        self._warning, self._warning_age = "", 0


def divergence_status(event: Event) -> tuple[str, str]:
    """A divergence read aloud: the cause in one sentence, why W got there, then the ways out by the names of their
    buttons below (never code: the app has no cells); the whole explanation (rows, images) waits behind details."""
    detail = event.detail or {}
    cause = (detail.get("cause") or detail.get("what") or say("status.no_cause")).strip()
    if event.phase is not None and not cause.startswith(f"{event.phase}()"):
        cause = f"{event.phase}(): {cause}"
    cause = cause if cause.endswith(".") else cause + "."
    reason = detail.get("reason", "")
    names = []
    for way in event_ways(event):
        if way["code"] in WAY_BUTTONS:
            names.append(f"“{way['label']}”")
        elif way["code"] in NO_BUTTON:
            names.append(say(NO_BUTTON[way["code"]], label=way["label"]) if "softmax" in way["label"] else
                         way["text"])  # the lesson's loss_fn or sgd: no button, a line of code
    ways = say("status.ways_below", names=" or ".join(names)) if names else ""
    what = (detail.get("what") or cause).strip()
    where = detail.get("where", "")
    details = say("status.not_lost", what=what, where=f" {where}" if where else "", ways=ways)
    return f"{cause}{' ' + reason if reason else ''}{ways}", details


def opening(t: Trainer) -> str:
    """Before any event: a fresh run says how to start; a run already under way (Trainer.load, or trained from
    code before the dashboard was made) says where it stands and which phase is lit."""
    if t.iteration == 0 and t.last_phase is None:
        return say("status.opening_fresh", name=t.data.name)
    return say("status.opening_under_way", name=t.data.name, where=t.where(), next=t.next_phase)


def paused(t: Trainer) -> str:
    return say("status.paused", iteration=t.iteration, epoch=t.epoch + 1)


def scaled(value: float, presentation: float, notebook: bool) -> str:
    """The presentation scale just set: what it enlarged, and how A+ goes back."""
    cells = say("status.scale_cells") if notebook else ""
    if value <= 1:
        return say("status.scale_normal", presentation=presentation, cells=cells)
    fits = "" if value <= FITS_720 else say("status.scale_too_big", limit=FITS_720)
    return say("status.scale_big", value=value, cells=cells, fits=fits)


def kept(run: Run | None) -> str:
    if run is None:
        return say("status.nothing_to_keep")
    return say("status.kept", label=run.label)


OFF_PAGE = "status.off_page"  # the id of what Play says when the dashboard left the page
