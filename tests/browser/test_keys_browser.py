"""The keyboard is the instructor's (issue 18): real JupyterLab at 1280×720 with notebook 03, real Chromium.

The dashboard's keys (→/s step, Space play/pause, u undo, r reset) act only after a click on the dashboard and stop
once a cell is clicked; hovering takes nothing; a focused slider keeps its arrows. What moved is measured in the
kernel (the Trainer's iteration and phase, the slider's value), never read from prose.

The tests share one page (opening Lab and loading the data takes minutes on 2 cores); each one makes its own
starting point (where the focus is, where the mouse rests) and asserts only what it did.
"""

from __future__ import annotations

import ast

import harness
import pytest
from dashboard_page import DashboardPage, kernel_value
from harness import FIRST_RENDER_S, lab_error_outputs, open_in_lab

pytestmark = pytest.mark.timeout(900)

NOTEBOOK = "03_instructor_live_coding.ipynb"
DASH_CELL, SOFTMAX_CELL = 1, 3  # notebook 03: the dashboard (`dash`, `trainer`), then `my_softmax`
TYPED = "trainer.softmax = my_softmax"
# where the run stands, as the kernel has it: nothing a key could do leaves this the same
WHERE = "(dash.trainer.iteration, str(dash.trainer.next_phase), dash.trainer.batches_drawn, dash.is_playing)"
NB = "window.jupyterapp.shell.currentWidget.content"


@pytest.fixture(scope="module")
def lab03(lab, lab_root, playwright_browser, artifacts):
    """Notebook 03 at 1280×720: its dashboard cell and my_softmax's cell run, a few iterations done, the dashboard
    cell's code collapsed, a new empty code cell above it (where the instructor types, the plots below it)."""
    if not (lab_root / NOTEBOOK).exists():
        pytest.fail(f"examples/{NOTEBOOK} is missing: `softmax-widgets lab` copies it, and this test opens it")
    network, console = harness.Network(), []
    context, page = harness.new_page(playwright_browser, network, console, width=1280, height=720)
    page.set_default_timeout(60_000)
    try:
        open_in_lab(page, lab, NOTEBOOK)
        for index in (DASH_CELL, SOFTMAX_CELL):
            page.evaluate(f"() => {{ {NB}.activeCellIndex = {index}; }}")
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-cell')")
        dash = DashboardPage(page)
        dash.wait_drawn(FIRST_RENDER_S, artifacts / "keys-not-rendered.png", lab)
        for _ in range(300):
            if kernel_value(page, "'my_softmax' in globals()") == "True":
                break
            page.wait_for_timeout(200)
        assert kernel_value(page, "dash.run_for(3)") == "3"  # a run under way: iteration 3, next_batch lit
        # a new code cell above the dashboard's, whose code is hidden (View > Collapse Selected Code), scrolled to
        # the top: the loss plot shows below it
        page.evaluate(f"() => {{ {NB}.activeCellIndex = {DASH_CELL}; {NB}.mode = 'command'; }}")
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:hide-cell-code')")
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:insert-cell-above')")
        page.evaluate(f"() => {NB}.activeCell.node.scrollIntoView({{block: 'start'}})")
        page.wait_for_timeout(500)
        yield page, dash
    finally:
        (artifacts / "keys-1280x720.console.txt").write_text("\n".join(console))
        context.close()


def where(page) -> tuple:
    """(iteration, next phase, batches drawn, playing) in the kernel."""
    return ast.literal_eval(kernel_value(page, WHERE))


def cell_editor(page):
    """The typing cell's editor (the empty code cell above the dashboard)."""
    return page.locator(".jp-Notebook .jp-Cell").nth(DASH_CELL).locator(".cm-content")


def cell_source(page) -> str:
    return page.evaluate(f"() => {NB}.widgets[{DASH_CELL}].model.sharedModel.getSource()")


def clear_cell(page) -> None:
    page.evaluate(f"() => {NB}.widgets[{DASH_CELL}].model.sharedModel.setSource('')")


def rest_mouse_on(page, css: str) -> None:
    """Move the mouse off the dashboard, then onto the middle of `css` in small steps (a hand, not a jump)."""
    box = page.locator(f".sw-dashboard {css}").first.bounding_box()
    page.mouse.move(640, 8)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=8)
    page.wait_for_timeout(400)


def armed(page) -> bool:
    return page.evaluate("() => window.__sw.dashboard().classList.contains('sw-keys-armed')")


def keys_line(page) -> str:
    """The keys line as the page shows it (the sentence that is displayed, not the one hidden by CSS)."""
    return page.evaluate("() => document.querySelector('.sw-keys-help').innerText.trim()")


