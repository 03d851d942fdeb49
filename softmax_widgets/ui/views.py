"""The dashboard's row of tabs below the live plots: W.grad, the batch, the bias, the autograd graph, the
confusion matrix ↔ mistakes, kept runs side by side, export.

A tab's pane joins the page when the tab is first opened: a figure first drawn inside a hidden tab measures a
0-pixel box. The dashboard pushes a heatmap pane only while its tab is open. Nothing here runs per phase: one
Trainer listener wakes only on epoch, reset and undo events (a set lookup otherwise), and a refresh is throttled
so a fast Play on the 8x8 digits (an epoch every few ms) does not flood the browser.
"""

from __future__ import annotations

import base64
import html
import io
import os
import time

import numpy as np
from bqplot import Axis, Bars, ColorScale, Figure, GridHeatMap, LinearScale, Lines, OrdinalScale
from bqplot.traits import array_from_json
from ipywidgets import HTML, Box, Button, FileUpload, HBox, Image, Layout, SelectMultiple, Tab, Text, VBox
from traitlets import Any

from softmax_widgets import evaluation, export, persist
from softmax_widgets.runs import RunStore, when
from softmax_widgets.throttle import Throttle

from .controls import descendants
from .plots import SMOOTH, iteration_ticks, kept_curve, run_colour, set_ticks
from .presentation import Sizer

__all__ = ["EXPORTS", "MAX_RUN_POINTS", "TABS", "Views", "describe", "short_name", "when"]

EXAMPLES = 12  # test images shown for a clicked cell
MAX_RUN_POINTS = 500  # points per compared curve
FITS_IN_LIST = 72  # characters of a kept run's description the 600 px list shows whole (13 px font)
COMPARE_PX = 460 - 60 - 10  # a compare figure's plotting width (its width less the left and right margins)
WAKE = frozenset({"epoch", "reset", "undo"})  # events after which W differs from what the views show
LIVE = "#000000"
EXPORTS = "exports"  # files go into this folder beside the notebook (the kernel's working directory)
# the row of tabs, in order; "graph" holds graph_view.GraphPanel when that module is there
TABS = ["W.grad", "batch", "bias", "graph", "evaluation", "compare runs", "export"]


def short_name(name: str, limit: int = 9) -> str:
    """A class name that fits under a rotated tick: "T-shirt/top" → "T-shirt", "Ankle boot" → "Boot"."""
    name = name.split("/")[0].strip()
    if len(name) <= limit:
        return name
    return name.split()[-1].capitalize() if " " in name else name[:limit - 1] + "."


def _cells_from_json(value, obj=None):
    """bqplot sends a selection as [[row, column], ...]: ints, never an object array (which cannot go back)."""
    if value is None:
        return None
    ar = array_from_json(value) if isinstance(value, dict) else np.asarray(value, dtype=np.int64)
    return np.asarray(ar, dtype=np.int64).reshape(-1, 2)


def _cells_to_json(value, obj=None):
    return None if value is None else np.asarray(value, dtype=np.int64).reshape(-1, 2).tolist()


class ConfusionMatrix(GridHeatMap):
    """GridHeatMap whose click selection round-trips: bqplot turns [[6, 0]] into a numpy object array and then
    fails to send it back ("ValueError: Unsupported dtype object" in the kernel's log on every cell click)."""

    selected = Any(None, allow_none=True).tag(sync=True, from_json=_cells_from_json, to_json=_cells_to_json)


def _fig(marks, axes, title, width="460px", height="300px", margin=(30, 50, 60, 10), **kw) -> Figure:
    top, bottom, left, right = margin
    return Figure(marks=list(marks), axes=list(axes), title=title, animation_duration=0,
                  fig_margin=dict(top=top, bottom=bottom, left=left, right=right), title_style={"font-size": "12px"},
                  layout=Layout(width=width, height=height), **kw)


