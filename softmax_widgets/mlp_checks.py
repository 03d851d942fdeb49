"""Check a student's relu and MLP net (the chapter's "multilayer perceptrons from scratch"), case by case, with a
hint per failure; the same CheckResult as the lesson's checks (checks.py re-exports both)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._checking import Case, CheckResult, _changed, _close, _Fail, _positional, _Runner, _tensor
from .measure import name_of

__all__ = ["check_mlp_net", "check_relu"]

BOOK_RELU = "the book's: a = torch.zeros_like(X); return torch.max(X, a)"


def _relu_out(out) -> torch.Tensor:
    """The student's relu output as a tensor, or a failure that names the classic wrong return values."""
    if type(out).__module__ == "torch.return_types":  # torch.max(X, 0): the max along dim 0, (values, indices)
        raise _Fail(f"it returned {type(out).__name__}(values, indices): torch.max(X, 0) is the largest entry along "
                    "dimension 0, not an elementwise max with 0",
                    "compare with a tensor of zeros: torch.max(X, torch.zeros_like(X))")
    out = _tensor(out, "relu")
    if out.dtype == torch.bool:
        raise _Fail("it returned a bool mask (True where X > 0), not the values",
                    "keep the values where X > 0: torch.max(X, torch.zeros_like(X)), or X * (X > 0)")
    return out


def check_relu(fn: Callable, verbose: bool = True, raise_on_fail: bool = False) -> CheckResult:
    """relu(X): max(X, 0) elementwise, any shape, same dtype, autograd's gradient (1 where X > 0), X unchanged."""
    r = _Runner(f"check_relu({name_of(fn)})", "relu")
    g = torch.Generator().manual_seed(4)
    X = torch.randn(4, 256, generator=g)
    X[0, :3] = torch.tensor([0.0, -0.0, 1e-8])  # the edge: 0 stays 0

    def shape_and_type():
        out = _relu_out(fn(X.clone()))
        if out.shape != X.shape:
            raise _Fail(f"a (4, 256) input gave shape {tuple(out.shape)}",
                        "relu works elementwise: return one value per input, the same shape as X")
        if out.dtype != X.dtype:
            raise _Fail(f"dtype {out.dtype}, expected {X.dtype}",
                        "keep X's dtype: (X > 0) is bool, turn it back with X * (X > 0), not .long() or .int()")

    def values():
        out = _relu_out(fn(X.clone())).detach()
        want = torch.relu(X)
        if out.shape == X.shape:
            if torch.allclose(out, (X > 0).to(out.dtype)):
                raise _Fail("it returned 1 where X > 0 and 0 elsewhere: that is the mask (relu's derivative), not "
                            "relu", "keep the value itself where X > 0: X * (X > 0), or torch.max(X, zeros)")
            if torch.allclose(out, X.abs()):
                raise _Fail("it returned |X|: negatives were flipped, not set to 0",
                            "negatives become 0: torch.max(X, torch.zeros_like(X))")
            if torch.allclose(out, -torch.relu(-X)):
                raise _Fail("it kept the negatives and zeroed the positives (min instead of max)",
                            "relu keeps the positives: torch.max(X, zeros), not torch.min")
            if bool((out[X < 0] != 0).any()):
                raise _Fail("some negative inputs did not become 0", "max(X, 0): every negative entry becomes 0")
            if not torch.equal(out[X > 0], X[X > 0]):
                raise _Fail("some positive inputs changed", "max(X, 0) keeps every positive entry as it is")
        _close(out, want, "values (torch.relu as reference)", "max(X, 0) elementwise", atol=0)

    def any_shape():
        for shape in ((1, 10), (2, 3, 5), (7,)):
            Y = torch.randn(shape, generator=g)
            try:
                out = _relu_out(fn(Y.clone()))
            except RuntimeError as err:
                raise _Fail(f"a {shape} input raised {str(err).splitlines()[0][:160]}",
                            "make the zeros from X itself: torch.zeros_like(X), not torch.zeros(256)") from err
            if out.shape != Y.shape:
                raise _Fail(f"a {shape} input gave shape {tuple(out.shape)}",
                            "make the zeros from X itself: torch.zeros_like(X), not torch.zeros(256) or a fixed shape")
            _close(out, torch.relu(Y), f"values for a {shape} input", "max(X, 0) elementwise", atol=0)

    def gradient():
        Xg = X.clone().requires_grad_()
        out = _relu_out(fn(Xg * 1))  # a non-leaf, as X W1 + b1 is in the MLP
        if out.grad_fn is None:
            raise _Fail("the output has no grad_fn: autograd cannot reach X, so W1 would get no gradient",
                        "use torch operations only (no .detach(), .data, numpy or torch.tensor(...) of a result)")
        w = torch.randn(X.shape, generator=g)
        (gx,) = torch.autograd.grad((out * w).sum(), [Xg], allow_unused=True)
        if gx is None:
            raise _Fail("the output does not depend on X", "compute relu from X: torch.max(X, torch.zeros_like(X))")
        away = X != 0  # at 0 itself any slope in [0, 1] is right (torch.max splits it: 0.5)
        if bool(((X < 0) & (gx != 0)).any()):
            raise _Fail("the gradient is not 0 where X < 0: autograd did not see the zeroing (done on .data, or in "
                        "place after autograd recorded X?)",
                        "let autograd record it: torch.max(X, torch.zeros_like(X)), or X.clamp(min=0), no .data")
        _close(gx[away], (w * (X > 0))[away], "the gradient flowing back to X (1 where X > 0, else 0)")

    def input_unchanged():
        if _changed(fn, [X])[0]:
            raise _Fail("it changed its input X in place (X.clamp_(min=0), X[X < 0] = 0, X.data...)",
                        "return a new tensor: torch.max(X, torch.zeros_like(X)); X W1 + b1 must stay as it was")

    r.case("returns a tensor of the input's shape and dtype", shape_and_type, BOOK_RELU)
    r.case("zeros the negatives, keeps the positives (0 stays 0)", values, BOOK_RELU)
    r.case("works on a tensor of any shape", any_shape, BOOK_RELU)
    r.case("the gradient flows back to X (1 where X > 0)", gradient)
    r.case("leaves its input unchanged (not in place)", input_unchanged)
    return r.finish(verbose, raise_on_fail)


