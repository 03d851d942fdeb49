"""What the dashboard puts into the page besides widgets: its CSS, the banner of a dashboard whose kernel is gone,
and the keyboard's one table. The script that hears the keys is keys.js (an ES module, run by front_end.KeyReader);
the keyboard's Python side is keys.py (Dashboard.handle_key); the widgets are controls.py.
"""

from __future__ import annotations

__all__ = ["CONTROLS_CSS", "CSS", "DISCONNECTED", "DISCONNECTED_CSS", "KEYS", "KEYS_HELP", "KEYS_LIST", "KEYS_ON",
           "KEY_TABLE", "PASS_KEYS"]

# the keyboard, one table: what the help line says and what the key does come from the same row
KEY_TABLE = [  # (keys as KeyboardEvent.key, label in the help, action, words in the help)
    (("ArrowRight", "s", "S"), "→ or s", "step", "step"),
    ((" ",), "Space", "play", "play/pause"),
    (("u", "U"), "u", "undo", "undo"),
    (("r", "R"), "r", "reset", "reset"),
]
KEYS = {key: action for keys, _, action, _ in KEY_TABLE for key in keys}
# keys the dashboard never takes, even while it has the keyboard: they reach JupyterLab untouched (Shift-Enter runs
# the next cell, Tab moves the focus), and so does every key with Ctrl, Alt or ⌘ (Ctrl-S saves). Escape gives the
# keyboard back to the notebook; the arrows up and down and the page keys still scroll
PASS_KEYS = ["Shift", "Control", "Alt", "Meta", "AltGraph", "CapsLock", "Enter", "Tab", "Escape", "F1", "F2", "F3",
             "F4", "F5", "F6", "F7", "F8", "F9", "F10", "F11", "F12", "ArrowUp", "ArrowDown", "PageUp", "PageDown",
             "Home", "End"]
KEYS_LIST = " · ".join(f"{label} {words}" for _, label, _, words in KEY_TABLE)
# the keys line under the dashboard, both ways: the page shows the one that is true now (keys.js marks the
# dashboard armed while the focus is inside it, outside its text boxes and sliders)
KEYS_HELP = f"click the dashboard to use its keys: {KEYS_LIST}"
KEYS_ON = f"keys on: {KEYS_LIST} (a click elsewhere, or Escape, gives the keyboard back)"
# the frame says the keys are armed (the focus is inside the dashboard, outside a text box or slider): thin, not
# the browser's black focus ring; the keys line shows the sentence that is true now. The code and math lines may
# shrink inside their row, so a line longer than the row wraps (ipywidgets' HTML content box does not shrink below
# its text by itself)
CSS = ("<style>.sw-dashboard:focus, .sw-dashboard:focus-visible {outline: none;} "
       ".sw-dashboard.sw-keys-armed {outline: 2px solid rgba(25, 118, 210, 0.45) !important; outline-offset: -2px; "
       "border-radius: 3px;} "
       ".sw-dashboard .sw-keys-on {display: none;} .sw-dashboard.sw-keys-armed .sw-keys-on {display: inline;} "
       ".sw-dashboard.sw-keys-armed .sw-keys-off {display: none;} "
       # the row of tabs is toggle buttons (views.py): the panes' own Tab bar is not shown
       ".sw-dashboard .sw-panes > .lm-TabBar {display: none;} "
       ".sw-dashboard .sw-code .widget-html-content, .sw-dashboard .sw-math .widget-html-content "
       "{min-width: 0;}</style>")
# a dashboard whose kernel is gone (restarted, stopped): ipywidgets 8 gives every view of a model whose comm died the
# class jupyter-widgets-disconnected (and a broken-link icon before each). The dashboard's root then says so in a
# banner, and its controls are greyed (no orange "Pause" of a Play that no longer runs) and no longer take clicks
DISCONNECTED = "The kernel restarted or stopped, so this dashboard is no longer connected to a run and its buttons \
do nothing. Run its cell again for a live dashboard (in the app: reload the page); a run saved with trainer.save(path) \
comes back with Trainer.load(path)."
DISCONNECTED_CSS = ("<style>.sw-dashboard.jupyter-widgets-disconnected::before {content: '" + DISCONNECTED + "'; "
                    "display: block; font: 600 var(--jp-ui-font-size2, 15px)/1.4 var(--jp-ui-font-family, sans-serif);"
                    " color: #fff; background: #c00000; padding: 8px 12px; margin: 0 0 6px 0; "
                    "white-space: normal; align-self: stretch;} "
                    ".sw-dashboard.jupyter-widgets-disconnected > * "
                    "{opacity: 0.4; filter: grayscale(1); pointer-events: none;} "
                    ".sw-dashboard.jupyter-widgets-disconnected .jupyter-widgets-disconnected::before "
                    "{display: none;}</style>")
# What focused elements keep their own keys (→ moves a focused slider, letters go into a text box): keys.js skips them
CONTROLS_CSS = ("input,textarea,select,[contenteditable],[role=slider],[role=spinbutton],[role=listbox],"
                "[role=combobox],[role=textbox],.noUi-target")