def _png(pixels: np.ndarray, shape: tuple[int, int], side: int = 56) -> bytes:
    """A test image as PNG bytes, upscaled without blurring (one <img> each: lighter than a canvas heatmap)."""
    from PIL import Image as PILImage  # comes with torchvision

    img = PILImage.fromarray((pixels.reshape(shape) * 255).round().clip(0, 255).astype(np.uint8), "L")
    buf = io.BytesIO()
    img.resize((side, side), PILImage.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


def describe(run) -> str:
    """A kept run in words, truthful about where it stopped: "after epoch 1" or "paused in epoch 2"."""
    return str(run)


def _ok(text: str) -> str:
    return f"<span style='color:#2b6e2b'>{html.escape(text)}</span>"


def _bad(text: str) -> str:
    return f"<span style='color:#b00020'>{html.escape(text)}</span>"


class EvaluationPane:
    """The test set's confusion matrix; a click on a cell shows its images; accuracy per class."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.classes = list(trainer.data.classes)
        self.shape = tuple(trainer.data.image_shape)
        k = len(self.classes)
        self.result: evaluation.TestEvaluation | None = None
        self.cell: tuple[int, int] | None = None
        self._shown: tuple | None = None
        rows, cols = OrdinalScale(reverse=True), OrdinalScale()  # row 0 (the first class) on top
        # white → orange up to the largest mistake count; the diagonal (right answers) saturates on purpose, so
        # the off-diagonal cells, the mistakes, get the whole colour range
        self.color_scale = ColorScale(colors=["#ffffff", "#fdae6b", "#e6550d"], min=0, max=1,
                                      extrapolation="constant")
        # GridHeatMap, not the canvas HeatMap of the W maps: 100 SVG cells are cheap, redrawn once per epoch at
        # most, and only GridHeatMap has a click selection and a number printed in each cell
        short = [short_name(c) for c in self.classes]
        self.matrix = ConfusionMatrix(row=short, column=short, color=np.zeros((k, k), np.float32),
                                  scales={"row": rows, "column": cols, "color": self.color_scale},
                                  display_format=".0f", font_style={"font-size": "10px"},
                                  interactions={"click": "select"}, selected_style={"stroke": "#000",
                                                                                    "stroke-width": "3"})
        self.matrix_fig = _fig([self.matrix], [Axis(scale=cols, label="predicted", tick_rotate=-35),
                                               Axis(scale=rows, side="left",
                                                    label="true class", label_offset="62px")],
                               "confusion matrix of the test set", "470px", "440px",
                               (30, 75, 85, 10))
        # horizontal bars: every class name fits on its own line, unrotated
        bx, by = OrdinalScale(reverse=True), LinearScale(min=0.0, max=1.0)
        self.acc_bars = Bars(x=self.classes, y=np.zeros(k, np.float32), scales={"x": bx, "y": by},
                             colors=["#3182bd"], orientation="horizontal", padding=0.25)
        self.acc_fig = _fig([self.acc_bars], [Axis(scale=bx, side="left"),
                                              Axis(scale=by, tick_format=".0%", tick_values=np.linspace(0, 1, 6))],
                            "test accuracy per class", "380px", "320px", (30, 40, 90, 16))
        self.button = Button(description="evaluate now", tooltip="confusion matrix of the test set with W now")
        self.button.on_click(lambda _: self.refresh())
        self.note = HTML("<small>Recomputed after every epoch. Click a cell to see its test images.</small>")
        self.title = HTML()
        self.images = [Image(format="png", layout=Layout(width="56px", height="56px")) for _ in range(EXAMPLES)]
        self.captions = [HTML() for _ in range(EXAMPLES)]
        self.tiles = [VBox([i, c], layout=Layout(width="118px", display="none"))
                      for i, c in zip(self.images, self.captions, strict=True)]
        self.matrix.observe(self._on_selected, "selected")
        self.matrix.on_element_click(self._on_click)
        self.tiles_box = HBox(self.tiles, layout=Layout(flex_flow="row wrap"))
        self.widget = VBox([HBox([self.button, self.note]), HBox([self.matrix_fig, self.acc_fig]), self.title,
                            self.tiles_box])

    def refresh(self) -> None:
        """One pass over the test set: matrix, bars, and the clicked cell's images again."""
        self.result = ev = evaluation.evaluate_test_set(self.trainer)
        m = ev.confusion.numpy()
        off = m[~np.eye(len(m), dtype=bool)]
        with self.color_scale.hold_sync():
            self.color_scale.max = float(max(off.max(initial=0), 1))
        with self.matrix.hold_sync():
            self.matrix.color = m.astype(np.float32)
        with self.acc_bars.hold_sync():
            self.acc_bars.y = np.nan_to_num(ev.per_class_accuracy.numpy()).astype(np.float32)
        self.note.value = (f"<small>test accuracy {ev.accuracy:.1%} {when(self.trainer.history, ev.iteration)}. "
                           "Click a cell to see its test images.</small>")
        if self.cell is not None:
            self.show_cell(*self.cell)

    def _on_selected(self, change) -> None:
        sel = change["new"]
        if sel is not None and len(sel):
            r, c = np.asarray(sel).reshape(-1, 2)[-1]  # bqplot sends [[row, column], ...]
            self.show_cell(int(r), int(c))

    def _on_click(self, _mark, content: dict) -> None:
        data = content.get("data") or {}
        if "rowNum" in data and "columnNum" in data:
            self.show_cell(int(data["rowNum"]), int(data["columnNum"]))

    def show_cell(self, true: int, predicted: int) -> None:
        """Fill the strip with the first images of cell (true, predicted), the most confident first."""
        if self.result is None:
            self.refresh()
        # the images of the matrix on screen (self.result), so the title's count is the number clicked
        if self._shown is not None and self._shown[0] is self.result and self._shown[1:] == (true, predicted):
            return  # a click arrives twice from the browser: as `selected` and as element_click
        self.cell, self._shown = (true, predicted), (self.result, true, predicted)
        ex = evaluation.cell_examples(self.result, true, predicted, k=EXAMPLES)
        t, p = self.classes[true], self.classes[predicted]
        what = f"{t} predicted right" if true == predicted else f"{t} taken for {p}"
        self.title.value = (f"<b>{html.escape(what)}: {ex.count} image{'s' * (ex.count != 1)}</b>"
                            + (f" <small>(the {len(ex.indices)} most confident shown)</small>"
                               if ex.count > len(ex.indices) else ""))
        x = self.trainer.data.x_test
        for i, (img, cap, tile) in enumerate(zip(self.images, self.captions, self.tiles, strict=True)):
            if i < len(ex.indices):
                img.value = _png(x[int(ex.indices[i])].numpy(), self.shape)
                cap.value = (f"<div style='font-size:11px;line-height:1.25;white-space:nowrap'>p({html.escape(p)}) "
                             f"{float(ex.p_predicted[i]):.2f}" + ("" if true == predicted else
                                                                   f"<br>p({html.escape(t)}) {float(ex.p_true[i]):.2f}")
                             + "</div>")
            tile.layout.display = "flex" if i < len(ex.indices) else "none"

    @property
    def shown_count(self) -> int:
        return sum(t.layout.display != "none" for t in self.tiles)


class ComparePane:
    """Kept runs' loss (running mean) and test accuracy overlaid with the live run's."""

    def __init__(self, trainer, runs: RunStore):
        self.trainer, self.runs = trainer, runs
        xs, ys = LinearScale(), LinearScale(min=0.0)
        xa, ya = LinearScale(), LinearScale(min=0.0, max=1.0)
        self._scales = {"loss": {"x": xs, "y": ys}, "acc": {"x": xa, "y": ya}}
        self.lines: dict[object, tuple[Lines, Lines]] = {}  # run id (or "live") -> (loss, test accuracy)
        # both x axes run from 0 to the longest run, with whole-number ticks that fit (one epoch's single test
        # point made bqplot print "235" 17 times over a zero-width domain)
        self.x_axes = [Axis(scale=xs, label="iteration", tick_format="d"),
                       Axis(scale=xa, label="iteration", tick_format="d")]
        self.loss_fig = _fig([], [self.x_axes[0], Axis(scale=ys, side="left", label="loss", tick_format=".2f")],
                             f"loss (mean of ~{SMOOTH} iterations)")
        self.acc_fig = _fig([], [self.x_axes[1], Axis(scale=ya, side="left", label="test accuracy",
                                                      tick_format=".0%")],
                            "test accuracy (per epoch)")
        self.label = Text(placeholder=self.default_label(), description="label",
                          layout=Layout(width="260px"))
        self.keep = Button(description="keep this run", button_style="info",
                           tooltip="freeze this run's curves and settings to compare with the next one")
        self.kept = SelectMultiple(options=[], rows=4, description="kept", layout=Layout(width="600px"))
        # a list box cuts an entry longer than itself: such runs are written out in full below it, wrapping (and
        # every run is in the list's tooltip)
        self.kept_text = HTML(layout=Layout(max_width="900px"))
        self.remove = Button(description="remove selected")
        self.status = HTML("<small>Typical use: train at lr 0.1, keep; reset with lr 0.01, train, keep; "
                           "compare.</small>")
        self.keep.on_click(lambda _: self.keep_run())
        self.remove.on_click(lambda _: self.remove_selected())
        # the figures join the page when the tab is first opened (show_figures): bqplot drawn inside a hidden
        # tab measures a 0-pixel box and fills the browser console with negative-size SVG errors
        self.figures = HBox()
        # one legend above both figures, in HTML: bqplot's in-plot legend box is ~2x wider than its text and
        # covered the curves and the y axis whatever corner it was given
        self.legend = HTML()
        self.widget = VBox([HBox([self.label, self.keep]), HBox([self.kept, self.remove]), self.kept_text,
                            self.status, self.legend, self.figures])
        self.refresh_live()

    def show_figures(self) -> None:
        if not self.figures.children:
            self.figures.children = [self.loss_fig, self.acc_fig]

    def default_label(self) -> str:
        return f"lr {self.trainer.lr:g}, batch {self.trainer.batch_size}"

    def keep_run(self):
        if self.trainer.iteration == 0:
            self.status.value = _bad("nothing to keep yet: this run has no iteration. Train first (Step, Run "
                                     "epoch or Play), then keep it.")
            return None
        run = self.runs.add(self.trainer, label=self.label.value.strip() or self.default_label())
        self.label.value = ""
        self.status.value = _ok(f"kept {describe(run)}")
        self.refresh_live()  # the live run drawn up to now, beside its kept copy
        return run

    def remove_selected(self) -> None:
        chosen = list(self.kept.value)
        if not chosen:
            self.status.value = _bad("select a kept run in the list first, then press remove")
            return
        for run_id in chosen:
            self.runs.remove(run_id)
        self.status.value = _ok(f"removed {len(chosen)} run{'s' * (len(chosen) != 1)}")

    def _curves(self, history) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        x, mean = kept_curve(history.loss, MAX_RUN_POINTS)
        return (x, mean,
                np.asarray(history.epoch_iteration, np.float32), np.asarray(history.test_acc, np.float32))

    def _set(self, key, label: str, color: str, history, dashed: bool = False) -> None:
        if key not in self.lines:
            style = {"line_style": "dashed"} if dashed else {}
            self.lines[key] = (Lines(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32), colors=[color],
                                     scales=self._scales["loss"], **style),
                               Lines(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32), colors=[color],
                                     scales=self._scales["acc"], marker="circle",
                                     marker_size=30, **style))
        x, y, ex, ey = self._curves(history)
        for line, (lx, ly) in zip(self.lines[key], ((x, y), (ex, ey)), strict=True):
            with line.hold_sync():
                line.x, line.y, line.labels = lx, ly, [label]

    def refresh_runs(self, store: RunStore | None = None) -> None:
        """Kept runs changed: one pair of lines each (frozen curves: computed once), the list, the legends."""
        ids = {r.id for r in self.runs}
        for key in [k for k in self.lines if k != "live" and k not in ids]:
            for line in self.lines.pop(key):
                line.close()
        for i, run in enumerate(self.runs):
            if run.id not in self.lines:
                self._set(run.id, run.label, run_colour(i), run.history)
        self.kept.options = [(describe(r), r.id) for r in self.runs]
        full = [describe(r) for r in self.runs]
        self.kept.tooltip = "\n".join(full) or None
        long = [text for text in full if len(text) > FITS_IN_LIST]
        self.kept_text.value = "".join(f"<div style='font-size:12px;line-height:16px;white-space:normal;"
                                       f"overflow-wrap:anywhere'>in full: {html.escape(text)}</div>"
                                       for text in long)
        self._mount()

    def refresh_live(self) -> None:
        self._set("live", f"live: {self.default_label()}", LIVE, self.trainer.history, dashed=True)
        self.label.placeholder = self.default_label()
        self._mount()

    def _mount(self) -> None:
        order = [k for k in self.lines if k != "live"] + ["live"]
        loss, acc = [self.lines[k][0] for k in order], [self.lines[k][1] for k in order]
        if list(self.loss_fig.marks) != loss:
            self.loss_fig.marks, self.acc_fig.marks = loss, acc
        items = []
        for line in loss:
            border = f"3px {line.line_style if line.line_style == 'dashed' else 'solid'} {line.colors[0]}"
            items.append(f"<span style='margin-right:18px;white-space:nowrap'><span style='display:inline-block;"
                         f"width:26px;vertical-align:middle;border-top:{border}'></span> "
                         f"{html.escape(line.labels[0])}</span>")
        self.legend.value = f"<div style='font-size:12px'>{''.join(items)}</div>"
        self._x_range()

    def _x_range(self) -> None:
        """Both figures from iteration 0 to the longest run drawn (at least 10), ticks chosen to fit."""
        hi = max([10.0] + [float(m.x[-1]) for pair in self.lines.values() for m in pair if len(m.x)])
        for axis in self.x_axes:
            if axis.scale.min != 0.0 or axis.scale.max != hi:
                with axis.scale.hold_sync():
                    axis.scale.min, axis.scale.max = 0.0, hi
            set_ticks(axis, iteration_ticks(hi, COMPARE_PX))

    def labels(self) -> list[str]:
        """The legend, in drawing order (kept runs, then the live one)."""
        return [m.labels[0] for m in self.loss_fig.marks]


