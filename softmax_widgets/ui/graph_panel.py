"""The Graph panel (the loss's autograd graph, drawn as SVG built here) and the math line with live shapes.

Both observe a Trainer through on_change and compute from `graph.autograd_graph` only when someone looks: the
panel only while visible, and both at most a few times a second during Play (the last event always lands).
No graphviz, no CDN, no script: an SVG string in an ipywidgets.HTML, so Binder, Voila and offline Lab show it.
"""

from __future__ import annotations

import asyncio
import html

from ipywidgets import HTML, HBox, Layout, Select, VBox

from softmax_widgets import model
from softmax_widgets.graph import LOSS, MODEL, PARAMETERS, Graph, GraphNode, autograd_graph, forward_status
from softmax_widgets.measure import name_of
from softmax_widgets.phases import Phase
from softmax_widgets.throttle import Clock, Lane

from .controls import descendants

__all__ = ["GraphPanel", "MathLine", "graph_svg", "math_text"]

WAKE = frozenset({"phase", "reset", "undo", "settings", "divergence"})  # events after which the picture differs
FILL = {PARAMETERS: "#dbe9f6", MODEL: "#e3f2dc", LOSS: "#fde3cc"}
STROKE = {PARAMETERS: "#3b6ea5", MODEL: "#4b8b3b", LOSS: "#c0661a"}
LIT = "#e6550d"  # the gradient's path after backward
BOX_W, BOX_H, GAP_X, GAP_Y, LEFT, TOP = 156, 32, 18, 48, 96, 14


def _dims(shape) -> str:
    """(256×784); a 0-dim tensor is a scalar."""
    if shape is None:
        return "(shape unknown)"
    return "scalar" if len(shape) == 0 else "(" + "×".join(str(s) for s in shape) + ")"


def _lane(clock: Clock | None, fn, interval: float) -> Lane:
    """At most one call per `interval` on `clock` (the dashboard's; alone: a clock on the running loop); with no
    running loop (a script, a synchronous test) every call runs at once, since nothing would run the deferred one."""
    if clock is None:
        try:
            clock = Clock(asyncio.get_running_loop())
        except RuntimeError:
            clock = Clock()
    return clock.lane(fn, interval, at_once_without_loop=True)


# ---- the picture: a layered top-down layout, computed here ----
def _layout(g: Graph) -> dict[int, tuple[float, float]]:
    """Node id -> (x, y) of its box's top-left: leaves on top, each node one layer below its lowest input."""
    layer: dict[int, int] = {}
    for n in g.nodes:  # forward order: inputs come first
        ins = [a for a, b in g.edges if b == n.id]
        layer[n.id] = 0 if n.is_leaf or not ins else 1 + max(layer[a] for a in ins)
    rows: dict[int, list[int]] = {}
    for i, k in layer.items():
        rows.setdefault(k, []).append(i)
    pos: dict[int, tuple[float, float]] = {}
    width = max(len(r) for r in rows.values())
    for k in sorted(rows):
        ids = rows[k]
        if k:  # under its inputs: order a layer by the mean x of each node's inputs
            ids.sort(key=lambda i: sum(pos[a][0] for a, b in g.edges if b == i) / max(
                1, sum(1 for _, b in g.edges if b == i)))
        x0 = LEFT + (width - len(ids)) * (BOX_W + GAP_X) / 2
        for j, i in enumerate(ids):
            pos[i] = (x0 + j * (BOX_W + GAP_X), TOP + k * GAP_Y)
    return pos


