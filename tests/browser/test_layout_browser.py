"""Nothing cut off at 1 or 1.5, and room to type (issue 18, "Cut off at 1.5"), in real Chromium at 1280×720.

JupyterLab in its default layout (the file browser open) at scale 1, then A+ (1.5) with the file browser collapsed
as in a lecture; the Voila app at 1.5 (`softmax-widgets app --state lesson.pt --scale 1.5`). Measured in the DOM:

- every text of the status, code and math lines lies inside each box around it that clips (no overflow hidden
  cuts it, no "…"), with a long error and its fix, and a divergence's details (8 lines), at 1 and at 1.5;
- at scale 1 the dashboard is at most MAX_DASHBOARD_PX tall, and its controls, status, loss and accuracy curves
  and W maps end high enough that the code cell below it fits under them on the same screen;
- A+ with scale_notebook enlarges the notebook's cells ×1.5 and A+ released puts them back;
- in the app at 1.5, both curves (and the W maps) lie inside the 1280×720 window, and inside 1366×768.

Screenshots at 1280×720 and 1366×768, scale 1 and 1.5, Lab and app, go to artifacts/layout-*.png.
"""

from __future__ import annotations

import harness
import pytest
from dashboard_page import (
    KERNEL_EXEC,
    PHASES,
    DashboardPage,
    iopub_errors,
    kernel_value,
    listen_iopub,
    one_screen,
    open_tab,
)
from harness import FIRST_RENDER_S, lab_error_outputs, notebook_json, open_in_lab, run_all_cells

pytestmark = pytest.mark.timeout(900)

NOTEBOOK = "layout_1280x720.ipynb"
# the bundled subset: the same page with or without the full data (and no "offline subset" line above the buttons)
CELL = """import torch

from softmax_widgets.app import Dashboard

torch.set_num_threads(1)
dash = Dashboard.from_dataset("fashion-mnist-small", lr=0.1, batch_size=256, seed=0)
dash"""
TYPED = "x = 1 + 1\nx"  # the cell an instructor types below the dashboard: one line and its output
CHECK = """from softmax_widgets.checks import check_softmax

result = check_softmax(lambda X: X.exp() / X.exp().sum(dim=1, keepdim=True))"""  # a check_* printout
MAX_DASHBOARD_PX = 600  # the whole dashboard at scale 1, no tab pane open (552 px; 873 with a pane open before)
# a softmax that raises, typed as an instructor would (keepdim forgotten): the status says the error, the line,
# and the fix (three lines at scale 1, four at 1.5)
RAISING = "dash.trainer.softmax = lambda X: X.exp() / X.exp().sum(dim=1)"
LESSONS = "from softmax_widgets import model\ndash.trainer.softmax = model.softmax"

# Every piece of text in the status, code and math lines: inside every box around it (up to the dashboard) that
# clips, and not ended with "…". A text node's own box (a Range) is what a reader sees of it.
CUT = r"""
() => {
  const d = window.__sw.dashboard();
  const out = [];
  const clips = (el) => { const s = getComputedStyle(el);
                          return s.overflowX !== 'visible' || s.overflowY !== 'visible'; };
  const label = (el) => (typeof el.className === 'string' && el.className ? el.className : el.tagName).slice(0, 40);
  for (const root of d.querySelectorAll('.sw-status, .sw-code, .sw-math')) {
    if (root.offsetParent === null) continue;  // hidden: the code line while the ways out are shown
    for (const el of [root, ...root.querySelectorAll('*')]) {
      const s = getComputedStyle(el);
      if (s.textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth + 1)
        out.push(`"…" in ${label(el)}: ${el.scrollWidth} > ${el.clientWidth} px`);
    }
    const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let t = walk.nextNode(); t; t = walk.nextNode()) {
      if (!t.textContent.trim()) continue;
      const range = document.createRange(); range.selectNodeContents(t);
      const r = range.getBoundingClientRect();
      for (let a = t.parentElement; a && a !== d.parentElement; a = a.parentElement) {
        if (!clips(a)) continue;
        const b = a.getBoundingClientRect();
        if (r.top < b.top - 1 || r.bottom > b.bottom + 1 || r.left < b.left - 1 || r.right > b.right + 1) {
          out.push(`cut by ${label(a)} (overflow ${getComputedStyle(a).overflowY}): text ${Math.round(r.top)}..` +
                   `${Math.round(r.bottom)} in ${Math.round(b.top)}..${Math.round(b.bottom)}: ` +
                   JSON.stringify(t.textContent.trim().slice(-60)));
          break;
        }
      }
    }
  }
  const box = d.querySelector('.sw-status .sw-status-box');
  return {cut: out, status: box ? {scroll: box.scrollHeight, client: box.clientHeight,
                                   overflow: getComputedStyle(box).overflowY} : null};
}
"""
# the dashboard's parts, in px from its top, with the notebook's own scroll box (Lab) or the window (Voila)
PARTS = r"""
() => {
  const d = window.__sw.dashboard(); const top = d.getBoundingClientRect().top;
  const a = window.__sw.viewArea();
  const box = (el) => { const r = el.getBoundingClientRect();
                        return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height}; };
  const parts = {};
  for (const [k, sel] of [['status', '.sw-status'], ['loss', '.sw-loss'], ['acc', '.sw-acc'],
                          ['W', '.sw-w-maps'], ['buttons', '.sw-buttons']]) {
    const el = d.querySelector(sel); parts[k] = el ? box(el) : null; }
  const cells = window.jupyterapp?.shell?.currentWidget?.content?.widgets || [];  // JupyterLab's, none in Voila
  const typed = cells.length > 1 ? box(cells[1].node) : null;
  return {dashboard: box(d), top, parts, typed, area: a, width: innerWidth, height: innerHeight};
}
"""
FONTS = r"""
() => {
  const cells = window.jupyterapp.shell.currentWidget.content.widgets.map(w => w.node);
  const size = (el, sel) => { const e = el.querySelector(sel);
                              return e ? parseFloat(getComputedStyle(e).fontSize) : 0; };
  return cells.map(c => ({code: size(c, '.cm-content'), prompt: size(c, '.jp-InputPrompt'),
                          output: size(c, '.jp-RenderedText pre')}));
}
"""


