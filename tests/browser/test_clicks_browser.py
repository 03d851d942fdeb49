"""Clicks anywhere on the dashboard leave the notebook's active cell where it was (JupyterLab, Chromium, 1366×768).

A student ran an epoch, opened *evaluation*, clicked a confusion-matrix cell and pressed Shift-Enter: the
dashboard's own cell had become the active one, so Shift-Enter re-ran it and replaced the run. Buttons were
kept from doing that, the plots, tabs, lists and text were not. A right-click is the exception: it must make the
dashboard's cell active, or JupyterLab's context menu (Create New View for Cell Output) acts on another cell."""

from __future__ import annotations

import pytest
from dashboard_page import DashboardPage, open_tab, shift_enter_runs_the_cell_below
from harness import FIRST_RENDER_S, notebook_json, open_in_lab, run_all_cells

pytestmark = pytest.mark.timeout(900)

NOTEBOOK = "clicks_1366x768.ipynb"
CELLS = ["""import torch

from softmax_widgets.app import Dashboard

torch.set_num_threads(1)
dash = Dashboard.from_dataset("fashion-mnist-small", lr=0.1, batch_size=256, seed=0)
dash""", "ran_by_shift_enter = dash.trainer.iteration"]
# the code and math lines' text boxes wider than what shows of them (text-overflow: ellipsis)
CUT = """() => Array.from(document.querySelectorAll('.sw-dashboard .sw-code div, .sw-dashboard .sw-math div'))
  .filter(d => d.offsetParent && d.scrollWidth > d.clientWidth + 1)
  .map(d => `${d.textContent} (${d.scrollWidth} px in ${d.clientWidth})`)"""
ACTIVE = "() => window.jupyterapp.shell.currentWidget.content.activeCellIndex"
COUNT = "() => window.jupyterapp.shell.currentWidget.content.widgets[0].model.executionCount"
# (what a student clicks, a CSS selector under the dashboard); each must leave cell 1 active
PLACES = [("a confusion-matrix cell", ".sw-confusion rect.heatmapcell"), ("the cell title", ".sw-cell-title"),
          ("the status line", ".sw-status"), ("the loss plot", ".sw-loss"), ("a W map", ".sw-weights"),
          ("a tab", ".sw-views .sw-tab"), ("the keys line", ".sw-keys-help"),
          ("the counter", ".sw-counter")]


def _activate_cell_below(page) -> None:
    page.evaluate("() => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = 1;"
                  " nb.mode = 'command'; }")


def test_lab_clicks_anywhere_on_the_dashboard_keep_the_active_cell(lab, lab_root, browser_page, artifacts):
    (lab_root / NOTEBOOK).write_text(notebook_json(CELLS))
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 768})
    open_in_lab(page, lab, NOTEBOOK)
    run_all_cells(page)
    dash = DashboardPage(page)
    dash.wait_drawn(FIRST_RENDER_S, artifacts / "clicks-not-rendered.png", lab)
    ran = page.evaluate(COUNT)
    # the code and math lines after each phase: whole, never cut with "…" at 1366×768 with the file browser open
    cut = []
    for phase in ("next_batch", "forward", "zero_grad", "backward", "sgd"):
        before = dash.state()["status"]
        dash.click_and_wait_status(phase, before)
        page.wait_for_timeout(300)
        cut += [f"{phase}: {c}" for c in page.evaluate(CUT)]
    assert not cut, f"cut off at 1366×768: {cut}"
    dash.click("Run epoch")
    dash.wait_for("() => window.__sw.statusText().startsWith('epoch 1 done')", 240)
    open_tab(page, "evaluation")
    dash.wait_for("() => !!document.querySelector('.sw-confusion rect.heatmapcell')", 60)
    moved = []
    for what, selector in PLACES:
        _activate_cell_below(page)
        target = page.locator(f".sw-dashboard {selector} >> visible=true").first
        target.scroll_into_view_if_needed()
        target.click(position={"x": 3, "y": 3}, timeout=30_000)
        page.wait_for_timeout(300)
        if page.evaluate(ACTIVE) != 1:
            moved.append(what)
    page.screenshot(path=str(artifacts / "clicks-after-evaluation-cell.png"))
    assert not moved, f"a click on {', '.join(moved)} made the dashboard's cell the active one"
    # and Shift-Enter now runs the cell below, never the dashboard's own again (that replaced the run)
    open_tab(page, "evaluation")  # the click on a tab above opened the first one
    dash.wait_for("() => !!document.querySelector('.sw-confusion rect.heatmapcell')", 60)
    _activate_cell_below(page)
    cell = page.locator(".sw-dashboard .sw-confusion rect.heatmapcell").nth(6 * 10)
    cell.scroll_into_view_if_needed()
    cell.click(position={"x": 3, "y": 3})
    page.wait_for_timeout(300)
    shift_enter_runs_the_cell_below(page)
    assert page.evaluate(COUNT) == ran, "Shift-Enter after a click on the confusion matrix re-ran the dashboard"
    # a right-click makes the dashboard's cell active: the context menu's commands act on it
    _activate_cell_below(page)
    page.locator(".sw-dashboard .sw-loss").first.click(button="right", position={"x": 5, "y": 5})
    page.wait_for_timeout(300)
    assert page.evaluate(ACTIVE) == 0, "a right-click on the dashboard left another cell active"
    page.keyboard.press("Escape")
