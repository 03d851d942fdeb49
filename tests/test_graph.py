"""softmax_widgets.graph: the loss's autograd graph as plain data, checked against PyTorch's own graph."""

from __future__ import annotations

import gc
import inspect
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import torch

from softmax_widgets import Trainer, model
from softmax_widgets.graph import LOSS, MODEL, PARAMETERS, autograd_graph, forward_status

# the lesson's graph (net, softmax, cross_entropy, then .sum()) as (input, output) names
LESSON_NODES = ["AccumulateGrad", "AccumulateGrad", "AddmmBackward0", "ExpBackward0", "SumBackward1",
                "DivBackward0", "GatherBackward0", "LogBackward0", "NegBackward0", "SumBackward0"]
LESSON_EDGES = {("W", "AddmmBackward0"), ("b", "AddmmBackward0"), ("AddmmBackward0", "ExpBackward0"),
                ("ExpBackward0", "SumBackward1"), ("ExpBackward0", "DivBackward0"), ("SumBackward1", "DivBackward0"),
                ("DivBackward0", "GatherBackward0"), ("GatherBackward0", "LogBackward0"),
                ("LogBackward0", "NegBackward0"), ("NegBackward0", "SumBackward0")}


def named_edges(g) -> set[tuple[str, str]]:
    def name(i):
        n = g.nodes[i]
        return n.label if n.is_leaf else n.name
    return {(name(a), name(b)) for a, b in g.edges}


def torch_graph(loss: torch.Tensor) -> set[tuple[str, str]]:
    """The oracle: the same walk done directly on PyTorch's nodes of a loss built by hand."""
    edges, stack, seen = set(), [loss.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn in seen:
            continue
        seen.add(fn)
        for child, _ in fn.next_functions:
            if child is not None:
                edges.add((type(child).__name__ if hasattr(child, "variable") else child.name(), fn.name()))
                stack.append(child)
    return edges


def lesson_trainer(data, **kw) -> Trainer:
    t = Trainer(data, seed=0, **kw)
    t.next_batch()
    t.forward()
    return t


def test_no_graph_before_forward(digits):
    t = Trainer(digits)
    g = autograd_graph(t)
    assert g.nodes == () and "forward()" in g.empty_reason
    assert forward_status(t) == "none"
    t.next_batch()
    assert autograd_graph(t).nodes == ()


def test_lesson_graph_matches_the_reference_and_torch(fashion):
    t = lesson_trainer(fashion)
    g = autograd_graph(t)
    assert g.names == LESSON_NODES
    assert named_edges(g) == LESSON_EDGES
    # the same graph PyTorch builds for the lesson's code run by hand on this batch
    by_hand = (-torch.log(model.softmax(torch.addmm(t.b, t.X, t.W)).gather(1, t.y.view(-1, 1)))).sum()
    assert {(a.replace("AccumulateGrad", "leaf"), b) for a, b in torch_graph(by_hand)} == {
        ("leaf" if a in "Wb" else a, b) for a, b in LESSON_EDGES}
    shapes = {n.label or n.name: n.shape for n in g.nodes}
    assert shapes["W"] == (784, 10) and shapes["b"] == (10,)
    assert shapes["AddmmBackward0"] == shapes["ExpBackward0"] == shapes["y_hat"] == (256, 10)
    assert shapes["SumBackward1"] == shapes["GatherBackward0"] == (256, 1)
    assert shapes["loss"] == ()
    parts = {n.name if not n.is_leaf else n.label: n.part for n in g.nodes}
    assert parts["W"] == parts["b"] == PARAMETERS
    assert [parts[k] for k in ("AddmmBackward0", "ExpBackward0", "SumBackward1", "DivBackward0")] == [MODEL] * 4
    assert [parts[k] for k in ("GatherBackward0", "LogBackward0", "NegBackward0", "SumBackward0")] == [LOSS] * 4
    assert g.labelled("y_hat").name == "DivBackward0" and g.labelled("loss").name == "SumBackward0"
    assert not g.freed and forward_status(t) == "live"
    rows = str(g).splitlines()  # print(autograd_graph(t)) in a notebook
    assert rows[0].split()[:3] == ["W", "AccumulateGrad", "(784,"] and "requires_grad_()" in rows[0]
    assert rows[-1].split()[:4] == ["loss", "SumBackward0", "()", "loss"] and "<- NegBackward0" in rows[-1]


def test_each_node_points_at_the_line_that_made_it(digits):
    g = autograd_graph(lesson_trainer(digits))
    src = {name: inspect.getsource(getattr(model, name)) for name in ("net", "softmax", "cross_entropy")}
    expected = {"AddmmBackward0": ("net", "torch.addmm(b"), "ExpBackward0": ("softmax", "X_exp = X.exp()"),
                "SumBackward1": ("softmax", "X_exp.sum(dim=1, keepdim=True)"),
                "DivBackward0": ("softmax", "return X_exp / partition"),
                "GatherBackward0": ("cross_entropy", "y_hat.gather"), "LogBackward0": ("cross_entropy", "torch.log"),
                "NegBackward0": ("cross_entropy", "-torch.log")}
    for name, (fn, piece) in expected.items():
        node = g.find(name)[0]
        assert piece in node.code and node.code in src[fn], (name, node.code)
        line = inspect.getsourcelines(getattr(model, fn))[1] + src[fn].splitlines().index(
            next(s for s in src[fn].splitlines() if s.strip() == node.code))
        assert node.where == f"model.py:{line} in {fn}"
    loss = g.labelled("loss")
    assert loss.code.startswith("loss = self._loss_fn(y_hat, self.y).sum()")  # the lesson's loss line
    assert loss.where.startswith("trainer.py:") and "in forward" in loss.where
    assert "requires_grad" in g.labelled("W").code


def test_the_leaf_rows_show_the_lessons_line_not_the_trainers_internals(digits):
    """The W row showed `self.W.copy_(torch.from_numpy(w)).requires_grad_()`, the Trainer's storage trick, where
    the lesson's line belongs; it still says where the Trainer does it."""
    t = lesson_trainer(digits)
    g = autograd_graph(t)
    w, b = g.labelled("W"), g.labelled("b")
    assert w.code == "W = torch.tensor(np.random.normal(0, 0.01, (64, 10)), dtype=torch.float).requires_grad_()"
    assert b.code == "b = torch.zeros(10, dtype=torch.float).requires_grad_()"
    assert w.where.startswith("the lesson's init, done by trainer.py:") and w.where.endswith("in _start")
    assert "self." not in str(g).splitlines()[0] and "copy_" not in str(g)


def test_stable_softmax_adds_its_sub_node_and_says_the_max_is_detached(digits):
    t = lesson_trainer(digits)
    t.softmax = model.stable_softmax
    t.forward()
    g = autograd_graph(t)
    assert g.names == [*LESSON_NODES[:3], "SubBackward0", *LESSON_NODES[3:]]
    assert ("AddmmBackward0", "SubBackward0") in named_edges(g) and ("SubBackward0", "ExpBackward0") in named_edges(g)
    sub = g.find("SubBackward0")[0]
    assert "X.amax(dim=1, keepdim=True).detach()" in sub.code and sub.where.endswith("in stable_softmax")
    assert any("amax()" in n and "detach" in n for n in g.notes)


def student_softmax_with_max(X):
    X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)  # not detached: autograd records the max
    return X_exp / X_exp.sum(dim=1, keepdim=True)


