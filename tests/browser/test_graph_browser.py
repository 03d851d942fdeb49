"""The autograd graph tab and the math line in real Chromium: JupyterLab (02_dashboard.ipynb) and the Voila page.

After forward() the page shows the lesson's nodes by PyTorch's names; after backward() the lit path, the
gradient norms and the sentence that the graph was freed; nothing is fetched from off this machine.
"""

from __future__ import annotations

import re

import pytest
from dashboard_page import DashboardPage, open_tab, screenshot
from harness import FIRST_RENDER_S, lab_error_outputs, open_in_lab, run_all_cells

pytestmark = pytest.mark.timeout(900)

NOTEBOOK = "02_dashboard.ipynb"
LESSON_NODES = ["AccumulateGrad", "AccumulateGrad", "AddmmBackward0", "ExpBackward0", "SumBackward1",
                "DivBackward0", "GatherBackward0", "LogBackward0", "NegBackward0", "SumBackward0"]
GRAPH = "() => document.querySelector('.sw-graph')"
NODE_NAMES = ("() => Array.from(document.querySelectorAll('.sw-graph-svg g.sw-graph-node'))"
              ".map(g => g.getAttribute('data-name'))")
TEXT = "(sel) => { const e = document.querySelector(sel); return e ? e.textContent.replace(/\\s+/g, ' ') : ''; }"


def text(page, selector: str) -> str:
    return page.evaluate(TEXT, selector)


def exercise_graph(dash: DashboardPage, page, artifacts, name: str) -> dict:
    state = dash.state()
    for phase in ("next_batch", "forward"):
        state = dash.click_and_wait_status(phase, state["status"])
        assert state["status"].startswith(phase), state
    # the math line beside the status: the lesson's formula with this batch's shapes and loss
    dash.wait_for("() => (document.querySelector('.sw-math') || {}).textContent?.includes('O = X W + b')")
    math = text(page, ".sw-math")
    assert "O = X W + b: (256×784)(784×10) → (256×10)" in math, math
    assert re.search(r"loss = −Σ log Ŷ\[i, yᵢ\] = \d", math), math
    screenshot(page, artifacts / f"{name}-math-forward.png", "() => document.querySelector('.sw-readout')")

    # open the graph tab: the panel draws the graph forward() just built
    open_tab(page, "graph")
    dash.wait_for(f"() => ({NODE_NAMES})().length >= 10", 60)
    names = page.evaluate(NODE_NAMES)
    assert names == LESSON_NODES, names
    svg = text(page, ".sw-graph-svg")
    for piece in ("W · AccumulateGrad", "b · AccumulateGrad", "(784×10)", "AddmmBackward0", "(256×10)",
                  "SumBackward1", "(256×1)", "← ŷ = y_hat", "← loss ="):
        assert piece in svg, (piece, svg[:400])
    assert "forward() built this graph: 10 nodes for the 256 images" in text(page, ".sw-graph-caption")
    # a node chosen in the list: its name, the line that made it, its shape
    page.locator(".sw-graph-nodes select").select_option(label="DivBackward0  (y_hat) (256×10)")
    dash.wait_for("() => (document.querySelector('.sw-graph-detail') || {}).textContent?.includes('X_exp / partition')")
    detail = text(page, ".sw-graph-detail")
    assert "DivBackward0" in detail and "(256×10), (256×1) → (256×10)" in detail, detail
    screenshot(page, artifacts / f"{name}-graph-forward.png", GRAPH)

    for phase in ("zero_grad", "backward"):
        state = dash.click_and_wait_status(phase, state["status"])
        assert state["status"].startswith(phase), state
    dash.wait_for("() => (document.querySelector('.sw-graph-caption') || {}).textContent?.includes('freed')", 60)
    caption = text(page, ".sw-graph-caption")
    assert "backward() walked the lit path" in caption and "‖W.grad‖ = " in caption, caption
    assert "refused until the next forward()" in caption, caption
    assert "‖W.grad‖" in text(page, ".sw-graph-svg")
    dash.wait_for("() => (document.querySelector('.sw-math') || {}).textContent?.includes('∂loss/∂W')")
    assert "∂loss/∂W = Xᵀ(Ŷ − Y): (784×256)(256×10) → (784×10)" in text(page, ".sw-math")
    screenshot(page, artifacts / f"{name}-graph-backward.png", GRAPH)
    screenshot(page, artifacts / f"{name}-math-backward.png", "() => document.querySelector('.sw-readout')")
    screenshot(page, artifacts / f"{name}-dashboard-graph.png")  # the whole dashboard, the graph tab open

    # what the panel announced: a second backward() is refused (in red), and the panel keeps its words
    state = dash.click_and_wait_status("backward", state["status"])
    assert "already ran on this forward pass" in state["status"] and "rgb(192, 0, 0)" in state["color"], state
    return {"nodes": names, "math": math, "caption": caption}


def check_network(page) -> None:
    assert not page.network.needed, f"the page needed requests off this machine: {page.network.needed}"


def test_lab_graph_tab_after_forward_and_backward(lab, lab_root, browser_page, artifacts):
    page = browser_page
    open_in_lab(page, lab, NOTEBOOK)
    run_all_cells(page)
    dash = DashboardPage(page)
    dash.wait_drawn(FIRST_RENDER_S, artifacts / "lab-graph-not-rendered.png", lab)
    result = exercise_graph(dash, page, artifacts, "lab")
    assert not lab_error_outputs(page), lab_error_outputs(page)
    check_network(page)
    print(f"lab graph: {result}")


def test_voila_graph_tab_after_forward_and_backward(voila, browser_page, artifacts):
    page = browser_page
    page.goto(voila.url + "/", timeout=FIRST_RENDER_S * 1000)
    dash = DashboardPage(page)
    dash.wait_drawn(FIRST_RENDER_S, artifacts / "voila-graph-not-rendered.png", voila)
    result = exercise_graph(dash, page, artifacts, "voila")
    assert "Traceback" not in page.inner_text("body")
    check_network(page)
    print(f"voila graph: {result}")
