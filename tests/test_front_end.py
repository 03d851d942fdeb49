"""The dashboard's front-end code is three ES modules run by anywidget, files of the package: no script hides in an
HTML value (an <img onerror>, an inline handler) anywhere in the package."""

from __future__ import annotations

import re
from pathlib import Path

import softmax_widgets
from softmax_widgets.ui.front_end import Download, KeyReader, Upload
from softmax_widgets.ui.page import CONTROLS_CSS, PASS_KEYS

PACKAGE = Path(softmax_widgets.__file__).parent


def test_no_inline_script_anywhere_in_the_package():
    hits = []
    for path in PACKAGE.rglob("*"):
        if path.suffix in (".py", ".js", ".ipynb", ".html", ".md", ".css") and path.is_file():
            text = path.read_text(encoding="utf-8")
            hits += [f"{path.relative_to(PACKAGE)}: {m.group(0)}"
                     for m in re.finditer(r"\bon(error|load)\b|<script|javascript:", text, re.IGNORECASE)]
    assert hits == []


def test_the_modules_are_the_files_beside_front_end():
    keys, download, upload = KeyReader(), Download(), Upload(received=print, refused=print)
    try:
        for widget, name in ((keys, "keys.js"), (download, "download.js"), (upload, "upload.js")):
            source = (PACKAGE / "ui" / name).read_text(encoding="utf-8")
            assert widget._esm == source and "export default" in source and "render(" in source
        assert keys.pass_keys == PASS_KEYS and keys.controls == CONTROLS_CSS  # one table, read by the page
    finally:
        keys.close()
        download.close()
        upload.close()
