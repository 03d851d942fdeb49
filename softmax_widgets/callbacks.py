"""One listener registry for everything that views observe (the Trainer, kept runs), after ipywidgets'
CallbackDispatcher: register once, remove on request, call every listener and isolate each one's error. A failing
listener is said once where the student sees it (stderr: the cell's output in a notebook), with its traceback and
how to remove it, then only logged: a broken callback neither stops training nor fails without a word."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable

__all__ = ["CallbackRegistry"]

log = logging.getLogger(__name__)


class CallbackRegistry:
    """Callbacks in the order they registered; `__call__` runs them all, logging (never raising) their errors."""

    def __init__(self, owner: str):
        self.owner = owner  # named in the log line when a listener fails
        self._callbacks: list[Callable] = []
        self._told: list[Callable] = []  # the listeners whose failure was already said (a list: any callable)

    def register(self, callback: Callable, remove: bool = False) -> None:
        """Add `callback` (once), or remove it with remove=True, like `Button.on_click(callback, remove)`."""
        if remove:
            if callback in self._callbacks:
                self._callbacks.remove(callback)
        elif callback not in self._callbacks:
            self._callbacks.append(callback)

    def __call__(self, *args) -> None:
        for callback in list(self._callbacks):  # a listener may unsubscribe while we walk
            try:
                callback(*args)
            except Exception as err:  # one broken view must not stop training or the other views
                log.exception("%s listener %r failed", self.owner, callback)
                self._tell(callback, err)

    def _tell(self, callback: Callable, err: Exception) -> None:
        """The first failure of `callback`: what raised and how to fix or remove it, with the traceback."""
        if callback in self._told:
            return
        self._told.append(callback)
        name = getattr(callback, "__qualname__", None) or repr(callback)
        print(f"Your {self.owner} listener {name} raised {type(err).__name__}: {err}; training went on without it, "
              f"and it is called again at the next event (this is said once, the log has every time). Fix it, or "
              f"remove it: on_change({name}, remove=True).", file=sys.stderr)
        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)

    def __len__(self) -> int:
        return len(self._callbacks)

    def __bool__(self) -> bool:
        return bool(self._callbacks)
