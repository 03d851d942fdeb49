"""The presentation scale in real Chromium: JupyterLab at 1280×720 (a projector) with the file browser collapsed,
a dashboard made with `Dashboard(..., scale=1.5)`, its A+ toggle, then browser zoom at 125 % and 150 %.

Browser zoom at Z % on a 1280×720 screen lays the page out in a (1280/Z)×(720/Z) CSS-pixel viewport: that is what
set_viewport_size gives here (only the sharpness of the pixels differs)."""

from __future__ import annotations

import harness
import pytest
from dashboard_page import (
    PHASES,
    DashboardPage,
    iopub_errors,
    kernel_value,
    layout,
    listen_iopub,
    open_tab,
    shift_enter_runs_the_cell_below,
)
from harness import FIRST_RENDER_S, lab_error_outputs, notebook_json, open_in_lab, run_all_cells

pytestmark = pytest.mark.timeout(900)

NOTEBOOK = "presentation_1280x720.ipynb"
# the bundled Fashion-MNIST subset (the same images and classes): the same page with or without the full data, and
# no "offline subset" note above the buttons (a fresh clone's first run shows one: it costs that run a line)
CELL = """import torch

from softmax_widgets.app import Dashboard

torch.set_num_threads(1)
dash = Dashboard.from_dataset("fashion-mnist-small", lr=0.1, batch_size=256, seed=0, scale=1.5)
dash"""
NEXT_CELL = "ran_by_shift_enter = dash.trainer.iteration"  # the cell below the dashboard
MIN_TRACK_PX = 120  # a slider track a student can drag
ZOOMS = {125: (1024, 576), 150: (853, 480)}  # CSS pixels of a 1280×720 screen at that browser zoom
# every control a student uses: reachable (the point at its centre is the control itself) at any zoom
CONTROLS = ["next_batch", "forward", "zero_grad", "backward", "sgd", "Step", "Iteration", "Run epoch", "▶ Play",
            "↶ undo", "Reset", "New seed", "A+", "keep run"]
BOXES = [".sw-lr-text input", ".sw-seed input", ".sw-lr .noUi-handle", ".sw-speed .noUi-handle"]

# bqplot draws each figure from its own measured box: a figure that measured itself zoomed would draw its plot
# area past its box (clipped); each plot area in view must sit inside its figure. (bqplot redraws a figure only
# while it is in view: one scrolled away catches up when it comes back, so only those in view are checked)
FIGURES_FIT = r"""
() => {
  const dash = window.__sw.dashboard();
  const area = window.__sw.viewArea();
  return Array.from(dash.querySelectorAll('.bqplot')).filter(f => {
    const r = f.getBoundingClientRect();
    return f.offsetParent !== null && r.bottom > area.top && r.top < area.bottom && r.right > area.left
           && r.left < area.right; })
  .map(f => { const r = f.getBoundingClientRect(); const bg = f.querySelector('.plotarea_background');
              const b = bg ? bg.getBoundingClientRect() : r;
              return {cls: f.className.split(' ').filter(c => c.startsWith('sw-')).join(' '),
                      fits: b.width > 4 && b.left >= r.left - 1 && b.right <= r.right + 1 && b.top >= r.top - 1
                            && b.bottom <= r.bottom + 1,
                      fig: [r.width, r.height], plot: [b.width, b.height]}; });
}
"""
REACHABLE = r"""
([labels, selectors]) => {
  const hit = (el) => { if (!el) return false; const r = el.getBoundingClientRect();
                        if (r.width < 8 || r.height < 8) return false;
                        const e = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                        return !!e && (el === e || el.contains(e) || e.contains(el)); };
  const out = [];
  for (const l of labels) { const b = window.__sw.button(l); if (!b) { out.push(l + ' (missing)'); continue; }
                            b.scrollIntoView({block: 'center'}); if (!hit(b)) out.push(l); }
  for (const s of selectors) { const el = document.querySelector('.sw-dashboard ' + s);
                               if (!el) { out.push(s + ' (missing)'); continue; }
                               el.scrollIntoView({block: 'center'}); if (!hit(el)) out.push(s); }
  return out;
}
"""


