"""The five phases of one training iteration, where the loop stands (one explicit state), the table of
refusals that teaches their order, the errors, and events."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["Batch", "CustomFunctionError", "DivergenceError", "Event", "Forward", "Grad", "LoopState", "Phase",
           "PhaseError", "TrainerError"]


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
    """Base of the Trainer's own errors; the message always says what to do next."""


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
        super().__init__(message)
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
    message: str
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
        """The lesson's next call: what Step runs and the dashboard lights."""
        if self.batch is not Batch.DRAWN:
            return Phase.NEXT_BATCH
        if self.grad is Grad.NONFINITE:  # sgd would refuse: clear the NaN first, never loop into that wall
            return Phase.ZERO_GRAD
        if self.forward is Forward.CONSUMED:
            return Phase.SGD if self.grad is Grad.FILLED else Phase.FORWARD
        if self.forward is Forward.LIVE:
            return Phase.BACKWARD if self.grad is Grad.ZERO else Phase.ZERO_GRAD
        return Phase.FORWARD

    def refusal(self, phase: Phase) -> str | None:
        """Why the lesson's rules refuse `phase` here (a message naming the next call), or None."""
        return _REFUSAL[phase, self.batch, self.forward, self.grad]  # REFUSALS, looked up: a hot-path dict hit

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


# phase -> (condition, message) rows, first match wins. Each message says what happened and names, first, the
# call that Step would make next (`LoopState.next_phase`), so the status line and the lit button agree.
_NO_BATCH, _USED = _is(batch=Batch.NONE), _is(batch=Batch.USED)
_GRAD_NAN = _is(grad=Grad.NONFINITE)
REFUSALS: dict[Phase, tuple] = {
    Phase.NEXT_BATCH: (),
    Phase.ZERO_GRAD: (),
    Phase.FORWARD: (
        (_NO_BATCH,
         "forward() needs a batch: call next_batch() first."),
        (_USED,
         "forward() needs a new batch: sgd() already used this one. Call next_batch() first."),
    ),
    Phase.BACKWARD: (
        (_NO_BATCH,
         "backward() needs a loss, and there is no batch yet: call next_batch(), then forward()."),
        (_USED,
         "backward() needs a forward pass on a new batch: sgd() already used this batch and changed W, so its "
         "forward is stale. Call next_batch(), then forward()."),
        (_GRAD_NAN,
         "backward() would add to W.grad, which holds NaN or inf: call zero_grad() first."),
        (_is(forward=Forward.NONE),
         "backward() needs a loss: call forward() first."),
        (_is(forward=Forward.NONFINITE),
         "backward() needs a finite loss, but the last forward() gave NaN or inf. Fix the cause, then call "
         "forward() again."),
        (_is(forward=Forward.CONSUMED, grad=Grad.FILLED),
         "backward() already ran on this forward pass, and autograd freed the graph's saved tensors after it. "
         "Call sgd() to apply the gradients, or forward() to build a new graph."),
        (_is(forward=Forward.CONSUMED),
         "backward() already ran on this forward pass and autograd freed its graph; zero_grad() cleared the "
         "gradients since. Call forward() again, then backward()."),
    ),
    Phase.SGD: (
        (_NO_BATCH,
         "sgd() needs gradients, and there is no batch yet: call next_batch(), then forward(), zero_grad() and "
         "backward()."),
        (_USED,
         "sgd() already applied this batch's gradients: call next_batch() to start the next iteration."),
        (_GRAD_NAN,
         "sgd() refused: W.grad holds NaN or inf, and applying it would destroy W. Call zero_grad() to clear it."),
        (_is(forward=(Forward.NONE, Forward.NONFINITE)),
         "sgd() needs gradients of this batch: call forward(), then zero_grad() and backward()."),
        (_is(forward=Forward.LIVE, grad=Grad.ZERO),
         "sgd() needs gradients of this forward pass: call backward() first."),
        (_is(forward=Forward.LIVE),
         "sgd() needs gradients of this forward pass, and backward() has not run on it: call zero_grad(), then "
         "backward()."),
        (_is(forward=Forward.CONSUMED, grad=(Grad.ZERO, Grad.NONE)),
         "sgd() needs gradients, but zero_grad() cleared them after backward(). Call forward() and backward() "
         "again, then sgd()."),
    ),
}


def _first_refusal(phase: Phase, state: LoopState) -> str | None:
    return next((message for applies, message in REFUSALS[phase] if applies(state)), None)


# every (phase, batch, forward, grad) once, at import: 300 entries
_REFUSAL = {(p, b, f, g): _first_refusal(p, LoopState(b, f, g)) for p in Phase for b in Batch for f in Forward
            for g in Grad}
