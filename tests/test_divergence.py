"""Divergence diagnosis: which operation made the NaN/inf, for which rows; PyTorch's own ops as the oracle."""

from __future__ import annotations

import math

import pytest
import torch

from softmax_widgets import DivergenceError, Phase, PhaseError, Trainer, model


def run_until_divergence(t: Trainer, events: list) -> DivergenceError:
    t.on_change(lambda tr, ev: events.append(ev) if ev.kind == "divergence" else None)
    with pytest.raises(DivergenceError) as info:
        for _ in range(500):
            t.train_step()
    return info.value


def test_lr_50_with_the_lessons_softmax_on_fashion_explains_instead_of_nan(fashion):
    t = Trainer(fashion, lr=50, batch_size=256, seed=0)
    events: list = []
    err = run_until_divergence(t, events)
    assert err.operation == "softmax_exp_overflow" and err.phase is Phase.FORWARD
    assert err.id == "cause.softmax_exp_overflow" and "lower_lr" in events[-1].detail["ways_out"]
    # the wording is the point: one sentence of cause, one of fix, read aloud to a class
    assert "exp()" in str(err) and "lower the learning rate" in str(err)
    # lr 50 made W that large: the stable softmax alone would overflow again at the next steps, so it is not offered
    assert "stable_softmax" not in events[-1].detail["ways_out"] and "use_stable_softmax" not in str(err)
    # oracle: the rows where the lesson's softmax gives NaN are the rows named
    logits = torch.addmm(t.b.detach(), t.X, t.W.detach())
    nan_rows = torch.isnan(model.softmax(logits)).any(dim=1).nonzero().flatten().tolist()
    assert list(err.rows) == nan_rows and len(err.rows) > 0
    assert list(err.images) == t.batch_indices[list(err.rows)].tolist()
    assert f"{len(err.rows)} of the batch's 256 rows" in err.details
    assert t.history.loss and all(math.isfinite(v) for v in t.history.loss + t.history.train_acc)
    assert events[-1].detail["operation"] == err.operation and events[-1].detail["rows"] == list(err.rows)
    assert events[-1].message == str(err)


def test_exp_overflow_rows_are_exactly_the_rows_whose_logit_passes_88(digits):
    t = Trainer(digits, batch_size=300, seed=0)
    t.next_batch()
    pixel = 20
    with torch.no_grad():
        t.W.zero_()
        t.W[pixel, 3] = 100.0  # only images bright (>= 15/16) at this pixel get a logit above 88
    with pytest.raises(DivergenceError) as info:
        t.forward()
    expected = (t.X[:, pixel] * 100 > 88).nonzero().flatten().tolist()
    assert 0 < len(expected) < 300
    assert info.value.operation == "softmax_exp_overflow" and list(info.value.rows) == expected
    assert torch.isnan(model.softmax(t.X @ t.W.detach() + t.b.detach())).any(dim=1).nonzero().flatten().tolist() \
        == expected


def test_log_of_zero_in_cross_entropy_with_the_stable_softmax(digits):
    t = Trainer(digits, lr=50, seed=0).use_stable_softmax()
    err = run_until_divergence(t, [])
    assert err.operation == "cross_entropy_log_zero" and err.id == "cause.cross_entropy_log_zero"
    per_row = model.cross_entropy(t.y_hat.detach(), t.y).flatten()
    assert list(err.rows) == torch.isinf(per_row).nonzero().flatten().tolist()
    assert all(math.isfinite(v) for v in t.history.loss)


@pytest.mark.parametrize("softmax", [model.softmax, model.stable_softmax])
def test_backward_overflow_in_cross_entropy_names_the_rows(digits, softmax):
    t = Trainer(digits, batch_size=300, seed=0, softmax=softmax)
    t.next_batch()
    with torch.no_grad():
        t.W.zero_()
        t.b[0], t.b[1] = 80.0, -20.0  # class 1 gets p = e^-100 > 0: loss finite, its derivative -1/p is not
    t.forward().zero_grad()
    assert math.isfinite(t.loss_value)
    with pytest.raises(DivergenceError) as info:
        t.backward()
    err = info.value
    assert err.operation == "cross_entropy_backward_overflow" and err.phase is Phase.BACKWARD
    # oracle: autograd through the reference functions, row by row
    o = torch.addmm(t.b.detach(), t.X, t.W.detach()).requires_grad_()
    model.cross_entropy(softmax(o), t.y).sum().backward()
    expected = (~torch.isfinite(o.grad).all(dim=1)).nonzero().flatten().tolist()
    assert list(err.rows) == expected == (t.y == 1).nonzero().flatten().tolist()
    with pytest.raises(PhaseError) as refused:
        t.sgd()  # W is safe
    assert refused.value.id == "refuse.sgd.nonfinite_grad"
    t.undo()  # back before backward: the gradients are zeros again
    assert float(t.W.grad.abs().sum()) == 0.0


def test_too_large_lr_in_sgd_puts_w_back_and_says_so(digits):
    t = Trainer(digits, lr=1e39, batch_size=64, seed=0)  # lr * W.grad overflows float32
    W0 = t.W.detach().clone()
    with pytest.raises(DivergenceError) as info:
        t.train_step()
    assert "W and b were put back" in str(info.value)  # the wording is the point: the student is told W is safe
    assert info.value.operation == "sgd_step_overflow" and info.value.rows == ()
    assert torch.equal(t.W.detach(), W0) and t.history.loss == []


def test_a_students_softmax_that_returns_nan_is_named(digits):
    def my_softmax(X):
        out = X.exp() / X.exp().sum(dim=1, keepdim=True)
        return torch.where(torch.arange(len(X)).view(-1, 1) % 5 == 0, torch.nan, out)

    t = Trainer(digits, batch_size=20, seed=0, softmax=my_softmax)
    with pytest.raises(DivergenceError) as info:
        t.train_step()
    assert info.value.operation == "softmax_nonfinite" and list(info.value.rows) == [0, 5, 10, 15]


def test_use_stable_softmax_toggles_and_emits_settings(digits):
    t = Trainer(digits)
    events = []
    t.on_change(lambda tr, ev: events.append(ev))
    assert t.use_stable_softmax() is t and t.softmax is model.stable_softmax
    assert events[-1].kind == "settings" and "the stable softmax" in events[-1].message
    t.use_stable_softmax(False)
    assert t.softmax is model.softmax
