"""Every sentence the core says to a student, in one catalog keyed by a stable id, and the hook a course uses to
translate them (gettext-style: the id is the msgid, the English template the default).

Code says `say("refuse.forward.no_batch")` or `say("lesson_back", lessons="'softmax'")`; what comes back is a
`Said`: the sentence as a str, carrying its `.id` and `.fields`, so errors and events can name what happened
without anyone parsing prose. A new sentence is one entry here (the UI's are in softmax_widgets/ui/messages.py).
A sentence said in several places (the lesson's functions back, "could not be downloaded") is one entry, filled in.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["CATALOG", "Catalog", "Said", "fields_of", "say", "set_translation", "translation"]

_FMT = string.Formatter()


class Said(str):
    """A sentence from a catalog: a str (what prints), plus the id it came from and the fields it was filled with."""

    id: str
    fields: dict[str, Any]

    def __new__(cls, text: str, id: str = "", fields: dict[str, Any] | None = None) -> Said:
        said = super().__new__(cls, text)
        said.id, said.fields = id, fields or {}
        return said

    def __reduce__(self):  # pickled (an event kept by a listener, say) as what it is: its words and its id
        return Said, (str(self), self.id, self.fields)


# a course's translation: id -> template (a dict), or a function (id, english template) -> template; None: English
_translation: Callable[[str, str], str] | None = None


def set_translation(translation: Mapping[str, str] | Callable[[str, str], str] | None) -> None:
    """Install a translation for every catalog (core and UI): a dict of id -> template with the same {fields}, or
    a gettext-like function (id, english) -> template. Ids it lacks stay English; None puts English back."""
    global _translation
    if translation is None or callable(translation):
        _translation = translation
    else:
        table = dict(translation)
        _translation = lambda id, english: table.get(id, english)  # noqa: E731


def translation() -> Callable[[str, str], str] | None:
    """The translation installed now (to put it back after a test, say)."""
    return _translation


def fields_of(template: str) -> set[str]:
    """The {field} names a template needs."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in _FMT.parse(template) if name}


class Catalog:
    """One layer's sentences: `say(id, **fields)` fills the (translated) template; an unknown id fails loudly."""

    def __init__(self, name: str, templates: dict[str, str]):
        self.name, self.templates = name, templates

    def say(self, id: str, /, **fields: Any) -> Said:
        try:
            english = self.templates[id]
        except KeyError:
            raise KeyError(f"no sentence {id!r} in the {self.name} catalog: add it to {self.name}'s messages.py") \
                from None
        template = _translation(id, english) if _translation is not None else english
        try:
            text = template.format(**fields)
        except (KeyError, IndexError, ValueError):
            if template is english:
                raise
            text = english.format(**fields)  # a translation with a broken template: English, never a crash
        return Said(text, id, fields)


