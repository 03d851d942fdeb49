"""Push timing, written once: what is stale (dirty bits), when it may go (time rules), and a trailing call.

The dashboard pushes by time, never per step; its tabs refresh at most once a second. Both need "run now if
enough time has passed, else once when it has": that is `Throttle`. `Clock` is one timer on the kernel's loop for
many such calls (its `lane`s: the dashboard's flush after code in a cell, the tabs' refresh, the graph panel and
the math line), so every throttled push of a dashboard waits on the same clock. `PushClock` is that clock with the
dashboard's own rules: light parts (text, curves) at `fps`, the heatmaps at `heavy_fps`, and at full speed a
minimum of iterations.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .phases import Phase

__all__ = ["ALL", "BATCH", "CONTROLS", "CURVES", "DIRTY", "GRAD", "HEAVY", "PARTS", "WEIGHTS", "Clock", "Lane",
           "PushClock", "Throttle"]

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


EARLY = 1e-3  # a loop timer may fire this much before its time: still on time


class Lane(Throttle):
    """A Throttle whose deferred call waits on its Clock's one timer instead of a timer of its own."""

    def __init__(self, fn: Callable[[], None], interval: float, clock: Clock):
        super().__init__(fn, interval, None)
        self.clock = clock
        self.due: float | None = None  # when the clock wakes this lane (perf_counter seconds); None: not waiting

    def later(self) -> None:
        self.pending = True
        if self.due is None:
            self.due = time.perf_counter() + self.interval
            self.clock.wake(self.due)


class Clock:
    """One timer on `loop` (the kernel's) for every lane made from it; without a loop, lanes wait for flush()."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None):
        self.loop = loop
        self.lanes: list[Lane] = []
        self._wakes: set[float] = set()  # the times a wake-up is scheduled for

    def lane(self, fn: Callable[[], None], interval: float, at_once_without_loop: bool = False) -> Lane:
        """`fn` at most once per `interval` seconds on this clock. at_once_without_loop: when no loop is running
        now (a script, a synchronous test), every call runs at once, since nothing would run a deferred one."""
        running = self.loop is not None and self.loop.is_running()
        lane = Lane(fn, 0.0 if at_once_without_loop and not running else interval, self)
        self.lanes.append(lane)
        return lane

    def drop(self, lane: Lane) -> None:
        """Forget a lane (its owner closed): it never runs again."""
        lane.pending = False
        if lane in self.lanes:
            self.lanes.remove(lane)

    def wake(self, at: float) -> None:
        """Have the loop look at the lanes at `at` (unless a wake-up at or before it is already scheduled)."""
        loop = self.loop
        if loop is None or loop.is_closed() or any(w <= at for w in self._wakes):
            return
        self._wakes.add(at)
        loop.call_soon_threadsafe(lambda: loop.call_later(max(0.0, at - time.perf_counter()), self._tick, at))

    def _tick(self, at: float) -> None:
        self._wakes.discard(at)
        now = time.perf_counter()
        for lane in list(self.lanes):
            if lane.due is None or lane.due > now + EARLY:
                continue
            lane.due = None
            if not lane.pending:
                continue
            if now - lane.last >= lane.interval - EARLY:
                lane.run()
            else:  # it ran since it was scheduled: it waits out the rest of that interval
                lane.due = lane.last + lane.interval
        waiting = [lane.due for lane in self.lanes if lane.due is not None]
        if waiting:
            self.wake(min(waiting))

    def flush(self) -> None:
        """Every lane with a call waiting runs now (the end of Play, tests)."""
        for lane in list(self.lanes):
            lane.flush()


class PushClock(Clock):
    """Which stale parts may be pushed now: ≤ fps for text and curves, ≤ heavy_fps for the heatmaps."""

    def __init__(self, fps: float, heavy_fps: float, loop: asyncio.AbstractEventLoop | None = None):
        super().__init__(loop)
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
