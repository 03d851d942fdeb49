"""JupyterLab / Voila on 127.0.0.1 and headless Debian Chromium via Playwright; shared by tests and benchmarks."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from softmax_widgets import launch

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SOFTMAX_WIDGETS_ARTIFACTS", REPO / "artifacts"))
CHROMIUM = os.environ.get("SOFTMAX_WIDGETS_CHROMIUM", "/usr/bin/chromium")
# without the background-networking flags Chromium keeps dialing Google's hosts, which this network refuses
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
HOST = "127.0.0.1"
TOKEN = "softmax-widgets-browser-test"
# the kernel, the servers and Chromium share 2 cores with whatever else runs: generous, but bounded
SERVER_START_S = 120
KERNEL_START_S = 120
FIRST_RENDER_S = 240  # kernel start + torch import + Fashion-MNIST load + the dashboard's first push
# requests the page may lose without losing anything a student needs: Voila's icon font stylesheet (every
# button is labelled in text). Any other blocked request (scripts above all) fails the test.
COSMETIC = ("fontawesome-free",)
CODE_TYPES = {"script", "xhr", "fetch", "websocket", "document", "eventsource", "manifest", "other"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def is_local(url: str) -> bool:
    """True for requests that stay on this machine (the servers under test), data: and blob: URLs."""
    if url.startswith(("data:", "blob:", "about:")):
        return True
    netloc = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    host = netloc[1:].split("]", 1)[0] if netloc.startswith("[") else netloc.split(":", 1)[0]
    return host in (HOST, "localhost", "::1")


def _own_group_dies_with_parent() -> None:
    """In the child: a process group of its own (stopped as one), sent SIGTERM if the test process dies."""
    os.setsid()
    try:  # Linux: without it a killed pytest would leave Lab, Voila and their kernels running
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


class Server:
    """A server subprocess in its own process group, logging to a file, stopped with its kernels."""

    def __init__(self, cmd: list[str], url: str, log: Path, env: dict[str, str], cwd: Path):
        self.url, self.log, self.cmd = url, log, cmd
        self._log_fh = open(log, "w")  # closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log_fh, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     preexec_fn=_own_group_dies_with_parent)

    def wait_ready(self, path: str, timeout: float = SERVER_START_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; log:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"server not ready after {timeout:.0f} s: {' '.join(self.cmd)}\nlog:\n{self.tail()}")

    def tail(self, n: int = 60) -> str:
        self._log_fh.flush()
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the whole group (server and kernels), SIGKILL if it has not gone after 20 s."""
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
                except ProcessLookupError:
                    break
        try:  # kernels may sit in the group after the server itself exited
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log_fh.close()


def jupyter_env(home: Path, data_root: Path | None = None, windowing: str | None = "none") -> dict[str, str]:
    """A throwaway Jupyter config/runtime/settings tree under `home`: no user config leaks in, no news fetched.
    `windowing`: the notebook's windowingMode ("none": every cell in the DOM); None leaves JupyterLab's own default
    (contentVisibility in Lab 4.6), as an instructor's Lab has it."""
    env = dict(os.environ)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
                     ("IPYTHONDIR", "ipython")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    settings = {
        # Lab asks "fetch news?" and checks for updates over the internet unless told not to
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                            "checkForUpdates": False},
    }
    if windowing is not None:  # no virtual scrolling: every cell's output stays in the DOM where the test can read it
        settings["@jupyterlab/notebook-extension/tracker.jupyterlab-settings"] = {"windowingMode": windowing}
    for rel, value in settings.items():
        path = home / "settings" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    env.pop("JUPYTER_TOKEN", None)
    if data_root is not None:
        env["SOFTMAX_WIDGETS_DATA"] = str(data_root)
    return env


@contextmanager
def lab_server(root: Path, home: Path, data_root: Path | None = None, windowing: str | None = "none"):
    """JupyterLab on 127.0.0.1 serving `root`, started as `softmax-widgets lab` starts it; yields the Server.
    `windowing`: as jupyter_env's (None: JupyterLab's own default)."""
    port = free_port()
    cmd = launch.lab_command(root, open_notebook=None, port=port, extra_args=[
        "--no-browser", f"--ip={HOST}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
        "--LabApp.expose_app_in_browser=True", "--allow-root"])
    server = Server(list(dict.fromkeys(cmd)), f"http://{HOST}:{port}", home / "lab.log",
                    jupyter_env(home, data_root, windowing), root)
    try:
        server.wait_ready(f"/api/status?token={TOKEN}")
        yield server
    finally:
        server.stop()


