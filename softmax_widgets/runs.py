"""Finished or paused runs kept side by side (lr 0.01 vs 0.1 vs 1.0), for a view to overlay their curves."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .callbacks import CallbackRegistry
from .history import History

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["Run", "RunStore", "short_name"]
_ids = itertools.count(1)


@dataclass(frozen=True)
class Run:
    """One run frozen when it was kept: its label, hyper-parameters and a copy of its history."""

    label: str
    dataset: str
    lr: float
    batch_size: int
    seed: int
    softmax: str  # the function's name: "softmax" (the lesson's), "stable_softmax", or a student's
    iteration: int
    epoch: int
    history: History
    status: str = "paused"  # or "finished"
    model: str = "the lesson's softmax regression"  # or the next lessons' (Trainer.model_name): "MLP(hidden=256)"
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def test_acc_points(self) -> list[tuple[int, float]]:
        """(iteration, test accuracy) at each epoch end: test accuracy on the same x axis as the loss."""
        return list(zip(self.history.epoch_iteration, self.history.test_acc, strict=True))

    def __str__(self) -> str:
        """The run in words, truthful about where it stopped and numbered as the counter numbers epochs:
        "lr 0.1 ... (after epoch 1 (iteration 235), epoch loss 0.7838, test acc 0.791)" at an epoch's end (the
        numbers the epoch's status line said), "(paused in epoch 2, at iteration 300, last batch's loss 0.61)"."""
        where = when(self.history, self.iteration)
        if where.startswith("in "):
            where = "paused " + where
        h = self.history
        if where.startswith("after epoch"):  # the epoch's own line: its mean loss and test accuracy, as the status
            last = f", epoch loss {h.epoch_loss[-1]:.4f}, test acc {h.test_acc[-1]:.3f}"
        else:  # mid-epoch there is no epoch mean yet: the last batch's loss, named so
            last = f", last batch's loss {h.loss[-1]:.4f}" if h.loss else ""
        return f"{self.label} ({where}{last})"


def short_name(trainer) -> str:
    """The model in a label, so a from-scratch run and a concise one kept side by side never read alike: "" for the
    lesson's softmax regression, "MLP(hidden=256)" (with ", your relu" when swapped), "Sequential module"."""
    model = getattr(trainer, "model", None)
    if model is None:
        return ""
    relu = getattr(model, "relu", None)
    if relu is not None and getattr(model, "student", False):
        return f"{model.name}, {getattr(relu, '__name__', 'your relu')}"
    return model.name


def when(history, iteration: int) -> str:
    """Where `iteration` stands, numbered as the counter numbers epochs: "after epoch 1 (iteration 235)" at an
    epoch's end, "in epoch 2, at iteration 300" during one (the counter says "epoch 1" while the first runs)."""
    ends = list(history.epoch_iteration)
    done = sum(1 for it in ends if it <= iteration)
    if done and ends[done - 1] == iteration:
        return f"after epoch {done} (iteration {iteration})"
    return f"in epoch {done + 1}, at iteration {iteration}"


class RunStore:
    """Kept runs in the order they were added; listeners hear of every add and remove."""

    def __init__(self) -> None:
        self._runs: list[Run] = []
        self._listeners = CallbackRegistry("RunStore")

    def add(self, trainer: Trainer, label: str | None = None, status: str | None = None) -> Run:
        """Keep a copy of `trainer`'s history and settings now; the trainer may go on or reset. `status` defaults
        to where the run stands: "finished" at the end of an epoch (its test accuracy is in), else "paused"."""
        if status is None:
            ends = trainer.history.epoch_iteration
            status = "finished" if ends and ends[-1] == trainer.iteration else "paused"
        if status not in ("paused", "finished"):
            raise ValueError(f"status must be 'paused' or 'finished', got {status!r}")
        lesson = getattr(trainer, "model", None) is None
        softmax = getattr(trainer.softmax, "__name__", type(trainer.softmax).__name__) if lesson else ""
        base = label or (f"lr {trainer.lr:g}, batch {trainer.batch_size}, seed {trainer.seed}, {softmax}" if lesson
                         else f"{short_name(trainer)}, lr {trainer.lr:g}, batch {trainer.batch_size}, seed "
                              f"{trainer.seed}")
        run = Run(self._unique(base), trainer.data.name, trainer.lr, trainer.batch_size, trainer.seed, softmax,
                  trainer.iteration, trainer.epoch, trainer.history.copy(), status,
                  getattr(trainer, "model_name", Run.model))
        self._runs.append(run)
        self._changed()
        return run

    def _unique(self, label: str) -> str:
        taken = {r.label for r in self._runs}
        if label not in taken:
            return label
        n = 2
        while f"{label} ({n})" in taken:
            n += 1
        return f"{label} ({n})"

    def remove(self, run: Run | str | int) -> Run:
        """Forget a run, given as the Run, its label or its id."""
        found = self[run]
        self._runs.remove(found)
        self._changed()
        return found

    def clear(self) -> None:
        self._runs.clear()
        self._changed()

    def __getitem__(self, key: Run | str | int) -> Run:
        for r in self._runs:
            if r is key or (isinstance(key, str) and r.label == key) or (
                    isinstance(key, int) and not isinstance(key, bool) and r.id == key):
                return r
        labels = ", ".join(repr(r.label) for r in self._runs) or "none kept yet"
        raise KeyError(f"no kept run {key!r}; kept: {labels}")

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[Run]:
        return iter(list(self._runs))

    def __len__(self) -> int:
        return len(self._runs)

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self._runs]

    def on_change(self, callback: Callable[[RunStore], None], remove: bool = False) -> None:
        """Call `callback(store)` after every add, remove or clear; remove=True unsubscribes."""
        self._listeners.register(callback, remove)

    def _changed(self) -> None:
        self._listeners(self)

    def __repr__(self) -> str:
        return f"RunStore({len(self)} runs: {', '.join(self.labels)})"