NAMES = ("W1", "b1", "W2", "b2")


def _params_of(fn, params, takes_params: bool) -> dict[str, torch.Tensor] | str:
    """The four tensors to check the net with, by name; or why there are none."""
    if params is not None:
        values = list(params.values()) if isinstance(params, dict) else list(params)
        if len(values) != 4 or not all(isinstance(p, torch.Tensor) for p in values):
            return "params must be the four tensors W1, b1, W2, b2 (a dict or a list, as the book's params)"
        return dict(zip(NAMES, values, strict=True))
    if takes_params:  # made here: the book's shapes, large enough that relu, b1 and b2 all change the output
        g = torch.Generator().manual_seed(5)
        shapes = {"W1": (784, 256), "b1": (256,), "W2": (256, 10), "b2": (10,)}
        return {n: (torch.randn(s, generator=g) * (0.05 if n == "W1" else 0.3)).requires_grad_()
                for n, s in shapes.items()}
    found = getattr(fn, "__globals__", {})
    if all(isinstance(found.get(n), torch.Tensor) for n in NAMES):
        return {n: found[n] for n in NAMES}
    return ("net(X) takes one argument, but there are no tensors W1, b1, W2, b2 in its module: define them "
            "before net (the book's W1 = nn.Parameter(torch.randn(784, 256) * 0.01) ...), or give them: "
            "check_mlp_net(net, params=[W1, b1, W2, b2])")


