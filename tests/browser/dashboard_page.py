"""Read and click the dashboard the way a student's browser shows it (JupyterLab or Voila alike)."""

from __future__ import annotations

import re
import time

import harness
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

PHASES = ["next_batch", "forward", "zero_grad", "backward", "sgd"]
PLAY, PAUSE, UNDO = "▶ Play", "‖ Pause", "↶ undo"

# Page-side helpers, installed once per page. Buttons are found by what a student reads (their labels); the
# status line, counter, loss figure and W heatmaps by the stable sw-* CSS classes the dashboard gives them;
# never by widget model ids.
JS_HELPERS = r"""
() => {
  if (window.__sw) return;
  // textContent, not innerText: innerText forces a layout, and polling it would slow the page it measures
  const text = (el) => (el ? el.textContent || '' : '').replace(/\s+/g, ' ').trim();
  const sw = {
    button(label) {
      return Array.from(document.querySelectorAll('button')).find(b => text(b) === label) || null;
    },
    dashboard() { return document.querySelector('.sw-dashboard'); },
    keysArea() { const d = sw.dashboard(); return d && d.querySelector('.sw-keys'); },
    // the HTML widget's content element: it holds the styled text (its colour says error or not)
    status() { const d = sw.dashboard(); return d && d.querySelector('.sw-status .widget-html-content'); },
    // the sentence a student reads (a divergence's rows and images wait behind the details toggle)
    // the status box (it scrolls inside a fixed height) holds the sentence, then the folded details
    statusLine() { const s = sw.status(); const b = s && (s.querySelector('.sw-status-box') || s);
                   return b && (b.firstElementChild || b); },
    statusText() { return text(sw.statusLine()); },
    counter() { const d = sw.dashboard(); return d && d.querySelector('.sw-counter .widget-html-content'); },
    iteration() {
      const m = /iteration (\d+)/.exec(text(sw.counter()));
      return m ? parseInt(m[1]) : -1;
    },
    figure(title) {
      return Array.from(document.querySelectorAll('.bqplot')).find(f => {
        const t = f.querySelector('.mainheading');
        return t && text(t) === title;
      }) || null;
    },
    lossPoints() {
      const dash = sw.dashboard();
      const f = dash && dash.querySelector('.sw-loss');
      const path = f && f.querySelector('path.line');
      const d = path ? path.getAttribute('d') || '' : '';
      return (d.match(/-?[\d.]+(e[-+]?\d+)?,-?[\d.]+(e[-+]?\d+)?/g) || []).length;
    },
    heatmaps() {
      // bqplot's HeatMap draws on a canvas and shows it as one SVG <image>; W's ten come first
      const d = sw.dashboard();
      return d ? Array.from(d.querySelectorAll('.bqplot image')) : [];
    },
    wImage(i) {
      const d = sw.dashboard();
      const img = d ? d.querySelectorAll('.sw-weights image')[i || 0] : null;
      return img ? (img.getAttribute('href') || img.getAttribute('xlink:href') || '') : '';
    },
    // the part of the page the dashboard is seen through: the notebook's own scroll box (Lab), or the window
    viewArea() {
      const dash = sw.dashboard();
      let box = dash.parentElement;  // the first ancestor that scrolls
      while (box && box !== document.body) {
        const s = getComputedStyle(box);
        if (/(auto|scroll)/.test(s.overflowY) && box.scrollHeight > box.clientHeight) break;
        box = box.parentElement;
      }
      const r = (box && box !== document.body) ? box.getBoundingClientRect()
                                               : {top: 0, left: 0, bottom: innerHeight, right: innerWidth};
      return {top: r.top, left: r.left, bottom: r.bottom, right: r.right};
    },
    state() {
      const s = sw.statusLine();
      return {status: sw.statusText(), color: s ? getComputedStyle(s).color : '',
              iteration: sw.iteration(), counter: text(sw.counter()), lossPoints: sw.lossPoints(),
              w0: sw.wImage(0).length + ':' + hash(sw.wImage(0)), heatmaps: sw.heatmaps().length};
    },
  };
  function hash(s) { let h = 0; for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0; return h; }
  window.__sw = sw;
}
"""


# stamps every change of the iteration counter with the page's clock
WATCH_COUNTER = r"""
() => {
  const sw = window.__sw;
  if (sw.counterObserver) sw.counterObserver.disconnect();
  sw.lastChange = performance.now();
  sw.lastIteration = sw.iteration();
  sw.counterObserver = new MutationObserver(() => {
    sw.lastChange = performance.now();
    sw.lastIteration = sw.iteration();
  });
  sw.counterObserver.observe(sw.counter(), {subtree: true, childList: true, characterData: true});
}
"""

STAMPED_CLICK = "([label, key]) => { window.__sw[key] = performance.now(); window.__sw.button(label).click(); }"


