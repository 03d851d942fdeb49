"""The Graph panel and the math line, headless: real widgets on a real Trainer, one phase at a time."""

from __future__ import annotations

import asyncio
import html
import re
import time

import pytest
import torch

from softmax_widgets import PhaseError, Trainer, model
from softmax_widgets.ui import graph_panel as gv
from softmax_widgets.ui.graph_panel import GraphPanel, MathLine


@pytest.fixture
def trainer(digits):
    return Trainer(digits, batch_size=16, seed=0)


@pytest.fixture
def panel(trainer):
    p = GraphPanel(trainer)
    p.set_visible(True)
    yield p
    p.close()


def svg_names(p) -> list[str]:
    return re.findall(r"data-name='([^']+)'", p.svg.value)


def text(p) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", p.caption.value))


def test_before_forward_the_panel_says_what_will_appear(trainer, panel):
    assert panel.svg.value == "" and panel.nodes.options == ()
    assert "No graph yet. Call next_batch(), then forward()" in text(panel)
    trainer.next_batch()
    assert "No graph yet. Call forward():" in text(panel) and "W and b at the top" in text(panel)


def test_after_forward_the_graph_with_leaves_on_top_and_y_hat_and_loss_marked(trainer, panel):
    trainer.next_batch()
    trainer.forward()
    names = svg_names(panel)
    assert names == ["AccumulateGrad", "AccumulateGrad", "AddmmBackward0", "ExpBackward0", "SumBackward1",
                     "DivBackward0", "GatherBackward0", "LogBackward0", "NegBackward0", "SumBackward0"]
    svg = html.unescape(panel.svg.value)
    assert "W · AccumulateGrad" in svg and "b · AccumulateGrad" in svg and "(64×10)" in svg
    assert "← ŷ = y_hat" in svg and f"← loss = {trainer.loss_value:.4g}" in svg
    # leaves on top: their boxes have the smallest y
    ys = [float(y) for y in re.findall(r"<rect x='[^']+' y='([^']+)'", panel.svg.value)]
    assert ys[0] == ys[1] == min(ys) and ys[-1] == max(ys)
    assert "forward() built this graph: 10 nodes for the 16 images" in text(panel)
    assert "grayscale" not in panel.svg.value and "marker-end" in panel.svg.value  # arrows down, the data's way


def test_after_backward_the_path_is_lit_and_the_panel_says_the_graph_is_freed(trainer, panel):
    for phase in ("next_batch", "forward", "zero_grad", "backward"):
        getattr(trainer, phase)()
    svg, words = html.unescape(panel.svg.value), text(panel)
    assert "marker-start" in svg and gv.LIT in svg  # arrows up, the gradient's way
    w, b = float(trainer.W.grad.norm()), float(trainer.b.grad.norm())
    assert f"‖W.grad‖ {w:.3g}" in svg and f"‖b.grad‖ {b:.3g}" in svg
    assert f"‖W.grad‖ = {w:.3g}, ‖b.grad‖ = {b:.3g}" in words
    assert "autograd has freed the tensors this graph saved" in words
    assert "a second backward() on it is refused until the next forward()" in words
    with pytest.raises(PhaseError) as err:  # what the panel announced
        trainer.backward()
    assert err.value.id == "refuse.backward.consumed"


def test_after_sgd_the_graph_is_greyed_as_stale_and_the_next_forward_draws_a_new_one(trainer, panel):
    trainer.train_step()
    assert "grayscale" in panel.svg.value and "Stale: sgd() changed W" in text(panel)
    trainer.next_batch()
    assert panel.svg.value == ""
    trainer.forward()
    assert "grayscale" not in panel.svg.value and len(svg_names(panel)) == 10


