"""What a student's own function did, measured on the numbers, so that the status says that and not the lesson.

The lesson's functions are trusted and never measured here (no cost on the hot path). A student's are checked
for the classic mistakes a class makes, each read off the tensors: an sgd that rebinds `p` and leaves W as it
was, a step B times the lesson's (no `/ batch_size`), a step up the gradient, a cross_entropy that returns the
batch's mean, a softmax whose rows do not sum to 1 (no `keepdim=True`). Here too: what a student's function
must return (one row of probabilities per image, one loss per image), in the words that refuse it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import model
from .messages import say

__all__ = ["Step", "accumulated_warning", "autograd_cut", "autograd_error", "describe", "loss_mean_error",
           "loss_shape_error", "measure_step", "name_of", "probabilities_error", "reshaped_error", "row_sum_error",
           "skipped_warning", "step_warning", "unchanged_error"]

CLOSE = 0.05  # a measured step within 5 % of a multiple counts as that multiple (float32 rounding is far below)


def name_of(fn) -> str:
    """A student's function by the name they gave it (a lambda or a callable object by its kind)."""
    return getattr(fn, "__name__", type(fn).__name__)


def describe(x) -> str:
    """What a function returned or a file holds, in a few words: a tensor by dtype and shape, else its repr."""
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return f"{type(x).__name__} {x!r}"[:80]


# ---- what a student's softmax, loss_fn or optimizer gave back: refused with the cause, then the fix ----
def probabilities_error(y_hat, rows: int, classes: int) -> str:
    """softmax must give one row of probabilities per image: "" when it did."""
    if isinstance(y_hat, torch.Tensor) and tuple(y_hat.shape) == (rows, classes):
        return ""
    return say("measure.probabilities", rows=rows, classes=classes, got=describe(y_hat), back=_back("softmax"))


def loss_shape_error(loss, rows: int) -> str:
    """loss_fn must give one loss per image or their sum: "" when it did."""
    if isinstance(loss, torch.Tensor) and loss.numel() in (1, rows):
        return ""
    return say("measure.loss_shape", rows=rows, got=describe(loss), back=_back("cross_entropy"))


def _back(*lessons: str) -> str:
    """"put the lesson's back: trainer.use_lesson('softmax')": the fix every refusal of a student's function ends on."""
    return say("lesson_back", lessons=", ".join(map(repr, lessons)))


def autograd_cut() -> str:
    """A loss a student's softmax or loss_fn cut off from autograd."""
    return say("measure.autograd_cut", back=_back("softmax", "cross_entropy"))


def autograd_error(err: Exception) -> str:
    """Autograd failed on what a student's softmax or loss_fn built (its own words are about tensor versions)."""
    return say("measure.autograd_failed", error=f"{type(err).__name__}: {str(err).splitlines()[0][:160]}",
               back=_back("softmax", "cross_entropy"))


def reshaped_error(name: str, lesson: str) -> str:
    """An optimizer that rebound W or b to another shape (they are put back before this is said)."""
    return say("measure.reshaped", name=name, back=_back(lesson))


def skipped_warning() -> str:
    return say("measure.skipped")


def accumulated_warning(passes: int) -> str:
    """sgd() applied the sum of `passes` backward passes (zero_grad skipped): "" for one pass."""
    if passes <= 1:
        return ""
    return say("measure.accumulated", passes=passes)


