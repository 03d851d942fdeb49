"""`softmax-widgets app` for a class, for real: ten visitors on one Voila, each stepping and playing, three
reloading; the eleventh told the class is full. Visitors are websocket clients doing what Voila's page does (GET
the page, which runs the notebook in a fresh kernel; ask for the widget states; send clicks as comm messages;
on unload POST voila/api/shutdown with the _xsrf cookie), not ten Chromiums: ten browsers rendering bqplot on two
cores would measure the browsers, and the browser tests already check the page itself (tests/browser)."""

from __future__ import annotations

import os
import re
import statistics
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.browser.harness import HOST, Server, free_port, jupyter_env
from tests.browser.harness import _wait_port as wait_port

from .jupyter_ws import KernelSocket

psutil = pytest.importorskip("psutil")
requests = pytest.importorskip("requests")
pytest.importorskip("voila")
pytestmark = [pytest.mark.hub, pytest.mark.timeout(900)]

VISITORS = int(os.environ.get("SOFTMAX_WIDGETS_CLASS_VISITORS", "10"))
DATASET = os.environ.get("SOFTMAX_WIDGETS_CLASS_DATASET", "fashion-mnist-small")  # bundled: the same everywhere
RELOADING = 3
PHASES = ["next_batch", "forward", "zero_grad", "backward", "sgd"]
PAGE_S = 600  # ten kernels importing torch on two cores, one after the other


def kernels_of(server: Server) -> list:
    """The kernel processes Voila started (ipykernel, children of the Voila process)."""
    try:
        kids = psutil.Process(server.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for p in kids:
        try:
            if "ipykernel_launcher" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:
            pass
    return out


class Visitor:
    """One browser tab on the app: its own cookies (its _xsrf), its page's kernel, its clicks."""

    def __init__(self, url: str):
        self.url, self.http = url, requests.Session()
        self.socket: KernelSocket | None = None
        self.kernel_id = ""
        self.page_s = float("nan")
        self.clicks: list[float] = []

    def open(self) -> None:
        start = time.monotonic()
        page = self.http.get(self.url + "/", timeout=PAGE_S)
        self.page_s = time.monotonic() - start
        assert page.status_code == 200, page.text[:500]
        self.kernel_id = re.search(r'"kernelId": "([0-9a-f-]+)"', page.text).group(1)
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        ws = self.url.replace("http://", "ws://") + f"/api/kernels/{self.kernel_id}/channels"
        self.socket = KernelSocket(ws, cookie=cookie)
        self.socket.request_states()

    def click(self, description: str) -> float:
        """Send a click; seconds until the kernel had handled it (its idle status after the click)."""
        sent = time.monotonic()
        done = self.socket.wait_idle(self.socket.click(self.socket.button(description)))
        self.clicks.append(done - sent)
        return done - sent

    def leave(self) -> None:
        """What the page does as it unloads: the websocket goes, and a beacon asks Voila to shut the kernel."""
        self.socket.close()
        xsrf = self.http.cookies.get("_xsrf", "")
        r = self.http.post(f"{self.url}/voila/api/shutdown/{self.kernel_id}", data={"_xsrf": xsrf}, timeout=60)
        assert r.status_code == 204, (r.status_code, r.text[:300])
        self.socket = None


def settle(server: Server, pages: int, timeout: float = 60) -> None:
    """The live kernels come to match the open pages (a shutdown takes a moment); fail if they never do."""
    deadline = time.monotonic() + timeout
    while (n := len(kernels_of(server))) != pages:
        assert time.monotonic() < deadline, f"{n} kernels for {pages} open pages after {timeout:.0f} s"
        time.sleep(0.2)


def in_threads(fn, items) -> None:
    errors = []

    def run(item):
        try:
            fn(item)
        except BaseException as err:  # reported below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.fixture
def app(tmp_path):
    """`softmax-widgets app --max-kernels N --cull-idle 120` on 127.0.0.1, stopped with its kernels."""
    port = free_port()
    env = jupyter_env(tmp_path / "home")
    env["SOFTMAX_WIDGETS_DATASET"] = DATASET
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "softmax_widgets.cli", "app", "--port", str(port), "--no-browser",
           "--max-kernels", str(VISITORS), "--cull-idle", "120"]
    server = Server(cmd, f"http://{HOST}:{port}", tmp_path / "app.log", env, tmp_path)
    try:
        wait_port(server)  # not a GET of the page: that would start a kernel
        yield server
    finally:
        server.stop()
        assert not [p for p in kernels_of(server) if p.is_running()], "kernels outlived the app"


