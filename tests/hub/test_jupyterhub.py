"""A real JupyterHub on 127.0.0.1 running deploy/jupyterhub_config.py, with ten students at once: each logged in
through the REST API (users and tokens made with an admin service's token), each server started, and in each the
dashboard notebook's cell run in a real kernel and played for 200 iterations, clicks sent as a browser sends them.
The dummy authenticator and the simple local spawner are this test's only changes to the deploy config."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import sys
import time
from pathlib import Path

import pytest

from tests.browser.harness import HOST, Server, free_port

from .jupyter_ws import KernelSocket

jupyterhub = pytest.importorskip("jupyterhub")
psutil = pytest.importorskip("psutil")
requests = pytest.importorskip("requests")
pytestmark = [pytest.mark.hub, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
CHP = REPO / ".hub" / "node_modules" / ".bin" / "configurable-http-proxy"  # `make hub-proxy` (npm) puts it there
STUDENTS = int(os.environ.get("SOFTMAX_WIDGETS_HUB_STUDENTS", "10"))
# the bundled subset: the same on every machine, and ten kernels of it fit beside the rest of a 2-core CI box;
# SOFTMAX_WIDGETS_HUB_DATASET=fashion-mnist measures the full set (with SOFTMAX_WIDGETS_DATA set)
DATASET = os.environ.get("SOFTMAX_WIDGETS_HUB_DATASET", "fashion-mnist-small")
ITERATIONS = 200
ADMIN_TOKEN = "softmax-widgets-class-admin-" + os.urandom(8).hex()
TEST_CONFIG = """\
# tests/hub/test_jupyterhub.py: the course config, with a test's authenticator, spawner and ports
load_subconfig({deploy!r})
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.ConfigurableHTTPProxy.pid_file = {folder!r} + "/proxy.pid"
c.JupyterHub.db_url = "sqlite:///" + {folder!r} + "/hub.sqlite"
c.JupyterHub.cookie_secret_file = {folder!r} + "/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {folder!r} + "/home/{{username}}"
c.Spawner.args = {args!r}
c.JupyterHub.services = [{{"name": "class-admin", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "admin", "services": ["class-admin"]}}]
"""


def nobody_listens(port: int) -> bool:
    """No server accepts on the port (a closed one may linger in TIME_WAIT: that is no listener)."""
    with socket.socket() as s:
        s.settimeout(5)
        return s.connect_ex((HOST, port)) != 0


class Hub:
    def __init__(self, folder: Path):
        self.folder = folder
        self.port, self.hub_port, self.api_port = free_port(), free_port(), free_port()
        self.url = f"http://{HOST}:{self.port}"
        config = folder / "jupyterhub_test_config.py"
        args = ["--allow-root"] if os.geteuid() == 0 else []  # jupyter servers refuse root unless told
        config.write_text(TEST_CONFIG.format(deploy=str(REPO / "deploy" / "jupyterhub_config.py"), port=self.port,
                                             hub_port=self.hub_port, api_port=self.api_port, chp=str(CHP),
                                             folder=str(folder), args=args, token=ADMIN_TOKEN))
        env = dict(os.environ)
        # the students' servers find python and jupyterhub-singleuser on PATH, and this checkout's package
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        for var in ("JUPYTERHUB_API_TOKEN", "JUPYTER_TOKEN", "JPY_API_TOKEN"):
            env.pop(var, None)
        self.server = Server([sys.executable, "-m", "jupyterhub", "-f", str(config)], self.url,
                             folder / "hub.log", env, folder)
        self.admin = {"Authorization": f"token {ADMIN_TOKEN}"}

    def api(self, method: str, path: str, token: str | None = None, **kw):
        headers = {"Authorization": f"token {token}"} if token else self.admin
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=120, **kw)

    def stop(self) -> None:
        """SIGTERM: the hub stops every student's server and the proxy itself (cleanup_servers, cleanup_proxy)."""
        proc = self.server.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(120)
            except Exception:
                pass
        self.server.stop()


class Student:
    def __init__(self, hub: Hub, name: str):
        self.hub, self.name = hub, name
        self.token = ""
        self.socket: KernelSocket | None = None
        self.kernel_pid = self.server_pid = 0
        self.start_s = self.dashboard_s = float("nan")
        self.ids: dict[str, str] = {}

    def user_api(self, method: str, path: str, token: str | None = None, **kw):
        return requests.request(method, f"{self.hub.url}/user/{self.name}/api{path}", timeout=120,
                                headers={"Authorization": f"token {token or self.token}"}, **kw)


@pytest.fixture
def hub(tmp_path):
    if not CHP.exists():
        pytest.skip(f"configurable-http-proxy is not installed: `make hub-proxy` puts it in {CHP.parent}")
    h = Hub(tmp_path)
    pids: list[int] = []
    h.pids = pids
    try:
        h.server.wait_ready("/hub/api/")
        yield h
    finally:
        try:
            proxy = int((tmp_path / "proxy.pid").read_text())
            pids.append(proxy)
        except (OSError, ValueError):
            pass
        h.stop()
        left = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        for pid in left:  # only what this test started: the servers, kernels and proxy it recorded
            os.kill(pid, signal.SIGKILL)
        assert not left, f"processes outlived the hub: {left}\n{h.server.tail()}"
        busy = [p for p in (h.port, h.hub_port, h.api_port) if not nobody_listens(p)]
        assert not busy, f"ports still taken after the hub stopped: {busy}"


def p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))]