def test_a_swapped_softmax_shows_its_own_nodes(trainer, panel):
    trainer.next_batch()
    trainer.forward()
    assert "SubBackward0" not in svg_names(panel)
    trainer.softmax = model.stable_softmax  # a settings event: the graph changes only at the next forward
    assert "softmax is now stable_softmax: its nodes appear after the next forward()" in text(panel)
    assert panel.choose("ExpBackward0").code == "X_exp = X.exp()"  # still the lesson's line: it built this graph
    trainer.forward()
    assert "SubBackward0" in svg_names(panel) and "softmax is now" not in text(panel)
    assert panel.choose("ExpBackward0").where.endswith("in stable_softmax")
    assert "amax() on" in text(panel) and "detaches it" in text(panel)

    def no_keepdim(X):
        X_exp = X.exp()
        return X_exp / X_exp.sum(dim=1)

    trainer.batch_size = 10  # 10 rows x 10 classes: the missing keepdim broadcasts silently
    trainer.softmax = no_keepdim
    trainer.next_batch()
    trainer.forward()
    node = panel.choose("DivBackward0")
    detail = html.unescape(panel.detail.value)
    assert node.label == "y_hat"
    assert "(10×10), (10) → (10×10)" in detail and "broadcast: (10) from SumBackward1" in detail
    assert "return X_exp / X_exp.sum(dim=1)" in detail and "in no_keepdim" in detail


def test_choosing_a_node_shows_its_name_line_and_shape(trainer, panel):
    trainer.next_batch()
    trainer.forward()
    labels = [label for label, _ in panel.nodes.options]
    assert labels[0] == "W · AccumulateGrad (64×10)" and labels[-1] == "SumBackward0  (loss) scalar"
    panel.nodes.value = next(v for label, v in panel.nodes.options if label.startswith("SumBackward1"))  # a click
    detail = html.unescape(panel.detail.value)
    assert "<b>SumBackward1</b> · model → y_hat" in detail and "(16×10) → (16×1)" in detail
    assert "partition = X_exp.sum(dim=1, keepdim=True)" in detail and "model.py:" in detail
    assert "stroke='#000' stroke-width='3'" in panel.svg.value  # the chosen box is outlined
    panel.choose("", label="W")
    assert "W is a leaf (64×10) with requires_grad=True" in html.unescape(panel.detail.value)
    with pytest.raises(ValueError, match="no node 'MmBackward0'"):
        panel.choose("MmBackward0")
    hidden = GraphPanel(trainer)  # never shown: choosing a node draws it first
    assert hidden.choose("ExpBackward0").code == "X_exp = X.exp()" and "ExpBackward0" in hidden.detail.value
    hidden.close()
    trainer.zero_grad()
    trainer.backward()  # the choice survives the redraw, now with the gradient
    assert f"‖W.grad‖ = {float(trainer.W.grad.norm()):.4g}" in html.unescape(panel.detail.value)


def test_hidden_panel_computes_nothing_and_catches_up_when_shown(trainer, monkeypatch):
    calls = []
    real = gv.autograd_graph
    monkeypatch.setattr(gv, "autograd_graph", lambda t, *fns: calls.append(1) or real(t, *fns))
    p = GraphPanel(trainer)
    for _ in range(3):
        trainer.train_step()
    trainer.next_batch()
    trainer.forward()
    assert calls == [] and p.svg.value == ""
    p.set_visible(True)
    assert len(calls) == 1 and len(svg_names(p)) == 10
    trainer.zero_grad()
    assert len(calls) == 2
    p.set_visible(False)
    trainer.backward()
    assert len(calls) == 2 and "marker-end" in p.svg.value  # still the picture from before backward
    n = trainer.listener_count
    p.close()
    assert trainer.listener_count == n - 1


