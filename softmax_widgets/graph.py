"""The loss's autograd graph as plain data: what forward() built and what backward() walks.

Built on demand from `trainer.loss.grad_fn` alone: forward() records nothing extra, so Play pays nothing when
no one looks. The result holds no tensor and no autograd node (names, shapes, source lines and numbers only),
so the graph's saved tensors are freed exactly when autograd frees them.
"""

from __future__ import annotations

import ast
import functools
import inspect
import os
import re
import textwrap
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import model

__all__ = ["LOSS", "MODEL", "PARAMETERS", "Graph", "GraphNode", "autograd_graph", "forward_status"]

PARAMETERS, MODEL, LOSS = "parameters", "model → y_hat", "loss"
MAX_NODES = 200  # a student's function could build thousands of nodes; the picture is for a dozen

# a source operation -> the autograd node names (lower case, no "Backward0") it can make; others make their own
_ALIASES = {
    "matmul": {"mm", "mv", "bmm", "matmul", "unsafeview", "view", "expand"},
    "sub": {"sub", "rsub"}, "subtract": {"sub", "rsub"}, "divide": {"div"}, "truedivide": {"div"},
    "multiply": {"mul"}, "square": {"pow"}, "reshape": {"view", "unsafeview", "clone"},
    "flatten": {"view", "unsafeview", "clone"}, "crossentropy": {"logsoftmax", "nllloss"},
    "max": {"max", "maximum"}, "min": {"min", "minimum"}, "clip": {"clamp", "clampmin", "clampmax"},
    "clamp": {"clamp", "clampmin", "clampmax"}, "transpose": {"transpose", "t"}, "expandas": {"expand"},
    "broadcastto": {"expand"}, "float": {"tocopy"}, "to": {"tocopy"}, "double": {"tocopy"},
    "index": {"index", "select", "slice"},
}
_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow", ast.MatMult: "matmul"}
# calls that never make a node of their own: a line's leftover ops worth a note are the others
_CUTS = {"detach", "data", "item", "nograd"}


@dataclass(frozen=True)
class GraphNode:
    """One autograd node: PyTorch's name, the shape it made, the lesson part and the line that created it."""

    id: int
    name: str  # PyTorch's: "AddmmBackward0", "ExpBackward0", ..., "AccumulateGrad" for a leaf
    shape: tuple[int, ...] | None  # of the tensor this node made (a leaf: the parameter's); None if unknown
    part: str  # PARAMETERS, MODEL or LOSS
    code: str  # the source line that created it ("" when no Python source made it)
    where: str  # "model.py:16 in softmax", or why there is no line
    label: str = ""  # "W", "b", "y_hat" or "loss"
    grad_norm: float | None = None  # a leaf's ‖.grad‖ when it has one

    @property
    def is_leaf(self) -> bool:
        return self.part == PARAMETERS


@dataclass(frozen=True)
class Graph:
    """The nodes in forward order (leaves first, the loss last) and the edges data flowed along."""

    nodes: tuple[GraphNode, ...] = ()
    edges: tuple[tuple[int, int], ...] = ()  # (input id, output id); gradients flow back along them
    freed: bool = False  # backward() ran: autograd freed the saved tensors a second backward would need
    notes: tuple[str, ...] = ()  # what a line did that left no node (a .detach(), ...)
    empty_reason: str = ""  # why there is no graph (no forward yet, a loss cut off from W)

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def find(self, name: str) -> list[GraphNode]:
        return [n for n in self.nodes if n.name == name]

    def labelled(self, label: str) -> GraphNode | None:
        return next((n for n in self.nodes if n.label == label), None)

    def inputs(self, node_id: int) -> list[GraphNode]:
        return [self.nodes[a] for a, b in self.edges if b == node_id]

    def __str__(self) -> str:
        """One row per node, leaves first: what print(autograd_graph(t)) shows in a notebook or a terminal."""
        if not self.nodes:
            return self.empty_reason
        rows = []
        for n in self.nodes:
            shape = "?" if n.shape is None else str(n.shape)
            ins = ", ".join(i.label if i.is_leaf else i.name for i in self.inputs(n.id))
            rows.append(f"{n.label:6s}{n.name:17s}{shape:11s}{n.part:15s}{'<- ' + ins if ins else '':34s}{n.code}")
        tail = ["backward() ran: autograd freed the saved tensors"] if self.freed else []
        return "\n".join(rows + tail + list(self.notes))