def check_mlp_net(fn: Callable, params=None, verbose: bool = True, raise_on_fail: bool = False) -> CheckResult:
    """The MLP's net: relu(X W1 + b1) W2 + b2 on flattened images, logits (B, 10), a gradient to every parameter.

    net(X) reads W1, b1, W2, b2 from its module (the book's closure style); net(X, params) gets them as a dict
    {"W1": ..., ...}, as Trainer(model=(params, net)) calls it; `params=` gives the very tensors to use."""
    takes_params = _positional(fn) >= 2
    r = _Runner(f"check_mlp_net({name_of(fn)})", "mlp_net")
    p = _params_of(fn, params, takes_params)
    if isinstance(p, str):
        r.result.cases.append(Case("finds W1, b1, W2, b2", False, p, id="mlp_net.finds_params"))
        return r.finish(verbose, raise_on_fail)
    W1, b1, W2, b2 = (p[n] for n in NAMES)
    D, C = W1.shape[0], W2.shape[-1]
    given = params if params is not None else p
    g = torch.Generator().manual_seed(6)
    side = round(D ** 0.5)
    images = torch.rand(5, 1, side, side, generator=g) if side * side == D else torch.rand(5, D, generator=g)

    def call(X):
        return _tensor(fn(X, given) if takes_params else fn(X), "net")

    def ref(X, relu=True, out_relu=False, soft=False):
        with torch.no_grad():
            H = X.reshape(-1, D) @ W1 + b1
            out = (torch.relu(H) if relu else H) @ W2 + b2
            return torch.softmax(out, dim=1) if soft else torch.relu(out) if out_relu else out

    def images_in():
        out = call(images)
        if out.shape != (len(images), C):
            raise _Fail(f"images of shape {tuple(images.shape)} gave {tuple(out.shape)}, expected ({len(images)}, "
                        f"{C})", f"flatten each image to a row first: X = X.reshape((-1, {D})), whatever the batch "
                        "size (-1, not 256)")

    def values():
        out = call(images).detach()
        if out.shape == (len(images), C):
            if torch.allclose(out, ref(images, relu=False), atol=1e-5):
                raise _Fail("no relu between the layers: without it the two layers are one linear map",
                            "H = relu(X @ W1 + b1), then H @ W2 + b2")
            if torch.allclose(out, ref(images, soft=True), atol=1e-5):
                raise _Fail("it returned probabilities (a softmax at the end): the MLP's net returns logits",
                            "return H @ W2 + b2: nn.CrossEntropyLoss(reduction='none') applies the softmax itself")
            if torch.allclose(out, ref(images, out_relu=True), atol=1e-5):
                raise _Fail("a relu on the output too: logits must be free to be negative",
                            "relu only on the hidden layer: return H @ W2 + b2")
        _close(out, ref(images), "relu(X W1 + b1) W2 + b2", "H = relu(X @ W1 + b1); return H @ W2 + b2")
        rows = images.reshape(len(images), D)
        _close(call(rows), ref(rows), "rows already flat (B, D)", f"X.reshape((-1, {D})) works for both")

    def batch_of_one():
        _close(call(images[:1]), ref(images[:1]), "a batch of one image",
               f"X.reshape((-1, {D})): -1 is the batch size, whatever it is; do not squeeze it away")

    def gradient():
        out = call(images)
        if out.grad_fn is None:
            raise _Fail("the output has no grad_fn: autograd cannot reach W1, b1, W2, b2",
                        "use torch operations on the parameters (no .detach(), .data, numpy)")
        w = torch.randn(out.shape, generator=g)
        grads = torch.autograd.grad((out * w).sum(), [W1, b1, W2, b2], allow_unused=True)  # .grad left alone
        missing = [n for n, gr in zip(NAMES, grads, strict=True) if gr is None]
        if missing:
            raise _Fail(f"the output does not depend on {', '.join(missing)}, so backward() gives "
                        f"{'it' if len(missing) == 1 else 'them'} no gradient",
                        "use every parameter: H = relu(X @ W1 + b1); return H @ W2 + b2")
        mine = [t.detach().clone().requires_grad_() for t in (W1, b1, W2, b2)]
        (((torch.relu(images.reshape(-1, D) @ mine[0] + mine[1]) @ mine[2] + mine[3]) * w).sum()).backward()
        for n, gr, m in zip(NAMES, grads, mine, strict=True):
            _close(gr, m.grad, f"the gradient reaching {n}", "relu(X @ W1 + b1) @ W2 + b2, all in torch")

    def nothing_changed():
        x_changed, params_changed = _changed(call, [images], (W1, b1, W2, b2))
        if x_changed:
            raise _Fail("it changed its input X in place", "X = X.reshape(...) makes a new name; no X.clamp_()")
        if params_changed:
            raise _Fail("it changed W1, b1, W2 or b2", "net only computes: the sgd step changes the parameters")

    book = "the book's: X = X.reshape((-1, num_inputs)); H = relu(X @ W1 + b1); return H @ W2 + b2"
    r.case("takes a batch of images and returns (B, classes) logits", images_in, book)
    r.case("values match relu(X W1 + b1) W2 + b2", values, book)
    r.case("a batch of one image", batch_of_one, book)
    r.case("the gradient reaches W1, b1, W2 and b2", gradient)
    r.case("leaves X and the parameters unchanged", nothing_changed)
    return r.finish(verbose, raise_on_fail)