class DashboardPage:
    """The dashboard in a Playwright page: click by label, read status, counter, loss path and W heatmaps."""

    def __init__(self, page):
        self.page = page

    def wait_rendered(self, timeout_s: float) -> None:
        self.page.wait_for_function(
            "() => Array.from(document.querySelectorAll('button')).some(b => b.textContent.trim() === 'next_batch')"
            " && document.querySelectorAll('.bqplot image').length >= 10", timeout=timeout_s * 1000)
        self.page.evaluate(JS_HELPERS)
        self.page.wait_for_function("() => window.__sw.status() && window.__sw.counter()", timeout=30_000)

    def wait_drawn(self, timeout_s: float, shot, server) -> None:
        """wait_rendered(); if it never comes, a screenshot at `shot` and an error naming the page's tracebacks and
        the tail of the server's log (what a reader of a red CI run needs)."""
        try:
            self.wait_rendered(timeout_s)
        except Exception:
            self.page.screenshot(path=str(shot))
            raise AssertionError(f"no dashboard after {timeout_s} s; errors: {harness.lab_error_outputs(self.page)}; "
                                 f"server log:\n{server.tail()}") from None

    def state(self) -> dict:
        self.page.evaluate(JS_HELPERS)
        return self.page.evaluate("() => window.__sw.state()")

    def button(self, label: str):
        return self.page.get_by_role("button", name=label, exact=True)

    def click(self, label: str) -> None:
        self.button(label).click(timeout=30_000)

    def wait_for(self, js_condition: str, timeout_s: float = 30, arg=None) -> None:
        # poll every 100 ms, not every frame: the page under test should spend its time drawing
        self.page.wait_for_function(js_condition, arg=arg, timeout=timeout_s * 1000, polling=100)

    def click_and_wait_status(self, label: str, before: str, timeout_s: float = 30) -> dict:
        """Click, then wait until the status line's text differs from `before`; returns the new state."""
        self.click(label)
        self.wait_for("(before) => window.__sw.statusText() !== before",
                      timeout_s, before)
        return self.state()

    def arm_keys(self) -> None:
        """A click on the dashboard (its status line: no button there): its keys act from now on, until a click
        elsewhere or Escape. The frame says so (the class sw-keys-armed)."""
        self.page.locator(".sw-dashboard .sw-status").first.click(position={"x": 4, "y": 4}, timeout=30_000)
        self.wait_for("() => window.__sw.dashboard().classList.contains('sw-keys-armed')", 10)

    def keys_armed(self) -> bool:
        return self.page.evaluate("() => window.__sw.dashboard().classList.contains('sw-keys-armed')")

    def press_key(self, key: str, before: str, timeout_s: float = 30, arm: bool = True) -> dict:
        """Click the dashboard first (hovering does nothing; `arm=False`: a click on one of its buttons has given it
        the keys already), press `key`, then wait until the status line's text differs from `before`; returns the
        new state."""
        if arm:
            self.arm_keys()
        self.page.keyboard.press(key)
        self.wait_for("(before) => window.__sw.statusText() !== before", timeout_s, before)
        return self.state()

    def iteration(self) -> int:
        return self.page.evaluate("() => window.__sw.iteration()")

    def play_then_pause(self, until_iteration: int, timeout_s: float, settle_limit_s: float = 30) -> dict:
        """▶ Play until the page shows `until_iteration` (or `timeout_s` passed), ‖ Pause, then time in the page
        how long the counter kept moving. A busy machine shows fewer iterations in the time: not a failure.

        Play and Pause are clicked from page script so the page clock stamps them; Playwright's own click first
        waits for the button to hold still over two frames, seconds on a page busy drawing."""
        self.page.evaluate(WATCH_COUNTER)
        start = self.iteration()
        self.page.evaluate(STAMPED_CLICK, [PLAY, "playAt"])
        t0 = time.monotonic()
        try:
            self.wait_for("(n) => window.__sw.lastIteration >= n", timeout_s, until_iteration)
        except PlaywrightTimeoutError:
            pass
        reached = self.iteration()
        played_s = time.monotonic() - t0
        self.page.evaluate(STAMPED_CLICK, [PAUSE, "pauseAt"])
        clicked = time.monotonic()
        # settled: the counter has not changed for 2 s of page time (or give up after settle_limit_s)
        while time.monotonic() - clicked < settle_limit_s:
            time.sleep(0.2)
            quiet = self.page.evaluate("() => performance.now() - Math.max(window.__sw.lastChange, "
                                       "window.__sw.pauseAt)")
            if quiet >= 2000:
                break
        w = self.page.evaluate("() => ({last: window.__sw.iteration(), lastChange: window.__sw.lastChange, "
                               "pauseAt: window.__sw.pauseAt, playAt: window.__sw.playAt})")
        return {"started_at": start, "reached": reached, "paused_at": w["last"], "played_s": played_s,
                "settle_s": max(0.0, w["lastChange"] - w["pauseAt"]) / 1000,
                "page_s": (w["lastChange"] - w["playAt"]) / 1000,
                "still_moving": time.monotonic() - clicked >= settle_limit_s}


