"""The lesson's order semantics, proven rather than sampled: every sequence of the five phases up to length 7
from a fresh Trainer, each call's outcome checked against a reference transition table written here from the
lesson's rules (not from phases.py), plus invariants that hold after any sequence of any operation."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import pytest
import torch

from softmax_widgets import Grad, Phase, PhaseError, Trainer, load_dataset

DIGITS = load_dataset("digits")
PHASES = [p.value for p in Phase]
MAX_LEN = 7


@dataclass(frozen=True)
class Lesson:
    """The lesson's loop as a student learns it: what exists, and which W it was computed with."""

    fresh_batch: bool = False  # a batch drawn that no sgd has used yet
    forward_alive: bool = False  # a forward on that batch whose graph backward has not walked yet
    backward_on_forward: bool = False  # backward walked this batch's latest forward
    grad: str = "none"  # "none" (never), "zero", "sum" (one or more backward passes added)
    passes: int = 0
    sgd_count: int = 0  # W's version: changes with every sgd
    forward_w: int = -1  # W's version the live forward was computed with
    drawn: int = 0
    recorded: tuple[int, ...] = ()  # for each recorded iteration: the number of the batch it used

    def expected_next(self) -> str:
        """What Step runs: the lesson's next line."""
        if not self.fresh_batch:
            return "next_batch"
        if self.backward_on_forward:
            return "sgd" if self.grad == "sum" else "forward"
        if self.forward_alive:
            return "backward" if self.grad == "zero" else "zero_grad"
        return "forward"

    def call(self, phase: str) -> Lesson | None:
        """The state after `phase`, or None when the lesson's rules refuse it."""
        if phase == "next_batch":
            return replace(self, fresh_batch=True, forward_alive=False, backward_on_forward=False,
                           drawn=self.drawn + 1)
        if phase == "forward":
            if not self.fresh_batch:
                return None
            return replace(self, forward_alive=True, backward_on_forward=False, forward_w=self.sgd_count)
        if phase == "zero_grad":
            return replace(self, grad="zero", passes=0)
        if phase == "backward":
            if not (self.fresh_batch and self.forward_alive):
                return None
            assert self.forward_w == self.sgd_count  # never a backward on a forward computed before the last sgd
            passes = 1 if self.grad in ("none", "zero") else self.passes + 1
            return replace(self, forward_alive=False, backward_on_forward=True, grad="sum", passes=passes)
        if phase == "sgd":
            if not (self.fresh_batch and self.backward_on_forward and self.grad == "sum"):
                return None
            return replace(self, fresh_batch=False, backward_on_forward=False, sgd_count=self.sgd_count + 1,
                           recorded=(*self.recorded, self.drawn))
        raise AssertionError(phase)


def first_call_named(message: str) -> str:
    """The first `call X()` in a refusal: what the student is told to do next."""
    m = re.search(r"[Cc]all (next_batch|forward|zero_grad|backward|sgd)\(\)", message)
    assert m, f"the refusal names no next call: {message}"
    return m.group(1)


def observe(t: Trainer) -> tuple:
    """Everything a refused call must leave exactly as it was."""
    grads = tuple(None if p.grad is None else p.grad.clone() for p in (t.W, t.b))
    return (t.W.detach().clone(), t.b.detach().clone(), grads, t.state, t.last_phase, t.iteration, t.epoch,
            t.position, t.batches_drawn, len(t.history.loss), t.y_hat, t.loss)


def same(a: tuple, b: tuple) -> bool:
    def eq(x, y):
        if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            return isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and torch.equal(x, y)
        if isinstance(x, tuple):
            return all(eq(u, v) for u, v in zip(x, y, strict=True))
        return x == y
    return all(eq(x, y) for x, y in zip(a, b, strict=True))


def check_invariants(t: Trainer) -> None:
    """What holds after any sequence of any operation."""
    h = t.history
    assert t.iteration == len(h.loss) == len(h.batch) <= t.batches_drawn
    assert h.batch == sorted(set(h.batch)), "two recorded iterations used the same batch"
    s = t.state
    assert t.next_phase is s.next_phase
    if s.grad is Grad.ZERO:
        assert not t.W.grad.any() and not t.b.grad.any()
    assert (s.grad is Grad.NONE) == (t.W.grad is None)
    if s.forward.value == "live":
        assert t.loss is not None and t.loss.grad_fn is not None


