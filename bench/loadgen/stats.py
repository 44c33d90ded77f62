"""Counters and latency histograms that generator processes ship to the parent and merge.

A `Histogram` is log-linear over integer microseconds: 32 sub-buckets per power of two,
so a reported percentile is within about 3% of the true value, from 1 us to hours, in a
fixed list of buckets (cheap to record into, cheap to merge, small to send).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SUB_BITS = 5
SUB = 1 << SUB_BITS
#: Enough buckets for 2**36 us (about 19 hours); larger values land in the last one.
NBUCKETS = 37 * SUB


def bucket_of(us: int) -> int:
    """The bucket index of a value in microseconds."""
    if us < SUB:
        return us if us > 0 else 0
    e = us.bit_length() - SUB_BITS - 1
    idx = e * SUB + (us >> e)
    return idx if idx < NBUCKETS else NBUCKETS - 1


def bucket_value(idx: int) -> float:
    """A representative value (the middle) of bucket `idx`, in microseconds."""
    if idx < SUB:
        return float(idx)
    e = idx // SUB - 1
    low = (idx - e * SUB) << e
    return low + ((1 << e) - 1) / 2


class Histogram:
    """Latencies in microseconds. `record` takes seconds."""

    __slots__ = ("counts", "n", "total", "max")

    def __init__(self) -> None:
        self.counts = [0] * NBUCKETS
        self.n = 0
        self.total = 0.0
        self.max = 0.0

    def record(self, seconds: float) -> None:
        us = int(seconds * 1e6)
        self.counts[bucket_of(us)] += 1
        self.n += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds

    def merge(self, other: Histogram) -> None:
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += c
        self.n += other.n
        self.total += other.total
        self.max = max(self.max, other.max)

    def percentile(self, p: float) -> float:
        """The p-th percentile (0..100) in seconds; 0 when empty."""
        if self.n == 0:
            return 0.0
        rank = max(1, int(p / 100.0 * self.n + 0.999999))
        seen = 0
        for i, c in enumerate(self.counts):
            if c:
                seen += c
                if seen >= rank:
                    return min(bucket_value(i) / 1e6, self.max)
        return self.max

    def summary_ms(self) -> dict[str, float]:
        """Count, mean, p50/p90/p99/p99.9 and max, in milliseconds."""
        if self.n == 0:
            return {"count": 0}
        return {
            "count": self.n,
            "mean_ms": round(self.total / self.n * 1e3, 3),
            "p50_ms": round(self.percentile(50) * 1e3, 3),
            "p90_ms": round(self.percentile(90) * 1e3, 3),
            "p99_ms": round(self.percentile(99) * 1e3, 3),
            "p999_ms": round(self.percentile(99.9) * 1e3, 3),
            "max_ms": round(self.max * 1e3, 3),
        }

    # -- transport between processes ----------------------------------------------------

    def to_wire(self) -> dict[str, Any]:
        return {
            "b": {i: c for i, c in enumerate(self.counts) if c},
            "n": self.n,
            "s": self.total,
            "m": self.max,
        }

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Histogram:
        h = cls()
        for i, c in raw["b"].items():
            h.counts[int(i)] += int(c)
        h.n = int(raw["n"])
        h.total = float(raw["s"])
        h.max = float(raw["m"])
        return h


def merged(hists: Iterable[Histogram]) -> Histogram:
    out = Histogram()
    for h in hists:
        out.merge(h)
    return out


class StepStats:
    """What one step label did in one generator process."""

    __slots__ = (
        "sent",
        "ok",
        "errors",
        "unsupported",
        "declined",
        "timeouts",
        "lost",
        "codes",
        "hist",
        "hold_hist",
        "ihist",
    )

    def __init__(self) -> None:
        self.sent = 0
        self.ok = 0
        #: error replies that are not "unsupported" and not accepted by the step
        self.errors = 0
        #: error replies `unknown_message` / `not_supported`: the server lacks the feature
        self.unsupported = 0
        #: error replies the step expects as a possible "no" (e.g. resume_failed)
        self.declined = 0
        self.timeouts = 0
        #: requests in flight when the connection went away
        self.lost = 0
        #: error code -> count, for `errors`
        self.codes: dict[int, int] = {}
        self.hist = Histogram()
        #: the latencies of replies that came in the hold phase (after the ramp)
        self.hold_hist = Histogram()
        #: the same latencies since the last snapshot (for percentiles over time)
        self.ihist = Histogram()

    def record_ok(self, seconds: float, hold: bool) -> None:
        """One reply: into `hist`, `ihist` and (in the hold) `hold_hist`, one bucket lookup."""
        self.ok += 1
        us = int(seconds * 1e6)
        if us < SUB:
            idx = us if us > 0 else 0
        else:
            e = us.bit_length() - SUB_BITS - 1
            idx = e * SUB + (us >> e)
            if idx >= NBUCKETS:
                idx = NBUCKETS - 1
        for h in (self.hist, self.ihist, self.hold_hist) if hold else (self.hist, self.ihist):
            h.counts[idx] += 1
            h.n += 1
            h.total += seconds
            if seconds > h.max:
                h.max = seconds

    def counters(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "unsupported": self.unsupported,
            "declined": self.declined,
            "timeouts": self.timeouts,
            "lost": self.lost,
            "codes": dict(self.codes),
        }


def add_counts(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    """Add nested dicts of numbers (missing keys count as 0)."""
    for k, v in other.items():
        if isinstance(v, Mapping):
            add_counts(into.setdefault(k, {}), v)
        else:
            into[k] = into.get(k, 0) + v


#: in a text field: replaced by the sender's monotonic clock in microseconds at the send
#: (the clock is the machine's, so any generator process can read it)
SENT_US = "$sent_us"
_STAMP = b"@t"
#: the pseudo-step that records how long stamped room messages took to reach each member
DELIVERY = "chat_delivery"


def sent_stamp(payload: bytes) -> float | None:
    """The send time (monotonic seconds) in a message whose text ends `@t<microseconds>`
    (`"... @t$sent_us"` in the scenario), found without decoding the message; None if none."""
    i = payload.rfind(_STAMP)
    if i < 0:
        return None
    j = i = i + 2
    n = len(payload)
    while j < n and 48 <= payload[j] <= 57:
        j += 1
    return int(payload[i:j]) / 1e6 if j > i else None
