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

from . import measure, model, undo
from .phases import Phase

if TYPE_CHECKING:
    from ._protocols import TrainerState as Trainer

__all__ = ["EXP_LIMIT", "LESSON_LR", "Blowup", "Diagnosis", "Way", "blowup", "diagnose_backward", "diagnose_forward",
           "diagnose_sgd", "student_error", "ways_text"]

EXP_LIMIT = math.log(torch.finfo(torch.float32).max)  # 88.72: exp() of anything larger is inf in float32
SHOWN = 8  # rows listed in the message; the attribute holds them all

# the ways out, by code (the dashboard shows a button for each it knows): what a code user types. The ways a
# divergence offers come as Way values, the one that works first (Diagnosis.ways, event.detail["ways"])
WAYS = {
    "stable_softmax": "switch to the stable softmax (trainer.use_stable_softmax())",
    "lower_lr": "lower the learning rate (e.g. trainer.lr = {lr_tenth:g})",
    "undo": "undo() to step back",
    "reset": "reset()",
    "lesson_function": "put the lesson's {lesson} back (trainer.use_lesson('{lesson}'))",
}
LESSON_LR = 0.1  # the lesson's lr: it trains every dataset here without blowing up


@dataclass(frozen=True)
class Way:
    """One way out of a divergence: its code (a WAYS key, a dashboard button), the button's words, the code a
    notebook user types, the lr it goes on at (None: the lr stays) and the sgd steps it takes back."""

    code: str
    label: str  # the button: "↶ undo the 3 sgd steps at lr 10, lr → 0.1"
    text: str  # for code: "undo the 3 sgd steps ... (trainer.undo(lr_above=0.1); trainer.lr = 0.1)"
    lr: float | None = None
    steps: int = 0
    undo: dict | None = None  # what it passes to trainer.undo(...) first: {"lr_above": 0.1}, {"before": "hand"}
    lesson: str | None = None  # the lesson's function it puts back after the undo: trainer.use_lesson(lesson)

    def detail(self) -> dict:
        return {"code": self.code, "label": self.label, "text": self.text, "lr": self.lr, "steps": self.steps,
                "undo": self.undo, "lesson": self.lesson}


@dataclass(frozen=True)
class Blowup:
    """Why W or b are as large as they are, read from the undo ring: `kind` "hand" (changed between phases),
    "lr" (sgd steps at too large an lr: `steps` of them at `lrs`, `lr` the lr to go on at, `complete` when undo
    reaches back past all of them), or "" (neither: set so from the start, or not known)."""

    kind: str = ""
    note: str = ""
    steps: int = 0
    lrs: tuple[float, ...] = ()
    lr: float | None = None
    complete: bool = True

    @property
    def lrs_text(self) -> str:
        values = sorted(set(self.lrs), reverse=True)
        return " and ".join(f"{v:g}" for v in values[:3]) + (" …" if len(values) > 3 else "")

    @property
    def steps_text(self) -> str:
        return f"the sgd step at lr {self.lrs_text}" if self.steps == 1 else \
            f"the {self.steps} sgd steps at lr {self.lrs_text}"


