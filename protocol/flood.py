"""The flood filter: a token bucket per session, warning first, then disconnect."""

from __future__ import annotations

from enum import IntEnum

from .limits import FloodLimits


class Verdict(IntEnum):
    ALLOW = 0
    WARN = 1  # drop this message and tell the client
    DISCONNECT = 2  # too many warnings


ALLOW, WARN, DISCONNECT = Verdict.ALLOW, Verdict.WARN, Verdict.DISCONNECT


class FloodFilter:
    """Counts messages against `limits.rate`/s with a burst allowance."""

    __slots__ = ("limits", "_tokens", "_last", "warnings")

    def __init__(self, limits: FloodLimits, now: float) -> None:
        self.limits = limits
        self._tokens = float(limits.burst)
        self._last = now
        self.warnings = 0

    def check(self, now: float) -> Verdict:
        """Account for one incoming message at time `now`."""
        limits = self.limits
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(float(limits.burst), self._tokens + elapsed * limits.rate)
            self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return ALLOW
        self.warnings += 1
        return DISCONNECT if self.warnings > limits.max_warnings else WARN