def test_a_class_of_ten_on_one_app(app):
    visitors = [Visitor(app.url) for _ in range(VISITORS)]
    in_threads(Visitor.open, visitors)  # all at once, as a class does when the teacher says "open the page"
    settle(app, VISITORS, timeout=5)

    # the next visitor gets a page that says so, at once: no kernel is started for it
    start = time.monotonic()
    full = requests.get(app.url + "/", timeout=30)
    full_s = time.monotonic() - start
    assert full.status_code == 503 and "This class is full" in full.text and "close the dashboard" in full.text
    assert len(kernels_of(app)) == VISITORS

    def step_and_play(v: Visitor) -> None:
        for name in PHASES:
            v.click(name)
        assert v.socket.wait(lambda: v.socket.iteration() == 1, 60, "iteration 1 on the counter")
        v.click("▶ Play")

    in_threads(step_and_play, visitors)
    memory: list[float] = []
    playing_clicks: list[float] = []
    deadline = time.monotonic() + 300
    while min(v.socket.iteration() for v in visitors) < 60:
        assert time.monotonic() < deadline, [v.socket.iteration() for v in visitors]
        memory = [p.memory_info().rss / 2**20 for p in kernels_of(app)] or memory
        time.sleep(1.0)
    # a phase click while the nine others play: it pauses this visitor's Play and runs the phase
    for v in visitors:
        playing_clicks.append(v.click("next_batch"))
        v.click("▶ Play")

    # three reload their page: the old kernel goes, a new one comes, and the count follows the open pages
    for i, v in enumerate(visitors[:RELOADING]):
        v.leave()
        settle(app, VISITORS - 1)
        before = v.socket, v.kernel_id
        v.open()
        assert v.kernel_id != before[1]
        settle(app, VISITORS)
        said = " ".join(str(s.get("value", "")) for s in v.socket.widgets.values())
        assert "reopened iteration" in said, f"visitor {i}'s reload did not reopen its own run"
    for v in visitors:
        if _has(v, "‖ Pause"):
            v.click("‖ Pause")
    rss = statistics.median(memory)
    clicks = sorted(c for v in visitors for c in v.clicks)
    p90 = clicks[int(0.9 * (len(clicks) - 1))]
    playing_p90 = sorted(playing_clicks)[int(0.9 * (len(playing_clicks) - 1))]
    print(f"\nVoila class: {VISITORS} visitors on {DATASET}; page ready in median "
          f"{statistics.median(v.page_s for v in visitors):.1f} s (max {max(v.page_s for v in visitors):.1f} s, "
          f"all opening at once); kernel RSS median {rss:.0f} MB (max {max(memory):.0f} MB) per visitor, "
          f"{sum(memory):.0f} MB in all; click handled p50 {statistics.median(clicks) * 1000:.0f} ms, p90 "
          f"{p90 * 1000:.0f} ms over {len(clicks)} clicks; a phase click during the others' Play p90 "
          f"{playing_p90 * 1000:.0f} ms; the class-full page in {full_s * 1000:.0f} ms")
    for v in visitors:
        v.leave()
    settle(app, 0)


def _has(v: Visitor, description: str) -> bool:
    try:
        v.socket.button(description)
        return True
    except AssertionError:
        return False
