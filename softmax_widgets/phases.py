"""The five phases of one training iteration, the errors that teach their order, and events."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

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
    """A loss, gradient or weight turned NaN or inf; what was computed before is kept."""


class CustomFunctionError(TrainerError):
    """A swapped-in softmax / loss_fn / optimizer raised or returned something unusable."""


@dataclass(frozen=True)
class Event:
    """What a listener of Trainer.on_change receives after every phase (and on warnings)."""

    kind: str  # "phase", "warning", "divergence", "epoch", "reset" or "settings"
    phase: Phase | None
    message: str

    @property
    def level(self) -> str:
        return {"warning": "warning", "divergence": "error"}.get(self.kind, "info")