def blowup(t: Trainer, operation: str = "") -> Blowup:
    """Read the undo ring, newest first: a change by hand newer than every sgd step is the cause; else the lr is,
    when some of the newest steps (or the lr now) are above the lr to go on at: the lr the run used before it was
    raised, or the lesson's 0.1 (never above the lr now: a student's lower choice stays)."""
    ring = getattr(t, "snapshots", None)
    walk = list(ring.walk()) if ring is not None and ring.capacity else []
    for s in walk:
        if s.phase == undo.HAND:
            return Blowup("hand", s.note)
        if s.phase is Phase.SGD or not isinstance(s.phase, Phase):
            break
    step = getattr(t, "last_step", None)  # None once the lesson's sgd has stepped since
    if step is not None and step.is_wild and getattr(t, "wild_steps", 0) > 0:
        name = step.by or measure.name_of(t.optimizer)
        how = ("moves W up the gradient" if step.along < 0 else f"makes steps {step.ratio:.0f} times the lesson's "
               f"lr · grad / {step.batch_size}" + (" (it does not divide by batch_size)" if step.no_batch_size else ""))
        steps = getattr(t, "wild_steps", 0)
        reach = sum(1 for s in walk if s.phase is Phase.SGD)  # the sgd steps undo can still take back
        return Blowup("optimizer", f"your {name} {how}", steps, complete=0 < steps <= reach)
    step_lrs = []
    for s in walk:
        if s.phase == undo.HAND or not isinstance(s.phase, Phase):
            break
        if s.phase is Phase.SGD:
            step_lrs.append(s.lr)
    top = max([t.lr, *step_lrs[:1]])
    safe = next((lr for lr in step_lrs if lr < top), None)
    if safe is None:
        safe = LESSON_LR if top > LESSON_LR else (t.lr / 10 if operation == "sgd_step_overflow" else None)
    if safe is None or (t.iteration == 0 and operation != "sgd_step_overflow"):
        return Blowup()  # the lesson's lr moved W; or no step has run: the lr moved nothing yet
    safe = min(safe, t.lr)
    lrs, complete = [], not ring.full if ring is not None and ring.capacity else t.iteration == 0
    for s in walk:
        if s.phase is Phase.SGD and s.lr > safe:
            lrs.append(s.lr)
        elif s.phase is Phase.SGD or s.phase == undo.HAND or not isinstance(s.phase, Phase):
            complete = True  # undo reaches back past every step above the safe lr
            break
    if not lrs and t.lr <= safe:
        return Blowup()
    if not lrs and t.iteration > 0 and operation != "sgd_step_overflow":
        complete = False  # steps made W large, but none of them is in undo's reach
    return Blowup("lr", "", len(lrs), tuple(lrs), safe, complete)


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
    ways: tuple[Way, ...] = ()  # the ways out, the one that works first
    reason: str = ""  # why W got there, one short sentence ("3 sgd steps at lr 10 pushed W there.")

    @property
    def message(self) -> str:
        """What a teacher reads aloud: the cause (and why W got there), then the ways out; the rest is `details`."""
        cause = self.cause if self.cause.startswith(f"{self.phase}()") else f"{self.phase}(): {self.cause}"
        reason = f" {self.reason}" if self.reason else ""
        kept = " W and b were put back as they were." if self.phase is Phase.SGD else ""
        return f"{cause}{kept}{reason} {self.ways_text}"

    @property
    def details(self) -> str:
        """The whole explanation: each number, the rows and images at fault; nothing recorded is lost."""
        where = f" {self.where}" if self.where else ""
        return f"{self.what}{where} Nothing recorded so far is lost. {self.ways_text}"

    def detail(self) -> dict:
        return {"operation": self.operation, "cause": self.cause, "what": self.what, "rows": list(self.rows),
                "images": list(self.images), "ways_out": list(self.ways_out), "reason": self.reason,
                "where": self.where,
                "ways": [w.detail() for w in self.ways]}


