"""Read and click the dashboard the way a student's browser shows it (JupyterLab or Voila alike)."""

from __future__ import annotations

import re
import time

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

PHASES = ["next_batch", "forward", "zero_grad", "backward", "sgd"]
PLAY, PAUSE = "▶ Play", "⏸ Pause"

# Page-side helpers, installed once per page. Elements are found by what a student reads (button labels,
# the status line's first words, figure titles), never by widget model ids.
JS_HELPERS = r"""
() => {
  if (window.__sw) return;
  const text = (el) => (el ? el.innerText || el.textContent || '' : '').trim();
  const sw = {
    button(label) {
      return Array.from(document.querySelectorAll('button')).find(b => text(b) === label) || null;
    },
    dashboard() {
      // the smallest box holding both the next_batch button and the loss figure
      const b = sw.button('next_batch');
      let el = b;
      while (el && !el.querySelector('.bqplot')) el = el.parentElement;
      return el;
    },
    htmls() { const d = sw.dashboard(); return d ? Array.from(d.querySelectorAll('.widget-html-content')) : []; },
    status() {
      if (sw._status && sw._status.isConnected) return sw._status;
      // the status line: the one HTML widget that speaks of a phase or says how to start
      const re = new RegExp('^(next_batch|forward|zero_grad|backward|sgd|reset|learning rate|batch size|'
                            + 'epoch \\d+ done)\\b|press next_batch|\\(\\)');
      sw._status = sw.htmls().find(h => re.test(text(h)) && !/^epoch \d+ \(batch/.test(text(h))) || null;
      return sw._status;
    },
    counter() { return sw.htmls().find(h => /^epoch \d+ \(batch \d+ of \d+\) · iteration \d+/.test(text(h))) || null; },
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
      const f = sw.figure('loss per iteration');
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
      const img = sw.heatmaps()[i || 0];
      return img ? (img.getAttribute('href') || img.getAttribute('xlink:href') || '') : '';
    },
    state() {
      const s = sw.status();
      return {status: text(s), color: s ? getComputedStyle(s.firstElementChild || s).color : '',
              iteration: sw.iteration(), counter: text(sw.counter()), lossPoints: sw.lossPoints(),
              w0: sw.wImage(0).length + ':' + hash(sw.wImage(0)), heatmaps: sw.heatmaps().length};
    },
  };
  function hash(s) { let h = 0; for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0; return h; }
  window.__sw = sw;
}
"""


class DashboardPage:
    """The dashboard in a Playwright page: click by label, read status, counter, loss path and W heatmaps."""

    def __init__(self, page):
        self.page = page

    def wait_rendered(self, timeout_s: float) -> None:
        self.page.wait_for_function(
            "() => Array.from(document.querySelectorAll('button')).some(b => b.innerText.trim() === 'next_batch')"
            " && document.querySelectorAll('.bqplot image').length >= 10", timeout=timeout_s * 1000)
        self.page.evaluate(JS_HELPERS)
        self.page.wait_for_function("() => window.__sw.status() && window.__sw.counter()", timeout=30_000)

    def state(self) -> dict:
        self.page.evaluate(JS_HELPERS)
        return self.page.evaluate("() => window.__sw.state()")

    def button(self, label: str):
        return self.page.get_by_role("button", name=label, exact=True)

    def click(self, label: str) -> None:
        self.button(label).click(timeout=30_000)

    def wait_for(self, js_condition: str, timeout_s: float = 30, arg=None) -> None:
        # poll every 100 ms, not every frame: reading innerText forces a layout, which would slow the page down
        self.page.wait_for_function(js_condition, arg=arg, timeout=timeout_s * 1000, polling=100)

    def click_and_wait_status(self, label: str, before: str, timeout_s: float = 30) -> dict:
        """Click, then wait until the status line's text differs from `before`; returns the new state."""
        self.click(label)
        self.wait_for("(before) => { const s = window.__sw.status(); return s && s.innerText.trim() !== before; }",
                      timeout_s, before)
        return self.state()

    def iteration(self) -> int:
        return self.page.evaluate("() => window.__sw.iteration()")

    def play_then_pause(self, until_iteration: int, timeout_s: float) -> dict:
        """▶ Play until the page shows `until_iteration` (or `timeout_s` passed), ⏸ Pause, then time how long
        the counter kept moving. On a busy machine the page shows fewer iterations: that is not a failure."""
        start = self.iteration()
        self.click(PLAY)
        t0 = time.monotonic()
        try:
            self.wait_for("(n) => window.__sw.iteration() >= n", timeout_s, until_iteration)
        except PlaywrightTimeoutError:
            pass
        played_s = time.monotonic() - t0
        self.click(PAUSE)
        clicked = time.monotonic()
        last, last_change = self.iteration(), clicked
        # the counter must settle: watch it until it has not moved for 2 s (at most 20 s)
        while time.monotonic() - last_change < 2.0 and time.monotonic() - clicked < 20:
            time.sleep(0.05)
            now = self.iteration()
            if now != last:
                last, last_change = now, time.monotonic()
        return {"started_at": start, "paused_at": last, "played_s": played_s, "settle_s": last_change - clicked,
                "still_moving": time.monotonic() - clicked >= 20}


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
