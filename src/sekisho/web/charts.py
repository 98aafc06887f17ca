"""Geometry of the migration report's charts, drawn as inline SVG (no script: the CSP
allows none inline). Both charts share one frame: days along the x axis, oldest on the
left and today at the right edge, with dated ticks; counts or shares up the y axis,
with labelled gridlines. Every mark carries a ``<title>`` with its date and value, and
the page repeats the numbers in tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 640
HEIGHT = 260
LEFT = 56  # room for "100%" at phone font size
RIGHT = 28  # room for the last date label, centred on today, at phone font size
TOP = 12
BOTTOM = 36
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
Y_TICKS = 4
DATE_TICK_EVERY = 7


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True, slots=True)
class Frame:
    """Plot area and axes for ``days`` (ISO dates) with y values up to ``top``."""

    days: Sequence[str]
    top: float

    @property
    def slot(self) -> float:
        return PLOT_WIDTH / max(len(self.days), 1)

    def x(self, index: int) -> float:
        """Centre of day ``index``'s slot."""
        return round(LEFT + (index + 0.5) * self.slot, 1)

    def y(self, value: float) -> float:
        return round(TOP + PLOT_HEIGHT - value / self.top * PLOT_HEIGHT, 1)

    def date_ticks(self) -> list[Tick]:
        """A tick every week counted back from today, so the last day is always labelled."""
        last = len(self.days) - 1
        return [
            Tick(self.x(index), self.days[index][5:])
            for index in reversed(range(last, -1, -DATE_TICK_EVERY))
        ]

    def value_ticks(self, percent: bool = False) -> list[Tick]:
        step = self.top / Y_TICKS
        return [
            Tick(
                self.y(step * index),
                f"{round(step * index * 100)}%" if percent else f"{round(step * index)}",
            )
            for index in range(Y_TICKS + 1)
        ]


def nice_top(peak: int) -> int:
    """The smallest 'round' axis top (multiple of 4 x 1, 2, 5 x 10^n) at or above ``peak``."""
    if peak <= Y_TICKS:
        return Y_TICKS
    step = peak / Y_TICKS
    magnitude = 10 ** math.floor(math.log10(step))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= step:
            return int(factor * magnitude * Y_TICKS)
    return int(10 * magnitude * Y_TICKS)