def screenshot(page, path, locator_js: str = "() => window.__sw.dashboard()") -> None:
    """A picture of the dashboard alone (the whole viewport if it cannot be found)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = page.evaluate_handle(locator_js)
    element = handle.as_element()
    if element is not None:
        element.scroll_into_view_if_needed()
        element.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path))


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# The one-screen rule: with the dashboard's top at the top of the notebook, these must be visible at once
LAYOUT = r"""
(phases) => {
  const dash = document.querySelector('.sw-dashboard');
  const area = window.__sw.viewArea();  // the notebook's own scroll box (Lab) or the page (Voila)
  const text = (el) => (el.textContent || '').replace(/\s+/g, ' ').trim();
  const buttons = Array.from(dash.querySelectorAll('button'));
  const rect = (el) => { const r = el.getBoundingClientRect();
                         return {top: r.top, left: r.left, bottom: r.bottom, right: r.right, width: r.width}; };
  const items = {};
  for (const p of phases) items[p] = buttons.find(b => text(b) === p);
  items.play = buttons.find(b => /Play|Pause/.test(text(b)));
  items.lr = dash.querySelector('.sw-lr'); items.speed = dash.querySelector('.sw-speed');
  items.status = dash.querySelector('.sw-status'); items.loss = dash.querySelector('.sw-loss');
  dash.querySelectorAll('.sw-weights').forEach((w, i) => { items['W' + i] = w; });
  const out = {area: {top: area.top, left: area.left, bottom: area.bottom, right: area.right}, items: {},
               hidden: [], tracks: {}};
  for (const [k, el] of Object.entries(items)) {
    if (!el) { out.hidden.push(k + ' (missing)'); continue; }
    const r = rect(el);
    out.items[k] = r;
    if (r.top < area.top - 1 || r.bottom > area.bottom + 1 || r.left < area.left - 1 || r.right > area.right + 1
        || r.width === 0) out.hidden.push(k);
  }
  for (const k of ['lr', 'speed']) {
    const t = items[k] && (items[k].querySelector('.noUi-target') || items[k].querySelector('.slider'));
    out.tracks[k] = t ? t.getBoundingClientRect().width : 0;
  }
  return out;
}
"""

SCROLL_TO_TOP = "() => window.__sw.dashboard().scrollIntoView({block: 'start'})"
LOSS_TOP = "() => window.__sw.dashboard().querySelector('.sw-loss').getBoundingClientRect().top" \
           " - window.__sw.dashboard().getBoundingClientRect().top"


def layout(page) -> dict:
    """Scroll the dashboard's top to the top of the notebook; what of the one-screen set is out of view."""
    page.evaluate(SCROLL_TO_TOP)
    page.wait_for_timeout(300)
    return page.evaluate(LAYOUT, PHASES)


def loss_offset(page) -> float:
    """The loss figure's top, in px below the dashboard's top: it must not move during a session."""
    return page.evaluate(LOSS_TOP)


# code run in the notebook's kernel as a cell would run it (its source is the line a status quotes): 'ok' or the error
KERNEL_EXEC = r"""
async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const reply = await kernel.requestExecute({code, silent: true}).done;
  return reply.content.status === 'ok' ? 'ok' : reply.content.ename + ': ' + reply.content.evalue;
}
"""


# the kernel's iopub stream, as JupyterLab receives it: every error and stderr message is written down
LISTEN_IOPUB = r"""
() => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  window.__iopub = [];
  kernel.iopubMessage.connect((_, msg) => {
    const t = msg.header.msg_type;
    if (t === 'error' || (t === 'stream' && msg.content.name === 'stderr'))
      window.__iopub.push(t + ': ' + String(msg.content.text || (msg.content.ename + ': ' + msg.content.evalue))
                          .slice(0, 400));
  });
}
"""


def listen_iopub(page) -> None:
    page.evaluate(LISTEN_IOPUB)


# The kernel's comm manager logs to stderr every message for a comm id it does not know. ipywidgets' front end sends
# such messages by design: JupyterLab's widget manager probes a kernel for its control comm as soon as it connects
# ("No such comm target registered: jupyter.widget.control", then the probe's own id in "No such comm: <id>" for its
# message and its close; on a loaded machine they come after listen_iopub(), in part or in whole). They reach no
# student and come from no code of the kit; every other stderr line or error still fails a test.
COMM_LOG = ("No such comm target registered: jupyter.widget.control", "No such comm: ")


