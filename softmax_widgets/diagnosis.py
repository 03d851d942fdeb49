"""Every "why is this NaN" sentence, in one place: which operation turned the numbers NaN or inf, for which
images of the batch, and the ways out that fit where the run stands.

Runs only after a divergence, so it may recompute freely: the logits, exp() of them, the probability of the
true class, or each row's gradient through the student's own functions. The causes are checked in the order
numbers flow: the logits first (too large for exp(), or already inf), then the student's function.
"""

from __future__ import annotations

import difflib
import functools
import math
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from . import model
from .phases import Phase

if TYPE_CHECKING:
    from ._protocols import TrainerState as Trainer

__all__ = ["EXP_LIMIT", "Diagnosis", "diagnose_backward", "diagnose_forward", "diagnose_sgd", "student_error"]

EXP_LIMIT = math.log(torch.finfo(torch.float32).max)  # 88.72: exp() of anything larger is inf in float32
SHOWN = 8  # rows listed in the message; the attribute holds them all

# the ways out, by code (the dashboard shows a button for each it knows)
WAYS = {
    "stable_softmax": "switch to the stable softmax (trainer.use_stable_softmax())",
    "lower_lr": "lower the learning rate (e.g. trainer.lr = {lr_tenth:g})",
    "undo": "undo() to step back",
    "reset": "reset()",
    "lesson_function": "put the lesson's {name} back (trainer.{name} = softmax_widgets.model.{lesson})",
}


# the cause in one plain sentence, for a status line read aloud (the full explanation is `what`)
CAUSES = {
    "logits_nonfinite": "The logits X W + b are NaN or inf: W or b left float32's range.",
    "softmax_exp_overflow": "exp() overflowed: a logit of {top:.0f} is above 88.7, so softmax divided inf by inf.",
    "softmax_nonfinite": "Your softmax returned NaN or inf.",
    "softmax_negative": "Your softmax returned negative probabilities, and their log is NaN.",
    "loss_nonfinite": "Your loss_fn returned NaN or inf.",
    "cross_entropy_log_zero": "A true class got probability 0, and cross_entropy took log(0) = -inf.",
    "nonfinite_output": "The probabilities turned NaN or inf.",
    "backward_nonfinite": "backward() put NaN or inf into W.grad.",
    "gradient_sum_overflow": "W.grad overflowed: the batch's gradients summed past float32's range.",
    "cross_entropy_backward_overflow": "A true class got a probability so small that cross_entropy's slope -1/p "
                                       "overflowed in backward().",
    "softmax_backward_overflow": "softmax's slope overflowed in backward(): a logit of {top:.0f} is above 44.",
    "optimizer_nonfinite": "Your optimizer put NaN or inf into W or b.",
    "sgd_step_overflow": "The step lr · W.grad / B overflowed float32 at lr {lr:g}.",
}


@dataclass(frozen=True)
class Diagnosis:
    """What produced the NaN/inf (`operation`), where (`rows` of the batch, `images` in the training set),
    the cause in one sentence (`what`), and the ways out that fit (`ways_out`, codes of WAYS)."""

    phase: Phase
    operation: str
    what: str  # the cause, one plain sentence a teacher can read aloud
    rows: tuple[int, ...]
    images: tuple[int, ...]
    where: str  # which rows (empty when no row is at fault)
    ways_out: tuple[str, ...]
    ways_text: str  # "Ways out: ..."
    cause: str = ""  # the cause in one plain sentence (CAUSES)

    @property
    def message(self) -> str:
        where = f" {self.where}" if self.where else ""
        return f"{self.what}{where} Nothing recorded so far is lost. {self.ways_text}"

    def detail(self) -> dict:
        return {"operation": self.operation, "cause": self.cause, "what": self.what, "rows": list(self.rows),
                "images": list(self.images), "ways_out": list(self.ways_out)}


def _ways(t: Trainer, operation: str, custom: str | None) -> tuple[tuple[str, ...], str]:
    """The ways out that fit: no stable softmax when it is in use, no lower lr before any sgd step."""
    ways = []
    if custom:
        ways.append("lesson_function")
    if len(getattr(t, "snapshots", ())):
        ways.append("undo")  # first: a lower lr or another softmax does not shrink a W that already grew
    if t.iteration > 0 or operation == "sgd_step_overflow":  # before any sgd step the lr moved nothing
        ways.append("lower_lr")
    if t.softmax is not model.stable_softmax and operation in ("softmax_exp_overflow", "softmax_backward_overflow"):
        ways.append("stable_softmax")
    ways.append("reset")
    name, lesson = custom or "softmax", {"softmax": "softmax", "loss_fn": "cross_entropy",
                                         "optimizer": "sgd"}.get(custom or "softmax")
    texts = [WAYS[w].format(lr_tenth=t.lr / 10, name=name, lesson=lesson) for w in ways]
    return tuple(ways), "Ways out: " + ", ".join(texts[:-1]) + (", or " if len(texts) > 1 else "") + texts[-1] + "."


