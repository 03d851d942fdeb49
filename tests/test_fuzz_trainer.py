"""Stateful fuzzing of the Trainer: a classroom clicks every phase in every order and types anything."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from softmax_widgets import CustomFunctionError, DivergenceError, Phase, PhaseError, Trainer, load_dataset, model

DIGITS = load_dataset("digits")
N_TRAIN = len(DIGITS.y_train)  # 1437: with batches of 1..200 epochs end often

# 150 sequences of up to 60 calls each (~9,000 calls): derandomized and database-free, so CI replays the same
# sequences every run; deadline=None because an epoch end evaluates the test set.
EXAMPLES, STEPS = 150, 60
FUZZ = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

PHASES = [p.value for p in Phase]
EVENT_KINDS = {"phase", "warning", "divergence", "epoch", "reset", "settings", "undo"}

# what a student might type into the lr box: valid values and every kind of nonsense
GOOD_LR = st.sampled_from([1e-3, 0.01, 0.1, 0.5, 1.0, 3.0]) | st.floats(1e-4, 5.0)
BAD_LR = st.sampled_from([0, 0.0, -0.1, -1, math.nan, math.inf, -math.inf, True, False, "0.1", None, 10**400,
                          [0.1], torch.tensor(0.1)])
HUGE_LR = st.sampled_from([1e4, 1e30, 1e38, 3e38, 1e300])  # valid numbers that make training diverge
GOOD_BS = st.integers(1, 200) | st.sampled_from([N_TRAIN, N_TRAIN - 1, np.int64(64)])
BAD_BS = st.sampled_from([0, -1, -256, N_TRAIN + 1, 10**30, 64.0, 2.5, True, False, "64", None, math.nan])
GOOD_SEED = st.sampled_from([None, 0, 1, 7, 2**32 - 1])
BAD_SEED = st.sampled_from([-1, 2**32, 1.5, True, "0", math.nan])


def nan_softmax(X):
    return model.softmax(X) * math.nan


def negative_softmax(X):
    return -model.softmax(X)


def wrong_shape_softmax(X):
    return model.softmax(X)[:, :3]


def raising_softmax(X):
    raise ZeroDivisionError("division by zero")


def inplace_softmax(X):
    X_exp = X.exp()
    X_exp /= X_exp.sum(dim=1, keepdim=True)  # in place on exp's output: autograd cannot go back through it
    return X_exp


def detached_loss(y_hat, y):
    return model.cross_entropy(y_hat, y).detach()


def nan_loss(y_hat, y):
    return model.cross_entropy(y_hat, y) * math.nan


def wrong_shape_loss(y_hat, y):
    return y_hat[:3]


def raising_optimizer(params, lr, batch_size):
    params[0].data -= lr * params[0].grad / batch_size  # W moves, then the student's code blows up
    raise IndexError("list index out of range")


def reshaping_optimizer(params, lr, batch_size):
    for p in params:
        p.data = torch.zeros(3)


def nan_optimizer(params, lr, batch_size):
    for p in params:
        p.data -= math.nan


SWAPS = {
    "softmax": [model.softmax, model.stable_softmax, nan_softmax, negative_softmax, wrong_shape_softmax,
                raising_softmax, inplace_softmax],
    "loss_fn": [model.cross_entropy, detached_loss, nan_loss, wrong_shape_loss],
    "optimizer": [model.sgd, raising_optimizer, reshaping_optimizer, nan_optimizer],
}


def snapshot(t: Trainer) -> dict:
    """Everything a refused call must leave exactly as it was."""
    h = t.history
    return {
        "W": t.W.detach().clone(), "b": t.b.detach().clone(), "iteration": t.iteration, "epoch": t.epoch,
        "next_phase": t.next_phase, "last_phase": t.last_phase, "lr": t.lr, "batch_size": t.batch_size,
        "seed": t.seed, "position": t.position, "grad_passes": t.grad_passes,
        "history": tuple(len(v) for v in vars(h).values()),
    }


def same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


def call(t: Trainer, op: str, arg=None):
    """Apply one recorded operation: the replay runs exactly these calls again."""
    if op in PHASES:
        return getattr(t, op)()
    if op in ("step", "train_step", "run_epoch", "evaluate"):
        return getattr(t, op)()
    if op == "lr":
        t.lr = arg
    elif op == "batch_size":
        t.batch_size = arg
    elif op == "reset":
        t.reset(arg)
    elif op in SWAPS:
        setattr(t, op, arg)
    elif op == "undo":
        t.undo(arg)
    elif op == "state_roundtrip":  # save and load in place: must change nothing
        t.load_state_dict(t.state_dict())
    else:
        raise AssertionError(op)


def run(t: Trainer, op: str, arg=None) -> str:
    """Call, and name the outcome; anything but the documented errors fails the test."""
    before = snapshot(t)
    try:
        call(t, op, arg)
    except (PhaseError, ValueError) as err:
        # refused: say why, change nothing
        assert str(err) and len(str(err)) < 1500, err
        assert same(before, snapshot(t)), f"{op}({arg!r}) was refused with {err!r} but changed the state"
        return type(err).__name__
    except (DivergenceError, CustomFunctionError) as err:
        assert "trainer.use_lesson(" in str(err) or "reset()" in str(err), err  # the way out is named
        # nothing computed so far is lost: the record only grows
        assert t.iteration >= before["iteration"] and t.epoch >= before["epoch"]
        return type(err).__name__
    return "ok"


class TrainerMachine(RuleBasedStateMachine):
    """Random calls in any order; after each one the Trainer's bookkeeping must still add up."""

    def __init__(self):
        super().__init__()
        self.t = Trainer(DIGITS, lr=0.1, batch_size=64, seed=0)
        self.log: list[tuple[str, object, str]] = []
        self.listener_faults: list[str] = []
        self.t.on_change(self._listener)

    def _listener(self, t: Trainer, event) -> None:
        # mid-call views see consistent counters too (a fault here is logged by the Trainer, so keep it)
        if event.kind not in EVENT_KINDS or not event.message:
            self.listener_faults.append(f"bad event {event!r}")
        if len(t.history.loss) != t.iteration or len(t.history.test_acc) != t.epoch:
            self.listener_faults.append(f"inconsistent history during {event.kind}")

    def _do(self, op: str, arg=None) -> str:
        outcome = run(self.t, op, arg)
        self.log.append((op, arg, outcome))
        return outcome

    @rule(phase=st.sampled_from(PHASES))
    def phase(self, phase):
        self._do(phase)

    @rule()
    def step(self):
        self._do("step")

    @rule()
    def train_step(self):
        self._do("train_step")

    @precondition(lambda self: self.t.batch_size >= 32)  # a whole epoch at batch 1 is 1,437 iterations: slow
    @rule()
    def run_epoch(self):
        self._do("run_epoch")

    @rule()
    def evaluate(self):
        before = snapshot(self.t)
        acc = self.t.evaluate()
        assert isinstance(acc, float) and 0.0 <= acc <= 1.0
        assert same(before, snapshot(self.t))

    @rule(lr=GOOD_LR)
    def set_lr(self, lr):
        assert self._do("lr", lr) == "ok"

    @rule(lr=HUGE_LR)
    def set_huge_lr(self, lr):
        assert self._do("lr", lr) == "ok"  # accepted: a huge lr is a lesson, refused later with DivergenceError

    @rule(lr=BAD_LR)
    def set_bad_lr(self, lr):
        assert self._do("lr", lr) == "ValueError"

    @rule(bs=GOOD_BS)
    def set_batch_size(self, bs):
        assert self._do("batch_size", bs) == "ok"

    @rule(bs=BAD_BS)
    def set_bad_batch_size(self, bs):
        assert self._do("batch_size", bs) == "ValueError"

    @rule(seed=GOOD_SEED | BAD_SEED)
    def reset(self, seed):
        outcome = self._do("reset", seed)
        if outcome == "ok":
            assert self.t.iteration == self.t.epoch == 0 and self.t.next_phase is Phase.NEXT_BATCH

    @rule(n=st.sampled_from([None, None, 1, 2, 5]))
    def undo(self, n):
        self._do("undo", n)  # PhaseError when there is nothing (or not that much) to undo

    @rule(n=st.sampled_from([0, -1, 1.5, True, "1"]))
    def undo_bad(self, n):
        assert self._do("undo", n) == "ValueError"

    @rule()
    def step_then_undo(self):
        # undo takes back exactly one phase: W, b, counters, history, shuffle position as they were
        ring = self.t.snapshots
        before, kept_before = snapshot(self.t), len(ring)
        outcome = self._do("step")
        if len(ring) > kept_before:  # the phase left a snapshot: it ran, or changed something before it stopped
            assert self._do("undo") == "ok"
            assert same(before, snapshot(self.t)), "undo() did not restore the state before the last phase"
        elif kept_before < ring.capacity and outcome != "ok":  # no snapshot: then nothing may have changed
            now = snapshot(self.t)
            assert same({k: v for k, v in before.items() if k != "last_phase"},
                        {k: v for k, v in now.items() if k != "last_phase"}), f"{outcome} changed the state"

    @rule()
    def state_roundtrip(self):
        before = snapshot(self.t)
        assert self._do("state_roundtrip") == "ok"
        assert same(before, snapshot(self.t)), "load_state_dict(state_dict()) changed the state"

    @precondition(lambda self: self.t.iteration > 0)
    @rule(k=st.integers(1, 3))
    def save_load_continues_exactly(self, k):
        # a run saved to disk and loaded into a new Trainer continues with the very same numbers


        buf = io.BytesIO()
        torch.save(self.t.state_dict(), buf)
        buf.seek(0)
        t2 = Trainer(DIGITS).load_state_dict(torch.load(buf, weights_only=True))
        for name in SWAPS:  # a student's own function cannot be saved: carry it over as the student would
            setattr(t2, name, getattr(self.t, name))
        t1 = Trainer(DIGITS).load_state_dict(self.t.state_dict())
        for name in SWAPS:
            setattr(t1, name, getattr(self.t, name))
        out1 = [run(t1, "train_step") for _ in range(k)]
        out2 = [run(t2, "train_step") for _ in range(k)]
        assert out1 == out2 and torch.equal(t1.W, t2.W) and t1.history.loss == t2.history.loss

    @rule(which=st.sampled_from(sorted(SWAPS)), data=st.data())
    def swap_function(self, which, data):
        # a student swaps in their own function (or puts the lesson's back) between two steps
        self._do(which, data.draw(st.sampled_from(SWAPS[which])))

    @invariant()
    def weights_finite_and_shaped(self):
        t = self.t
        assert t.W.shape == (DIGITS.num_inputs, 10) and t.b.shape == (10,)
        assert bool(torch.isfinite(t.W).all()) and bool(torch.isfinite(t.b).all()), "W or b went NaN/inf"
        assert t.W.requires_grad and t.b.requires_grad and t.W.is_leaf and t.b.is_leaf

    @invariant()
    def history_adds_up(self):
        t, h = self.t, self.t.history
        assert len(h.loss) == len(h.train_acc) == len(h.batch_size) == t.iteration
        assert len(h.test_acc) == len(h.epoch_loss) == len(h.epoch_train_acc) == len(h.epoch_iteration) == t.epoch
        assert all(math.isfinite(v) for v in h.loss), "a NaN loss reached the history"
        assert all(0.0 <= a <= 1.0 for a in h.test_acc)
        assert 0 <= t.position <= t.num_train and t.grad_passes >= 0
        assert isinstance(t.next_phase, Phase) and t.next_phase is t.state.next_phase
        # each recorded iteration consumed its own batch, drawn before it
        assert h.batch == sorted(set(h.batch)) and t.iteration <= t.batches_drawn
        assert (t.state.grad.value == "none") == (t.W.grad is None)
        assert not self.listener_faults, self.listener_faults

    def teardown(self):
        # the same calls on a fresh Trainer with the same seed give bit-identical weights and history
        t2 = Trainer(DIGITS, lr=0.1, batch_size=64, seed=0)
        outcomes = [run(t2, op, arg) for op, arg, _ in self.log]
        assert outcomes == [o for *_, o in self.log]
        assert torch.equal(t2.W, self.t.W) and torch.equal(t2.b, self.t.b)
        assert t2.history.loss == self.t.history.loss and t2.history.test_acc == self.t.history.test_acc
        assert (t2.iteration, t2.epoch, t2.next_phase) == (self.t.iteration, self.t.epoch, self.t.next_phase)


