"""Push timing, written once: what is stale (dirty bits), when it may go (time rules), and a trailing call.

The dashboard pushes by time, never per step; its tabs refresh at most once a second. Both need "run now if
enough time has passed, else once when it has": that is `Throttle`. `PushClock` adds the dashboard's own rules:
light parts (text, curves) at `fps`, the heatmaps at `heavy_fps`, and at full speed a minimum of iterations.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .phases import Phase

__all__ = ["ALL", "BATCH", "CONTROLS", "CURVES", "DIRTY", "GRAD", "HEAVY", "PARTS", "WEIGHTS", "PushClock",
           "Throttle"]

# what an event makes stale; bit flags keep the Trainer's listener a few hundred nanoseconds
CONTROLS, CURVES, WEIGHTS, GRAD, BATCH = 1, 2, 4, 8, 16
HEAVY = WEIGHTS | GRAD | BATCH  # the heatmaps: most of the bytes, so pushed less often during Play
ALL = CONTROLS | CURVES | HEAVY
DIRTY = {
    Phase.NEXT_BATCH: CONTROLS | BATCH, Phase.FORWARD: CONTROLS | BATCH, Phase.ZERO_GRAD: CONTROLS | GRAD,
    Phase.BACKWARD: CONTROLS | GRAD, Phase.SGD: CONTROLS | CURVES | WEIGHTS,
    "epoch": CONTROLS | CURVES, "reset": ALL, "undo": ALL, "settings": CONTROLS, "warning": CONTROLS,
    "divergence": ALL,
}
PARTS = {CURVES: "curves", WEIGHTS: "weights", GRAD: "grad", BATCH: "batch"}
# at full speed a push also waits for this many iterations: bytes per iteration stay bounded (≤ ~350 B) on a
# slow or busy machine too, where the browser shares the cores and must not fall behind
EVERY_LIGHT, EVERY_HEAVY = 50, 150


class Throttle:
    """Call `fn` at most once per `interval` seconds; a call that comes too soon runs once when it is over.

    The deferred call goes through `loop` (the kernel's); without a loop it waits for `flush()`.
    """

    def __init__(self, fn: Callable[[], None], interval: float, loop: asyncio.AbstractEventLoop | None):
        self.fn, self.interval, self.loop = fn, interval, loop
        self.last = -float("inf")
        self.pending = self.scheduled = False

    def __call__(self) -> None:
        if time.perf_counter() - self.last >= self.interval:
            self.run()
        else:
            self.later()

    def later(self) -> None:
        """Run once after the interval (from now), however many times this is called meanwhile."""
        self.pending = True
        loop = self.loop
        if not self.scheduled and loop is not None and not loop.is_closed():
            self.scheduled = True
            loop.call_soon_threadsafe(loop.call_later, self.interval, self._deferred)

    def run(self) -> None:
        self.last, self.pending = time.perf_counter(), False
        self.fn()

    def flush(self) -> None:
        """Run now if a call is waiting (the end of Play, tests)."""
        if self.pending:
            self.run()

    def _deferred(self) -> None:
        self.scheduled = False
        if self.pending:
            self()  # a call may have run since this was scheduled: then it waits out the rest of that interval


class PushClock:
    """Which stale parts may be pushed now: ≤ fps for text and curves, ≤ heavy_fps for the heatmaps."""

    def __init__(self, fps: float, heavy_fps: float):
        self.fps, self.heavy_fps = fps, heavy_fps
        self.dirty = ALL
        self.t_light = self.t_heavy = 0.0
        self.it_light = self.it_heavy = 0

    def take(self, parts: int | None = None) -> int:
        """Mark `parts` (default: all stale ones) as sent; returns them."""
        parts = self.dirty if parts is None else parts
        self.dirty &= ~parts
        return parts

    def sent(self, parts: int, iteration: int) -> None:
        now = time.perf_counter()
        self.t_light, self.it_light = now, iteration
        if parts & HEAVY:
            self.t_heavy, self.it_heavy = now, iteration

    def due(self, iteration: int, phase_mode: bool = False, full_speed: bool = False) -> int:
        """The parts to push now (0: none yet). At full speed only W of the heatmaps: W.grad and the batch change
        every step, too fast to read, cost the browser most, and are drawn when Play stops."""
        now = time.perf_counter()
        if now - self.t_light < 1 / self.fps or (full_speed and iteration - self.it_light < EVERY_LIGHT):
            return 0
        parts = self.dirty & (CONTROLS | CURVES)
        if phase_mode or (now - self.t_heavy >= 1 / self.heavy_fps
                          and not (full_speed and iteration - self.it_heavy < EVERY_HEAVY)):
            parts = self.dirty & (CONTROLS | CURVES | WEIGHTS) if full_speed else self.dirty
        return parts