def graph_svg(g: Graph, *, lit: bool = False, stale: bool = False, selected: int | None = None,
              loss_value: float | None = None, uid: str = "g") -> str:
    """The graph as one <svg>: boxes coloured by lesson part, edges down (forward) or lit upwards (backward)."""
    pos = _layout(g)
    uid += "-lit" if lit else "-fw"  # one marker per colour: ids are global to the page
    width = LEFT + max(x for x, _ in pos.values()) + BOX_W + 150
    height = max(y for _, y in pos.values()) + BOX_H + TOP + 8
    edge_color = LIT if lit else "#777"
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' "
           f"viewBox='0 0 {width:.0f} {height:.0f}' font-family='sans-serif' font-size='12' "
           f"style='{'filter:grayscale(1);opacity:0.45' if stale else ''}'>",
           f"<defs><marker id='{uid}' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='8' markerHeight='8' "
           "markerUnits='userSpaceOnUse' orient='auto-start-reverse'>"
           f"<path d='M0,0 L10,5 L0,10 z' fill='{edge_color}'/></marker></defs>"]
    # where the model ends and the loss begins: a dashed line and the two names at the left
    model_y = [pos[n.id][1] for n in g.nodes if n.part == MODEL]
    loss_y = [pos[n.id][1] for n in g.nodes if n.part == LOSS]
    for part, ys in ((PARAMETERS, [pos[n.id][1] for n in g.nodes if n.is_leaf]), (MODEL, model_y), (LOSS, loss_y)):
        if ys:
            out.append(f"<text x='6' y='{(min(ys) + max(ys) + BOX_H) / 2 + 4:.0f}' fill='{STROKE[part]}' "
                       f"font-weight='bold'>{html.escape(part)}</text>")
    if model_y and loss_y:
        y = (max(model_y) + BOX_H + min(loss_y)) / 2
        out.append(f"<line x1='4' x2='{width - 4:.0f}' y1='{y:.0f}' y2='{y:.0f}' stroke='#bbb' "
                   "stroke-dasharray='4 3'/>")
    for a, b in g.edges:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        x1, y1, x2, y2 = xa + BOX_W / 2, ya + BOX_H, xb + BOX_W / 2, yb
        span = round((yb - ya) / GAP_Y)
        # an edge that skips layers bows to the right, so it does not run through the boxes between
        bend = 0 if span <= 1 else BOX_W * 0.9 + 20 * span
        d = (f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1 + 30:.0f} {x2 + bend:.0f},{y2 - 30:.0f} {x2:.0f},{y2:.0f}"
             if bend else f"M{x1:.0f},{y1:.0f} L{x2:.0f},{y2:.0f}")
        # forward: the arrow points down, the way the data went; after backward, up, the way the gradient went
        arrow = f"marker-start='url(#{uid})'" if lit else f"marker-end='url(#{uid})'"
        out.append(f"<path d='{d}' fill='none' stroke='{edge_color}' stroke-width='{2.5 if lit else 1.2}' {arrow}/>")
    for n in g.nodes:
        x, y = pos[n.id]
        sel = n.id == selected
        out.append(f"<g class='sw-graph-node' data-name='{html.escape(n.name)}'>"
                   f"<rect x='{x:.0f}' y='{y:.0f}' width='{BOX_W}' height='{BOX_H}' rx='5' fill='{FILL[n.part]}' "
                   f"stroke='{'#000' if sel else STROKE[n.part]}' stroke-width='{3 if sel else 1}'/>")
        title = f"{n.label} · {n.name}" if n.is_leaf else n.name
        sub = _dims(n.shape)
        if n.is_leaf and lit and n.grad_norm is not None:
            sub += f"  ‖{n.label}.grad‖ {n.grad_norm:.3g}"
        out.append(f"<text x='{x + BOX_W / 2:.0f}' y='{y + 14:.0f}' text-anchor='middle' "
                   f"font-weight='{'bold' if n.is_leaf else 'normal'}'>{html.escape(title)}</text>"
                   f"<text x='{x + BOX_W / 2:.0f}' y='{y + 27:.0f}' text-anchor='middle' font-size='11' "
                   f"fill='#444'>{html.escape(sub)}</text></g>")
        tag = {"y_hat": "← ŷ = y_hat", "loss": "← loss" + (f" = {loss_value:.4g}" if loss_value is not None
                                                           else "")}.get(n.label if not n.is_leaf else "")
        if tag:
            out.append(f"<text x='{x + BOX_W + 8:.0f}' y='{y + 20:.0f}' font-weight='bold' "
                       f"fill='{STROKE[n.part]}'>{html.escape(tag)}</text>")
    out.append("</svg>")
    return "".join(out)


