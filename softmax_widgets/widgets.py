"""The dashboard's controls: one button per phase, Play/Pause, sliders and the status line."""

from __future__ import annotations

import html

from ipywidgets import (
    HTML,
    BoundedIntText,
    Button,
    FloatLogSlider,
    HBox,
    IntText,
    Label,
    Layout,
    SelectionSlider,
    ToggleButtons,
    VBox,
    Widget,
)

from .phases import Phase

__all__ = ["CODE", "KEYS_HELP", "PAUSE", "PLAY", "SOFTMAXES", "SPEEDS", "UNDO", "Controls", "descendants"]

PLAY, PAUSE = "▶ Play", "⏸ Pause"  # text, not only icons: offline Voila cannot fetch Font Awesome
UNDO = "↶ undo"
# ipyevents watches keys while the mouse is over the plots (it takes every key there, so not over the text boxes)
KEYS_HELP = "keys: → or s step · Space play/pause · u undo · r reset (with the mouse over the plots)"
SOFTMAXES = [("lesson's", "lesson"), ("stable", "stable")]  # the toggle's (label, value)
# what each phase runs, in the lesson's own code
CODE = {
    Phase.NEXT_BATCH: "for X, y in train_iter:   # X: (batch, 784) images, y: their labels",
    Phase.FORWARD: "y_hat = net(X)   # softmax(X @ W + b);   l = cross_entropy(y_hat, y).sum()",
    Phase.ZERO_GRAD: "W.grad.data.zero_();  b.grad.data.zero_()",
    Phase.BACKWARD: "l.backward()   # fills W.grad, b.grad",
    Phase.SGD: "sgd([W, b], lr, batch_size)   # p.data -= lr * p.grad / batch_size",
}
# iterations per second; at the slow end Play walks phase by phase so each button lights in turn
SPEEDS = {"1": 1.0, "2": 2.0, "5": 5.0, "20": 20.0, "100": 100.0, "max": None}
COLORS = {"info": "#222", "warning": "#b35900", "error": "#c00000"}


def _button(description: str, tooltip: str, width: str = "auto") -> Button:
    # flex "none": in a crowded row the text beside it wraps, the button never shrinks to "Re..."
    return Button(description=description, tooltip=tooltip, layout=Layout(width=width, flex="none"))


