"""The dashboard's front-end code, as ES modules run by anywidget (its front end ships with the package, for
JupyterLab, Notebook 7, Voila, VS Code and Colab alike): the keyboard (keys.js) and the export's browser download
(download.js). ipywidgets' own widgets run no script of their own; these two are the only code of ours in the page.
"""

from __future__ import annotations

import pathlib

import anywidget
import traitlets

from .page import CONTROLS_CSS, PASS_KEYS

__all__ = ["Download", "KeyReader"]

HERE = pathlib.Path(__file__).parent


def _module(name: str) -> str:
    """The module's text, read once: a Path would make anywidget watch the file and keep every widget alive
    (its file signal holds each instance), so a closed dashboard would never be freed."""
    return (HERE / name).read_text(encoding="utf-8")


class KeyReader(anywidget.AnyWidget):
    """Hears the dashboard's keys in the page (keys.js) while the focus is inside the dashboard it sits in, and
    sends each one as a custom message: {"key", "shiftKey", "repeat", "view", "n"} (keys.Keys.event reads it)."""

    _esm = _module("keys.js")
    pass_keys = traitlets.List(traitlets.Unicode(), default_value=PASS_KEYS).tag(sync=True)
    controls = traitlets.Unicode(CONTROLS_CSS).tag(sync=True)


class Download(anywidget.AnyWidget):
    """A browser download (download.js): a "download again" link of a data: URL, clicked once by the page when a new
    `token` arrives, before `until` (ms since the epoch): a reloaded page or a second view downloads nothing."""

    _esm = _module("download.js")
    url = traitlets.Unicode("").tag(sync=True)
    name = traitlets.Unicode("").tag(sync=True)
    label = traitlets.Unicode("").tag(sync=True)
    token = traitlets.Unicode("").tag(sync=True)
    until = traitlets.Float(0).tag(sync=True)
