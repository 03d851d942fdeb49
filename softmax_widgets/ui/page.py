"""What the dashboard puts into the page besides widgets: its CSS, the banner of a dashboard whose kernel is gone,
and the keyboard (its one table, and the script that hears the keys: KEYS_JS).

The keyboard's Python side is keys.py (Dashboard.handle_key); the widgets are controls.py.
"""

from __future__ import annotations

__all__ = ["CONTROLS_CSS", "CSS", "DISCONNECTED", "DISCONNECTED_CSS", "KEEP_FOCUS", "KEYS", "KEYS_HELP", "KEYS_JS",
           "KEYS_LIST", "KEYS_ON", "KEY_TABLE", "PASS_KEYS"]

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
# the keys line under the dashboard, both ways: the page shows the one that is true now (KEYS_JS marks the
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
       "{min-width: 0;} "
       # ipywidgets' FileUpload always writes "description (N files)": after a load it read "(0)" (the value is
       # emptied so the same file can be chosen again). Its text is hidden and the label drawn by CSS instead
       ".sw-dashboard .sw-upload {font-size: 0 !important;} .sw-dashboard .sw-upload::before "
       "{content: 'load state file (.pt)'; font-size: var(--jp-widgets-font-size, 13px);}</style>")
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
# What focused elements keep their own keys (→ moves a focused slider, letters go into a text box)
CONTROLS_CSS = ("input,textarea,select,[contenteditable],[role=slider],[role=spinbutton],[role=listbox],"
                "[role=combobox],[role=textbox],.noUi-target")
# The dashboard's keyboard, in the page. The keys act only while the focus is inside the dashboard: a click on it
# (empty space, a plot, a button; the root has tabindex -1) arms them, a click or a focus elsewhere (a code cell)
# disarms them, and hovering does nothing. A focused text box, slider or dropdown keeps its keys; a key with Ctrl,
# Alt or ⌘ and PASS_KEYS go on to JupyterLab; Escape gives the focus back to the notebook. A key the dashboard takes
# is stopped before JupyterLab's own shortcuts hear it (a capture listener on window runs before Lab's on document:
# r would otherwise turn a cell raw, x cut one) and written, as JSON, into the hidden text box `Controls.keys`: its
# model syncs it to Python like any typed text (keys.Keys.message).
# JupyterLab takes a focus or a mouse press inside a cell's output as "make this cell the active one": after a click
# on Step, Shift-Enter re-ran the dashboard's own cell and lost the run. So presses and focus stay inside the
# dashboard (the active cell stays where the code is); a right-click goes through, for JupyterLab's context menu. A
# focus lost to nothing (a clicked way-out button hides itself) stays in the dashboard, unless the press was
# elsewhere: then the notebook gets it, so b, m, dd work. A shortcut pressed while the keys are armed (Ctrl-S: Lab
# saves, then focuses the active cell) keeps them: a focus Lab moves within 3 s, to no text box and with no click
# since, comes back (Ctrl/Alt-Enter run cells and move on: those let go). No other front-end code ships with
# ipywidgets: an image that fails to load runs this once per view, in Lab, Notebook 7 and Voila alike. Single quotes
# only (it sits in a double-quoted attribute).
KEYS_JS = """(function(img){var n=0;(function hook(){
var d=img.closest('.sw-dashboard');if(!d){if(n++<100)setTimeout(hook,100);return;}
if(d.swKeys)return;d.swKeys=1;d.tabIndex=-1;
var PASS=__PASS__,CONTROLS='__CONTROLS__',view=Math.random().toString(36).slice(2),count=0,outside=false,keep=0;
var control=function(el){return !!(el&&el.closest&&el.closest(CONTROLS));};
var show=function(){var a=document.activeElement;d.classList.toggle('sw-keys-armed',!!a&&d.contains(a)&&!control(a));};
var later=function(){setTimeout(show,0);};
var back=function(){var nb=d.closest('.jp-Notebook'),a=document.activeElement;
if(nb)nb.focus({preventScroll:true});else if(a&&d.contains(a))a.blur();show();};
var stop=function(e){if(e.button===2)return;e.stopPropagation();};
['focusin','mousedown','pointerdown'].forEach(function(k){d.addEventListener(k,stop);});
d.addEventListener('focusin',later);
d.addEventListener('pointerdown',function(e){if(e.button!==0||control(e.target))return;
setTimeout(function(){if(!d.contains(document.activeElement))d.focus({preventScroll:true});show();},0);});
d.addEventListener('focusout',function(e){later();if(e.relatedTarget)return;setTimeout(function(){
if(!d.isConnected||document.activeElement!==document.body)return;
if(outside)back();else{d.focus({preventScroll:true});show();}},0);});
var ours=function(e){var t=e.target;return t instanceof Node&&d.contains(t)&&!(e.ctrlKey||e.metaKey||e.altKey)
&&!e.isComposing&&!control(t)&&PASS.indexOf(e.key)<0;};
var onDown=function(e){if(!d.isConnected)return done();outside=!d.contains(e.target);keep=0;};
var onFocus=function(e){if(!d.isConnected)return done();
if(performance.now()>keep||d.contains(e.target)||control(e.target))return;
keep=0;setTimeout(function(){d.focus({preventScroll:true});show();},0);};
var onKey=function(e){if(!d.isConnected)return done();
if((e.ctrlKey||e.metaKey||e.altKey)&&e.key!=='Enter'&&d.contains(e.target)&&!control(e.target))keep=performance.now()+3000;
if(e.key==='Escape'&&d.contains(e.target)&&!control(e.target)){setTimeout(back,0);return;}
if(!ours(e))return;e.preventDefault();e.stopPropagation();
var box=d.querySelector('.sw-key-input input');if(!box)return;
box.value=JSON.stringify({view:view,n:++count,key:e.key,shiftKey:e.shiftKey,repeat:e.repeat});
box.dispatchEvent(new Event('input',{bubbles:true}));};
var onUp=function(e){if(ours(e)){e.preventDefault();e.stopPropagation();}};
var done=function(){window.removeEventListener('keydown',onKey,true);window.removeEventListener('keyup',onUp,true);
document.removeEventListener('pointerdown',onDown,true);
document.removeEventListener('focusin',onFocus,true);};
window.addEventListener('keydown',onKey,true);window.addEventListener('keyup',onUp,true);
document.addEventListener('pointerdown',onDown,true);document.addEventListener('focusin',onFocus,true);show();
})();})(this)""".replace("__PASS__", "[" + ",".join(f"'{k}'" for k in PASS_KEYS) + "]").replace(
    "__CONTROLS__", CONTROLS_CSS)
KEEP_FOCUS = ("<img alt='' style='display:none' src='data:,' onerror=\"" + KEYS_JS.replace("\n", "") + "\">")
