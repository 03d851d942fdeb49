"""The three functions a student may swap in (softmax, loss_fn, optimizer): the Trainer's slots for them, the
lesson's name for each, and the guarded calls that turn a student's error into the lesson's words.

A slot must hold a callable, and every change is told (a "settings" event), so the dashboard's softmax toggle
follows `t.softmax = ...` typed in a cell at once; a load sets them quietly and tells once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import diagnosis, measure, model, models, undo
from .messages import say
from .phases import CustomFunctionError

if TYPE_CHECKING:
    from ._protocols import TrainerState as Trainer

__all__ = ["LESSON", "Autograd", "Swappable", "call_student", "grads_of", "measured_step", "refuse", "set_function",
           "use_lesson", "whose"]

LESSON = {"softmax": "softmax", "loss_fn": "cross_entropy", "optimizer": "sgd"}  # slot -> the lesson's function
_USED_BY = {"softmax": "forward", "loss_fn": "forward", "optimizer": "sgd"}  # the phase that calls it
LESSON_SOFTMAX = (model.softmax, model.stable_softmax)


class Swappable:
    """A Trainer slot for the lesson's function or a student's own (assigning it is set_function)."""

    def __set_name__(self, owner, name: str) -> None:
        self.name, self.key = name, "_fn_" + name  # not "_" + name: _loss_fn is the forward's checked call

    def __get__(self, obj, objtype=None):
        return self if obj is None else obj.__dict__[self.key]

    def __set__(self, obj, fn) -> None:
        set_function(obj, self.name, fn)


def set_function(t: Trainer, name: str, fn: Callable, quiet: bool = False) -> None:
    """Put `fn` in slot `name`; told unless quiet, even when it repeats the function in use (like lr)."""
    if name not in LESSON:
        raise ValueError(say("swap.unknown_slot", known=", ".join(map(repr, LESSON)), got=repr(name)))
    if name == "optimizer" and getattr(t, "model", None) is not None:
        fn = models.optimizer_for(fn, t.params, t.lr)  # torch.optim.SGD (class or instance): its step() in sgd()
    if not callable(fn):
        raise ValueError(say("swap.not_callable", name=name, got=f"{fn!r:.60}", lesson=repr(LESSON[name])))
    t.__dict__["_fn_" + name] = fn
    if not quiet:
        t.emit("settings", None, lambda: say("swap.set", name=name, whose=whose(name, fn), phase=_USED_BY[name]))


def whose(name: str, fn) -> str:
    """Whose function it is, in words: "softmax set to softmax" said nothing when the lesson's was picked."""
    if fn is getattr(model, LESSON[name]):
        return say("swap.whose_lesson", lesson=LESSON[name])
    if fn is model.stable_softmax:
        return say("swap.whose_stable")
    return say("swap.whose_yours", name=measure.name_of(fn))


def use_lesson(t: Trainer, names: tuple[str, ...]) -> None:
    """The lesson's functions back, by the lesson's name ("cross_entropy") or the slot's ("loss_fn"); none: all."""
    slots = {**{lesson: slot for slot, lesson in LESSON.items()}, **{slot: slot for slot in LESSON}}
    unknown = [n for n in names if n not in slots]
    if unknown:
        raise ValueError(say("swap.unknown_lesson", known=", ".join(map(repr, LESSON.values())), got=repr(unknown[0])))
    for slot in dict.fromkeys(slots[n] for n in names or LESSON):
        set_function(t, slot, getattr(model, LESSON[slot]))


def call_student(t: Trainer, name: str, fn: Callable, restore: tuple | None = None):
    """fn(), where a student's function in slot `name` runs; its error is said in the lesson's words (W put back
    to `restore` first). An error of the lesson's own function shows as it is."""
    try:
        return fn()
    except Exception as err:
        if restore is not None:
            undo.restore_weights(t, restore)
        if getattr(t, name) is getattr(model, LESSON[name]):
            raise
        raise CustomFunctionError(diagnosis.student_error(name, LESSON[name], getattr(t, name), err)) from err


def refuse(why: str) -> None:
    """A student's function returned something unusable (`why`, from measure.py): refuse the phase."""
    if why:
        raise CustomFunctionError(why)


def grads_of(t: Trainer) -> dict:
    """W.grad and b.grad before a student's optimizer runs (it may zero them): what its step is measured against."""
    return {n: p.grad.detach().clone() for n, p in t.params.items() if p.grad is not None}


def measured_step(t: Trainer, grads: dict, B: int, before: tuple) -> measure.Step:
    """What a student's optimizer did to W and b; one that moved nothing is refused, W as it was (`before`)."""
    params = {n: (p, old, grads[n]) for (n, p), old in zip(t.params.items(), before, strict=True) if n in grads}
    step = dataclasses.replace(measure.measure_step(params, t.lr, B), by=measure.name_of(t.optimizer))
    if step.unchanged:
        undo.restore_weights(t, before)
        raise CustomFunctionError(measure.unchanged_error("optimizer", "sgd", step))
    return step


class Autograd:
    """backward()'s guard around loss.backward(): a loss a student's function cut off from autograd, or autograd
    failing on what it built, is refused in the lesson's words, and the next call is a new forward."""

    __slots__ = ("t",)

    def __init__(self, t: Trainer):
        self.t = t

    def __enter__(self) -> None:
        t = self.t
        if not t.loss.requires_grad:
            t.state = t.state.dropped()  # this loss can never give a gradient
            raise CustomFunctionError(measure.autograd_cut())

    def __exit__(self, kind, err, tb) -> bool:
        t = self.t
        if kind is None or not issubclass(kind, RuntimeError):
            return False
        if t.softmax in LESSON_SOFTMAX and t.loss_fn is model.cross_entropy:
            return False  # the lesson's own functions: show autograd's error as it is
        t.state = t.state.dropped()  # the graph is unusable
        raise CustomFunctionError(measure.autograd_error(err)) from err
