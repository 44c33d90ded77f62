"""Boards: operators, eligibility, windows and resets by settlement time, idempotency, tie-breaks."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from rooms.leaderboards.board import (
    Eligibility,
    Leaderboard,
    LeaderboardConfig,
    Metric,
    Operator,
    Outcome,
    RoundSettled,
    TieBreak,
    prize_shares,
)
from rooms.leaderboards.periods import PeriodConfig

DAY = 86_400
T0 = 1_796_083_200  # 2026-12-01 00:00 UTC
DAILY = PeriodConfig(kind="daily")


def ev(
    rid: str, user: str, win: int, at: float = T0 + 10, bet: int = 100, game: str = "fruit", points: int = 0
):
    return RoundSettled(rid, user, user.upper(), game, bet, win, at, points)


def board(**cfg) -> Leaderboard:
    return Leaderboard(LeaderboardConfig(id="b", **cfg), now=T0)


def scores(b: Leaderboard) -> list[tuple[str, int]]:
    return [(s.user_id, s.score) for s in b.top(100)]


@pytest.mark.parametrize(
    ("metric", "op", "expected"),
    [
        (Metric.TOTAL_WIN, Operator.INCR, 80),
        (Metric.BIGGEST_WIN, Operator.BEST, 50),
        (Metric.TOTAL_WIN, Operator.SET, 30),
        (Metric.TOTAL_WIN, Operator.DECR, -80),
        (Metric.SPINS, Operator.INCR, 3),
        (Metric.MISSION_POINTS, Operator.INCR, 21),
    ],
)
def test_operators_and_metrics(metric, op, expected):
    b = board(metric=metric, operator=op)
    for i, win in enumerate([0, 50, 30]):
        b.apply(ev(f"r{i}", "ann", win, at=T0 + i, points=7))
    assert scores(b) == [("ann", expected)]


def test_best_keeps_time_of_first_achievement_and_reports_unchanged():
    b = board(metric=Metric.BIGGEST_WIN, operator=Operator.BEST)
    assert b.apply(ev("r1", "ann", 50, at=T0 + 1)) is Outcome.APPLIED
    assert b.apply(ev("r2", "bob", 50, at=T0 + 2)) is Outcome.APPLIED
    assert b.apply(ev("r3", "ann", 50, at=T0 + 3)) is Outcome.UNCHANGED
    assert b.apply(ev("r4", "ann", 10, at=T0 + 4)) is Outcome.UNCHANGED
    assert [s.user_id for s in b.top()] == ["ann", "bob"]  # ann reached 50 first


def test_duplicate_round_ids_change_nothing():
    b = board()
    assert b.apply(ev("r1", "ann", 50)) is Outcome.APPLIED
    version = b.version
    assert b.apply(ev("r1", "ann", 50)) is Outcome.DUPLICATE
    assert b.apply(ev("r1", "bob", 999)) is Outcome.DUPLICATE  # the key is the round id
    assert scores(b) == [("ann", 50)] and b.version == version


def test_eligibility_games_and_min_bet():
    b = board(eligibility=Eligibility(games=["fruit"], min_bet=100))
    assert b.apply(ev("r1", "ann", 50, game="poker")) is Outcome.INELIGIBLE
    assert b.apply(ev("r2", "ann", 50, bet=99)) is Outcome.INELIGIBLE
    assert b.apply(ev("r3", "ann", 50)) is Outcome.APPLIED
    assert scores(b) == [("ann", 50)]


def test_window_by_settlement_time_and_reset_as_new_key():
    b = board(period=DAILY)
    assert b.key == ("b", T0)
    assert b.apply(ev("r0", "ann", 5, at=T0 - 1)) is Outcome.LATE  # settled yesterday
    b.apply(ev("r1", "ann", 50, at=T0 + DAY - 1))
    assert not b.roll(T0 + DAY - 1)
    assert b.roll(T0 + DAY)  # injected clock crosses midnight
    assert b.key == ("b", T0 + DAY) and scores(b) == []
    assert (
        b.previous is not None
        and b.previous[0] == ("b", T0)
        and b.previous[1].get("ann") == (50, (T0 + DAY - 1) * 1000)
    )
    assert b.apply(ev("r1", "ann", 50, at=T0 + DAY + 5)) is Outcome.APPLIED  # ids are per window
    # an event settled in a later window rolls the board first
    assert b.apply(ev("r9", "bob", 7, at=T0 + 3 * DAY)) is Outcome.APPLIED
    assert b.key == ("b", T0 + 3 * DAY) and scores(b) == [("bob", 7)]


def test_split_three_way_tie_across_a_prize_boundary():
    b = board(tie_break=TieBreak.SPLIT)
    for i, (user, win) in enumerate([("a", 100), ("b", 80), ("c", 80), ("d", 80), ("e", 10)]):
        b.apply(ev(f"r{i}", user, win, at=T0 + 10 - i))
    top = b.top()
    assert [(s.user_id, s.position, s.rank) for s in top] == [
        ("a", 1, 1),
        ("b", 2, 2),
        ("c", 3, 2),
        ("d", 4, 2),
        ("e", 5, 5),
    ]
    standing = b.standing("d")
    assert standing is not None and standing.rank == 2
    # prizes for ranks 1..3: the tie occupies 2, 3 and 4, so it shares 2nd + 3rd (+ nothing for 4th)
    assert prize_shares(top, [500, 301, 100]) == {"a": 500, "b": 134, "c": 134, "d": 133}


def test_earliest_ties_rank_distinct_and_prizes_follow_rank():
    b = board()
    b.apply(ev("r1", "late", 80, at=T0 + 9))
    b.apply(ev("r2", "early", 80, at=T0 + 1))
    top = b.top()
    assert [(s.user_id, s.rank) for s in top] == [("early", 1), ("late", 2)]
    assert prize_shares(top, [10]) == {"early": 10}
    assert [s.user_id for s in b.around("late")] == ["early", "late"]


def test_config_checks():
    with pytest.raises(ValueError):
        board(top_n=0)


EVENTS = st.lists(
    st.builds(
        ev,
        rid=st.sampled_from([f"r{i}" for i in range(30)]),
        user=st.sampled_from(["ann", "bob", "cid", "dee"]),
        win=st.integers(0, 100),
        at=st.integers(T0 - 100, T0 + 2 * DAY).map(float),
    ),
    max_size=40,
)


@given(EVENTS, st.data(), st.sampled_from(list(Operator)), st.sampled_from(list(TieBreak)))
def test_replaying_any_already_seen_events_changes_nothing(events, data, op, tie):
    b = Leaderboard(LeaderboardConfig(id="b", operator=op, tie_break=tie, period=DAILY), now=T0)
    events.sort(key=lambda e: e.settled_at)
    for e in events:
        b.apply(e)
    before, version = b.top(100), b.version
    in_window = [e for e in events if b.start <= e.settled_at < b.end]
    replay = data.draw(st.lists(st.sampled_from(in_window), max_size=20)) if in_window else []
    for e in replay:
        assert b.apply(e) is Outcome.DUPLICATE
    assert b.top(100) == before and b.version == version
