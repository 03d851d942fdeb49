"""Which operation turned the numbers NaN or inf, and for which images of the batch.

Runs only after a divergence, so it may recompute freely: the logits, exp() of them, the
probability of the true class, or each row's gradient through the student's own functions.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from . import model

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["Diagnosis", "diagnose_backward", "diagnose_forward", "diagnose_sgd"]

SHOWN = 8  # rows listed in the message; the attribute holds them all


@dataclass(frozen=True)
class Diagnosis:
    """What produced the NaN/inf (`operation`), where (`rows` of the batch, `images` in the training set)."""

    operation: str
    what: str  # the operation in words, for a status line
    rows: tuple[int, ...]
    images: tuple[int, ...]
    where: str  # the sentence the message adds: which rows (empty when no row is at fault)

    def detail(self) -> dict:
        return {"operation": self.operation, "what": self.what, "rows": list(self.rows), "images": list(self.images)}


def _make(t: Trainer, operation: str, mask: torch.Tensor | None, what: str) -> Diagnosis:
    rows = () if mask is None else tuple(int(i) for i in mask.nonzero().flatten())
    idx = t.batch_indices
    images = tuple(int(idx[r]) for r in rows) if idx is not None else ()
    if mask is None:
        where = ""
    elif not rows:
        where = "No single row of the batch is at fault: their sum is."
    else:
        shown = ", ".join(map(str, rows[:SHOWN])) + (", …" if len(rows) > SHOWN else "")
        img = ", ".join(f"#{i}" for i in images[:SHOWN]) + (", …" if len(images) > SHOWN else "")
        where = (f"It came from {len(rows)} of the batch's {len(mask)} rows: rows {shown} (training images "
                 f"{img}; all of them in err.rows and err.images).")
    return Diagnosis(operation, what, rows, images, where)


def _safe(diagnose):
    """A diagnosis must never hide the divergence it explains: on any error, say less."""
    @functools.wraps(diagnose)
    def run(t: Trainer) -> Diagnosis:
        try:
            return diagnose(t)
        except Exception:
            return Diagnosis("unknown", "NaN or inf", (), (), "")
    return run


def _custom(fn, name: str) -> bool:
    return fn is not getattr(model, name)


@_safe
@torch.no_grad()
def diagnose_forward(t: Trainer) -> Diagnosis:
    """A non-finite loss: a student's function, exp() overflow in the lesson's softmax, or log(0)."""
    y_hat, y = t.y_hat.detach(), t.y
    bad_prob = ~torch.isfinite(y_hat).all(dim=1)
    if t.softmax is not model.softmax and t.softmax is not model.stable_softmax:
        if bool(bad_prob.any()):
            return _make(t, "softmax_nonfinite", bad_prob, "your softmax returned NaN or inf")
        if bool((y_hat < 0).any()):
            return _make(t, "softmax_negative", (y_hat < 0).any(dim=1), "your softmax returned negative values")
    p_true = y_hat.gather(1, y.view(-1, 1)).squeeze(1)
    if _custom(t.loss_fn, "cross_entropy") and not bool(bad_prob.any()) and bool((y_hat > 0).all()):
        per_row = t.loss_fn(y_hat, y)
        mask = ~torch.isfinite(per_row.reshape(len(y), -1)).all(dim=1) if per_row.numel() == len(y) else None
        return _make(t, "loss_nonfinite", mask, "your loss_fn returned NaN or inf")
    logits = torch.addmm(t.b.detach(), t.X, t.W.detach())
    if t.softmax is model.softmax:
        overflow = logits.amax(dim=1) > 88  # exp(88.7) is float32's largest: inf / inf = NaN beyond
        if bool(overflow.any()):
            return _make(t, "softmax_exp_overflow", overflow,
                         f"exp() overflowed in the lesson's softmax (largest logit {float(logits.max()):.0f} > 88)")
    log0 = torch.isfinite(p_true) & (p_true <= 0)
    if bool(log0.any()):
        return _make(t, "cross_entropy_log_zero", log0,
                     "the true class got probability 0, so cross_entropy took log(0) = -inf")
    return _make(t, "nonfinite_output", bad_prob | ~torch.isfinite(logits).all(dim=1),
                 "the probabilities were NaN or inf")


@_safe
def diagnose_backward(t: Trainer) -> Diagnosis:
    """A non-finite gradient: find the rows whose gradient w.r.t. their logits is not finite."""
    with torch.no_grad():
        logits = torch.addmm(t.b.detach(), t.X, t.W.detach())
    with torch.enable_grad():
        o = logits.requires_grad_()
        try:
            (g,) = torch.autograd.grad(t.loss_fn(t.softmax(o), t.y).sum(), o)
        except Exception:  # a student's function that cannot be replayed on its own: name no rows
            return _make(t, "backward_nonfinite", None, "backward() produced NaN or inf in W.grad.")
    bad = ~torch.isfinite(g).all(dim=1)
    if not bool(bad.any()):
        return _make(t, "gradient_sum_overflow", bad, "every row's gradient is finite, but their sum X^T G overflows")
    if t.loss_fn is model.cross_entropy:
        with torch.no_grad():
            p_true = t.softmax(logits.detach()).gather(1, t.y.view(-1, 1)).squeeze(1)
        tiny = bad & (p_true < 1 / torch.finfo(p_true.dtype).max)
        if bool(tiny.any()):
            p = float(p_true[tiny].min())
            return _make(t, "cross_entropy_backward_overflow", tiny,
                         f"the true class got a probability as small as {p:.2g}, and the derivative of "
                         f"cross_entropy's -log(p) is -1/p = {-1 / p if p else -math.inf:.2g}, beyond float32's "
                         "3.4e38")
    if t.softmax is model.softmax:
        return _make(t, "softmax_backward_overflow", bad, "the derivative of the lesson's softmax overflowed "
                     f"(largest logit {float(logits.detach().max()):.0f})")
    return _make(t, "backward_nonfinite", bad, "the gradient of the loss was NaN or inf")


@_safe
def diagnose_sgd(t: Trainer) -> Diagnosis:
    """W -= lr * W.grad / B left float32's range: the step, not one image, is at fault."""
    if _custom(t.optimizer, "sgd"):
        return _make(t, "optimizer_nonfinite", None, "your optimizer put NaN or inf in W or b")
    return _make(t, "sgd_step_overflow", None, f"lr · W.grad / B overflowed float32 (lr {t.lr:g} is too large)")
