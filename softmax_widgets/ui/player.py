"""Play/Pause: an asyncio task on the kernel's loop; no threads, so Pause is just a flag.

A loop inside a click handler would block the kernel, and Pause would never arrive. The task steps the Trainer,
yields to the loop after every step (`await asyncio.sleep(0)`), and asks its host to push by time.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import warnings
import weakref
from typing import Protocol

__all__ = ["PHASE_MODE_RATE", "PlayHost", "Player", "current_loop"]

PHASE_MODE_RATE = 2.0  # at or below this many iterations/s, Play walks phase by phase


class PlayHost(Protocol):
    """What Play needs from the dashboard that drives it."""

    trainer: object

    def play_rate(self) -> float | None: ...  # iterations/s asked for; None: as fast as the CPU goes

    def play_started(self) -> None: ...  # Play's first step is about to run: the button says Pause

    def play_pushed(self, phase_mode: bool, full_speed: bool) -> None: ...  # after each step: push by time

    def play_stopped(self) -> None: ...  # the button says Play again; push everything

    def play_error(self, err: Exception | str) -> None: ...  # a step refused (words for the status line)


def current_loop() -> asyncio.AbstractEventLoop | None:
    """The loop Play will run on: the kernel's (running) loop, else this thread's loop if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return asyncio.get_event_loop()
        except RuntimeError:
            return None


_PLAYING: weakref.WeakSet = weakref.WeakSet()  # players a kernel interrupt (■) must stop


def _on_sigint(signum, frame) -> None:
    """The kernel's interrupt while Play runs between requests (ipykernel ignores SIGINT there): pause Play."""
    for player in list(_PLAYING):
        player.interrupted()


def _catch_sigint() -> None:
    """Route SIGINT to Play while the kernel is idle; inside a request ipykernel's own handler stays in charge."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_sigint)


def _release_sigint() -> None:
    if (not _PLAYING and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is _on_sigint):
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class Player:
    """Runs a host's Trainer until paused, at the host's speed; `run_for` does the same work without a loop."""

    def __init__(self, host: PlayHost):
        self.host = host
        self.loop = current_loop()  # captured when the dashboard is built: the kernel's loop
        self.task: asyncio.Task | None = None
        self.playing = False
        self.driving = False  # Play (or run_for) is stepping the Trainer: the host's listener only sets flags
        self.stop_epoch: int | None = None  # Run epoch: Play until this epoch count is reached
        self.last_step_time = self.pause_time = float("nan")  # time.time() of the last step / of pause()

    def play(self, until_epoch_end: bool = False) -> str:
        """Start Play on the kernel's loop; returns at once. '' or why it cannot start (words)."""
        self.stop_epoch = self.host.trainer.epoch + 1 if until_epoch_end else None
        if self.playing:
            return ""
        if self.loop is None or self.loop.is_closed():
            return "Play needs a running event loop (a Jupyter kernel); in a script call dash.run_for(n)."
        self.playing = True
        self.host.play_started()
        self.loop.call_soon_threadsafe(self._ensure_task)
        return ""

    def pause(self) -> None:
        """Stop after the step in progress; it only clears a flag, so it is honoured at once."""
        if self.playing:
            self.pause_time = time.time()
        self.playing = False

    def interrupted(self) -> None:
        """SIGINT during Play: only flags here (a signal handler must not send messages); the loop stops."""
        if self.playing:
            self.pause_time = time.time()
            self.host.play_error("Play stopped by the kernel interrupt (■). The Trainer is consistent: press Play "
                                 "to go on.")
        self.playing = False

    def run_for(self, iterations: int) -> int:
        """Play's work without an event loop (scripts, tests): `iterations` whole iterations, pushed by time."""
        start = self.host.trainer.iteration
        self.driving = True
        try:
            while self.host.trainer.iteration - start < iterations and self.tick(phase_mode=False):
                self.host.play_pushed(False, True)
        finally:
            self.driving = False
            self.host.play_stopped()
        return self.host.trainer.iteration - start

    def tick(self, phase_mode: bool) -> bool:
        """One unit of Play (a phase, or a whole iteration); False when Play must stop."""
        t = self.host.trainer
        try:
            t.step() if phase_mode else t.train_step()
        except Exception as err:
            self.host.play_error(err)
            return False
        self.last_step_time = time.time()
        return self.stop_epoch is None or t.epoch < self.stop_epoch

    def _ensure_task(self) -> None:
        if self.playing and (self.task is None or self.task.done()):
            self.task = self.loop.create_task(self._loop())

    async def _loop(self) -> None:
        self.driving = True
        next_due = time.perf_counter()
        _PLAYING.add(self)
        try:
            while self.playing:
                _catch_sigint()  # every step: a click's request handler may have put the kernel's back
                rate = None if self.stop_epoch is not None else self.host.play_rate()
                phase_mode = rate is not None and rate <= PHASE_MODE_RATE
                if not self.tick(phase_mode):
                    break
                self.host.play_pushed(phase_mode, rate is None)
                if rate is None:
                    await asyncio.sleep(0)  # let the kernel read Pause and other clicks
                    continue
                next_due = max(next_due + 1 / (rate * (5 if phase_mode else 1)), time.perf_counter() - 0.2)
                while self.playing and (delay := next_due - time.perf_counter()) > 0:
                    await asyncio.sleep(min(delay, 0.05))  # short naps: Pause still lands within 50 ms
        except KeyboardInterrupt:  # ■ landed while ipykernel's own handler was in place (just after a request)
            self.interrupted()
        except Exception as err:  # never let the task die with a traceback in the log only
            self.host.play_error(err)
        finally:
            _PLAYING.discard(self)
            _release_sigint()
            self.playing = False
            self.stop_epoch = None
            self.driving = False
            self.host.play_stopped()