def _ways(t: Trainer, operation: str, custom: str | None, cause: Blowup) -> tuple[Way, ...]:
    """The ways out that can help where the run stands, the one that works first: the lesson's function back; the
    change by hand taken back; the large steps taken back and the lr lowered, in one (a lower lr alone keeps the W
    they made); the stable softmax only when the lr is not the cause and it gives this batch a finite loss and
    gradient; reset last (at the lower lr when the lr was the cause)."""
    ways = []
    if custom:
        lesson = {"softmax": "softmax", "loss_fn": "cross_entropy", "optimizer": "sgd"}[custom]
        ways.append(Way("lesson_function", f"the lesson's {lesson}", WAYS["lesson_function"].format(
            name=custom, lesson=lesson)))
    if cause.kind == "optimizer" and cause.complete:  # W is already too large: the lesson's sgd alone keeps it
        whole = cause.steps + (t.next_phase is not Phase.NEXT_BATCH)  # this half-done iteration counts as one
        them = "its step" if cause.steps == 1 else f"its {cause.steps} steps"
        if _custom(t.optimizer, "sgd"):
            ways.append(Way("undo", f"↶ undo {them}, the lesson's sgd", f"take back {them} and put the lesson's sgd "
                            f"back (trainer.undo({whole}); trainer.use_lesson('sgd'))", steps=cause.steps,
                            undo={"iterations": whole}, lesson="sgd"))
        else:  # the lesson's sgd is back already: only W is left to take back
            ways.append(Way("undo", f"↶ undo {them}", f"take back {them} (trainer.undo({whole}))", steps=cause.steps,
                            undo={"iterations": whole}))
    elif cause.kind == "optimizer" and not custom:
        ways.append(Way("lesson_function", "the lesson's sgd", WAYS["lesson_function"].format(
            name="optimizer", lesson="sgd")))
    if cause.kind == "hand":
        ways.append(Way("undo", "↶ undo the change by hand", "undo the change by hand (trainer.undo(before='hand'))",
                        undo={"before": undo.HAND}))
    lr = None
    if cause.kind == "lr":
        lr = cause.lr if cause.lr < t.lr else None
        if cause.complete and (cause.steps or lr is not None):
            to = f", lr → {lr:g}" if lr is not None else ""
            if cause.steps:
                label = f"↶ undo {cause.steps_text}{to}"
                text = (f"undo {cause.steps_text}" + (f" and lower the learning rate to {lr:g}" if lr else "")
                        + f" (trainer.undo(lr_above={cause.lr:g})" + (f"; trainer.lr = {lr:g})" if lr else ")"))
            else:
                label, text = f"lr → {lr:g}", f"lower the learning rate (trainer.lr = {lr:g})"
            ways.append(Way("lower_lr" if lr is not None else "undo", label, text, lr, cause.steps,
                            {"lr_above": cause.lr} if cause.steps else None))
    elif cause.kind != "optimizer" and t.softmax is not model.stable_softmax and operation in (
            "softmax_exp_overflow", "softmax_backward_overflow") and _stable_helps(t):
        ways.append(Way("stable_softmax", "use stable softmax", WAYS["stable_softmax"]))
    if lr is not None:
        ways.append(Way("reset", f"Reset, lr → {lr:g}", f"reset() at the lr {lr:g} (trainer.lr = {lr:g}; "
                        "trainer.reset())", lr))
    else:
        ways.append(Way("reset", "Reset", WAYS["reset"]))
    return tuple(ways)


def ways_text(ways: tuple[Way, ...]) -> str:
    """The ways out for a code user, in one sentence: "Ways out: ..., or ...."."""
    texts = [w.text for w in ways]
    return "Ways out: " + ", ".join(texts[:-1]) + (", or " if len(texts) > 1 else "") + texts[-1] + "."


def _stable_helps(t: Trainer) -> bool:
    """Would the stable softmax give this batch a finite loss and gradient, with W as it is?"""
    try:
        with torch.enable_grad():
            o = torch.addmm(t.b.detach(), t.X, t.W.detach()).requires_grad_()
            loss = t.loss_fn(model.stable_softmax(o), t.y).sum()
            if not bool(torch.isfinite(loss)):
                return False
            (g,) = torch.autograd.grad(loss, o)
        return bool(torch.isfinite(g).all())
    except Exception:  # a student's loss_fn that cannot run here: say nothing about it
        return False


def _reason(t: Trainer, cause: Blowup) -> str:
    """Why W got there, in one short sentence for the status line."""
    if cause.kind in ("hand", "optimizer"):
        return f"The cause: {cause.note}."
    if cause.kind == "lr" and cause.steps:
        return f"{cause.steps_text[0].upper()}{cause.steps_text[1:]} pushed W there."
    if cause.kind == "lr":
        return f"lr {t.lr:g} is too large for this data."
    return ""


