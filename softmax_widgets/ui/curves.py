"""The loss and accuracy curves as drawn: decimated, smoothed, with ticks that fit; one palette for kept runs.

Pure numpy and one bqplot Axis helper, shared by the live plots (plots.py) and the compare runs tab
(panes/compare.py), so a kept run is the same curve in the same colour wherever it is drawn.
"""

from __future__ import annotations

import html
import math

import numpy as np
from bqplot import Axis

__all__ = ["BETA", "DIGIT_PX", "FEW", "MAX_POINTS", "RUN_COLOURS", "SMOOTH", "Series", "debias", "decimate_indices",
           "iteration_ticks", "kept_curve", "legend", "nice_ceil", "run_colour", "set_ticks", "smoothed",
           "value_ticks"]

MAX_POINTS = 300  # most points per curve sent (a 440 px plot shows no more); each push costs bytes
SMOOTH = 50  # iterations the smoothed curve averages over (an exponential moving average of about that span)
BETA = 1 - 2 / (SMOOTH + 1)  # the EMA whose centre of mass matches a 50-point window
FEW = 20  # a curve with fewer points shows them as markers


def decimate_indices(n: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Every k-th index (k a power of 2, so the picks stay put as n grows) plus the exact last one."""
    if n <= max_points:
        return np.arange(n)
    k = 1 << math.ceil(math.log2((n - 1) / (max_points - 1)))
    idx = np.arange(0, n, k)
    return idx if idx[-1] == n - 1 else np.append(idx, n - 1)


def nice_ceil(x: float) -> float:
    """The smallest of 1, 2, 5 × 10^k that is >= x: colour-scale limits a reader can quote."""
    if not (x > 0 and math.isfinite(x)):
        return 1.0
    e = math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if m * 10.0 ** e >= x * (1 - 1e-9):
            return m * 10.0 ** e
    return 10.0 ** (e + 1)


DIGIT_PX, TICK_GAP_PX = 7.5, 18  # a digit of a 12 px tick label is at most ~7 px wide; the room left between two


def iteration_ticks(hi: float, width_px: float, lo: float = 0.0) -> np.ndarray:
    """Whole-number ticks from lo to hi, spaced 1, 2 or 5 × 10^k apart: as many as `width_px` holds without two
    labels touching (bqplot's own choice ran "80100120140..." together near 300 iterations)."""
    hi = max(float(hi), lo + 1.0)
    label_px = DIGIT_PX * len(str(int(hi))) + TICK_GAP_PX
    most = max(2, int(width_px // label_px))
    step = max(1, round(nice_ceil((hi - lo) / most)))
    first = math.ceil(lo / step) * step
    return np.arange(first, hi + 1e-9, step, dtype=np.float64)


def value_ticks(hi: float, most: int = 6) -> np.ndarray:
    """Ticks from 0 to hi, spaced 1, 2 or 5 × 10^k apart, at most `most` + 1 of them: 0, 0.5, 1, 1.5, 2 for 2.3."""
    hi = float(hi) if math.isfinite(hi) and hi > 0 else 1.0
    step = nice_ceil(hi / most)
    return np.arange(0.0, hi + step * 1e-6, step, dtype=np.float64).round(12)


def set_ticks(axis: Axis, ticks: np.ndarray) -> None:
    """Send the tick values only when they change (a push per new tick, not per step)."""
    old = axis.tick_values
    if old is None or len(old) != len(ticks) or not np.array_equal(np.asarray(old, np.float64), ticks):
        axis.tick_values = ticks


def smoothed(values: np.ndarray, start: float = 0.0) -> np.ndarray:
    """An exponential moving average of `values`, continuing from `start` (not yet divided by 1 − β^i: see
    `debias`): smooth from the first point on, with no kink where a 50-point window would fill."""
    out = np.empty(len(values), np.float64)
    m = start
    for i, x in enumerate(values.tolist()):  # a few hundred new points per push: a Python loop is fine here
        m = BETA * m + (1 - BETA) * x
        out[i] = m
    return out


def debias(raw: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The average of the points so far, weighted towards the last ~SMOOTH (as Adam corrects its moments)."""
    return (raw / (1 - BETA ** (idx + 1))).astype(np.float32)


class Series:
    """A history list mirrored into a growing float32 buffer, so a push never converts the whole list."""

    def __init__(self):
        self.source, self.n = None, 0
        self.values = np.empty(1024, np.float32)
        self.ema = np.zeros(1024, np.float64)  # the smoothed curve, kept up to date in O(new points)

    def sync(self, source: list) -> int:
        n = self.n
        # a reset gives a new History; an undo shortens it (and the next iteration may refill the same length)
        if source is not self.source or len(source) < n or (n and np.float32(source[n - 1]) != self.values[n - 1]):
            self.source, self.n = source, 0
        new = len(source) - self.n
        if new > 0:
            if len(source) > len(self.values):
                cap = max(2 * len(self.values), len(source))
                self.values = np.resize(self.values, cap)
                self.ema = np.resize(self.ema, cap)
            chunk = np.asarray(source[self.n:], np.float64)
            self.values[self.n:len(source)] = chunk
            self.ema[self.n:len(source)] = smoothed(chunk, self.ema[self.n - 1] if self.n else 0.0)
            self.n = len(source)
        return self.n

    def running_mean(self, idx: np.ndarray) -> np.ndarray:
        """The smoothed curve at `idx` (iterations − 1)."""
        return debias(self.ema[idx], idx)


def legend(items) -> str:
    """A legend in HTML beside the figure, never over the curves: [(colour, label, dashed)]."""
    spans = "".join(f"<span style='margin-left:12px;white-space:nowrap'><span style='display:inline-block;width:18px;"
                    f"vertical-align:middle;border-top:3px {'dashed' if dashed else 'solid'} {color}'></span> "
                    f"{html.escape(label)}</span>" for color, label, dashed in items)
    return spans


# kept runs in the order kept: the same colour on the main loss plot and in the compare runs tab (the live loss
# is blue on the one, black in the other, so neither palette starts with them)
RUN_COLOURS = ["#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def run_colour(i: int) -> str:
    """The colour of the i-th kept run, wherever it is drawn."""
    return RUN_COLOURS[i % len(RUN_COLOURS)]


def kept_curve(loss, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """A kept run's loss as drawn: its smoothed mean (bias-corrected), decimated; x is the iteration (1-based)."""
    loss = np.asarray(loss, np.float64)
    idx = decimate_indices(len(loss), max_points)
    y = debias(smoothed(loss)[idx], idx) if len(loss) else np.zeros(0, np.float32)
    return (idx + 1).astype(np.float32), y