# ---- the core's sentences, by id; the families (refuse.*, cause.*, way.*) are read by their tables ----
CATALOG: dict[str, str] = {
    # the lesson's functions back: said wherever a student's function is refused
    "lesson_back": "put the lesson's back: trainer.use_lesson({lessons})",
    # phases.RULES: a phase called out of order (each names the next call first)
    "refuse.forward.no_batch": "forward() needs a batch: call next_batch() first.",
    "refuse.backward.no_batch": "backward() needs a loss, and there is no batch yet: call next_batch(), then "
                                "forward().",
    "refuse.sgd.no_batch": "sgd() needs gradients, and there is no batch yet: call next_batch(), then forward(), "
                           "zero_grad() and backward().",
    "refuse.forward.used_batch": "forward() needs a new batch: sgd() already used this one. Call next_batch() first.",
    "refuse.backward.used_batch": "backward() needs a forward pass on a new batch: sgd() already used this batch and "
                                  "changed W, so its forward is stale. Call next_batch(), then forward().",
    "refuse.sgd.used_batch": "sgd() already applied this batch's gradients: call next_batch() to start the next "
                             "iteration.",
    "refuse.backward.nonfinite_grad": "backward() would add to W.grad, which holds NaN or inf: call zero_grad() "
                                      "first.",
    "refuse.sgd.nonfinite_grad": "sgd() refused: W.grad holds NaN or inf, and applying it would destroy W. Call "
                                 "zero_grad() to clear it.",
    "refuse.backward.consumed": "backward() already ran on this forward pass, and autograd freed the graph's saved "
                                "tensors after it. Call sgd() to apply the gradients, or forward() to build a new "
                                "graph.",
    "refuse.backward.consumed_zeroed": "backward() already ran on this forward pass and autograd freed its graph; "
                                       "zero_grad() cleared the gradients since. Call forward() again, then "
                                       "backward().",
    "refuse.sgd.consumed_zeroed": "sgd() needs gradients, but zero_grad() cleared them after backward(). Call "
                                  "forward() and backward() again, then sgd().",
    "refuse.sgd.no_backward": "sgd() needs gradients of this forward pass: call backward() first.",
    "refuse.sgd.not_zeroed": "sgd() needs gradients of this forward pass, and backward() has not run on it: call "
                             "zero_grad(), then backward().",
    "refuse.backward.nonfinite_loss": "backward() needs a finite loss, but the last forward() gave NaN or inf. Fix "
                                      "the cause, then call forward() again.",
    "refuse.sgd.no_forward": "sgd() needs gradients of this batch: call forward(), then zero_grad() and backward().",
    "refuse.backward.no_forward": "backward() needs a loss: call forward() first.",
    # diagnosis.CAUSES: the cause of a divergence in one plain sentence, read aloud
    "cause.logits_nonfinite": "The logits X W + b are NaN or inf: W or b left float32's range.",
    "cause.softmax_exp_overflow": "exp() overflowed: a logit of {top:.0f} is above 88.7, so softmax divided inf by "
                                  "inf.",
    "cause.softmax_nonfinite": "Your softmax returned NaN or inf.",
    "cause.softmax_negative": "Your softmax returned negative probabilities, and their log is NaN.",
    "cause.loss_nonfinite": "Your loss_fn returned NaN or inf.",
    "cause.cross_entropy_log_zero": "A true class got probability 0, and cross_entropy took log(0) = -inf.",
    "cause.nonfinite_output": "The probabilities turned NaN or inf.",
    "cause.backward_nonfinite": "backward() put NaN or inf into W.grad.",
    "cause.gradient_sum_overflow": "W.grad overflowed: the batch's gradients summed past float32's range.",
    "cause.cross_entropy_backward_overflow": "A true class got a probability so small that cross_entropy's slope "
                                             "-1/p overflowed in backward().",
    "cause.softmax_backward_overflow": "softmax's slope overflowed in backward(): a logit of {top:.0f} is above 44.",
    "cause.optimizer_nonfinite": "Your optimizer put NaN or inf into W or b.",
    "cause.sgd_step_overflow": "The step lr · W.grad / B overflowed float32 at lr {lr:g}.",
    "cause.unknown": "{phase}() produced NaN or inf.",
    # diagnosis.WAYS: the ways out, as a code user types them
    "way.stable_softmax": "switch to the stable softmax (trainer.use_stable_softmax())",
    "way.reset": "reset()",
    "way.lesson_function": "put the lesson's {lesson} back (trainer.use_lesson('{lesson}'))",
    # diagnosis.student_error: a student's function raised
    "student.in_place_leaf": "your {name} tried to change W or b in place while autograd was recording{where}; "
                             "torch refuses that, so W and b are as they were. Put the update inside `with "
                             "torch.no_grad():`, or write `p.data -= ...` as the lesson does.",
    "student.keepdim": "your softmax's row sums do not line up with its rows{where}, so nothing changed. Keep the "
                       "summed dimension, X_exp.sum(dim=1, keepdim=True), so row i is divided by row i's sum, or "
                       "{back}.",
    "student.unknown_name": " Python does not know the name `{name}`: did you mean `{close}`?",
    "student.undefined_name": " Python does not know the name `{name}`: define it first, or check its spelling.",
    "student.raised": "your {name} raised {error}: {text}{line}. Nothing changed.{hint} Fix it and run the step "
                      "again, or {back}",
    # measure.py: what a student's softmax, loss_fn or optimizer gave back, refused with the cause, then the fix
    "measure.probabilities": "softmax must return a ({rows}, {classes}) tensor of probabilities, got {got}. Fix it, "
                             "or {back}.",
    "measure.loss_shape": "loss_fn must return one loss per image ({rows} values) or their sum, got {got}. Fix it, "
                          "or {back}.",
    "measure.autograd_cut": "backward() cannot fill W.grad: the loss does not depend on W, so your softmax or "
                            "loss_fn cut it off from autograd (.detach(), .data, .item(), torch.tensor(...) or "
                            "torch.no_grad()). W is unchanged. Fix it (or {back}), then call forward() again.",
    "measure.autograd_failed": "backward() failed inside autograd ({error}): your softmax or loss_fn built "
                               "something autograd cannot differentiate (often an in-place change such as X_exp /= "
                               "s). Fix it (or {back}), then call forward() again.",
    "measure.reshaped": "your {name} replaced W or b with a tensor of another shape; they were put back as they "
                        "were. Update them in place (p.data -= lr * p.grad / batch_size), or {back}",
    "measure.skipped": "next_batch() replaced a batch that sgd() never used: that batch is skipped. The usual order "
                       "is forward, zero_grad, backward, sgd.",
    "measure.accumulated": "sgd() applied gradients accumulated over {passes} backward passes because zero_grad() "
                           "was skipped: W moved by their sum, not by this batch's gradient. Call zero_grad() before "
                           "backward() to start each batch from zero.",
    "measure.unchanged": "your {name} left {what} unchanged (often `p = p - ...`, which makes a new tensor and "
                         "leaves W as it was), so nothing was recorded. Update in place inside `with "
                         "torch.no_grad():`, `p -= lr * p.grad / batch_size`, or {back}.",
    "measure.uphill": "your {name} moved W up the gradient (W += ...), so the loss will grow. Subtract the step: "
                      "`p -= lr * p.grad / batch_size`.",
    "measure.no_batch_size": "your {name} moved W {ratio:.0f} times as far as the lesson's step lr · grad / {B}: it "
                             "does not divide by batch_size, so lr {lr:g} acts like {lr_B:g} and W will blow up. "
                             "Divide the gradient by batch_size: `p -= lr * p.grad / batch_size`.",
    "measure.twice_batch_size": "your {name} moved W 1/{B} as far as the lesson's step lr · grad / {B}: it divides "
                                "by batch_size twice, so training crawls. Divide once: `p -= lr * p.grad / "
                                "batch_size`.",
    "measure.loss_mean": "your {name} returned one number, {value:.4g}, the mean of the batch's {B} losses, so every "
                         "sgd step would be {B} times smaller than the lesson's (the Trainer sums the per-image "
                         "losses, as the lesson does); nothing was recorded. Return one loss per image (drop the "
                         ".mean()), or {back}",
    "measure.row_sum": "your {name}'s rows do not sum to 1 (row {row} sums to {total:.4g}), so they are not "
                       "probabilities: each row must be divided by its own sum. Keep the summed dimension: X_exp / "
                       "X_exp.sum(dim=1, keepdim=True), or {back}",
    # swap.py: the three slots a student may fill
    "swap.unknown_slot": "set_function() knows {known}, got {got}: nothing changed.",
    "swap.not_callable": "{name} must be a function, got {got}: nothing changed. Assign a function (def ...), or "
                         "the lesson's: trainer.use_lesson({lesson})",
    "swap.set": "{name} set to {whose}: used from the next {phase}()",
    "swap.whose_lesson": "the lesson's {lesson}",
    "swap.whose_stable": "the stable softmax (it subtracts each row's max before exp)",
    "swap.whose_yours": "your {name}",
    "swap.unknown_lesson": "use_lesson() knows {known}, got {got}: nothing changed. Name one of them, or call "
                           "use_lesson() for all three.",
    # data.py: the full set is not on disk
    "data.not_downloaded": "could not be downloaded",
    "data.download_off": "downloading is off (download=False)",
    "data.offline_hint": "Meanwhile the bundled offline subset works: load_dataset('fashion-mnist-small') "
                         "(6,000 Fashion-MNIST images; load_dataset('digits') is the 8x8 digits).",
}

_CORE = Catalog("softmax_widgets", CATALOG)
say = _CORE.say
