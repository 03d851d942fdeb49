"""Fixtures for the browser tests: Debian Chromium via Playwright, JupyterLab and Voila on 127.0.0.1."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness.py and dashboard_page.py sit beside this file

import harness

from softmax_widgets import launch
from tests.conftest import FASHION_ROOT

BLOCKED: dict[str, list[dict]] = {}  # per test: requests not to 127.0.0.1 that were aborted


def pytest_collection_modifyitems(items):
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


def pytest_terminal_summary(terminalreporter):
    if not BLOCKED:
        return
    total = sum(len(v) for v in BLOCKED.values())
    terminalreporter.write_sep("-", f"browser: {total} request(s) not to 127.0.0.1 aborted")
    for test, blocked in BLOCKED.items():
        kinds: dict[str, int] = {}
        for b in blocked:
            kinds[b["type"]] = kinds.get(b["type"], 0) + 1
        terminalreporter.write_line(f"{test}: {len(blocked)} {kinds or ''}")
        for b in blocked[:5]:
            terminalreporter.write_line(f"    {b['type']:10s} {b['url'][:110]}")


@pytest.fixture(scope="module")
def playwright_browser():
    """Module scope, not session: while sync_playwright() is open the main thread has a running asyncio loop,
    and every later test that calls asyncio.run() (the Play tests) would fail with "cannot be called from a
    running event loop"."""
    if not Path(harness.CHROMIUM).exists():
        msg = f"{harness.CHROMIUM} not found: run `make chromium` (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(msg)  # CI installs it: a missing browser there is a broken setup, not a skip
        pytest.skip(msg)
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the [test] extra)")
    with sync_api.sync_playwright() as p:
        browser = harness.launch_chromium(p)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    harness.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return harness.ARTIFACTS


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory) -> Path:
    """A throwaway folder with the example notebooks, copied the way `softmax-widgets lab` copies them."""
    root = tmp_path_factory.mktemp("lab-root")
    launch.copy_examples(root)
    return root


@pytest.fixture(scope="session")
def lab(lab_root, tmp_path_factory):
    with harness.lab_server(lab_root, tmp_path_factory.mktemp("lab-home"), FASHION_ROOT) as server:
        yield server


@pytest.fixture(scope="session")
def voila(tmp_path_factory):
    pytest.importorskip("voila", reason="pip install 'voila>=0.5' (the [test] or [app] extra)")
    with harness.voila_server(tmp_path_factory.mktemp("voila-home"), FASHION_ROOT) as server:
        yield server


@pytest.fixture
def browser_page(playwright_browser, request, artifacts):
    """A fresh page; requests off this machine are aborted and counted, console errors kept as an artifact."""
    network, console = harness.Network(), []
    context, page = harness.new_page(playwright_browser, network, console)
    page.set_default_timeout(60_000)
    page.network, page.console = network, console
    yield page
    name = request.node.name
    BLOCKED[name] = network.blocked
    (artifacts / f"{name}.network.json").write_text(json.dumps(network.blocked, indent=1))
    (artifacts / f"{name}.console.txt").write_text("\n".join(console))
    context.close()