def forward_status(trainer) -> str:
    """Where the graph stands: 'none', 'live', 'consumed' (backward freed it), 'stale' (sgd changed W since) or
    'non-finite' (the Trainer's LoopState.forward)."""
    return trainer.state.forward.value


def autograd_graph(trainer, softmax: Callable | None = None, loss_fn: Callable | None = None) -> Graph:
    """Walk trainer.loss.grad_fn through next_functions; each node with its name, shape, part and line.

    Lines are looked up in trainer.softmax and trainer.loss_fn; after a swap that no forward() has used yet,
    pass the functions that built this loss (`softmax=`, `loss_fn=`), as the Graph panel does.
    """
    loss = trainer.loss
    if loss is None:
        return Graph(empty_reason="no graph yet: forward() builds it from this batch")
    if loss.grad_fn is None and forward_status(trainer) in ("consumed", "stale", "non-finite"):
        return Graph(empty_reason="undo() brought back this batch's loss as a number, not its graph (backward() had "
                                  "used it up, or it was not finite): forward() builds a new one")
    if loss.grad_fn is None:
        return Graph(empty_reason="the loss has no grad_fn: it does not depend on W (a .detach(), .data, .item() "
                                  "or torch.no_grad() in softmax or loss_fn cut it off from autograd)")
    fns, edges = _walk(loss.grad_fn)
    y_hat = trainer.y_hat
    in_model = set(_walk(y_hat.grad_fn)[0]) if y_hat is not None and y_hat.grad_fn is not None else set()
    leaves = {fn: _leaf_name(fn, trainer) for fn in fns if _is_leaf(fn)}
    order = sorted(leaves, key=lambda fn: (leaves[fn] != "W", leaves[fn] != "b")) + sorted(
        (fn for fn in fns if fn not in leaves), key=_seq)
    ids = {fn: i for i, fn in enumerate(order)}
    lines = _lines(trainer, order, in_model, softmax or trainer.softmax, loss_fn or trainer.loss_fn)
    nodes = []
    for fn in order:
        i = ids[fn]
        if fn in leaves:
            name, grad = leaves[fn], fn.variable.grad
            norm = float(torch.linalg.vector_norm(grad)) if grad is not None else None
            code, where = _lesson_leaf_line(trainer, name, tuple(fn.variable.shape))
            nodes.append(GraphNode(i, "AccumulateGrad", tuple(fn.variable.shape), PARAMETERS, code, where,
                                   name, norm))
            continue
        label = "loss" if fn is loss.grad_fn else "y_hat" if y_hat is not None and fn is y_hat.grad_fn else ""
        code, where = lines.get(fn, ("", ""))
        nodes.append(GraphNode(i, fn.name(), _shape(fn), MODEL if fn in in_model else LOSS, code, where, label))
    notes = tuple(lines.get("notes", ()))
    if len(fns) >= MAX_NODES:
        notes += (f"only the first {MAX_NODES} nodes are shown",)
    return Graph(tuple(nodes), tuple(sorted({(ids[a], ids[b]) for a, b in edges})), _freed(order), notes)


# ---- walking ----
def _walk(root, limit: int = MAX_NODES) -> tuple[list, list]:
    """Every node reachable from root (breadth first, at most `limit`) and (input, output) edges between them."""
    seen, edges, queue = {root: None}, [], [root]
    for fn in queue:
        for child, _ in fn.next_functions:
            if child is None:  # an input that needs no gradient (X, y)
                continue
            if child not in seen:
                if len(seen) >= limit:
                    continue
                seen[child] = None
                queue.append(child)
            edges.append((child, fn))
    return list(seen), edges


