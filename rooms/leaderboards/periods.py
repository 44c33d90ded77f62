"""Leaderboard periods: which window ``[start, end)`` a moment falls in, and when the next reset is.

Every schedule is a set of local wall-clock reset times in a time zone (the time-zone database
via ``zoneinfo``), so daily, weekly, monthly and cron-like schedules are one implementation:

* ``daily``: every day at ``hour:minute`` local time;
* ``weekly``: every ``weekday`` (0 = Monday) at ``hour:minute``;
* ``monthly``: the 1st of every month at ``hour:minute``;
* ``cron``: five fields ``minute hour day-of-month month day-of-week`` with ``*``, numbers,
  lists ``a,b``, ranges ``a-b`` and steps ``*/n`` / ``a-b/n``; day-of-week 0 or 7 is Sunday.
  When both day fields are restricted a day matches either (as in cron);
* ``all_time``: one window that never ends.

DST: a reset at a local time that does not exist (the spring-forward gap) happens at the same
wall time read with the offset from before the change (02:30 in a gap from 02:00 to 03:00 fires
at 03:30 new time); a local time that exists twice (fall back) fires once, at the first
occurrence. Windows therefore stay contiguous, ordered and non-empty.

All times are epoch seconds (``now`` is injected); bounds are whole seconds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from msgspec import Struct

#: The window of an ``all_time`` board.
ALL_TIME = (0, 2**62)
#: How far a cron schedule is searched for its next or previous reset (covers Feb 29).
SEARCH_DAYS = 8 * 366


class PeriodConfig(Struct, frozen=True, forbid_unknown_fields=True):
    kind: Literal["all_time", "daily", "weekly", "monthly", "cron"] = "all_time"
    timezone: str = "UTC"
    hour: int = 0
    minute: int = 0
    weekday: int = 0  # 0 = Monday (weekly only)
    cron: str = ""  # "minute hour day-of-month month day-of-week" (cron only)


def _field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            first, last = int(a), int(b)
        else:
            first = last = int(body)
            if step_text:
                last = high
        if step < 1 or not low <= first <= last <= high:
            raise ValueError(f"bad cron field {text!r} (allowed {low}-{high})")
        values.update(range(first, last + 1, step))
    return frozenset(values)


class Period:
    """A compiled schedule. ``window(now)`` and ``next_reset(now)`` are pure functions of ``now``."""

    __slots__ = ("config", "_tz", "_minutes", "_hours", "_doms", "_months", "_dows", "_dom_star", "_dow_star")

    def __init__(self, config: PeriodConfig) -> None:
        self.config = config
        self._tz = ZoneInfo(config.timezone)
        c = config
        if c.kind == "cron":
            fields = c.cron.split()
            if len(fields) != 5:
                raise ValueError(f"cron needs 5 fields, got {c.cron!r}")
            minute, hour, dom, month, dow = fields
        elif c.kind == "all_time":
            minute, hour, dom, month, dow = "0", "0", "*", "*", "*"
        else:
            if not (0 <= c.hour <= 23 and 0 <= c.minute <= 59 and 0 <= c.weekday <= 6):
                raise ValueError("hour, minute or weekday out of range")
            minute, hour, month = str(c.minute), str(c.hour), "*"
            dom = "1" if c.kind == "monthly" else "*"
            dow = str((c.weekday + 1) % 7) if c.kind == "weekly" else "*"
        self._minutes = sorted(_field(minute, 0, 59))
        self._hours = sorted(_field(hour, 0, 23))
        self._doms = _field(dom, 1, 31)
        self._months = _field(month, 1, 12)
        # cron: 0 and 7 are Sunday; Python: Monday is 0.
        self._dows = frozenset((d - 1) % 7 for d in _field(dow, 0, 7))
        self._dom_star = dom.startswith("*")
        self._dow_star = dow.startswith("*")

    def _day_matches(self, day: date) -> bool:
        if day.month not in self._months:
            return False
        dom_ok = day.day in self._doms
        dow_ok = day.weekday() in self._dows
        if self._dom_star or self._dow_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    @lru_cache(maxsize=64)  # noqa: B019 - a few days per board, shared by every query
    def _fires(self, day: date) -> tuple[int, ...]:
        if not self._day_matches(day):
            return ()
        out = []
        for h in self._hours:
            for m in self._minutes:
                local = datetime(day.year, day.month, day.day, h, m, tzinfo=self._tz)
                out.append(int(local.timestamp()))
        return tuple(sorted(set(out)))

    def _local_day(self, now: float) -> date:
        return datetime.fromtimestamp(now, UTC).astimezone(self._tz).date()

    def next_reset(self, now: float) -> int:
        """The first reset strictly after ``now``."""
        if self.config.kind == "all_time":
            return ALL_TIME[1]
        day = self._local_day(now) - timedelta(days=1)
        for _ in range(SEARCH_DAYS):
            for fire in self._fires(day):
                if fire > now:
                    return fire
            day += timedelta(days=1)
        raise ValueError(f"schedule {self.config.cron!r} never fires")

    def last_reset(self, now: float) -> int:
        """The latest reset at or before ``now``."""
        if self.config.kind == "all_time":
            return ALL_TIME[0]
        day = self._local_day(now) + timedelta(days=1)
        for _ in range(SEARCH_DAYS):
            for fire in reversed(self._fires(day)):
                if fire <= now:
                    return fire
            day -= timedelta(days=1)
        raise ValueError(f"schedule {self.config.cron!r} never fires")

    def window(self, now: float) -> tuple[int, int]:
        """``(start, end)`` of the window holding ``now``: ``start <= now < end``."""
        return self.last_reset(now), self.next_reset(now)