def _cause_of_large_weights(t: Trainer) -> str:
    """Why W or b got so large: sgd steps with too large an lr, if any has run; else they were set from code."""
    big = max(float(t.W.detach().abs().max()), float(t.b.detach().abs().max()))
    if t.iteration > 0:
        return (f"W grew that large (largest |W| or |b|: {big:.3g}) through sgd steps with a learning rate too large "
                f"for this data (lr is now {t.lr:g}), and a lower lr alone keeps that W: undo() the large steps first")
    return (f"no sgd step has run yet, so the learning rate is not the cause: W or b were set to large values "
            f"(largest |W| or |b|: {big:.3g})")


def _make(t: Trainer, phase: Phase, operation: str, mask: torch.Tensor | None, what: str,
          custom: str | None = None, top: float = math.nan) -> Diagnosis:
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
    ways, text = _ways(t, operation, custom)
    cause = CAUSES.get(operation, what).format(top=top, lr=t.lr)
    return Diagnosis(phase, operation, what, rows, images, where, ways, text, cause)


def _safe(diagnose):
    """A diagnosis must never hide the divergence it explains: on any error, say less."""
    @functools.wraps(diagnose)
    def run(t: Trainer) -> Diagnosis:
        try:
            return diagnose(t)
        except Exception:
            phase = {"diagnose_forward": Phase.FORWARD, "diagnose_backward": Phase.BACKWARD}.get(
                diagnose.__name__, Phase.SGD)
            return Diagnosis(phase, "unknown", f"{phase}() produced NaN or inf.", (), (), "", ("reset",),
                             "Ways out: reset().", f"{phase}() produced NaN or inf.")
    return run


def _custom(fn, name: str) -> bool:
    return fn is not getattr(model, name)


@_safe
@torch.no_grad()
def diagnose_forward(t: Trainer) -> Diagnosis:
    """A non-finite loss. The logits first (inf already, or too large for exp()), then the student's function."""
    y_hat, y = t.y_hat.detach(), t.y
    lead = f"forward() gave a loss of {t.loss_value} on this batch: "
    logits = torch.addmm(t.b.detach(), t.X, t.W.detach())
    bad_logits = ~torch.isfinite(logits).all(dim=1)
    if bool(bad_logits.any()):
        return _make(t, Phase.FORWARD, "logits_nonfinite", bad_logits, lead + "the logits X W + b are already NaN "
                     f"or inf, because W or b left float32's range; {_cause_of_large_weights(t)}.")
    bad_prob = ~torch.isfinite(y_hat).all(dim=1)
    top = float(logits.max())
    if bool(bad_prob.any()) and top > EXP_LIMIT and not bool(torch.isfinite(model.softmax(logits)).all()):
        yours = "" if t.softmax is model.softmax else " (your softmax takes exp() of the raw logits, as the lesson's)"
        return _make(t, Phase.FORWARD, "softmax_exp_overflow", bad_prob & (logits.amax(dim=1) > EXP_LIMIT),
                     lead + f"exp() overflowed: the largest logit is {top:.0f}, exp() of anything above "
                     f"{EXP_LIMIT:.1f} overflows float32 to inf, and softmax then divides inf by inf (NaN){yours}; "
                     f"{_cause_of_large_weights(t)}.", top=top)
    if _custom(t.softmax, "softmax") and t.softmax is not model.stable_softmax:
        if bool(bad_prob.any()):
            return _make(t, Phase.FORWARD, "softmax_nonfinite", bad_prob, lead + "your softmax returned NaN or inf "
                         f"although every logit is finite and at most {top:.3g}: check it on a small tensor.",
                         custom="softmax")
        if bool((y_hat < 0).any()):
            return _make(t, Phase.FORWARD, "softmax_negative", (y_hat < 0).any(dim=1), lead + "your softmax "
                         "returned negative probabilities, and log() of a negative number is NaN.", custom="softmax")
    p_true = y_hat.gather(1, y.view(-1, 1)).squeeze(1)
    if _custom(t.loss_fn, "cross_entropy") and not bool(bad_prob.any()) and bool((y_hat > 0).all()):
        per_row = t.loss_fn(y_hat, y)
        mask = ~torch.isfinite(per_row.reshape(len(y), -1)).all(dim=1) if per_row.numel() == len(y) else None
        return _make(t, Phase.FORWARD, "loss_nonfinite", mask, lead + "your loss_fn returned NaN or inf although "
                     "every probability in y_hat is a finite number above 0.", custom="loss_fn")
    log0 = torch.isfinite(p_true) & (p_true <= 0)
    if bool(log0.any()):
        return _make(t, Phase.FORWARD, "cross_entropy_log_zero", log0, lead + "the true class got probability 0, "
                     f"so cross_entropy took log(0) = -inf; {_cause_of_large_weights(t)}.")
    return _make(t, Phase.FORWARD, "nonfinite_output", bad_prob, lead + "the probabilities were NaN or inf; "
                 f"{_cause_of_large_weights(t)}.")