def test_math_line_follows_each_phase_with_the_trainers_numbers(fashion):
    t = Trainer(fashion, seed=0)
    m = MathLine(t)
    assert m.text == "next_batch() draws X: (256×784), y: (256) from 60,000 images"
    t.next_batch()
    assert m.text == "X: (256×784), y: (256) · batch 1 of 235"
    t.forward()
    assert m.text == ("O = X W + b: (256×784)(784×10) → (256×10) · Ŷ = softmax(O) · "
                      f"loss = −Σ log Ŷ[i, yᵢ] = {t.loss_value:.4g}")
    assert abs(t.loss_value - 256 * torch.log(torch.tensor(10.0)).item()) < 5  # ≈ 589 at the lesson's init
    t.zero_grad()
    assert m.text == "W.grad ← 0: (784×10) · b.grad ← 0: (10)"
    t.backward()
    assert m.text == "∂loss/∂W = Xᵀ(Ŷ − Y): (784×256)(256×10) → (784×10) · ∂loss/∂b = Σᵢ(Ŷ − Y)ᵢ: (10)"
    assert "Y = one-hot(y)" in m.widget.value and f"‖W.grad‖ = {float(t.W.grad.norm()):.4g}" in m.widget.value
    # the oracle: autograd's W.grad is the formula the line shows
    Y = torch.nn.functional.one_hot(t.y, 10).float()
    torch.testing.assert_close(t.W.grad, t.X.T @ (t.y_hat.detach() - Y), rtol=1e-4, atol=1e-4)
    t.sgd()
    assert m.text == "W ← W − 0.1 · W.grad / 256 · b ← b − 0.1 · b.grad / 256"
    assert "W ← W − 0.1 · W.grad / 256" in html.unescape(m.widget.value)
    # a batch size and a learning rate change show at once in the shapes and numbers
    t.batch_size, t.lr = 128, 0.5
    t.train_step()
    assert m.text == "W ← W − 0.5 · W.grad / 128 · b ← b − 0.5 · b.grad / 128"
    t.next_batch()
    t.forward()
    assert "(128×784)(784×10) → (128×10)" in m.text
    t.softmax = model.stable_softmax
    t.forward()
    assert "Ŷ = stable_softmax(O)" in m.text
    m.close()


def test_math_line_after_the_stable_softmax_way_out_shows_the_next_forward_not_a_stale_nan(digits):
    """Issue 18 (rehearsal 2): after a forward that overflowed, the "use stable softmax" way out left the line at
    "Ŷ = stable_softmax(O) · loss = −Σ log Ŷ[i, yᵢ] = nan": a nan stable_softmax never made. The line now shows the
    formula the next forward computes, with the new function's name and no loss value."""
    from softmax_widgets import DivergenceError

    t = Trainer(digits, batch_size=32)
    m = MathLine(t, follow=False)  # as the Dashboard draws it: on its own push
    t.next_batch()
    with torch.no_grad():
        t.b += 100  # every logit +100: the lesson's softmax overflows in exp
    with pytest.raises(DivergenceError):
        t.forward()
    m.refresh()
    assert not (t.loss_value == t.loss_value)  # the forward that ran: a NaN loss, measured
    assert "Ŷ = softmax(O)" in m.text and m.text.endswith("= nan"), m.text
    t.use_stable_softmax()  # what the way-out button calls
    m.refresh()
    assert m.text == ("next forward(): O = X W + b: (32×64)(64×10) → (32×10) · Ŷ = stable_softmax(O) · "
                      "loss = −Σ log Ŷ[i, yᵢ]"), m.text
    assert "nan" not in m.widget.value
    t.forward()  # the same batch, the stable softmax: a finite loss, and the line says it
    m.refresh()
    assert torch.isfinite(t.loss) and m.text.endswith(f"Ŷ = stable_softmax(O) · loss = −Σ log Ŷ[i, yᵢ] = "
                                                       f"{t.loss_value:.4g}"), m.text

    # a loss function swapped after a finite forward: the next forward's formula, no number of the old one
    def my_ce(y_hat, y):
        return -torch.log(y_hat.gather(1, y.view(-1, 1)))

    t.loss_fn = my_ce
    m.refresh()
    assert m.text.startswith("next forward(): ") and m.text.endswith("loss = Σ my_ce(Ŷ, y)"), m.text