def _describe(g: Graph, n: GraphNode, lit: bool) -> str:
    """What a clicked node is: name, part, shape, its inputs (a broadcast shows), the line that made it."""
    ins = g.inputs(n.id)
    rows = [f"<b>{html.escape(n.name)}</b> · {html.escape(n.part)}" + (f" · <b>{n.label}</b>" if n.label else "")]
    if n.is_leaf:
        rows.append(f"{n.label} is a leaf {_dims(n.shape)} with requires_grad=True: AccumulateGrad adds the "
                    f"gradient that arrives here to {n.label}.grad"
                    + (f" (‖{n.label}.grad‖ = {n.grad_norm:.4g})" if lit and n.grad_norm is not None else ""))
    else:
        shapes = ", ".join(_dims(i.shape) for i in ins)
        rows.append(f"{shapes} → {_dims(n.shape)}" if ins else f"output {_dims(n.shape)}")
        if n.shape is not None:
            for i in ins:
                if i.shape is not None and 0 < len(i.shape) < len(n.shape) and not i.is_leaf:
                    rows.append(f"<span style='color:#b35900'>broadcast: {_dims(i.shape)} from {i.name} lines up "
                                f"with the last dimensions of {_dims(n.shape)} (keepdim=True keeps a (B×1) "
                                "column that lines up with the rows)</span>")
    if n.code:
        rows.append(f"made by <code>{html.escape(n.code)}</code> <small>({html.escape(n.where)})</small>")
    elif n.where:
        rows.append(f"<small>{html.escape(n.where)}</small>")
    return "<br>".join(rows)


def _option(n: GraphNode) -> str:
    name = f"{n.label} · {n.name}" if n.is_leaf else n.name + (f"  ({n.label})" if n.label else "")
    return f"{name} {_dims(n.shape)}"


