"""The export tab: the run's files (CSV, W as PNG, the state file) and figures, and a state file's upload.

In JupyterLab a file goes into a folder beside the notebook; in Voila (whose folder is a temporary one on the
server) it reaches the browser as a download. The upload (front_end.Upload) checks a file's size in the browser:
a file too big for a state file is refused there with the reason, and never reaches the kernel.
"""

from __future__ import annotations

import base64
import io
import os
import time

from bqplot import Figure
from ipywidgets import HTML, Button, HBox, Layout, SelectMultiple, Text, VBox

from softmax_widgets import export, persist
from softmax_widgets.ui.front_end import Download, Upload

from .base import bad, ok

__all__ = ["EXPORTS", "MIME", "ExportPane", "in_voila"]

EXPORTS = "exports"  # files go into this folder beside the notebook (the kernel's working directory)


def in_voila() -> bool:
    """True in a kernel Voila started: its files land in a temporary folder on the server, lost when it stops."""
    return (os.environ.get("SERVER_SOFTWARE", "").startswith("voila")
            or any(k in os.environ for k in ("VOILA_PREHEAT", "VOILA_BASE_URL", "VOILA_KERNEL_ID")))


MIME = {"csv": "text/csv", "weights": "image/png", "state": "application/octet-stream"}


class ExportPane:
    """Buttons that make the run's files (CSV, W as PNG, the state file) and figures, and an upload that loads a
    state file into the running Trainer. In JupyterLab a file goes into the folder shown; in Voila (whose folder
    is a temporary one on the server) it reaches the browser as a download."""

    def __init__(self, trainer, figures: dict[str, Figure], browser_download: bool | None = None):
        self.trainer, self.figures = trainer, figures
        self.browser_download = in_voila() if browser_download is None else browser_download
        # beside the notebook (the kernel's working directory), in a folder of their own; made on first write
        self.folder = Text(value=os.path.join(os.getcwd(), EXPORTS), description="folder",
                           layout=Layout(width="520px"))
        self.names = {"csv": "softmax_run.csv", "weights": "softmax_W.png", "state": "softmax_state.pt"}
        self.buttons = {"csv": Button(description="history CSV", tooltip="one row per iteration"),
                        "weights": Button(description="W as image grid PNG", layout=Layout(width="180px")),
                        "state": Button(description="state file", tooltip="Trainer.load(path) continues from it")}
        for key, b in self.buttons.items():
            b.on_click(lambda _, key=key: self.write(key))
        self.figure = SelectMultiple(options=list(figures), value=list(figures)[:1], rows=6, description="figures",
                                     layout=Layout(width="420px"))
        self.png, self.svg = Button(description="PNG (download)"), Button(description="SVG (download)")
        self.png.on_click(lambda _: self.download("png"))
        self.svg.on_click(lambda _: self.download("svg"))
        # the browser checks the size before sending a byte: a 1 GB file is refused there, with the reason
        self.upload = Upload(received=lambda name, data: self.load(data, name), refused=self.refuse)
        self.upload.add_class("sw-upload")
        self.status = HTML()
        # the browser download (download.js): a link made from the file's bytes, clicked once by the page when it comes
        self.link = Download()
        self.link.add_class("sw-export-link")
        self._downloads = 0
        where = ("Files arrive as downloads in your browser's download folder." if self.browser_download else
                 "Files go into the folder above (on the machine that runs the kernel).")
        self.widget = VBox([HBox([self.folder]) if not self.browser_download else HBox(),
                            HBox(list(self.buttons.values())), HTML(f"<small>{where} Figures are drawn by the "
                                                                   "browser: PNG/SVG always arrive as a download "
                                                                   "from the page.</small>"),
                            HBox([self.figure, VBox([self.png, self.svg])]),
                            HBox([self.upload, HTML("<small>continues the uploaded run here; ↶ undo takes the load "
                                                    "back</small>")]),
                            self.status, self.link])

    def _bytes(self, key: str) -> tuple[bytes, str]:
        if key == "csv":
            return export.history_to_csv(self.trainer).encode(), f"{len(self.trainer.history.loss)} iterations"
        if key == "weights":
            buf = io.BytesIO()
            export.weight_grid_image(self.trainer).save(buf, format="PNG")
            return buf.getvalue(), "W's columns as images"
        buf = io.BytesIO()
        self.trainer.save(buf)
        return buf.getvalue(), f"iteration {self.trainer.iteration}"

    def write(self, key: str) -> str | None:
        """Make one file: into the folder (JupyterLab) or as a browser download (Voila). The status line says
        where, or why not (never a traceback). Returns the path written, or the name downloaded."""
        name = self.names[key]
        try:
            data, what = self._bytes(key)
        except Exception as err:  # not a file problem: still words, not a traceback
            self.status.value = bad(f"could not export {name}: {type(err).__name__}: {err}")
            return None
        if self.browser_download:
            self.offer(name, data, MIME[key])
            self.status.value = ok(f"sent {name} to your browser ({len(data):,} bytes, {what}): look in its "
                                    "download folder" + ("; Trainer.load(path) continues from it"
                                                         if key == "state" else ""))
            return name
        folder = os.path.expanduser(self.folder.value.strip() or ".")
        path = os.path.join(folder, name)
        try:
            os.makedirs(folder, exist_ok=True)
            with open(path, "wb") as f:  # open() here: a refused folder is an OSError with a plain reason
                f.write(data)
        except OSError as err:
            self.status.value = bad(f"could not write {path}: {err.strerror or err}. Type a folder you can write "
                                     "to in the box above and press the button again.")
            return None
        if key == "state":
            what += f"; Trainer.load('{path}') continues from it"
        self.status.value = ok(f"wrote {os.path.abspath(path)} ({len(data):,} bytes, {what})")
        return path

    def offer(self, name: str, data: bytes, mime: str) -> None:
        """A browser download of `data`: a data: link, clicked once by the page as it arrives (within two minutes:
        a page reloaded later with this widget's state downloads nothing)."""
        self._downloads += 1
        with self.link.hold_sync():  # one message: the new token comes with its link
            self.link.url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
            self.link.name, self.link.label = name, f"download {name} again ({len(data):,} bytes)"
            self.link.until = (time.time() + 120) * 1000
            self.link.token = f"{id(self)}-{self._downloads}"

    def refuse(self, why: str) -> None:
        """An upload refused before it was read (too big, unreadable): the reason, in red; nothing changes."""
        self.status.value = bad(why)

    def load(self, data: bytes, name: str) -> bool:
        """Load a state file's bytes into the running Trainer; a bad file changes nothing and says why in red."""
        try:
            state = persist.read(io.BytesIO(data), name=name)
            self.trainer.load_state_dict(state, source=name)
        except ValueError as err:
            self.status.value = bad(str(err))
            return False
        self.status.value = ok(f"loaded {name}: {self.trainer.where()}. ↶ undo takes the load back.")
        return True

    def download(self, fmt: str) -> list[str]:
        names = []
        for label in self.figure.value:
            name = "softmax_" + "".join(ch if ch.isalnum() else "_" for ch in label).strip("_") + f".{fmt}"
            fig = self.figures[label]
            fig.save_png(name) if fmt == "png" else fig.save_svg(name)
            names.append(name)
        self.status.value = (ok(f"asked the browser to download {', '.join(names)}: look in its download folder")
                             if names else bad("select one or more figures in the list first"))
        return names
