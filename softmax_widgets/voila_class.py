"""Inside the Voila process of `softmax-widgets app` (its config imports this): the cap on live kernels, the
page a visitor past it gets, and each visitor's key. See classroom.py for the settings."""

from __future__ import annotations

import hashlib
import time

import nbformat
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.web import Finish, HTTPError

from .classroom import VISITOR_ENV

__all__ = ["FULL_TITLE", "ClassKernelManager", "full_page", "prelaunch_hook"]

FULL_TITLE = "This class is full"
RETRY_S = 30
HOLD_S = 120  # a place taken for a page whose kernel has not started yet is given back after this at the latest
MAX_KERNELS = 0  # set by the app's Voila config (`--max-kernels`); 0: no cap


def full_page(max_kernels: int) -> str:
    """What a visitor past the cap reads: why, and what to do (it retries by itself)."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='{RETRY_S}'>"
            f"<title>{FULL_TITLE}</title></head><body style='font-family:sans-serif;max-width:40em;margin:3em auto'>"
            f"<h1>{FULL_TITLE}</h1><p>All {max_kernels} places of this dashboard are taken: each open page holds one "
            "(a running Python kernel), and the server has room for no more.</p><p>What to do: close the dashboard "
            "in any other tab you have open, or wait: this page tries again by itself every "
            f"{RETRY_S} seconds. Teachers: start the app with a larger <code>--max-kernels</code> if the machine has "
            "the memory (docs/classroom.md says how much one page takes).</p></body></html>")


class ClassKernelManager(AsyncMappingKernelManager):
    """Voila's kernel manager with a cap. A place is taken when a page is admitted (prelaunch_hook, before Voila
    renders anything) and becomes a kernel as it starts; counting both keeps ten visitors arriving at once from all
    passing the check. A kernel started past the cap anyway (the preheated pool refilling) is refused."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._held: list[float] = []  # admitted pages whose kernel has not started yet
        self._starting = 0
        self._returned: set[str] = set()  # kernels whose start_kernel has returned

    def live(self) -> int:
        """Kernels running or starting; a place held for an admitted page is not counted here."""
        ids = set(self._kernels)
        self._returned &= ids
        registered_while_starting = len(ids - self._returned)
        return len(ids) + max(0, self._starting - registered_while_starting)

    def admit(self) -> bool:
        """Take a place for a page about to start its kernel; False when the class is full."""
        now = time.monotonic()
        self._held = [t for t in self._held if now - t < HOLD_S]
        if MAX_KERNELS and self.live() + len(self._held) >= MAX_KERNELS:
            return False
        self._held.append(now)
        return True

    async def start_kernel(self, *args, **kwargs):
        if self._held:
            self._held.pop(0)  # the place taken by admit() for this page
        elif MAX_KERNELS and self.live() >= MAX_KERNELS:
            raise HTTPError(503, f"{FULL_TITLE}: all {MAX_KERNELS} places are taken; close another dashboard tab or "
                                 f"try again in {RETRY_S} seconds")
        self._starting += 1
        try:
            kernel_id = await super().start_kernel(*args, **kwargs)
            self._returned.add(kernel_id)
            return kernel_id
        finally:
            self._starting -= 1


def prelaunch_hook(request_handler, notebook, cwd):
    """Before Voila renders the page (and starts its kernel): refuse a visitor past the cap with a page of its own,
    set the _xsrf cookie the page's unload needs to shut its kernel down (see launch.APP_CONFIG), and give the
    kernel the visitor's key (its own autosave)."""
    manager = request_handler.kernel_manager
    if isinstance(manager, ClassKernelManager) and not manager.admit():
        request_handler.set_status(503)
        request_handler.set_header("Retry-After", str(RETRY_S))
        request_handler.set_header("Content-Type", "text/html; charset=utf-8")
        raise Finish(full_page(MAX_KERNELS))
    _ = request_handler.xsrf_token  # tornado sets the _xsrf cookie as the token is read
    # the same browser keeps its _xsrf cookie across reloads: its token names this visitor's autosave, so a
    # reload reopens the visitor's own run, never the last one any visitor saved
    visitor = hashlib.sha256(request_handler._get_raw_xsrf_token()[1]).hexdigest()[:16]
    notebook.cells.insert(0, nbformat.v4.new_code_cell(f"import os\nos.environ[{VISITOR_ENV!r}] = {visitor!r}"))
    return notebook
