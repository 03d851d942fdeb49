"""Notebook 03 as an instructor opens it (issue 18, rehearsal 2): JupyterLab with its own default settings (no
windowing override), Run All, the real data where there is some, Chromium at 1280×720, the file browser collapsed.

- A+ (notebook 03 makes its dashboard with scale_notebook=True) enlarges the notebook's code cells and printouts
  ×1.5, and A+ again puts them back;
- at A+ the buttons, the status, the loss curve and both rows of W maps lie inside the notebook's view, and the
  counter ("epoch 1 · batch 114/235 · iteration 114") stays on one line: what the first code cell's comment promises;
- at scale 1 with no tab pane open, the status, the loss plot and the cell below the dashboard on one screen, at
  1280×720 and 1366×768;
- with W's colour scale widened (±1, ±2: a large lr, or an sgd without / batch_size), every W map lies whole inside
  the dashboard and the view, at 1.5 and at 1 (file browser open or collapsed).

Screenshots: artifacts/nb03-*.png.
"""

from __future__ import annotations

import harness
import pytest
from dashboard_page import KERNEL_EXEC, DashboardPage, one_screen

from softmax_widgets import launch
from tests.conftest import FASHION_ROOT

pytestmark = pytest.mark.timeout(900)

NOTEBOOK = "03_instructor_live_coding.ipynb"
FONTS = r"""
() => window.jupyterapp.shell.currentWidget.content.widgets.map((w, i) => {
  const c = w.node, e = c.querySelector('.cm-content'), o = c.querySelector('.jp-RenderedText pre');
  return {i, type: w.model.type, dashboard: !!c.querySelector('.sw-dashboard'),
          code: e ? parseFloat(getComputedStyle(e).fontSize) : null,
          output: o ? parseFloat(getComputedStyle(o).fontSize) : null};
})
"""
# the one-screen parts in px, the view they are seen through, and every W map's image
GEOMETRY = r"""
() => {
  const d = window.__sw.dashboard();
  const box = (el) => { const r = el.getBoundingClientRect();
                        return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height}; };
  const part = (sel) => { const el = d.querySelector(sel); return el ? box(el) : null; };
  const counter = d.querySelector('.sw-counter .widget-html-content div');
  const lines = (el) => { const r = document.createRange(); r.selectNodeContents(el);  // its text's line boxes
    return new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top))).size; };
  const clip = (el) => { const out = [];  // each box around el, up to the dashboard, that clips it
    for (let a = el.parentElement; a && a !== d.parentElement; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX !== 'visible' || s.overflowY !== 'visible') out.push(box(a)); }
    return out; };
  const maps = Array.from(d.querySelectorAll('.sw-weights')).map(f => {
    const img = f.querySelector('image'); return {fig: box(f), image: img ? box(img) : null, clips: clip(f)}; });
  return {dashboard: box(d), area: window.__sw.viewArea(), buttons: part('.sw-buttons'), status: part('.sw-status'),
          loss: part('.sw-loss'), counter: counter ? {lines: lines(counter), text: counter.textContent,
            split: Array.from(counter.querySelectorAll('span')).filter(s => s.getClientRects().length > 1)
                        .map(s => s.textContent)} : null,
          note: d.querySelector('.sw-w-legend').textContent, maps};
}
"""


@pytest.fixture(scope="module")
def lab_defaults(tmp_path_factory):
    """JupyterLab with its own windowing (Lab 4.6: contentVisibility), as `softmax-widgets lab` gives an instructor,
    serving the example notebooks."""
    root = tmp_path_factory.mktemp("nb03-root")
    launch.copy_examples(root)
    with harness.lab_server(root, tmp_path_factory.mktemp("nb03-home"), FASHION_ROOT, windowing=None) as server:
        yield server


def _exec(page, code: str) -> None:
    assert page.evaluate(KERNEL_EXEC, code) == "ok", code


def _top(page, dash: DashboardPage) -> None:
    page.evaluate("() => window.__sw.dashboard().scrollIntoView({block: 'start'})")
    page.wait_for_timeout(800)  # bqplot redraws on the next frames after a scroll or resize


def _maps_whole(g: dict, when: str) -> None:
    """Every W map's image inside the dashboard, each box that clips it, and the view, left to right."""
    d, a = g["dashboard"], g["area"]
    for i, m in enumerate(g["maps"]):
        assert m["image"] is not None, f"{when}: W map {i} has no image"
        r = m["image"]
        for b in [d, a, *m["clips"]]:
            assert r["left"] >= b["left"] - 1 and r["right"] <= b["right"] + 1, \
                f"{when}: W map {i} ({r['left']:.0f}..{r['right']:.0f}) cut at {b['left']:.0f}..{b['right']:.0f}"


