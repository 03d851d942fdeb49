"""Trainer: the lesson's loop cut into phases a student can call one at a time, in any order.

Each phase body is the lesson's line, then the state it moves; the decorator (undo.phase_method) refuses a call
out of order, snapshots and tells the listeners. The order rules live in phases.py, what a student's function
returned and its prose in measure.py, every "why NaN" sentence in diagnosis.py, undo and interrupts in undo.py,
state files in persist.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch

from . import diagnosis, evaluation, hyperparams, measure, model, models, persist, swap, undo
from .callbacks import CallbackRegistry
from .data import Dataset, as_float, load_dataset
from .history import EpochResult, History
from .phases import Batch, CustomFunctionError, DivergenceError, Event, Grad, LoopState, Phase
from .undo import SnapshotRing, phase_method

__all__ = ["Trainer"]

Listener = Callable[["Trainer", Event], None]
_lesson = model  # Trainer(model=...) names its argument `model`: the lesson's functions under another name


class Trainer:
    """Softmax regression on `data`, one phase per call; views subscribe with on_change. `model=` trains the next
    lessons' models on the same phases instead (models.py): MLP(hidden=256), a torch.nn.Module, (params, net)."""

    softmax = swap.Swappable()  # the lesson's functions, or a student's own (swap.py)

    def __new__(cls, *args, model=None, **kwargs):
        """Trainer(data, model=...) is a ModelTrainer (model_trainer.py): the same loop, the model's phase bodies."""
        if model is not None and cls is Trainer:
            from .model_trainer import ModelTrainer
            cls = ModelTrainer
        return super().__new__(cls)

    loss_fn = swap.Swappable()
    optimizer = swap.Swappable()

    def __init__(self, data: Dataset | str = "fashion-mnist", lr: float = 0.1, batch_size: int = 256,
                 seed: int = 0, init_std: float = 0.01, device: str = "cpu",
                 softmax: Callable | None = None, loss_fn: Callable | None = None,
                 optimizer: Callable | None = None, model=None):
        self.data = load_dataset(data) if isinstance(data, str) else data
        if not isinstance(self.data, Dataset):
            raise ValueError(f"data must be a Dataset (load_dataset(...), Dataset.from_tensors(...)) or a dataset's "
                             f"name, got {measure.describe(self.data)}")
        self.device = hyperparams.check_device(device)
        hyperparams.check_lr(lr)
        hyperparams.check_batch_size(batch_size, len(self.data.y_train))
        hyperparams.check_seed(seed)
        hyperparams.check_init_std(init_std)
        self._lr, self._batch_size, self.seed, self.init_std = float(lr), int(batch_size), int(seed), init_std
        self._listeners = CallbackRegistry("Trainer")
        # the lesson's functions unless a student swaps in their own (any time, between steps)
        self.model = None if model is None else models.as_model(model)  # None: the lesson's, t.W and t.b
        self.softmax = softmax or _lesson.softmax
        if self.model is not None:
            self.model.bind(self.data.num_inputs, self.data.num_classes, self.device)
            self.loss_fn = loss_fn or models.default_loss()
            self.optimizer = optimizer or _lesson.sgd  # a torch optimizer becomes a TorchStep (swap.set_function)
        else:
            self.loss_fn = loss_fn or _lesson.cross_entropy
            self.optimizer = optimizer or _lesson.sgd
        # the data on the Trainer's device, once, as stored (uint8: a quarter of float32's memory): batches
        # index these and convert only the batch (never a per-image transform); evaluate() goes by chunks
        self.pixels_train, self.y_train = self.data.pixels_train.to(self.device), self.data.y_train.to(self.device)
        self.pixels_test, self.y_test = self.data.pixels_test.to(self.device), self.data.y_test.to(self.device)
        self.snapshots = SnapshotRing()  # what undo() takes back: the last 600 phases
        self._autograd = swap.Autograd(self)
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

    def set_function(self, name: str, fn: Callable, quiet: bool = False) -> None:
        """Put `fn` in the "softmax", "loss_fn" or "optimizer" slot, as `t.softmax = fn` does; every change is
        told, like lr's, unless quiet=True (a load or an undo of a reset tells the listeners once for all)."""
        swap.set_function(self, name, fn, quiet)

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
            message = text()  # a messages.Said names its sentence: detail["id"]
            said = {"id": message.id} if getattr(message, "id", None) else {}
            self._listeners(self, Event(kind, phase, message, {**said, **(detail or {})}))

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
        first = (f"W ~ N(0, {self.init_std:g}²), b = 0" if self.model is None or isinstance(self.model, models.MLP)
                 else f"{self.model_name}'s first values")
        self.emit("reset", None, lambda: f"reset: seed {self.seed}, {first}"
                  + ("; undo() takes the reset back" if len(self.snapshots) else ""))
        return self

    def _start(self) -> None:
        """A new run from the seed: the lesson's init (or the model's), an unshuffled epoch, empty history."""
        if self.model is not None:
            self.model.init(self.seed, self.init_std)
            if isinstance(self.optimizer, models.TorchStep):
                self.optimizer.reset()
        else:
            d, c = self.data.num_inputs, self.data.num_classes
            # the lesson's init: np.random.normal(0, 0.01, (784, 10)) as float32
            w = np.random.RandomState(self.seed).normal(0, self.init_std, (d, c))
            # W is stored column by column (strides (1, d)): same values, but X @ W and its gradient
            # run 2x faster on CPU BLAS for a 10-column W (measured: benchmarks/bench_core.py)
            self.W = torch.empty_strided((d, c), (1, d), dtype=torch.float32, device=self.device)
            self.W.copy_(torch.from_numpy(w)).requires_grad_()
            self.b = torch.zeros(c, dtype=torch.float32, device=self.device).requires_grad_()
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
    def params(self) -> dict[str, torch.Tensor]:
        """The trained tensors by name, in order: W, b for the lesson; W1, b1, W2, b2 for the MLP; a module's."""
        return {"W": self.W, "b": self.b} if self.model is None else self.model.params

    @property
    def relu(self) -> Callable:
        """The MLP's relu (the book's unless a student swapped theirs in: trainer.relu = my_relu)."""
        if not isinstance(self.model, models.MLP):
            raise AttributeError(f"only an MLP has a relu; this Trainer trains {self.model_name}")
        return self.model.relu

    @relu.setter
    def relu(self, fn: Callable) -> None:
        if not isinstance(self.model, models.MLP):
            raise ValueError(f"only an MLP has a relu to swap; this Trainer trains {self.model_name}. Nothing changed.")
        if not callable(fn):
            raise ValueError(f"relu must be a function, got {fn!r:.60}: nothing changed. Assign a function (def ...), "
                             "or the book's: trainer.relu = softmax_widgets.models.relu")
        self.model.relu = fn
        who = "the book's relu" if fn is models.relu else f"your {measure.name_of(fn)}"
        self.emit("settings", None, lambda: f"relu set to {who}: used from the next forward()")

    @property
    def model_name(self) -> str:
        """What this Trainer trains, in words (state files name it)."""
        return "the lesson's softmax regression" if self.model is None else self.model.name

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

    # ---- the five phases: the lesson's line first (the decorator refuses, snapshots and tells) ----
    @phase_method(Phase.NEXT_BATCH)
    def next_batch(self):
        """Draw the next slice of this epoch's seeded shuffle into X, y."""
        skipped = self.state.batch is Batch.DRAWN
        idx = self._next_indices()
        self.X, self.y = self.batch(idx)
        self.batch_indices, self.y_hat, self.loss = idx, None, None
        self.batches_drawn += 1
        self.state = self.state.drawn()
        return (lambda: f"next_batch: {len(idx)} images, batch {self.batch_in_epoch} of {self.batches_per_epoch} "
                f"in epoch {self.epoch + 1}", measure.skipped_warning() if skipped else "")

    @phase_method(Phase.FORWARD)
    def forward(self):
        """y_hat = softmax(X W + b); loss = loss_fn(y_hat, y).sum()."""
        y_hat = self._net(self.X)  # the lesson's net with this softmax; a student's output checked
        loss = self._loss_fn(y_hat, self.y).sum()  # one loss per image, checked, summed as the lesson does
        self.y_hat, self.loss = y_hat, loss
        self.loss_value = loss.item()  # CPU-GPU sync point: the history needs the number
        self.correct = int((y_hat.argmax(dim=1) == self.y).sum())
        finite = math.isfinite(self.loss_value)
        self.state = self.state.forwarded(finite)
        if not finite:
            self._diverged(diagnosis.diagnose_forward(self))
        B = len(self.y)  # a student's rows that do not sum to 1: kept, not refused (the graph panel shows why)
        uneven = "" if self.softmax in swap.LESSON_SOFTMAX else measure.row_sum_error(y_hat, "softmax", "softmax")
        return (lambda: f"forward: loss {self.loss_value / B:.2f} per image over {B} images, "
                f"{100 * self.correct / B:.0f} % correct", uneven)

    @phase_method(Phase.ZERO_GRAD)
    def zero_grad(self):
        """W.grad = 0, b.grad = 0: without this, backward() adds to the old gradients."""
        for p in (self.W, self.b):
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            else:
                p.grad.zero_()
        self.state = self.state.zeroed()
        return lambda: "zero_grad: W.grad and b.grad set to 0"

    @phase_method(Phase.BACKWARD)
    def backward(self):
        """Autograd fills W.grad and b.grad with d(loss)/dW, d(loss)/db (added to what is there)."""
        was_zero = self.state.grad in (Grad.NONE, Grad.ZERO) or self._grads_are_zero()  # whoever zeroed them
        with self._autograd:  # a loss cut off from autograd, or autograd failing on a student's function: said
            self.loss.backward()
        finite = math.isfinite(self.W.grad.sum().item() + self.b.grad.sum().item())  # one sync for both
        self.state = self.state.backwarded(finite, was_zero)
        if not finite:
            self._diverged(diagnosis.diagnose_backward(self))
        acc = "" if self.state.passes == 1 else f" (the sum of {self.state.passes} backward passes: no zero_grad)"
        return lambda: f"backward: W.grad filled, ‖W.grad‖ {float(torch.linalg.vector_norm(self.W.grad)):.3g}{acc}"

    @phase_method(Phase.SGD)
    def sgd(self):
        """W -= lr * W.grad / B; b likewise. Finishes the iteration and records it."""
        B, passes = len(self.y), self.state.passes
        step = self._sgd([self.W, self.b], self._lr, B)  # the optimizer, checked: W put back if it breaks W
        self._record(B)
        end = self._end_epoch if self.position >= self.num_train else ""
        if step is None:  # the lesson's sgd: its formula is what ran
            return (lambda: f"sgd: W -= {self._lr:g} · W.grad / {B}; iteration {self.iteration} done",
                    measure.accumulated_warning(passes), end)
        name = measure.name_of(self.optimizer)  # a student's: the update that ran, as measured
        return (lambda: f"sgd: your {name}: {step.formula(self._lr)}; iteration {self.iteration} done",
                measure.step_warning(name, step, self._lr), measure.accumulated_warning(passes), end)

    # ---- what the phases call: the lesson's functions, a student's checked ----
    def _next_indices(self) -> torch.Tensor:
        """The next batch_size images of this epoch's shuffle (a new epoch's shuffle when it ran out)."""
        if self.shuffle is not None and self.position >= self.num_train:
            self._end_epoch()  # the last batch was drawn but skipped
        if self.shuffle is None:
            self.shuffle = torch.randperm(self.num_train, generator=self.generator).to(self.device)
            self.position = 0
        idx = self.shuffle[self.position:self.position + self._batch_size]
        self.position += len(idx)
        return idx

    def _net(self, X: torch.Tensor) -> torch.Tensor:
        y_hat = swap.call_student(self, "softmax", lambda: model.net(X, self.W, self.b, self.softmax))
        swap.refuse(measure.probabilities_error(y_hat, len(X), self.data.num_classes))
        return y_hat

    def _loss_fn(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        losses = swap.call_student(self, "loss_fn", lambda: self.loss_fn(y_hat, y))
        swap.refuse(measure.loss_shape_error(losses, len(y)))
        if self.loss_fn is not model.cross_entropy:  # one number that is the batch's mean: steps B times too small
            swap.refuse(measure.loss_mean_error(losses, y_hat, y, "loss_fn", "cross_entropy"))
        return losses

    def _sgd(self, params: list, lr: float, B: int) -> measure.Step | None:
        """The optimizer; W keeps its shape and stays finite, else it is put back. A student's step is measured
        (None: the lesson's); then the state moves."""
        lesson = self.optimizer is model.sgd or isinstance(self.optimizer, models.TorchStep)
        grads = None if lesson else swap.grads_of(self)  # a student's may zero them: measured against these
        before = self.snapshots.before_step(self)
        swap.call_student(self, "optimizer", lambda: self.optimizer(params, lr, B), restore=before)
        if any(p.shape != old.shape for p, old in zip(params, before, strict=True)):
            undo.restore_weights(self, before)
            raise CustomFunctionError(measure.reshaped_error("optimizer", "sgd"))
        if not models.finite_sum(params):
            undo.restore_weights(self, before)
            self._diverged(diagnosis.diagnose_sgd(self))
        self.last_step = None if lesson else swap.measured_step(self, grads, B, before)
        wild = self.last_step is not None and self.last_step.is_wild
        self.wild_steps = self.wild_steps + 1 if wild else 0
        # a student's optimizer may zero the gradients itself (some textbooks' sgd does): say what is there
        self.state = self.state.stepped(grad_zeroed=not lesson and self._grads_are_zero())
        return self.last_step

    def _grads_are_zero(self) -> bool:
        return not any(p.grad is not None and bool(p.grad.any()) for p in self.params.values())

    def recompute_forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """y_hat and the summed loss again, unchecked (undo rebuilds a live graph: same numbers as before)."""
        y_hat = model.net(self.X, self.W, self.b, self.softmax)
        return y_hat, self.loss_fn(y_hat, self.y).sum()

    # ---- bookkeeping ----
    def _record(self, B: int) -> None:
        self.history.record(self.loss_value, self.correct, B, self.batches_drawn)
        s = self.epoch_totals  # in place: the undo snapshot keeps a tuple of it
        s[0], s[1], s[2] = s[0] + self.loss_value, s[1] + self.correct, s[2] + B
        self.iteration += 1

    def _end_epoch(self) -> None:
        self.history.end_epoch(self.evaluate(), self.epoch_totals, self.iteration)
        self.epoch += 1
        self.shuffle, self.position, self.epoch_totals = None, 0, [0.0, 0, 0]
        # "epoch 1 done: loss 0.7829, ...": the lesson's line without saying "epoch 1" twice
        self.emit("epoch", None, lambda: f"epoch {self.epoch} done: {str(self.last_epoch).split(', ', 1)[1]}")

    @property
    def last_epoch(self) -> EpochResult | None:
        return self.history.last_epoch(self.epoch_seconds)

    def _diverged(self, diag: diagnosis.Diagnosis) -> None:
        self.last_phase = diag.phase
        self.emit("divergence", diag.phase, lambda: diag.message, diag.detail())
        raise DivergenceError(diag.message, phase=diag.phase, operation=diag.operation, rows=diag.rows,
                              images=diag.images, details=diag.details, ways=diag.ways)

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
    def load(cls, path, data: Dataset | str | None = None, device: str = "cpu", model=None, **functions) -> Trainer:
        """A Trainer continuing a saved run; `data` defaults to the dataset named in the file. An MLP's file
        rebuilds its MLP; a module's run needs the module again (model=, with its loss_fn and optimizer)."""
        return persist.load_run(cls, path, data, device, model, **functions)

    def where(self) -> str:
        """Where the run stands, in words: the counters, the loop state and the call Step makes next."""
        return (f"epoch {self.epoch + 1}, iteration {self.iteration} ({self.state}); "
                f"next: {self.next_phase}()")

    def use_lesson(self, *names: str) -> Trainer:
        """Put the lesson's own functions back, with no import: use_lesson() all three, use_lesson("sgd") one, by
        the lesson's name ("softmax", "cross_entropy", "sgd") or the slot's ("loss_fn", "optimizer")."""
        swap.use_lesson(self, names)
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