def test_math_line_after_a_refused_phase_keeps_the_line_of_the_phase_that_ran(digits):
    """A student's sgd (or softmax) that raises is refused and changes nothing: the line stays the math of the last
    phase that ran (backward's gradient is still in W.grad, W unchanged; the batch still drawn), never the refused
    phase's formula as if it had run, and never a function's name it did not run with."""
    from softmax_widgets import TrainerError

    def broken_sgd(params, lr, batch_size):
        raise RuntimeError("a student's typo")

    def broken_softmax(X):
        raise RuntimeError("a student's typo")

    t = Trainer(digits, batch_size=32)
    m = MathLine(t, follow=False)
    t.next_batch().forward().zero_grad().backward()
    m.refresh()
    backward_line = m.text
    W = t.W.detach().clone()
    t.optimizer = broken_sgd
    with pytest.raises(TrainerError):
        t.sgd()
    m.refresh()
    assert torch.equal(t.W.detach(), W) and t.last_phase.value == "backward"  # measured: sgd did not run
    assert m.text == backward_line and "broken_sgd" not in m.text, m.text
    t.optimizer = model.sgd
    t.sgd()
    t.next_batch()
    m.refresh()
    drawn = m.text
    t.softmax = broken_softmax
    with pytest.raises(TrainerError):
        t.forward()
    m.refresh()
    assert t.y_hat is None or t.last_phase.value == "next_batch"
    assert m.text == drawn and m.text.startswith("X: (32×64)"), m.text


def test_math_line_follows_a_dataset_change_and_a_swapped_loss(digits):
    def my_ce(y_hat, y):
        return -torch.log(y_hat.gather(1, y.view(-1, 1)))

    t = Trainer(digits, batch_size=32, loss_fn=my_ce)
    m = MathLine(t)
    t.next_batch()
    t.forward()
    assert "(32×64)(64×10) → (32×10)" in m.text and f"loss = Σ my_ce(Ŷ, y) = {t.loss_value:.4g}" in m.text
    t.zero_grad()
    t.backward()
    assert m.text == "∂loss/∂W: (64×10), ∂loss/∂b: (10) by the chain rule through softmax"
    n = t.listener_count
    m.close()
    assert t.listener_count == n - 1


def test_during_play_the_views_redraw_at_most_a_few_times_a_second_and_the_last_state_lands(trainer):
    async def play():
        p, m = GraphPanel(trainer, min_interval=0.2), MathLine(trainer, min_interval=0.2)
        p.set_visible(True)
        draws = []
        real = p.refresh
        p._draw.fn = lambda: draws.append(1) or real()
        start = time.perf_counter()
        for _ in range(100):  # 500 phase events as fast as they come, as Play at full speed
            trainer.train_step()
            await asyncio.sleep(0)
        elapsed = time.perf_counter() - start
        assert len(draws) <= elapsed / 0.2 + 2 < 100, (len(draws), elapsed)  # by time, never per phase
        assert p._draw.pending
        await asyncio.sleep(0.3)  # the deferred redraw lands without another event
        assert not p._draw.pending and "grayscale" in p.svg.value
        assert m.text == "W ← W − 0.1 · W.grad / 16 · b ← b − 0.1 · b.grad / 16"
        p.close()
        m.close()

    asyncio.run(play())


# ---- any order of calls, as students would: the panel and the math line follow and never fail ----
from hypothesis import HealthCheck, settings  # noqa: E402  the fuzz section's own imports
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule  # noqa: E402

from softmax_widgets import TrainerError  # noqa: E402
from softmax_widgets.graph import autograd_graph, forward_status  # noqa: E402

ACTIONS = ["next_batch", "forward", "zero_grad", "backward", "sgd", "step", "undo", "reset"]


def no_keepdim(X):
    X_exp = X.exp()
    return X_exp / X_exp.sum(dim=1)


class PanelMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        from softmax_widgets import load_dataset

        self.t = Trainer(load_dataset("digits"), batch_size=10, seed=0)
        self.panel, self.math = GraphPanel(self.t), MathLine(self.t)
        self.panel.set_visible(True)
        self.errors = []
        self.t.on_change(self._check_listeners_ran)

    def _check_listeners_ran(self, trainer, event):
        pass  # the Trainer logs a failing listener and goes on: the log handler below catches that

    @rule(action=st.sampled_from(ACTIONS))
    def act(self, action):
        try:
            getattr(self.t, action)()
        except TrainerError:
            pass  # a refused call: the panel must still be right

    @rule(fn=st.sampled_from([model.softmax, model.stable_softmax, no_keepdim]))
    def swap(self, fn):
        self.t.softmax = fn

    @rule(lr=st.sampled_from([0.1, 50.0]), batch=st.sampled_from([10, 16]))
    def settings(self, lr, batch):  # lr 50: the lesson's softmax overflows, a non-finite loss
        self.t.lr, self.t.batch_size = lr, batch

    @rule(visible=st.booleans())
    def show(self, visible):
        self.panel.set_visible(visible)

    @invariant()
    def panel_matches_the_trainer(self):
        p, t = self.panel, self.t
        if not p.visible:
            return
        assert p.status == forward_status(t)
        names = autograd_graph(t, *p._built_with).names
        assert svg_names(p) == names
        words = text(p)
        if p.status == "consumed" and names:
            assert "refused until the next forward()" in words
        if p.status == "stale" and names:
            assert "Stale: sgd() changed W" in words and "grayscale" in p.svg.value
        if p.status in ("consumed", "stale") and not names:  # undo() brings back numbers, never a used graph
            assert "undo() brought back this batch's loss as a number" in words
        if not names:
            assert p.svg.value == ""
        assert m_ok(self.math.text)

    def teardown(self):
        self.panel.close()
        self.math.close()


def m_ok(line: str) -> bool:
    return bool(line) and "None" not in line


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_any_order_of_calls_keeps_the_panel_right(caplog):
    PanelMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=25, deadline=None,
                                              derandomize=True, database=None,
                                              suppress_health_check=[HealthCheck.too_slow])
    with caplog.at_level("ERROR"):
        PanelMachine.TestCase().runTest()
    failed = [r.getMessage() for r in caplog.records if "listener" in r.getMessage()]
    assert not failed, failed


def test_the_dashboard_mounts_the_panel_as_its_graph_tab_and_the_math_line(digits, monkeypatch):
    from softmax_widgets.app import Dashboard

    calls = []
    real = gv.autograd_graph
    monkeypatch.setattr(gv, "autograd_graph", lambda t, *fns: calls.append(1) or real(t, *fns))
    t = Trainer(digits, batch_size=32, seed=0)
    before = t.listener_count
    dash = Dashboard(t)
    panel, math_line = dash.graph, dash.math
    assert isinstance(panel, GraphPanel) and isinstance(math_line, MathLine)
    assert dash.views.shown != "graph" and not panel.visible
    for label in ("next_batch", "forward"):
        dash.buttons[label].click()
    assert calls == []  # the tab is closed: nothing walked the graph
    assert "(32×64)(64×10) → (32×10)" in html.unescape(math_line.widget.value)
    dash.views.select("graph")
    assert panel.visible and len(calls) == 1 and len(svg_names(panel)) == 10
    for label in ("zero_grad", "backward"):
        dash.buttons[label].click()
    panel.flush()
    assert "autograd has freed the tensors" in text(panel)
    assert "∂loss/∂W = Xᵀ(Ŷ − Y): (64×32)(32×10) → (64×10)" in html.unescape(math_line.widget.value)
    dash.views.select("evaluation")
    assert not panel.visible
    n = len(calls)
    dash.buttons["sgd"].click()
    assert len(calls) == n
    dash.close()
    assert t.listener_count == before  # the panel's and the math line's listeners went with the dashboard
