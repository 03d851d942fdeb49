"""Undo: a bounded ring of per-phase snapshots, and whole-run snapshots before reset() and load_state_dict().

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

import dataclasses
import functools
import itertools
from operator import attrgetter
from typing import TYPE_CHECKING, NamedTuple

import torch

from . import hyperparams, model, persist
from .phases import DivergenceError, Forward, Grad, Phase, PhaseError

if TYPE_CHECKING:
    from ._protocols import TrainerState as Trainer

__all__ = ["DEFAULT_DEPTH", "HAND", "SnapshotRing", "Taken", "interrupted", "phase_method", "undo"]

DEFAULT_DEPTH = 600  # phase snapshots: 120 whole iterations of five phases

# the Trainer's attributes that phases reassign (never mutate in place): a reference is a snapshot
_STATE = ("shuffle", "position", "batch_indices", "loss_value", "correct", "iteration", "epoch", "last_phase",
          "state", "epoch_seconds", "batches_drawn")
_get_state = attrgetter(*_STATE)
_ITERATION = _STATE.index("iteration")
_PER_ITERATION = ("loss", "train_acc", "batch_size", "batch")
_PER_EPOCH = ("test_acc", "epoch_loss", "epoch_train_acc", "epoch_iteration")
# (copies W and b?, copies the gradients?) -> the buffers a slot keeps
_KEEP = {(False, False): (), (True, False): ("W", "b"), (False, True): ("W.grad", "b.grad"),
         (True, True): ("W", "b", "W.grad", "b.grad")}
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
        # W and b as the last operation that changed them left them: a change by hand shows against these
        self._known: tuple[torch.Tensor, torch.Tensor] | None = None
        self._versions = (-1, -1)
        self._spare: tuple[torch.Tensor, torch.Tensor] | None = None  # sgd's copy when no slot keeps it (capacity 0)
        self.stepped_from: tuple[torch.Tensor, torch.Tensor] | None = None  # the running sgd's copy, once made

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

    def before_step(self, t: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
        """sgd()'s copy of W and b before its step, in the ring's own buffers: the pending slot's (the snapshot is
        exactly this copy), or a spare pair when undo is off. sgd puts them back when its step breaks W."""
        self.stepped_from = None
        if self.capacity:
            slot = self._slots[(self._start + self._count) % self._n]
            slot.copy("W", t.W.detach(), self._pool)
            slot.copy("b", t.b.detach(), self._pool)
            pair = slot.bufs["W"], slot.bufs["b"]
        else:
            pair = self._spare
            if pair is None or pair[0].shape != t.W.shape or pair[1].shape != t.b.shape:
                pair = self._spare = (torch.empty_like(t.W, requires_grad=False),
                                      torch.empty_like(t.b, requires_grad=False))
            pair[0].copy_(t.W.detach())
            pair[1].copy_(t.b.detach())
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
        known = self._known
        if known is None or known[0].shape != t.W.shape or known[1].shape != t.b.shape:
            known = self._known = (torch.empty_like(t.W, requires_grad=False),
                                   torch.empty_like(t.b, requires_grad=False))
        known[0].copy_(t.W.detach())
        known[1].copy_(t.b.detach())
        self._versions = (t.W._version, t.b._version)

    def check_hand(self, t: Trainer) -> None:
        """At the start of every phase: did W or b change since the last phase? An in-place change under
        torch.no_grad() bumps a tensor's version counter (the lesson's `.data -=` and undo's do not), so the hot
        path compares two integers; only then are the values compared. A change through `.data` is not seen here."""
        if (t.W._version, t.b._version) == self._versions or self._known is None:
            return
        W0, b0 = self._known
        if W0.shape != t.W.shape or b0.shape != t.b.shape:  # rebound to another shape: nothing to put back
            self.remember(t)
            return
        with torch.no_grad():
            changes = [(name, float((p.detach() - old).abs().max())) for name, p, old in
                       (("W", t.W, W0), ("b", t.b, b0)) if not torch.equal(p.detach(), old)]
        if not changes:  # written, but to the same values (t.b += 0)
            self._versions = (t.W._version, t.b._version)
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
            if slot.keep is not _KEEP[True, False]:
                slot.release(_KEEP[True, False], self._pool)
            slot.copy("W", W0, self._pool)
            slot.copy("b", b0, self._pool)
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
            for p, key, had in ((t.W, "W.grad", slot.grads[0]), (t.b, "b.grad", slot.grads[1])):
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


def phase_method(phase: Phase):
    """Decorate a Trainer phase whose body is the lesson's line and the state it moves: refuse the call when the
    order rules say so (phases.RULES: nothing changes), note a change of W or b by hand, snapshot what the phase may
    change, put things back when the notebook's interrupt lands inside it, and tell the listeners what ran. The
    body returns its event's text (a function: built only for a listener), then any warnings ("" for none) and
    what runs after the event (sgd's end of an epoch). The snapshot is kept when the phase ran and dropped when it
    refused or only showed a divergence (a forward whose loss came out NaN: undo must always take back something
    the student can see)."""
    def wrap(method):
        @functools.wraps(method)
        def run_phase(self: Trainer):
            ring = self.snapshots
            if ring.capacity:
                ring.check_hand(self)
            why = self.state.refusal(phase)
            if why is not None:
                raise PhaseError(why)
            before = _before(self) if phase is Phase.SGD else None
            if not ring.capacity:  # undo switched off (trainer.snapshots = SnapshotRing(0)): the bare phase
                try:
                    _tell(self, phase, method(self))
                except KeyboardInterrupt:
                    interrupted(self, phase, before)
                    raise
                return self
            ring.push(self, phase)
            try:
                _tell(self, phase, method(self))
            except DivergenceError:
                # a diverged forward leaves the loop where it was (forward lit again): no undo step of its own;
                # the next undo takes back the phase before it, whose snapshot restores what it stored
                if phase is Phase.FORWARD:
                    ring.abort_diverged(self)
                elif ring.changed(self):
                    ring.commit(self)
                else:
                    ring.abort(self)
                raise
            except BaseException as err:  # a student's error, the notebook's interrupt
                if isinstance(err, KeyboardInterrupt):
                    interrupted(self, phase, before)
                if ring.changed(self):
                    ring.commit(self)  # the phase changed something before it stopped: undo() takes it back
                else:
                    ring.abort(self)  # nothing happened: no snapshot
                raise
            finally:
                if phase is Phase.SGD:  # sgd changed W (or put it back): a later change shows against this
                    ring.remember(self)
            ring.commit(self)
            return self
        return run_phase
    return wrap


def _tell(t: Trainer, phase: Phase, said) -> None:
    """A phase ran: its event, then its warnings, then what comes after it (an epoch's end)."""
    t.last_phase = phase
    if callable(said):
        t.emit("phase", phase, said)
        return
    t.emit("phase", phase, said[0])
    for then in said[1:]:
        if callable(then):
            then()
        elif then:
            t.emit("warning", phase, lambda w=then: w)


# ---- the notebook's interrupt (the stop button) inside a phase: the Trainer as before it, or clean ----
def _before(t: Trainer) -> tuple:
    """What an interrupt inside sgd() must put back; ~0.3 us."""
    t.snapshots.stepped_from = None  # sgd's copy of W is not made yet
    return t.iteration, tuple(t.epoch_totals), t.state


def interrupted(t: Trainer, phase: Phase, before: tuple | None) -> None:
    """KeyboardInterrupt inside `phase`. In sgd() before it recorded: W, b, history and state as before the call
    (`before`: iteration, epoch totals, state). In backward(): the graph may be freed and W.grad half-filled, so
    the gradients are zeroed and the next call is forward() again, then backward()."""
    if phase is Phase.BACKWARD:
        for p in (t.W, t.b):
            if p.grad is not None:
                p.grad.zero_()
        t.state = t.state.dropped().zeroed()
    elif phase is Phase.SGD and t.iteration == before[0]:  # not recorded: the iteration did not happen
        iteration, totals, state = before
        copy = t.snapshots.stepped_from
        if copy is not None:
            restore_weights(t, copy)
        h = t.history
        for values in (h.loss, h.train_acc, h.batch_size, h.batch):
            del values[iteration:]
        t.iteration, t.epoch_totals, t.state = iteration, list(totals), state


def restore_weights(t: Trainer, before: tuple[torch.Tensor, torch.Tensor]) -> None:
    """W and b back to `before` (sgd's copy), whatever a student's optimizer did to them."""
    with torch.no_grad():
        for p, old in zip((t.W, t.b), before, strict=True):
            if p.shape != old.shape:  # a student optimizer rebound p.data to another shape
                p.data = torch.empty_like(old)
            p.copy_(old)


def undo(t: Trainer, iterations: int | None = None, before: Phase | str | None = None,
         lr_above: float | None = None) -> Trainer:
    """Back one phase, or `iterations` whole iterations (a half-done one counts), or to just before the last
    `before` phase ("sgd": the step that pushed W too far; "hand": the last change of W or b by hand), or to just
    before the first of the newest sgd steps taken at an lr above `lr_above` (every step that blew W up); settings
    (lr, batch size, swapped functions) stay as they are now: undo takes back phases, not choices."""
    ring = t.snapshots
    if not ring.capacity:
        raise PhaseError("Nothing to undo: undo is switched off (trainer.snapshots has capacity 0). Switch it on "
                         "with trainer.snapshots = softmax_widgets.undo.SnapshotRing(); it keeps what follows.")
    if sum(x is not None for x in (iterations, before, lr_above)) > 1:
        raise ValueError("give one of iterations, before or lr_above, not both: undo(iterations=2), "
                         "undo(before='sgd') or undo(lr_above=0.1)")
    steps = 0
    if lr_above is not None:
        hyperparams.check_lr(lr_above)
        pops, steps, lrs = large_steps(ring, float(lr_above))
        what = f"the sgd steps taken at an lr above {lr_above:g}"
    elif before is not None:
        if before == HAND:
            pops = next((s.back for s in ring.walk() if s.phase == HAND), -1)
            what = "a change of W or b by hand"
        else:
            try:
                phase = Phase(before)
            except ValueError:
                raise ValueError(f"before must be one of the five phases ({', '.join(p.value for p in Phase)}) or "
                                 f"{HAND!r}, got {before!r}") from None
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
    notes = [s.note for s in itertools.islice(ring.walk(), pops)]
    undone = [ring.pop_into(t) for _ in range(pops)]
    rebuild(t)
    first = undone[-1]
    last = undone[0] if isinstance(undone[0], Phase) else None  # None: a reset, a load or a change by hand
    taken = f"{len(undone)} phase{'s' if len(undone) > 1 else ''} taken back"
    if steps:
        head = (f"undo: took back the {_steps(steps)} at lr {_lrs(lrs)} (back to before the first of them, "
                f"{taken})")
    elif first == HAND:
        head = f"undo: back to before the change by hand ({notes[-1]}; {taken})"
    else:
        head = f"undo: back to before {first} ({taken})"
    t.emit("undo", last, lambda: f"{head}; iteration {t.iteration}, epoch {t.epoch + 1}, next phase "
           f"{t.next_phase}; {len(ring)} more can be undone")
    return t


def large_steps(ring: SnapshotRing, lr_above: float) -> tuple[int, int, list[float]]:
    """The pops that take back every sgd step of the newest ones whose lr is above `lr_above` (and everything
    after them), how many steps that is, and their lrs; (-1, 0, []) when the newest step is not above it. Stops at
    a reset, a load or a change by hand: those are the student's, not the lr's."""
    pops, lrs = -1, []
    for s in ring.walk():
        if s.phase == HAND or not isinstance(s.phase, Phase):
            break
        if s.phase is Phase.SGD:
            if s.lr <= lr_above:
                break
            pops = s.back
            lrs.append(s.lr)
    return pops, len(lrs), lrs


def _steps(n: int) -> str:
    return "sgd step" if n == 1 else f"{n} sgd steps"


def _lrs(lrs: list[float]) -> str:
    values = sorted(set(lrs), reverse=True)
    return " and ".join(f"{v:g}" for v in values[:3]) + (" …" if len(values) > 3 else "")


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
    t.snapshots.remember(t)  # W and b as undo or the load left them: a later change by hand shows against these