def _one_screen(page, name: str, artifacts) -> dict:
    """The one-screen rule with the dashboard's top at the notebook's top, and slider tracks a hand can drag."""
    found = layout(page)
    page.screenshot(path=str(artifacts / f"{name}.png"))
    assert not found["hidden"], f"{name}: out of view {found['hidden']} in {found['area']}"
    for k, width in found["tracks"].items():
        assert width >= MIN_TRACK_PX, f"{name}: the {k} slider track is {width:.0f} px wide"
    return found


def _figures_fit(page, name: str) -> None:
    page.wait_for_timeout(500)  # bqplot redraws on the next animation frame after a resize
    figures = page.evaluate(FIGURES_FIT)
    assert figures, f"{name}: no figure on the page"
    bad = [f for f in figures if not f["fits"]]
    assert not bad, f"{name}: figures drawn past their box (measured zoomed): {bad[:3]}"


def _keys_after_a_click(dash: DashboardPage) -> None:
    """After a click on the dashboard, s steps and u takes it back."""
    before = dash.state()
    stepped = dash.press_key("s", before["status"])
    assert stepped["status"] != before["status"] and "rgb(192, 0, 0)" not in stepped["color"], stepped
    undone = dash.press_key("u", stepped["status"], arm=False)
    assert undone["status"].startswith("undo"), undone


def _click_then_shift_enter_runs_the_next_cell(dash: DashboardPage, page) -> None:
    """A click on Step leaves the mouse (and the focus) on the dashboard; Shift-Enter must run the cell below,
    never the dashboard's own cell again (that made a new Trainer: the run was lost). Typing into the lr box
    stays the box's ("0.005": two zeros would be JupyterLab's restart-kernel shortcut)."""
    count = "() => window.jupyterapp.shell.currentWidget.content.widgets[0].model.executionCount"
    ran = page.evaluate(count)
    page.evaluate("() => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = 1;"
                  " nb.mode = 'command'; }")
    before = dash.state()
    dash.click("Step")
    dash.wait_for("(s) => window.__sw.statusText() !== s", 30, before["status"])
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.content.activeCellIndex") == 1, \
        "a click on the dashboard made its cell the active one"
    shift_enter_runs_the_cell_below(page)
    assert page.evaluate(count) == ran, "Shift-Enter after a click re-ran the dashboard's cell: the run was lost"
    assert kernel_value(page, "dash.trainer.batches_drawn") == "1", "the run was replaced"
    box = page.locator(".sw-lr-text input")
    box.fill("0.005")
    box.press("Enter")
    dash.wait_for("() => window.__sw.statusText() === 'learning rate set to 0.005'")
    assert kernel_value(page, "dash.trainer.lr") == "0.005"
    assert not page.locator(".jp-Dialog").count(), "typing in the lr box reached JupyterLab's shortcuts"
    box.fill("0.1")
    box.press("Enter")
    dash.wait_for("() => window.__sw.statusText() === 'learning rate set to 0.1'")
    # a click on the next cell's prompt gives the keyboard back to the notebook; then the mouse resting on the
    # plots takes nothing (hovering never takes the focus): JupyterLab's b inserts a cell, dd deletes it
    cells = "() => window.jupyterapp.shell.currentWidget.content.widgets.length"
    n = page.evaluate(cells)
    page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-InputPrompt").click()
    page.locator(".sw-dashboard .sw-keys").first.hover()
    page.wait_for_timeout(300)
    assert not dash.keys_armed(), "hovering armed the dashboard's keys"
    page.keyboard.press("b")  # a cell below the active one
    dash.wait_for(f"() => window.jupyterapp.shell.currentWidget.content.widgets.length === {n + 1}", 10)
    page.keyboard.press("d")
    page.keyboard.press("d")  # and deleted again
    dash.wait_for(f"() => window.jupyterapp.shell.currentWidget.content.widgets.length === {n}", 10)
    # after a click on Step the dashboard has the keys, wherever the mouse goes (up over the notebook's toolbar):
    # b and d are named as doing nothing there, no cell comes or goes; Escape gives the keyboard back
    before = dash.state()
    dash.click("Step")
    dash.wait_for("(s) => window.__sw.statusText() !== s", 30, before["status"])
    page.mouse.move(640, 75, steps=4)
    page.wait_for_timeout(300)
    assert dash.keys_armed()
    for key in "bdd":
        page.keyboard.press(key)
    dash.wait_for("() => document.querySelector('.sw-keys-help').textContent.includes(\"'d' does nothing\")")
    assert page.evaluate(cells) == n, "a letter typed while the dashboard had the keys reached JupyterLab"
    page.keyboard.press("Escape")
    dash.wait_for("() => !window.__sw.dashboard().classList.contains('sw-keys-armed')", 10)
    page.keyboard.press("b")
    dash.wait_for(f"() => window.jupyterapp.shell.currentWidget.content.widgets.length === {n + 1}", 10)
    page.keyboard.press("d")
    page.keyboard.press("d")
    dash.wait_for(f"() => window.jupyterapp.shell.currentWidget.content.widgets.length === {n}", 10)
    # Ctrl-S while the dashboard has the keys saves the notebook (a key with Ctrl is never the dashboard's), and
    # the keys stay armed (JupyterLab focuses the active cell after saving: the dashboard takes the focus back), so
    # s right after steps
    dirty = "() => window.jupyterapp.shell.currentWidget.context.model.dirty"
    assert page.evaluate(dirty), "the notebook should have unsaved changes here"
    dash.arm_keys()
    before = dash.state()
    page.keyboard.press("Control+s")
    dash.wait_for(f"() => !({dirty})()", 30)
    page.wait_for_timeout(500)
    assert dash.state()["status"] == before["status"], "Ctrl-S was taken as s"
    assert dash.keys_armed(), "saving took the keys from the dashboard"
    stepped = dash.press_key("s", before["status"], arm=False)
    assert stepped["iteration"] == before["iteration"] and stepped["status"] != before["status"], stepped


