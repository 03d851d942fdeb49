"""The dashboard in a second view (JupyterLab's Create New View for Cell Output), as an instructor opens it to keep
the plots beside the code while scrolling: the view shows the plots, drawn, with no console error (1280×720)."""

from __future__ import annotations

import pytest
from dashboard_page import DashboardPage
from harness import FIRST_RENDER_S, notebook_json, open_in_lab, run_all_cells

pytestmark = pytest.mark.timeout(600)

NOTEBOOK = "second_view_1280x720.ipynb"
CELLS = ["""import torch

from softmax_widgets.app import Dashboard

torch.set_num_threads(1)
dash = Dashboard.from_dataset("fashion-mnist", lr=0.1, batch_size=256, seed=0, scale=1.5)
dash""", "dash.trainer.iteration"]
VIEW = ".jp-LinkedOutputView"
# each plot of the second view: its drawn size (a plot area narrower than its margins: bqplot's console errors)
PLOTS = """(sel) => Array.from(document.querySelectorAll(sel + ' .bqplot.figure')).filter(f => f.offsetParent)
  .map(f => { const r = f.getBoundingClientRect(); return {w: r.width, h: r.height}; })"""


def test_a_second_view_of_the_dashboard_shows_its_plots_with_no_console_error(lab, lab_root, browser_page,
                                                                                artifacts):
    (lab_root / NOTEBOOK).write_text(notebook_json(CELLS))
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 720})
    open_in_lab(page, lab, NOTEBOOK)
    run_all_cells(page)
    dash = DashboardPage(page)
    dash.wait_drawn(FIRST_RENDER_S, artifacts / "second-view-not-rendered.png", lab)
    for _ in range(3):
        before = dash.state()["status"]
        dash.click_and_wait_status("Iteration", before)
    before_errors = len(page.console)
    page.get_by_role("feed", name="Cells").get_by_role("button", name="▶ Play", exact=True).click()
    page.locator(".jp-Cell").first.locator(".jp-OutputArea-promptOverlay").first.click(button="right")
    page.get_by_text("Create New View for Cell Output").click()
    page.wait_for_selector(VIEW + " .bqplot.figure", timeout=60_000)
    page.wait_for_timeout(3000)  # bqplot lays out after the panel is attached and sized
    page.screenshot(path=str(artifacts / "second-view-1280x720.png"))
    plots = page.evaluate(PLOTS, VIEW)
    assert plots, "the second view shows no plot"
    assert all(p["w"] > 50 and p["h"] > 50 for p in plots), f"plots of the second view not drawn: {plots}"
    errors = [m for m in page.console[before_errors:] if m.startswith(("error", "pageerror")) or "negative" in m]
    assert not errors, f"console errors in the second view: {errors[:5]} ({len(errors)} in all)"
    # the view is live: a step in the notebook's dashboard moves the second view's counter too
    counter = f"() => document.querySelector('{VIEW} .sw-counter').textContent"
    first = page.evaluate(counter)
    page.get_by_role("feed", name="Cells").get_by_role("button", name="Iteration", exact=True).click()
    page.wait_for_function(f"(c) => ({counter})() !== c", arg=first, timeout=30_000)
