"""Check a student's softmax, cross_entropy, sgd, net, relu or MLP net against the lesson's, case by case, with a
hint per failure.

Each check prints one line per case and returns a CheckResult (for grading tools); it raises only
with raise_on_fail=True. A student function that raises fails that case; it never crashes the check.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._checking import Case, CheckError, CheckResult, _changed, _close, _Fail, _positional, _Runner, _tensor
from .measure import name_of
from .mlp_checks import check_mlp_net, check_relu

__all__ = ["Case", "CheckError", "CheckResult", "check_cross_entropy", "check_mlp_net", "check_net", "check_relu",
           "check_sgd", "check_softmax"]


# ---- softmax ----
def check_softmax(fn: Callable, verbose: bool = True, raise_on_fail: bool = False) -> CheckResult:
    """softmax(X) on (B, C) logits: shape, dtype, rows summing to 1, torch.softmax's values and gradient."""
    r = _Runner(f"check_softmax({name_of(fn)})", "softmax")
    g = torch.Generator().manual_seed(0)
    X = torch.randn(4, 10, generator=g)

    def shape_and_type():
        out = _tensor(fn(X.clone()), "softmax")
        if out.shape != X.shape:
            raise _Fail(f"a (4, 10) input gave shape {tuple(out.shape)}",
                        "return one probability per logit: the same shape as the input")
        if out.dtype != X.dtype:
            raise _Fail(f"dtype {out.dtype}, expected {X.dtype}", "keep the input's dtype (no .double(), no numpy)")

    def rows_sum_to_one():
        out = _tensor(fn(X.clone()), "softmax")
        if bool((out < 0).any()):
            raise _Fail("some probabilities are negative", "exponentiate first: X.exp() is always positive")
        if torch.allclose(out, torch.softmax(X, dim=0), atol=1e-6):
            raise _Fail("the columns sum to 1, not the rows", "sum over dim=1 (each row is one example)")
        sums = out.sum(dim=1)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
            raise _Fail(f"row sums are {[round(float(s), 3) for s in sums]}",
                        "divide each row by its own sum: X_exp / X_exp.sum(dim=1, keepdim=True)")

    def matches_torch():
        _close(_tensor(fn(X.clone()), "softmax"), torch.softmax(X, dim=1), "values",
               "softmax(X)_ij = exp(X_ij) / sum_k exp(X_ik)")
        sq = torch.randn(5, 5, generator=g)  # square: a missing keepdim broadcasts the wrong way silently
        _close(_tensor(fn(sq.clone()), "softmax"), torch.softmax(sq, dim=1), "values on a square (5, 5) input",
               "keep the summed dimension: X_exp.sum(dim=1, keepdim=True), so row i is divided by row i's sum")

    def batch_of_one():
        one = torch.randn(1, 10, generator=g)
        _close(_tensor(fn(one.clone()), "softmax"), torch.softmax(one, dim=1), "a (1, 10) batch",
               "do not squeeze the batch dimension away")

    def gradient():
        Xg = X.clone().requires_grad_()
        w = torch.randn(4, 10, generator=g)
        out = _tensor(fn(Xg), "softmax")
        if out.grad_fn is None:
            raise _Fail("the output has no grad_fn: autograd cannot reach X",
                        "use torch operations only (no .detach(), .data, numpy or torch.tensor(...) of a result)")
        (out * w).sum().backward()
        Xr = X.clone().requires_grad_()
        (torch.softmax(Xr, dim=1) * w).sum().backward()
        _close(Xg.grad, Xr.grad, "the gradient flowing back to X")

    def input_unchanged():
        if _changed(fn, [X])[0]:
            raise _Fail("it changed its input X", "use X.exp(), not the in-place X.exp_() or X /= ...")

    def large_logits():
        big = X * 3 + 100.0
        out = _tensor(fn(big.clone()), "softmax")
        if not bool(torch.isfinite(out).all()):
            raise _Fail("logits around 100 give NaN: exp(100) overflows float32 (the lesson's softmax does this too)",
                        "subtract each row's max first: X - X.max(dim=1, keepdim=True).values")
        _close(out, torch.softmax(big, dim=1), "values for logits around 100")

    lesson = "the lesson's: X_exp = X.exp(); return X_exp / X_exp.sum(dim=1, keepdim=True)"
    r.case("returns a tensor of the input's shape and dtype", shape_and_type, lesson)
    r.case("probabilities are >= 0 and each row sums to 1", rows_sum_to_one, lesson)
    r.case("values match torch.softmax(X, dim=1)", matches_torch, lesson)
    r.case("a batch of one example", batch_of_one, lesson)
    r.case("the gradient flows back to X", gradient)
    r.case("leaves its input unchanged", input_unchanged)
    r.case("large logits (around 100) stay finite", large_logits, required=False)
    return r.finish(verbose, raise_on_fail)