def _is_leaf(fn) -> bool:
    return hasattr(fn, "variable")  # AccumulateGrad: where a leaf's .grad is filled


def _leaf_name(fn, trainer) -> str:
    v = fn.variable
    return next((name for name, p in trainer.params.items() if v is p), "leaf")  # W, b; W1, ...; "1.weight"


def _seq(fn) -> int:
    """The order autograd created the node in (forward order)."""
    try:
        return fn._sequence_nr()
    except (AttributeError, RuntimeError):
        return 0


def _shape(fn) -> tuple[int, ...] | None:
    """The shape of what the node made: the shape its incoming gradient must have (no tensor is touched)."""
    try:
        return tuple(fn._input_metadata[0].shape)
    except (AttributeError, IndexError, RuntimeError):  # a private API: a PyTorch without it shows no shape
        return None


def _freed(fns) -> bool:
    """True when autograd freed the saved tensors: reading one raises; a tensor read here is dropped at once."""
    for fn in reversed(fns):  # the loss end: what backward frees first
        for attr in dir(fn):
            if not attr.startswith("_saved_"):
                continue
            try:
                saved = getattr(fn, attr)
            except RuntimeError:
                return True
            if isinstance(saved, torch.Tensor):
                return False
    return False


# ---- the line of source that created each node ----
@dataclass
class _Line:
    part: str
    code: str
    where: str
    ops: Counter


def _lines(trainer, order, in_model, softmax: Callable, loss_fn: Callable) -> dict:
    """node -> (code, where), matched by operation name to the lines of the functions forward() ran.

    The functions, in the order forward() calls them: the lesson's net, the softmax (the lesson's or a
    student's), the loss_fn, then the Trainer's statement that sums the loss. Nodes are taken in creation
    order and each goes to the next line of its part holding an unused operation of its kind.
    """
    lines: list[_Line] = []
    for part, fn, only in ((MODEL, model.net, None), (MODEL, softmax, None), (LOSS, loss_fn, None),
                           (LOSS, type(trainer).forward, "loss")):
        code = getattr(inspect.unwrap(fn), "__code__", None)
        lines += [_Line(part, c, w, Counter(ops)) for c, w, ops in _source_ops(code, only)] if code else []
    found, cursor = {}, 0
    for fn in order:
        if _is_leaf(fn):
            continue
        op, part = _node_op(fn.name()), MODEL if fn in in_model else LOSS
        for k in [*range(cursor, len(lines)), *range(cursor)]:
            line = lines[k]
            src = next((s for s in line.ops if line.ops[s] > 0 and op in _ALIASES.get(s, {s})), None)
            if line.part == part and src is not None:
                line.ops[src] -= 1
                found[fn], cursor = (line.code, line.where), k
                break
        else:
            name = _func_name(softmax if part == MODEL else loss_fn)
            found[fn] = ("", f"made inside {name} (no Python line of it names {op})")
    notes = [f"{s}() on `{line.code}` made no node: the line detaches it, a constant to autograd"
             for line in lines if line.ops.get("detach", 0) or line.ops.get("data", 0)
             for s, n in line.ops.items() if n > 0 and s not in _CUTS]
    found["notes"] = notes
    return found


def _node_op(name: str) -> str:
    m = re.match(r"(.+?)Backward\d*$", name)
    return (m.group(1) if m else name).lower()


def _func_name(fn) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


