"""The lesson's order semantics for the next lessons' models, proven as for the lesson: every sequence of the five
phases up to length 6 from a fresh Trainer of an MLP and of a torch.nn.Module with torch.optim.SGD, each call
checked against the reference transition table of tests/test_loop_state.py, and the invariants over t.params."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from softmax_widgets import Grad, PhaseError, Trainer, load_dataset
from softmax_widgets.models import MLP

from .test_loop_state import PHASES, Lesson, first_call_named, same

DIGITS = load_dataset("digits")
MAX_LEN = 6  # 5**6 sequences before merging equal states; the lesson's own test goes to 7


def mlp() -> Trainer:
    return Trainer(DIGITS, batch_size=64, seed=0, model=MLP(hidden=8))


def module() -> Trainer:
    torch.manual_seed(0)
    return Trainer(DIGITS, batch_size=64, model=nn.Sequential(nn.Flatten(), nn.Linear(64, 10)),
                   loss_fn=nn.CrossEntropyLoss(reduction="none"), optimizer=torch.optim.SGD)


MODELS = {"mlp": mlp, "module": module}


def observe(t: Trainer) -> tuple:
    """Everything a refused call must leave exactly as it was."""
    ps = t.params.values()
    return (tuple(p.detach().clone() for p in ps), tuple(None if p.grad is None else p.grad.clone() for p in ps),
            t.state, t.last_phase, t.iteration, t.epoch, t.position, t.batches_drawn, len(t.history.loss), t.y_hat,
            t.loss)


def check_invariants(t: Trainer) -> None:
    h = t.history
    assert t.iteration == len(h.loss) == len(h.batch) <= t.batches_drawn
    assert h.batch == sorted(set(h.batch)), "two recorded iterations used the same batch"
    s = t.state
    assert t.next_phase is s.next_phase
    if s.grad is Grad.ZERO:
        assert not any(p.grad.any() for p in t.params.values())
    assert all((s.grad is Grad.NONE) == (p.grad is None) for p in t.params.values())
    if s.forward.value == "live":
        assert t.loss is not None and t.loss.grad_fn is not None


@pytest.mark.parametrize("kind", MODELS)
def test_every_sequence_of_the_five_phases_follows_the_lessons_table(kind):
    fresh = MODELS[kind]
    frontier: list[tuple[tuple[str, ...], Lesson]] = [((), Lesson())]
    seen: set = set()
    checked = expanded = accepted = refused = 0
    for _length in range(MAX_LEN):
        nxt = []
        for calls, ref in frontier:
            for phase in PHASES:
                t = fresh()
                for c in calls:
                    try:
                        getattr(t, c)()
                    except PhaseError:
                        pass
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
    assert checked == 5 * expanded and accepted and refused


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("ops", [
    ("train_step", "undo", "step", "step", "roundtrip", "step", "train_step"),
    ("next_batch", "forward", "backward", "undo", "undo", "roundtrip", "step", "step", "step", "step"),
    ("next_batch", "forward", "zero_grad", "backward", "forward", "roundtrip", "sgd", "backward", "sgd"),
    ("train_step", "reset", "undo", "train_step", "roundtrip", "undo", "undo", "next_batch", "next_batch", "sgd"),
])
def test_invariants_hold_through_step_train_step_undo_and_load(kind, ops):
    t = MODELS[kind]()
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


@pytest.mark.parametrize("kind", MODELS)
def test_undo_after_any_short_mix_gives_back_the_same_run(kind):
    """Every 3 phases, then undo all of them: the parameters, gradients and loop state as at the start."""
    for calls in [(a, b, c) for a in PHASES for b in PHASES for c in PHASES][::7]:
        t = MODELS[kind]()
        t.train_step()
        start, n = observe(t), len(t.snapshots)
        for c in calls:
            try:
                getattr(t, c)()
            except PhaseError:
                pass
        for _ in range(len(t.snapshots) - n):
            t.undo()
        now = observe(t)
        assert same(now[:7], start[:7]), calls