# ---- cross_entropy ----
def check_cross_entropy(fn: Callable, verbose: bool = True, raise_on_fail: bool = False) -> CheckResult:
    """cross_entropy(y_hat, y): one -log(probability of the true class) per example, as F.cross_entropy."""
    r = _Runner(f"check_cross_entropy({name_of(fn)})", "cross_entropy")
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 10, generator=g)
    y_hat = torch.softmax(logits, dim=1)
    y = torch.tensor([3, 0, 9, 3, 5, 1])
    want = F.cross_entropy(logits, y, reduction="none")

    def per_example(out) -> torch.Tensor:
        out = _tensor(out, "cross_entropy")
        if out.numel() != len(y):
            raise _Fail(f"{len(y)} examples gave {out.numel()} value(s) of shape {tuple(out.shape)}",
                        "return one loss per example (shape (B, 1) as in the lesson, or (B,)); the trainer sums them")
        return out.reshape(-1)

    def shape_and_type():
        out = per_example(fn(y_hat.clone(), y.clone()))
        if out.dtype != y_hat.dtype:
            raise _Fail(f"dtype {out.dtype}, expected {y_hat.dtype}", "keep y_hat's dtype")

    def values():
        out = per_example(fn(y_hat.clone(), y.clone()))
        if torch.allclose(out, -y_hat.max(dim=1).values.log(), atol=1e-6) and not torch.allclose(out, want):
            raise _Fail("it used the largest probability, not the true class's",
                        "pick the true class: y_hat.gather(1, y.view(-1, 1))")
        if torch.allclose(out, y_hat.gather(1, y.view(-1, 1)).log().reshape(-1), atol=1e-6):
            raise _Fail("the sign is flipped: the loss must be >= 0", "cross entropy is MINUS the log probability")
        _close(out, want, "values (F.cross_entropy on the logits as reference)", "-log(y_hat[i, y[i]]) for each i")

    def batch_of_one():
        out = per_example_n(fn(y_hat[:1].clone(), y[:1].clone()), 1)
        _close(out, want[:1], "a batch of one", "do not squeeze the batch dimension away")

    def per_example_n(out, n: int) -> torch.Tensor:
        out = _tensor(out, "cross_entropy")
        if out.numel() != n:
            raise _Fail(f"{n} example(s) gave shape {tuple(out.shape)}", "return one loss per example")
        return out.reshape(-1)

    def gradient():
        yg = y_hat.clone().requires_grad_()
        out = per_example(fn(yg, y.clone()))
        if out.grad_fn is None:
            raise _Fail("the output has no grad_fn: autograd cannot reach y_hat",
                        "use torch operations only (no .item(), .detach(), numpy)")
        out.sum().backward()
        yr = y_hat.clone().requires_grad_()
        F.nll_loss(yr.log(), y, reduction="sum").backward()
        _close(yg.grad, yr.grad, "the gradient flowing back to y_hat")

    def composed_with_softmax():
        o = torch.randn(300, 10, generator=g) * 3
        labels = torch.randint(0, 10, (300,), generator=g)
        total = per_example_n(fn(torch.softmax(o, dim=1), labels), 300).sum()
        _close(total, F.cross_entropy(o, labels, reduction="sum"), "sum over 300 examples vs F.cross_entropy",
               atol=1e-3)

    def inputs_unchanged():
        if _changed(fn, [y_hat, y])[0]:
            raise _Fail("it changed y_hat or y", "use out-of-place operations (log(), not log_())")

    lesson = "the lesson's: -torch.log(y_hat.gather(1, y.view(-1, 1)))"
    r.case("one loss per example, same dtype as y_hat", shape_and_type, lesson)
    r.case("values match F.cross_entropy (true class, sign)", values, lesson)
    r.case("a batch of one example", batch_of_one, lesson)
    r.case("the gradient flows back to y_hat", gradient)
    r.case("summed over a batch equals F.cross_entropy(..., reduction='sum')", composed_with_softmax)
    r.case("leaves y_hat and y unchanged", inputs_unchanged)
    return r.finish(verbose, raise_on_fail)