class GraphPanel:
    """The loss's autograd graph, following the phases; a node chosen in the list shows its line and shape."""

    def __init__(self, trainer, min_interval: float = 0.25, clock: Clock | None = None):
        self.trainer = trainer
        self.visible = False
        self.graph: Graph | None = None
        self.status = "none"  # forward_status when last drawn
        self.caption = HTML(layout=Layout(min_height="40px"))
        self.svg = HTML(layout=Layout(max_height="620px", overflow="auto"))  # a student graph can be tall
        self.nodes = Select(options=[], rows=13, layout=Layout(width="300px"))
        self.detail = HTML(layout=Layout(width="300px"))
        for w, name in ((self.caption, "sw-graph-caption"), (self.svg, "sw-graph-svg"),
                        (self.nodes, "sw-graph-nodes"), (self.detail, "sw-graph-detail")):
            w.add_class(name)
        self.widget = VBox([self.caption, HBox([self.svg, VBox([
            HTML("<div style='font-size:12px;line-height:1.3;color:#555'>Choose a node: its PyTorch name, the line "
                 "that made it, its shape.</div>"),
            self.nodes, self.detail])], layout=Layout(flex_flow="row wrap"))])  # narrow (zoomed): list below
        self.widget.add_class("sw-graph")
        self._uid = f"swg{id(self):x}"
        self._draw = _lane(clock, self.refresh, min_interval)
        self._choosing = False
        # the functions the current loss was built with: a swap shows only after the next forward()
        self._built_with = (trainer.softmax, trainer.loss_fn)
        self.nodes.observe(self._on_choose, "value")
        trainer.on_change(self._on_change)

    def set_visible(self, flag: bool) -> None:
        """Draw only while someone looks (the tab is open); hidden, an event costs ~0.4 µs (bench_dashboard)."""
        self.visible = bool(flag)
        if self.visible:
            self._draw.run()

    def _on_change(self, trainer, event) -> None:
        if event.phase is Phase.FORWARD or event.kind in ("undo", "reset"):  # a new loss, from the functions now in use
            self._built_with = (trainer.softmax, trainer.loss_fn)
        if self.visible and event.kind in WAKE:
            self._draw()

    def flush(self) -> None:
        self._draw.flush()

    def refresh(self) -> None:
        """Walk the graph now and redraw (what a visible panel does after each phase, at most ~4 times a s)."""
        t = self.trainer
        self.graph, self.status = autograd_graph(t, *self._built_with), forward_status(t)
        self._redraw()
        self.caption.value = f"<div style='font-size:13px;line-height:1.4'>{self._sentence()}</div>"

    def _redraw(self) -> None:
        g, t = self.graph, self.trainer
        if not g.nodes:
            self.svg.value = ""
            self._set_options([])
            self.detail.value = ""
            return
        lit = self.status in ("consumed", "stale") and g.freed
        self.svg.value = graph_svg(g, lit=lit, stale=self.status == "stale", selected=self.nodes.value,
                                   loss_value=t.loss_value, uid=self._uid)
        self._set_options([(_option(n), n.id) for n in g.nodes])
        chosen = self.nodes.value
        self.detail.value = (f"<div style='font-size:13px;line-height:1.45'>{_describe(g, g.nodes[chosen], lit)}"
                             "</div>" if chosen is not None and chosen < len(g.nodes) else "")

    def _set_options(self, options) -> None:
        if list(self.nodes.options) == options:
            return
        keep = self.nodes.value
        self._choosing = True  # replacing the options resets the value: not a click
        try:
            self.nodes.options = options
            self.nodes.value = keep if keep is not None and keep < len(options) else None
        finally:
            self._choosing = False

    def _on_choose(self, change) -> None:
        if not self._choosing and self.graph is not None and self.graph.nodes:
            self._redraw()

    def choose(self, name: str, label: str = "") -> GraphNode:
        """Select the first node called `name` (or labelled `label`), as a click in the list does."""
        if self.graph is None:  # never drawn (the tab was never open): draw it now
            self.refresh()
        g = self.graph
        node = g.labelled(label) if label else next(iter(g.find(name)), None)
        if node is None:
            raise ValueError(f"no node {label or name!r} in the graph now; it has {', '.join(g.names) or 'none'}")
        self.nodes.value = node.id
        return node

    def _sentence(self) -> str:
        t, g = self.trainer, self.graph
        swapped = [f"{name} is now {name_of(new)}: its nodes appear after the next forward()." for name, old, new in
                   (("softmax", self._built_with[0], t.softmax), ("loss_fn", self._built_with[1], t.loss_fn))
                   if g.nodes and new is not old]
        return self._state_sentence() + "".join(f"<br><b>{html.escape(s)}</b>" for s in swapped)

    def _state_sentence(self) -> str:
        t, g, s = self.trainer, self.graph, self.status
        if not g.nodes:
            if t.loss is not None:  # a loss autograd cannot walk (a student's function cut it off)
                return html.escape(g.empty_reason)
            first = "forward()" if t.state.next_phase is Phase.FORWARD else "next_batch(), then forward()"
            return (f"No graph yet. Call {first}: autograd records every operation of the forward pass here, "
                    "W and b at the top as leaves, softmax's steps down to ŷ = y_hat, then the loss.")
        n = len(g.nodes)
        notes = "".join(f"<br><small>{_code(x)}</small>" for x in g.notes)
        if s == "live":
            return (f"forward() built this graph: {n} nodes for the {len(t.y)} images of this batch. Each node "
                    "keeps the tensors its gradient needs. backward() walks it from the loss up to W and b." + notes)
        if s == "non-finite":
            return ("forward() built this graph, but the loss is not finite (NaN or inf): backward() has nothing "
                    "finite to walk. The status line says why and the ways out." + notes)
        w, b = g.labelled("W"), g.labelled("b")
        norms = ", ".join(f"‖{x.label}.grad‖ = {x.grad_norm:.3g}" for x in (w, b) if x and x.grad_norm is not None)
        if s == "stale":
            return ("<span style='color:#777'>Stale: sgd() changed W after this forward, so this graph no longer "
                    "describes the model. next_batch() and forward() build the next one.</span>"
                    + (f" ({norms})" if norms else ""))
        if s == "consumed":
            freed = ("autograd has freed the tensors this graph saved" if g.freed else
                     "the graph has been used")
            return (f"backward() walked the lit path from the loss up to W and b: {norms}. Then {freed}, so a "
                    "second backward() on it is refused until the next forward() builds a new graph." + notes)
        # the graph is there but the Trainer cannot walk it (a failed backward dropped it): say what to do
        why = t.state.refusal(Phase.BACKWARD) or "call forward() again"
        return f"This graph cannot be walked back any more: {html.escape(why)}" + notes

    def close(self) -> None:
        self.trainer.on_change(self._on_change, remove=True)
        self._draw.clock.drop(self._draw)
        for w in list(descendants(self.widget)):
            w.close()