def _nothing_cut(page, when: str, max_lines_shown: bool = True) -> dict:
    """No status, code or math text cut or ended in "…"; with max_lines_shown the whole status message is in view
    without scrolling (its box's scrollHeight ≤ clientHeight), as it is up to eight lines."""
    page.wait_for_timeout(400)  # the dashboard's push, then a frame
    found = page.evaluate(CUT)
    assert not found["cut"], f"{when}: text cut off: {found['cut'][:4]}"
    s = found["status"]
    assert s is not None and s["overflow"] != "hidden", f"{when}: {s}"
    if max_lines_shown:
        assert s["scroll"] <= s["client"] + 1, f"{when}: the status needs scrolling to be read: {s}"
    return found


def _shot(page, name: str, artifacts) -> None:
    page.evaluate("() => window.__sw.dashboard().scrollIntoView({block: 'start'})")
    page.wait_for_timeout(600)  # bqplot redraws on the next frames after a scroll or resize
    page.screenshot(path=str(artifacts / f"layout-{name}.png"))


def _cells_shot(page, name: str, artifacts) -> None:
    """The cells below the dashboard (the typed one, the check's printout) in view."""
    page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets[2].node"
                  ".scrollIntoView({block: 'end'})")
    page.wait_for_timeout(400)
    page.screenshot(path=str(artifacts / f"layout-{name}.png"))


def _room_to_type(page, name: str, artifacts) -> dict:
    """At scale 1 with the dashboard's top at the notebook's top: its height, and the code cell typed below it
    fitting under the controls, status, curves and W maps on the same screen."""
    _shot(page, name, artifacts)
    m = page.evaluate(PARTS)
    area_h = m["area"]["bottom"] - m["area"]["top"]
    assert m["dashboard"]["height"] <= MAX_DASHBOARD_PX, f"{name}: the dashboard is {m['dashboard']['height']} px"
    ends = max(m["parts"][k]["bottom"] for k in ("status", "loss", "acc", "W")) - m["top"]
    assert m["typed"] is not None
    assert ends + m["typed"]["height"] <= area_h, \
        f"{name}: controls to curves take {ends:.0f} px, the typed cell {m['typed']['height']:.0f} px: more than " \
        f"the notebook's {area_h:.0f} px"
    return {"dashboard": m["dashboard"]["height"], "ends": ends, "cell": m["typed"]["height"], "area": area_h}


