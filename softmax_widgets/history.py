"""What training has done so far, per iteration and per epoch."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["EpochResult", "History"]


@dataclass
class History:
    """Per-iteration and per-epoch records; plain lists of Python numbers, cheap to plot."""

    loss: list[float] = field(default_factory=list)  # mean loss per image, one per iteration
    train_acc: list[float] = field(default_factory=list)  # fraction correct in that batch
    batch_size: list[int] = field(default_factory=list)  # the batch's real size (last one is smaller)
    batch: list[int] = field(default_factory=list)  # which batch of the run it used (1 = the first drawn)
    test_acc: list[float] = field(default_factory=list)  # one per finished epoch
    epoch_loss: list[float] = field(default_factory=list)  # the lesson's printed loss: sum / images
    epoch_train_acc: list[float] = field(default_factory=list)
    epoch_iteration: list[int] = field(default_factory=list)  # iteration count when each epoch ended

    def copy(self) -> History:
        return History(*(list(v) for v in vars(self).values()))

    def record(self, loss_sum: float, correct: int, images: int, batch: int) -> None:
        """One iteration: its summed loss and correct count over `images`, on the run's `batch`-th batch."""
        self.loss.append(loss_sum / images)
        self.train_acc.append(correct / images)
        self.batch_size.append(images)
        self.batch.append(batch)

    def end_epoch(self, test_acc: float, totals: list, iteration: int) -> None:
        """One epoch: `totals` is its summed loss, correct count and images."""
        loss_sum, correct, n = totals
        self.test_acc.append(test_acc)
        self.epoch_loss.append(loss_sum / n if n else math.nan)
        self.epoch_train_acc.append(correct / n if n else math.nan)
        self.epoch_iteration.append(iteration)

    def last_epoch(self, seconds: float) -> EpochResult | None:
        if not self.test_acc:
            return None
        return EpochResult(len(self.test_acc), self.epoch_loss[-1], self.epoch_train_acc[-1], self.test_acc[-1],
                           seconds)


@dataclass(frozen=True)
class EpochResult:
    """One line of the lesson's printout."""

    epoch: int
    loss: float
    train_acc: float
    test_acc: float
    seconds: float

    def __str__(self) -> str:
        return (f"epoch {self.epoch}, loss {self.loss:.4f}, train acc {self.train_acc:.3f}, "
                f"test acc {self.test_acc:.3f}")
