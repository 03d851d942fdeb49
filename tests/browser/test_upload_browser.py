"""A state file's upload in real JupyterLab and Chromium (ui/upload.js, front_end.Upload): a 1 GB file is refused
in the page by its size, with the reason on the export tab, and never sent (JupyterLab's websocket would have
closed on it: the page said only that it lost its connection); the kernel stays alive and the dashboard steps on;
a 12 MB file (over that websocket's 10 MiB as one message) reaches the kernel in pieces and is said to be no state
file; then a state file the Trainer saved loads through the same button, the run back at its iteration."""

from __future__ import annotations

import pytest
from dashboard_page import DashboardPage, open_tab
from harness import FIRST_RENDER_S, notebook_json, open_in_lab, run_all_cells

pytestmark = pytest.mark.timeout(600)

NOTEBOOK = "upload_check.ipynb"
CELL = """from softmax_widgets.app import Dashboard
dash = Dashboard.from_dataset("fashion-mnist-small", seed=0)
dash"""
REFUSED = "lesson.pt is 1.0 GB; a state file here can be at most 16 MB: it was not sent, and the run is unchanged."


def _kernel_status(page) -> str:
    return page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status")


def test_a_1_gb_file_is_refused_in_the_page_and_a_saved_run_loads(lab, lab_root, browser_page, artifacts, tmp_path):
    from softmax_widgets import Trainer, load_dataset

    saved = Trainer(load_dataset("fashion-mnist-small"), seed=0)
    for _ in range(7):
        saved.train_step()
    saved.save(tmp_path / "saved.pt")
    big = tmp_path / "lesson.pt"
    with open(big, "wb") as f:
        f.truncate(2**30)  # sparse: a 1 GB file to the browser, no disk used

    (lab_root / NOTEBOOK).write_text(notebook_json([CELL]))
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 900})
    open_in_lab(page, lab, NOTEBOOK)
    run_all_cells(page)
    dash = DashboardPage(page)
    dash.wait_rendered(FIRST_RENDER_S)
    for n in (1, 2):
        dash.click("Iteration")
        dash.wait_for("(n) => window.__sw.iteration() === n", 60, n)
    open_tab(page, "export")

    page.locator(".sw-upload input[type=file]").set_input_files(str(big))
    status = page.locator(".sw-export-status", has_text="lesson.pt is 1.0 GB")
    status.wait_for(timeout=60_000)
    assert REFUSED in status.inner_text() and "trainer.save(path)" in status.inner_text()
    status.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "upload-1gb-refused.png"))
    # the kernel is alive and connected, the run unchanged, and the dashboard still steps
    assert _kernel_status(page) == "idle"
    assert not page.evaluate("() => window.__sw.dashboard().classList.contains('jupyter-widgets-disconnected')")
    dash.click("Iteration")
    dash.wait_for("(n) => window.__sw.iteration() === n", 60, 3)

    # 12 MB: over JupyterLab's websocket limit (tornado's 10 MiB) as one message, under the cap: it reaches the
    # kernel in pieces, and persist.read says what it is, in words
    (tmp_path / "zeros.pt").write_bytes(b"\0" * (12 * 2**20))
    page.locator(".sw-upload input[type=file]").set_input_files(str(tmp_path / "zeros.pt"))
    page.locator(".sw-export-status", has_text="zeros.pt is not a softmax_widgets state file").wait_for(
        timeout=120_000)
    assert _kernel_status(page) == "idle" and dash.iteration() == 3

    # a state file the Trainer saved, chosen as a student does (the button, then the file): iteration 7 again
    with page.expect_file_chooser(timeout=30_000) as chooser:
        page.locator(".sw-upload button").first.click()
    chooser.value.set_files(str(tmp_path / "saved.pt"))
    page.locator(".sw-export-status", has_text="loaded saved.pt").wait_for(timeout=60_000)
    dash.wait_for("(n) => window.__sw.iteration() === n", 60, 7)
    dash.click("Iteration")
    dash.wait_for("(n) => window.__sw.iteration() === n", 60, 8)
    assert _kernel_status(page) in ("idle", "busy")
    assert not [line for line in page.console if line.startswith("pageerror")], page.console[:5]
