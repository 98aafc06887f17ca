"""The report charts' frame: today at the right edge, dated and counted ticks."""

from __future__ import annotations

import pytest

from sekisho.web.charts import LEFT, PLOT_WIDTH, TOP, Frame, nice_top

DAYS = [f"2026-11-{day:02d}" for day in range(1, 32)][:31]


@pytest.mark.parametrize(("peak", "top"), [(0, 4), (3, 4), (5, 8), (9, 20), (41, 80), (130, 200)])
def test_axis_top_is_round_and_above_the_peak(peak: int, top: int) -> None:
    assert nice_top(peak) == top
    assert top >= peak


def test_today_is_the_rightmost_day_and_always_labelled() -> None:
    frame = Frame(DAYS, 4)
    positions = [frame.x(index) for index in range(len(DAYS))]
    assert positions == sorted(positions)
    assert positions[-1] == pytest.approx(LEFT + PLOT_WIDTH - frame.slot / 2, abs=0.1)
    ticks = frame.date_ticks()
    assert ticks[-1].label == DAYS[-1][5:]
    assert [tick.position for tick in ticks] == sorted(tick.position for tick in ticks)


def test_value_ticks_run_from_zero_to_the_top() -> None:
    counts = Frame(DAYS, 8).value_ticks()
    assert [tick.label for tick in counts] == ["0", "2", "4", "6", "8"]
    assert counts[-1].position == TOP
    shares = Frame(DAYS, 1.0).value_ticks(percent=True)
    assert [tick.label for tick in shares] == ["0%", "25%", "50%", "75%", "100%"]
