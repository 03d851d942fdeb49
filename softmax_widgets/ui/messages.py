"""Every sentence the dashboard says (status line, ways out, keys, panes), keyed by a stable id, through the same
lookup and translation hook as the core's (softmax_widgets.messages: `set_translation` covers both).

A new sentence of the dashboard is one entry here; the core's sentences stay in softmax_widgets/messages.py.
"""

from __future__ import annotations

from softmax_widgets.messages import Catalog

__all__ = ["CATALOG", "say"]

CATALOG: dict[str, str] = {
    # status.py: the status line
    "status.no_cause": "a number turned NaN or inf",
    "status.ways_below": " Ways out, below: {names}.",
    "status.way_no_button": "{label} back (the softmax toggle: lesson's)",
    "status.not_lost": "{what}{where} Nothing recorded so far is lost.{ways}",
    "status.opening_fresh": "{name}: press next_batch (or Step) to start, then each lit button in turn; ▶ Play runs "
                            "the loop for you",
    "status.opening_under_way": "{name}: a run already under way (loaded, or trained before this dashboard), at "
                                "{where}. Press {next} (the lit button) or Step to go on.",
    "status.paused": "paused at iteration {iteration} (epoch {epoch}) — ▶ Play goes on",
    "status.scale_cells": ", the notebook's cells too",
    "status.scale_normal": "normal size; A+ enlarges every text and plot ×{presentation:g}{cells}",
    "status.scale_too_big": " (above {limit:g} the dashboard no longer fits one 1280×720 screen)",
    "status.scale_big": "presentation size ×{value:g}: every text and plot enlarged{cells}; A+ again for the normal "
                        "size{fits}",
    "status.nothing_to_keep": "Nothing to keep yet: this run has no iteration. Train first (Step, Run epoch or Play).",
    "status.kept": "kept {label}: its loss stays on the loss plot, dashed; the compare runs tab has its test accuracy",
    "status.off_page": "Play paused: the dashboard is no longer on the page (its output was cleared or its cell run "
                       "again). Show it again with `dash` in a cell, then press Play.",
    # ways.py: what a way out did
    "way.stale": "That way out belonged to a divergence that is no longer the last thing that happened: nothing "
                 "changed.",
    "way.go_on": "▶ Play (or {next}, lit) goes on from here.",
    "way.done_reset": "Reset to seed {seed}'s start (W ~ N(0, {init_std:g}²), b = 0), {kept}; kept: {softmax}, batch "
                      "{batch_size}. ↶ undo takes the reset back. {go}",
    "way.done_stable": "The stable softmax is on (it subtracts each row's max before exp): {kept}. {go}",
    "way.done_lesson": "Took back {them} and put the lesson's {lesson} back: W as before (iteration {iteration}), "
                       "{kept}. {go}",
    "way.done_hand": "The change by hand is taken back: W and b as before it, {kept}. {go}",
    "way.done_steps": "Took back {steps} at the too large lr: W as it was before {them} (iteration {iteration}), "
                      "{kept}. {go}",
    "way.done_lr": "{kept}: the step that overflowed runs again with it. {go}",
    # front_end.Upload: a state file's upload, its size checked in the browser before a byte is sent
    "upload.too_big": "{name} is {size}; a state file here can be at most {limit}: it was not sent, and the run is "
                      "unchanged. A state file of this lesson is a few MB at most (about 30 bytes per iteration): "
                      "choose one that the export tab's state file button or trainer.save(path) wrote.",
    "upload.unreadable": "The browser could not read {name} ({error}): nothing was sent, and the run is unchanged. "
                         "Choose the file again; if it is on a network drive or still being written, copy it to "
                         "your own disk first.",
    "upload.broken": "{name} did not arrive whole (its pieces came out of order, or more than its {size}): nothing "
                     "was loaded, and the run is unchanged. Choose the file again.",
    # keys.py
    "keys.nothing": "The key {key!r} does nothing here. Keys: {keys}. To type elsewhere, click there or press Escape.",
}

say = Catalog("softmax_widgets.ui", CATALOG).say