def in_voila() -> bool:
    """True in a kernel Voila started: its files land in a temporary folder on the server, lost when it stops."""
    return (os.environ.get("SERVER_SOFTWARE", "").startswith("voila")
            or any(k in os.environ for k in ("VOILA_PREHEAT", "VOILA_BASE_URL", "VOILA_KERNEL_ID")))


MIME = {"csv": "text/csv", "weights": "image/png", "state": "application/octet-stream"}
# Clicks the link once, in this page, within two minutes of being sent: a page reloaded with this widget's saved
# state, or a second view of it, downloads nothing. The <img> fails to load at once; its onerror is the only
# way an ipywidgets HTML value runs a line of script (innerHTML never runs <script>).
AUTO_CLICK = ("<img src='data:,' style='display:none' onerror=\"const a=this.previousElementSibling,"
              "w=window.__swDownloads=window.__swDownloads||{};if(!w['{token}']&&Date.now()<{until}){w['{token}']=1;"
              "a.click();}\">")


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
        self.upload = FileUpload(accept=".pt", multiple=False, description="load state file (.pt)",
                                 layout=Layout(width="220px"))
        self.upload.observe(self._on_upload, "value")
        self.upload.add_class("sw-upload")
        self.status = HTML()
        self.link = HTML()  # the browser download: a link made from the file's bytes, clicked once when it comes
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
            self.status.value = _bad(f"could not export {name}: {type(err).__name__}: {err}")
            return None
        if self.browser_download:
            self.offer(name, data, MIME[key])
            self.status.value = _ok(f"sent {name} to your browser ({len(data):,} bytes, {what}): look in its "
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
            self.status.value = _bad(f"could not write {path}: {err.strerror or err}. Type a folder you can write "
                                     "to in the box above and press the button again.")
            return None
        if key == "state":
            what += f"; Trainer.load('{path}') continues from it"
        self.status.value = _ok(f"wrote {os.path.abspath(path)} ({len(data):,} bytes, {what})")
        return path

    def offer(self, name: str, data: bytes, mime: str) -> None:
        """A browser download of `data`: a data: link, clicked once by the page as it arrives."""
        self._downloads += 1
        token = f"{id(self)}-{self._downloads}"
        url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        safe = html.escape(name, quote=True)
        self.link.value = (f"<a href='{url}' download='{safe}' style='font-size:12px'>download {safe} again "
                           f"({len(data):,} bytes)</a>"
                           + AUTO_CLICK.replace("{token}", token).replace("{until}",
                                                                          str(int((time.time() + 120) * 1000))))

    def _on_upload(self, change) -> None:
        files = change["new"]
        if not files:
            return
        f = files[0]
        self.load(bytes(f["content"]), f["name"])
        self.upload.value = ()  # the same file may be chosen again after an undo

    def load(self, data: bytes, name: str) -> bool:
        """Load a state file's bytes into the running Trainer; a bad file changes nothing and says why in red."""
        try:
            state = persist.read(io.BytesIO(data), name=name)
            self.trainer.load_state_dict(state, source=name)
        except ValueError as err:
            self.status.value = _bad(str(err))
            return False
        self.status.value = _ok(f"loaded {name}: {self.trainer.where()}. ↶ undo takes the load back.")
        return True

    def download(self, fmt: str) -> list[str]:
        names = []
        for label in self.figure.value:
            name = "softmax_" + "".join(ch if ch.isalnum() else "_" for ch in label).strip("_") + f".{fmt}"
            fig = self.figures[label]
            fig.save_png(name) if fmt == "png" else fig.save_svg(name)
            names.append(name)
        self.status.value = (_ok(f"asked the browser to download {', '.join(names)}: look in its download folder")
                             if names else _bad("select one or more figures in the list first"))
        return names


def _figures(plots, extra: dict[str, Figure]) -> dict[str, Figure]:
    """The dashboard's figures worth a file: the curves, the bias and each W map (not the per-step strips)."""
    found: dict[str, Figure] = {}
    for name, label in (("loss_fig", "loss"), ("acc_fig", "accuracy"), ("bias_fig", "bias")):
        if isinstance(getattr(plots, name, None), Figure):
            found[label] = getattr(plots, name)
    for fig in getattr(plots, "w_figs", None) or []:
        if isinstance(fig, Figure):
            found[f"W: {fig.title}"] = fig
    return {**found, **extra}


class Views:
    """The row of tabs below the live plots of one Dashboard (`dashboard.trainer`, `dashboard.plots`).

    `on_pane(name)` is called with the open tab's name, so the dashboard pushes only what is on the page.
    """

    def __init__(self, dashboard, min_interval: float = 1.0, on_pane=None, graph=None):
        self.trainer = dashboard.trainer
        self.on_pane = on_pane
        self.runs = RunStore()
        self.evaluation = EvaluationPane(self.trainer)
        self.compare = ComparePane(self.trainer, self.runs)
        figures = {"confusion matrix": self.evaluation.matrix_fig, "accuracy per class": self.evaluation.acc_fig,
                   "compared loss": self.compare.loss_fig, "compared test accuracy": self.compare.acc_fig}
        plots = getattr(dashboard, "plots", None)
        self.export = ExportPane(self.trainer, _figures(plots or object(), figures))
        self.graph = graph  # graph_view.GraphPanel, when that module is there
        self.graph_slot = VBox([graph.widget] if graph is not None else
                               [HTML("<small>The autograd graph of the loss appears here (graph_view).</small>")])
        self.panes = {**(getattr(plots, "panes", None) or {}), "graph": self.graph_slot,
                      "evaluation": self.evaluation.widget, "compare runs": self.compare.widget,
                      "export": self.export.widget}
        self.names = [n for n in TABS if n in self.panes]
        # one empty box per tab; a pane moves into its box when its tab first opens (see _on_tab)
        self.boxes = [Box() for _ in self.names]
        self.widget = Tab(children=self.boxes, titles=self.names)
        self.widget.add_class("sw-views")
        # stable names for CSS and the browser tests
        for widget, name in ((self.evaluation.matrix_fig, "sw-confusion"), (self.evaluation.title, "sw-cell-title"),
                             (self.evaluation.tiles_box, "sw-cell-images"), (self.compare.loss_fig, "sw-compare-loss"),
                             (self.compare.legend, "sw-compare-legend"), (self.export.status, "sw-export-status")):
            widget.add_class(name)
        # the tabs' figures at the presentation scale (presentation.py): sizes, margins, fonts ×scale
        self.sizer = Sizer()
        for fig in figures.values():
            self.sizer.add(fig)
        self.sizer.on_scale(self._on_scale)
        self.refresher = Throttle(self.refresh, min_interval, getattr(dashboard, "_loop", None))
        self.widget.observe(self._on_tab, "selected_index")
        self.runs.on_change(self.compare.refresh_runs)
        self.trainer.on_change(self._on_change)
        self.refresh()
        self._on_tab({"old": None, "new": self.widget.selected_index})  # and the graph panel hears it is hidden

    @property
    def min_interval(self) -> float:
        """Seconds between refreshes caused by training (clicks: always)."""
        return self.refresher.interval

    @min_interval.setter
    def min_interval(self, seconds: float) -> None:
        self.refresher.interval = seconds

    @property
    def shown(self) -> str | None:
        """The open tab's name (None when none is)."""
        i = self.widget.selected_index
        return None if i is None else self.names[i]

    def select(self, name: str) -> None:
        """Open a tab by its name."""
        self.widget.selected_index = self.names.index(name)

    def mount_graph(self, panel) -> None:
        """Put graph_view.GraphPanel into the graph tab; it computes only while that tab is open."""
        self.graph = panel
        for placeholder in self.graph_slot.children:
            for w in descendants(placeholder):
                w.close()
        self.graph_slot.children = [panel.widget]
        panel.set_visible(self.shown == "graph")

    def set_scale(self, scale: float) -> None:
        """The tabs' figures at `scale` (the dashboard's zoom enlarges the rest)."""
        self.sizer.apply(scale)

    def _on_scale(self, scale: float, compact: bool) -> None:
        # what is not a figure's box: the numbers in the confusion cells, the rows' axis label beside the names
        self.evaluation.matrix.font_style = {"font-size": self.sizer.px(10)}
        self.evaluation.matrix_fig.axes[1].label_offset = self.sizer.px(62)

    def refresh(self) -> None:
        """Everything that follows W: the confusion matrix, the bars, the live curves."""
        self.refresher.last, self.refresher.pending = time.perf_counter(), False
        self.evaluation.refresh()
        self.compare.refresh_live()

    def _on_change(self, trainer, event) -> None:
        if event.kind not in WAKE:  # every phase passes here: one set lookup, nothing else
            if event.kind == "settings":  # a slider moved: the live run's label and the default label follow
                self.compare.refresh_live()
            return
        self.refresher()

    def _on_tab(self, change) -> None:
        new = change["new"]
        if new is None:
            name = None
        else:
            name = self.names[new]
            # mounted the first time its tab opens, then kept: drawn while visible (a bqplot figure first drawn
            # hidden measures 0 px), and never rebuilt (bqplot leaks ~1 MB of page per figure view removed)
            if not self.boxes[new].children:
                self.boxes[new].children = (self.panes[name],)
            if name == "compare runs":  # the live curves as they are now, not as at the last epoch
                self.compare.refresh_live()
                self.compare.show_figures()
        if self.graph is not None:
            self.graph.set_visible(name == "graph")
        if self.on_pane is not None:
            self.on_pane(name)

    def flush(self) -> None:
        """Refresh now if an event was held back by the interval (the end of Play, tests)."""
        self.refresher.flush()

    def close(self) -> None:
        self.trainer.on_change(self._on_change, remove=True)
        self.runs.on_change(self.compare.refresh_runs, remove=True)
        if self.graph is not None:
            self.graph.close()
        lines = [m for pair in self.compare.lines.values() for m in pair]
        seen: set = set()  # a pane is in self.widget only while its tab is open
        for w in [*descendants(self.widget, seen), *(w for p in self.panes.values() for w in descendants(p, seen)),
                  *descendants(self.compare.loss_fig, seen), *descendants(self.compare.acc_fig, seen), *lines]:
            w.close()