def bring_loss_into_view(page) -> None:
    """The typing cell at the top, the loss plot below it (both on the 720 px screen)."""
    page.evaluate(f"() => {NB}.widgets[{DASH_CELL}].node.scrollIntoView({{block: 'start'}})")
    page.wait_for_timeout(300)
    box = page.locator(".sw-dashboard .sw-loss").first.bounding_box()
    cell = cell_editor(page).bounding_box()
    assert box and box["y"] + box["height"] / 2 < 700, f"the loss plot is off screen: {box}"
    assert cell and cell["y"] > 90, f"the typing cell is off screen: {cell}"


def test_typing_in_a_cell_with_the_mouse_over_the_loss_plot_reaches_the_cell(lab03, artifacts):
    """The instructor's cursor is in a code cell, the mouse rests on the loss plot: every letter goes to the cell
    (on main, ipyevents focused the dashboard on mouseenter: `r` reset, `s` stepped, Space played)."""
    page, _ = lab03
    clear_cell(page)
    bring_loss_into_view(page)
    before = where(page)
    cell_editor(page).click()
    rest_mouse_on(page, ".sw-loss")
    page.keyboard.type(TYPED, delay=30)
    page.wait_for_timeout(800)  # a key the dashboard took would have reached the kernel by now
    page.screenshot(path=str(artifacts / "keys-1280x720-typing-over-the-plot.png"))
    assert cell_source(page) == TYPED, f"the cell got {cell_source(page)!r}"
    assert where(page) == before, f"typing in the cell moved the run: {before} -> {where(page)}"
    assert not armed(page), "hovering armed the dashboard's keys"
    line = page.locator(".sw-dashboard .sw-keys-help").first
    line.screenshot(path=str(artifacts / "keys-line-not-armed.png"))
    assert keys_line(page).startswith("click the dashboard to use its keys"), keys_line(page)
    # and Shift-Enter, the mouse still there, runs that cell: the trainer uses the student's softmax
    page.keyboard.press("Shift+Enter")
    for _ in range(100):
        if kernel_value(page, "trainer.softmax is my_softmax") == "True":
            break
        page.wait_for_timeout(200)
    assert kernel_value(page, "trainer.softmax is my_softmax") == "True"
    assert where(page) == before
    assert not lab_error_outputs(page), lab_error_outputs(page)


def test_after_a_click_on_the_dashboard_the_arrow_and_s_step(lab03, artifacts):
    page, dash = lab03
    bring_loss_into_view(page)
    before_text = keys_line(page)
    assert "click the dashboard" in before_text, before_text
    page.locator(".sw-dashboard .sw-loss").first.click()  # a deliberate click on the plot
    dash.wait_for("() => window.__sw.dashboard().classList.contains('sw-keys-armed')", 10)
    assert keys_line(page).startswith("keys on:"), keys_line(page)
    _, phase, drawn, _ = where(page)
    page.keyboard.press("ArrowRight")
    for _ in range(50):
        if where(page)[1] != phase:
            break
        page.wait_for_timeout(100)
    after = where(page)
    assert after[1] != phase and after[2] == drawn + (phase == "next_batch"), f"→ did not step: {phase} -> {after}"
    page.keyboard.press("s")
    for _ in range(50):
        if where(page)[1] != after[1]:
            break
        page.wait_for_timeout(100)
    stepped = where(page)
    assert stepped[1] != after[1], f"s did not step: {after} -> {stepped}"
    assert not stepped[3], "a step key started Play"
    page.screenshot(path=str(artifacts / "keys-1280x720-armed-after-a-click.png"))
    # the keys line under the tabs says they are on, and how to give them back
    line = page.locator(".sw-dashboard .sw-keys-help").first
    line.scroll_into_view_if_needed()
    line.screenshot(path=str(artifacts / "keys-line-armed.png"))
    assert keys_line(page).startswith("keys on:") and "Escape" in keys_line(page), keys_line(page)
    bring_loss_into_view(page)
    # Space plays and pauses; u takes back the step
    page.keyboard.press(" ")
    dash.wait_for("() => !!window.__sw.button('‖ Pause')", 10)
    page.keyboard.press(" ")
    dash.wait_for("() => !!window.__sw.button('▶ Play')", 30)
    page.wait_for_timeout(500)
    assert kernel_value(page, "dash.is_playing") == "False"
    # after a click on Play the button has the focus: Space pauses once (the button is not clicked by it as well)
    dash.click("▶ Play")
    dash.wait_for("() => !!window.__sw.button('‖ Pause')", 10)
    assert armed(page)
    page.keyboard.press(" ")
    dash.wait_for("() => !!window.__sw.button('▶ Play')", 30)
    page.wait_for_timeout(1000)
    assert kernel_value(page, "dash.is_playing") == "False", "Space on the focused Play button toggled twice"
    undo_from = where(page)
    page.keyboard.press("u")
    for _ in range(50):
        if where(page) != undo_from:
            break
        page.wait_for_timeout(100)
    assert where(page) != undo_from, "u did not undo"


