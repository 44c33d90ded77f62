"""The load report's own arithmetic."""

from __future__ import annotations

from types import SimpleNamespace

from bench.loadgen.report import sessions_at_ramp_end


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