class Controls:
    """The widgets a student touches; the Dashboard wires them to a Trainer."""

    def __init__(self, lr: float, batch_size: int, seed: int, speed: str = "max"):
        self.buttons: dict[str, Button] = {p.value: _button(p.value, CODE[p]) for p in Phase}
        self.buttons["step"] = _button("Step", "run the next phase (the highlighted one)")
        self.buttons["iteration"] = _button("Iteration", "finish this batch: the phases up to sgd")
        self.buttons["epoch"] = _button("Run epoch", "train to the end of this epoch, then test (pausable)")
        self.buttons["play"] = _button(PLAY, "train until paused, at the chosen speed", "90px")
        self.buttons["reset"] = _button("Reset", "back to the initial W and b with this seed")
        self.buttons["new_seed"] = _button("New seed", "draw a new seed and reset")
        self.buttons["undo"] = _button(UNDO, "take back the last phase: trainer.undo() (W, batch, history exactly)")
        # the ways out of a divergence, shown only after one
        self.buttons["way_stable"] = _button("use stable softmax", "trainer.use_stable_softmax(): subtract each "
                                             "row's max before exp, so exp never overflows")
        self.buttons["way_lr"] = _button("lr × 0.1", "divide the learning rate by 10")
        self.buttons["way_undo"] = _button("↶ back to before the last sgd", "trainer.undo(iterations=...): take "
                                           "back this half-done iteration and the sgd step that pushed W too far")
        self.lr = FloatLogSlider(value=lr, base=10, min=-5, max=2, step=0.1, description="lr",
                                 readout_format=".3g", continuous_update=False, layout=Layout(width="260px"))
        self.batch_size = IntText(value=batch_size, description="batch", layout=Layout(width="150px"))
        self.speed = SelectionSlider(options=list(SPEEDS), value=speed, description="iter/s",
                                     continuous_update=False, layout=Layout(width="230px"))
        self.seed = BoundedIntText(value=seed, min=0, max=2**32 - 1, description="seed",
                                   layout=Layout(width="170px"))
        self.softmax = ToggleButtons(options=SOFTMAXES, value="lesson",
                                     tooltips=["the lesson's: exp(X) / sum (overflows above ~88)",
                                               "subtract each row's max first: never overflows"],
                                     style={"button_width": "auto"}, layout=Layout(width="auto", flex="none"))
        self.note = HTML()  # e.g. "Fashion-MNIST not found: showing digits"
        self.status_html = HTML(layout=Layout(min_height="24px"))
        self.counter = HTML(layout=Layout(margin="0 0 0 12px", flex="1 1 auto"))
        self.code = HTML()
        self.help = HTML(f"<small style='color:#666'>{html.escape(KEYS_HELP)}</small>")
        self.status_text, self.status_level = "", "info"
        arrow = lambda: Label("→")  # noqa: E731  a fresh label each time: one widget has one place
        phases = [self.buttons[p.value] for p in Phase]
        row1 = [phases[0]]
        for b in phases[1:]:
            row1 += [arrow(), b]
        b = self.buttons
        # the buttons and boxes; the Dashboard puts `readout` (status, ways out, code, keys) beside the plots
        self.widget = VBox([
            self.note,
            HBox(row1),
            HBox([b["step"], b["iteration"], b["epoch"], b["play"], b["undo"], self.speed, self.lr, self.batch_size]),
            HBox([b["reset"], self.seed, b["new_seed"], Label("softmax", layout=Layout(margin="0 4px 0 12px")),
                  self.softmax, self.counter],
                 layout=Layout(align_items="center")),
        ])
        self.way_out = HBox([Label("ways out:"), b["way_stable"], b["way_lr"], b["way_undo"]],
                            layout=Layout(display="none", align_items="center"))
        self.readout = VBox([self.status_html, self.way_out, self.code, self.help])
        # stable names for CSS and the browser tests
        for widget, name in ((self.widget, "sw-buttons"), (self.status_html, "sw-status"), (self.counter, "sw-counter"),
                             (self.way_out, "sw-way-out"), (self.softmax, "sw-softmax"), (self.help, "sw-keys-help"),
                             (self.code, "sw-code")):
            widget.add_class(name)

    def highlight(self, phase: Phase) -> None:
        """Light the button of the phase the lesson would call next; the others stay clickable."""
        for p in Phase:
            style = "primary" if p is phase else ""
            if self.buttons[p.value].button_style != style:
                self.buttons[p.value].button_style = style

    def set_playing(self, playing: bool) -> None:
        b = self.buttons["play"]
        b.description, b.button_style = (PAUSE, "warning") if playing else (PLAY, "success")

    def show_status(self, text: str, level: str = "info", extra: str = "") -> None:
        """The status line: plain words; errors in red (never a traceback)."""
        self.status_text, self.status_level = text, level
        weight = "bold" if level == "error" else "normal"
        body = html.escape(text) + (f"<br><span style='color:{COLORS['warning']}'>{html.escape(extra)}</span>"
                                    if extra else "")
        value = f"<div style='color:{COLORS[level]};font-weight:{weight}'>{body}</div>"
        if self.status_html.value != value:
            self.status_html.value = value

    def show_way_out(self, visible: bool, stable_offered: bool = True, lr: float = 0.0) -> None:
        """The one-click ways out of a divergence: shown only while the last thing that happened was one."""
        display = None if visible else "none"
        if self.way_out.layout.display != display:
            self.way_out.layout.display = display
        if visible:
            stable = None if stable_offered else "none"
            if self.buttons["way_stable"].layout.display != stable:
                self.buttons["way_stable"].layout.display = stable
            label = f"lr × 0.1 → {lr / 10:g}"
            if self.buttons["way_lr"].description != label:
                self.buttons["way_lr"].description = label

    def show_softmax(self, value: str | None) -> None:
        """Light "lesson's" or "stable"; neither while a student's own softmax is in use."""
        if self.softmax.value != value:
            self.softmax.value = value

    def show_code(self, phase: Phase | None) -> None:
        value = "" if phase is None else f"<code style='font-size:12px'>{html.escape(CODE[phase])}</code>"
        if self.code.value != value:
            self.code.value = value

    def show_counter(self, text: str) -> None:
        value = f"<b>{html.escape(text)}</b>"
        if self.counter.value != value:
            self.counter.value = value

    @property
    def rate(self) -> float | None:
        """Iterations per second the speed slider asks for; None = as fast as the CPU goes."""
        return SPEEDS[self.speed.value]


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