def iopub_errors(page) -> list[str]:
    """What the kernel wrote to stderr or raised since listen_iopub(), less the comm manager's log of unknown ids."""
    return [m for m in page.evaluate("() => window.__iopub || []") if not any(c in m for c in COMM_LOG)]


def drag_slider(page, css_class: str, to_right: bool = True) -> str:
    """Drag a slider's knob past one end of its track (one drag, as a student would); returns its readout."""
    handle = page.locator(f".{css_class} .noUi-handle").first
    track = page.locator(f".{css_class} .noUi-target").first
    hb, tb = handle.bounding_box(), track.bounding_box()
    y = hb["y"] + hb["height"] / 2
    page.mouse.move(hb["x"] + hb["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(tb["x"] + (tb["width"] + 30 if to_right else -30), y, steps=6)
    page.mouse.up()
    page.wait_for_timeout(300)
    if css_class == "sw-lr":  # the lr's readout is the text box beside its slider (one can type into it)
        return page.input_value(".sw-lr-text input").strip()
    return page.inner_text(f".{css_class} .widget-readout").strip()


def open_tab(page, name: str) -> None:
    """Open a tab's pane (no pane is open at first); a tab already open stays open (a second click closes it)."""
    tab = page.locator(".sw-views .sw-tab", has_text=re.compile(rf"^\s*{re.escape(name)}\s*$")).first
    if "mod-active" not in (tab.get_attribute("class", timeout=30_000) or "").split():
        tab.click(timeout=30_000)
    page.wait_for_function("(name) => Array.from(document.querySelectorAll('.sw-views .sw-tab.mod-active'))"
                           ".some(t => t.textContent.trim() === name)", arg=name, timeout=30_000)


KERNEL_EXPR = r"""
async (expr) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const reply = await kernel.requestExecute({code: '', silent: true, user_expressions: {v: expr}}).done;
  const v = reply.content.user_expressions.v;
  return v.status === 'ok' ? v.data['text/plain'] : 'error: ' + v.evalue;
}
"""


def kernel_value(page, expr: str) -> str:
    """repr of `expr` in the notebook's kernel, asked from the page (JupyterLab)."""
    return page.evaluate(KERNEL_EXPR, expr)


def shift_enter_runs_the_cell_below(page) -> None:
    """Shift-Enter, then the cell below the dashboard (`ran_by_shift_enter = dash.trainer.iteration`) has run."""
    page.keyboard.press("Shift+Enter")
    for _ in range(50):
        if kernel_value(page, "globals().get('ran_by_shift_enter')") != "None":
            break
        page.wait_for_timeout(200)
    assert kernel_value(page, "globals().get('ran_by_shift_enter')") == kernel_value(page, "dash.trainer.iteration")


ONE_SCREEN = r"""
() => {
  const d = window.__sw.dashboard(), a = window.__sw.viewArea();
  const cells = window.jupyterapp.shell.currentWidget.content.widgets;
  const i = cells.findIndex(c => c.node.contains(d));
  const box = (el) => { const r = el.getBoundingClientRect(); return {top: r.top, bottom: r.bottom}; };
  const next = cells[i + 1].node;
  // its first line on the page: the first line typed in a code cell, a rendered markdown cell's first block
  const line = Array.from(next.querySelectorAll('.cm-line, .jp-RenderedHTMLCommon > *'))
    .find(el => el.getBoundingClientRect().height > 0) || next;
  return {area: {top: a.top, bottom: a.bottom}, dashboard: box(d), status: box(d.querySelector('.sw-status')),
          loss: box(d.querySelector('.sw-loss')), next: box(next), line: box(line),
          panes: d.querySelector('.sw-panes').offsetParent !== null};
}
"""


def one_screen(page, shot=None) -> dict:
    """With the dashboard's top scrolled to the top of the notebook: its status line, its loss plot and the top of
    the cell below it (its first line, at least the upper half) inside the notebook's view (no tab pane open: issue
    18's 720 px screen); `shot`: a screenshot of that screen."""
    page.evaluate("() => window.__sw.dashboard().scrollIntoView({block: 'start'})")
    page.wait_for_timeout(800)  # bqplot redraws on the next frames after a scroll or resize
    if shot is not None:
        page.screenshot(path=str(shot))
    m = page.evaluate(ONE_SCREEN)
    bottom = m["area"]["bottom"]
    assert not m["panes"], "a tab pane is open before any click on a tab"
    for part in ("status", "loss", "line"):
        # the status and the loss plot whole; of the next cell, its top: at least the upper half of its first line
        end = m[part]["bottom"] if part != "line" else (m[part]["top"] + m[part]["bottom"]) / 2
        assert m[part]["top"] >= m["area"]["top"] - 1 and end <= bottom + 1, \
            f"{part} at {m[part]['top']:.0f}..{m[part]['bottom']:.0f}, the notebook's view {m['area']}: {m}"
    return m
