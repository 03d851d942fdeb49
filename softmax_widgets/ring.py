"""The snapshot ring undo reads: a bounded ring of per-phase snapshots, and whole-run snapshots before reset() and
load_state_dict().

Each phase saves only what it is about to change, and copies as little as it can: sgd() copies W and b once,
into the ring's own buffers (before_step: the snapshot, and what sgd puts back on a NaN); zero_grad
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

from operator import attrgetter
from typing import TYPE_CHECKING, NamedTuple

import torch

from . import model, persist
from .phases import Forward, Grad, Phase

if TYPE_CHECKING:
    from ._protocols import TrainerState as Trainer

__all__ = ["DEFAULT_DEPTH", "HAND", "SnapshotRing", "Taken"]

DEFAULT_DEPTH = 600  # phase snapshots: 120 whole iterations of five phases

# the Trainer's attributes that phases reassign (never mutate in place): a reference is a snapshot
_STATE = ("shuffle", "position", "batch_indices", "loss_value", "correct", "iteration", "epoch", "last_phase",
          "state", "epoch_seconds", "batches_drawn")
_get_state = attrgetter(*_STATE)
_ITERATION = _STATE.index("iteration")
_PER_ITERATION = ("loss", "train_acc", "batch_size", "batch")
_PER_EPOCH = ("test_acc", "epoch_loss", "epoch_train_acc", "epoch_iteration")
# (the parameters' names, copies them?, copies the gradients?) -> the buffers a slot keeps, made once per model
_KEEPS: dict[tuple[tuple[str, ...], bool, bool], tuple[str, ...]] = {}


def _keep(names: tuple[str, ...], wb: bool, grads: bool) -> tuple[str, ...]:
    """The buffer keys a slot keeps: the parameters' names ("W", "b" for the lesson), then "W.grad", ...; the same
    tuple object every time, so a slot compares it by identity."""
    key = (names, wb, grads)
    keep = _KEEPS.get(key)
    if keep is None:
        keep = _KEEPS[key] = (names if wb else ()) + (tuple(n + ".grad" for n in names) if grads else ())
    return keep

_ZERO = "zero"  # a snapshot's gradients were all zeros: nothing copied
_KEPT = "kept"  # the phase did not replace y_hat: undo leaves it as it is
HAND = "hand"  # a slot's phase: W or b changed outside the phases (`with torch.no_grad(): t.b += 100`)


class Taken(NamedTuple):
    """One snapshot as the diagnosis reads it, newest first: how many pops take it back, what it was, the lr of an
    sgd step, the iteration it started at, and for a change by hand what changed."""

    back: int
    phase: Phase | str  # a Phase, HAND, or "reset" / "load" (the start of this run)
    lr: float
    iteration: int
    note: str


class _Slot:
    """One phase's snapshot; its tensor buffers outlive it and are reused by the next phase in the slot."""

    __slots__ = ("bufs", "grads", "keep", "lengths", "lr", "note", "phase", "rng", "state", "sums", "wb", "whole",
                 "y_hat")

    def __init__(self) -> None:
        self.bufs: dict[str, torch.Tensor] = {}
        self.keep: tuple[str, ...] = ()
        self.y_hat = self.state = self.rng = self.whole = None  # whole: a run before reset() or load
        self.lr, self.note = 0.0, ""  # the lr an sgd step used; what a change by hand changed

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
        # W and b (t.params) as the last operation that changed them left them: a change by hand shows against these
        self._known: tuple[torch.Tensor, ...] | None = None
        self._versions: tuple[int, ...] = ()
        self._spare: tuple[torch.Tensor, ...] | None = None  # sgd's copy when no slot keeps it (capacity 0)
        self.stepped_from: tuple[torch.Tensor, ...] | None = None  # the running sgd's copy, once made

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
        bufs += [s.y_hat for s in self._slots if isinstance(s.y_hat, torch.Tensor)] + list(self._spare or ())
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
        slot.phase, slot.whole, slot.lr = phase, None, t.lr
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
        # W and b: sgd() copies them itself, into this slot's buffers (before_step), only once it is sure to run
        slot.wb = phase is Phase.SGD
        params = t.params
        if phase is Phase.BACKWARD and t.state.grad is Grad.ZERO and all(
                p.grad is not None for p in params.values()):
            slot.grads, copy = _ZERO, False  # zero_grad ran and no backward since: the gradients are 0
        else:
            copy = phase is Phase.ZERO_GRAD or phase is Phase.BACKWARD or (
                phase is Phase.SGD and t.optimizer is not model.sgd)  # a student's optimizer may touch .grad
            slot.grads = None
        keep = _keep(tuple(params), slot.wb, copy)
        if slot.keep is not keep:
            slot.release(keep, self._pool)
        if phase is Phase.ZERO_GRAD:  # keep the gradients themselves, hand W a spare that zero_grad() zeroes
            slot.grads = tuple(p.grad is not None for p in params.values())
            pool = self._pool
            for name, p in params.items():
                g = p.grad
                if g is not None:
                    key = name + ".grad"
                    spare = slot.bufs.get(key)
                    if spare is None:
                        spare = pool[key].pop() if pool.get(key) else torch.empty_like(g)
                    slot.bufs[key] = g
                    p.grad = spare
        elif copy:
            slot.grads = tuple(p.grad is not None for p in params.values())
            for name, p in params.items():
                if p.grad is not None:
                    slot.copy(name + ".grad", p.grad, self._pool)

    def before_step(self, t: Trainer) -> tuple[torch.Tensor, ...]:
        """sgd()'s copy of W and b (t.params) before its step, in the ring's own buffers: the pending slot's (the
        snapshot is exactly this copy), or a spare set when undo is off. sgd puts them back when its step breaks W."""
        self.stepped_from = None
        params = t.params
        if self.capacity:
            slot = self._slots[(self._start + self._count) % self._n]
            for name, p in params.items():
                slot.copy(name, p.detach(), self._pool)
            pair = tuple(slot.bufs[name] for name in params)
        else:
            pair = self._spare
            if pair is None or [x.shape for x in pair] != [p.shape for p in params.values()]:
                pair = self._spare = tuple(torch.empty_like(p, requires_grad=False) for p in params.values())
            for old, p in zip(pair, params.values(), strict=True):
                old.copy_(p.detach())
        self.stepped_from = pair
        return pair

    def keep_run(self, t: Trainer, action: str) -> None:
        """Before reset() or a load: the whole run in one slot, so that one undo() brings it back."""
        if not self.capacity:
            return
        slot = self._slots[(self._start + self._count) % self._n]
        slot.release((), self._pool)
        slot.phase, slot.whole, slot.wb = action, persist.capture(t), False
        slot.y_hat = slot.state = slot.rng = None
        self.commit(t)

    # ---- changes by hand: W or b changed between two phases (cell code), so that undo can put them back ----
    def remember(self, t: Trainer) -> None:
        """After anything that changes W or b on purpose (sgd, undo, reset, load): what a change by hand shows
        against. A copy of W and b (~31 kB on Fashion-MNIST, a few microseconds) and their version counters."""
        if not self.capacity:
            return
        params = tuple(t.params.values())
        known = self._known
        if known is None or [k.shape for k in known] != [p.shape for p in params]:
            known = self._known = tuple(torch.empty_like(p, requires_grad=False) for p in params)
        for k, p in zip(known, params, strict=True):
            k.copy_(p.detach())
        self._versions = tuple(p._version for p in params)

    def check_hand(self, t: Trainer) -> None:
        """At the start of every phase: did W or b change since the last phase? An in-place change under
        torch.no_grad() bumps a tensor's version counter (the lesson's `.data -=` and undo's do not), so the hot
        path compares two integers; only then are the values compared. A change through `.data` is not seen here."""
        params = t.params
        versions = tuple(p._version for p in params.values())
        if versions == self._versions or self._known is None:
            return
        known = self._known
        if [k.shape for k in known] != [p.shape for p in params.values()]:  # rebound: nothing to put back
            self.remember(t)
            return
        with torch.no_grad():
            changes = [(name, float((p.detach() - old).abs().max())) for (name, p), old in
                       zip(params.items(), known, strict=True) if not torch.equal(p.detach(), old)]
        if not changes:  # written, but to the same values (t.b += 0)
            self._versions = versions
            return
        names = " and ".join(name for name, _ in changes)
        largest = max(change for _, change in changes)
        note = f"{names} {'were' if len(changes) > 1 else 'was'} changed outside the phases (largest change " \
               f"{largest:.3g})"
        if self.capacity:  # one slot holding W and b from before the change: undo() puts them back
            slot = self._slots[(self._start + self._count) % self._n]
            slot.phase, slot.whole, slot.lr, slot.note, slot.wb = HAND, None, t.lr, note, True
            slot.state = _get_state(t)
            slot.sums = slot.lengths = slot.rng = slot.grads = None
            slot.y_hat = _KEPT
            keep = _keep(tuple(params), True, False)
            if slot.keep is not keep:
                slot.release(keep, self._pool)
            for name, old in zip(params, known, strict=True):
                slot.copy(name, old, self._pool)
            self.commit(t)
        self.remember(t)
        t.emit("warning", None, lambda: f"{note}: the next phases use the new values; trainer.undo(before='hand') "
               "puts the old ones back.", {"hand": {"params": [n for n, _ in changes], "largest": largest}})

    def walk(self):
        """This run's snapshots, newest first, as Taken; the last one is a reset or a load when one started it."""
        for back in range(1, self._count + 1):
            slot = self._slot(self._count - back)
            state = slot.state
            iteration = state[_ITERATION] if state is not None else -1
            yield Taken(back, slot.phase, slot.lr, iteration, slot.note)
            if slot.whole is not None:
                return

    @property
    def full(self) -> bool:
        """The oldest phases have started to fall off: the run's first phases may no longer be here."""
        return self._count == self.capacity

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
            for (name, p), had in zip(t.params.items(), slot.grads, strict=True):
                key = name + ".grad"
                if had:
                    spare = p.grad
                    p.grad = slot.bufs[key]
                    slot.bufs[key] = spare
        slot.y_hat = slot.state = slot.rng = None

    def abort_diverged(self, t: Trainer) -> None:
        """Drop a diverged forward's snapshot. It replaced y_hat (kept for the diagnosis, NaN and all): the phase
        before it takes back that y_hat too when it would have left y_hat as it is."""
        pending = self._slots[(self._start + self._count) % self._n]
        if self._count:
            prev = self._slot(self._count - 1)
            if prev.whole is None and prev.y_hat is _KEPT:
                prev.y_hat = pending.y_hat  # the y_hat before this forward (None: a live one, rebuilt on undo)
        self.abort(t)

    def commit(self, t: Trainer) -> None:
        """Keep the pending snapshot: the phase ran (or diverged after storing what it computed)."""
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
        params = t.params
        if slot.wb:  # .data: like the lesson's sgd, a change autograd does not record
            for name, p in params.items():
                p.data.copy_(slot.bufs[name])
        if slot.grads is _ZERO:
            for p in params.values():
                p.grad.zero_()
        elif slot.grads is not None:  # swap back: the slot keeps the current gradient as its spare
            for (name, p), had in zip(params.items(), slot.grads, strict=True):
                key = name + ".grad"
                now = p.grad
                p.grad = slot.bufs.pop(key) if had else None
                if now is not None:
                    slot.bufs[key] = now
        phase = slot.phase
        slot.y_hat = slot.state = slot.rng = None
        slot.note = ""
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
