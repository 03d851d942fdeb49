"""A reload or a restart in a lecture, in real Chromium: the Voila app reloaded (F5) three times, once during Play,
and a dashboard in JupyterLab whose kernel restarted.

On the app: each reload shuts the page's old kernel down (Voila's unload beacon, which needs the _xsrf cookie
launch.APP_CONFIG makes Voila set), so one kernel is left, never one per reload; and the page after a reload
continues the run where it was (the app's autosave), saying so on the status line."""

from __future__ import annotations

import re
import time
from pathlib import Path

import harness
import pytest
from dashboard_page import PAUSE, PLAY, DashboardPage, screenshot
from harness import FIRST_RENDER_S, notebook_json, open_in_lab, run_all_cells

pytestmark = pytest.mark.timeout(900)

SETTLE_S = 60  # Voila asks the kernel to shut down, waits up to 5 s, then kills it: well within this
REOPENED = re.compile(r"^reopened iteration (\d+) \(epoch 1\) from this app's autosave of \d\d:\d\d:\d\d, where the "
                      r"page was before it was reloaded; lesson\.pt itself is unchanged\. Press (\w+) \(the lit "
                      r"button\) or Step to go on\.$")


def kernel_pids(server: harness.Server) -> list[int]:
    """The ipykernel processes the server started (its children: jupyter_client gives each a session of its own),
    alive and not zombies."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError, ValueError):
            continue
        if int(ppid) == server.proc.pid and state != "Z" and any(b"ipykernel_launcher" in c for c in cmdline):
            pids.append(int(entry.name))
    return sorted(pids)


def settled_kernels(server: harness.Server, want: int = 1) -> list[int]:
    """The kernels left once the old page's has had time to go (returns early when `want` are left)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        pids = kernel_pids(server)
        if len(pids) == want or time.monotonic() > deadline:
            return pids
        time.sleep(0.5)


def _reopened(dash: DashboardPage) -> tuple[int, str]:
    status = dash.state()["status"]
    m = REOPENED.match(status)
    assert m, f"after the reload the status does not say what it reopened: {status!r}"
    return int(m.group(1)), m.group(2)


def test_app_reloaded_three_times_keeps_one_kernel_and_the_run(tmp_path, browser_page, artifacts, monkeypatch):
    from softmax_widgets import Trainer, launch, load_dataset

    t = Trainer(load_dataset("fashion-mnist-small"), seed=3)  # bundled: the same test with or without the data
    for _ in range(5):
        t.train_step()
    t.save(tmp_path / "lesson.pt")
    monkeypatch.setenv(launch.STATE_ENV, str(tmp_path / "lesson.pt"))
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 720})
    (tmp_path / "home").mkdir()
    with harness.voila_server(tmp_path / "home", None, autosave=True) as voila:
        page.goto(voila.url + "/", timeout=FIRST_RENDER_S * 1000)
        dash = DashboardPage(page)
        dash.wait_drawn(FIRST_RENDER_S, artifacts / "reload-not-rendered.png", voila)
        assert dash.state()["status"].startswith("loaded lesson.pt: epoch 1, iteration 5."), dash.state()
        assert len(kernel_pids(voila)) == 1
        assert any(c["name"] == "_xsrf" for c in page.context.cookies()), "Voila set no _xsrf cookie"

        # 1. F5 during Play (the instructor's case): the run goes on from where the kernel was, never from lesson.pt
        dash.click(PLAY)
        dash.wait_for("() => window.__sw.iteration() >= 12", 120)
        seen = dash.iteration()
        page.reload()
        dash.wait_drawn(FIRST_RENDER_S, artifacts / "reload-1-not-rendered.png", voila)
        it, _ = _reopened(dash)
        assert it >= seen >= 12, f"the page showed iteration {seen} before the reload, {it} after"
        assert dash.iteration() == it
        assert dash.button(PLAY).count() == 1 and dash.button(PAUSE).count() == 0, "Play should be stopped"
        pids = settled_kernels(voila)
        assert len(pids) == 1, f"{len(pids)} kernels after one reload: {pids}\n{voila.tail(20)}"
        screenshot(page, artifacts / "reload-1280x720-after-play.png")

        # 2. and 3. a step or an iteration, then F5: the page comes back on exactly that
        for n, button in ((2, "Iteration"), (3, "next_batch")):
            before = dash.state()
            after = dash.click_and_wait_status(button, before["status"])
            want_phase = "forward" if button == "next_batch" else "next_batch"
            time.sleep(0.5)
            page.reload()
            dash.wait_drawn(FIRST_RENDER_S, artifacts / f"reload-{n}-not-rendered.png", voila)
            it, next_phase = _reopened(dash)
            assert (it, next_phase) == (after["iteration"], want_phase), (it, next_phase, after)
            pids = settled_kernels(voila)
            assert len(pids) == 1, f"{len(pids)} kernels after {n} reloads: {pids}\n{voila.tail(20)}"
        screenshot(page, artifacts / "reload-1280x720-after-3.png")
        # the reopened run goes on: Step does the next phase of that run
        before = dash.state()
        assert dash.click_and_wait_status("Step", before["status"])["status"].startswith("forward")
        log = voila.log.read_text(errors="replace")
        assert "403 POST /voila/api/shutdown" not in log, log[-2000:]
        assert log.count("Kernel shutdown") >= 3, log[-2000:]