class TestTrainerFuzz(TrainerMachine.TestCase):
    settings = FUZZ

    def setUp(self):
        # one intra-op thread: on a loaded 2-core CI box two torch threads make every step ~20x slower
        # (oversubscription); the replay compares runs made with the same setting, so nothing is hidden
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def tearDown(self):
        torch.set_num_threads(self._threads)


@pytest.mark.parametrize("seed", [0, 3])
def test_fuzz_covers_divergence_and_refusals(seed):
    """A scripted walk through the paths the fuzz must reach, so a change that hides them shows up."""
    t = Trainer(DIGITS, lr=0.1, batch_size=64, seed=seed)
    assert run(t, "sgd") == "PhaseError"
    assert run(t, "lr", -1) == "ValueError" and run(t, "lr", 10**400) == "ValueError"
    assert run(t, "batch_size", N_TRAIN + 1) == "ValueError"
    assert run(t, "train_step") == "ok"
    assert run(t, "lr", 1e38) == "ok" and run(t, "train_step") == "DivergenceError"  # sgd overflows W: put back
    assert t.iteration == 1 and bool(torch.isfinite(t.W).all())
    assert run(t, "optimizer", reshaping_optimizer) == "ok" and run(t, "lr", 0.1) == "ok"
    assert run(t, "sgd") == "CustomFunctionError" and t.W.shape == (64, 10)