@contextmanager
def voila_server(home: Path, data_root: Path | None = None, autosave: bool = False):
    """Voila on 127.0.0.1 serving the dashboard page, as `softmax-widgets app` does (its page and Voila config in a
    temporary folder); with `autosave`, the page keeps its run there too and a reload reopens it. (Off for the
    session's shared server: each test there starts on a fresh run.) Yields the Server."""
    port = free_port()
    page = launch.app_folder(home)  # the kernel starts beside the page: a temp folder
    cmd = launch.app_command(port, ["--no-browser", f"--Voila.ip={HOST}", "--Voila.port_retries=0"], page)
    env = jupyter_env(home, data_root)
    if autosave:
        env[launch.AUTOSAVE_ENV] = str(home / launch.AUTOSAVE_NAME)
    server = Server(cmd, f"http://{HOST}:{port}", home / "voila.log", env, home)
    try:
        # not a GET of the page: Voila would run the notebook (and start a kernel) just to answer it
        _wait_port(server)
        yield server
    finally:
        server.stop()


@contextmanager
def app_on_a_saved_lesson(tmp_path: Path, monkeypatch, scale: str = "1.5"):
    """Voila serving the app as `softmax-widgets app --state lesson.pt --scale 1.5` does, on a lesson.pt of the
    bundled set (the same with or without the data): 10 iterations done and the next batch drawn."""
    from softmax_widgets import Trainer, load_dataset

    t = Trainer(load_dataset("fashion-mnist-small"), seed=3)
    for _ in range(10):  # an epoch of the bundled set is 24 batches
        t.train_step()
    t.next_batch()
    t.save(tmp_path / "lesson.pt")
    monkeypatch.setenv(launch.STATE_ENV, str(tmp_path / "lesson.pt"))
    monkeypatch.setenv(launch.SCALE_ENV, scale)
    (tmp_path / "home").mkdir()
    with voila_server(tmp_path / "home", None) as voila:
        yield voila


def _wait_port(server: Server, timeout: float = SERVER_START_S) -> None:
    deadline = time.monotonic() + timeout
    port = int(server.url.rsplit(":", 1)[1])
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}; log:\n{server.tail()}")
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"server not listening after {timeout:.0f} s; log:\n{server.tail()}")


def launch_chromium(playwright):
    """Debian's Chromium (never a downloaded build), headless, with the flags this network needs."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: `make chromium` (apt-get install chromium) installs it")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000)


@dataclass
class Network:
    """Every request not to 127.0.0.1 is aborted and written down here."""

    blocked: list[dict] = field(default_factory=list)

    def route(self, route) -> None:
        req = route.request
        if is_local(req.url):
            route.continue_()
        else:
            self.blocked.append({"url": req.url, "type": req.resource_type})
            route.abort("blockedbyclient")

    @property
    def needed(self) -> list[dict]:
        """Blocked requests that could carry code or data: the page needed them. Cosmetic ones are listed apart."""
        return [b for b in self.blocked if b["type"] in CODE_TYPES
                or not any(c in b["url"] for c in COSMETIC)]


def new_page(browser, network: Network, console: list[str], width: int = 1500, height: int = 2100):
    """A fresh context and page with external requests blocked and console errors recorded."""
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    context.route("**/*", network.route)
    page = context.new_page()
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    return context, page


# ---- JupyterLab: open a notebook, wait for its kernel, run every cell ----

def open_in_lab(page, server: Server, notebook: str) -> None:
    page.goto(f"{server.url}/lab/tree/{notebook}?reset&token={TOKEN}", timeout=SERVER_START_S * 1000)
    page.wait_for_function(
        f"() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        f" && window.jupyterapp.shell.currentWidget.context"
        f" && window.jupyterapp.shell.currentWidget.context.path === {json.dumps(notebook)}",
        timeout=SERVER_START_S * 1000)
    # sessionContext.ready resolves once the kernel is connected; then wait for it to be idle
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.ready")
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status"
                           " === 'idle'", timeout=KERNEL_START_S * 1000)


def run_all_cells(page) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def lab_error_outputs(page) -> list[str]:
    """Tracebacks in the notebook's output areas (there must be none)."""
    return page.evaluate("() => Array.from(document.querySelectorAll('.jp-OutputArea-output[data-mime-type="
                         "\"application/vnd.jupyter.stderr\"], .jp-RenderedText[data-mime-type="
                         "\"application/vnd.jupyter.stderr\"]')).map(e => e.innerText.slice(0, 500))")


def notebook_json(sources: list[str]) -> str:
    """A notebook of code cells with a kernelspec (without one JupyterLab asks for a kernel in a dialog)."""
    cells = [{"cell_type": "code", "execution_count": None, "id": f"cell{i}", "metadata": {}, "outputs": [],
              "source": source.splitlines(keepends=True)} for i, source in enumerate(sources)]
    return json.dumps({"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                                    "name": "python3"}},
                       "nbformat": 4, "nbformat_minor": 5})
