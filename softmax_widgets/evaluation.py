"""The test set seen class by class: confusion matrix, per-class accuracy, the images of one cell.

One matmul over the test set (by chunks of its stored pixels) gives every number here; `evaluate_test_set`
keeps its result so a view can answer many cell clicks without computing again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from . import model
from .data import as_float

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["CellExamples", "TestEvaluation", "accuracy_on_test_set", "cell_examples", "confusion_matrix",
           "evaluate_test_set", "logits_on_test_set", "per_class_accuracy"]


@dataclass(frozen=True)
class TestEvaluation:
    """The model's view of the whole test set, for one W and b."""

    __test__ = False  # a name pytest would otherwise collect as a test class
    probs: torch.Tensor  # (N, C) float32: softmax of the logits (the stable one: never NaN)
    predicted: torch.Tensor  # (N,) int64: argmax
    labels: torch.Tensor  # (N,) int64: the true classes
    classes: list[str]
    iteration: int  # when it was computed, so a view can tell whether it is stale

    @property
    def confusion(self) -> torch.Tensor:
        """(C, C) counts; row = true class, column = predicted class."""
        c = len(self.classes)
        return torch.bincount(self.labels * c + self.predicted, minlength=c * c).reshape(c, c)

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).float().mean())

    @property
    def per_class_accuracy(self) -> torch.Tensor:
        """(C,) fraction of each true class predicted right (NaN for a class with no test image)."""
        m = self.confusion
        return m.diagonal().double() / m.sum(dim=1).double()


@dataclass(frozen=True)
class CellExamples:
    """Test images of one confusion cell, the most confident first."""

    true: int
    predicted: int
    indices: torch.Tensor  # (k,) positions in the test set
    probs: torch.Tensor  # (k, C) their probabilities
    count: int  # how many test images the whole cell holds

    @property
    def p_predicted(self) -> torch.Tensor:
        return self.probs[:, self.predicted]

    @property
    def p_true(self) -> torch.Tensor:
        return self.probs[:, self.true]


# test images converted to float32 per pass: 2,048 x 784 x 4 bytes = 6.4 MB at a time, not the whole 31 MB split;
# each row's logits are the same bits as one matmul over the whole set (tests/test_evaluation.py checks it)
CHUNK = 2048


@torch.no_grad()
def logits_on_test_set(trainer: Trainer) -> torch.Tensor:
    """(N, C) logits X @ W + b of the whole test set, converting its stored pixels a chunk at a time."""
    pixels = trainer.pixels_test
    if getattr(trainer, "model", None) is not None:  # another model (models.py): its own net, no autograd
        return torch.cat([trainer.model.logits(as_float(pixels[i:i + CHUNK])) for i in range(0, len(pixels), CHUNK)])
    W, b = trainer.W.detach(), trainer.b.detach()
    return torch.cat([torch.addmm(b, as_float(pixels[i:i + CHUNK]), W) for i in range(0, len(pixels), CHUNK)])


@torch.no_grad()
def accuracy_on_test_set(trainer: Trainer) -> float:
    """Test accuracy with the current W and b (argmax of the logits = argmax of softmax)."""
    return float((logits_on_test_set(trainer).argmax(dim=1) == trainer.y_test).float().mean())


@torch.no_grad()
def evaluate_test_set(trainer: Trainer) -> TestEvaluation:
    """One pass over the test set with the current W and b."""
    probs = model.stable_softmax(logits_on_test_set(trainer)).cpu()
    return TestEvaluation(probs, probs.argmax(dim=1), trainer.y_test.cpu(), list(trainer.data.classes),
                          trainer.iteration)


def _evaluation(source: Trainer | TestEvaluation) -> TestEvaluation:
    return source if isinstance(source, TestEvaluation) else evaluate_test_set(source)


def confusion_matrix(source: Trainer | TestEvaluation) -> torch.Tensor:
    """(C, C) int64 counts on the test set; rows are the true class, columns the predicted one."""
    return _evaluation(source).confusion


def per_class_accuracy(source: Trainer | TestEvaluation) -> torch.Tensor:
    """(C,) test accuracy of each true class."""
    return _evaluation(source).per_class_accuracy


def _class_index(value: int | str, classes: list[str]) -> int:
    if isinstance(value, str):
        if value not in classes:
            raise ValueError(f"unknown class {value!r}: choose one of {', '.join(classes)}")
        return classes.index(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(classes):
        raise ValueError(f"class must be a name or a number from 0 to {len(classes) - 1}, got {value!r}")
    return value


def cell_examples(source: Trainer | TestEvaluation, true: int | str, predicted: int | str,
                  k: int | None = 16) -> CellExamples:
    """Test images of class `true` predicted as `predicted` (e.g. 'Shirt' taken for 'T-shirt/top')."""
    ev = _evaluation(source)
    t, p = _class_index(true, ev.classes), _class_index(predicted, ev.classes)
    idx = ((ev.labels == t) & (ev.predicted == p)).nonzero().flatten()
    order = torch.argsort(ev.probs[idx, p], descending=True, stable=True)  # the most confident first
    idx = idx[order]
    count = len(idx)
    if k is not None:
        idx = idx[:k]
    return CellExamples(t, p, idx, ev.probs[idx], count)
