"""The load report's own arithmetic."""

from __future__ import annotations

from types import SimpleNamespace

from bench.loadgen.report import commit_summary, median_of, sessions_at_ramp_end


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


def test_commit_summary_counts_slow_commits_by_server() -> None:
    """Buckets are upper bounds in ms, not cumulative; `inf` is above the last bound."""
    fast = {"0.1": 5, "1": 10, "100": 3, "250": 0, "1000": 0, "inf": 0}
    slow = {"0.1": 1, "1": 0, "100": 0, "250": 4, "1000": 2, "inf": 1}
    got = commit_summary([fast, slow])
    assert got["count"] == 26
    assert (got["over_100ms"], got["over_250ms"], got["over_1s"]) == (7, 3, 1)
    assert got["over_100ms_by_server"] == [0, 7]
    assert got["buckets_ms"]["250"] == 4


def test_a_sent_stamp_is_read_from_the_end_of_a_text_in_any_encoding() -> None:
    import json

    import msgspec

    from bench.loadgen.stats import sent_stamp

    event = {"room": 1, "from": 7, "text": "good luck from bot7 @t12345678", "data": None}
    assert sent_stamp(json.dumps({"type": "event", "data": event}).encode()) == 12.345678
    assert sent_stamp(msgspec.msgpack.encode(event)) == 12.345678
    assert sent_stamp(b'{"text":"no stamp here"}') is None
    assert sent_stamp(b'{"text":"@t"}') is None  # a marker without digits
    assert sent_stamp(b'{"text":"@t1 and later @t2000000"}') == 2.0  # the last one counts


def test_the_hold_mean_skips_seconds_without_a_figure() -> None:
    from bench.loadgen.report import hold_mean

    rows = [{"server_wait": 100.0}, {"server_wait": None}, {"server_wait": 300.0}, {}]
    assert hold_mean(rows, "server_wait") == 200.0
    assert hold_mean([{"server_wait": None}], "server_wait") is None  # no kernel figure at all
