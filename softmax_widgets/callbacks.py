"""One listener registry for everything that views observe (the Trainer, kept runs), after ipywidgets'
CallbackDispatcher: register once, remove on request, call every listener and isolate each one's error."""

from __future__ import annotations

import logging
from collections.abc import Callable

__all__ = ["CallbackRegistry"]

log = logging.getLogger(__name__)


class CallbackRegistry:
    """Callbacks in the order they registered; `__call__` runs them all, logging (never raising) their errors."""

    def __init__(self, owner: str):
        self.owner = owner  # named in the log line when a listener fails
        self._callbacks: list[Callable] = []

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
            except Exception:  # one broken view must not stop training or the other views
                log.exception("%s listener %r failed", self.owner, callback)

    def __len__(self) -> int:
        return len(self._callbacks)

    def __bool__(self) -> bool:
        return bool(self._callbacks)