# ---- the math of the current batch ----
def model_math(t) -> str:
    """The math line of a model from models.py: each layer's shapes for the batch (the MLP's two layers; a module's
    input and output), then the phase that ran."""
    from softmax_widgets.models import MLP

    B = len(t.y) if t.y is not None else t.batch_size
    D, C = t.data.num_inputs, t.data.num_classes
    if isinstance(t.model, MLP):
        h = t.model.hidden
        line = (f"H = relu(X W1 + b1): ({B}×{D})({D}×{h}) → ({B}×{h}); "
                f"O = H W2 + b2: ({B}×{h})({h}×{C}) → ({B}×{C})")
    else:
        line = f"O = {t.model.name}(X): ({B}×{D}) → ({B}×{C})"
    if t.X is None or t.last_phase is None:
        return f"next_batch() draws X: ({t.batch_size}×{D}), y: ({t.batch_size}) · then {line}"
    if t.last_phase is Phase.FORWARD and t.y_hat is not None:
        return f"{line}; loss = Σ loss_fn(O, y) = {t.loss_value:.4g}"
    return f"{t.last_phase}() · {line}"


def math_text(trainer, ran: tuple | None = None) -> str:
    """One short line of the lesson's math for the phase that just ran, with this Trainer's shapes and numbers.

    `ran`: the (softmax, loss_fn, optimizer) that phase ran with (MathLine remembers them; default: the Trainer's
    now). The line says only what is true now: a forward whose softmax or loss_fn was swapped since (the "use stable
    softmax" way out, `trainer.softmax = ...`) shows the formula the next forward() computes, with the new names and
    no loss value; a backward or sgd names the functions that ran. A refused phase changes nothing, so the line stays
    that of the last phase that ran (the code line beside it shows the same call): W.grad, W and the batch are what
    that phase left, and the red status says what was refused."""
    t, phase = trainer, trainer.last_phase
    softmax, loss_fn, optimizer = ran if ran is not None else (t.softmax, t.loss_fn, t.optimizer)
    if getattr(t, "model", None) is not None:  # the next lessons' models: each layer's shapes (models.py)
        return model_math(t)
    D, C = t.W.shape
    if t.X is None or phase is None:
        return f"next_batch() draws X: ({t.batch_size}×{D}), y: ({t.batch_size}) from {t.num_train:,} images"
    B = len(t.y)
    if phase is Phase.NEXT_BATCH:
        return f"X: ({B}×{D}), y: ({B}) · batch {t.batch_in_epoch} of {t.batches_per_epoch}"
    if phase is Phase.FORWARD:
        swapped = softmax is not t.softmax or loss_fn is not t.loss_fn
        if swapped:  # the loss shown was another function's: say what the next forward computes, and no number
            softmax, loss_fn = t.softmax, t.loss_fn
        loss = ("−Σ log Ŷ[i, yᵢ]" if loss_fn is model.cross_entropy else
                f"Σ {getattr(loss_fn, '__name__', 'loss_fn')}(Ŷ, y)")
        # b's (C) is left out of the shapes: the line and the code beside it fit 1366×768 with the file browser open
        line = f"O = X W + b: ({B}×{D})({D}×{C}) → ({B}×{C}) · Ŷ = {name_of(softmax)}(O) · loss = {loss}"
        return f"next forward(): {line}" if swapped else f"{line} = {t.loss_value:.4g}"
    if phase is Phase.ZERO_GRAD:
        return f"W.grad ← 0: ({D}×{C}) · b.grad ← 0: ({C})"
    if phase is Phase.BACKWARD:
        if softmax in (model.softmax, model.stable_softmax) and loss_fn is model.cross_entropy:
            return f"∂loss/∂W = Xᵀ(Ŷ − Y): ({D}×{B})({B}×{C}) → ({D}×{C}) · ∂loss/∂b = Σᵢ(Ŷ − Y)ᵢ: ({C})"
        return f"∂loss/∂W: ({D}×{C}), ∂loss/∂b: ({C}) by the chain rule through {name_of(softmax)}"
    if optimizer is not model.sgd:
        step = t.last_step  # what the student's optimizer did, measured: not what the lesson's would have done
        did = step.formula(t.lr) if step is not None else f"W ({D}×{C}), b ({C})"
        return f"{name_of(optimizer)}([W, b], {t.lr:g}, {B}): {did}"
    return f"W ← W − {t.lr:g} · W.grad / {B} · b ← b − {t.lr:g} · b.grad / {B}"


