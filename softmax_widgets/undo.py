"""Undo: a bounded ring of per-phase snapshots, and whole-run snapshots before reset() and load_state_dict().

Each phase saves only what it is about to change, and copies as little as it can: sgd() already copies
W and b (to put them back on a NaN), and the ring takes that copy and hands sgd a spare buffer; zero_grad
hands W a spare gradient and keeps the old one; backward right after zero_grad knows the gradients are 0;
next_batch keeps the RNG state only when it shuffles a new epoch. The rest are references to tensors the
Trainer replaces rather than mutates (y_hat detached, batch indices, the LoopState), and small numbers. A live
forward graph is not kept: undo() recomputes it (same W, b, X: the same numbers).

Cost (`python benchmarks/bench_core.py`): tens of microseconds per iteration, mostly Python. Switch undo off
with `trainer.snapshots = SnapshotRing(0)` where those microseconds matter.

Memory (`trainer.snapshots.nbytes`, 600 phases = 120 iterations, batch 256): 8.8 MB on Fashion-MNIST
(one W and one gradient per iteration, 784 x 10 float32 = 31 kB each, plus each batch's (256, 10) y_hat),
1.8 MB on the 8x8 digits; plus at most two epochs' shuffles (60,000 int64 = 0.5 MB each) still referenced.
"""
from __future__ import annotations

import dataclasses
import functools
from operator import attrgetter
from typing import TYPE_CHECKING

import torch

from . import model, persist
from .phases import Forward, Grad, Phase, PhaseError

if TYPE_CHECKING:
    from ._protocols import TrainerState as Trainer

__all__ = ["DEFAULT_DEPTH", "SnapshotRing", "undo", "undoable"]

DEFAULT_DEPTH = 600  # phase snapshots: 120 whole iterations of five phases

# the Trainer's attributes that phases reassign (never mutate in place): a reference is a snapshot
_STATE = ("shuffle", "position", "batch_indices", "loss_value", "correct", "iteration", "epoch", "last_phase",
          "state", "epoch_seconds", "batches_drawn")
_get_state = attrgetter(*_STATE)
_PER_ITERATION = ("loss", "train_acc", "batch_size", "batch")
_PER_EPOCH = ("test_acc", "epoch_loss", "epoch_train_acc", "epoch_iteration")
# (copies W and b?, copies the gradients?) -> the buffers a slot keeps
_KEEP = {(False, False): (), (True, False): ("W", "b"), (False, True): ("W.grad", "b.grad"),
         (True, True): ("W", "b", "W.grad", "b.grad")}
_ZERO = "zero"  # a snapshot's gradients were all zeros: nothing copied
_KEPT = "kept"  # the phase did not replace y_hat: undo leaves it as it is


class _Slot:
    """One phase's snapshot; its tensor buffers outlive it and are reused by the next phase in the slot."""

    __slots__ = ("bufs", "grads", "keep", "lengths", "phase", "rng", "state", "sums", "wb", "whole", "y_hat")

    def __init__(self) -> None:
        self.bufs: dict[str, torch.Tensor] = {}
        self.keep: tuple[str, ...] = ()
        self.y_hat = self.state = self.rng = self.whole = None  # whole: a run before reset() or load

    def copy(self, key: str, src: torch.Tensor, pool: dict[str, list[torch.Tensor]]) -> None:
        buf = self.bufs.get(key)
        if buf is None:
            spares = pool.get(key)
            buf = self.bufs[key] = spares.pop() if spares else torch.empty_like(src)
        buf.copy_(src)  # gradients never require grad: no detach needed

    def release(self, keep: tuple[str, ...], pool: dict[str, list[torch.Tensor]]) -> None:
        """Hand the buffers this phase does not need to the pool (slots do not all hold the same phase)."""
        for key in [k for k in self.bufs if k not in keep]:
            pool.setdefault(key, []).append(self.bufs.pop(key))
        self.keep = keep