def fresh() -> Trainer:
    return Trainer(DIGITS, batch_size=64, seed=0)


def replay(calls: tuple[str, ...]) -> Trainer:
    t = fresh()
    for c in calls:
        try:
            getattr(t, c)()
        except PhaseError:
            pass
    return t


def test_every_sequence_of_the_five_phases_up_to_length_7_follows_the_lessons_table():
    """Breadth first over all 5 + 25 + ... + 5**7 sequences; two sequences that reach the same reference state,
    Trainer state and counters have the same futures, so each such state is expanded once."""
    frontier: list[tuple[tuple[str, ...], Lesson]] = [((), Lesson())]
    seen: set = set()
    checked = accepted = refused = expanded = 0
    for _length in range(MAX_LEN):
        nxt = []
        for calls, ref in frontier:
            for phase in PHASES:
                t = replay(calls)
                assert t.next_phase.value == ref.expected_next(), (calls, t.state)
                before = observe(t)
                want = ref.call(phase)
                try:
                    getattr(t, phase)()
                except PhaseError as err:
                    assert want is None, f"{calls} + {phase}: refused ({err}) but the lesson allows it"
                    assert first_call_named(str(err)) == ref.expected_next(), (calls, phase, str(err))
                    assert same(observe(t), before), f"{calls} + {phase}: a refused call changed something"
                    refused += 1
                    new = ref
                else:
                    assert want is not None, f"{calls} + {phase}: accepted but the lesson refuses it"
                    accepted += 1
                    new = want
                    assert t.iteration == len(new.recorded) and tuple(t.history.batch) == new.recorded
                    assert t.batches_drawn == new.drawn and t.grad_passes == new.passes
                check_invariants(t)
                checked += 1
                key = (new, t.state, t.last_phase)
                if key not in seen:
                    seen.add(key)
                    nxt.append(((*calls, phase), new))
        expanded += len(frontier)
        frontier = nxt
    # every one of the five calls was tried from every distinct state reached in fewer than 7 calls
    assert checked == 5 * expanded and accepted and refused


@pytest.mark.parametrize("ops", [
    ("train_step", "undo", "step", "step", "roundtrip", "step", "train_step"),
    ("next_batch", "forward", "backward", "undo", "undo", "roundtrip", "step", "step", "step", "step"),
    ("next_batch", "forward", "zero_grad", "backward", "forward", "roundtrip", "sgd", "backward", "sgd"),
    ("train_step", "reset", "undo", "train_step", "roundtrip", "undo", "undo", "next_batch", "next_batch", "sgd"),
])
def test_invariants_hold_through_step_train_step_undo_and_load(ops):
    t = fresh()
    for op in ops:
        before = observe(t)
        try:
            if op == "roundtrip":
                t.load_state_dict(t.state_dict())
            elif op == "reset":
                t.reset()
            else:
                getattr(t, op)()
        except PhaseError:
            assert same(observe(t), before)
        check_invariants(t)


def test_every_short_mix_of_phases_step_undo_and_load_keeps_the_invariants():
    """All sequences of length 4 over the phases plus step, train_step, undo and a save/load round trip."""
    ops = [*PHASES, "step", "train_step", "undo", "roundtrip"]
    frontier: list[tuple[str, ...]] = [()]
    seen: set = set()
    for _ in range(4):
        nxt = []
        for calls in frontier:
            for op in ops:
                t = fresh()
                for c in (*calls, op):
                    before = observe(t)
                    try:
                        t.load_state_dict(t.state_dict()) if c == "roundtrip" else getattr(t, c)()
                    except PhaseError:
                        assert same(observe(t), before)
                check_invariants(t)
                key = (t.state, t.iteration, t.batches_drawn, t.last_phase, len(t.snapshots))
                if key not in seen:
                    seen.add(key)
                    nxt.append((*calls, op))
        frontier = nxt
    assert seen