@_safe
def diagnose_backward(t: Trainer) -> Diagnosis:
    """A non-finite gradient: find the rows whose gradient w.r.t. their logits is not finite."""
    lead = (f"backward() produced NaN or inf in W.grad although the loss ({t.loss_value:.4g}) was finite, so sgd() "
            "will refuse it (zero_grad() clears it): ")
    with torch.no_grad():
        logits = torch.addmm(t.b.detach(), t.X, t.W.detach())
    with torch.enable_grad():
        o = logits.requires_grad_()
        try:
            (g,) = torch.autograd.grad(t.loss_fn(t.softmax(o), t.y).sum(), o)
        except Exception:  # a student's function that cannot be replayed on its own: name no rows
            return _make(t, Phase.BACKWARD, "backward_nonfinite", None, lead + "the gradient was NaN or inf.")
    bad = ~torch.isfinite(g).all(dim=1)
    if not bool(bad.any()):
        return _make(t, Phase.BACKWARD, "gradient_sum_overflow", bad, lead + "every row's gradient is finite, but "
                     f"their sum Xᵀ G overflows float32; {_cause_of_large_weights(t)}.")
    if t.loss_fn is model.cross_entropy:
        with torch.no_grad():
            p_true = t.softmax(logits.detach()).gather(1, t.y.view(-1, 1)).squeeze(1)
        tiny = bad & (p_true < 1 / torch.finfo(p_true.dtype).max)
        if bool(tiny.any()):
            p = float(p_true[tiny].min())
            return _make(t, Phase.BACKWARD, "cross_entropy_backward_overflow", tiny,
                         lead + f"the true class got a probability as small as {p:.2g}, and the derivative of "
                         f"cross_entropy's -log(p) is -1/p = {-1 / p if p else -math.inf:.2g}, beyond float32's "
                         "3.4e38.")
    top = float(logits.detach().max())
    if top > EXP_LIMIT / 2 and t.softmax is not model.stable_softmax:
        # exp(o) / s: the quotient's derivative divides by s², which is inf once the logits pass ~44
        return _make(t, Phase.BACKWARD, "softmax_backward_overflow", bad, lead + "the derivative of softmax "
                     f"overflowed: it divides by the squared row sum of exp(), which is inf once a logit passes "
                     f"{EXP_LIMIT / 2:.0f} (the largest is {top:.0f}).", top=top)
    custom = "softmax" if _custom(t.softmax, "stable_softmax") else ("loss_fn" if _custom(
        t.loss_fn, "cross_entropy") else None)
    return _make(t, Phase.BACKWARD, "backward_nonfinite", bad, lead + "the gradient of the loss was NaN or inf.",
                 custom=custom)


@_safe
def diagnose_sgd(t: Trainer) -> Diagnosis:
    """W -= lr * W.grad / B left float32's range: the step, not one image, is at fault."""
    lead = f"sgd() with lr={t.lr:g} pushed W to NaN or inf, so W and b were put back as they were: "
    if _custom(t.optimizer, "sgd"):
        return _make(t, Phase.SGD, "optimizer_nonfinite", None, lead + "your optimizer put NaN or inf in W or b.",
                     custom="optimizer")
    return _make(t, Phase.SGD, "sgd_step_overflow", None, lead + f"lr · W.grad / B overflowed float32 (lr {t.lr:g} "
                 "is too large).")


def student_error(name: str, lesson: str, fn, err: Exception) -> str:
    """A student's function raised: say where in their code, with a hint that does not hand over the answer."""
    line = ""
    code = getattr(fn, "__code__", None)
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        if code is not None and frame.filename == code.co_filename:
            line = f" on line {frame.lineno - code.co_firstlineno + 1} of your {name} (`{frame.line}`)"
            break
    hint = ""
    if isinstance(err, NameError) and getattr(err, "name", None):
        known = list(code.co_varnames) if code else []
        known += [k for k in getattr(fn, "__globals__", {}) if not k.startswith("_")]
        close = difflib.get_close_matches(err.name, known, n=1)
        hint = (f" Python does not know the name `{err.name}`" + (f": did you mean `{close[0]}`?" if close else
                ": define it first, or check its spelling.") + "")
    return (f"your {name} raised {type(err).__name__}: {err}{line}. Nothing changed.{hint} Fix it and run the "
            f"step again, or put the lesson's back: trainer.{name} = softmax_widgets.model.{lesson}")
