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

__all__ = ["AUTOGRAD_CUT", "Step", "accumulated_warning", "autograd_error", "describe", "loss_mean_error",
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
    return (f"softmax must return a ({rows}, {classes}) tensor of probabilities, got {describe(y_hat)}. Fix it, or "
            "put the lesson's back: trainer.use_lesson('softmax').")


def loss_shape_error(loss, rows: int) -> str:
    """loss_fn must give one loss per image or their sum: "" when it did."""
    if isinstance(loss, torch.Tensor) and loss.numel() in (1, rows):
        return ""
    return (f"loss_fn must return one loss per image ({rows} values) or their sum, got {describe(loss)}. Fix it, "
            "or put the lesson's back: trainer.use_lesson('cross_entropy').")


AUTOGRAD_CUT = ("backward() cannot fill W.grad: the loss does not depend on W, so your softmax or loss_fn cut it off "
                "from autograd (.detach(), .data, .item(), torch.tensor(...) or torch.no_grad()). W is unchanged. Fix "
                "it (or put the lesson's back: trainer.use_lesson('softmax', 'cross_entropy')), then call forward() "
                "again.")


def autograd_error(err: Exception) -> str:
    """Autograd failed on what a student's softmax or loss_fn built (its own words are about tensor versions)."""
    return (f"backward() failed inside autograd ({type(err).__name__}: {str(err).splitlines()[0][:160]}): your "
            "softmax or loss_fn built something autograd cannot differentiate (often an in-place change such as "
            "X_exp /= s). Fix it (or put the lesson's back: trainer.use_lesson('softmax', 'cross_entropy')), then "
            "call forward() again.")


def reshaped_error(name: str, lesson: str) -> str:
    """An optimizer that rebound W or b to another shape (they are put back before this is said)."""
    return (f"your {name} replaced W or b with a tensor of another shape; they were put back as they were. Update "
            "them in place (p.data -= lr * p.grad / batch_size), or put the lesson's back: "
            f"trainer.use_lesson('{lesson}')")


def skipped_warning() -> str:
    return ("next_batch() replaced a batch that sgd() never used: that batch is skipped. The usual order is forward, "
            "zero_grad, backward, sgd.")


def accumulated_warning(passes: int) -> str:
    """sgd() applied the sum of `passes` backward passes (zero_grad skipped): "" for one pass."""
    if passes <= 1:
        return ""
    return (f"sgd() applied gradients accumulated over {passes} backward passes because zero_grad() was skipped: W "
            "moved by their sum, not by this batch's gradient. Call zero_grad() before backward() to start each "
            "batch from zero.")


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
    return (f"your {name} left {what} unchanged (often `p = p - ...`, which makes a new tensor and leaves W as it "
            "was), so nothing was recorded. Update in place inside `with torch.no_grad():`, "
            "`p -= lr * p.grad / batch_size`, or put the lesson's back: "
            f"trainer.use_lesson('{lesson}').")


def step_warning(name: str, step: Step, lr: float) -> str:
    """A step that is not the lesson's in a way that will hurt: the cause measured, then the fix; "" if none."""
    B = step.batch_size
    if step.along < 0:
        return (f"your {name} moved W up the gradient (W += ...), so the loss will grow. Subtract the step: "
                "`p -= lr * p.grad / batch_size`.")
    if step.no_batch_size:
        return (f"your {name} moved W {step.ratio:.0f} times as far as the lesson's step lr · grad / {B}: it does not "
                f"divide by batch_size, so lr {lr:g} acts like {lr * B:g} and W will blow up. Divide the gradient "
                "by batch_size: `p -= lr * p.grad / batch_size`.")
    if B > 1 and abs(step.ratio * B - 1) <= CLOSE:
        return (f"your {name} moved W 1/{B} as far as the lesson's step lr · grad / {B}: it divides by batch_size "
                "twice, so training crawls. Divide once: `p -= lr * p.grad / batch_size`.")
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
    return (f"your {name} returned one number, {value:.4g}, the mean of the batch's {B} losses, so every sgd step "
            f"would be {B} times smaller than the lesson's (the Trainer sums the per-image losses, as the lesson "
            f"does); nothing was recorded. Return one loss per image (drop the .mean()), or put the lesson's "
            f"back: trainer.use_lesson('{lesson}')")


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
    return (f"your {name}'s rows do not sum to 1 (row {row} sums to {float(sums[row]):.4g}), so they are not "
            "probabilities: each row must be divided by its own sum. Keep the summed dimension: "
            f"X_exp / X_exp.sum(dim=1, keepdim=True), or put the lesson's back: trainer.use_lesson('{lesson}')")
