"""Reset schedules driven by an injected clock, across DST changes and week boundaries."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, strategies as st

from rooms.leaderboards.periods import ALL_TIME, Period, PeriodConfig

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600


def ts(tz: ZoneInfo, *args: int) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp())


def test_daily_midnight_berlin_spring_forward_day_is_23_hours():
    p = Period(PeriodConfig(kind="daily", timezone="Europe/Berlin"))
    start, end = p.window(ts(BERLIN, 2026, 3, 29, 12, 0))
    assert start == ts(BERLIN, 2026, 3, 29, 0, 0)
    assert end == ts(BERLIN, 2026, 3, 30, 0, 0)
    assert end - start == 23 * HOUR


def test_daily_midnight_berlin_fall_back_day_is_25_hours():
    p = Period(PeriodConfig(kind="daily", timezone="Europe/Berlin"))
    start, end = p.window(ts(BERLIN, 2026, 10, 25, 2, 30))
    assert end - start == 25 * HOUR
    assert p.next_reset(start - 1) == start  # the reset itself belongs to the new window
    assert p.window(start) == (start, end)


def test_reset_inside_the_spring_gap_fires_once_at_the_shifted_time():
    p = Period(PeriodConfig(kind="cron", timezone="Europe/Berlin", cron="30 2 * * *"))
    before = ts(BERLIN, 2026, 3, 29, 1, 0)
    fire = p.next_reset(before)
    assert datetime.fromtimestamp(fire, BERLIN).strftime("%H:%M %Z") == "03:30 CEST"
    assert p.next_reset(fire) == ts(BERLIN, 2026, 3, 30, 2, 30)


def test_reset_in_the_repeated_fall_hour_fires_once():
    p = Period(PeriodConfig(kind="cron", timezone="Europe/Berlin", cron="30 2 * * *"))
    fire = p.next_reset(ts(BERLIN, 2026, 10, 25, 0, 0))
    assert datetime.fromtimestamp(fire, BERLIN).strftime("%H:%M %Z") == "02:30 CEST"
    assert p.next_reset(fire) == ts(BERLIN, 2026, 10, 26, 2, 30)


def test_weekly_monday_new_york_across_the_week_boundary_and_dst():
    p = Period(PeriodConfig(kind="weekly", timezone="America/New_York", weekday=0, hour=6))
    sunday_night = ts(NEW_YORK, 2026, 3, 8, 23, 59)  # DST began on Sunday 8 March 2026
    start, end = p.window(sunday_night)
    assert start == ts(NEW_YORK, 2026, 3, 2, 6, 0)
    assert end == ts(NEW_YORK, 2026, 3, 9, 6, 0)
    assert end - start == 7 * 24 * HOUR - HOUR
    assert p.window(end) == (end, ts(NEW_YORK, 2026, 3, 16, 6, 0))
    assert p.window(end - 1) == (start, end)


def test_monthly_and_cron_lists_ranges_steps():
    p = Period(PeriodConfig(kind="monthly", timezone="UTC", hour=12))
    assert p.window(ts(ZoneInfo("UTC"), 2026, 2, 15)) == (
        ts(ZoneInfo("UTC"), 2026, 2, 1, 12),
        ts(ZoneInfo("UTC"), 2026, 3, 1, 12),
    )
    every6h = Period(PeriodConfig(kind="cron", cron="0 */6 * * 1-5"))
    friday = ts(ZoneInfo("UTC"), 2026, 12, 4, 19)
    assert every6h.window(friday) == (
        ts(ZoneInfo("UTC"), 2026, 12, 4, 18),
        ts(ZoneInfo("UTC"), 2026, 12, 7, 0),
    )
    leap = Period(PeriodConfig(kind="cron", cron="0 0 29 2 *"))
    assert leap.next_reset(ts(ZoneInfo("UTC"), 2026, 1, 1)) == ts(ZoneInfo("UTC"), 2028, 2, 29)


def test_all_time_never_resets():
    p = Period(PeriodConfig())
    assert p.window(1_800_000_000) == ALL_TIME


@pytest.mark.parametrize("cron", ["0 0 * *", "61 0 * * *", "0 0 30 2 *", "*/0 * * * *"])
def test_bad_cron_is_rejected(cron):
    with pytest.raises(ValueError):
        Period(PeriodConfig(kind="cron", cron=cron)).next_reset(0)


CONFIGS = [
    PeriodConfig(kind="daily", timezone="Europe/Berlin"),
    PeriodConfig(kind="daily", timezone="Australia/Lord_Howe", hour=2, minute=15),  # 30-minute DST
    PeriodConfig(kind="weekly", timezone="America/New_York", weekday=6, hour=1, minute=30),
    PeriodConfig(kind="monthly", timezone="Asia/Kolkata"),
    PeriodConfig(kind="cron", timezone="Europe/London", cron="0,30 1-2 * * *"),
]


@given(st.sampled_from(CONFIGS), st.integers(1_700_000_000, 1_900_000_000))
def test_windows_hold_now_and_tile_the_timeline(config, now):
    p = Period(config)
    start, end = p.window(now)
    assert start <= now < end
    assert p.next_reset(now) == end
    assert p.window(end)[0] == end  # contiguous: the next window starts where this one ends
    assert p.window(start - 1)[1] == start
