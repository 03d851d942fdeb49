"""Trainer(data, model=...): the next lessons' models on the lesson's loop. Only the phase bodies that touch the
parameters differ (every parameter of t.params instead of W and b; a torch optimizer's zero_grad, mean-loss
backward and step); the order rules, undo, state files and listeners are the Trainer's own."""

from __future__ import annotations

import torch

from . import diagnosis, measure, models, swap
from .phases import Grad, Phase
from .trainer import Trainer
from .undo import phase_method

__all__ = ["ModelTrainer"]


class ModelTrainer(Trainer):
    """A Trainer of a model from models.py (MLP, a torch.nn.Module, a student's params + net); see Trainer."""

    def _net(self, X: torch.Tensor) -> torch.Tensor:
        return self.model.forward(X)  # logits, checked (a student's relu or net: shapes, autograd, NaN)

    def _loss_fn(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One loss per image (the book's CrossEntropyLoss(reduction="none")); a mean or a sum would hide B."""
        losses = swap.call_student(self, "loss_fn", lambda: self.loss_fn(y_hat, y))
        swap.refuse(models.losses_error(losses, len(y)))
        return losses

    def recompute_forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        y_hat = self.model.net(self.X)
        return y_hat, self.loss_fn(y_hat, self.y).sum()

    @phase_method(Phase.ZERO_GRAD)
    def zero_grad(self):
        """Every parameter's .grad = 0 (a torch optimizer's zero_grad()): else backward() adds to the old ones."""
        params = self.params
        if isinstance(self.optimizer, models.TorchStep):
            self.optimizer.zero_grad(params)
        else:
            for p in params.values():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                else:
                    p.grad.zero_()
        self.state = self.state.zeroed()
        return lambda: f"zero_grad: {' and '.join(n + '.grad' for n in params)} set to 0"

    @phase_method(Phase.BACKWARD)
    def backward(self):
        """Autograd fills every parameter's .grad; for a torch optimizer from the mean loss, as the book does."""
        was_zero = self.state.grad in (Grad.NONE, Grad.ZERO) or self._grads_are_zero()  # whoever zeroed them
        with self._autograd:  # a loss cut off from autograd, or autograd failing on a student's function: said
            if isinstance(self.optimizer, models.TorchStep):
                (self.loss / len(self.y)).backward()  # the book's l.mean().backward() for a torch optimizer
            else:
                self.loss.backward()
        finite = models.finite_sum(p.grad for p in self.params.values())
        self.state = self.state.backwarded(finite, was_zero)
        if not finite:
            self._diverged(diagnosis.diagnose_backward(self))
        acc = "" if self.state.passes == 1 else f" (the sum of {self.state.passes} backward passes: no zero_grad)"
        name, first = next(iter(self.params.items()))
        return lambda: (f"backward: {name}.grad filled, ‖{name}.grad‖ "
                        f"{float(torch.linalg.vector_norm(first.grad)):.3g}{acc}")

    @phase_method(Phase.SGD)
    def sgd(self):
        """The optimizer on every parameter (the lesson's sgd, or a torch optimizer's step()); records the iteration."""
        B, passes = len(self.y), self.state.passes
        step = self._sgd(list(self.params.values()), self._lr, B)  # checked: the parameters put back if it breaks
        self._record(B)
        end = self._end_epoch if self.position >= self.num_train else ""
        if isinstance(self.optimizer, models.TorchStep):
            return (lambda: f"sgd: {self.optimizer.__name__}.step() at lr {self._lr:g} on the mean loss's gradient; "
                    f"iteration {self.iteration} done", measure.accumulated_warning(passes), end)
        if step is None:  # the lesson's sgd: its formula is what ran
            return (lambda: f"sgd: p -= {self._lr:g} · p.grad / {B} for {', '.join(self.params)}; iteration "
                    f"{self.iteration} done", measure.accumulated_warning(passes), end)
        name = measure.name_of(self.optimizer)
        return (lambda: f"sgd: your {name}: {step.formula(self._lr)}; iteration {self.iteration} done",
                measure.step_warning(name, step, self._lr), measure.accumulated_warning(passes), end)


