"""Trainer: the lesson's loop cut into phases a student can call one at a time, in any order."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
import torch

from . import diagnosis, model, snapshots
from .data import Dataset, load_dataset
from .history import EpochResult, History
from .phases import CustomFunctionError, DivergenceError, Event, Phase, PhaseError
from .snapshots import undoable

__all__ = ["Trainer"]

log = logging.getLogger(__name__)
Listener = Callable[["Trainer", Event], None]

WAY_OUT = ("Ways out: switch to the stable softmax (trainer.use_stable_softmax()), "
           "lower the learning rate (e.g. trainer.lr = {lr_tenth:g}), undo() to step back, or reset().")


class _Swappable:
    """A slot for the lesson's function or a student's own: it must be callable, and a swap tells the views
    (a "settings" event), so the dashboard's softmax toggle follows `t.softmax = ...` typed in a cell at once."""

    def __init__(self, lesson: str, used_by: str):
        self.lesson, self.used_by = lesson, used_by

    def __set_name__(self, owner, name: str) -> None:
        self.name, self.slot = name, "_" + name

    def __get__(self, obj, objtype=None):
        return self if obj is None else obj.__dict__[self.slot]

    def __set__(self, obj, fn) -> None:
        if not callable(fn):
            raise ValueError(f"{self.name} must be a function, got {fn!r:.60}: nothing changed. Assign a function "
                             f"(def ...), or the lesson's: trainer.{self.name} = softmax_widgets.model.{self.lesson}")
        first = self.slot not in obj.__dict__  # __init__'s assignment: nobody listens yet
        obj.__dict__[self.slot] = fn
        if not first:  # every later assignment is told, like lr's, even when it repeats the function in use
            name = getattr(fn, "__name__", type(fn).__name__)
            obj._emit("settings", None, lambda: f"{self.name} set to {name}: used from the next {self.used_by}()")


