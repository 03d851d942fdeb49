"""The lesson's functions, as written in "softmax regression from scratch"."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

__all__ = ["cross_entropy", "net", "sgd", "softmax", "stable_softmax"]


def softmax(X: torch.Tensor) -> torch.Tensor:
    """The lesson's softmax: exp, then divide by the row sum (overflows for logits above ~88)."""
    X_exp = X.exp()
    partition = X_exp.sum(dim=1, keepdim=True)
    return X_exp / partition


def stable_softmax(X: torch.Tensor) -> torch.Tensor:
    """Softmax after subtracting each row's max: same result, exp never sees a value above 0."""
    # the max is a constant per row, so detaching it leaves the gradient unchanged
    X_exp = (X - X.amax(dim=1, keepdim=True).detach()).exp()
    return X_exp / X_exp.sum(dim=1, keepdim=True)


def net(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor,
        softmax: Callable[[torch.Tensor], torch.Tensor] = softmax) -> torch.Tensor:
    """softmax(X W + b): flattens images to rows first, like the lesson's X.view((-1, 784))."""
    return softmax(torch.addmm(b, X.reshape(-1, W.shape[0]), W))


def cross_entropy(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """-log of the probability given to the true class, one (B, 1) row per example."""
    return -torch.log(y_hat.gather(1, y.view(-1, 1)))


def sgd(params: Iterable[torch.Tensor], lr: float, batch_size: int) -> None:
    """Minibatch SGD: each parameter moves against its summed gradient, divided by the batch size."""
    for param in params:
        # .data: change the leaf in place without recording the step in autograd
        param.data -= lr * param.grad / batch_size