def _cause_of_large_weights(t: Trainer) -> str:
    """Why W or b got so large: a change by hand, sgd steps with too large an lr, or set so from the start."""
    big = max(float(t.W.detach().abs().max()), float(t.b.detach().abs().max()))
    cause = blowup(t)
    if cause.kind == "hand":
        return (f"{cause.note} before this phase, and that is what pushed the numbers out of range (largest |W| or "
                f"|b|: {big:.3g}), so the learning rate is not the cause: undo the change to go on")
    if cause.kind == "optimizer":
        return (f"{cause.note}, and its steps pushed W that large (largest |W| or |b|: {big:.3g}), so the learning "
                "rate is not the cause: fix your optimizer or put the lesson's sgd back")
    if cause.kind == "lr" and cause.steps and cause.complete:
        return (f"W grew that large (largest |W| or |b|: {big:.3g}) through {cause.steps_text}, too large for this "
                f"data, and a lower lr alone keeps that W: take those steps back and go on at lr "
                f"{min(cause.lr, t.lr):g}")
    if cause.kind == "lr":
        return (f"W grew that large (largest |W| or |b|: {big:.3g}) through sgd steps with a learning rate too large "
                f"for this data (lr is now {t.lr:g}), and undo no longer reaches back before them: reset() at lr "
                f"{cause.lr:g}")
    if t.iteration > 0:
        return (f"W or b are that large (largest |W| or |b|: {big:.3g}) although no sgd step used an lr above the "
                f"lesson's {LESSON_LR:g}: they were set to large values (init_std, or from code)")
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
    blown = blowup(t, operation) if custom is None else Blowup()
    ways = _ways(t, operation, custom, blown)
    cause = CAUSES.get(operation, what).format(top=top, lr=t.lr)
    return Diagnosis(phase, operation, what, rows, images, where, tuple(w.code for w in ways), ways_text(ways),
                     cause, ways, _reason(t, blown))


def _safe(diagnose):
    """A diagnosis must never hide the divergence it explains: on any error, say less."""
    @functools.wraps(diagnose)
    def run(t: Trainer) -> Diagnosis:
        try:
            return diagnose(t)
        except Exception:
            phase = {"diagnose_forward": Phase.FORWARD, "diagnose_backward": Phase.BACKWARD}.get(
                diagnose.__name__, Phase.SGD)
            reset = (Way("reset", "Reset", WAYS["reset"]),)
            return Diagnosis(phase, "unknown", f"{phase}() produced NaN or inf.", (), (), "", ("reset",),
                             "Ways out: reset().", f"{phase}() produced NaN or inf.", reset)
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
                         f"3.4e38; {_cause_of_large_weights(t)}.")
    top = float(logits.detach().max())
    if top > EXP_LIMIT / 2 and t.softmax is not model.stable_softmax:
        # exp(o) / s: the quotient's derivative divides by s², which is inf once the logits pass ~44
        return _make(t, Phase.BACKWARD, "softmax_backward_overflow", bad, lead + "the derivative of softmax "
                     f"overflowed: it divides by the squared row sum of exp(), which is inf once a logit passes "
                     f"{EXP_LIMIT / 2:.0f} (the largest is {top:.0f}); {_cause_of_large_weights(t)}.", top=top)
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
    line, where = "", ""
    code = getattr(fn, "__code__", None)
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        if code is not None and frame.filename == code.co_filename:
            number = frame.lineno - code.co_firstlineno + 1
            line = f" on line {number} of your {name} (`{frame.line}`)"
            where = f" (line {number}: `{frame.line}`)"
            break
    if isinstance(err, RuntimeError) and "leaf Variable that requires grad" in str(err):
        # torch's own words name neither the cure nor the line: say both, in two sentences a class can hear
        return (f"your {name} tried to change W or b in place while autograd was recording{where}; torch refuses "
                "that, so W and b are as they were. Put the update inside `with torch.no_grad():`, or write "
                "`p.data -= ...` as the lesson does.")
    if name == "softmax" and isinstance(err, RuntimeError) and "must match the size of tensor" in str(err):
        # the classic missing keepdim: torch's words are about tensors a and b, the student's about rows and sums
        return (f"your softmax's row sums do not line up with its rows{where}, so nothing changed. Keep the summed "
                "dimension, X_exp.sum(dim=1, keepdim=True), so row i is divided by row i's sum, or put the lesson's "
                "back: trainer.use_lesson('softmax').")
    hint = ""
    if isinstance(err, NameError) and getattr(err, "name", None):
        known = list(code.co_varnames) if code else []
        known += [k for k in getattr(fn, "__globals__", {}) if not k.startswith("_")]
        close = difflib.get_close_matches(err.name, known, n=1)
        hint = (f" Python does not know the name `{err.name}`" + (f": did you mean `{close[0]}`?" if close else
                ": define it first, or check its spelling.") + "")
    text = str(err).rstrip(". ")
    return (f"your {name} raised {type(err).__name__}: {text}{line}. Nothing changed.{hint} Fix it and run the "
            f"step again, or put the lesson's back: trainer.use_lesson('{lesson}')")