def _scale_of(page) -> str:
    return page.evaluate("() => Array.from(window.__sw.dashboard().classList).filter(c => c.startsWith('sw-scale'))"
                         ".join(' ')")


def test_lab_projector_at_scale_1_5_toggle_and_browser_zoom(lab, lab_root, browser_page, artifacts):
    (lab_root / NOTEBOOK).write_text(notebook_json([CELL, NEXT_CELL]))
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 720})
    open_in_lab(page, lab, NOTEBOOK)
    page.evaluate("() => { if (!window.jupyterapp.shell.leftCollapsed) window.jupyterapp.shell.collapseLeft(); }")
    run_all_cells(page)
    dash = DashboardPage(page)
    dash.wait_drawn(FIRST_RENDER_S, artifacts / "presentation-not-rendered.png", lab)
    # from here on: the kernel's own start can log "No such comm target registered: jupyter.widget.control" when
    # JupyterLab asks for widgets before the first cell imported ipywidgets (a race, not the dashboard's doing)
    listen_iopub(page)
    assert page.evaluate("() => window.jupyterapp.shell.leftCollapsed") is True
    assert _scale_of(page) == "sw-scale-150"

    # everything ×1.5: a button 42 px high (28 at normal size), the status text 19.5 px, a W map 112 px wide
    sizes = page.evaluate("() => { const d = window.__sw.dashboard(); const z = parseFloat(getComputedStyle(d).zoom);"
                          " return {zoom: z, button: window.__sw.button('next_batch').getBoundingClientRect().height,"
                          " status: parseFloat(getComputedStyle(window.__sw.statusLine()).fontSize) * z,"
                          " w: d.querySelector('.sw-weights').getBoundingClientRect().width}; }")
    assert sizes["zoom"] == 1.5 and sizes["button"] >= 40 and sizes["status"] >= 19 and sizes["w"] >= 110, sizes
    _one_screen(page, "presentation-1280x720-scale1.5-start", artifacts)
    _figures_fit(page, "start")
    _click_then_shift_enter_runs_the_next_cell(dash, page)
    _keys_after_a_click(dash)
    dash.press_key("u", dash.state()["status"])  # back to iteration 0, before next_batch

    # the lesson's five clicks, then an epoch: W looks like clothing, the status and counter are long
    state = dash.state()
    assert state["iteration"] == 0 and state["status"].startswith("undo"), state
    for phase in PHASES:
        state = dash.click_and_wait_status(phase, state["status"])
        assert state["status"].startswith(phase), state
    dash.click("Run epoch")
    dash.wait_for("() => window.__sw.statusText().startsWith('epoch 1 done')", 240)
    found = _one_screen(page, "presentation-1280x720-scale1.5-epoch", artifacts)
    _figures_fit(page, "after an epoch")
    # a tab opened at 1.5: its figures measure themselves there (a relayout inside the zoom)
    open_tab(page, "evaluation")
    dash.wait_for("() => !!document.querySelector('.sw-confusion .plotarea_background')", 60)
    page.locator(".sw-confusion").first.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)
    _figures_fit(page, "evaluation tab")
    assert any(f["cls"] == "sw-confusion" for f in page.evaluate(FIGURES_FIT))
    page.screenshot(path=str(artifacts / "presentation-1280x720-scale1.5-evaluation.png"))

    # A+ released: the normal size, still one screen; pressed again: 1.5 again
    status = dash.state()["status"]
    dash.click("A+")
    dash.wait_for("(s) => window.__sw.statusText() !== s", 30, status)
    assert dash.state()["status"].startswith("normal size"), dash.state()
    dash.wait_for("() => !window.__sw.dashboard().className.includes('sw-scale-')")
    page.wait_for_timeout(1000)
    _one_screen(page, "presentation-1280x720-toggled-normal", artifacts)
    _figures_fit(page, "normal size")
    status = dash.state()["status"]
    dash.click("A+")
    dash.wait_for("(s) => window.__sw.statusText().startsWith('presentation size ×1.5')", 30, status)
    page.wait_for_timeout(1000)
    assert _scale_of(page) == "sw-scale-150"
    _one_screen(page, "presentation-1280x720-toggled-back", artifacts)
    _figures_fit(page, "toggled back")

    # browser zoom 125 % at normal size (a student's laptop zoomed): one screen too, with the file browser collapsed
    dash.click("A+")
    dash.wait_for("() => window.__sw.statusText().startsWith('normal size')")
    w, h = ZOOMS[125]
    page.set_viewport_size({"width": w, "height": h})
    page.wait_for_timeout(1500)
    _one_screen(page, "zoom125-1024x576", artifacts)
    _figures_fit(page, "zoom 125 %")
    _keys_after_a_click(dash)
    assert not page.evaluate(REACHABLE, [CONTROLS, BOXES])

    # browser zoom 150 %: the rows wrap; every control reachable, tracks still draggable, keys over a button
    w, h = ZOOMS[150]
    page.set_viewport_size({"width": w, "height": h})
    page.wait_for_timeout(1500)
    unreachable = page.evaluate(REACHABLE, [CONTROLS, BOXES])
    page.screenshot(path=str(artifacts / "zoom150-853x480.png"))
    assert not unreachable, f"at 150 % zoom these cannot be reached: {unreachable}"
    tracks = layout(page)["tracks"]
    assert min(tracks.values()) >= MIN_TRACK_PX, tracks
    _figures_fit(page, "zoom 150 %")
    _keys_after_a_click(dash)

    errors = iopub_errors(page)
    assert not errors, f"the kernel wrote errors: {errors[:3]}"
    assert not lab_error_outputs(page), lab_error_outputs(page)
    print(f"presentation: one-screen area {found['area']}, tracks {found['tracks']}")


def test_voila_app_in_class_state_and_scale_fit_the_projector(tmp_path, browser_page, artifacts, monkeypatch):
    """`softmax-widgets app --state lesson.pt --scale 1.5` (the README's in-class command) at 1280×720: the run
    continues where it was saved, what was loaded is said on the status line, and the one-screen set fits."""
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 720})
    with harness.app_on_a_saved_lesson(tmp_path, monkeypatch) as voila:
        page.goto(voila.url + "/", timeout=FIRST_RENDER_S * 1000)
        dash = DashboardPage(page)
        dash.wait_drawn(FIRST_RENDER_S, artifacts / "app-scale1.5-not-rendered.png", voila)
        assert _scale_of(page) == "sw-scale-150"
        status = dash.state()["status"]
        assert status == "loaded lesson.pt: epoch 1, iteration 10. Press forward (the lit button) or Step to go on.", \
            status
        _one_screen(page, "app-1280x720-scale1.5-state", artifacts)
        _figures_fit(page, "app")
        stepped = dash.press_key("s", status)
        assert stepped["status"].startswith("forward"), stepped
        assert "Traceback" not in page.inner_text("body")