# ---- sgd ----
def check_sgd(fn: Callable, verbose: bool = True, raise_on_fail: bool = False) -> CheckResult:
    """sgd(params, lr, batch_size): p -= lr * p.grad / batch_size, in place, leaving p a leaf that requires grad."""
    r = _Runner(f"check_sgd({name_of(fn)})", "sgd")
    g = torch.Generator().manual_seed(2)
    W0, b0 = torch.randn(5, 3, generator=g), torch.randn(3, generator=g)
    gW, gb = torch.randn(5, 3, generator=g), torch.randn(3, generator=g)
    lr, B = 0.5, 4

    def fresh():
        W, b = W0.clone().requires_grad_(), b0.clone().requires_grad_()
        W.grad, b.grad = gW.clone(), gb.clone()
        return W, b

    def update():
        W, b = fresh()
        out = fn([W, b], lr, B)
        got = W.detach()
        if torch.equal(got, W0) and out is not None:
            raise _Fail("W did not change; the function returned new values instead",
                        "the trainer ignores what sgd returns: update each param in place (param.data -= ...)")
        if torch.equal(got, W0):
            raise _Fail("W did not change", "update the tensor itself (param.data -= ...); "
                        "`param = param - ...` only rebinds a local name")
        if torch.allclose(got, W0 - lr * gW, atol=1e-6):
            raise _Fail("W moved by lr * grad, not lr * grad / batch_size",
                        "the gradient is summed over the batch: divide by batch_size")
        if torch.allclose(got, W0 + lr * gW / B, atol=1e-6):
            raise _Fail("W moved up the gradient", "subtract: param.data -= lr * param.grad / batch_size")
        _close(got, W0 - lr * gW / B, "the new W", "param.data -= lr * param.grad / batch_size")
        _close(b.detach(), b0 - lr * gb / B, "the new b (every parameter in params)", "loop over all params")

    def leaf_after():
        W, b = fresh()
        fn([W, b], lr, B)
        for name, p in (("W", W), ("b", b)):
            if not (p.is_leaf and p.requires_grad and p.grad_fn is None):
                raise _Fail(f"{name} is no longer a leaf that requires grad (grad_fn {p.grad_fn})",
                            "update outside autograd: param.data -= ..., or inside with torch.no_grad()")
        X = torch.randn(2, 5, generator=g)
        (X @ W + b).sum().backward()  # the next iteration's backward must still reach W and b
        if W.grad is None or b.grad is None:
            raise _Fail("after sgd, backward() no longer reaches W", "keep W a leaf: update it in place")

    def in_place():
        W, b = fresh()
        storage = W.data_ptr()
        fn([W, b], lr, B)
        if W.data_ptr() != storage:
            raise _Fail("W now lives in new memory (param.data = ... rebinding)",
                        "subtract in place (-=), so every view of W (plots, the optimizer) sees the change")

    r.case("W and b move by -lr * grad / batch_size", update,
           "the lesson's: for param in params: param.data -= lr * param.grad / batch_size")
    r.case("W and b stay leaves that require grad; backward still reaches them", leaf_after)
    r.case("updates in place (same memory)", in_place)
    return r.finish(verbose, raise_on_fail)


