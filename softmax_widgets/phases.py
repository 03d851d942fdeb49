"""The five phases of one training iteration, where the loop stands (one explicit state), the one table of order
rules (RULES: the next call and the refusals; next_phase, refusal() and the state file's REACHABLE are read off
it), the errors, and events. A new rule is one row of RULES; a new phase, a move on LoopState and _moves."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .messages import Said, say

__all__ = ["REACHABLE", "REFUSALS", "RULES", "Batch", "CustomFunctionError", "DivergenceError", "Event", "Forward",
           "Grad", "LoopState", "Phase", "PhaseError", "TrainerError"]


class Phase(str, Enum):
    """One call of the lesson's loop; the value is the method name a student types."""

    NEXT_BATCH = "next_batch"
    FORWARD = "forward"
    ZERO_GRAD = "zero_grad"
    BACKWARD = "backward"
    SGD = "sgd"

    def __str__(self) -> str:
        return self.value


class TrainerError(RuntimeError):
    """Base of the Trainer's own errors; the message always says what to do next, and `id` names it (the
    messages catalog's id: what tests and the dashboard look at, never the prose)."""

    def __init__(self, message: str = "", *args, id: str | None = None):
        super().__init__(message, *args)
        self.id = id if id is not None else getattr(message, "id", None)


class PhaseError(TrainerError):
    """A phase was called out of order; nothing changed."""


class DivergenceError(TrainerError):
    """A loss, gradient or weight turned NaN or inf; what was computed before is kept.

    `operation` names what produced it ("softmax_exp_overflow", "cross_entropy_log_zero",
    "softmax_backward_overflow", "sgd_step_overflow", ...), `rows` the rows of the batch that did,
    `images` their indices in the training set, `phase` the phase that stopped. str(err) is the cause and the
    ways out, short enough to read aloud; `details` is the whole explanation with every number; `ways` the ways
    out as data (diagnosis.Way: code, label, the code to type, the lr and undo each takes), the one that works first.
    """

    def __init__(self, message: str, *, phase: Phase | None = None, operation: str = "unknown",
                 rows: tuple[int, ...] = (), images: tuple[int, ...] = (), details: str = "", ways: tuple = ()):
        super().__init__(message, id=f"cause.{operation}")
        self.phase, self.operation, self.rows, self.images = phase, operation, tuple(rows), tuple(images)
        self.details = details or message
        self.ways = tuple(ways)


class CustomFunctionError(TrainerError):
    """A swapped-in softmax / loss_fn / optimizer raised or returned something unusable."""


@dataclass(frozen=True)
class Event:
    """What a listener of Trainer.on_change receives after every phase (and on warnings)."""

    kind: str  # "phase", "warning", "divergence", "epoch", "reset", "settings" or "undo"
    phase: Phase | None
    message: str  # detail["id"], when set, names the sentence (messages.CATALOG) that `message` says
    # machine-readable extras; for "divergence": operation, rows, images (as on DivergenceError), the cause and
    # "ways": the ways out as data (Way.detail() dicts, the one that works first), never prose to parse
    detail: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def level(self) -> str:
        return {"warning": "warning", "divergence": "error"}.get(self.kind, "info")


# ---- where the loop stands: one explicit value, and the moves the lesson allows ----
class Batch(str, Enum):
    """The current mini-batch: none drawn yet, drawn (sgd has not used it), or used by sgd."""

    NONE = "none"
    DRAWN = "drawn"
    USED = "used"


class Forward(str, Enum):
    """The forward pass of the current batch and its autograd graph."""

    NONE = "none"  # no forward on this batch yet
    LIVE = "live"  # y_hat and the loss, with the graph backward() walks
    CONSUMED = "consumed"  # backward() walked it; autograd freed its saved tensors
    STALE = "stale"  # sgd() changed W after it
    NONFINITE = "non-finite"  # the loss came out NaN or inf: nothing to walk back


class Grad(str, Enum):
    """What W.grad and b.grad hold."""

    NONE = "none"  # no gradient yet in this run (W.grad is None)
    ZERO = "zero"
    FILLED = "filled"
    NONFINITE = "non-finite"


@dataclass(frozen=True)
class LoopState:
    """Where the Trainer stands in the lesson's loop; each phase moves it, `next_phase` reads it."""

    batch: Batch = Batch.NONE
    forward: Forward = Forward.NONE
    grad: Grad = Grad.NONE
    passes: int = 0  # backward passes summed in W.grad since it last held zeros

    @property
    def next_phase(self) -> Phase:
        """The lesson's next call: what Step runs and the dashboard lights (read off RULES)."""
        return _NEXT[self.batch, self.forward, self.grad]

    def refusal(self, phase: Phase) -> Said | None:
        """Why the lesson's rules refuse `phase` here (a message naming the next call, its .id the rule), or None."""
        why = REFUSALS[phase, self.batch, self.forward, self.grad]  # read off RULES: a hot-path dict hit
        return None if why is None else say(why)

    # the moves: one per phase, in the lesson's order
    def drawn(self) -> LoopState:
        return LoopState(Batch.DRAWN, Forward.NONE, self.grad, self.passes)

    def forwarded(self, finite: bool) -> LoopState:
        return LoopState(self.batch, Forward.LIVE if finite else Forward.NONFINITE, self.grad, self.passes)

    def dropped(self) -> LoopState:
        """The forward's graph cannot be used (autograd cannot walk it): the next step is a new forward."""
        return LoopState(self.batch, Forward.NONE, self.grad, self.passes)

    def zeroed(self) -> LoopState:
        return LoopState(self.batch, self.forward, Grad.ZERO, 0)

    def backwarded(self, finite: bool, was_zero: bool) -> LoopState:
        """`was_zero`: W.grad held only zeros before this backward, whoever zeroed it."""
        passes = 1 if was_zero else self.passes + 1
        return LoopState(self.batch, Forward.CONSUMED, Grad.FILLED if finite else Grad.NONFINITE, passes)

    def stepped(self, grad_zeroed: bool = False) -> LoopState:
        """After sgd: the batch is used and W changed, so its forward is stale."""
        return LoopState(Batch.USED, Forward.STALE, Grad.ZERO if grad_zeroed else self.grad,
                         0 if grad_zeroed else self.passes)

    def __str__(self) -> str:
        return (f"batch {self.batch.value}, forward {self.forward.value}, gradient {self.grad.value}"
                + (f" ({self.passes} passes)" if self.passes > 1 else ""))