def test_ten_students_on_one_course_server(hub):
    names = [f"student{i:02d}" for i in range(STUDENTS)]
    r = hub.api("POST", "/users", json={"usernames": names})
    assert r.status_code == 201, r.text
    students = [Student(hub, n) for n in names]
    for s in students:  # each student's own token, as logging in gives them one
        r = hub.api("POST", f"/users/{s.name}/tokens", json={"note": "class test", "expires_in": 3600})
        assert r.status_code in (200, 201), r.text
        s.token = r.json()["token"]
    start = time.monotonic()
    for s in students:
        r = hub.api("POST", f"/users/{s.name}/server")
        assert r.status_code in (201, 202), r.text
    waiting = set(names)
    while waiting:
        assert time.monotonic() - start < 300, f"servers not ready: {sorted(waiting)}\n{hub.server.tail()}"
        for s in students:
            if s.name in waiting and hub.api("GET", f"/users/{s.name}").json()["servers"].get("", {}).get("ready"):
                s.start_s = time.monotonic() - start
                waiting.discard(s.name)
        time.sleep(0.5)

    # the default URL's notebook is there (the deploy config copies it in as the server starts)
    url = hub.api("GET", f"/users/{names[0]}").json()["servers"][""]["url"]
    cell = None
    for s in students:
        r = s.user_api("GET", "/contents/lesson/02_dashboard.ipynb")
        assert r.status_code == 200, r.text[:300]
        nb = r.json()["content"]
        cell = next(c["source"] for c in nb["cells"] if c["cell_type"] == "code")
    assert '"fashion-mnist"' in cell and url == f"/user/{names[0]}/"
    code = cell.replace('"fashion-mnist"', repr(DATASET))

    # one student's token reaches their own server, never another's
    assert students[0].user_api("GET", "/kernels").status_code == 200
    other = requests.get(f"{hub.url}/user/{names[1]}/api/kernels", timeout=60,
                         headers={"Authorization": f"token {students[0].token}"})
    assert other.status_code == 403, (other.status_code, other.text[:300])

    # Run all: a kernel per student, the dashboard cell run in it (all ten at once, as in a lecture)
    for s in students:
        r = s.user_api("POST", "/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        kernel = r.json()["id"]
        ws = f"{hub.url.replace('http://', 'ws://')}/user/{s.name}/api/kernels/{kernel}/channels"
        s.socket = KernelSocket(ws, header=[f"Authorization: token {s.token}"])
        s.sent = time.monotonic()
        s.cell = s.socket.send("shell", "execute_request", {"code": code, "silent": False, "store_history": True,
                                                            "user_expressions": {}, "allow_stdin": False})
    for s in students:
        reply = s.socket.wait_reply(s.cell, timeout=600)
        assert reply["status"] == "ok" and not s.socket.errors, s.socket.errors
        s.dashboard_s = s.socket.wait_idle(s.cell) - s.sent
        s.kernel_pid = s.socket.value("__import__('os').getpid()")
        s.server_pid = psutil.Process(s.kernel_pid).parent().pid
        hub.pids += [s.kernel_pid, s.server_pid]
        s.ids = s.socket.value("{k: b.model_id for k, b in dash.buttons.items()}")

    # all ten press Play; memory is read while they play
    for s in students:
        s.socket.click(s.ids["play"])
    kernel_mb: dict[str, float] = {}
    server_mb: dict[str, float] = {}
    deadline = time.monotonic() + 600
    while True:
        its = [s.socket.value("dash.trainer.iteration") for s in students]
        for s in students:
            kernel_mb[s.name] = max(kernel_mb.get(s.name, 0), psutil.Process(s.kernel_pid).memory_info().rss / 2**20)
            server_mb[s.name] = max(server_mb.get(s.name, 0), psutil.Process(s.server_pid).memory_info().rss / 2**20)
        if min(its) >= ITERATIONS:
            break
        assert time.monotonic() < deadline, f"iterations after 600 s: {its}"
        assert all(s.socket.value("dash.is_playing") for s in students), "a Play stopped by itself"
        time.sleep(1.0)
    # a phase click while the others play: it pauses that student's Play and runs the phase; then Play again
    clicks = []
    for s in students:
        sent = time.monotonic()
        clicks.append(s.socket.wait_idle(s.socket.click(s.ids["next_batch"])) - sent)
        assert not s.socket.value("dash.is_playing")
        s.socket.click(s.ids["play"])
    for s in students:
        s.socket.click(s.ids["play"])  # Pause
    for s in students:
        s.socket.wait(lambda s=s: not s.socket.value("dash.is_playing"), 60, "Pause")
        assert s.socket.value("dash.trainer.iteration") >= ITERATIONS and not s.socket.errors
        s.socket.close()

    per_student = [kernel_mb[n] + server_mb[n] for n in names]
    print(f"\nJupyterHub: {STUDENTS} students on {DATASET}; servers ready in {max(s.start_s for s in students):.1f} s "
          f"(all started at once); Run all → dashboard median "
          f"{statistics.median(s.dashboard_s for s in students):.1f} s (max "
          f"{max(s.dashboard_s for s in students):.1f} s); peak RSS per student during Play: kernel median "
          f"{statistics.median(kernel_mb.values()):.0f} MB (max {max(kernel_mb.values()):.0f}), server median "
          f"{statistics.median(server_mb.values()):.0f} MB, both {statistics.median(per_student):.0f} MB "
          f"({sum(per_student) / 1024:.1f} GB for the class); a phase click during the others' Play p50 "
          f"{statistics.median(clicks) * 1000:.0f} ms, p90 {p90(clicks) * 1000:.0f} ms")
    print(json.dumps({"students": STUDENTS, "dataset": DATASET,
                      "kernel_mb": statistics.median(kernel_mb.values()),
                      "server_mb": statistics.median(server_mb.values()), "click_p90_ms": p90(clicks) * 1000}))
