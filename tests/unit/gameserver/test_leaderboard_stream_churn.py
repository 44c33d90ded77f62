"""Subscriber churn on the core stream: a mass unsubscribe is O(n), and the rotation of
own-rank checks forgets the gone and keeps the returning."""

from __future__ import annotations

import time

from rooms.leaderboards.board import Leaderboard, LeaderboardConfig, RoundSettled
from rooms.leaderboards.periods import PeriodConfig
from rooms.leaderboards.stream import LeaderboardStream

T0 = 1_796_083_200


def test_mass_unsubscribe_is_linear_and_the_rotation_heals() -> None:
    board = Leaderboard(LeaderboardConfig(id="b", top_n=3, period=PeriodConfig(kind="daily")), T0)
    stream = LeaderboardStream(board, rank_budget=100)
    users = [f"u{i}" for i in range(20_000)]
    for u in users:
        stream.subscribe(u)
    started = time.perf_counter()
    for u in users:
        stream.unsubscribe(u)
    assert time.perf_counter() - started < 0.5  # was O(n) per unsubscribe: seconds here
    for u in users[:3]:
        stream.subscribe(u)  # back before the rotation dropped them
    for n, u in enumerate(users[:3]):
        board.apply(RoundSettled(f"r{n}", u, u, "g", 1, 10 * (n + 1), T0 + 1))
    for _ in range(300):  # the stale entries go, at most `rank_budget` per tick
        stream.tick(T0 + 2)
    assert len(stream._rotation) == 3 and stream._rotating == set(users[:3])
    # the returning subscribers still get their own rank when others pass them
    board.apply(RoundSettled("r9", "x", "x", "g", 1, 1000, T0 + 3))
    mine = stream.tick(T0 + 4).mine
    assert sorted(m.user_id for m in mine) == sorted(users[:3])
    assert all(m.me is not None and m.me.position >= 2 for m in mine)


def test_round_ids_are_remembered_up_to_a_limit_then_the_oldest_are_forgotten() -> None:
    board = Leaderboard(LeaderboardConfig(id="b", period=PeriodConfig(kind="daily")), T0, seen_limit=100)
    for n in range(250):
        board.apply(RoundSettled(f"r{n}", "u", "u", "g", 1, 1, T0 + n))
    assert len(board._seen) == 100 and board.forgotten_until == T0 + 149
    assert board.apply(RoundSettled("r249", "u", "u", "g", 1, 1, T0 + 249)).value == "duplicate"
    got = board.index.get("u")
    assert got is not None and got[0] == 250
