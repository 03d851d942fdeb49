"""The student checks: the lesson's functions pass, each classic mistake fails with the right hint, nothing crashes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from softmax_widgets import model
from softmax_widgets.checks import (
    CheckError,
    check_cross_entropy,
    check_mlp_net,
    check_net,
    check_relu,
    check_sgd,
    check_softmax,
)


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


# ---- the MLP from scratch: relu and net (issue 20) ----
def book_relu(X):  # the chapter's, as written
    a = torch.zeros_like(X)
    return torch.max(X, a)


def relu_mask(X):
    return X > 0  # the mask, not the values


def relu_float_mask(X):
    return (X > 0).float()  # relu's derivative


def relu_on_data(X):
    X.data.clamp_(min=0)  # autograd never sees the zeroing; X W1 + b1 changed under it
    return X


def relu_max_dim(X):
    return torch.max(X, 0)  # the max along dim 0: (values, indices)


def relu_python_max(X):
    return max(X, 0)


def relu_in_place(X):
    return X.clamp_(min=0)


def relu_fixed_zeros(X):
    return torch.max(X, torch.zeros(256))  # only for a hidden layer of 256


def relu_abs(X):
    return X.abs()


def relu_detached(X):
    return torch.max(X, torch.zeros_like(X)).detach()


def relu_where(X):
    return torch.where(X > 0, X, 0.0)


def test_the_books_relu_and_torchs_pass(capsys):
    from softmax_widgets.models import relu

    for fn in (book_relu, relu, torch.relu, relu_where, lambda X: X.clamp(min=0), lambda X: X * (X > 0)):
        r = check_relu(fn, verbose=False)
        assert r.passed and r.score == 1.0 and not r.failures, str(r)
    check_relu(book_relu)
    assert "check_relu(book_relu): 5 of 5 checks passed — well done!" in capsys.readouterr().out
    assert check_relu(book_relu, verbose=False).to_dict()["id"] == "relu"


@pytest.mark.parametrize("fn, case, words", [
    (relu_mask, "relu.shape_and_type", "bool mask"),
    (relu_float_mask, "relu.values", "the mask (relu's derivative)"),
    (relu_on_data, "relu.gradient", "autograd did not see the zeroing"),
    (relu_on_data, "relu.input_unchanged", "in place"),
    (relu_max_dim, "relu.shape_and_type", "torch.max(X, 0) is the largest entry along dimension 0"),
    (relu_python_max, "relu.shape_and_type", "torch.max(X, torch.zeros_like(X))"),
    (relu_in_place, "relu.input_unchanged", "in place"),
    (relu_fixed_zeros, "relu.any_shape", "torch.zeros_like(X)"),
    (relu_abs, "relu.values", "|X|"),
    (relu_detached, "relu.gradient", "no grad_fn"),
])
def test_relu_mistakes_fail_with_a_teachable_message(fn, case, words):
    r = check_relu(fn, verbose=False)
    hits = {c.id: f"{c.message} | {c.hint}" for c in r.failures}
    assert not r.passed and case in hits, hits
    assert words in hits[case], hits[case]


def test_relu_check_passes_for_the_mlp_trainer_and_its_swap_trains(digits):
    from softmax_widgets import Trainer
    from softmax_widgets.models import MLP

    t, same = (Trainer(digits, batch_size=64, seed=0, model=MLP(hidden=16)) for _ in range(2))
    if check_relu(book_relu, verbose=False):
        t.relu = book_relu
    t.fit(1)  # the epoch's test accuracy runs the student's relu under no_grad: it used to be refused there
    same.fit(1)
    assert t.relu is book_relu and t.history.test_acc == same.history.test_acc and t.history.loss == same.history.loss


NUM_INPUTS = 784
W1 = torch.nn.Parameter(torch.randn(NUM_INPUTS, 256) * 0.01)  # the chapter's parameters
b1 = torch.nn.Parameter(torch.zeros(256))
W2 = torch.nn.Parameter(torch.randn(256, 10) * 0.01)
b2 = torch.nn.Parameter(torch.zeros(10))


def book_net(X):  # the chapter's closure over W1, b1, W2, b2
    X = X.reshape((-1, NUM_INPUTS))
    H = book_relu(X @ W1 + b1)
    return H @ W2 + b2


def dict_net(X, params):  # Trainer(model=(params, net))'s style
    H = book_relu(X.reshape((-1, 784)) @ params["W1"] + params["b1"])
    return H @ params["W2"] + params["b2"]


def net_no_reshape(X):
    return book_relu(X @ W1 + b1) @ W2 + b2


def net_fixed_batch(X):
    return book_relu(X.reshape((256, -1)) @ W1 + b1) @ W2 + b2


def net_no_relu(X):
    return (X.reshape((-1, 784)) @ W1 + b1) @ W2 + b2


def net_softmax(X):
    return torch.softmax(book_relu(X.reshape((-1, 784)) @ W1 + b1) @ W2 + b2, dim=1)


def net_relu_out(X, params):
    H = book_relu(X.reshape((-1, 784)) @ params["W1"] + params["b1"])
    return book_relu(H @ params["W2"] + params["b2"])


def net_no_b2(X):
    return book_relu(X.reshape((-1, 784)) @ W1 + b1) @ W2


def net_data(X, params):
    H = book_relu(X.reshape((-1, 784)) @ params["W1"].data + params["b1"])
    return H @ params["W2"] + params["b2"]


def test_the_books_mlp_net_passes_in_both_styles():
    r = check_mlp_net(book_net, verbose=False)
    assert r.passed and r.id == "mlp_net", str(r)
    assert W1.grad is None and b2.grad is None  # the check leaves the student's gradients alone
    assert check_mlp_net(dict_net, verbose=False).passed
    assert "check_mlp_net(net)" in check_net(book_net, verbose=False).cases[0].hint  # the lesson's check: says which
    assert check_mlp_net(dict_net, params={"W1": W1, "b1": b1, "W2": W2, "b2": b2}, verbose=False).passed
    bare = {}
    exec("def net(X):\n    return X\n", bare)
    r = check_mlp_net(bare["net"], verbose=False)
    assert not r.passed and r.cases[0].id == "mlp_net.finds_params" and "params=[W1, b1, W2, b2]" in r.cases[0].message


@pytest.mark.parametrize("fn, case, words", [
    (net_no_reshape, "mlp_net.images_in", "X.reshape(-1, W.shape[0])"),
    (net_fixed_batch, "mlp_net.images_in", "not a fixed 256"),
    (net_no_relu, "mlp_net.values", "no relu between the layers"),
    (net_softmax, "mlp_net.values", "returns logits"),
    (net_relu_out, "mlp_net.values", "a relu on the output"),
    (net_no_b2, "mlp_net.gradient", "does not depend on b2"),
    (net_data, "mlp_net.gradient", "does not depend on W1"),
])
def test_mlp_net_mistakes_fail_with_a_teachable_message(fn, case, words):
    r = check_mlp_net(fn, verbose=False)
    hits = {c.id: f"{c.message} | {c.hint}" for c in r.failures}
    assert not r.passed and case in hits, hits
    assert words in hits[case], hits[case]
    assert W1.grad is None
