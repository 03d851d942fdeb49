"""Trainer: the lesson's loop cut into phases a student can call one at a time, in any order.

Each phase reads the same way: check the refusal table for where the loop stands (`self.state`), do the
lesson's line, move the state. The table and the state live in phases.py, every "why NaN" sentence in
diagnosis.py, undo in undo.py, state files in persist.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch

from . import diagnosis, evaluation, hyperparams, measure, model, persist, undo
from .callbacks import CallbackRegistry
from .data import Dataset, as_float, load_dataset
from .history import EpochResult, History
from .phases import Batch, CustomFunctionError, DivergenceError, Event, Grad, LoopState, Phase, PhaseError
from .undo import SnapshotRing, undoable

__all__ = ["Trainer"]

Listener = Callable[["Trainer", Event], None]


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
                             f"(def ...), or the lesson's: trainer.use_lesson({self.lesson!r})")
        first = self.slot not in obj.__dict__  # __init__'s assignment: nobody listens yet
        obj.__dict__[self.slot] = fn
        if not first:  # every later assignment is told, like lr's, even when it repeats the function in use
            obj.emit("settings", None, lambda: f"{self.name} set to {self.describe(fn)}: used from the next "
                     f"{self.used_by}()")

    def describe(self, fn) -> str:
        """Whose function it is, in words: "softmax set to softmax" said nothing when the lesson's was picked."""
        if fn is getattr(model, self.lesson):
            return f"the lesson's {self.lesson}"
        if fn is model.stable_softmax:
            return "the stable softmax (it subtracts each row's max before exp)"
        return f"your {measure.name_of(fn)}"


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
        self.device = hyperparams.check_device(device)
        hyperparams.check_lr(lr)
        hyperparams.check_batch_size(batch_size, len(self.data.y_train))
        hyperparams.check_seed(seed)
        hyperparams.check_init_std(init_std)
        self._lr, self._batch_size, self.seed, self.init_std = float(lr), int(batch_size), int(seed), init_std
        self._listeners = CallbackRegistry("Trainer")
        # the lesson's functions unless a student swaps in their own (any time, between steps)
        self.softmax = softmax or model.softmax
        self.loss_fn = loss_fn or model.cross_entropy
        self.optimizer = optimizer or model.sgd
        # the data on the Trainer's device, once, as stored (uint8: a quarter of float32's memory): batches
        # index these and convert only the batch (never a per-image transform); evaluate() goes by chunks
        self.pixels_train, self.y_train = self.data.pixels_train.to(self.device), self.data.y_train.to(self.device)
        self.pixels_test, self.y_test = self.data.pixels_test.to(self.device), self.data.y_test.to(self.device)
        self.snapshots = SnapshotRing()  # what undo() takes back: the last 600 phases
        self._start()

    # ---- hyper-parameters: validated, changeable between any two steps ----
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        hyperparams.check_lr(value)
        self._lr = float(value)
        self.emit("settings", None, lambda: f"learning rate set to {self._lr:g}")

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        hyperparams.check_batch_size(value, self.num_train)
        self._batch_size = int(value)
        self.emit("settings", None, lambda: f"batch size set to {self._batch_size}: used from the next batch")

    def settings_from(self, values: dict) -> None:
        """Set already-checked lr, batch_size, seed, init_std at once (undo of a reset, a loaded file)."""
        self._lr, self._batch_size = float(values["lr"]), int(values["batch_size"])
        self.seed, self.init_std = int(values["seed"]), values["init_std"]

    # ---- listeners (mirrors ipywidgets' on_click) ----
    def on_change(self, callback: Listener, remove: bool = False) -> None:
        """Call `callback(trainer, event)` after every phase; remove=True unsubscribes."""
        self._listeners.register(callback, remove)

    @property
    def listener_count(self) -> int:
        return len(self._listeners)

    def emit(self, kind: str, phase: Phase | None, text: Callable[[], str], detail: dict | None = None) -> None:
        """Tell every listener; the message costs a little, so it is built only for someone."""
        if self._listeners:
            self._listeners(self, Event(kind, phase, text(), detail or {}))

    # ---- state ----
    def reset(self, seed: int | None = None) -> Trainer:
        """Back to the initial weights; the same seed gives the same init and batch order, exactly.
        One undo() brings the run before it back."""
        if seed is not None:
            hyperparams.check_seed(seed)
        self.snapshots.keep_run(self, "reset")
        if seed is not None:
            self.seed = int(seed)
        self._start()
        self.emit("reset", None, lambda: f"reset: seed {self.seed}, W ~ N(0, {self.init_std:g}²), b = 0"
                  + ("; undo() takes the reset back" if len(self.snapshots) else ""))
        return self

    def _start(self) -> None:
        """A new run from the seed: the lesson's init, an unshuffled epoch, empty history."""
        d, c = self.data.num_inputs, self.data.num_classes
        # the lesson's init: np.random.normal(0, 0.01, (784, 10)) as float32
        w = np.random.RandomState(self.seed).normal(0, self.init_std, (d, c))
        # W is stored column by column (strides (1, d)): same values, but X @ W and its gradient
        # run 2x faster on CPU BLAS for a 10-column W (measured: benchmarks/bench_core.py)
        self.W = torch.empty_strided((d, c), (1, d), dtype=torch.float32, device=self.device)
        self.W.copy_(torch.from_numpy(w)).requires_grad_()
        self.b = torch.zeros(c, dtype=torch.float32, device=self.device).requires_grad_()
        self.W_before = torch.empty_like(self.W, requires_grad=False)  # sgd's copy: put back on NaN
        self.b_before = torch.empty_like(self.b, requires_grad=False)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.shuffle: torch.Tensor | None = None  # this epoch's permutation of the training images
        self.position = 0  # images of this epoch's shuffle already drawn
        self.X = self.y = self.y_hat = self.loss = self.batch_indices = None
        self.loss_value = math.nan  # the summed loss as a float (t.loss is the tensor)
        self.correct = 0
        self.iteration = self.epoch = 0
        self.batches_drawn = 0  # every iteration uses a batch of its own: history.batch says which
        self.history = History()
        self.last_phase: Phase | None = None
        self.last_step: measure.Step | None = None  # a student's optimizer's last step, measured (None: the lesson's)
        self.wild_steps = 0  # the newest recorded steps in a row of a student's optimizer far off the lesson's
        self.state = LoopState()  # where the loop stands: see phases.py
        self.epoch_totals = [0.0, 0, 0]  # summed loss, correct, images, this epoch
        self.epoch_seconds = math.nan
        self.snapshots.remember(self)  # the new W and b: a change by hand shows against these

    @property
    def next_phase(self) -> Phase:
        """The lesson's next call given where the loop stands; Step and Play run this one."""
        return self.state.next_phase

    @property
    def grad_passes(self) -> int:
        """Backward passes summed in W.grad since it last held zeros (2 or more: zero_grad was skipped)."""
        return self.state.passes

    @property
    def num_train(self) -> int:
        return len(self.y_train)

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self.num_train / self._batch_size)

    @property
    def batch_in_epoch(self) -> int:
        """1-based number of the current batch within its epoch."""
        return math.ceil(self.position / self._batch_size) if self.position else 0

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The images (float32, pixels / 255 as ToTensor gives) and labels at `indices`; index_select copies
        rows ~5x faster than x[idx] on CPU."""
        return as_float(self.pixels_train.index_select(0, indices)), self.y_train.index_select(0, indices)

    def _refuse(self, phase: Phase) -> None:
        why = self.state.refusal(phase)
        if why is not None:
            raise PhaseError(why)

    # ---- the five phases ----
    @undoable(Phase.NEXT_BATCH)
    def next_batch(self) -> Trainer:
        """Draw the next slice of this epoch's seeded shuffle into X, y."""
        skipped = self.state.batch is Batch.DRAWN
        if self.shuffle is not None and self.position >= self.num_train:
            self._end_epoch()  # the last batch was drawn but skipped
        if self.shuffle is None:
            self.shuffle = torch.randperm(self.num_train, generator=self.generator).to(self.device)
            self.position = 0
        idx = self.shuffle[self.position:self.position + self._batch_size]
        self.position += len(idx)
        self.batches_drawn += 1
        self.batch_indices = idx
        self.X, self.y = self.batch(idx)
        self.y_hat = self.loss = None
        self.state = self.state.drawn()
        self._done(Phase.NEXT_BATCH, lambda: f"next_batch: {len(idx)} images, batch {self.batch_in_epoch} of "
                   f"{self.batches_per_epoch} in epoch {self.epoch + 1}")
        if skipped:
            self.emit("warning", Phase.NEXT_BATCH, lambda: "next_batch() replaced a batch that sgd() never "
                      "used: that batch is skipped. The usual order is forward, zero_grad, backward, sgd.")
        return self

    @undoable(Phase.FORWARD)
    def forward(self) -> Trainer:
        """y_hat = softmax(X W + b); loss = loss_fn(y_hat, y).sum()."""
        self._refuse(Phase.FORWARD)
        B = len(self.y)
        y_hat = self._call_student("softmax", lambda: model.net(self.X, self.W, self.b, self.softmax))
        if not (isinstance(y_hat, torch.Tensor) and tuple(y_hat.shape) == (B, self.data.num_classes)):
            raise CustomFunctionError(
                f"softmax must return a ({B}, {self.data.num_classes}) tensor of probabilities, got "
                f"{_describe(y_hat)}. Fix it, or put the lesson's back: trainer.use_lesson('softmax').")
        uneven = "" if self.softmax in (model.softmax, model.stable_softmax) else measure.row_sum_error(
            y_hat, "softmax", "softmax")  # a student's: are these probabilities? (said once the forward is done)
        loss = self._call_student("loss_fn", lambda: self.loss_fn(y_hat, self.y))
        if not isinstance(loss, torch.Tensor) or loss.numel() not in (1, B):
            raise CustomFunctionError(
                f"loss_fn must return one loss per image ({B} values) or their sum, got {_describe(loss)}. "
                "Fix it, or put the lesson's back: trainer.use_lesson('cross_entropy').")
        if self.loss_fn is not model.cross_entropy:  # one number that is the batch's mean: steps B times too small
            self._refuse_measured(measure.loss_mean_error(loss, y_hat, self.y, "loss_fn", "cross_entropy"))
        self.y_hat, self.loss = y_hat, loss.sum()
        self.loss_value = self.loss.item()  # CPU-GPU sync point: the history needs the number
        self.correct = int((y_hat.argmax(dim=1) == self.y).sum())
        finite = math.isfinite(self.loss_value)
        self.state = self.state.forwarded(finite)
        if not finite:
            self._diverged(diagnosis.diagnose_forward(self))
        self._done(Phase.FORWARD, lambda: f"forward: loss {self.loss_value / B:.2f} per image over {B} images, "
                   f"{100 * self.correct / B:.0f} % correct")
        if uneven:  # kept, not refused: the graph panel shows how the shapes broadcast
            self.emit("warning", Phase.FORWARD, lambda: uneven)
        return self

    @undoable(Phase.ZERO_GRAD)
    def zero_grad(self) -> Trainer:
        """W.grad = 0, b.grad = 0: without this, backward() adds to the old gradients."""
        for p in (self.W, self.b):
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            else:
                p.grad.zero_()
        self.state = self.state.zeroed()
        self._done(Phase.ZERO_GRAD, lambda: "zero_grad: W.grad and b.grad set to 0")
        return self

    @undoable(Phase.BACKWARD)
    def backward(self) -> Trainer:
        """Autograd fills W.grad and b.grad with d(loss)/dW, d(loss)/db (added to what is there)."""
        self._refuse(Phase.BACKWARD)
        if not self.loss.requires_grad:
            self.state = self.state.dropped()  # this loss can never give a gradient: a new forward next
            raise CustomFunctionError(
                "backward() cannot fill W.grad: the loss does not depend on W, so your softmax or loss_fn cut "
                "it off from autograd (.detach(), .data, .item(), torch.tensor(...) or torch.no_grad()). W is "
                "unchanged. Fix it (or put the lesson's back: trainer.use_lesson('softmax', 'cross_entropy')), then "
                "call forward() again.")
        # what W.grad holds now, whoever zeroed it (a student's optimizer may): checked only when it may add up
        was_zero = self.state.grad in (Grad.NONE, Grad.ZERO) or self._grads_are_zero()
        try:
            self.loss.backward()
        except KeyboardInterrupt:  # the notebook's interrupt landed inside backward(): start clean
            self._interrupted_backward()
            raise
        except RuntimeError as err:
            if self.softmax in (model.softmax, model.stable_softmax) and self.loss_fn is model.cross_entropy:
                raise  # the lesson's own functions: show autograd's error as it is
            self.state = self.state.dropped()  # the graph is unusable: the next step is a new forward
            raise CustomFunctionError(
                f"backward() failed inside autograd ({type(err).__name__}: {str(err).splitlines()[0][:160]}): "
                "your softmax or loss_fn built something autograd cannot differentiate (often an in-place "
                "change such as X_exp /= s). Fix it (or put the lesson's back: trainer.use_lesson('softmax', "
                "'cross_entropy')), then call forward() again.") from err
        finite = math.isfinite(self.W.grad.sum().item() + self.b.grad.sum().item())  # one sync for both
        self.state = self.state.backwarded(finite, was_zero)
        if not finite:
            self._diverged(diagnosis.diagnose_backward(self))
        passes = self.state.passes
        acc = "" if passes == 1 else f" (the sum of {passes} backward passes: no zero_grad)"
        self._done(Phase.BACKWARD, lambda: f"backward: W.grad filled, ‖W.grad‖ "
                   f"{float(torch.linalg.vector_norm(self.W.grad)):.3g}{acc}")
        return self

    @undoable(Phase.SGD)
    def sgd(self) -> Trainer:
        """W -= lr * W.grad / B; b likewise. Finishes the iteration and records it."""
        self._refuse(Phase.SGD)
        B, passes = len(self.y), self.state.passes
        # what an interrupt (the notebook's stop button) inside this call must put back; ~0.3 us
        before = (self.iteration, tuple(self.epoch_totals), self.state)
        copied = False
        try:
            self.W_before.copy_(self.W.detach())
            self.b_before.copy_(self.b.detach())
            copied = True
            self._apply_optimizer(B)
        except KeyboardInterrupt:
            if self.iteration == before[0]:  # not recorded: the iteration did not happen, W as it was
                self._interrupted_sgd(before, copied)
            raise
        step = self.last_step
        if step is None:  # the lesson's sgd: its formula is what ran
            self._done(Phase.SGD, lambda: f"sgd: W -= {self._lr:g} · W.grad / {B}; iteration {self.iteration} done")
        else:  # a student's: the update that ran, as measured
            name = measure.name_of(self.optimizer)
            self._done(Phase.SGD, lambda: f"sgd: your {name}: {step.formula(self._lr)}; iteration {self.iteration} "
                       "done")
            warning = measure.step_warning(name, step, self._lr)
            if warning:
                self.emit("warning", Phase.SGD, lambda: warning)
        if passes > 1:
            self.emit("warning", Phase.SGD, lambda: f"sgd() applied gradients accumulated over {passes} "
                      "backward passes because zero_grad() was skipped: W moved by their sum, not by this "
                      "batch's gradient. Call zero_grad() before backward() to start each batch from zero.")
        if self.position >= self.num_train:
            self._end_epoch()
        return self

    def _apply_optimizer(self, B: int) -> None:
        """The optimizer, checked: W keeps its shape and stays finite, else it is put back; then record."""
        lesson = self.optimizer is model.sgd
        grads = None if lesson else {n: p.grad.detach().clone() for n, p in (("W", self.W), ("b", self.b))
                                     if p.grad is not None}  # a student's may zero them: measured against these
        self._call_student("optimizer", lambda: self.optimizer([self.W, self.b], self._lr, B), restore=True)
        if self.W.shape != self.W_before.shape or self.b.shape != self.b_before.shape:
            self._restore_weights()
            raise CustomFunctionError(
                "your optimizer replaced W or b with a tensor of another shape; they were put back as they were. "
                "Update them in place (p.data -= lr * p.grad / batch_size), or put the lesson's back: "
                "trainer.use_lesson('sgd')")
        if not math.isfinite(self.W.detach().sum().item() + self.b.detach().sum().item()):
            self._restore_weights()
            self._diverged(diagnosis.diagnose_sgd(self))
        self.last_step = None if lesson else self._measure_step(grads, B)
        wild = self.last_step is not None and self.last_step.is_wild
        self.wild_steps = self.wild_steps + 1 if wild else 0
        # a student's optimizer may zero the gradients itself (some textbooks' sgd does): say what is there
        self.state = self.state.stepped(grad_zeroed=self.optimizer is not model.sgd and self._grads_are_zero())
        self._record(B)

    def _measure_step(self, grads: dict, B: int) -> measure.Step:
        """What a student's optimizer did to W and b; one that moved nothing is refused, W as it was."""
        params = {n: (p, before, grads[n]) for n, p, before in (("W", self.W, self.W_before),
                                                                  ("b", self.b, self.b_before)) if n in grads}
        step = measure.measure_step(params, self._lr, B)
        if step.unchanged:
            self._restore_weights()
            raise CustomFunctionError(measure.unchanged_error("optimizer", "sgd", step))
        return step

    def _refuse_measured(self, why: str) -> None:
        """A student's function returned something measured wrong: refuse the phase, nothing recorded."""
        if why:
            raise CustomFunctionError(why)

    def _grads_are_zero(self) -> bool:
        gW, gb = self.W.grad, self.b.grad
        return (gW is None or not bool(gW.any())) and (gb is None or not bool(gb.any()))

    def _interrupted_sgd(self, before: tuple, copied: bool) -> None:
        """KeyboardInterrupt inside sgd() before it recorded: W, b, history and state as before the call."""
        iteration, totals, state = before
        if copied:
            self._restore_weights()
        for values in (self.history.loss, self.history.train_acc, self.history.batch_size, self.history.batch):
            del values[iteration:]
        self.iteration, self.epoch_totals, self.state = iteration, list(totals), state

    def _interrupted_backward(self) -> None:
        """KeyboardInterrupt inside backward(): the graph may be freed and W.grad half-filled; start clean."""
        for p in (self.W, self.b):
            if p.grad is not None:
                p.grad.zero_()
        self.state = self.state.dropped().zeroed()  # next: forward() again, then backward()

    # ---- bookkeeping ----
    def _done(self, phase: Phase, text: Callable[[], str]) -> None:
        self.last_phase = phase
        self.emit("phase", phase, text)

    def _record(self, B: int) -> None:
        h = self.history
        h.loss.append(self.loss_value / B)
        h.train_acc.append(self.correct / B)
        h.batch_size.append(B)
        h.batch.append(self.batches_drawn)
        s = self.epoch_totals
        s[0] += self.loss_value
        s[1] += self.correct
        s[2] += B
        self.iteration += 1

    def _end_epoch(self) -> None:
        loss_sum, correct, n = self.epoch_totals
        test_acc = self.evaluate()
        h = self.history
        h.test_acc.append(test_acc)
        h.epoch_loss.append(loss_sum / n if n else math.nan)
        h.epoch_train_acc.append(correct / n if n else math.nan)
        h.epoch_iteration.append(self.iteration)
        self.epoch += 1
        self.shuffle, self.position, self.epoch_totals = None, 0, [0.0, 0, 0]
        # "epoch 1 done: loss 0.7829, ...": the lesson's line without saying "epoch 1" twice
        self.emit("epoch", None, lambda: f"epoch {self.epoch} done: {str(self.last_epoch).split(', ', 1)[1]}")

    @property
    def last_epoch(self) -> EpochResult | None:
        h = self.history
        if not h.test_acc:
            return None
        return EpochResult(len(h.test_acc), h.epoch_loss[-1], h.epoch_train_acc[-1], h.test_acc[-1],
                           self.epoch_seconds)

    def _restore_weights(self) -> None:
        with torch.no_grad():
            for p, before in ((self.W, self.W_before), (self.b, self.b_before)):
                if p.shape != before.shape:  # a student optimizer rebound p.data to another shape
                    p.data = torch.empty_like(before)
                p.copy_(before)

    def _diverged(self, diag: diagnosis.Diagnosis) -> None:
        self.last_phase = diag.phase
        self.emit("divergence", diag.phase, lambda: diag.message, diag.detail())
        raise DivergenceError(diag.message, phase=diag.phase, operation=diag.operation, rows=diag.rows,
                              images=diag.images, details=diag.details)

    def _call_student(self, name: str, fn: Callable, restore: bool = False):
        try:
            return fn()
        except Exception as err:
            if restore:
                self._restore_weights()
            if getattr(self, name) is getattr(model, _LESSON[name]):
                raise  # a bug in the lesson's own function: show it as it is
            raise CustomFunctionError(diagnosis.student_error(name, _LESSON[name], getattr(self, name), err)) \
                from err

    # ---- undo, save, load (the mechanics live in undo.py and persist.py) ----
    def undo(self, iterations: int | None = None, before: Phase | str | None = None,
             lr_above: float | None = None) -> Trainer:
        """Take back the last phase (or reset, or load, or a change of W or b by hand), or `iterations` whole
        iterations, or everything back to just before the last `before` phase (undo(before="sgd"), or "hand"), or
        every one of the newest sgd steps taken at an lr above `lr_above` (undo(lr_above=0.1): the steps that
        blew W up), exactly."""
        before_it = self.iteration
        try:
            return undo.undo(self, iterations, before, lr_above)
        finally:  # the steps of a student's wild optimizer taken back are no longer in W
            self.wild_steps = max(0, self.wild_steps - max(0, before_it - self.iteration))

    def state_dict(self) -> dict:
        """Everything needed to continue this run exactly (not the dataset, only its name)."""
        return persist.state_dict(self)

    def load_state_dict(self, state: dict, source: str = "this state") -> Trainer:
        """Continue exactly where state_dict() was taken, after checking every value (ValueError, nothing
        changed, when one is wrong). One undo() brings back the run it replaced."""
        persist.load_state_dict(self, state, source)
        undo.rebuild(self)
        self.wild_steps = 0
        self.emit("reset", None, lambda: f"loaded {source}: {self.data.name}, {self.where()}; undo() takes the "
                  "load back")
        return self

    def save(self, path) -> None:
        """Write state_dict() to `path` (torch.save); Trainer.load(path) continues from it."""
        persist.save(self, path)

    @classmethod
    def load(cls, path, data: Dataset | str | None = None, device: str = "cpu") -> Trainer:
        """A Trainer continuing a saved run; `data` defaults to the dataset named in the file."""
        state = persist.read(path)
        try:
            t = cls(data if data is not None else state["dataset"], lr=state["lr"], batch_size=state["batch_size"],
                    seed=state["seed"], init_std=state["init_std"], device=device)
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path} cannot be loaded: its settings are missing or broken ({err}).") from err
        return t.load_state_dict(state, source=str(path))

    def where(self) -> str:
        """Where the run stands, in words: the counters, the loop state and the call Step makes next."""
        return (f"epoch {self.epoch + 1}, iteration {self.iteration} ({self.state}); "
                f"next: {self.next_phase}()")

    def use_lesson(self, *names: str) -> Trainer:
        """Put the lesson's own functions back, with no import: use_lesson() all three, use_lesson("sgd") one, by
        the lesson's name ("softmax", "cross_entropy", "sgd") or the slot's ("loss_fn", "optimizer")."""
        slots = {**{lesson: slot for slot, lesson in _LESSON.items()}, **{slot: slot for slot in _LESSON}}
        unknown = [n for n in names if n not in slots]
        if unknown:
            raise ValueError(f"use_lesson() knows {', '.join(map(repr, _LESSON.values()))}, got {unknown[0]!r}: "
                             "nothing changed. Name one of them, or call use_lesson() for all three.")
        for slot in dict.fromkeys(slots[n] for n in names or _LESSON):
            setattr(self, slot, getattr(model, _LESSON[slot]))
        return self

    def use_stable_softmax(self, flag: bool = True) -> Trainer:
        """Switch between the lesson's softmax and the one that subtracts the row max (never overflows)."""
        self.softmax = model.stable_softmax if flag else model.softmax
        return self

    # ---- whole iterations and epochs ----
    def step(self) -> Phase:
        """Run `next_phase`; returns the Phase it ran (what Step and Play call)."""
        phase = self.state.next_phase
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
        self.epoch_seconds = time.perf_counter() - start
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
        return evaluation.accuracy_on_test_set(self)

    def __repr__(self) -> str:
        loss = "" if self.y_hat is None else f", loss {self.loss_value / len(self.y):.4f} per image"
        return (f"Trainer({self.data.name}, lr={self._lr:g}, batch_size={self._batch_size}, seed={self.seed}): "
                f"{self.where()}, last phase {self.last_phase}{loss}")


_LESSON = {"softmax": "softmax", "loss_fn": "cross_entropy", "optimizer": "sgd"}


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)}"
    return f"{type(x).__name__} {x!r}"[:80]