def student_softmax_without_keepdim(X):
    X_exp = X.exp()
    return X_exp / X_exp.sum(dim=1)  # (B,) lines up with the columns, not the rows


def test_a_students_softmax_shows_its_own_nodes_and_lines(digits):
    g = autograd_graph(lesson_trainer(digits, softmax=student_softmax_with_max))
    assert g.names[2:5] == ["AddmmBackward0", "MaxBackward0", "SubBackward0"]
    mx = g.find("MaxBackward0")[0]
    assert mx.shape == (256, 1) and "X.max(dim=1, keepdim=True)" in mx.code
    assert mx.where == f"test_graph.py:{inspect.getsourcelines(student_softmax_with_max)[1] + 1} in " \
                       "student_softmax_with_max"
    assert ("AddmmBackward0", "MaxBackward0") in named_edges(g) and ("MaxBackward0", "SubBackward0") in named_edges(g)


def test_missing_keepdim_shows_the_broadcast_shape(digits):
    # batch 10 = 10 classes: (10, 10) / (10,) broadcasts silently (with 256 rows it would raise)
    t = lesson_trainer(digits, batch_size=10, softmax=student_softmax_without_keepdim)
    g = autograd_graph(t)
    s = g.find("SumBackward1")[0]
    assert s.shape == (10,) and "X_exp.sum(dim=1)" in s.code
    div = g.labelled("y_hat")
    assert [i.shape for i in g.inputs(div.id)] == [(10, 10), (10,)] and div.shape == (10, 10)
    lesson = autograd_graph(lesson_trainer(digits, batch_size=10))
    assert lesson.find("SumBackward1")[0].shape == (10, 1)


def test_a_builtin_softmax_and_a_custom_loss(digits):
    def my_ce(y_hat, y):
        return -torch.log(y_hat[range(len(y)), y]).sum()  # sums itself: the Trainer's .sum() adds one more node
    t = lesson_trainer(digits, softmax=lambda X: torch.softmax(X, dim=1), loss_fn=my_ce)
    g = autograd_graph(t)
    assert "SoftmaxBackward0" in g.names and "IndexBackward0" in g.names
    soft = g.find("SoftmaxBackward0")[0]
    assert "torch.softmax" in soft.code and soft.part == MODEL
    sums = g.find("SumBackward0")
    assert len(sums) == 2 and "my_ce" in sums[0].where and "in forward" in sums[1].where


