"""A dashboard cell run again: the run it showed is kept (one ↶ undo away), never replaced without a word.

Re-running the cell builds a new Trainer; before this, the old run (iteration 24, say) was gone where undo could
not reach it. The newest dashboard a front end has displayed in this kernel is remembered here; the next one
built takes over its run: as an undo step when both hold the same data, as a kept run (dashed on the loss plot,
in compare runs) always, and as `dash.previous`, its Trainer. Dashboards never displayed (scripts, tests) are
not remembered, so building many of them changes nothing.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dashboard import Dashboard

__all__ = ["forget", "scale_of_previous", "shown", "take_over"]

_newest: weakref.ref | None = None  # the newest dashboard displayed in this kernel
ACTION = "the dashboard cell ran again"  # what undo says it took back: "undo: back to before the dashboard ..."


def shown(dash: Dashboard) -> None:
    """A front end displays `dash` (its view count went above 0): it is the one a re-run replaces."""
    global _newest
    _newest = weakref.ref(dash)


def take_over(dash: Dashboard) -> str:
    """Keep the run of the dashboard displayed before `dash` (if it did anything); the words for the status."""
    old = _newest() if _newest is not None else None
    if old is None or old is dash or old.trainer is dash.trainer:
        return ""
    before, t = old.trainer, dash.trainer
    if before.last_phase is None and before.iteration == 0:
        return ""  # nothing was done there: nothing to keep
    if old.is_playing:  # its output is gone or going: a Play nobody watches only takes the cores
        old.pause()
    dash.previous = before
    where = f"epoch {before.epoch + 1}, iteration {before.iteration}"
    ways = []
    same = before.data is t.data or (before.data.name == t.data.name and before.num_train == t.num_train
                                     and before.data.num_inputs == t.data.num_inputs)
    if same and t.snapshots.capacity:
        t.snapshots.keep_run(before, ACTION)  # undo() puts that run into this Trainer, exactly
        ways.append("↶ undo brings it back")
    if before.iteration:
        dash.views.runs.add(before, label=f"before the re-run ({where})")
        ways.append("its loss stays dashed on the plot")
    ways.append("dash.previous is its Trainer")
    return f"This cell ran again: the run it showed ({where}) is kept — {', '.join(ways)}."


def scale_of_previous() -> float:
    """The presentation scale of the dashboard a new one replaces (1 when there is none)."""
    old = _newest() if _newest is not None else None
    return old.scale if old is not None else 1.0


def forget(dash: Dashboard) -> None:
    """`dash` was closed: there is no run of it to keep."""
    global _newest
    if _newest is not None and _newest() is dash:
        _newest = None
