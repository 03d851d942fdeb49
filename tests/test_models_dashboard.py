"""The dashboard on the next lessons' models (issue 20): built on an MLP or a torch.nn.Module trainer, every phase
button clicked with every tab open, nothing crashes; the W maps show W1's first ten hidden units (or the Linear
layer's weight), the math line each layer's shapes, and the status line stays free of errors."""

from __future__ import annotations

import html

import numpy as np
import pytest
import torch
from torch import nn

from softmax_widgets import Trainer, load_dataset
from softmax_widgets.app import Dashboard
from softmax_widgets.models import MLP, shown

DIGITS = load_dataset("digits")


def mlp() -> Trainer:
    return Trainer(DIGITS, batch_size=32, seed=0, model=MLP(hidden=16))


def module() -> Trainer:
    torch.manual_seed(0)
    return Trainer(DIGITS, batch_size=32, model=nn.Sequential(nn.Flatten(), nn.Linear(64, 10)),
                   loss_fn=nn.CrossEntropyLoss(reduction="none"), optimizer=torch.optim.SGD)


@pytest.mark.parametrize("make", [mlp, module], ids=["mlp", "module"])
def test_the_dashboard_steps_an_mlp_or_a_module_with_every_tab_open(make):
    t = make()
    dash = Dashboard(t)
    try:
        for tab in dash.views.buttons:
            dash.views.select(tab)
            for label in ("next_batch", "forward", "zero_grad", "backward", "sgd", "step", "iteration"):
                dash.buttons[label].click()
                assert dash.controls.status_level != "error", (tab, label, dash.status)
            dash.graph.flush()
        assert t.iteration >= 7
        math = html.unescape(dash.math.widget.value)
        assert ("H = relu(X W1 + b1): (32×64)(64×16) → (32×16)" in math) if isinstance(t.model, MLP) else (
            "(32×64) → (32×10)" in math)
        W, g, b = shown(t)  # what the W maps draw: W1's first ten hidden units, or the Linear layer's weight
        assert W.shape == (64, 10) and b.shape == (10,) and g is not None
        first = next(iter(t.params.values())).detach()
        want = first[:, :10] if isinstance(t.model, MLP) else first.T
        assert torch.equal(W, want)
        drawn = np.asarray(dash.plots.w_maps[0].color)  # the first W map: hidden unit 1, or class 0's weights
        assert drawn.shape == (8, 8) and np.isfinite(drawn).all() and drawn.std() > 0
        dash.buttons["reset"].click()
        assert t.iteration == 0
    finally:
        dash.close()