def test_lab_at_1280x720_the_status_the_loss_plot_and_the_next_cell_are_on_one_screen(lab, lab_root, browser_page,
                                                                                       artifacts):
    (lab_root / "one_screen.ipynb").write_text(notebook_json([CELL, TYPED]))
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 720})
    open_in_lab(page, lab, "one_screen.ipynb")  # the default layout: the file browser open, scale 1
    run_all_cells(page)
    dash = DashboardPage(page)
    dash.wait_drawn(FIRST_RENDER_S, artifacts / "one-screen-not-rendered.png", lab)
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.content.widgets[1].model.executionCount",
                           timeout=120_000)
    m = one_screen(page, artifacts / "layout-one-screen-1280x720.png")
    print(f"one screen at 1280×720: dashboard {m['dashboard']['bottom'] - m['dashboard']['top']:.0f} px, the next "
          f"cell's first line at {m['line']['top']:.0f}..{m['line']['bottom']:.0f} in {m['area']}")
    # a tab opens its pane below the plots, and a second click on it closes it again
    open_tab(page, "evaluation")
    dash.wait_for("() => window.__sw.dashboard().querySelector('.sw-panes').offsetParent !== null", 30)
    page.locator(".sw-views .sw-tab", has_text="evaluation").first.click()
    dash.wait_for("() => window.__sw.dashboard().querySelector('.sw-panes').offsetParent === null", 30)
    one_screen(page)
    assert not lab_error_outputs(page)


def _raise_in_softmax(page, dash: DashboardPage) -> dict:
    """A student's softmax that raises (no keepdim), swapped in; the forward that runs it: the message, where, and
    the fix."""
    assert page.evaluate(KERNEL_EXEC, RAISING) == "ok"
    state = dash.state()
    if kernel_value(page, "dash.trainer.next_phase.value") == "'next_batch'":
        state = dash.click_and_wait_status("next_batch", state["status"])
    state = dash.click_and_wait_status("forward", state["status"])
    assert "row sums do not line up with its rows" in state["status"] and RAISING in state["status"] and \
        "trainer.use_lesson('softmax')" in state["status"], state
    return state


def test_lab_status_code_and_math_never_cut_dashboard_leaves_room_and_a_plus_scales_the_cells(
        lab, lab_root, browser_page, artifacts):
    (lab_root / NOTEBOOK).write_text(notebook_json([CELL, TYPED, CHECK]))
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 720})
    open_in_lab(page, lab, NOTEBOOK)  # the default layout: the file browser open
    run_all_cells(page)
    dash = DashboardPage(page)
    dash.wait_drawn(FIRST_RENDER_S, artifacts / "layout-not-rendered.png", lab)
    listen_iopub(page)
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.content.widgets[2].model.executionCount",
                           timeout=120_000)

    # scale 1: the dashboard and the typed cell on one screen, at 1280×720 and 1366×768
    room = {"1280x720": _room_to_type(page, "lab-1280x720-scale1", artifacts)}
    page.set_viewport_size({"width": 1366, "height": 768})
    room["1366x768"] = _room_to_type(page, "lab-1366x768-scale1", artifacts)
    page.set_viewport_size({"width": 1280, "height": 720})
    print(f"layout at scale 1: {room}")

    # every phase's code and math line, whole
    state = dash.state()
    for phase in PHASES:
        state = dash.click_and_wait_status(phase, state["status"])
        _nothing_cut(page, f"scale 1, {phase}")

    # a long error and its fix, whole, at scale 1
    _raise_in_softmax(page, dash)
    _nothing_cut(page, "scale 1, a raising softmax")
    _shot(page, "lab-1280x720-scale1-error", artifacts)
    assert page.evaluate(KERNEL_EXEC, LESSONS) == "ok"

    # a divergence's details: all of its lines in view
    box = page.locator(".sw-lr-text input")
    box.fill("50")
    box.press("Enter")
    dash.wait_for("() => window.__sw.statusText() === 'learning rate set to 50'")
    state = dash.state()
    for _ in range(10):
        state = dash.click_and_wait_status("Iteration", state["status"])
        if "Ways out" in state["status"]:
            break
    assert "Ways out" in state["status"], state
    dash.click("details")
    dash.wait_for("() => window.__sw.statusText().includes('rows')")
    found = _nothing_cut(page, "scale 1, details")
    _shot(page, "lab-1280x720-scale1-details", artifacts)
    dash.click("details")
    dash.click("Reset")
    dash.wait_for("() => window.__sw.statusText().startsWith('reset')")
    box.fill("0.1")
    box.press("Enter")
    dash.wait_for("() => window.__sw.statusText() === 'learning rate set to 0.1'")

    # the lecture: the file browser collapsed, A+ for the notebook's cells too (asked from code), then A+
    fonts = page.evaluate(FONTS)
    assert fonts[1]["code"] == 13 and fonts[2]["output"] == 13, fonts  # JupyterLab's own 13 px
    assert page.evaluate(KERNEL_EXEC, "dash.scale_notebook = True") == "ok"
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    status = dash.state()["status"]
    dash.click("A+")
    dash.wait_for("(s) => window.__sw.statusText() !== s && window.__sw.statusText().startsWith('presentation')",
                  30, status)
    page.wait_for_timeout(1000)
    fonts = page.evaluate(FONTS)
    # the typed cell and the check's printout ×1.5; the dashboard's own cell keeps its prompt (and so its width)
    assert fonts[1]["code"] == fonts[1]["prompt"] == 19.5 and fonts[2]["code"] == fonts[2]["output"] == 19.5, fonts
    assert fonts[0]["code"] == 13, fonts
    _cells_shot(page, "lab-1280x720-scale1.5-cells", artifacts)
    state = dash.state()
    for phase in PHASES:  # every phase's code and math line at 1.5: wrapped, never cut
        state = dash.click_and_wait_status(phase, state["status"])
        _nothing_cut(page, f"scale 1.5, {phase}")
        if phase == "forward":
            _shot(page, "lab-1280x720-scale1.5", artifacts)
    _raise_in_softmax(page, dash)
    _nothing_cut(page, "scale 1.5, a raising softmax")
    _shot(page, "lab-1280x720-scale1.5-error", artifacts)
    page.set_viewport_size({"width": 1366, "height": 768})
    _nothing_cut(page, "scale 1.5 at 1366×768, a raising softmax")
    _shot(page, "lab-1366x768-scale1.5-error", artifacts)
    page.set_viewport_size({"width": 1280, "height": 720})
    assert page.evaluate(KERNEL_EXEC, LESSONS) == "ok"

    # A+ released: the cells back to JupyterLab's size
    status = dash.state()["status"]
    dash.click("A+")
    dash.wait_for("(s) => window.__sw.statusText().startsWith('normal size')", 30, status)
    page.wait_for_timeout(500)
    fonts = page.evaluate(FONTS)
    assert fonts[1]["code"] == 13 and fonts[2]["output"] == 13, fonts
    _cells_shot(page, "lab-1280x720-scale1-cells", artifacts)
    assert not iopub_errors(page), iopub_errors(page)[:3]
    assert not lab_error_outputs(page), lab_error_outputs(page)
    print(f"details at scale 1: {found['status']}")


