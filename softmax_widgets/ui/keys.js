// The dashboard's keyboard, in the page (an anywidget module: front_end.KeyReader). The keys act only while
// the focus is inside the dashboard (.sw-dashboard, tabindex -1): a click on it (empty space, a plot, a button) arms
// them, a click or a focus elsewhere (a code cell) disarms them, and hovering does nothing. A focused text box,
// slider or dropdown keeps its keys; a key with Ctrl, Alt or ⌘ and the model's pass_keys go on to JupyterLab;
// Escape gives the focus back to the notebook. A key the dashboard takes is stopped before JupyterLab's own
// shortcuts hear it (a capture listener on window runs before Lab's on document: r would otherwise turn a cell raw,
// x cut one) and sent to Python as one custom message (keys.Keys.event).
//
// JupyterLab takes a focus or a mouse press inside a cell's output as "make this cell the active one": after a click
// on Step, Shift-Enter re-ran the dashboard's own cell and lost the run. So presses and focus stay inside the
// dashboard (the active cell stays where the code is); a right-click goes through, for JupyterLab's context menu.
// A focus lost to nothing (a clicked way-out button hides itself) stays in the dashboard, unless the press was
// elsewhere: then the notebook gets it, so b, m, dd work. A shortcut pressed while the keys are armed (Ctrl-S: Lab
// saves, then focuses the active cell) keeps them: a focus Lab moves within 3 s, to no text box and with no click
// since, comes back (Ctrl/Alt-Enter run cells and move on: those let go).

function hook(d, model) {
  const PASS = model.get("pass_keys"), CONTROLS = model.get("controls");
  const view = Math.random().toString(36).slice(2);
  let count = 0, outside = false, keep = 0;
  const control = (el) => !!(el && el.closest && el.closest(CONTROLS));
  const show = () => {
    const a = document.activeElement;
    d.classList.toggle("sw-keys-armed", !!a && d.contains(a) && !control(a));
  };
  const later = () => setTimeout(show, 0);
  const back = () => {
    const nb = d.closest(".jp-Notebook"), a = document.activeElement;
    if (nb) nb.focus({ preventScroll: true });
    else if (a && d.contains(a)) a.blur();
    show();
  };
  const stop = (e) => { if (e.button !== 2) e.stopPropagation(); };
  const onPointer = (e) => {
    if (e.button !== 0 || control(e.target)) return;
    setTimeout(() => { if (!d.contains(document.activeElement)) d.focus({ preventScroll: true }); show(); }, 0);
  };
  const onFocusOut = (e) => {
    later();
    if (e.relatedTarget) return;
    setTimeout(() => {
      if (!d.isConnected || document.activeElement !== document.body) return;
      if (outside) back();
      else { d.focus({ preventScroll: true }); show(); }
    }, 0);
  };
  const ours = (e) => {
    const t = e.target;
    return t instanceof Node && d.contains(t) && !(e.ctrlKey || e.metaKey || e.altKey) && !e.isComposing
      && !control(t) && PASS.indexOf(e.key) < 0;
  };
  const onDown = (e) => { outside = !d.contains(e.target); keep = 0; };
  const onFocus = (e) => {
    if (performance.now() > keep || d.contains(e.target) || control(e.target)) return;
    keep = 0;
    setTimeout(() => { d.focus({ preventScroll: true }); show(); }, 0);
  };
  const onKey = (e) => {
    if ((e.ctrlKey || e.metaKey || e.altKey) && e.key !== "Enter" && d.contains(e.target) && !control(e.target))
      keep = performance.now() + 3000;
    if (e.key === "Escape" && d.contains(e.target) && !control(e.target)) { setTimeout(back, 0); return; }
    if (!ours(e)) return;
    e.preventDefault();
    e.stopPropagation();
    model.send({ view, n: ++count, key: e.key, shiftKey: e.shiftKey, repeat: e.repeat });
  };
  const onUp = (e) => { if (ours(e)) { e.preventDefault(); e.stopPropagation(); } };
  const local = [["focusin", stop], ["mousedown", stop], ["pointerdown", stop], ["focusin", later],
                 ["pointerdown", onPointer], ["focusout", onFocusOut]];
  const global = [[window, "keydown", onKey], [window, "keyup", onUp],
                  [document, "pointerdown", onDown], [document, "focusin", onFocus]];
  d.tabIndex = -1;
  local.forEach(([k, f]) => d.addEventListener(k, f));
  global.forEach(([t, k, f]) => t.addEventListener(k, f, true));
  show();
  return () => {
    local.forEach(([k, f]) => d.removeEventListener(k, f));
    global.forEach(([t, k, f]) => t.removeEventListener(k, f, true));
    d.classList.remove("sw-keys-armed");
  };
}

// One view of the key reader: it waits (up to 10 s) to be placed inside its dashboard, then hooks it once; a second
// view of the same dashboard's widgets finds its own .sw-dashboard. The listeners go when the view does.
export default {
  render({ model, el }) {
    let tries = 0, timer = 0, unhook = null, d = null;
    const find = () => {
      d = el.closest(".sw-dashboard");
      if (!d) { if (tries++ < 100) timer = setTimeout(find, 100); return; }
      if (d.swKeys) return;  // another reader already hooked this dashboard
      d.swKeys = true;
      unhook = hook(d, model);
    };
    find();
    return () => {
      clearTimeout(timer);
      if (unhook) { unhook(); d.swKeys = false; }
    };
  },
};
