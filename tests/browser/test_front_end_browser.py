"""The three ES modules (ui/keys.js, ui/download.js, ui/upload.js) on their own, in real Chromium: a bare page, a
stand-in for anywidget's model (get, send, on), and the module's render(). The Lab and Voila tests are the main
check; this one says which rule of a module broke, in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import softmax_widgets.ui
from softmax_widgets.ui.page import CONTROLS_CSS, PASS_KEYS

pytestmark = pytest.mark.timeout(120)

UI = Path(softmax_widgets.ui.__file__).parent
PAGE = """<div class="jp-Notebook" tabindex="-1"><p id="cell" tabindex="0">a cell</p>
<div class="sw-dashboard"><button id="step">Step</button><input id="box"><div id="host"></div></div></div>
<button id="outside">outside</button>"""
# a stand-in for anywidget's model: its state, what the module sent, and change events
MOUNT = """async ([source, state]) => {
  const url = URL.createObjectURL(new Blob([source], {type: 'text/javascript'}));
  const module = (await import(url)).default, handlers = {};
  window.sent = [];
  const model = {get: (k) => state[k], send: (m, _, buffers) =>
                   window.sent.push(buffers ? {...m, bytes: buffers.map((b) => b.byteLength)} : m),
                 on: (e, f) => { handlers[e] = f; }, off: (e) => { delete handlers[e]; }};
  window.model = model;
  window.setState = (s) => { Object.assign(state, s); Object.keys(s).forEach((k) => handlers['change:' + k]?.()); };
  const el = document.createElement('div');
  document.getElementById('host').appendChild(el);
  window.cleanup = module.render({model, el});
}"""


def armed(page) -> bool:
    return page.evaluate("() => document.querySelector('.sw-dashboard').classList.contains('sw-keys-armed')")


def sent(page) -> list[str]:
    return page.evaluate("() => window.sent.map((m) => m.key)")


def test_keys_module_arms_on_a_click_sends_its_keys_and_lets_the_others_through(browser_page):
    page = browser_page
    page.set_content(PAGE)
    page.evaluate(MOUNT, [(UI / "keys.js").read_text(), {"pass_keys": PASS_KEYS, "controls": CONTROLS_CSS}])
    page.wait_for_function("() => document.querySelector('.sw-dashboard').tabIndex === -1")
    assert not armed(page)
    page.keyboard.press("s")  # nothing focused inside the dashboard: not its key
    assert sent(page) == []
    page.click("#step")
    page.wait_for_function("() => document.querySelector('.sw-dashboard').classList.contains('sw-keys-armed')")
    page.keyboard.press("s")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+S")
    page.keyboard.press("Control+s")  # JupyterLab's (save), not ours
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # moves the focus to the text box
    assert sent(page) == ["s", "ArrowRight", "S"], sent(page)
    message = page.evaluate("() => window.sent[2]")
    assert message["shiftKey"] is True and message["repeat"] is False and message["n"] == 3, json.dumps(message)
    page.click("#box")
    page.keyboard.type("su")  # a focused text box keeps its keys
    assert page.input_value("#box") == "su" and len(sent(page)) == 3 and not armed(page)
    page.click("#step")
    page.wait_for_function("() => document.querySelector('.sw-dashboard').classList.contains('sw-keys-armed')")
    page.keyboard.press("Escape")  # the keyboard goes back to the notebook
    page.wait_for_function("() => document.activeElement === document.querySelector('.jp-Notebook')")
    assert not armed(page)
    page.keyboard.press("r")
    page.click("#step")
    page.click("#outside")  # a click elsewhere disarms
    page.wait_for_function("() => !document.querySelector('.sw-dashboard').classList.contains('sw-keys-armed')")
    page.keyboard.press("u")
    assert len(sent(page)) == 3
    page.evaluate("() => window.cleanup()")  # the view is gone: so are its listeners
    page.click("#step")
    page.keyboard.press("s")
    assert len(sent(page)) == 3 and not armed(page)


def test_download_module_clicks_each_new_link_once(browser_page):
    page = browser_page
    page.set_content(PAGE)
    state = {"url": "data:text/plain;base64,aGVsbG8=", "name": "hello.txt", "label": "download hello.txt again",
             "token": "t1"}
    with page.expect_download(timeout=10_000) as info:
        page.evaluate(f"(s) => ({MOUNT})([s[0], {{...s[1], until: Date.now() + 60000}}])",
                      [(UI / "download.js").read_text(), state])
    assert info.value.suggested_filename == "hello.txt"
    assert Path(info.value.path()).read_bytes() == b"hello"
    assert page.inner_text("#host a") == "download hello.txt again"
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    page.evaluate(MOUNT, [(UI / "download.js").read_text(), {**state, "until": 0}])  # a second view, a reload
    page.evaluate("() => window.setState({name: 'late.txt', token: 't2'})")  # sent over two minutes ago
    page.wait_for_timeout(500)
    assert downloads == []
    with page.expect_download(timeout=10_000) as info:
        page.evaluate("() => window.setState({name: 'again.txt', until: Date.now() + 60000, token: 't3'})")
    assert info.value.suggested_filename == "again.txt"


def test_upload_module_sends_a_small_file_in_pieces_and_only_the_size_of_a_1_gb_one(browser_page, tmp_path):
    page = browser_page
    page.set_content(PAGE)
    page.evaluate(MOUNT, [(UI / "upload.js").read_text(), {"label": "load state file (.pt)", "accept": ".pt",
                                                           "limit": 16 * 2**20, "chunk": 1000}])
    assert page.inner_text("#host button") == "load state file (.pt)"
    assert page.get_attribute("#host input[type=file]", "accept") == ".pt"
    small = tmp_path / "run.pt"
    small.write_bytes(b"x" * 2500)
    page.set_input_files("#host input[type=file]", str(small))
    page.wait_for_function("() => window.sent.length === 3")
    pieces = page.evaluate("() => window.sent")
    assert [(m["event"], m["offset"], m["bytes"], m["size"], m["name"]) for m in pieces] == [
        ("piece", 0, [1000], 2500, "run.pt"), ("piece", 1000, [1000], 2500, "run.pt"),
        ("piece", 2000, [500], 2500, "run.pt")]
    assert len({m["upload"] for m in pieces}) == 1
    big = tmp_path / "lesson.pt"
    with open(big, "wb") as f:
        f.truncate(2**30)  # sparse: 1 GB as the browser sees it, no disk used
    page.set_input_files("#host input[type=file]", str(big))
    page.wait_for_function("() => window.sent.length === 4")
    assert page.evaluate("() => window.sent[3]") == {"event": "too_big", "name": "lesson.pt", "size": 2**30}
    page.set_input_files("#host input[type=file]", str(small))  # the same file again: sent again
    page.wait_for_function("() => window.sent.length === 7")
    assert not page.evaluate("() => document.querySelector('#host button').disabled")