# ---- net ----
def check_net(fn: Callable, verbose: bool = True, raise_on_fail: bool = False) -> CheckResult:
    """net(X, W, b), or the lesson's net(X) that reads global W and b: softmax(X W + b) on flattened images."""
    takes_wb = _positional(fn) >= 3
    r = _Runner(f"check_net({name_of(fn)})", "net")
    g = torch.Generator().manual_seed(3)
    if takes_wb:
        W = (torch.randn(784, 10, generator=g) * 0.05).requires_grad_()
        b = (torch.randn(10, generator=g) * 0.1).requires_grad_()
    else:
        W, b = getattr(fn, "__globals__", {}).get("W"), getattr(fn, "__globals__", {}).get("b")
        if not (isinstance(W, torch.Tensor) and isinstance(b, torch.Tensor) and W.dim() == 2):
            mlp = isinstance(getattr(fn, "__globals__", {}).get("W1"), torch.Tensor)  # the next lesson's net
            r.result.cases.append(Case("finds W and b", False, "net(X) takes one argument, but there are no "
                                       "tensors W (D, 10) and b (10,) in its module",
                                       "this is the MLP's net (it reads W1): check it with check_mlp_net(net)" if mlp
                                       else "define W and b before net, or write net(X, W, b)",
                                       id="net.finds_W_and_b"))
            return r.finish(verbose, raise_on_fail)
    D, C = W.shape
    side = round(D ** 0.5)
    images = torch.rand(5, 1, side, side, generator=g) if side * side == D else torch.rand(5, D, generator=g)

    def call(X):
        return _tensor(fn(X, W, b) if takes_wb else fn(X), "net")

    def want(X):
        with torch.no_grad():
            return torch.softmax(X.reshape(-1, D) @ W + b, dim=1)

    def images_in():
        out = call(images)
        if out.shape != (len(images), C):
            raise _Fail(f"images of shape {tuple(images.shape)} gave {tuple(out.shape)}, expected ({len(images)}, "
                        f"{C})", f"flatten each image to a row first: X.reshape(-1, {D}) (or X.view((-1, {D})))")

    def values():
        _close(call(images), want(images), "softmax(X W + b)", "X.reshape(-1, D) @ W + b, then softmax over dim=1")
        rows = images.reshape(len(images), D)
        _close(call(rows), want(rows), "rows already flat (B, D)")

    def batch_of_one():
        _close(call(images[:1]), want(images[:1]), "a batch of one image", "do not squeeze the batch dimension")

    def gradient():
        out = call(images)
        if out.grad_fn is None:
            raise _Fail("the output has no grad_fn: autograd cannot reach W and b", "use torch operations on W, b")
        w = torch.randn(out.shape, generator=g)
        gw, gb = torch.autograd.grad((out * w).sum(), [W, b], allow_unused=True)  # leaves .grad untouched
        Wr, br = W.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
        (torch.softmax(images.reshape(-1, D) @ Wr + br, dim=1) * w).sum().backward()
        if gw is None or gb is None:
            raise _Fail("the output does not depend on " + ("W" if gw is None else "b"), "use both W and b")
        _close(gw, Wr.grad, "the gradient reaching W")
        _close(gb, br.grad, "the gradient reaching b")

    flat = f"flatten each image to a row: X.reshape(-1, {D}) @ W + b, then softmax"
    r.case("takes a batch of images and returns (B, classes)", images_in, flat)
    r.case("values match softmax(X W + b)", values, flat)
    r.case("a batch of one image", batch_of_one, flat)
    r.case("the gradient flows back to W and b", gradient)
    return r.finish(verbose, raise_on_fail)
