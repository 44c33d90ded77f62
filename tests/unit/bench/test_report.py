"""The load report's own arithmetic."""

from __future__ import annotations

from types import SimpleNamespace

from bench.loadgen.report import median_of, sessions_at_ramp_end


def test_a_ramp_cut_short_counts_the_sessions_it_reached() -> None:
    done = [
        SimpleNamespace(ramped_at=5.0, ramped_sessions=100),
        SimpleNamespace(ramped_at=6.0, ramped_sessions=90),
    ]
    timeline = [
        {"phase": "ramp", "sessions": 150},
        {"phase": "ramp", "sessions": 180},
        {"phase": "hold", "sessions": 190},
    ]
    assert sessions_at_ramp_end(done, timeline) == 190  # what the generators said at their ramp's end
    cut = [done[0], SimpleNamespace(ramped_at=None, ramped_sessions=0)]
    assert sessions_at_ramp_end(cut, timeline) == 180  # not 100: the other generator never finished


def test_the_hold_lag_is_the_median_of_each_seconds_worst() -> None:
    hold = [{"lag_ms": 5.0}, {"lag_ms": 1500.0}, {"lag_ms": 12.0}, {"lag_ms": 9.0}]
    assert median_of(hold, "lag_ms") == 10.5  # one stall does not make the typical second
    assert median_of([], "lag_ms") is None