class SnapshotRing:
    """The last `capacity` phases, newest last; one spare slot takes the phase being run right now."""

    def __init__(self, capacity: int = DEFAULT_DEPTH):
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = int(capacity)
        # one spare slot takes the phase being run; four more make the count a multiple of the five phases, so in
        # the lesson's order each slot always holds the same phase and keeps its buffers (no release per phase)
        self._slots = [_Slot() for _ in range(self.capacity + 5)]
        self._n = len(self._slots)
        self._pool: dict[str, list[torch.Tensor]] = {}  # spare copy buffers, reused before allocating
        self._start = self._count = 0

    def __len__(self) -> int:
        """Phases that undo() can still take back."""
        return self._count

    @property
    def iterations(self) -> int:
        """Whole iterations (next_batch snapshots) of this run that undo(iterations=n) can still take back: back to
        its start at most (a reset or a load before it is taken back by undo() alone)."""
        n = 0
        for back in range(1, self._count + 1):
            slot = self._slot(self._count - back)
            if slot.whole is not None:
                break
            n += slot.phase is Phase.NEXT_BATCH
        return n

    def find_phase(self, phase: Phase) -> int:
        """How many phases undo() pops to take back the newest `phase` of this run (and all after it); -1 when
        there is none since the run's start (a reset or a load)."""
        for back in range(1, self._count + 1):
            slot = self._slot(self._count - back)
            if slot.whole is not None:
                return -1
            if slot.phase is phase:
                return back
        return -1

    @property
    def nbytes(self) -> int:
        """Memory the snapshots hold: their copies of W, b and gradients (reused buffers) and old y_hat."""
        bufs = [b for s in self._slots for b in s.bufs.values()] + [b for p in self._pool.values() for b in p]
        bufs += [s.y_hat for s in self._slots if isinstance(s.y_hat, torch.Tensor)]
        return sum(b.numel() * b.element_size() for b in bufs)

    def clear(self) -> None:
        self._start = self._count = 0
        for slot in self._slots:  # drop references to old batches, keep the buffers
            slot.y_hat = slot.state = slot.rng = slot.whole = None

    def _slot(self, i: int) -> _Slot:
        return self._slots[(self._start + i) % self._n]

    # ---- the hot path: one push per phase, a few microseconds ----
    def push(self, t: Trainer, phase: Phase) -> None:
        """Save what `phase` is about to change into the spare slot (commit() keeps it)."""
        slot = self._slots[(self._start + self._count) % self._n]
        slot.phase, slot.whole = phase, None
        slot.state = _get_state(t)
        if phase is Phase.SGD or phase is Phase.NEXT_BATCH:  # the only phases that record or end an epoch
            slot.sums = tuple(t.epoch_totals)  # sgd adds to this list in place
            h = t.history
            slot.lengths = (len(h.loss), len(h.test_acc))
        else:
            slot.sums = slot.lengths = None
        # y_hat: only next_batch and forward replace it. Detached: holding its autograd graph would move
        # the graph's teardown into a later phase (measured: +15 us). A live graph (forward done, backward
        # not yet) is rebuilt on undo instead.
        slot.y_hat = _KEPT
        if phase is Phase.NEXT_BATCH or phase is Phase.FORWARD:
            y_hat = t.y_hat
            slot.y_hat = None if y_hat is None or t.state.forward is Forward.LIVE else y_hat.detach()
        slot.rng = None
        if phase is Phase.NEXT_BATCH and (t.shuffle is None or t.position >= t.shuffle.shape[0]):
            slot.rng = t.generator.get_state()  # this call shuffles a new epoch: keep the RNG it draws from
        # W and b: sgd() itself copies them into W_before/b_before; commit() takes those copies
        slot.wb = phase is Phase.SGD
        if phase is Phase.BACKWARD and t.state.grad is Grad.ZERO and t.W.grad is not None \
                and t.b.grad is not None:
            slot.grads, copy = _ZERO, False  # zero_grad ran and no backward since: the gradients are 0
        else:
            copy = phase is Phase.ZERO_GRAD or phase is Phase.BACKWARD or (
                phase is Phase.SGD and t.optimizer is not model.sgd)  # a student's optimizer may touch .grad
            slot.grads = None
        keep = _KEEP[slot.wb, copy]
        if slot.keep is not keep:
            slot.release(keep, self._pool)
        if phase is Phase.ZERO_GRAD:  # keep the gradients themselves, hand W a spare that zero_grad() zeroes
            slot.grads = (t.W.grad is not None, t.b.grad is not None)
            pool = self._pool
            for p, key in ((t.W, "W.grad"), (t.b, "b.grad")):
                g = p.grad
                if g is not None:
                    spare = slot.bufs.get(key)
                    if spare is None:
                        spare = pool[key].pop() if pool.get(key) else torch.empty_like(g)
                    slot.bufs[key] = g
                    p.grad = spare
        elif copy:
            Wg, bg = t.W.grad, t.b.grad
            slot.grads = (Wg is not None, bg is not None)
            if Wg is not None:
                slot.copy("W.grad", Wg, self._pool)
            if bg is not None:
                slot.copy("b.grad", bg, self._pool)

    def keep_run(self, t: Trainer, action: str) -> None:
        """Before reset() or a load: the whole run in one slot, so that one undo() brings it back."""
        if not self.capacity:
            return
        slot = self._slots[(self._start + self._count) % self._n]
        slot.release((), self._pool)
        slot.phase, slot.whole, slot.wb = action, persist.capture(t), False
        slot.y_hat = slot.state = slot.rng = None
        self.commit(t)

    def changed(self, t: Trainer) -> bool:
        """Did the phase being run change the Trainer's state? (Only asked when it raised.)"""
        slot = self._slots[(self._start + self._count) % self._n]
        h = t.history
        return any(a is not b for a, b in zip(_get_state(t), slot.state, strict=True)) or (
            slot.lengths is not None and slot.lengths != (len(h.loss), len(h.test_acc)))

    def abort(self, t: Trainer) -> None:
        """Drop the pending snapshot; give back the gradients zero_grad's push swapped out."""
        slot = self._slots[(self._start + self._count) % self._n]
        if slot.phase is Phase.ZERO_GRAD and slot.grads is not None:
            for p, key, had in ((t.W, "W.grad", slot.grads[0]), (t.b, "b.grad", slot.grads[1])):
                if had:
                    spare = p.grad
                    p.grad = slot.bufs[key]
                    slot.bufs[key] = spare
        slot.y_hat = slot.state = slot.rng = None

    def commit(self, t: Trainer) -> None:
        """Keep the pending snapshot: the phase ran (or diverged after storing what it computed)."""
        slot = self._slots[(self._start + self._count) % self._n]
        if slot.wb:  # swap buffers with the Trainer: no second copy of W
            pool = self._pool
            for key, attr in (("W", "W_before"), ("b", "b_before")):
                spare = slot.bufs.get(key)
                if spare is None:
                    spare = pool[key].pop() if pool.get(key) else torch.empty_like(getattr(t, attr))
                slot.bufs[key] = getattr(t, attr)
                setattr(t, attr, spare)
        if self._count == self.capacity:
            if not self.capacity:
                return
            self._start = (self._start + 1) % self._n  # the oldest phase falls off
        else:
            self._count += 1

    # ---- undo ----
    def pop_into(self, t: Trainer) -> Phase:
        """Restore the newest snapshot into `t` (without rebuilding X or the graph); returns its phase."""
        self._count -= 1
        slot = self._slot(self._count)
        if slot.whole is not None:
            persist.restore(t, slot.whole)
            slot.whole = None
            return slot.phase
        for name, value in zip(_STATE, slot.state, strict=True):
            setattr(t, name, value)
        if slot.sums is not None:
            t.epoch_totals = list(slot.sums)
            n_it, n_ep = slot.lengths
            h = t.history
            for name in _PER_ITERATION:
                del getattr(h, name)[n_it:]
            for name in _PER_EPOCH:
                del getattr(h, name)[n_ep:]
        if slot.y_hat is not _KEPT:
            t.y_hat, t.loss = slot.y_hat, None  # rebuild() makes the loss again
        if slot.rng is not None:
            t.generator.set_state(slot.rng)
        if slot.wb:  # .data: like the lesson's sgd, a change autograd does not record
            t.W.data.copy_(slot.bufs["W"])
            t.b.data.copy_(slot.bufs["b"])
        if slot.grads is _ZERO:
            for p in (t.W, t.b):
                p.grad.zero_()
        elif slot.grads is not None:  # swap back: the slot keeps the current gradient as its spare
            for p, key, had in ((t.W, "W.grad", slot.grads[0]), (t.b, "b.grad", slot.grads[1])):
                now = p.grad
                p.grad = slot.bufs.pop(key) if had else None
                if now is not None:
                    slot.bufs[key] = now
        phase = slot.phase
        slot.y_hat = slot.state = slot.rng = None
        return phase

    def find_iteration(self, n: int) -> int:
        """How many phases to pop to go back `n` iterations (to before the n-th newest next_batch)."""
        found = 0
        for back in range(1, self._count + 1):
            slot = self._slot(self._count - back)
            if slot.whole is not None:
                return -1  # never across a reset or a load: "back to before the last sgd" stays in this run
            if slot.phase is Phase.NEXT_BATCH:
                found += 1
                if found == n:
                    return back
        return -1