def test_after_a_click_in_a_cell_the_keys_go_to_the_cell_again(lab03, artifacts):
    """Click the dashboard (keys armed), then click back into the code cell and point at the plot again while
    typing: the text is the cell's and the run stays where it was. Escape, too, gives the keyboard back."""
    page, dash = lab03
    clear_cell(page)
    bring_loss_into_view(page)
    page.locator(".sw-dashboard .sw-loss").first.click()
    page.wait_for_timeout(300)
    before = where(page)
    cell_editor(page).click()
    rest_mouse_on(page, ".sw-loss")
    page.keyboard.type("s = 'ru' ", delay=30)
    page.wait_for_timeout(800)
    page.screenshot(path=str(artifacts / "keys-1280x720-back-in-the-cell.png"))
    assert cell_source(page) == "s = 'ru' ", f"the cell got {cell_source(page)!r}"
    assert where(page) == before, f"keys typed in the cell moved the run: {before} -> {where(page)}"
    assert not armed(page) and "click the dashboard" in keys_line(page), keys_line(page)
    # Escape after a click on the dashboard: the notebook has the keyboard (b inserts a cell, dd deletes it)
    cells = f"() => {NB}.widgets.length"
    n = page.evaluate(cells)
    page.locator(".sw-dashboard .sw-loss").first.click()
    dash.wait_for("() => window.__sw.dashboard().classList.contains('sw-keys-armed')", 10)
    page.keyboard.press("Escape")
    dash.wait_for("() => !window.__sw.dashboard().classList.contains('sw-keys-armed')", 10)
    page.keyboard.press("b")
    dash.wait_for(f"() => ({cells})() === {n + 1}", 10)
    page.keyboard.press("d")
    page.keyboard.press("d")
    dash.wait_for(f"() => ({cells})() === {n}", 10)
    assert where(page) == before
    clear_cell(page)


def test_a_focused_slider_keeps_its_arrow_keys(lab03, artifacts):
    """The speed slider focused, the mouse resting on Play: → moves the slider one stop and does not step (on main
    it made Steps and stopped Play)."""
    page, dash = lab03
    page.evaluate("() => window.__sw.dashboard().scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    handle = page.locator(".sw-dashboard .sw-speed .noUi-handle").first
    handle.click()  # a click on the knob, without dragging it
    assert page.evaluate("() => !!document.activeElement.closest('.sw-speed')"), "the click did not focus the slider"
    speed = kernel_value(page, "dash.controls.speed.value")
    rest_mouse_on(page, "button:has-text('Play')")
    before = where(page)
    page.keyboard.press("ArrowRight")
    for _ in range(50):
        if kernel_value(page, "dash.controls.speed.value") != speed:
            break
        page.wait_for_timeout(100)
    page.screenshot(path=str(artifacts / "keys-1280x720-slider-focused.png"))
    order = ast.literal_eval(kernel_value(page, "list(dash.controls.speed.options)"))
    moved = kernel_value(page, "dash.controls.speed.value")
    want = order[order.index(ast.literal_eval(speed)) + 1]
    assert ast.literal_eval(moved) == want, f"→ did not move the slider one stop: {speed} -> {moved}"
    assert where(page) == before, f"→ on the focused slider moved the run: {before} -> {where(page)}"
    assert not armed(page), "a focused slider showed the keys as armed"
    page.keyboard.press("ArrowLeft")  # and back
    for _ in range(50):
        if kernel_value(page, "dash.controls.speed.value") == speed:
            break
        page.wait_for_timeout(100)
    assert kernel_value(page, "dash.controls.speed.value") == speed
    assert where(page) == before
    # the student's case: Play running, then a click on the speed knob and → while the mouse rests on Play: the
    # speed goes up one stop and Play goes on (on main → made Steps, and a Step stops Play)
    dash.click("▶ Play")
    dash.wait_for("() => !!window.__sw.button('‖ Pause')", 10)
    handle.click()
    rest_mouse_on(page, "button:has-text('Pause')")
    page.keyboard.press("ArrowRight")
    for _ in range(50):
        if kernel_value(page, "dash.controls.speed.value") != speed:
            break
        page.wait_for_timeout(100)
    assert ast.literal_eval(kernel_value(page, "dash.controls.speed.value")) == want
    page.wait_for_timeout(500)
    assert kernel_value(page, "dash.is_playing") == "True", "→ on the focused slider stopped Play"
    dash.click("‖ Pause")
    dash.wait_for("() => !!window.__sw.button('▶ Play')", 30)
