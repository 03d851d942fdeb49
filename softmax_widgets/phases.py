"""The five phases of one training iteration, the errors that teach their order, and events."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["CustomFunctionError", "DivergenceError", "Event", "Phase", "PhaseError", "TrainerError"]


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
    `images` their indices in the training set, `phase` the phase that stopped.
    """

    def __init__(self, message: str, *, phase: Phase | None = None, operation: str = "unknown",
                 rows: tuple[int, ...] = (), images: tuple[int, ...] = ()):
        super().__init__(message)
        self.phase, self.operation, self.rows, self.images = phase, operation, tuple(rows), tuple(images)


class CustomFunctionError(TrainerError):
    """A swapped-in softmax / loss_fn / optimizer raised or returned something unusable."""


@dataclass(frozen=True)
class Event:
    """What a listener of Trainer.on_change receives after every phase (and on warnings)."""

    kind: str  # "phase", "warning", "divergence", "epoch", "reset", "settings" or "undo"
    phase: Phase | None
    message: str
    # machine-readable extras; for "divergence": operation, rows, images (as on DivergenceError)
    detail: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def level(self) -> str:
        return {"warning": "warning", "divergence": "error"}.get(self.kind, "info")
