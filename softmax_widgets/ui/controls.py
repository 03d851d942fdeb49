"""The dashboard's controls: one button per phase, Play/Pause, sliders and the status box (it grows, never cuts).

Sized for a 1280×720 projector in JupyterLab's default layout (about 860 px of output width): three rows of
controls, a status area three lines high that grows with a longer message (an error and its fix are never cut),
then the plots. A short message, a phase's code line or a click never moves the plots.
"""

from __future__ import annotations

import html

from ipywidgets import (
    HTML,
    Button,
    HBox,
    IntText,
    Label,
    Layout,
    SelectionSlider,
    Text,
    ToggleButton,
    ToggleButtons,
    VBox,
    Widget,
)

from softmax_widgets.phases import Phase

from .front_end import KeyReader
from .page import (  # noqa: F401  (the keyboard's names, where the dashboard and the tests have imported them)
    CSS,
    DISCONNECTED_CSS,
    KEYS,
    KEYS_HELP,
    KEYS_LIST,
    KEYS_ON,
    PASS_KEYS,
)
from .ways import DEFAULT_LABELS, WAY_BUTTONS  # the ways out of a divergence: status.py reads them too

__all__ = ["CODE", "KEYS", "KEYS_HELP", "KEYS_LIST", "KEYS_ON", "LR_STOPS", "PAUSE", "PLAY", "SOFTMAXES", "SPEEDS",
           "UNDO", "Controls", "descendants"]

# text, not only icons: offline Voila cannot fetch Font Awesome; ‖ is in every font (⏸ is not: an empty box)
PLAY, PAUSE = "▶ Play", "‖ Pause"
UNDO = "↶ undo"
SOFTMAXES = [("lesson's", "lesson"), ("stable", "stable")]  # the toggle's (label, value)
# what each phase runs, in the lesson's own code: short enough that it and the math line beside it fit one line at
# 1366×768 with the file browser open (the comments are the buttons' and the line's tooltip); a narrower row (the
# presentation scale) wraps the line, never cuts it
CODE = {
    Phase.NEXT_BATCH: "for X, y in train_iter:",
    Phase.FORWARD: "y_hat = net(X); l = cross_entropy(y_hat, y).sum()",
    Phase.ZERO_GRAD: "W.grad.data.zero_();  b.grad.data.zero_()",
    Phase.BACKWARD: "l.backward()",
    Phase.SGD: "sgd([W, b], lr, batch_size)",
}
CODE_TIPS = {
    Phase.NEXT_BATCH: "for X, y in train_iter:   # X: (batch, 784) images, y: their labels",
    Phase.FORWARD: "y_hat = net(X)   # softmax(X @ W + b);   l = cross_entropy(y_hat, y).sum()",
    Phase.ZERO_GRAD: "W.grad.data.zero_();  b.grad.data.zero_()   # else backward() adds to the old gradients",
    Phase.BACKWARD: "l.backward()   # fills W.grad, b.grad",
    Phase.SGD: "sgd([W, b], lr, batch_size)   # p.data -= lr * p.grad / batch_size",
}
# iterations per second; at the slow end Play walks phase by phase so each button lights in turn. The default is
# slow enough to watch W change; "max" is one drag to the right
SPEEDS = {"1": 1.0, "2": 2.0, "5": 5.0, "10": 10.0, "20": 20.0, "50": 50.0, "100": 100.0, "max": None}
DEFAULT_SPEED = "20"
# the learning rate's stops: 1, 2, 5 in every decade, so the readout is always a number one can say aloud
LR_STOPS = [m * 10.0 ** e for e in range(-5, 3) for m in (1, 2, 5) if m * 10.0 ** e <= 100]
COLORS = {"info": "#222", "warning": "#b35900", "error": "#c00000"}
ROW_H = "32px"  # one row of buttons (28 px high, 2 px margins): rows keep their height, nothing below them moves
# the status box: three lines whatever the message (a short one never moves what is below), growing with a longer
# one (an error and its fix, a divergence's details) up to STATUS_MAX_H, above which it scrolls with its bar drawn
STATUS_H, STATUS_MAX_H = "60px", "160px"  # 3 and 8 lines of 20 px
# the compact layout (presentation scale 1.5 on a 1280×720 projector): two lines' room (a phase's message is one
# line there), so the second row of W maps stays on the screen; a longer message grows the box as at scale 1
STATUS_H_COMPACT = "40px"
STATUS_CHARS = 800  # about eight lines at 1280x720 (the box's 833 px at 13 px): longer text gets a visible scrollbar
LINE_H = "26px"  # under the status: the line of code that ran, or the ways out of a divergence (both wrap)
CODE_LINES_H = "36px"  # the compact layout's room for the code line above the math line (14 + 20 px, and margins)