@dataclass(frozen=True)
class Step:
    """One sgd step of a student's optimizer against the lesson's lr · grad / B, over W and b together:
    `ratio` 1 is the lesson's length, `along` the cosine with -grad (1 downhill, -1 uphill), `unchanged` the
    parameters that had a gradient but did not move, `batch_size` the B of that step, `by` the function's name
    (a blow-up later, after the lesson's sgd was put back, still names who made W that large)."""

    ratio: float
    along: float
    unchanged: tuple[str, ...]
    batch_size: int
    by: str = ""

    @property
    def is_lesson(self) -> bool:
        return abs(self.ratio - 1) <= CLOSE and self.along > 1 - CLOSE

    @property
    def is_wild(self) -> bool:
        """Far off the lesson's step: half again as long or more, or up the gradient (what blows W up)."""
        return self.ratio > 1.5 or self.along < 0

    @property
    def no_batch_size(self) -> bool:
        return self.batch_size > 1 and abs(self.ratio / self.batch_size - 1) <= CLOSE

    def formula(self, lr: float) -> str:
        """The update that ran, in the lesson's notation."""
        B = self.batch_size
        if self.is_lesson:
            return f"W -= {lr:g} · W.grad / {B}"
        if self.no_batch_size and self.along > 0:
            return f"W -= {lr:g} · W.grad (not / {B}: a step {B} times the lesson's)"
        sign = "+=" if self.along < 0 else "-="
        return f"W {sign} … a step {self.ratio:.3g} times the lesson's {lr:g} · W.grad / {B}"


def measure_step(params: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]], lr: float, B: int) -> Step:
    """`params`: name -> (the parameter now, its value before the step, its gradient before the step)."""
    moved = expected = dot = 0.0
    unchanged = []
    with torch.no_grad():
        for name, (p, before, grad) in params.items():
            delta = p.detach() - before
            step = grad * (lr / B)
            moved += float(delta.square().sum())
            expected += float(step.square().sum())
            dot -= float((delta * step).sum())
            if bool(grad.any()) and not bool(delta.any()):
                unchanged.append(name)
    if expected == 0:
        return Step(1.0 if moved == 0 else math.inf, 1.0, (), B)
    along = dot / math.sqrt(moved * expected) if moved else 0.0
    return Step(math.sqrt(moved / expected), along, tuple(unchanged), B)


def unchanged_error(name: str, lesson: str, step: Step) -> str:
    """An optimizer that ran and moved nothing: the cause (often a new tensor named p), then the fix."""
    what = " and ".join(step.unchanged)
    return say("measure.unchanged", name=name, what=what, back=_back(lesson))


def step_warning(name: str, step: Step, lr: float) -> str:
    """A step that is not the lesson's in a way that will hurt: the cause measured, then the fix; "" if none."""
    B = step.batch_size
    if step.along < 0:
        return say("measure.uphill", name=name)
    if step.no_batch_size:
        return say("measure.no_batch_size", name=name, ratio=step.ratio, B=B, lr=lr, lr_B=lr * B)
    if B > 1 and abs(step.ratio * B - 1) <= CLOSE:
        return say("measure.twice_batch_size", name=name, B=B)
    return ""


def loss_mean_error(loss: torch.Tensor, y_hat: torch.Tensor, y: torch.Tensor, name: str, lesson: str) -> str:
    """A loss_fn that returned one number equal to the batch's mean cross-entropy: "" when it is not that."""
    B = len(y)
    if B < 2 or loss.numel() != 1:
        return ""
    with torch.no_grad():
        losses = model.cross_entropy(y_hat.detach(), y)
        mean, value = float(losses.mean()), float(loss.detach())
    if not (math.isfinite(mean) and math.isclose(value, mean, rel_tol=1e-4, abs_tol=1e-6)):
        return ""
    return say("measure.loss_mean", name=name, value=value, B=B, back=_back(lesson))


def row_sum_error(y_hat: torch.Tensor, name: str, lesson: str) -> str:
    """A softmax whose rows do not sum to 1 (finite ones only: NaN is the divergence diagnosis's): "" when fine."""
    with torch.no_grad():
        sums = y_hat.detach().sum(dim=1)
        if not bool(torch.isfinite(sums).all()):
            return ""
        off = (sums - 1).abs()
        row = int(off.argmax())
        if float(off[row]) <= 1e-3:
            return ""
    return say("measure.row_sum", name=name, row=row, total=float(sums[row]), back=_back(lesson))