def _is(**want):
    """A row's condition: every named part of the state has one of the given values."""
    def applies(s: LoopState) -> bool:
        return all(getattr(s, k) in (v if isinstance(v, tuple) else (v,)) for k, v in want.items())
    return applies


# ---- the order rules, written once ----
# Where the loop can stand, first match wins: the call Step makes next there, and the phases refused there with
# why. Each message names, first, that next call, so the status line and the lit button agree. next_phase,
# refusal() and the state file's check (REACHABLE) are all read off this table.
_F, _G = Forward, Grad
RULES: tuple[tuple, ...] = (  # the refusals are ids in messages.CATALOG ("refuse.<phase>.<why>")
    (_is(batch=Batch.NONE), Phase.NEXT_BATCH, {Phase.FORWARD: "refuse.forward.no_batch",
                                               Phase.BACKWARD: "refuse.backward.no_batch",
                                               Phase.SGD: "refuse.sgd.no_batch"}),
    (_is(batch=Batch.USED), Phase.NEXT_BATCH, {Phase.FORWARD: "refuse.forward.used_batch",
                                               Phase.BACKWARD: "refuse.backward.used_batch",
                                               Phase.SGD: "refuse.sgd.used_batch"}),
    (_is(grad=_G.NONFINITE), Phase.ZERO_GRAD, {  # sgd would refuse: clear the NaN first, never loop into it
        Phase.BACKWARD: "refuse.backward.nonfinite_grad", Phase.SGD: "refuse.sgd.nonfinite_grad"}),
    (_is(forward=_F.CONSUMED, grad=_G.FILLED), Phase.SGD, {Phase.BACKWARD: "refuse.backward.consumed"}),
    (_is(forward=_F.CONSUMED), Phase.FORWARD, {Phase.BACKWARD: "refuse.backward.consumed_zeroed",
                                               Phase.SGD: "refuse.sgd.consumed_zeroed"}),
    (_is(forward=_F.LIVE, grad=_G.ZERO), Phase.BACKWARD, {Phase.SGD: "refuse.sgd.no_backward"}),
    (_is(forward=_F.LIVE), Phase.ZERO_GRAD, {Phase.SGD: "refuse.sgd.not_zeroed"}),
    (_is(forward=_F.NONFINITE), Phase.FORWARD, {Phase.BACKWARD: "refuse.backward.nonfinite_loss",
                                                Phase.SGD: "refuse.sgd.no_forward"}),
    (_is(), Phase.FORWARD, {Phase.BACKWARD: "refuse.backward.no_forward", Phase.SGD: "refuse.sgd.no_forward"}),
)


def _rule(state: LoopState) -> tuple:
    return next(row for row in RULES if row[0](state))


_STATES = [(b, f, g) for b in Batch for f in Forward for g in Grad]
_NEXT = {k: _rule(LoopState(*k))[1] for k in _STATES}
# (phase, batch, forward, grad) -> the id of why it is refused, or None: every combination once, at import (300)
REFUSALS: dict[tuple, str | None] = {(p, *k): _rule(LoopState(*k))[2].get(p) for p in Phase for k in _STATES}


def _moves(s: LoopState, phase: Phase) -> list[LoopState]:
    """Every state `phase` can leave behind from `s` (each outcome: finite or not, interrupted, a student's
    function that zeroes W.grad or cuts the loss off from autograd)."""
    if phase is Phase.NEXT_BATCH:
        return [s.drawn()]
    if phase is Phase.FORWARD:
        return [s.forwarded(True), s.forwarded(False)]
    if phase is Phase.ZERO_GRAD:
        return [s.zeroed()]
    if phase is Phase.BACKWARD:
        return [s.backwarded(f, z) for f in (True, False) for z in (True, False)] + [s.dropped(),
                                                                                   s.dropped().zeroed()]
    return [s.stepped(False), s.stepped(True)]


def _reachable() -> frozenset:
    seen, todo = set(), [LoopState()]
    while todo:
        s = todo.pop()
        key = (s.batch, s.forward, s.grad)
        if key in seen:
            continue
        seen.add(key)
        todo += [n for p in Phase if REFUSALS[(p, *key)] is None for n in _moves(s, p)]
    return frozenset(seen)


# (batch, forward, grad) the rules can reach from a fresh run: a state file's progress must be one of these
REACHABLE = _reachable()