def test_after_backward_the_graph_is_freed_and_leaves_carry_the_gradient(digits):
    t = lesson_trainer(digits)
    t.zero_grad()
    t.backward()
    g = autograd_graph(t)
    assert g.freed and forward_status(t) == "consumed"
    assert str(g).endswith("backward() ran: autograd freed the saved tensors")
    assert g.names == LESSON_NODES  # the structure outlives the saved tensors
    assert g.labelled("W").grad_norm == pytest.approx(float(t.W.grad.norm()))
    assert g.labelled("b").grad_norm == pytest.approx(float(t.b.grad.norm()))
    t.sgd()
    assert forward_status(t) == "stale"


def test_a_loss_cut_off_from_autograd_is_explained(digits):
    t = lesson_trainer(digits, loss_fn=lambda y_hat, y: torch.tensor(1.0))
    g = autograd_graph(t)
    assert g.nodes == () and "does not depend on W" in g.empty_reason


def test_no_saved_tensor_survives_the_graph(digits):
    """The graph is plain data: holding it keeps none of autograd's saved tensors alive."""
    refs = []

    def watched_softmax(X):
        X_exp = X.exp()  # saved by ExpBackward0 (its result) and DivBackward0 (its input)
        refs.append(weakref.ref(X_exp))
        return X_exp / X_exp.sum(dim=1, keepdim=True)

    t = lesson_trainer(digits, softmax=watched_softmax)
    kept = [autograd_graph(t)]
    gc.collect()
    assert refs[-1]() is not None  # alive while the graph holds it for backward
    t.zero_grad()
    t.backward()
    kept.append(autograd_graph(t))
    gc.collect()
    assert refs[-1]() is None, "backward freed X_exp, and the graph objects must not hold it"
    # a forward never walked back: dropped when the next batch replaces the loss, even with its graph kept
    t.sgd()
    t.next_batch()
    t.forward()
    kept.append(autograd_graph(t))
    t.next_batch()
    gc.collect()
    assert refs[-1]() is None
    assert all(g.nodes for g in kept)


RSS_SCRIPT = """
import gc, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from softmax_widgets import Trainer, load_dataset
from softmax_widgets.graph import autograd_graph
def rss():
    return int(next(l for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('VmRSS')).split()[1])
t = Trainer(load_dataset('digits'), batch_size=64)
graphs = []
def look(trainer, event):
    graphs.append(autograd_graph(trainer))
    del graphs[:-5]
t.on_change(look)
for _ in range(200):
    t.train_step()
gc.collect()
before = rss()
for _ in range(1000):
    t.train_step()
gc.collect()
print(rss() - before, len(graphs[-1].nodes))
"""


def test_rss_stays_flat_over_1000_iterations_with_the_graph_walked_every_phase():
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT.format(root=root)], capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    growth_kb, nodes = int(out[0]), int(out[1])
    assert nodes == len(LESSON_NODES)
    assert growth_kb < 8 * 1024, f"RSS grew by {growth_kb} kB over 1,000 iterations"


KERNEL_CELLS = ["""import torch
from softmax_widgets import Trainer, load_dataset
from softmax_widgets.graph import autograd_graph
t = Trainer(load_dataset('digits'), batch_size=10)""",
                """def my_softmax(X):
    X_exp = X.exp()
    return X_exp / X_exp.sum(dim=1)

t.softmax = my_softmax
t.next_batch(); t.forward()
print(autograd_graph(t))""",
                """t.softmax = lambda X: torch.softmax(X, dim=1)
t.forward()
node = autograd_graph(t).labelled('y_hat')
print(node.name, node.shape, '|', node.code, '|', node.where)"""]


@pytest.mark.kernel
def test_a_softmax_typed_in_a_notebook_cell_shows_its_lines(tmp_path):
    """In a real kernel the source of a function lives in the cell (IPython's line cache): the graph finds it."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in KERNEL_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=180, resources={"metadata": {"path": str(tmp_path)}}).execute()
    table, soft = ("".join(o.get("text", "") for o in c.outputs) for c in nb.cells[1:])
    sum_row = next(r for r in table.splitlines() if "SumBackward1" in r)
    assert "(10,)" in sum_row and sum_row.endswith("return X_exp / X_exp.sum(dim=1)")  # the missing keepdim
    assert soft.strip() == ("SoftmaxBackward0 (10, 10) | t.softmax = lambda X: torch.softmax(X, dim=1) | "
                            "a notebook cell, line 1, in <lambda>")
