"""The dashboard's front-end code, as ES modules run by anywidget (its front end ships with the package, for
JupyterLab, Notebook 7, Voila, VS Code and Colab alike): the keyboard (keys.js), the export's browser download
(download.js) and its upload of a state file (upload.js). ipywidgets' own widgets run no script of their own; these
three are the only code of ours in the page.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import anywidget
import traitlets

from softmax_widgets.classroom import UPLOAD_LIMIT_BYTES

from .messages import say
from .page import CONTROLS_CSS, PASS_KEYS

__all__ = ["CHUNK_BYTES", "Download", "KeyReader", "Upload", "size_words"]

# one piece of an upload, one websocket message: far under tornado's 10 MiB (JupyterLab) and the app's 20 MiB
CHUNK_BYTES = 2**20

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


def size_words(n: int) -> str:
    """A file's size as a student reads it: 1.0 GB, 18 MB, 900 kB, 12 bytes."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= scale:
            value = n / scale
            return f"{value:,.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    return f"{n} bytes"


class Upload(anywidget.AnyWidget):
    """A state file's upload (upload.js) that checks the size in the browser: a file over `limit` is never sent,
    only its name and size, and `refused` gets the reason in words; a file under it comes in pieces of `chunk`
    bytes (each a websocket message far under the server's limit) and `received(name, data)` gets it whole.
    The pieces are checked here too (a page that skipped the check, pieces out of order): nothing over `limit`
    is ever held."""

    _esm = _module("upload.js")
    label = traitlets.Unicode("load state file (.pt)").tag(sync=True)
    accept = traitlets.Unicode(".pt").tag(sync=True)
    limit = traitlets.Int(UPLOAD_LIMIT_BYTES).tag(sync=True)
    chunk = traitlets.Int(CHUNK_BYTES).tag(sync=True)

    def __init__(self, received: Callable[[str, bytes], object], refused: Callable[[str], object], **kwargs):
        super().__init__(**kwargs)
        self.received, self.refused = received, refused
        self._upload: str | None = None  # the upload whose pieces are coming
        self._name, self._size, self._data = "", 0, bytearray()
        self.on_msg(self._message)

    def _message(self, _widget, content, buffers) -> None:
        if not isinstance(content, dict):
            return
        event, name, size = content.get("event"), str(content.get("name", "the file")), content.get("size")
        if not isinstance(size, int) or size < 0:
            return
        if event == "too_big":
            self.refused(say("upload.too_big", name=name, size=size_words(size), limit=size_words(self.limit)))
        elif event == "unreadable":
            self.refused(say("upload.unreadable", name=name, error=str(content.get("error", ""))[:200]))
        elif event == "piece":
            self._piece(str(content.get("upload", "")), content.get("offset"), name, size,
                        bytes(buffers[0]) if buffers else b"")

    def _piece(self, upload: str, offset, name: str, size: int, data: bytes) -> None:
        if offset == 0:  # a new upload: whatever was coming before is dropped
            self._upload, self._name, self._size, self._data = upload, name, size, bytearray()
            if size > self.limit:  # the browser's check skipped: the bytes are not kept
                self._upload = None
                self.refused(say("upload.too_big", name=name, size=size_words(size), limit=size_words(self.limit)))
                return
        elif upload != self._upload:
            return  # a piece of an upload dropped or refused before
        if offset != len(self._data) or len(self._data) + len(data) > self._size:
            self._upload, self._data = None, bytearray()
            self.refused(say("upload.broken", name=name, size=size_words(self._size)))
            return
        self._data += data
        if len(self._data) == self._size:
            whole, self._upload, self._data = bytes(self._data), None, bytearray()
            self.received(name, whole)
