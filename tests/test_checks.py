"""The student checks: the lesson's functions pass, each classic mistake fails with the right hint, nothing crashes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from softmax_widgets import model
from softmax_widgets.checks import CheckError, check_cross_entropy, check_net, check_sgd, check_softmax


def failed(result) -> dict[str, str]:
    return {c.name: f"{c.message} | {c.hint}" for c in result.cases if not c.passed}


# ---- the reference passes ----
def test_the_lessons_functions_pass(capsys):
    r = check_softmax(model.softmax)
    assert r.passed and bool(r) and r.score == 1.0
    # the lesson's softmax overflows at large logits: advice, not a failure
    assert [c.name for c in r.failures] == ["large logits (around 100) stay finite"]
    assert not r.failures[0].required and "max" in r.failures[0].hint
    assert check_softmax(model.stable_softmax, verbose=False).failures == []
    assert check_cross_entropy(model.cross_entropy).passed
    assert check_sgd(model.sgd).passed
    assert check_net(lambda X, W, b: model.net(X, W, b)).passed
    out = capsys.readouterr().out
    assert "check_softmax(softmax): 6 of 6 checks passed — well done!" in out
    assert "  ✓ the gradient flows back to X" in out and "  ! large logits" in out


def test_the_lessons_net_with_global_w_and_b_passes():
    ns = {"torch": torch, "softmax": model.softmax,
          "W": torch.normal(0, 0.01, (784, 10)).requires_grad_(), "b": torch.zeros(10, requires_grad=True)}
    exec("def net(X):\n    return softmax(torch.mm(X.view((-1, W.shape[0])), W) + b)\n", ns)
    r = check_net(ns["net"], verbose=False)
    assert r.passed, str(r)
    assert ns["W"].grad is None  # the check must not leave gradients in the student's W
    exec("def net(X):\n    return X\n", (bare := {}))
    r = check_net(bare["net"], verbose=False)
    assert not r.passed and r.cases[0].id == "net.finds_W_and_b"


# ---- classic mistakes ----
def sum_over_columns(X):
    X_exp = X.exp()
    return X_exp / X_exp.sum(dim=0, keepdim=True)


def no_keepdim(X):
    X_exp = X.exp()
    return X_exp / X_exp.sum(dim=1)


def no_exp(X):
    return X / X.sum(dim=1, keepdim=True)


def detached(X):
    return torch.softmax(X, dim=1).detach()


def in_place(X):
    X.exp_()
    return X / X.sum(dim=1, keepdim=True)


def via_numpy(X):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(X.detach().numpy())
        return e / e.sum(axis=1, keepdims=True)


def crashes(X):
    raise ZeroDivisionError("oops")


@pytest.mark.parametrize("fn, case, hint", [
    (sum_over_columns, "each row sums to 1", "dim=1"),
    (no_keepdim, "values match", "keepdim=True"),
    (no_exp, "each row sums to 1", "exp"),
    (detached, "gradient flows back", "no .detach()"),
    (in_place, "leaves its input unchanged", "exp_()"),
    (via_numpy, "returns a tensor", "numpy"),
    (crashes, "returns a tensor", ""),
])
def test_softmax_mistakes_fail_with_a_hint(fn, case, hint):
    r = check_softmax(fn, verbose=False)
    assert not r.passed and r.score < 1
    hits = {name: text for name, text in failed(r).items() if case in name}
    assert hits, failed(r)
    assert hint in next(iter(hits.values()))
    if fn is crashes:
        assert "ZeroDivisionError: oops" in next(iter(hits.values()))


@pytest.mark.parametrize("fn, case, hint", [
    (lambda y_hat, y: torch.log(y_hat.gather(1, y.view(-1, 1))), "values", "MINUS"),
    (lambda y_hat, y: -torch.log(y_hat.max(dim=1, keepdim=True).values), "values", "gather"),
    (lambda y_hat, y: -torch.log(y_hat.gather(1, y.view(-1, 1))).sum(), "one loss per example", "one loss per"),
    (lambda y_hat, y: -torch.log(y_hat.gather(1, y.view(-1, 1))).detach(), "gradient", "no .item()"),
])
def test_cross_entropy_mistakes_fail_with_a_hint(fn, case, hint):
    r = check_cross_entropy(fn, verbose=False)
    hits = {name: text for name, text in failed(r).items() if case in name}
    assert not r.passed and hits, failed(r)
    assert hint in next(iter(hits.values()))


def sgd_no_batch(params, lr, batch_size):
    for p in params:
        p.data -= lr * p.grad


def sgd_wrong_sign(params, lr, batch_size):
    for p in params:
        p.data += lr * p.grad / batch_size


def sgd_without_no_grad(params, lr, batch_size):
    for p in params:
        p -= lr * p.grad / batch_size


def sgd_rebinds(params, lr, batch_size):
    for p in params:
        p = p - lr * p.grad / batch_size  # the mistake under test: rebinds the loop variable


def sgd_new_memory(params, lr, batch_size):
    for p in params:
        p.data = p.data - lr * p.grad / batch_size


@pytest.mark.parametrize("fn, case, hint", [
    (sgd_no_batch, "move by", "divide by batch_size"),
    (sgd_wrong_sign, "move by", "subtract"),
    (sgd_without_no_grad, "move by", "torch.no_grad()"),
    (sgd_rebinds, "move by", "rebinds a local name"),
    (sgd_new_memory, "in place", "-="),
    (lambda params, lr, bs: [p - lr * p.grad / bs for p in params], "move by", "ignores what sgd returns"),
])
def test_sgd_mistakes_fail_with_a_hint(fn, case, hint):
    r = check_sgd(fn, verbose=False)
    hits = {name: text for name, text in failed(r).items() if case in name}
    assert not r.passed and hits, failed(r)
    assert hint in next(iter(hits.values()))


def test_sgd_that_only_updates_w():
    def only_w(params, lr, batch_size):
        params[0].data -= lr * params[0].grad / batch_size

    r = check_sgd(only_w, verbose=False)
    assert "every parameter" in failed(r)["W and b move by -lr * grad / batch_size"]


@pytest.mark.parametrize("fn, case, hint", [
    (lambda X, W, b: model.softmax(X @ W + b), "takes a batch of images", "reshape"),
    (lambda X, W, b: X.reshape(-1, 784) @ W + b, "values match", "softmax"),
    (lambda X, W, b: model.softmax(X.reshape(-1, 784) @ W.detach() + b.detach()), "gradient", "W, b"),
])
def test_net_mistakes_fail_with_a_hint(fn, case, hint):
    r = check_net(fn, verbose=False)
    hits = {name: text for name, text in failed(r).items() if case in name}
    assert not r.passed and hits, failed(r)
    assert hint in next(iter(hits.values()))


# ---- the result object ----
def test_result_object_printing_and_raise_on_fail(capsys):
    r = check_softmax(no_exp)
    out = capsys.readouterr().out
    assert out.startswith("check_softmax(no_exp): ") and "  ✗ " in out and "hint: " in out
    assert repr(r).startswith("CheckResult(check_softmax(no_exp): failed: ")
    d = r.to_dict()
    assert d["id"] == r.id == "softmax" and d["cases"][0]["id"] == "softmax.shape_and_type"
    assert [c.id for c in r.failures if c.required] == ["softmax.rows_sum_to_one", "softmax.matches_torch",
                                                         "softmax.batch_of_one", "softmax.gradient"]  # not words
    assert d["passed"] is False and len(d["cases"]) == len(r.cases) and 0 <= d["score"] < 1
    with pytest.raises(CheckError) as info:
        check_softmax(no_exp, verbose=False, raise_on_fail=True)
    assert info.value.result.passed is False and isinstance(info.value, AssertionError)
    assert check_sgd(model.sgd, verbose=False, raise_on_fail=True).passed
    assert capsys.readouterr().out == ""