RESTART_NOTEBOOK = "restart_1280x720.ipynb"
RESTART_CELL = """import torch

from softmax_widgets.app import Dashboard

torch.set_num_threads(1)
dash = Dashboard.from_dataset("fashion-mnist-small", seed=0)
dash"""
# what a student sees of the old dashboard once its kernel is gone
DISCONNECTED = r"""
() => {
  const d = window.__sw.dashboard();
  const before = getComputedStyle(d, '::before');
  const first = d.firstElementChild;
  const pause = window.__sw.button('‖ Pause') || window.__sw.button('▶ Play');
  const icon = d.querySelector('.jupyter-widgets-disconnected');
  const r = d.getBoundingClientRect();
  return {disconnected: d.classList.contains('jupyter-widgets-disconnected'),
          banner: before.content, bannerDisplay: before.display, bannerColor: before.backgroundColor,
          pushedDown: first.getBoundingClientRect().top - r.top,
          controls: {opacity: getComputedStyle(first).opacity, filter: getComputedStyle(first).filter,
                     pointer: getComputedStyle(first).pointerEvents},
          pause: pause ? pause.textContent.trim() : null,
          icons: icon ? getComputedStyle(icon, '::before').display : null};
}
"""


def test_lab_dashboard_says_the_kernel_restarted(lab, lab_root, browser_page, artifacts):
    """Play, then the kernel restarts (Kernel → Restart): the old dashboard says what happened and what to do, in a
    banner above it, and its controls are greyed (no orange Pause of a Play that is gone, no broken-link icons)."""
    (lab_root / RESTART_NOTEBOOK).write_text(notebook_json([RESTART_CELL]))
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 720})
    open_in_lab(page, lab, RESTART_NOTEBOOK)
    run_all_cells(page)
    dash = DashboardPage(page)
    dash.wait_drawn(FIRST_RENDER_S, artifacts / "restart-not-rendered.png", lab)
    dash.click(PLAY)
    dash.wait_for("() => window.__sw.iteration() >= 3", 120)
    found = page.evaluate(DISCONNECTED)
    assert not found["disconnected"] and found["banner"] in ("none", "normal"), found
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    dash.wait_for("() => window.__sw.dashboard().classList.contains('jupyter-widgets-disconnected')", 60)
    page.wait_for_timeout(500)
    found = page.evaluate(DISCONNECTED)
    screenshot(page, artifacts / "restart-1280x720-disconnected.png")
    assert found["banner"].startswith('"The kernel restarted or stopped') and "Run its cell again" in found["banner"], \
        found
    assert found["bannerDisplay"] == "block" and found["pushedDown"] >= 30, found  # a banner, not an icon
    assert found["controls"] == {"opacity": "0.4", "filter": "grayscale(1)", "pointer": "none"}, found
    assert found["icons"] == "none", found  # the broken-link icon on every control is gone
    page.set_viewport_size({"width": 1366, "height": 768})  # a student's laptop: the banner wraps, still whole
    page.wait_for_timeout(500)
    screenshot(page, artifacts / "restart-1366x768-disconnected.png")
