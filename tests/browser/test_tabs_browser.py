"""The row of tabs in real Chromium, in the Voila app: every Export arrives as a browser download with the right
bytes, a downloaded state file uploads back into the run (test_upload_browser.py: a 1 GB file), and a walk through
every tab logs no SVG errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import torch
from dashboard_page import DashboardPage, open_tab, screenshot
from harness import FIRST_RENDER_S, open_in_lab, run_all_cells

pytestmark = pytest.mark.timeout(600)

TABS = ["W.grad", "batch", "bias", "graph", "evaluation", "compare runs", "export"]
SIZES = [(1366, 768), (1280, 720)]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VIEWS = "() => document.querySelector('.sw-views')"


def _download(page, label: str) -> tuple[str, bytes]:
    """Click an Export button; the page must hand the browser a file (Playwright's download event)."""
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name=label, exact=True).click()
    download = info.value
    return download.suggested_filename, Path(download.path()).read_bytes()


def _svg_errors(page) -> list[str]:
    return [line for line in page.console if "negative value" in line or "NaN" in line]


def _shots(page, artifacts, name: str, where: str = "voila") -> None:
    for w, h in SIZES:
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(400)  # bqplot redraws on resize
        screenshot(page, artifacts / f"tabs-{where}-{w}x{h}-{name}.png", VIEWS)


def test_voila_tabs_downloads_upload_and_a_clean_console(voila, browser_page, artifacts, tmp_path):
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(voila.url + "/", timeout=FIRST_RENDER_S * 1000)
    dash = DashboardPage(page)
    dash.wait_rendered(FIRST_RENDER_S)
    for name in TABS:  # every tab opened before any training: figures drawn in a hidden tab measured 0 px
        open_tab(page, name)
        page.wait_for_timeout(300)
    dash.click("Run epoch")
    # an epoch is 235 iterations on Fashion-MNIST, 24 on the bundled subset a clone without data falls back to
    dash.wait_for("() => /epoch 2/.test(window.__sw.counter().textContent)", 180)
    open_tab(page, "compare runs")
    page.get_by_role("button", name="keep this run", exact=True).click()
    page.locator(".sw-views", has_text="after epoch 1").first.wait_for(timeout=30_000)
    for label in ["Iteration", "Iteration"]:
        before = dash.iteration()
        dash.click(label)
        dash.wait_for("(n) => window.__sw.iteration() > n", 60, before)
    done = dash.iteration()
    for w, h in SIZES:  # the live curves' iteration ticks after an epoch and a bit
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(400)
        screenshot(page, artifacts / f"tabs-voila-{w}x{h}-dashboard.png")
    for name in ["compare runs", "evaluation", "batch"]:
        open_tab(page, name)
        _shots(page, artifacts, name.replace(" ", "-"))
    page.set_viewport_size({"width": 1366, "height": 768})

    open_tab(page, "export")
    name, data = _download(page, "history CSV")
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert name == "softmax_run.csv" and len(rows) == done and int(rows[-1]["iteration"]) == done
    assert [r["test_acc"] != "" for r in rows].count(True) == 1  # the one finished epoch's row
    name, data = _download(page, "W as image grid PNG")
    assert name == "softmax_W.png" and data.startswith(PNG_SIGNATURE)
    name, data = _download(page, "state file")
    state_path = tmp_path / name
    state_path.write_bytes(data)
    state = torch.load(state_path, weights_only=True)
    assert name == "softmax_state.pt" and state["iteration"] == done and state["epoch"] == 1
    name, data = _download(page, "PNG (download)")  # a figure: drawn by the browser, downloaded by bqplot
    assert name.endswith(".png") and data.startswith(PNG_SIGNATURE)
    _shots(page, artifacts, "export")
    page.set_viewport_size({"width": 1366, "height": 768})

    # the downloaded state file, uploaded after one more iteration: the run is back where it was saved
    dash.click("Iteration")
    dash.wait_for("(n) => window.__sw.iteration() > n", 60, done)
    with page.expect_file_chooser(timeout=30_000) as chooser:  # as a student does: the button, then a file
        page.locator(".sw-upload button").first.click()
    chooser.value.set_files(str(state_path))
    dash.wait_for("(n) => window.__sw.iteration() === n", 60, done)
    page.locator(".sw-export-status", has_text="loaded softmax_state.pt").wait_for(timeout=30_000)
    # the upload button (ui/upload.js) reads as its label after a load, whole (not cut to "load state fi…")
    label = page.evaluate("""() => { const b = document.querySelector('.sw-upload button');
        return [b.textContent, b.scrollWidth <= b.clientWidth, b.disabled]; }""")
    assert label == ["load state file (.pt)", True, False], label
    # a 1 GB file (sparse): refused in the page by its size, never sent (Voila's 20 MB websocket cap would have cut
    # the page off); the kernel steps on
    with open(tmp_path / "lesson.pt", "wb") as f:
        f.truncate(2**30)
    page.locator(".sw-upload input[type=file]").set_input_files(str(tmp_path / "lesson.pt"))
    page.locator(".sw-export-status", has_text="lesson.pt is 1.0 GB; a state file here can be at most 16 MB").wait_for(
        timeout=30_000)
    dash.click("Iteration")
    dash.wait_for("(n) => window.__sw.iteration() === n", 60, done + 1)

    for name in TABS:  # and once more after training, every tab
        open_tab(page, name)
        page.wait_for_timeout(200)
    assert not _svg_errors(page), f"{len(_svg_errors(page))} SVG errors, first: {_svg_errors(page)[:3]}"
    assert not [line for line in page.console if line.startswith("pageerror")], page.console[:5]


def test_lab_hidden_tabs_log_no_svg_errors(lab, lab_root, browser_page, artifacts):
    """JupyterLab's default layout: Play with the bias and batch panes hidden after being shown, the page resized
    (a projector, a zoom), then every tab once more. A figure laid out in a hidden tab must not log errors."""
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 768})
    open_in_lab(page, lab, "02_dashboard.ipynb")
    run_all_cells(page)
    dash = DashboardPage(page)
    dash.wait_rendered(FIRST_RENDER_S)
    for name in TABS:
        open_tab(page, name)
        page.wait_for_timeout(200)
    dash.play_then_pause(dash.iteration() + 150, 30, settle_limit_s=10)
    for w, h in [(1280, 720), (1000, 700), (1366, 768)]:  # resized while most panes are hidden
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(400)
    for name in TABS:
        open_tab(page, name)
        page.wait_for_timeout(200)
    open_tab(page, "batch")
    _shots(page, artifacts, "batch", "lab")  # ends at 1280x720: ~840 px for eight columns beside the file browser
    spill = page.evaluate("() => Array.from(document.querySelectorAll('.sw-batch-caption')).filter(d => "
                          "d.scrollWidth > d.clientWidth + 1 || d.scrollHeight > d.clientHeight + 1)"
                          ".map(d => d.textContent)")
    assert not spill, f"captions cut or spilling out of their column: {spill}"
    found = _svg_errors(page)
    # the probe itself: one negative width set here must be seen (a console nobody listens to finds nothing)
    page.evaluate("() => { const s = document.createElementNS('http://www.w3.org/2000/svg', 'svg');"
                  " const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');"
                  " s.appendChild(r); document.body.appendChild(s); r.setAttribute('width', '-1'); s.remove(); }")
    page.wait_for_timeout(300)
    assert len(_svg_errors(page)) == len(found) + 1, "the console listener missed a negative-width error"
    assert not found, f"{len(found)} SVG errors, first: {found[:3]}"