PAD, MARGIN = ("0 8px", "0 4px"), ("2px 3px", "2px 2px")  # a button's padding, margin: normal, compact
# widths at scale 1 that the compact layout (presentation scale 1.5) narrows: 1100 px of a 1280×720 Lab is 733
# px at 1.5, and the widest row must fit in it
# (the seed box: its 10 digits still fit; the counter beside it keeps "epoch 1 · batch 114/235 · iteration 114" on one
# line at 1.5)
WIDTHS = {"speed": ("300px", "250px"), "lr": ("262px", "222px"), "arrow": ("12px", "10px"), "gap": ("8px", "0px"),
          "seed": ("140px", "118px")}
COUNTER_PX = (12, 11)  # the counter's font: normal, compact


def _button(description: str, tooltip: str, width: str = "auto") -> Button:
    # flex "none": in a crowded row the text beside it wraps, the button never shrinks to "Re..."
    return Button(description=description, tooltip=tooltip,
                  layout=Layout(width=width, flex="none", padding=PAD[0], margin=MARGIN[0]))


def _row(children, **kw) -> HBox:
    # one row of ROW_H at 1280 px and up; narrower (browser zoom 125-150 %, a phone) it wraps onto a second line
    # rather than clip Play or undo. Its items have fixed widths (the counter a fixed basis), so a longer message
    # never makes it wrap during a session: what is below moves only when the page itself gets narrower
    return HBox(children, layout=Layout(min_height=ROW_H, flex_flow="row wrap", align_items="center", **kw))


def _lr_options(extra: float | None = None) -> list[tuple[str, float]]:
    values = sorted(set(LR_STOPS) | ({extra} if extra is not None else set()))
    return [(f"{v:g}", v) for v in values]