def _both_curves_on_screen(page, name: str, artifacts) -> dict:
    _shot(page, name, artifacts)
    m = page.evaluate(PARTS)
    for k in ("loss", "acc", "W", "status", "buttons"):
        r = m["parts"][k]
        assert r["top"] >= -1 and r["bottom"] <= m["height"] + 1 and r["left"] >= -1 and r["right"] <= m["width"] + 1, \
            f"{name}: the {k} is not inside the {m['width']}×{m['height']} window: {r}"
    return {k: (round(m["parts"][k]["top"]), round(m["parts"][k]["bottom"])) for k in ("loss", "acc", "W")}


def test_voila_app_at_1_5_shows_both_curves_on_a_1280x720_screen(tmp_path, browser_page, artifacts, monkeypatch):
    """`softmax-widgets app --state lesson.pt --scale 1.5` at 1280×720: the loss and accuracy curves side by side
    beside the W maps, all of them inside the window (the accuracy curve was half below it, 190 px stayed empty on
    the right); the same at 1366×768; then A+ released (scale 1)."""
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 720})
    with harness.app_on_a_saved_lesson(tmp_path, monkeypatch) as voila:
        page.goto(voila.url + "/", timeout=FIRST_RENDER_S * 1000)
        dash = DashboardPage(page)
        dash.wait_drawn(FIRST_RENDER_S, artifacts / "layout-app-not-rendered.png", voila)
        page.wait_for_timeout(1500)
        seen = {"1280x720": _both_curves_on_screen(page, "app-1280x720-scale1.5", artifacts)}
        _nothing_cut(page, "app at 1.5")
        state = dash.click_and_wait_status("forward", dash.state()["status"])
        _nothing_cut(page, "app at 1.5, forward")
        page.set_viewport_size({"width": 1366, "height": 768})
        seen["1366x768"] = _both_curves_on_screen(page, "app-1366x768-scale1.5", artifacts)
        dash.click("A+")
        dash.wait_for("(s) => window.__sw.statusText().startsWith('normal size')", 30, state["status"])
        page.wait_for_timeout(1000)
        seen["1366x768 scale 1"] = _both_curves_on_screen(page, "app-1366x768-scale1", artifacts)
        page.set_viewport_size({"width": 1280, "height": 720})
        seen["1280x720 scale 1"] = _both_curves_on_screen(page, "app-1280x720-scale1", artifacts)
        print(f"app: loss, accuracy and W maps (top, bottom): {seen}")
        assert "Traceback" not in page.inner_text("body")
