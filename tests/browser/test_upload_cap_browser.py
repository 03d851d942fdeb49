"""Issue 21: a file too big for a state file, chosen in the Voila app's upload, is refused by the page before the
browser reads it (the app's Voila config puts the check on the page): the student reads why in an alert, and
nothing reaches the kernel, which goes on as before."""

from __future__ import annotations

import pytest
from dashboard_page import DashboardPage, open_tab
from harness import FIRST_RENDER_S

from softmax_widgets.classroom import UPLOAD_LIMIT_BYTES

pytestmark = pytest.mark.timeout(600)


def test_an_upload_too_big_is_refused_in_the_page_with_the_reason(voila, browser_page, tmp_path):
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(voila.url + "/", timeout=FIRST_RENDER_S * 1000)
    dash = DashboardPage(page)
    dash.wait_rendered(FIRST_RENDER_S)
    open_tab(page, "export")
    big = tmp_path / "big.pt"
    with open(big, "wb") as f:  # sparse: 17 MB to the browser, no disk used
        f.truncate(UPLOAD_LIMIT_BYTES + 2**20)
    said: list[str] = []
    page.on("dialog", lambda d: (said.append(d.message), d.dismiss()))
    with page.expect_file_chooser(timeout=30_000) as chooser:  # as a student does: the button, then a file
        page.locator(".sw-upload").first.click()
    chooser.value.set_files(str(big))
    page.wait_for_timeout(1000)
    assert said == ["big.pt is 17 MB: a state file of this lesson is a few MB at most (the limit is 16 MB). Choose "
                    "a .pt file that the Export tab or trainer.save(path) wrote."], said
    assert not page.locator(".sw-export-status", has_text="big.pt").count()  # the kernel never saw it
    before = dash.iteration()
    dash.click("Iteration")  # and the page still works
    dash.wait_for("(n) => window.__sw.iteration() > n", 60, before)
