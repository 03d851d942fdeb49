"""Undo, state_dict / save / load and reset replay: exact, bit for bit, with the Trainer's own state as oracle."""

from __future__ import annotations

import math
import random

import pytest
import torch

from softmax_widgets import DivergenceError, Phase, PhaseError, Trainer
from softmax_widgets.undo import SnapshotRing

PHASES = [Phase.NEXT_BATCH, Phase.FORWARD, Phase.ZERO_GRAD, Phase.BACKWARD, Phase.SGD]


def same(a, b) -> bool:
    """Exact equality of two state_dicts (tensors bit for bit, NaN equal to NaN)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                and a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu()))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def diff(a: dict, b: dict) -> list[str]:
    return [k for k in a if not same(a[k], b.get(k))]


def legal_random_phase(t: Trainer, rng: random.Random) -> None:
    """A phase the Trainer accepts, chosen at random: skips zero_grad, redoes forward, drops batches."""
    for _ in range(20):
        phase = rng.choice(PHASES + [t.next_phase] * 4)
        try:
            getattr(t, phase.value)()
            return
        except PhaseError:
            continue
    t.step()


def test_undo_each_phase_restores_the_exact_state(digits):
    t = Trainer(digits, batch_size=500, seed=1)  # 3 batches per epoch: epoch ends and reshuffles happen often
    rng = random.Random(0)
    states = [t.state_dict()]
    for _ in range(60):
        legal_random_phase(t, rng)
        states.append(t.state_dict())
    assert t.epoch >= 2
    for expected in reversed(states[:-1]):
        t.undo()
        assert diff(t.state_dict(), expected) == []
        if t.X is not None:  # X, y are rebuilt from the batch indices, not stored
            assert torch.equal(t.X, digits.x_train[t.batch_indices])
    with pytest.raises(PhaseError, match="Nothing to undo"):
        t.undo()


def test_twenty_random_iterations_then_twenty_undos_give_the_initial_state(digits):
    t = Trainer(digits, lr=0.3, batch_size=128, seed=7)
    start, W0 = t.state_dict(), t.W.detach().clone()
    rng = random.Random(5)
    for _ in range(20):
        t.batch_size = rng.choice([32, 128, 300])
        t.lr = rng.choice([0.05, 0.1, 0.5])
        t.train_step()
    assert not torch.equal(t.W.detach(), W0)
    assert t.snapshots.iterations == 20
    for _ in range(20):
        t.undo(iterations=1)
    t.lr, t.batch_size = start["lr"], start["batch_size"]  # undo takes back phases, not settings
    assert torch.equal(t.W.detach(), W0) and torch.equal(t.b.detach(), torch.zeros(10))
    assert diff(t.state_dict(), start) == []
    assert t.history.loss == [] and t.iteration == 0 and t.next_phase is Phase.NEXT_BATCH


def test_undo_then_redo_replays_the_same_run(digits):
    a, b = Trainer(digits, batch_size=400, seed=2), Trainer(digits, batch_size=400, seed=2)
    for _ in range(9):
        a.train_step()
        b.train_step()
    a.undo(iterations=5)  # crosses an epoch end: the RNG must draw the same shuffle again
    for _ in range(5):
        a.train_step()
    assert torch.equal(a.W, b.W) and a.history == b.history and torch.equal(a.batch_indices, b.batch_indices)
    for _ in range(7):
        a.train_step()
        b.train_step()
    assert torch.equal(a.W, b.W) and a.history == b.history


def test_undo_mid_iteration_and_of_several_iterations(digits):
    t = Trainer(digits, batch_size=64, seed=0)
    for _ in range(3):
        t.train_step()
    after3 = t.state_dict()
    t.next_batch().forward()
    t.undo(iterations=1)  # a half-done iteration counts as one
    assert diff(t.state_dict(), after3) == []
    t.next_batch().forward()
    t.undo(iterations=2)
    assert t.iteration == 2 and t.next_phase is Phase.NEXT_BATCH and len(t.history.loss) == 2
    with pytest.raises(PhaseError, match="only 2 iteration"):
        t.undo(iterations=3)
    assert t.iteration == 2  # a refused undo changes nothing
    with pytest.raises(ValueError):
        t.undo(iterations=0)


def test_undo_before_sgd_goes_back_to_just_before_the_last_step(digits):
    """undo(before="sgd"): the batch, its forward and its gradients come back, sgd is next; W is as before it."""
    t = Trainer(digits, batch_size=64, seed=1)
    t.train_step()
    t.next_batch().forward().zero_grad().backward()
    W, grad, batch = t.W.detach().clone(), t.W.grad.clone(), t.batch_indices.clone()
    t.sgd()
    t.next_batch().forward()
    t.undo(before="sgd")
    assert t.iteration == 1 and t.next_phase is Phase.SGD and len(t.history.loss) == 1
    assert torch.equal(t.W, W) and torch.equal(t.W.grad, grad) and torch.equal(t.batch_indices, batch)
    t.undo(before=Phase.SGD)  # the first iteration's
    assert t.iteration == 0 and t.next_phase is Phase.SGD
    with pytest.raises(PhaseError, match=r"Nothing to undo: cannot take back the last sgd\(\)"):
        t.undo(before="sgd")  # none left: nothing changes
    assert t.next_phase is Phase.SGD
    with pytest.raises(ValueError, match="before must be one of the five phases"):
        t.undo(before="jump")
    with pytest.raises(ValueError, match="not both"):
        t.undo(2, before="sgd")


def test_undo_backward_then_backward_again_rebuilds_the_graph(digits):
    t = Trainer(digits, batch_size=64, seed=0)
    t.next_batch().forward().zero_grad().backward()
    grad = t.W.grad.clone()
    t.undo()
    assert t.next_phase is Phase.BACKWARD and torch.equal(t.W.grad, torch.zeros_like(grad))
    t.backward()  # would raise "backward through the graph a second time" if the graph were not rebuilt
    assert torch.equal(t.W.grad, grad)
    t.undo().undo()  # back before zero_grad: the gradients did not exist yet
    assert t.W.grad is None and t.next_phase is Phase.ZERO_GRAD


def test_skipped_zero_grad_accumulation_is_undone_exactly(digits):
    t = Trainer(digits, batch_size=64, seed=0)
    t.train_step()
    t.next_batch().forward().backward()  # no zero_grad: adds to the last batch's gradient
    assert t.grad_passes == 2
    t.undo()
    assert t.grad_passes == 1
    t.zero_grad().backward()
    clean = t.W.grad.clone()
    u = Trainer(digits, batch_size=64, seed=0)
    u.train_step()
    u.next_batch().forward().zero_grad().backward()
    assert torch.equal(clean, u.W.grad)


def test_undo_emits_an_event_and_one_undo_takes_a_reset_back(digits):
    t = Trainer(digits, batch_size=64, seed=0)
    events = []
    t.on_change(lambda tr, ev: events.append(ev))
    t.train_step()
    t.undo()
    assert events[-1].kind == "undo" and events[-1].phase is Phase.SGD and "before sgd" in events[-1].message
    t.train_step()
    t.train_step()
    before = t.state_dict()
    t.reset(seed=5)  # a stray `r`, or New seed: the run must not be lost
    assert t.iteration == 0 and t.seed == 5 and "undo() takes the reset back" in events[-1].message
    t.undo()
    assert "before reset" in events[-1].message and events[-1].phase is None
    assert diff(t.state_dict(), before) == [] and t.seed == 0
    t.train_step()  # and the run goes on exactly as it would have
    u = Trainer(digits, batch_size=64, seed=0)
    for _ in range(3):
        u.train_step()
    assert torch.equal(t.W, u.W)
    t.snapshots = SnapshotRing(4)
    with pytest.raises(PhaseError, match="Nothing to undo"):
        t.undo()


def test_refused_phases_leave_nothing_to_undo(digits):
    t = Trainer(digits, batch_size=64, seed=0)
    with pytest.raises(PhaseError):
        t.forward()
    with pytest.raises(PhaseError):
        t.sgd()
    assert len(t.snapshots) == 0


def test_the_ring_is_bounded_and_keeps_the_newest(digits):
    t = Trainer(digits, batch_size=64, seed=0)
    t.snapshots = SnapshotRing(12)
    for _ in range(5):
        t.train_step()
    assert len(t.snapshots) == 12 and t.snapshots.iterations == 2
    mid = None
    t.undo(iterations=2)
    mid = t.state_dict()
    assert t.iteration == 3 and mid["history"]["loss"] == t.history.loss
    with pytest.raises(PhaseError, match="Nothing to undo"):
        t.undo(iterations=1)


def test_default_depth_is_at_least_100_iterations(digits):
    t = Trainer(digits, batch_size=16, seed=0)
    W0 = t.W.detach().clone()
    for _ in range(100):
        t.train_step()
    assert t.snapshots.iterations == 100
    t.undo(iterations=100)
    assert torch.equal(t.W.detach(), W0)


def test_divergence_can_be_undone_and_history_stays_finite(digits):
    t = Trainer(digits, lr=50, seed=0)
    with pytest.raises(DivergenceError):
        for _ in range(50):
            t.train_step()
    assert all(math.isfinite(v) for v in t.history.loss)
    assert t.next_phase is Phase.FORWARD  # the forward that overflowed left no undo step: nothing to take back
    t.undo()  # back before the batch it overflowed on
    assert t.next_phase is Phase.NEXT_BATCH
    t.undo(iterations=t.snapshots.iterations)  # W is already huge: go back to the start of the run
    assert t.iteration == 0 and t.history.loss == []
    t.use_stable_softmax()
    t.lr = 0.5
    for _ in range(5):
        t.train_step()
    assert all(math.isfinite(v) for v in t.history.loss)


# ---- state_dict, save, load ----
@pytest.mark.parametrize("extra", [[], ["next_batch", "forward"], ["next_batch", "forward", "zero_grad", "backward"]])
def test_save_load_then_ten_steps_equals_ten_steps(digits, tmp_path, extra):
    t = Trainer(digits, lr=0.2, batch_size=100, seed=4)
    for _ in range(13):  # past an epoch end (15 batches of 100)
        t.train_step()
    for phase in extra:  # mid-iteration: the forward graph is rebuilt on load
        getattr(t, phase)()
    t.save(tmp_path / "state.pt")
    u = Trainer.load(tmp_path / "state.pt")  # the dataset is named in the file
    assert diff(u.state_dict(), t.state_dict()) == []
    for _ in range(10):
        t.train_step()
        u.train_step()
    assert torch.equal(t.W, u.W) and torch.equal(t.b, u.b) and t.history == u.history
    assert torch.equal(t.batch_indices, u.batch_indices)
    t.next_batch()
    u.next_batch()
    assert torch.equal(t.X, u.X)


def test_load_state_dict_into_a_running_trainer_and_emits_reset(digits):
    t = Trainer(digits, batch_size=64, seed=0)
    for _ in range(4):
        t.train_step()
    saved = t.state_dict()
    for _ in range(3):
        t.train_step()
    events = []
    t.on_change(lambda tr, ev: events.append(ev))
    later = t.state_dict()
    t.load_state_dict(saved)
    assert events[-1].kind == "reset" and "loaded" in events[-1].message and "next: next_batch()" in events[-1].message
    assert t.iteration == 4 and diff(t.state_dict(), saved) == []
    t.undo()  # one undo takes the load back
    assert diff(t.state_dict(), later) == []


def test_state_file_holds_no_dataset_and_refuses_another_dataset(fashion, digits, tmp_path):
    t = Trainer(fashion, batch_size=256, seed=0)
    for _ in range(3):
        t.train_step()
    path = tmp_path / "fashion.pt"
    t.save(path)
    # W, b, grads (4 x 31 kB), the epoch's shuffle (60000 int64 = 480 kB), history: far below the 188 MB of images
    assert path.stat().st_size < 1_000_000
    u = Trainer(digits)
    with pytest.raises(ValueError, match="saved on fashion-mnist"):
        u.load_state_dict(t.state_dict())
    v = Trainer.load(path, data=fashion)
    for _ in range(10):
        t.train_step()
        v.train_step()
    assert torch.equal(t.W, v.W) and t.history == v.history


def test_save_keeps_hyper_parameters_and_softmax_choice(digits, tmp_path):
    t = Trainer(digits, lr=0.7, batch_size=33, seed=9).use_stable_softmax()
    t.save(tmp_path / "s.pt")
    u = Trainer.load(tmp_path / "s.pt", data=digits)
    assert (u.lr, u.batch_size, u.seed) == (0.7, 33, 9)
    assert u.softmax.__name__ == "stable_softmax"


def test_reset_with_the_same_seed_replays_bit_for_bit(digits):
    t = Trainer(digits, batch_size=200, seed=11)
    for _ in range(20):
        t.train_step()
    W, history = t.W.detach().clone(), t.history.copy()
    t.reset(seed=3)
    t.train_step()
    t.reset(seed=11)
    for _ in range(20):
        t.train_step()
    assert torch.equal(t.W.detach(), W) and t.history == history


def test_snapshot_memory_on_fashion_mnist(fashion):
    t = Trainer(fashion, batch_size=256, seed=0)
    for _ in range(130):
        t.train_step()
    assert t.snapshots.iterations == 120
    assert t.snapshots.nbytes < 12_000_000  # 8.8 MB: the figure stated in snapshots.py


def test_undo_after_sgd_divergence_and_after_a_students_optimizer(digits):
    t = Trainer(digits, lr=1e39, batch_size=64, seed=0)
    t.next_batch().forward().zero_grad().backward()
    before = t.state_dict()
    with pytest.raises(DivergenceError):
        t.sgd()
    t.undo()
    assert diff(t.state_dict(), before) == []

    def sgd_and_zero(params, lr, batch_size):  # also clears the gradients: undo must bring them back
        for p in params:
            p.data -= lr * p.grad / batch_size
            p.grad.zero_()

    t.lr, t.optimizer = 0.1, sgd_and_zero
    before = t.state_dict()
    before["lr"] = 0.1
    t.sgd()
    assert float(t.W.grad.abs().sum()) == 0.0
    t.undo()
    assert diff(t.state_dict(), before) == []


def test_undo_can_be_switched_off(digits):
    t = Trainer(digits, batch_size=64, seed=0)
    t.snapshots = SnapshotRing(0)
    for _ in range(3):
        t.train_step()
    with pytest.raises(PhaseError, match="switched off"):
        t.undo()
    t.snapshots = SnapshotRing()
    t.train_step()
    t.undo(iterations=1)
    assert t.iteration == 3


def test_an_interrupt_inside_a_phase_keeps_undo_consistent(digits):
    t = Trainer(digits, batch_size=64, seed=0)
    t.train_step()
    t.next_batch().forward()
    grads = (t.W.grad.clone(), t.b.grad.clone())
    before = t.state_dict()

    def interrupt(trainer, event):
        raise KeyboardInterrupt  # the notebook's stop button, landing in a listener after zero_grad changed things

    t.on_change(interrupt)  # on_change isolates Exceptions; a KeyboardInterrupt passes through
    with pytest.raises(KeyboardInterrupt):
        t.zero_grad()
    t.on_change(interrupt, remove=True)
    assert float(t.W.grad.abs().sum()) == 0.0 and t.grad_passes == 0
    t.undo()  # the zero_grad happened (its state changed), so it can be taken back
    assert diff(t.state_dict(), before) == []
    assert torch.equal(t.W.grad, grads[0]) and torch.equal(t.b.grad, grads[1])


def test_a_student_error_that_changed_nothing_leaves_no_snapshot(digits):
    t = Trainer(digits, batch_size=64, seed=0)
    t.next_batch()
    n = len(t.snapshots)

    def broken(X):
        raise ValueError("not yet written")

    t.softmax = broken
    with pytest.raises(Exception, match="not yet written"):
        t.forward()
    assert len(t.snapshots) == n


def test_an_aborted_zero_grad_gives_the_gradients_back(digits):
    t = Trainer(digits, batch_size=64, seed=0)
    t.train_step()
    g, values = t.W.grad, t.W.grad.clone()
    t.snapshots.push(t, Phase.ZERO_GRAD)  # what the phase does first; then an interrupt before any change
    assert t.W.grad is not g
    t.snapshots.abort(t)
    assert t.W.grad is g and torch.equal(g, values) and len(t.snapshots) == 5


def test_undo_by_iterations_never_crosses_a_reset(digits):
    """'back to before the last sgd' after a reset stays in the new run; only a plain undo() takes the reset back."""
    t = Trainer(digits, batch_size=64, seed=0)
    for _ in range(3):
        t.train_step()
    t.reset()
    t.next_batch()
    t.forward()
    assert t.snapshots.iterations == 1
    with pytest.raises(PhaseError, match="Nothing to undo"):
        t.undo(iterations=2)
    assert t.iteration == 0 and t.next_phase is Phase.ZERO_GRAD  # the refusal changed nothing
    t.undo(iterations=1)
    assert t.iteration == 0 and t.next_phase is Phase.NEXT_BATCH
    t.undo()  # the reset itself
    assert t.iteration == 3 and len(t.history.loss) == 3
