"""The next lessons on the same five phases: the MLP from scratch, any torch.nn.Module, a student's own params + net.

A model here owns its parameters (`params`, an ordered name -> leaf tensor mapping) and its `net`, which gives
logits; the Trainer keeps the loop (phases, order rules, undo, state files). The lesson's softmax regression is
not one of these: it stays built into the Trainer (t.W, t.b) exactly as before.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable

import torch

from . import diagnosis, measure
from .phases import CustomFunctionError

__all__ = ["MLP", "Model", "Module", "Scratch", "TorchStep", "as_model", "default_loss", "finite_sum", "from_name",
           "losses_error", "optimizer_for", "relu"]


def relu(X: torch.Tensor) -> torch.Tensor:
    """The book's ReLU, as written in "multilayer perceptrons from scratch"."""
    a = torch.zeros_like(X)
    return torch.max(X, a)


def default_loss() -> torch.nn.Module:
    """The concise lessons' loss: one cross-entropy per image, on logits (the phases sum them)."""
    return torch.nn.CrossEntropyLoss(reduction="none")


class Model:
    """What the Trainer needs from a model: its parameters, their first values, and net(X) -> logits."""

    name = "model"
    params: dict[str, torch.Tensor]

    def bind(self, num_inputs: int, num_classes: int, device: torch.device) -> None:
        """Make (or check) the parameters for this data; called once, by the Trainer."""
        self.num_classes = num_classes
        self._initial = {n: p.detach().clone() for n, p in self.params.items()}

    def init(self, seed: int, init_std: float) -> None:
        """The parameters' first values, in place (a torch optimizer keeps holding the same tensors)."""
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(self._initial[n])
                p.grad = None

    def net(self, X: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """net(X), checked: a (B, classes) tensor autograd can differentiate, or a refusal with nothing changed."""
        try:
            out = self.net(X)
        except CustomFunctionError:
            raise
        except Exception as err:
            if not self.student:
                raise
            raise CustomFunctionError(diagnosis.student_error("net", "net", self._student_fn, err)) from err
        want = (len(X), self.num_classes)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
            raise CustomFunctionError(f"{self.name}'s net must return a {want} tensor of logits (one row per "
                                      f"image, one column per class), got {measure.describe(out)}. Nothing changed.")
        if not out.requires_grad:
            raise CustomFunctionError(f"{self.name}'s net returned a tensor autograd cannot differentiate: it does "
                                      "not depend on any parameter that requires grad (.detach(), .data, "
                                      "torch.no_grad()?). Nothing changed.")
        if self.student and not bool(torch.isfinite(out.detach()).all()):
            raise CustomFunctionError(f"{self.name}'s net returned NaN or inf with finite parameters: the function "
                                      "is at fault, not the learning rate. Nothing changed.")
        return out

    student = False  # a student's own code runs in net: its errors are said in the lesson's words
    _student_fn: Callable | None = None

    @torch.no_grad()
    def logits(self, X: torch.Tensor) -> torch.Tensor:
        """net(X) without autograd, for the test set."""
        return self.net(X)

    def __repr__(self) -> str:
        return self.name


class MLP(Model):
    """The MLP from scratch as the book writes it: W1 (inputs x hidden), b1, W2 (hidden x classes), b2, init
    randn * 0.01, H = relu(X W1 + b1), logits H W2 + b2. `relu` can be swapped (trainer.relu = my_relu)."""

    def __init__(self, hidden: int = 256):
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be a whole number of hidden units >= 1 (the book's 256), got {hidden!r}")
        self.hidden = hidden
        self.name = f"MLP(hidden={hidden})"
        self.relu: Callable = relu
        self.params = {}

    def bind(self, num_inputs: int, num_classes: int, device: torch.device) -> None:
        self.num_inputs, self.num_classes = num_inputs, num_classes
        shapes = {"W1": (num_inputs, self.hidden), "b1": (self.hidden,), "W2": (self.hidden, num_classes),
                  "b2": (num_classes,)}
        self.params = {n: torch.zeros(s, device=device).requires_grad_() for n, s in shapes.items()}

    def init(self, seed: int, init_std: float) -> None:
        """The book's init: W = randn * 0.01 (init_std), b = 0; seeded, so a seed gives the same run."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(torch.randn(p.shape, generator=g) * init_std if n.startswith("W") else torch.zeros(p.shape))
                p.grad = None

    @property
    def student(self) -> bool:
        return self.relu is not relu

    @property
    def _student_fn(self):
        return self.relu

    def hidden_layer(self, X: torch.Tensor) -> torch.Tensor:
        """H = relu(X W1 + b1), a student's relu checked: same shape, still differentiable, finite."""
        p = self.params
        Z = X.reshape((-1, self.num_inputs)) @ p["W1"] + p["b1"]
        if self.relu is relu:
            return relu(Z)
        try:
            H = self.relu(Z)
        except Exception as err:
            raise CustomFunctionError(diagnosis.student_error("relu", "relu", self.relu, err)) from err
        if not isinstance(H, torch.Tensor) or H.shape != Z.shape:
            raise CustomFunctionError(f"relu must return a tensor of the shape it was given, {tuple(Z.shape)}, got "
                                      f"{measure.describe(H)}. Nothing changed. Fix it, or put the book's back: "
                                      "trainer.relu = softmax_widgets.models.relu")
        if H.dtype == torch.bool:
            raise CustomFunctionError("your relu returned a bool mask (True where X > 0), not the values: keep them, "
                                      "torch.max(X, torch.zeros_like(X)). Nothing changed. Check it first with "
                                      "softmax_widgets.checks.check_relu(your_relu).")
        if Z.requires_grad and not H.requires_grad:  # under no_grad (the test set) nothing requires grad
            raise CustomFunctionError("your relu cut its output off from autograd (.detach(), .data, torch.tensor or "
                                      "torch.no_grad()): backward() could not fill W1.grad. Nothing changed.")
        if not bool(torch.isfinite(H.detach()).all()):
            raise CustomFunctionError("your relu returned NaN or inf for finite inputs. Nothing changed. Fix it, or "
                                      "put the book's back: trainer.relu = softmax_widgets.models.relu")
        return H

    def net(self, X: torch.Tensor) -> torch.Tensor:
        p = self.params
        return self.hidden_layer(X) @ p["W2"] + p["b2"]

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """The MLP's own net is the book's; only a student's relu is checked (in hidden_layer)."""
        return self.net(X)


class Module(Model):
    """Any torch.nn.Module giving logits (the concise lessons): its parameters, by their names in the module."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.name = f"{type(module).__name__} module"
        self.params = dict(module.named_parameters())
        if not self.params:
            raise ValueError(f"{type(module).__name__} has no parameters to train: give a module with at least one "
                             "(e.g. torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))).")
        bad = [n for n, p in self.params.items() if p.dtype != torch.float32]
        if bad:
            raise ValueError(f"the module's parameter {bad[0]} is {self.params[bad[0]].dtype}: the Trainer's images "
                             "are float32, so its parameters must be too (module.float()).")

    def bind(self, num_inputs: int, num_classes: int, device: torch.device) -> None:
        self.module.to(device)
        self.params = dict(self.module.named_parameters())
        super().bind(num_inputs, num_classes, device)

    def net(self, X: torch.Tensor) -> torch.Tensor:
        return self.module(X)

    @torch.no_grad()
    def logits(self, X: torch.Tensor) -> torch.Tensor:
        was = self.module.training
        self.module.eval()  # the book's evaluate_accuracy: net.eval() (dropout off)
        try:
            return self.module(X)
        finally:
            self.module.train(was)


class Scratch(Model):
    """A student's own model from scratch: a dict of leaf parameters and net(X, params) (or net(X), the book's
    closure style), checked like a swapped softmax."""

    student = True

    def __init__(self, params: dict, net: Callable, name: str = "your model"):
        if not isinstance(params, dict) or not params:
            raise ValueError(f"params must be a dict of name -> tensor, got {measure.describe(params)}")
        for n, p in params.items():
            if not isinstance(p, torch.Tensor) or not p.is_leaf or not p.requires_grad or p.dtype != torch.float32:
                raise ValueError(f"params[{n!r}] must be a float32 leaf tensor with requires_grad=True (like the "
                                 f"book's torch.randn(..., requires_grad=True)), got {measure.describe(p)}")
        if not callable(net):
            raise ValueError(f"net must be a function net(X, params) or net(X), got {net!r:.60}")
        self.params, self.name, self._student_fn = dict(params), name, net
        try:
            takes = len(inspect.signature(net).parameters)
        except (TypeError, ValueError):
            takes = 1
        self._two = takes >= 2

    def net(self, X: torch.Tensor) -> torch.Tensor:
        return self._student_fn(X, self.params) if self._two else self._student_fn(X)


def as_model(obj) -> Model:
    """What Trainer(model=...) accepts: a Model (MLP(...), Scratch(...)), a torch.nn.Module, or (params, net)."""
    if isinstance(obj, Model):
        return obj
    if isinstance(obj, torch.nn.Module):
        return Module(obj)
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], dict):
        return Scratch(*obj)
    raise ValueError(f"model must be softmax_widgets.models.MLP(hidden=256), a torch.nn.Module, or a (params, net) "
                     f"pair of your own, got {obj!r:.80}")


def from_name(name: str) -> Model | None:
    """The model a state file names, when it can be rebuilt from its name alone (the MLP); else None."""
    m = re.fullmatch(r"MLP\(hidden=(\d+)\)", str(name))
    return MLP(int(m.group(1))) if m else None


class TorchStep:
    """A torch optimizer in the Trainer's optimizer slot: sgd() calls step() with the Trainer's lr. backward()
    then calls the book's l.mean().backward(), as train_epoch_ch3 does for a torch.optim.Optimizer."""

    def __init__(self, optimizer, params: dict[str, torch.Tensor], lr: float):
        if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
            optimizer = optimizer(list(params.values()), lr=lr)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"optimizer must be a torch.optim class (torch.optim.SGD), one made on this model's "
                             f"parameters, or a function like the lesson's sgd, got {optimizer!r:.60}")
        ours = {id(p) for p in params.values()}
        theirs = [p for g in optimizer.param_groups for p in g["params"]]
        if any(id(p) not in ours for p in theirs):
            raise ValueError("the optimizer was made on other tensors than this model's parameters: make it with "
                             "torch.optim.SGD(net.parameters(), lr=...) for the same net, or pass the class "
                             "torch.optim.SGD and the Trainer makes it.")
        self.torch_optimizer = optimizer
        self.__name__ = f"torch.optim.{type(optimizer).__name__}"

    def zero_grad(self, params: dict[str, torch.Tensor]) -> None:
        """optimizer.zero_grad(set_to_none=False): zeros in place (the undo ring keeps the old ones)."""
        self.torch_optimizer.zero_grad(set_to_none=False)
        for p in params.values():
            if p.grad is None:
                p.grad = torch.zeros_like(p)

    def __call__(self, params, lr: float, batch_size: int) -> None:
        for group in self.torch_optimizer.param_groups:  # the Trainer's lr (its slider) is the one lr
            group["lr"] = lr
        self.torch_optimizer.step()

    def reset(self) -> None:
        self.torch_optimizer.state.clear()  # momentum and the like start again with the weights


