"""Undo, and what wraps every phase: the decorator that refuses a call out of order, snapshots what the phase may
change (into the ring, ring.py) and tells the listeners; recovery from the notebook's interrupt inside a phase;
and undo() itself, which pops snapshots and rebuilds what they do not keep.

Switch undo off with `trainer.snapshots = SnapshotRing(0)` where its microseconds matter (ring.py says the cost).
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import TYPE_CHECKING

import torch

from . import hyperparams
from .phases import DivergenceError, Forward, Phase, PhaseError
from .ring import DEFAULT_DEPTH, HAND, SnapshotRing, Taken

if TYPE_CHECKING:
    from ._protocols import TrainerState as Trainer

__all__ = ["DEFAULT_DEPTH", "HAND", "SnapshotRing", "Taken", "interrupted", "phase_method", "restore_weights", "undo"]


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
        for p in t.params.values():
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


def restore_weights(t: Trainer, before: tuple[torch.Tensor, ...]) -> None:
    """W and b (t.params) back to `before` (sgd's copy), whatever a student's optimizer did to them."""
    with torch.no_grad():
        for p, old in zip(t.params.values(), before, strict=True):
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
            t.y_hat, t.loss = t.recompute_forward()
        except Exception:  # a function swapped since then fails: ask for forward() again
            t.y_hat = t.loss = None
            t.state = dataclasses.replace(t.state, forward=Forward.NONE)
    t.snapshots.remember(t)  # W and b as undo or the load left them: a later change by hand shows against these