@functools.lru_cache(maxsize=128)
def _source_ops(code, only: str | None) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(line text, "file:line in function", operations on it) for each line of a function's source.

    `only`: keep the statements that assign to a name or attribute so called (the Trainer's `loss = ....sum()`).
    Cached per code object: a function a student redefines is a new code object, parsed once.
    """
    try:
        src, first = inspect.getsourcelines(code)
        tree = ast.parse(textwrap.dedent("".join(src)))
    except (OSError, TypeError, SyntaxError, IndentationError):  # a lambda inside a larger expression, a REPL
        return ()
    params = {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    roots = [s for s in ast.walk(tree) if isinstance(s, ast.Assign) and any(
        getattr(t, "attr", None) == only or getattr(t, "id", None) == only
        for tgt in s.targets for t in ast.walk(tgt))] if only else [tree]
    per_line: dict[int, list[str]] = {}
    for root in roots:
        for node in ast.walk(root):
            op = _op_of(node, params)
            if op:
                per_line.setdefault(node.lineno, []).append(op)
    # ipykernel keeps a cell's source as /tmp/ipykernel_<pid>/<hash>.py: name it as the student sees it
    in_cell = "ipykernel_" in code.co_filename or code.co_filename.startswith("<ipython-input")
    where = "a notebook cell, line {}, in {}" if in_cell else os.path.basename(code.co_filename) + ":{} in {}"
    return tuple((src[n - 1].strip(), where.format(first + n - 1, code.co_name), tuple(ops))
                 for n, ops in sorted(per_line.items()) if 0 < n <= len(src))


def _op_of(node, params: set[str]) -> str | None:
    """The tensor operation an expression performs, normalised like node names ('log_softmax' -> 'logsoftmax')."""
    if isinstance(node, ast.Call):
        f = node.func
        if isinstance(f, ast.Attribute):
            name = f.attr
        elif isinstance(f, ast.Name) and f.id not in params:  # calling a passed-in function is not an op
            name = f.id
        else:
            return None
    elif isinstance(node, ast.BinOp | ast.AugAssign):
        name = _BINOPS.get(type(node.op))
    elif isinstance(node, ast.UnaryOp):
        name = "neg" if isinstance(node.op, ast.USub) else None
    elif isinstance(node, ast.Attribute) and node.attr == "data":
        name = "data"
    elif isinstance(node, ast.Subscript) and not (isinstance(node.value, ast.Attribute)
                                                  and node.value.attr == "shape"):
        name = "index"
    else:
        return None
    return name.replace("_", "").lower() if name else None


def _lesson_leaf_line(trainer, name: str, shape: tuple[int, ...]) -> tuple[str, str]:
    """The lesson's line that makes W (or b) a leaf, as a student would type it, and where the Trainer does it.

    The Trainer's own statement (`self.W.copy_(torch.from_numpy(w)).requires_grad_()`, W stored column by column
    for speed) is an implementation detail: the table shows the line of the lesson, with this Trainer's numbers.
    """
    code, where = _leaf_line(type(trainer), name)
    if name == "W" and len(shape) == 2:
        std = getattr(trainer, "init_std", 0.01)
        lesson = f"W = torch.tensor(np.random.normal(0, {std:g}, {shape}), dtype=torch.float).requires_grad_()"
    elif name == "b" and len(shape) == 1:
        lesson = f"b = torch.zeros({shape[0]}, dtype=torch.float).requires_grad_()"
    else:
        return code, where
    return lesson, f"the lesson's init, done by {where}" if code else "the lesson's init"


@functools.lru_cache(maxsize=16)
def _leaf_line(cls, name: str) -> tuple[str, str]:
    """The Trainer's statement that makes W (or b) a leaf: the method that sets `self.W ... requires_grad_()`."""
    try:
        src, first = inspect.getsourcelines(cls)
        tree = ast.parse(textwrap.dedent("".join(src)))
        file = os.path.basename(inspect.getsourcefile(cls))
    except (OSError, TypeError, SyntaxError):
        return "", f"{name}: a leaf tensor with requires_grad=True"
    for fn in (f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)):
        for n in range(fn.lineno, fn.end_lineno + 1):
            text = src[n - 1]
            if re.search(rf"self\.{name}\b", text) and "requires_grad_(" in text:
                return text.strip(), f"{file}:{first + n - 1} in {fn.name}"
    return "", f"{name}: a leaf tensor with requires_grad=True"
