"""The dashboard's keys: a keydown the page heard (keys.js's message) becomes one click's worth of work.

The table of keys (which key does what, which pass through to JupyterLab) is page.py's KEY_TABLE; this is what
a press does once it reached the kernel. The dashboard hands over what each action does, the status line and how to
show it: nothing here reaches into the dashboard.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .controls import KEYS, KEYS_LIST, PASS_KEYS
from .messages import say

if TYPE_CHECKING:
    from collections.abc import Callable

    from .status import Status

__all__ = ["Keys", "hint"]

log = logging.getLogger(__name__)


def hint(key: str) -> str:
    """What the keys line says for a key that does nothing."""
    return say("keys.nothing", key=key, keys=KEYS_LIST)


class Keys:
    """Key presses to actions: `actions` maps KEYS' actions ("step", "play", "undo", "reset") to what they do;
    a key that does nothing, or an action that fails, is said on `status` and shown with `show()`."""

    def __init__(self, actions: dict[str, Callable[[], object]], status: Status, show: Callable[[], None]):
        missing = set(KEYS.values()) - set(actions)
        if missing:
            raise ValueError(f"Keys needs an action for {sorted(missing)}")
        self.actions, self.status, self.show = actions, status, show

    def press(self, key: str) -> bool:
        """One key press (KeyboardEvent.key); False for a key that does nothing (the keys line says which do)."""
        action = KEYS.get(key)
        if action is None:
            self.status.key_hint(hint(key))
            self.show()  # like a click: whatever code in a cell left pending goes too
            return False
        self.actions[action]()
        return True

    def message(self, content: object) -> None:
        """A key from the page: keys.js's custom message, one per press ({"key", "shiftKey", "repeat", ...})."""
        if isinstance(content, dict):
            self.event(content)
        else:
            log.warning("a key message that is not a key: %r", str(content)[:80])

    def event(self, event: dict) -> None:
        """One keydown the page heard while the dashboard had the focus; a shortcut with Ctrl, Alt or ⌘ is not ours
        (the page never sends one: this is the same rule once more)."""
        try:
            if any(event.get(k) for k in ("ctrlKey", "altKey", "metaKey")):
                return  # a shortcut: not the dashboard's, said nothing
            key = str(event.get("key", ""))
            if key in PASS_KEYS or (event.get("shiftKey") and key not in KEYS):
                return  # JupyterLab's (the page lets these through), or Shift + a key that is not ours: silent
            if event.get("repeat") and KEYS.get(key) in ("play", "reset"):
                return  # a held Space would flicker Play on and off
            self.press(key)
        except Exception as err:  # never a traceback in the output area
            self.status.error(err)
            self.show()