class Trainer:
    """Softmax regression on `data`, one phase per call; views subscribe with on_change."""

    softmax = _Swappable("softmax", "forward")
    loss_fn = _Swappable("cross_entropy", "forward")
    optimizer = _Swappable("sgd", "sgd")

    def __init__(self, data: Dataset | str = "fashion-mnist", lr: float = 0.1, batch_size: int = 256,
                 seed: int = 0, init_std: float = 0.01, device: str = "cpu",
                 softmax: Callable | None = None, loss_fn: Callable | None = None,
                 optimizer: Callable | None = None):
        self.data = load_dataset(data) if isinstance(data, str) else data
        self.device = _check_device(device)
        self._check_lr(lr)
        self._check_batch_size(batch_size)
        self._check_seed(seed)
        if isinstance(init_std, bool) or not (isinstance(init_std, Real) and _finite(init_std) and init_std >= 0):
            raise ValueError(f"init_std must be a finite number >= 0, got {init_std!r}")
        self._lr, self._batch_size, self.seed, self.init_std = float(lr), int(batch_size), int(seed), init_std
        self._listeners: list[Listener] = []
        # the lesson's functions unless a student swaps in their own (any time, between steps)
        self.softmax = softmax or model.softmax
        self.loss_fn = loss_fn or model.cross_entropy
        self.optimizer = optimizer or model.sgd
        self._x_train = self.data.x_train.to(self.device)
        self._y_train = self.data.y_train.to(self.device)
        self._x_test = self.data.x_test.to(self.device)
        self._y_test = self.data.y_test.to(self.device)
        self.snapshots = snapshots.SnapshotRing()  # what undo() takes back: the last 600 phases
        self.reset()

    # ---- hyper-parameters: validated, changeable between any two steps ----
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._check_lr(value)
        self._lr = float(value)
        self._emit("settings", None, lambda: f"learning rate set to {self._lr:g}")

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._check_batch_size(value)
        self._batch_size = int(value)
        self._emit("settings", None, lambda: f"batch size set to {self._batch_size}: used from the next batch")

    @staticmethod
    def _check_lr(lr) -> None:
        if isinstance(lr, bool) or not isinstance(lr, Real) or not _finite(lr) or lr <= 0:
            raise ValueError(f"learning rate must be a finite number > 0 (the lesson uses 0.1), got {lr!r:.40}")

    def _check_batch_size(self, bs) -> None:
        n = len(self.data.y_train)
        if isinstance(bs, bool) or not isinstance(bs, Integral):
            raise ValueError(f"batch size must be a whole number from 1 to {n} (the lesson uses 256), got {bs!r:.40}")
        if not 1 <= bs <= n:
            raise ValueError(f"batch size must be between 1 and {n}, the number of training images; got {bs!r:.40}")

    @staticmethod
    def _check_seed(seed) -> None:
        if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= seed < 2**32:
            raise ValueError(f"seed must be a whole number from 0 to 2**32 - 1, got {seed!r:.40}")

    # ---- listeners (mirrors ipywidgets' on_click) ----
    def on_change(self, callback: Listener, remove: bool = False) -> None:
        """Call `callback(trainer, event)` after every phase; remove=True unsubscribes."""
        if remove:
            if callback in self._listeners:
                self._listeners.remove(callback)
        elif callback not in self._listeners:
            self._listeners.append(callback)

    @property
    def listener_count(self) -> int:
        return len(self._listeners)

    def _emit(self, kind: str, phase: Phase | None, text: Callable[[], str], detail: dict | None = None) -> None:
        if not self._listeners:  # the message costs a little: build it only for someone
            return
        event = Event(kind, phase, text(), detail or {})
        for callback in list(self._listeners):
            try:
                callback(self, event)
            except Exception:  # one broken view must not stop training or the other views
                log.exception("Trainer listener %r failed on %s", callback, event.kind)

    # ---- state ----
    def reset(self, seed: int | None = None) -> Trainer:
        """Back to the initial weights; the same seed gives the same init and batch order, exactly."""
        if seed is not None:
            self._check_seed(seed)
            self.seed = int(seed)
        d, c = self.data.num_inputs, self.data.num_classes
        # the lesson's init: np.random.normal(0, 0.01, (784, 10)) as float32
        w = np.random.RandomState(self.seed).normal(0, self.init_std, (d, c))
        # W is stored column by column (strides (1, d)): same values, but X @ W and its gradient
        # run 2x faster on CPU BLAS for a 10-column W (measured: benchmarks/bench_core.py)
        self.W = torch.empty_strided((d, c), (1, d), dtype=torch.float32, device=self.device)
        self.W.copy_(torch.from_numpy(w)).requires_grad_()
        self.b = torch.zeros(c, dtype=torch.float32, device=self.device).requires_grad_()
        self._W_before = torch.empty_like(self.W, requires_grad=False)
        self._b_before = torch.empty_like(self.b, requires_grad=False)
        self._gen = torch.Generator().manual_seed(self.seed)
        self.snapshots.clear()  # a new run: nothing before it to undo
        self._perm: torch.Tensor | None = None
        self._pos = 0
        self.X = self.y = self.y_hat = self.loss = self.batch_indices = None
        self.loss_value = math.nan  # the summed loss as a float (t.loss is the tensor)
        self.correct = 0
        self.iteration = self.epoch = 0
        self.history = History()
        self.last_phase: Phase | None = None
        self._batch_fresh = False  # a batch is drawn and sgd has not used it yet
        self._forward_live = False  # a finite loss whose graph backward has not used yet
        self._backward_on_batch = False
        self._fresh_grad = False  # a backward since the last sgd and the last zero_grad
        self._grads_finite = True
        self._zeroed_since_sgd = False
        self.grad_passes = 0  # backward passes summed in W.grad since the last zero_grad
        self._epoch_sums = [0.0, 0, 0]  # summed loss, correct, images, this epoch
        self._epoch_seconds = math.nan
        self._emit("reset", None, lambda: f"reset: seed {self.seed}, W ~ N(0, {self.init_std:g}²), b = 0")
        return self

    @property
    def num_train(self) -> int:
        return len(self._y_train)

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self.num_train / self._batch_size)

    @property
    def position(self) -> int:
        """Images of this epoch's shuffle already drawn."""
        return self._pos

    @property
    def next_phase(self) -> Phase:
        """The lesson's next call given what has been done; Step and Play run this one."""
        if not self._batch_fresh:
            return Phase.NEXT_BATCH
        if self._backward_on_batch and self._fresh_grad:
            # sgd() refuses NaN/inf gradients: Step and Play must not run into that wall again and again
            return Phase.SGD if self._grads_finite else Phase.ZERO_GRAD
        if not self._forward_live:
            return Phase.FORWARD
        if not self._zeroed_since_sgd:
            return Phase.ZERO_GRAD
        return Phase.BACKWARD

    # ---- the five phases ----
    @undoable(Phase.NEXT_BATCH)
    def next_batch(self) -> Trainer:
        """Draw the next slice of this epoch's seeded shuffle into X, y."""
        skipped = self._batch_fresh and self.last_phase is not None
        if self._perm is not None and self._pos >= self.num_train:
            self._end_epoch()  # the last batch was drawn but skipped
        if self._perm is None:
            self._perm = torch.randperm(self.num_train, generator=self._gen).to(self.device)
            self._pos = 0
        idx = self._perm[self._pos:self._pos + self._batch_size]
        self._pos += len(idx)
        # index_select copies the rows ~5x faster than x[idx] on CPU
        self.batch_indices = idx
        self.X, self.y = self._x_train.index_select(0, idx), self._y_train.index_select(0, idx)
        self.y_hat = self.loss = None
        self._batch_fresh, self._forward_live, self._backward_on_batch = True, False, False
        self._done(Phase.NEXT_BATCH, lambda: f"next_batch: {len(idx)} images, batch {self.batch_in_epoch} of "
                   f"{self.batches_per_epoch} in epoch {self.epoch + 1}")
        if skipped:
            self._emit("warning", Phase.NEXT_BATCH, lambda: "next_batch() replaced a batch that sgd() never "
                       "used: that batch is skipped. The usual order is forward, zero_grad, backward, sgd.")
        return self

    @property
    def batch_in_epoch(self) -> int:
        """1-based number of the current batch within its epoch."""
        return math.ceil(self._pos / self._batch_size) if self._pos else 0

    @undoable(Phase.FORWARD)
    def forward(self) -> Trainer:
        """y_hat = softmax(X W + b); loss = loss_fn(y_hat, y).sum()."""
        if not self._batch_fresh:
            raise PhaseError("forward() needs a batch: call next_batch() first." if self.X is None else
                             "forward() needs a new batch: sgd() already used this one. Call next_batch() first.")
        B = len(self.y)
        y_hat = self._call_student("softmax", lambda: model.net(self.X, self.W, self.b, self.softmax))
        if not (isinstance(y_hat, torch.Tensor) and tuple(y_hat.shape) == (B, self.data.num_classes)):
            raise CustomFunctionError(
                f"softmax must return a ({B}, {self.data.num_classes}) tensor of probabilities, got "
                f"{_describe(y_hat)}. Fix it, or set trainer.softmax = softmax_widgets.model.softmax.")
        loss = self._call_student("loss_fn", lambda: self.loss_fn(y_hat, self.y))
        if not isinstance(loss, torch.Tensor) or loss.numel() not in (1, B):
            raise CustomFunctionError(
                f"loss_fn must return one loss per image ({B} values) or their sum, got {_describe(loss)}. "
                "Fix it, or set trainer.loss_fn = softmax_widgets.model.cross_entropy.")
        self.y_hat, self.loss = y_hat, loss.sum()
        self.loss_value = self.loss.item()  # CPU-GPU sync point: the history needs the number
        self.correct = int((y_hat.argmax(dim=1) == self.y).sum())
        self._forward_live = math.isfinite(self.loss_value)
        if not self._forward_live:
            self._diverged(Phase.FORWARD, f"forward() gave a loss of {self.loss_value} on this batch: "
                           + self._why_nonfinite_loss(), diagnosis.diagnose_forward(self))
        self._done(Phase.FORWARD, lambda: f"forward: loss {self.loss_value / B:.2f} per image over {B} images, "
                   f"{100 * self.correct / B:.0f} % correct")
        return self

    @undoable(Phase.ZERO_GRAD)
    def zero_grad(self) -> Trainer:
        """W.grad = 0, b.grad = 0: without this, backward() adds to the old gradients."""
        for p in (self.W, self.b):
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            else:
                p.grad.zero_()
        self.grad_passes, self._fresh_grad, self._grads_finite, self._zeroed_since_sgd = 0, False, True, True
        self._done(Phase.ZERO_GRAD, lambda: "zero_grad: W.grad and b.grad set to 0")
        return self

    @undoable(Phase.BACKWARD)
    def backward(self) -> Trainer:
        """Autograd fills W.grad and b.grad with d(loss)/dW, d(loss)/db (added to what is there)."""
        if not self._forward_live:
            if self.y_hat is not None and not math.isfinite(self.loss_value):
                msg = f"backward() needs a finite loss, but the last forward() gave {self.loss_value}. "
                raise PhaseError(msg + WAY_OUT.format(lr_tenth=self._lr / 10))
            if self._backward_on_batch and self.y_hat is not None:
                raise PhaseError("backward() already ran on this forward pass, and autograd frees the graph "
                                 "after backward. Call sgd() to apply the gradients, or forward() to compute "
                                 "the loss again.")
            raise PhaseError("backward() needs a loss: call forward() first.")
        if not self.loss.requires_grad:
            self._forward_live = False  # this loss can never give a gradient: the next step is a new forward
            raise CustomFunctionError(
                "backward() cannot fill W.grad: the loss does not depend on W, so your softmax or loss_fn cut "
                "it off from autograd (.detach(), .data, .item(), torch.tensor(...) or torch.no_grad()). W is "
                "unchanged. Fix it (or put the lesson's back: trainer.softmax = softmax_widgets.model.softmax; "
                "trainer.loss_fn = softmax_widgets.model.cross_entropy), then call forward() again.")
        try:
            self.loss.backward()
            self.grad_passes += 1
            self._forward_live, self._backward_on_batch, self._fresh_grad = False, True, True
        except KeyboardInterrupt:
            if self._forward_live:  # the notebook's interrupt landed inside backward(): see _interrupted_backward
                self._interrupted_backward()
            raise
        except RuntimeError as err:
            if self.softmax in (model.softmax, model.stable_softmax) and self.loss_fn is model.cross_entropy:
                raise  # the lesson's own functions: show autograd's error as it is
            self._forward_live = False  # the graph is unusable: the next step is a new forward
            raise CustomFunctionError(
                f"backward() failed inside autograd ({type(err).__name__}: {str(err).splitlines()[0][:160]}): "
                "your softmax or loss_fn built something autograd cannot differentiate (often an in-place "
                "change such as X_exp /= s). Fix it (or put the lesson's back: trainer.softmax = "
                "softmax_widgets.model.softmax; trainer.loss_fn = softmax_widgets.model.cross_entropy), then "
                "call forward() again.") from err
        g_sum = self.W.grad.sum().item() + self.b.grad.sum().item()
        self._grads_finite = math.isfinite(g_sum)
        if not self._grads_finite:
            diag = diagnosis.diagnose_backward(self)
            self._diverged(Phase.BACKWARD, "backward() produced NaN or inf in W.grad although the loss "
                           f"({self.loss_value:.4g}) was finite: {diag.what}. sgd() will refuse these gradients; "
                           "call zero_grad() to clear them.", diag)
        acc = "" if self.grad_passes == 1 else f" (the sum of {self.grad_passes} backward passes: no zero_grad)"
        self._done(Phase.BACKWARD, lambda: f"backward: W.grad filled, ‖W.grad‖ "
                   f"{float(torch.linalg.vector_norm(self.W.grad)):.3g}{acc}")
        return self

    @undoable(Phase.SGD)
    def sgd(self) -> Trainer:
        """W -= lr * W.grad / B; b likewise. Finishes the iteration and records it."""
        if not self._fresh_grad or not self._backward_on_batch:
            if not self._batch_fresh and self.last_phase is Phase.SGD:
                raise PhaseError("sgd() already applied this batch's gradients: call next_batch() "
                                 "to start the next iteration.")
            if self._backward_on_batch:
                raise PhaseError("sgd() needs gradients, but zero_grad() cleared them after backward(). "
                                 "Call forward() and backward() again, then sgd().")
            raise PhaseError("sgd() needs gradients of this batch: call backward() first"
                             + ("." if self._forward_live else " (after forward())."))
        if not self._grads_finite:
            raise PhaseError("sgd() refused: W.grad holds NaN or inf, and applying it would destroy W. "
                             "Call zero_grad() to clear it. " + WAY_OUT.format(lr_tenth=self._lr / 10))
        B = len(self.y)
        # what an interrupt (the notebook's stop button) inside this call must put back; ~0.3 us
        before = (self.iteration, tuple(self._epoch_sums), self._batch_fresh, self._fresh_grad,
                  self._backward_on_batch, self._zeroed_since_sgd)
        copied = False
        try:
            self._W_before.copy_(self.W.detach())
            self._b_before.copy_(self.b.detach())
            copied = True
            self._apply_optimizer(B)
        except KeyboardInterrupt:
            if self.iteration == before[0]:  # not recorded: the iteration did not happen, W as it was
                self._interrupted_sgd(before, copied)
            raise
        self._done(Phase.SGD, lambda: f"sgd: W -= {self._lr:g} · W.grad / {B}; iteration {self.iteration} done")
        if self.grad_passes > 1:
            passes = self.grad_passes
            self._emit("warning", Phase.SGD, lambda: f"sgd() applied gradients accumulated over {passes} "
                       "backward passes because zero_grad() was skipped: W moved by their sum, not by this "
                       "batch's gradient. Call zero_grad() before backward() to start each batch from zero.")
        if self._pos >= self.num_train:
            self._end_epoch()
        return self

    def _apply_optimizer(self, B: int) -> None:
        """The optimizer, checked: W keeps its shape and stays finite, else it is put back; then record."""
        self._call_student("optimizer", lambda: self.optimizer([self.W, self.b], self._lr, B), restore=True)
        if self.W.shape != self._W_before.shape or self.b.shape != self._b_before.shape:
            self._restore_weights()
            raise CustomFunctionError(
                "your optimizer replaced W or b with a tensor of another shape; they were put back as they were. "
                "Update them in place (p.data -= lr * p.grad / batch_size), or put the lesson's back: "
                "trainer.optimizer = softmax_widgets.model.sgd")
        if not math.isfinite(self.W.detach().sum().item() + self.b.detach().sum().item()):
            self._restore_weights()
            self._diverged(Phase.SGD, f"sgd() with lr={self._lr:g} pushed W to NaN or inf, so W and b were "
                           "put back as they were.", diagnosis.diagnose_sgd(self))
        self._record(B)

    def _interrupted_sgd(self, before: tuple, copied: bool) -> None:
        """KeyboardInterrupt inside sgd() before it recorded: W, b, history and flags as before the call."""
        iteration, sums, *flags = before
        if copied:
            self._restore_weights()
        for values in (self.history.loss, self.history.train_acc, self.history.batch_size):
            del values[iteration:]
        self.iteration, self._epoch_sums = iteration, list(sums)
        self._batch_fresh, self._fresh_grad, self._backward_on_batch, self._zeroed_since_sgd = flags

    def _interrupted_backward(self) -> None:
        """KeyboardInterrupt inside backward(): the graph may be freed and W.grad half-filled; start clean."""
        for p in (self.W, self.b):
            if p.grad is not None:
                p.grad.zero_()
        self.grad_passes, self._fresh_grad, self._grads_finite, self._zeroed_since_sgd = 0, False, True, True
        self._forward_live = self._backward_on_batch = False  # next: forward() again, then backward()

    # ---- bookkeeping ----
    def _done(self, phase: Phase, text: Callable[[], str]) -> None:
        self.last_phase = phase
        self._emit("phase", phase, text)

    def _record(self, B: int) -> None:
        h = self.history
        h.loss.append(self.loss_value / B)
        h.train_acc.append(self.correct / B)
        h.batch_size.append(B)
        s = self._epoch_sums
        s[0] += self.loss_value
        s[1] += self.correct
        s[2] += B
        self.iteration += 1
        self._batch_fresh = self._fresh_grad = self._backward_on_batch = self._zeroed_since_sgd = False

    def _end_epoch(self) -> None:
        loss_sum, correct, n = self._epoch_sums
        test_acc = self.evaluate()
        h = self.history
        h.test_acc.append(test_acc)
        h.epoch_loss.append(loss_sum / n if n else math.nan)
        h.epoch_train_acc.append(correct / n if n else math.nan)
        h.epoch_iteration.append(self.iteration)
        self.epoch += 1
        self._perm, self._pos, self._epoch_sums = None, 0, [0.0, 0, 0]
        self._emit("epoch", None, lambda: f"epoch {self.epoch} done: {self.last_epoch}")

    @property
    def last_epoch(self) -> EpochResult | None:
        h = self.history
        if not h.test_acc:
            return None
        return EpochResult(len(h.test_acc), h.epoch_loss[-1], h.epoch_train_acc[-1], h.test_acc[-1],
                           self._epoch_seconds)

    def _restore_weights(self) -> None:
        with torch.no_grad():
            for p, before in ((self.W, self._W_before), (self.b, self._b_before)):
                if p.shape != before.shape:  # a student optimizer rebound p.data to another shape
                    p.data = torch.empty_like(before)
                p.copy_(before)

    def _diverged(self, phase: Phase, what: str, diag: diagnosis.Diagnosis) -> None:
        self.last_phase = phase
        where = f" {diag.where}" if diag.where else ""
        message = what + where + " Nothing recorded so far is lost. " + WAY_OUT.format(lr_tenth=self._lr / 10)
        self._emit("divergence", phase, lambda: message, diag.detail())
        raise DivergenceError(message, phase=phase, operation=diag.operation, rows=diag.rows, images=diag.images)

    def _why_nonfinite_loss(self) -> str:
        if self.softmax is not model.softmax and self.softmax is not model.stable_softmax:
            if not bool(torch.isfinite(self.y_hat).all()):
                return ("your softmax returned NaN or inf probabilities. Check it on a small tensor, or put the "
                        "lesson's back: trainer.softmax = softmax_widgets.model.softmax.")
            if bool((self.y_hat < 0).any()):
                return ("your softmax returned negative probabilities, and log() of a negative number is NaN. "
                        "Check it, or put the lesson's back: trainer.softmax = softmax_widgets.model.softmax.")
        if self.loss_fn is not model.cross_entropy and bool(torch.isfinite(self.y_hat).all()) and bool(
                (self.y_hat > 0).all()):
            return ("your loss_fn returned NaN or inf although every probability in y_hat is a finite number "
                    "above 0. Check it, or put the lesson's back: trainer.loss_fn = "
                    "softmax_widgets.model.cross_entropy.")
        with torch.no_grad():
            top = float(torch.addmm(self.b, self.X, self.W).max())  # -100 underflows, not overflows
        if top > 88 and self.softmax is model.softmax:
            return (f"the largest logit is {top:.0f}, and exp() of anything above ~88 overflows float32 to inf, "
                    "so the lesson's softmax divides inf by inf (NaN), usually after a too-large learning rate.")
        if self.y_hat is not None and bool((self.y_hat.gather(1, self.y.view(-1, 1)) <= 0).any()):
            return ("some true class got probability 0, and cross_entropy takes log(0) = -inf; "
                    "the learning rate is probably too large.")
        return "the model's outputs are not finite numbers any more; the learning rate is probably too large."

    def _call_student(self, name: str, fn: Callable, restore: bool = False):
        try:
            return fn()
        except Exception as err:
            if restore:
                self._restore_weights()
            default = _DEFAULTS[name]
            if getattr(self, name) is getattr(model, default):
                raise  # a bug in the lesson's own function: show it as it is
            raise CustomFunctionError(
                f"your {name} raised {type(err).__name__}: {err}. Nothing changed. Fix it, or put the "
                f"lesson's back: trainer.{name} = softmax_widgets.model.{default}") from err

    # ---- undo, save, load (the mechanics live in snapshots.py) ----
    def undo(self, iterations: int | None = None) -> Trainer:
        """Take back the last phase, or `iterations` whole iterations; W, b, grads, batch, RNG, history exactly."""
        return snapshots.undo(self, iterations)

    def state_dict(self) -> dict:
        """Everything needed to continue this run exactly (not the dataset, only its name)."""
        return snapshots.state_dict(self)

    def load_state_dict(self, state: dict) -> Trainer:
        """Continue exactly where state_dict() was taken (same next batch, same W after more steps)."""
        return snapshots.load_state_dict(self, state)

    def save(self, path) -> None:
        """Write state_dict() to `path` (torch.save); Trainer.load(path) continues from it."""
        snapshots.save(self, path)

    @classmethod
    def load(cls, path, data: Dataset | str | None = None, device: str = "cpu") -> Trainer:
        """A Trainer continuing a saved run; `data` defaults to the dataset named in the file."""
        state = snapshots.read(path)
        t = cls(data if data is not None else state["dataset"], lr=state["lr"], batch_size=state["batch_size"],
                seed=state["seed"], init_std=state["init_std"], device=device)
        return t.load_state_dict(state)

    def use_stable_softmax(self, flag: bool = True) -> Trainer:
        """Switch between the lesson's softmax and the one that subtracts the row max (never overflows)."""
        self.softmax = model.stable_softmax if flag else model.softmax
        return self

    # ---- whole iterations and epochs ----
    def step(self) -> Phase:
        """Run `next_phase`; returns the Phase it ran (what Step and Play call)."""
        phase = self.next_phase
        getattr(self, phase.value)()
        return phase

    def train_step(self) -> float:
        """Finish the current iteration (or run a whole one); returns its mean loss per image."""
        while self.step() is not Phase.SGD:
            pass
        return self.history.loss[-1]

    def run_epoch(self) -> EpochResult:
        """The rest of this epoch, then evaluate() on the test set."""
        start, epoch = time.perf_counter(), self.epoch
        while self.epoch == epoch:
            self.train_step()
        self._epoch_seconds = time.perf_counter() - start
        return self.last_epoch

    def fit(self, num_epochs: int, on_epoch: Callable[[EpochResult], None] | None = None) -> list[EpochResult]:
        """run_epoch() `num_epochs` times."""
        results = []
        for _ in range(int(num_epochs)):
            results.append(self.run_epoch())
            if on_epoch is not None:
                on_epoch(results[-1])
        return results

    @torch.no_grad()
    def evaluate(self) -> float:
        """Test accuracy with the current W and b (argmax of the logits = argmax of softmax)."""
        logits = torch.addmm(self.b, self._x_test, self.W)
        return float((logits.argmax(dim=1) == self._y_test).float().mean())

    def __repr__(self) -> str:
        loss = "" if self.y_hat is None else f", loss {self.loss_value / len(self.y):.4f} per image"
        return (f"Trainer({self.data.name}, lr={self._lr:g}, batch_size={self._batch_size}, seed={self.seed}): "
                f"epoch {self.epoch}, iteration {self.iteration}, last phase {self.last_phase}, "
                f"next phase {self.next_phase}{loss}")


_DEFAULTS = {"softmax": "softmax", "loss_fn": "cross_entropy", "optimizer": "sgd"}


def _check_device(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} is not available here (torch.cuda.is_available() is False): "
                         "use device='cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported: use 'cpu' or 'cuda'")
    return dev


def _finite(x: Real) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int too large for a float, such as 10**400
        return False


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)}"
    return f"{type(x).__name__} {x!r}"[:80]
