"""Metric arithmetic: histogram buckets."""

from __future__ import annotations

from gameserver.metrics import BUCKETS, _bucket


def test_latency_buckets_take_a_value_on_a_bound_into_that_bound() -> None:
    assert _bucket(0.0) == 0
    assert _bucket(BUCKETS[0]) == 0  # le="0.0001" includes 0.0001
    assert _bucket(BUCKETS[0] * 1.01) == 1
    assert _bucket(BUCKETS[-1]) == len(BUCKETS) - 1
    assert _bucket(BUCKETS[-1] + 1) == len(BUCKETS)  # +Inf
