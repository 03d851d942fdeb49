"""The lesson's functions against PyTorch as the oracle."""

import torch
import torch.nn.functional as F

from softmax_widgets import model


def _logits(b=7, c=10, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, generator=g) * scale


def test_softmax_matches_torch():
    o = _logits()
    torch.testing.assert_close(model.softmax(o), torch.softmax(o, dim=1))
    torch.testing.assert_close(model.stable_softmax(o), torch.softmax(o, dim=1))


def test_stable_softmax_survives_large_logits_where_the_lessons_overflows():
    o = _logits() + 1000.0
    assert torch.isnan(model.softmax(o)).any()  # exp(1000) = inf, inf / inf = nan: the lesson's pitfall
    torch.testing.assert_close(model.stable_softmax(o), torch.softmax(o, dim=1))


def test_stable_softmax_gradient_matches_torch():
    o1 = _logits().requires_grad_()
    o2 = o1.detach().clone().requires_grad_()
    w = torch.randn(7, 10)
    (model.stable_softmax(o1) * w).sum().backward()
    (torch.softmax(o2, dim=1) * w).sum().backward()
    torch.testing.assert_close(o1.grad, o2.grad)


def test_cross_entropy_matches_torch():
    o = _logits()
    y = torch.tensor([0, 3, 9, 1, 1, 5, 2])
    ours = model.cross_entropy(model.softmax(o), y)
    assert ours.shape == (7, 1)  # one row per example, as in the lesson
    torch.testing.assert_close(ours.sum(), F.cross_entropy(o, y, reduction="sum"))


def test_net_flattens_images_and_adds_bias():
    X = torch.rand(5, 1, 28, 28)
    W = torch.randn(784, 10) * 0.01
    b = torch.randn(10)
    torch.testing.assert_close(model.net(X, W, b), torch.softmax(X.view(5, 784) @ W + b, dim=1))


def test_hand_gradient_matches_autograd():
    """d(sum CE)/dW = Xᵀ(P − Y) and d/db = Σ(P − Y): what backward() computes."""
    g = torch.Generator().manual_seed(1)
    X = torch.rand(32, 784, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    W = (torch.randn(784, 10, generator=g) * 0.01).requires_grad_()
    b = torch.zeros(10, requires_grad=True)
    model.cross_entropy(model.net(X, W, b), y).sum().backward()
    P = torch.softmax(X @ W.detach() + b.detach(), dim=1)
    Y = F.one_hot(y, 10).float()
    torch.testing.assert_close(W.grad, X.T @ (P - Y), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(b.grad, (P - Y).sum(0), rtol=1e-4, atol=1e-5)


def test_sgd_moves_against_the_gradient_divided_by_batch_size():
    p = torch.ones(3, requires_grad=True)
    p.grad = torch.tensor([2.0, 4.0, -8.0])
    model.sgd([p], lr=0.5, batch_size=2)
    torch.testing.assert_close(p.detach(), torch.tensor([0.5, 0.0, 3.0]))
    assert p.is_leaf and p.requires_grad