def optimizer_for(optimizer, params: dict[str, torch.Tensor], lr: float):
    """A torch optimizer (class or instance) in a TorchStep; a function (the lesson's sgd, a student's) as it is."""
    if isinstance(optimizer, torch.optim.Optimizer) or (
            isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
        return TorchStep(optimizer, params, lr)
    return optimizer


def losses_error(losses, rows: int) -> str:
    """A model's loss_fn must give one loss per image (reduction="none"): a mean or a sum would hide B."""
    if isinstance(losses, torch.Tensor) and losses.numel() == rows:
        return ""
    return (f"loss_fn must return one loss per image ({rows} values), got {measure.describe(losses)}: nothing "
            "changed. Use torch.nn.CrossEntropyLoss(reduction='none'), as the book does; the phases sum the losses "
            "(and for a torch optimizer backward() takes their mean, the book's l.mean().backward()).")


def finite_sum(tensors) -> bool:
    """One sync: are all these tensors finite (None counts as 0)?"""
    return math.isfinite(sum(float(x.detach().sum()) for x in tensors if x is not None))


def shown(t) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """What the dashboard's W maps, W.grad maps and bias bars show, detached: (inputs, classes), its gradient,
    (classes,). The lesson's W and b; for another model the first weight that reads the images (the MLP's first
    `classes` hidden units of W1, a Linear layer's weight) and the last bias with one value per class."""
    if t.model is None:
        return t.W.detach(), t.W.grad, t.b.detach()
    D, C = t.data.num_inputs, t.data.num_classes

    def cols(x: torch.Tensor) -> torch.Tensor:
        x = x.detach()[:, :C]
        return torch.cat([x, x.new_zeros(D, C - x.shape[1])], dim=1) if x.shape[1] < C else x

    W, g = torch.zeros(D, C), None
    for p in t.params.values():
        if p.dim() == 2 and p.shape[0] == D:
            W, g = cols(p), None if p.grad is None else cols(p.grad)
            break
        if p.dim() == 2 and p.shape[1] == D:  # torch.nn.Linear: (out, in)
            W, g = cols(p.T), None if p.grad is None else cols(p.grad.T)
            break
    b = next((p.detach() for p in reversed(t.params.values()) if p.dim() == 1 and p.shape[0] == C), torch.zeros(C))
    return W, g, b