def undoable(phase: Phase):
    """Decorate a Trainer phase: snapshot first; keep it when the phase ran (or diverged), drop it when it refused."""
    def wrap(method):
        @functools.wraps(method)
        def run_phase(self: Trainer):
            ring = self.snapshots
            if not ring.capacity:  # undo switched off (trainer.snapshots = SnapshotRing(0)): the bare phase
                return method(self)
            ring.push(self, phase)
            try:
                result = method(self)
            except BaseException:  # a refusal, a divergence, a student's error, the notebook's interrupt
                if ring.changed(self):
                    ring.commit(self)  # the phase changed something before it stopped: undo() takes it back
                else:
                    ring.abort(self)  # nothing happened: no snapshot
                raise
            ring.commit(self)
            return result
        return run_phase
    return wrap


def undo(t: Trainer, iterations: int | None = None, before: Phase | str | None = None) -> Trainer:
    """Back one phase, or `iterations` whole iterations (a half-done one counts), or to just before the last
    `before` phase ("sgd": the step that pushed W too far); settings (lr, batch size, swapped functions) stay as
    they are now: undo takes back phases, not choices."""
    ring = t.snapshots
    if not ring.capacity:
        raise PhaseError("Nothing to undo: undo is switched off (trainer.snapshots has capacity 0). Switch it on "
                         "with trainer.snapshots = softmax_widgets.undo.SnapshotRing(); it keeps what follows.")
    if before is not None:
        if iterations is not None:
            raise ValueError("give iterations or before, not both: undo(iterations=2) or undo(before='sgd')")
        try:
            phase = Phase(before)
        except ValueError:
            raise ValueError(f"before must be one of the five phases ({', '.join(p.value for p in Phase)}), "
                             f"got {before!r}") from None
        pops = ring.find_phase(phase)
        what = f"the last {phase}()"
    elif iterations is None:
        pops = 1 if len(ring) else -1
        what = "the last phase"
    else:
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations must be a whole number >= 1, got {iterations!r}")
        pops = ring.find_iteration(iterations)
        what = f"{iterations} iteration{'s' if iterations > 1 else ''}"
    if pops < 0:
        have = f"only {ring.iterations} iteration(s) ({len(ring)} phases)" if len(ring) else "nothing"
        raise PhaseError(f"Nothing to undo: cannot take back {what}, there is {have} to undo. Undo keeps the last "
                         f"{ring.capacity} phases (a reset() or a load counts as one). Call reset() to start over.")
    undone = [ring.pop_into(t) for _ in range(pops)]
    rebuild(t)
    first = undone[-1]
    last = undone[0] if isinstance(undone[0], Phase) else None  # None: a reset or a load was taken back
    t.emit("undo", last, lambda: f"undo: back to before {first} ({len(undone)} phase"
            f"{'s' if len(undone) > 1 else ''} taken back); iteration {t.iteration}, epoch {t.epoch + 1}, "
            f"next phase {t.next_phase}; {len(ring)} more can be undone")
    return t


def rebuild(t: Trainer) -> None:
    """Recompute what snapshots do not keep: X, y from the batch indices, and a live forward graph."""
    idx = t.batch_indices
    if idx is None:
        t.X = t.y = None
    else:
        t.X, t.y = t.batch(idx)
    live = t.state.forward is Forward.LIVE
    if not live and t.y_hat is not None and t.loss is None:  # the summed loss, as a number it was
        t.loss = torch.tensor(t.loss_value, dtype=t.y_hat.dtype, device=t.y_hat.device)
    if live:
        try:  # same W, b, X and functions: the same numbers, with a graph backward() can use
            t.y_hat = model.net(t.X, t.W, t.b, t.softmax)
            t.loss = t.loss_fn(t.y_hat, t.y).sum()
        except Exception:  # a function swapped since then fails: ask for forward() again
            t.y_hat = t.loss = None
            t.state = dataclasses.replace(t.state, forward=Forward.NONE)