class Controls:
    """The widgets a student touches; the Dashboard wires them to a Trainer."""

    def __init__(self, lr: float, batch_size: int, seed: int, speed: str = DEFAULT_SPEED):
        self._build_buttons()
        self._build_inputs(lr, batch_size, seed, speed)
        self._build_texts()
        self.status_text, self.status_level = "", "info"
        self._status_h, self._counter_px, self._shown = STATUS_H, COUNTER_PX[0], None  # set_compact's, the last shown
        self._build_rows()
        self._name_widgets()

    def _build_buttons(self) -> None:
        """One per phase, Step, Play, Reset, undo; the ways out of a divergence; the details and A+ toggles."""
        self.buttons: dict[str, Button] = {p.value: _button(p.value, CODE_TIPS[p]) for p in Phase}
        self.buttons["step"] = _button("Step", "run the next phase (the highlighted one)")
        self.buttons["iteration"] = _button("Iteration", "finish this batch: the phases up to sgd")
        self.buttons["epoch"] = _button("Run epoch", "train to the end of this epoch at full speed, then test")
        self.buttons["play"] = _button(PLAY, "train until paused, at the chosen speed", "82px")
        self.buttons["reset"] = _button("Reset", "back to the initial W and b with this seed")
        self.buttons["new_seed"] = _button("New seed", "draw a new seed and reset")
        self.buttons["undo"] = _button(UNDO, "take back the last phase: trainer.undo() (W, batch, history exactly)")
        # the ways out of a divergence, shown only after one (in the code line's place: nothing moves)
        self.buttons["way_stable"] = _button("use stable softmax", "trainer.use_stable_softmax(): subtract each "
                                             "row's max before exp, so exp never overflows")
        self.buttons["way_lr"] = _button("lr × 0.1", "take back the sgd steps at the too large lr (W as before "
                                         "them) and lower the lr: trainer.undo(lr_above=...); trainer.lr = ...")
        self.buttons["way_undo"] = _button("↶ undo", "take back what pushed W too far: the change by hand "
                                           "(trainer.undo(before='hand')) or the large sgd steps")
        self.buttons["way_reset"] = _button("Reset", "back to the initial W and b with this seed, at the lr the "
                                            "label says (one undo() takes the reset back)")
        # the whole explanation of a divergence (rows, images), in the status box in place of the short one
        self.details = ToggleButton(value=False, description="details", tooltip="the whole explanation: the rows "
                                    "and images of the batch that overflowed",
                                    layout=Layout(width="auto", flex="none", padding=PAD[0], margin=MARGIN[0]))
        # the presentation scale (Dashboard(scale=...)): every text and plot larger for the back row, and back
        self.scale = ToggleButton(value=False, description="A+", tooltip="presentation size: every text and plot "
                                  "×1.5 for a projector (Dashboard(scale=1.5); with scale_notebook=True the "
                                  "notebook's cells too); press again for the normal size",
                                  layout=Layout(width="auto", flex="none", padding=PAD[0], margin="2px 3px 2px 8px"))

    def _build_inputs(self, lr: float, batch_size: int, seed: int, speed: str) -> None:
        """The sliders and boxes a student sets: speed, lr (slider and box), batch size, seed, the softmax toggle."""
        slider = {"continuous_update": False, "style": {"description_width": "28px"}}
        # 1-2-5 stops on a log scale: a ~150 px track holds seven decades with a readable readout
        # the slider's own readout looks editable but ignores what is typed: a text box beside it sets the lr
        self.lr = SelectionSlider(options=_lr_options(lr), value=lr, description="lr", readout=False,
                                  layout=Layout(width="262px", flex="none"), **slider)
        self.lr_text = Text(value=f"{lr:g}", continuous_update=False, tooltip="type a learning rate, then Enter",
                            layout=Layout(width="62px", flex="none", margin="0 6px 0 0"))
        self.batch_size = IntText(value=batch_size, description="batch", style={"description_width": "40px"},
                                  layout=Layout(width="118px", flex="none"))
        self.speed = SelectionSlider(options=list(SPEEDS), value=speed, description="it/s",
                                     layout=Layout(width="300px", flex="none"), **slider)
        self.seed = IntText(value=seed, description="seed",
                                   style={"description_width": "36px"}, layout=Layout(width="140px", flex="none"))
        self.softmax = ToggleButtons(options=SOFTMAXES, value="lesson",
                                     tooltips=["the lesson's: exp(X) / sum (overflows above ~88)",
                                               "subtract each row's max first: never overflows"],
                                     style={"button_width": "auto"}, layout=Layout(width="auto", flex="none"))

    def _build_texts(self) -> None:
        """What the dashboard writes: the note, the status, the counter, the code and keys lines, the page CSS."""
        # e.g. "Using the bundled offline subset...": shown only when there is one (an empty box still takes room)
        self.note = HTML(layout=Layout(display="none"))
        self.status_html = HTML(layout=Layout(min_height=STATUS_H, margin="0", width="100%"))
        self.counter = HTML(layout=Layout(margin="0 0 0 10px", flex="1 1 0", min_width="190px", overflow="hidden"))
        self.code = HTML(layout=Layout(flex="0 1 auto", min_width="0", margin="0 2px"))
        self.help = HTML(_keys_line())
        # page CSS for this dashboard: the frame while the keys are armed, the disconnected banner
        self.css = HTML(CSS + DISCONNECTED_CSS, layout=Layout(display="none"))
        # the keyboard (keys.js): hears the keys in the page, sends each as a message (keys.Keys.message reads them)
        self.keys = KeyReader(layout=Layout(display="none"))
        self.math = _slot()  # the current phase's formula with live shapes (graph_panel.MathLine)

    def _build_rows(self) -> None:
        """Three rows of controls (`widget`), and the readout (status, then the code line or the ways out)."""
        self.arrows = [Label("→", layout=Layout(width=WIDTHS["arrow"][0], flex="none", margin="0"))
                       for _ in range(len(Phase) - 1)]
        self.gap = Label("", layout=Layout(width=WIDTHS["gap"][0], flex="none"))
        phases = [self.buttons[p.value] for p in Phase]
        row1 = [phases[0]]
        for arrow, b in zip(self.arrows, phases[1:], strict=True):
            row1 += [arrow, b]
        b = self.buttons
        self.button_row = _row([*row1, self.gap, b["step"], b["iteration"], b["epoch"], b["play"], b["undo"]])
        self.widget = VBox([
            self.css,
            self.keys,
            self.note,
            self.button_row,
            _row([self.speed, self.lr, self.lr_text, self.batch_size, self.scale]),
            _row([b["reset"], self.seed, b["new_seed"], Label("softmax", layout=Layout(margin="0 4px 0 8px",
                                                                                    flex="none")),
                  self.softmax, self.counter]),
        ], layout=Layout(overflow="hidden"))
        self.way_out = HBox([Label("ways out:", layout=Layout(flex="none")), b["way_stable"], b["way_lr"],
                             b["way_undo"], b["way_reset"], self.details],
                            layout=Layout(display="none", align_items="center", min_height=LINE_H,
                                          flex_flow="row wrap"))
        # the code, then the math; a row too narrow for both puts the math on a second line, and either wraps
        # inside itself rather than end in "…" (set_compact keeps two lines' room, so a phase never moves the plots)
        self.code_line = HBox([self.code, self.math], layout=Layout(min_height=LINE_H, align_items="center",
                                                                    align_content="flex-start", flex_flow="row wrap"))
        # the Dashboard puts `readout` (status, then code or ways out) between the controls and the plots; it grows
        # with the status box (a long message), never cuts it
        self.readout = VBox([self.status_html, self.code_line, self.way_out],
                            layout=Layout(min_height=f"calc({STATUS_H} + {LINE_H} + 2px)", margin="2px 0 0 0"))

    def _name_widgets(self) -> None:
        """Stable names for CSS and the browser tests."""
        for widget, name in ((self.widget, "sw-buttons"), (self.status_html, "sw-status"), (self.counter, "sw-counter"),
                             (self.way_out, "sw-way-out"), (self.softmax, "sw-softmax"), (self.help, "sw-keys-help"),
                             (self.code, "sw-code"), (self.lr, "sw-lr"), (self.speed, "sw-speed"),
                             (self.readout, "sw-readout"), (self.lr_text, "sw-lr-text"), (self.seed, "sw-seed"),
                             (self.scale, "sw-scale-toggle"), (self.keys, "sw-key-input")):
            widget.add_class(name)

    def set_compact(self, compact: bool) -> None:
        """The tighter layout of the presentation scale: narrower sliders, button padding and arrows (the text
        itself is enlarged by the dashboard's zoom)."""
        i = int(compact)
        for button in [*self.buttons.values(), self.details]:
            button.layout.padding, button.layout.margin = PAD[i], MARGIN[i]
        self.speed.layout.width, self.lr.layout.width = WIDTHS["speed"][i], WIDTHS["lr"][i]
        for arrow in self.arrows:
            arrow.layout.width = WIDTHS["arrow"][i]
        self.gap.layout.width = WIDTHS["gap"][i]
        # the code and math lines need two lines in the narrower compact row: their room is kept for every phase
        self.code_line.layout.min_height = CODE_LINES_H if compact else LINE_H
        self.seed.layout.width = WIDTHS["seed"][i]
        self._status_h = STATUS_H_COMPACT if compact else STATUS_H
        self.status_html.layout.min_height = self._status_h
        self.readout.layout.min_height = f"calc({self._status_h} + {LINE_H} + 2px)"
        self._counter_px = COUNTER_PX[i]
        shown = self._shown or {}  # the status box's and the counter's own sizes follow at once
        if "status" in shown:
            self.show_status(*shown["status"])
        if "counter" in shown:
            self.show_counter(shown["counter"])

    def set_page_css(self, extra: str) -> None:
        """The dashboard's page CSS: the focus rules, the disconnected banner and `extra` (the presentation scale)."""
        value = CSS + DISCONNECTED_CSS + extra
        if self.css.value != value:
            self.css.value = value

    def show_scale(self, on: bool, presentation: float) -> None:
        """The A+ toggle pressed while the presentation scale is on; its tooltip says the scale it turns on."""
        self.scale.value = on
        self.scale.tooltip = (f"presentation size: every text and plot ×{presentation:g} for a projector "
                              f"(Dashboard(scale={presentation:g})); press again for the normal size")

    def highlight(self, phase: Phase) -> None:
        """Light the button of the phase the lesson would call next; the others stay clickable."""
        for p in Phase:
            style = "primary" if p is phase else ""
            if self.buttons[p.value].button_style != style:
                self.buttons[p.value].button_style = style

    def set_playing(self, playing: bool) -> None:
        b = self.buttons["play"]
        b.description, b.button_style = (PAUSE, "warning") if playing else (PLAY, "success")

    def show_status(self, text: str, level: str = "info", extra: str = "", details: str = "") -> None:
        """The status line: plain words, errors in red (never a traceback); `details` (a divergence's whole
        explanation) waits behind the details toggle in the ways-out row and replaces the text while it is on.

        The box is three lines high at least (a short message never moves what is below) and grows with a longer
        one up to eight lines; above that it scrolls inside, with the scrollbar always drawn (there is more). A
        word longer than the box (a path, a long name) breaks rather than run past it. The whole text is the box's
        tooltip."""
        self._shown = {**(self._shown or {}), "status": (text, level, extra, details)}
        if details and self.details.value:
            text, extra = details, ""
        self.status_text, self.status_level = text, level
        weight = "bold" if level == "error" and not (details and self.details.value) else "normal"
        ends = "" if not extra or text.rstrip().endswith((".", "!", "?", ":")) else "."  # two sentences
        body = html.escape(text) + ends + (f" <span style='color:{COLORS['warning']}'>{html.escape(extra)}</span>"
                                           if extra else "")
        long = len(text) + len(extra) > STATUS_CHARS
        value = (f"<div class='sw-status-box' title='{html.escape(' '.join(x for x in (text, extra) if x))}' "
                 f"style='min-height:{self._status_h};max-height:{STATUS_MAX_H};"
                 f"overflow-y:{'scroll' if long else 'auto'};"
                 f"overflow-x:hidden;overflow-wrap:anywhere;overflow-anchor:none'>"
                 f"<div style='color:{COLORS[level]};font-weight:{weight};line-height:20px'>{body}</div></div>")
        if self.status_html.value != value:
            self.status_html.value = value

    def show_key_hint(self, hint: str) -> None:
        """A key that does nothing: said on the keys line under the dashboard (the status keeps its message)."""
        value = _keys_line(hint)
        if self.help.value != value:
            self.help.value = value

    def show_way_out(self, visible: bool, ways=()) -> None:
        """The one-click ways out of a divergence, in the code line's place while the last event was one: those the
        event offers (its detail["ways"]: code and label), in its order, the one that works first."""
        display = None if visible else "none"
        if self.way_out.layout.display != display:
            self.way_out.layout.display = display
            self.code_line.layout.display = "none" if visible else None
        if not visible:
            return
        shown = []
        for way in ways:
            way = way if isinstance(way, dict) else {"code": way, "label": DEFAULT_LABELS.get(way, way)}
            name = WAY_BUTTONS.get(way["code"])
            if name is None or name in shown:
                continue  # no button for it (the lesson's function back): the status says it in words
            shown.append(name)
            button = self.buttons[name]
            if button.description != way["label"]:
                button.description = way["label"]
        for name in WAY_BUTTONS.values():
            want = None if name in shown else "none"
            if self.buttons[name].layout.display != want:
                self.buttons[name].layout.display = want
        children = (self.way_out.children[0], *(self.buttons[n] for n in shown),
                    *(self.buttons[n] for n in WAY_BUTTONS.values() if n not in shown), self.details)
        if tuple(self.way_out.children) != children:
            self.way_out.children = children

    def show_softmax(self, value: str | None) -> None:
        """Light "lesson's" or "stable"; neither while a student's own softmax is in use."""
        if self.softmax.value != value:
            self.softmax.value = value

    def show_lr(self, lr: float) -> None:
        """Move the slider and the lr box to the Trainer's lr; a value between the stops (set from code or typed)
        becomes a stop."""
        if lr not in {v for _, v in self.lr.options}:
            self.lr.options = _lr_options(lr)
        if self.lr.value != lr:
            self.lr.value = lr
        if self.lr_text.value != f"{lr:g}":
            self.lr_text.value = f"{lr:g}"

    def show_code(self, phase: Phase | None) -> None:
        # one line where the row holds it, else wrapped (never cut with "…"); the commented line is its tooltip
        value = ("" if phase is None else
                 f"<div title='{html.escape(CODE_TIPS[phase])}' style='white-space:normal;overflow-wrap:anywhere;"
                 f"line-height:14px'><code style='font-size:11px'>{html.escape(CODE[phase])}</code></div>")
        if self.code.value != value:
            self.code.value = value

    def show_counter(self, text: str) -> None:
        # two short lines fit the fixed row when the row is narrow (a projector, after an epoch "· test 80.0%"): it
        # wraps between its parts only, so "iteration 114" is never split, and nothing moves
        self._shown = {**(self._shown or {}), "counter": text}
        parts = " · ".join(f"<span style='white-space:nowrap'>{html.escape(p)}</span>" for p in text.split(" · "))
        value = f"<div style='font-size:{self._counter_px}px;line-height:14px;font-weight:bold'>{parts}</div>"
        if self.counter.value != value:
            self.counter.value = value

    @property
    def rate(self) -> float | None:
        """Iterations per second the speed slider asks for; None = as fast as the CPU goes."""
        return SPEEDS[self.speed.value]


def _keys_line(hint: str = "") -> str:
    """The keys line: a key that did nothing, in orange; else how to arm the keys, or (while they are armed: the
    page's CSS shows one of the two) which keys act and how to give the keyboard back."""
    if hint:
        return f"<small style='color:{COLORS['warning']}'>{html.escape(hint)}</small>"
    return (f"<small style='color:#666'><span class='sw-keys-off'>{html.escape(KEYS_HELP)}</span>"
            f"<span class='sw-keys-on' style='color:#1565c0'>{html.escape(KEYS_ON)}</span></small>")


def _slot() -> HBox:
    """The place in the code line that the dashboard fills with graph_panel.MathLine."""
    return HBox(layout=Layout(margin="0 0 0 12px", flex="0 1 auto", min_width="0"))


def descendants(widget: Widget, seen: set | None = None):
    """Every widget reachable from `widget` (children, marks, scales, axes, layouts): what close() must close."""
    seen = set() if seen is None else seen
    if id(widget) in seen:
        return
    seen.add(id(widget))
    yield widget
    for name in widget.keys:
        value = getattr(widget, name, None)
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, Widget):
                yield from descendants(item, seen)