# what the symbols mean: the tooltip of the line (the line itself stays short enough for one row)
MATH_NOTES = {
    Phase.NEXT_BATCH: "X: one flattened image per row; y: their labels",
    Phase.FORWARD: "O: the logits, one row per image; Ŷ: the probabilities (y_hat); loss: summed over the batch",
    Phase.ZERO_GRAD: "without it the next backward() adds to the old gradients",
    Phase.BACKWARD: "Y = one-hot(y): 1 at each image's true class. Autograd computes the same through the graph",
    Phase.SGD: "the lesson's sgd: p.data -= lr * p.grad / batch_size",
}


class MathLine:
    """One formula line that follows the phases; a row too narrow for it wraps it (never cut with "…")."""

    def __init__(self, trainer, min_interval: float = 0.1, follow: bool = True, clock: Clock | None = None):
        """follow=False: the host calls refresh() on its own pushes (the dashboard draws it with the code line,
        so Play never shows one phase's code beside another's math). `clock`: the host's (see throttle.Clock)."""
        self.trainer = trainer
        self.widget = HTML(layout=Layout(min_height="20px", min_width="0", flex="0 1 auto", margin="0 2px"))
        self.widget.add_class("sw-math")
        # the phase last drawn (which, on which batch and iteration, from which loop state) and the functions it ran
        # with: a function swapped after it (same phase, same state) makes its line stale (math_text's `ran`)
        self._ran_key, self._ran = None, None
        self._draw = _lane(clock, self.refresh, min_interval)
        if follow:
            trainer.on_change(self._on_change)
        self.refresh()

    @property
    def text(self) -> str:
        """The formula as plain text (what the page shows)."""
        return self._text

    def refresh(self) -> None:
        t = self.trainer
        key = (t.last_phase, t.batches_drawn, t.iteration, t.state)
        if key != self._ran_key:  # a phase ran (or was undone) since the last draw: it ran with today's functions
            self._ran_key, self._ran = key, (t.softmax, t.loss_fn, t.optimizer)
        self._text = math_text(t, self._ran)
        stale = self._text.startswith("next forward()")
        note = MATH_NOTES.get(t.last_phase, "") if t.X is not None and not stale else ""
        name, first = next(iter(t.params.items()))
        if t.last_phase is Phase.BACKWARD and first.grad is not None:
            note += f". ‖{name}.grad‖ = {float(first.grad.norm()):.4g}"
        value = (f"<div style='font-family:\"STIX Two Math\",\"Cambria Math\",\"DejaVu Serif\",serif;font-size:12px;"
                 "white-space:normal;overflow-wrap:anywhere;line-height:20px' "
                 f"title='{html.escape(self._text + (' (' + note + ')' if note else ''))}'>"
                 f"{html.escape(self._text)}</div>")
        if value != self.widget.value:
            self.widget.value = value

    def _on_change(self, trainer, event) -> None:
        self._draw()

    def flush(self) -> None:
        self._draw.flush()

    def close(self) -> None:
        self.trainer.on_change(self._on_change, remove=True)
        self._draw.clock.drop(self._draw)
        self.widget.close()


def _code(text: str) -> str:
    """Escaped text with its `code` spans as <code> (the notes are written for print() too)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