def test_notebook03_run_all_a_plus_scales_cells_and_keeps_the_one_screen_set_whole(lab_defaults, browser_page,
                                                                                      artifacts):
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 720})
    harness.open_in_lab(page, lab_defaults, NOTEBOOK)
    harness.run_all_cells(page)
    dash = DashboardPage(page)
    dash.wait_drawn(harness.FIRST_RENDER_S, artifacts / "nb03-not-rendered.png", lab_defaults)
    # Run All done: the last code cell has its execution count and the kernel is idle
    page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget; const cells = w.content.widgets"
                           ".filter(c => c.model.type === 'code'); return cells[cells.length - 1].model.executionCount"
                           " && w.sessionContext.session.kernel.status === 'idle'; }", timeout=600_000)
    assert not harness.lab_error_outputs(page)
    fonts = page.evaluate(FONTS)
    typed = [f for f in fonts if f["type"] == "code" and not f["dashboard"]]
    assert typed and all(f["code"] == 13 for f in typed), fonts

    # scale 1, the file browser open, no tab pane open: the status, the loss plot and the next cell on one screen
    for width, height in ((1280, 720), (1366, 768)):
        page.set_viewport_size({"width": width, "height": height})
        one_screen(page, artifacts / f"nb03-{width}x{height}-scale1.png")
    page.set_viewport_size({"width": 1280, "height": 720})

    # the lecture: file browser collapsed, the run at iteration 114, A+
    _exec(page, "for _ in range(114 - trainer.iteration):\n    trainer.train_step()")
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    _top(page, dash)
    status = dash.state()["status"]
    dash.click("A+")
    dash.wait_for("(s) => window.__sw.statusText() !== s && window.__sw.statusText().startsWith('presentation')",
                  30, status)
    dash.wait_for("() => window.__sw.iteration() === 114", 30)
    _top(page, dash)
    page.screenshot(path=str(artifacts / "nb03-1280x720-a-plus.png"))
    g = page.evaluate(GEOMETRY)
    bottom = g["area"]["bottom"]
    for part in ("buttons", "status", "loss"):
        assert g[part]["bottom"] <= bottom + 1, f"{part} ends at {g[part]['bottom']:.0f}, the view at {bottom:.0f}"
    for i, m in enumerate(g["maps"]):  # both rows of W maps, whole
        assert m["image"]["bottom"] <= bottom + 1, f"W map {i} ends at {m['image']['bottom']:.0f} > {bottom:.0f}"
    c = g["counter"]
    # one line at iteration 114 of an epoch (the real data: 235 batches); once an epoch is done (the offline set's
    # 24 batches) "· test 75.9%" joins it, and two lines fit its row: it breaks between parts, never inside one
    assert "iteration 114" in c["text"] and not c["split"], f"the counter splits a part: {c}"
    assert c["lines"] <= (1 if " · test" not in c["text"] else 2), f"the counter wraps: {c}"
    _maps_whole(g, "1.5")

    # the notebook's own cells ×1.5 (every code cell and printout but the dashboard's), wherever one scrolls
    fonts = page.evaluate(FONTS)
    typed = [f for f in fonts if f["type"] == "code" and not f["dashboard"]]
    assert all(f["code"] == 19.5 for f in typed) and all(f["output"] in (None, 19.5) for f in typed), fonts
    page.evaluate("() => { const w = window.jupyterapp.shell.currentWidget.content.widgets;"
                  " w[w.length - 2].node.scrollIntoView({block: 'start'}); }")
    page.wait_for_timeout(800)
    fonts = page.evaluate(FONTS)
    typed = [f for f in fonts if f["type"] == "code" and not f["dashboard"]]
    assert all(f["code"] == 19.5 for f in typed), fonts
    page.screenshot(path=str(artifacts / "nb03-1280x720-a-plus-cells.png"))

    # W's colour scale widened: every map whole at 1.5, then at 1 with the file browser collapsed and open
    for want in ("1", "2"):
        # W by hand: its robust max (what the colour scale follows) 0.9 × the wanted limit
        _exec(page, f"with torch.no_grad():\n    trainer.W.mul_({want} * 0.9 / trainer.W.abs().quantile(0.995))\n"
                    "try:\n    trainer.train_step()\nexcept DivergenceError:\n    pass")  # W drawn as after any run
        # (at ±2 a true class gets probability 0 in float32: the status says so, the maps must still be whole)
        dash.wait_for(f"() => window.__sw.dashboard().querySelector('.sw-w-legend').textContent.includes('+{want}')",
                      30)
        _top(page, dash)
        g = page.evaluate(GEOMETRY)
        _maps_whole(g, f"1.5, W's scale {g['note']}")
        page.screenshot(path=str(artifacts / f"nb03-1280x720-a-plus-w{want}.png"))
    dash.click("A+")  # the status keeps the divergence's message: the zoom's class says A+ is off
    dash.wait_for("() => !window.__sw.dashboard().classList.contains('sw-scale-150')", 30)
    page.wait_for_timeout(1000)
    _top(page, dash)
    fonts = page.evaluate(FONTS)
    assert all(f["code"] == 13 for f in fonts if f["type"] == "code"), fonts  # A+ again puts them back
    _maps_whole(page.evaluate(GEOMETRY), "1, file browser collapsed")
    page.screenshot(path=str(artifacts / "nb03-1280x720-scale1-w2.png"))
    page.evaluate("() => window.jupyterapp.shell.expandLeft()")
    page.wait_for_timeout(1000)
    _top(page, dash)
    _maps_whole(page.evaluate(GEOMETRY), "1, file browser open")
    page.screenshot(path=str(artifacts / "nb03-1280x720-scale1-w2-browser-open.png"))

    # the math line after the "use stable softmax" way out: the next forward's formula, no stale "= nan"
    _exec(page, "trainer.reset()\ntrainer.softmax = model.softmax\nwith torch.no_grad():\n    trainer.b += 100\n"
                "try:\n    trainer.next_batch().forward()\nexcept DivergenceError:\n    pass")
    dash.wait_for("() => window.__sw.button('use stable softmax') && "
                  "window.__sw.button('use stable softmax').offsetParent !== null", 30)
    math = "() => window.__sw.dashboard().querySelector('.sw-math').textContent"
    dash.wait_for(f"() => ({math})().endsWith('= nan')", 30)
    dash.click("use stable softmax")
    dash.wait_for(f"() => ({math})().startsWith('next forward()')", 30)
    text = page.evaluate(math)
    assert "Ŷ = stable_softmax(O)" in text and "nan" not in text, text
    _top(page, dash)
    page.screenshot(path=str(artifacts / "nb03-1280x720-math-after-stable-softmax.png"))
