"""The top-N stream: snapshot + deltas equal the true top N at every tick; gaps; resets; own rank."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from rooms.leaderboards.board import Leaderboard, LeaderboardConfig, Operator, RoundSettled, TieBreak
from rooms.leaderboards.periods import PeriodConfig
from rooms.leaderboards.stream import ClientView, LeaderboardStream

DAY = 86_400
T0 = 1_796_083_200  # 2026-12-01 00:00 UTC
USERS = [f"u{i:02}" for i in range(25)]


def make(top_n=5, rank_budget=1000, **cfg) -> tuple[Leaderboard, LeaderboardStream]:
    b = Leaderboard(
        LeaderboardConfig(id="z1:wins", top_n=top_n, period=PeriodConfig(kind="daily"), **cfg), T0
    )
    return b, LeaderboardStream(b, instance="i1", history=8, rank_budget=rank_budget)


class Feed:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, b: Leaderboard, user: str, win: int, at: float) -> None:
        self.n += 1
        b.apply(RoundSettled(f"r{self.n}", user, user.upper(), "fruit", 100, win, at))


def test_subscribe_gives_top_me_and_neighbours():
    b, s = make(top_n=3, neighbours=1)
    feed = Feed()
    for i, u in enumerate(USERS[:6]):
        feed(b, u, (i + 1) * 10, T0 + 1)
    s.tick(T0 + 2)
    snap = s.subscribe("u01")
    assert [r.user_id for r in snap.top] == ["u05", "u04", "u03"]
    assert snap.me is not None and snap.me.rank == 5
    assert [r.user_id for r in snap.neighbours] == ["u02", "u01", "u00"]
    assert snap.epoch == f"z1:wins:{T0}:i1" and snap.seq == 1 and snap.window == (T0, T0 + DAY)


def test_quiet_tick_sends_nothing_and_keeps_seq():
    b, s = make(top_n=1)
    feed = Feed()
    feed(b, "u00", 50, T0 + 1)
    assert s.tick(T0 + 2).delta is not None
    assert s.tick(T0 + 3).delta is None and s.seq == 1  # nothing happened
    feed(b, "u01", 10, T0 + 3)  # changes the board but not the top 1
    assert s.tick(T0 + 4).delta is None and s.seq == 1


def test_gap_is_detected_and_recovered_from_history_or_snapshot():
    b, s = make()
    feed = Feed()
    view = ClientView(s.snapshot())
    deltas = []
    for i in range(12):
        feed(b, USERS[i], 10 + i, T0 + i)
        d = s.tick(T0 + i).delta
        assert d is not None
        deltas.append(d)
    assert view.apply(deltas[0])
    assert not view.apply(deltas[2])  # skipped seq 2: a gap
    assert s.recover(view.epoch, view.seq) is None  # history holds 8: seq 2 is gone
    missed = s.recover(deltas[5].epoch, deltas[5].seq)
    assert missed is not None and [d.seq for d in missed] == [7, 8, 9, 10, 11, 12]
    assert s.recover(s.epoch, s.seq) == [] and s.recover("other:0:i0", 5) is None
    view = ClientView(s.snapshot())  # the fallback: a fresh snapshot
    assert view.top() == b.top()


def test_reset_changes_epoch_and_the_view_follows_without_a_snapshot():
    b, s = make()
    feed = Feed()
    feed(b, "u00", 10, T0 + 1)
    view = ClientView(s.snapshot())
    assert view.apply(s.tick(T0 + 1).delta)
    first_epoch = s.epoch
    tick = s.tick(T0 + DAY)  # the clock crosses midnight
    assert tick.delta is not None and tick.delta.prev_epoch == first_epoch
    assert tick.delta.epoch == f"z1:wins:{T0 + DAY}:i1" and tick.delta.left == ["u00"]
    assert tick.delta.window == (T0 + DAY, T0 + 2 * DAY)
    assert view.apply(tick.delta) and view.top() == [] and view.epoch == s.epoch


def test_own_rank_changes_are_sent_within_the_budget():
    b, s = make(top_n=2, rank_budget=1)
    feed = Feed()
    for i, u in enumerate(["a", "b", "c"]):
        feed(b, u, 10 * (i + 1), T0)
    s.tick(T0)
    for u in ["a", "b", "c"]:
        s.subscribe(u)
    feed(b, "x", 100, T0 + 1)  # pushes everyone down one rank, but x is not subscribed
    seen: dict[str, int] = {}
    for t in range(3):  # budget 1: a full round-robin takes 3 ticks
        for m in s.tick(T0 + 2 + t).mine:
            assert m.me is not None
            seen[m.user_id] = m.me.rank
    assert seen == {"c": 2, "b": 3, "a": 4}
    feed(b, "a", 1000, T0 + 9)  # a's own score changed: it goes first
    mine = s.tick(T0 + 10).mine
    assert [(m.user_id, m.me.rank) for m in mine if m.me] == [("a", 1)]
    s.unsubscribe("a")
    s.unsubscribe("nobody")
    assert "a" not in {m.user_id for t in range(4) for m in s.tick(T0 + 11 + t).mine}


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("event"), st.sampled_from(USERS), st.integers(0, 60)),
        st.tuples(st.just("tick"), st.integers(0, 3 * 3600), st.booleans()),
    ),
    max_size=80,
)


@settings(max_examples=150)
@given(OPS, st.sampled_from(list(Operator)), st.sampled_from(list(TieBreak)), st.integers(1, 6))
def test_stream_consistency_deltas_applied_to_snapshot_equal_true_top(ops, op, tie, top_n):
    b, s = make(top_n=top_n, operator=op, tie_break=tie)
    feed = Feed()
    now = float(T0)
    views = [ClientView(s.subscribe("u00"))]
    for kind, a, c in ops:
        if kind == "event":
            feed(b, a, c, now)
        else:
            now += a * 8  # up to ~1 day: crosses resets
            tick = s.tick(now)
            if tick.delta is not None:
                for v in views:
                    assert v.apply(tick.delta)
            for v in views:
                assert v.top() == b.top() and (v.epoch, v.seq) == (s.epoch, s.seq)
            me = b.standing("u00")
            sent = [m for m in tick.mine if m.user_id == "u00"]
            assert not sent or sent[-1].me == me
            if c:  # a client joins mid-stream
                views.append(ClientView(s.snapshot("u01")))
