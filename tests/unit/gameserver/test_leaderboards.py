"""The leaderboard service on a hub with an injected clock: subscribe, deltas, own rank,
idempotency, resets, tournaments paid exactly once (memory store), restore after restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings, strategies as st

from gameserver import auth
from gameserver.clock import ManualClock
from gameserver.config import (
    AuthSection,
    CasinoSection,
    CasinoZone,
    Config,
    LeaderboardBoard,
    LeaderboardsSection,
)
from gameserver.domain import MissionCompleted, RoundSettled, mission_event_id
from gameserver.hub import Hub
from gameserver.leaderboards import Leaderboards, prize_key
from gameserver.leaderboards.service import _event_enc
from persistence import Stores, open_stores
from protocol.codes import ErrorCode
from protocol.limits import FloodLimits
from rooms.config import RoomConfig, ZoneConfig
from rooms.leaderboards.board import Eligibility, Metric, TieBreak
from rooms.leaderboards.periods import PeriodConfig

from .fakes import SECRET, Client

DAY = 86_400
T0 = 1_796_083_200  # 2026-12-01 00:00 UTC
NO_FLOOD = FloodLimits(rate=1e9, burst=10**9)
HOUSE = "house:demo"


def lb_config(**boards: LeaderboardBoard) -> Config:
    return Config(
        auth=AuthSection(secret=SECRET),
        zones=[ZoneConfig(name="demo", guests=True, rooms=[RoomConfig("Lobby")], flood=NO_FLOOD)],
        casino=CasinoSection(zones={"demo": CasinoZone(games={"fruit_slot": "96.5"}, currency="FUN")}),
        leaderboards=LeaderboardsSection(zones={"demo": boards}, tick_interval=0.25),
    )


def daily(**kw: Any) -> LeaderboardBoard:
    kw.setdefault("period", PeriodConfig(kind="daily"))
    return LeaderboardBoard(**kw)


class Env:
    def __init__(self, hub: Hub, svc: Leaderboards, stores: Stores, clock: ManualClock) -> None:
        self.hub, self.svc, self.stores, self.clock = hub, svc, stores, clock
        self.n = 0

    def client(self, user: int) -> Client:
        c = Client(self.hub)
        tok = auth.mint(SECRET, user, "demo", name=f"P{user}", expires=int(self.clock.wall()) + 10 * DAY)
        assert c.send({"type": "login", "token": tok})["type"] == "ok"
        c.link.take()
        return c

    def round(
        self, user: int, win: int, *, stake: int = 10, game: str = "fruit_slot", rid: str = ""
    ) -> RoundSettled:
        self.n += 1
        return RoundSettled(
            event_id=rid or f"r{self.n}",
            zone="demo",
            at_ms=int(self.clock.wall() * 1000),
            user_id=user,
            name=f"P{user}",
            game=game,
            currency="FUN",
            stake=stake,
            win=win,
        )

    async def publish(self, event: RoundSettled | MissionCompleted) -> None:
        self.hub.events.publish(event)
        await asyncio.sleep(0)  # LocalEvents delivers on the next loop tick

    async def tick(self) -> None:
        self.svc.tick()
        while self.svc._fanout_scheduled:
            await asyncio.sleep(0)
        self.hub.flush()

    async def balance(self, user: int) -> int:
        wb = await self.stores.wallet.get_balance(f"demo:{user}", "FUN")
        return 0 if wb is None else wb.balance


async def serve(
    body: Callable[[Env], Awaitable[None]],
    config: Config,
    stores: Stores,
    clock: ManualClock,
    instance: str = "i1",
) -> None:
    """One owner's lifetime on `stores`: start, run `body`, drain."""
    hub = Hub(config, clock, call_soon=lambda fn: None)
    await stores.wallet.open_wallet(HOUSE, "FUN", allow_negative=True)
    svc = Leaderboards(hub, stores, config, instance=instance)
    hub.register(svc)
    await svc.start(tick=False)
    await asyncio.wait_for(body(Env(hub, svc, stores, clock)), 30)
    await svc.drain()


def run(body: Callable[[Env], Awaitable[None]], config: Config) -> None:
    async def go() -> None:
        stores = await open_stores("memory://")
        try:
            await serve(body, config, stores, ManualClock(T0 + 3600))
        finally:
            await stores.close()

    asyncio.run(go())


def events(c: Client, name: str) -> list[dict[str, Any]]:
    return [m["data"] for m in c.link.events(name)]


# -- subscribe, deltas, own rank ----------------------------------------------------------------


def test_subscribe_then_a_round_arrives_as_a_delta_and_an_own_rank():
    async def body(env: Env) -> None:
        a = env.client(1)
        r = a.send({"type": "leaderboard_subscribe", "board": "wins"})
        assert r["type"] == "ok", r
        snap = r["data"]
        assert snap["board_id"] == "wins" and snap["top"] == [] and snap["me"] is None
        assert snap["seq"] == 0 and snap["epoch"] == f"wins:{T0}:i1" and snap["window"] == [T0, T0 + DAY]
        await env.publish(env.round(1, 500))
        await env.publish(env.round(2, 900))
        await env.tick()
        msgs = a.link.take()
        deltas = [m["data"] for m in msgs if m["event"] == "leaderboard_delta"]
        ranks = [m["data"] for m in msgs if m["event"] == "leaderboard_rank"]
        assert len(deltas) == 1 and deltas[0]["seq"] == 1 and deltas[0]["left"] == []
        assert [(e["user_id"], e["score"], e["position"]) for e in deltas[0]["entered"]] == [
            ("2", 900, 1),
            ("1", 500, 2),
        ]
        assert ranks == [
            {
                "board_id": "wins",
                "epoch": snap["epoch"],
                "seq": 1,
                "me": {"position": 2, "rank": 2, "user_id": "1", "name": "P1", "score": 500},
            }
        ]
        await env.tick()  # nothing changed: nothing sent
        assert a.link.take() == []

    run(body, lb_config(wins=daily(top_n=3)))


def test_list_unsubscribe_and_errors():
    async def body(env: Env) -> None:
        a = env.client(1)
        r = a.send({"type": "leaderboard_list"})
        assert r["type"] == "ok"
        (d,) = r["data"]["boards"]
        assert d["board"] == "wins" and d["prizes"] == [300, 100] and d["currency"] == "FUN"
        assert d["window"] == [T0, T0 + DAY] and d["subscribed"] is False and d["joined"] is True
        assert a.send({"type": "leaderboard_subscribe", "board": "nope"})["code"] == ErrorCode.BOARD_NOT_FOUND
        assert a.send({"type": "leaderboard_join", "board": "wins"})["code"] == ErrorCode.JOIN_NOT_REQUIRED
        assert a.send({"type": "leaderboard_subscribe", "board": "wins"})["type"] == "ok"
        assert a.send({"type": "leaderboard_list"})["data"]["boards"][0]["subscribed"] is True
        assert a.send({"type": "leaderboard_unsubscribe", "board": "wins"})["type"] == "ok"
        await env.publish(env.round(1, 500))
        await env.tick()
        assert a.link.take() == []  # unsubscribed: no deltas

    run(body, lb_config(wins=daily(prizes=[300, 100])))


def test_duplicates_and_ineligible_rounds_change_nothing():
    async def body(env: Env) -> None:
        a = env.client(1)
        a.send({"type": "leaderboard_subscribe", "board": "wins"})
        first = env.round(1, 500)
        await env.publish(first)
        await env.tick()
        a.link.take()
        await env.publish(first)  # redelivered
        await env.publish(env.round(1, 9000, stake=5))  # below min_bet
        await env.publish(env.round(1, 9000, game="other"))  # not an eligible game
        await env.tick()
        assert a.link.take() == []
        assert env.svc.stats.duplicates == 1 and env.svc.stats.ineligible == 2
        snap = a.send({"type": "leaderboard_snapshot", "board": "wins"})["data"]["snapshot"]
        assert snap["me"]["score"] == 500

    run(body, lb_config(wins=daily(eligibility=Eligibility(games=["fruit_slot"], min_bet=10))))


def completed(env: Env, user: int, mission: str, points: int, period: str = "1") -> MissionCompleted:
    return MissionCompleted(
        event_id=mission_event_id(f"mission:{mission}:demo:{user}:{period}"),
        zone="demo",
        at_ms=int(env.clock.wall() * 1000),
        user_id=user,
        name=f"P{user}",
        mission=mission,
        points=points,
    )


def test_mission_points_boards_count_rewarded_missions_and_only_them():
    """`mission_points` boards add each rewarded instance's points once (a board's `games`
    names missions); rounds do not score them, and missions score no other board."""

    async def body(env: Env) -> None:
        a = env.client(1)
        await env.publish(completed(env, 1, "daily_spins", 30))
        await env.publish(completed(env, 2, "big_week", 50))
        await env.publish(completed(env, 1, "daily_spins", 30, period="2"))
        await env.publish(env.round(1, 700))
        await env.publish(completed(env, 1, "daily_spins", 30))  # redelivered
        await env.tick()

        def top(board: str) -> list[tuple[str, int]]:
            snap = a.send({"type": "leaderboard_snapshot", "board": board})["data"]["snapshot"]
            return [(e["user_id"], e["score"]) for e in snap["top"]]

        assert top("missions") == [("1", 60), ("2", 50)]
        assert top("daily_only") == [("1", 60)]
        assert top("wins") == [("1", 700)]
        # the redelivery on each mission board; big_week on the board of daily_spins only
        assert (env.svc.stats.duplicates, env.svc.stats.ineligible) == (2, 1)

    run(
        body,
        lb_config(
            missions=daily(metric=Metric.MISSION_POINTS),
            daily_only=daily(metric=Metric.MISSION_POINTS, eligibility=Eligibility(games=["daily_spins"])),
            wins=daily(),
        ),
    )


def test_a_mission_cast_from_another_worker_scores_on_the_owner() -> None:
    """The cross-worker hop (`lb.score`) carries mission events as it carries rounds."""

    async def body(env: Env) -> None:
        a = env.client(1)
        env.svc._on_score("0.1", _event_enc.encode(completed(env, 1, "daily_spins", 25)))
        env.svc._on_score("0.1", _event_enc.encode(env.round(1, 300)))
        await env.tick()
        snap = a.send({"type": "leaderboard_snapshot", "board": "missions"})["data"]["snapshot"]
        assert [(e["user_id"], e["score"]) for e in snap["top"]] == [("1", 25)]

    run(body, lb_config(missions=daily(metric=Metric.MISSION_POINTS)))


def test_a_mission_points_board_with_a_minimum_bet_is_refused() -> None:
    lb_config(m=daily(metric=Metric.MISSION_POINTS, eligibility=Eligibility(games=["x"]))).check()
    with pytest.raises(ValueError, match="demo.m: a mission_points board scores missions, not bets"):
        lb_config(m=daily(metric=Metric.MISSION_POINTS, eligibility=Eligibility(min_bet=10))).check()


def test_a_client_with_a_gap_recovers_the_missed_deltas_or_gets_a_snapshot():
    async def body(env: Env) -> None:
        a = env.client(1)
        snap = a.send({"type": "leaderboard_subscribe", "board": "wins"})["data"]
        for i in range(5):
            await env.publish(env.round(10 + i, 100 * (i + 1)))
            await env.tick()
        got = events(a, "leaderboard_delta")
        assert [d["seq"] for d in got] == [1, 2, 3, 4, 5]
        # the client lost deltas 3..5: it asks with the last one it applied
        r = a.send({"type": "leaderboard_snapshot", "board": "wins", "epoch": snap["epoch"], "seq": 2})[
            "data"
        ]
        assert r["snapshot"] is None and [d["seq"] for d in r["deltas"]] == [3, 4, 5]
        # an unknown epoch (e.g. a server restart): a fresh snapshot
        r = a.send({"type": "leaderboard_snapshot", "board": "wins", "epoch": "wins:1:zz", "seq": 2})["data"]
        assert r["deltas"] is None and r["snapshot"]["seq"] == 5 and len(r["snapshot"]["top"]) == 5

    run(body, lb_config(wins=daily(top_n=10)))


def test_a_session_that_ends_is_unsubscribed():
    async def body(env: Env) -> None:
        a = env.client(1)
        a.send({"type": "leaderboard_subscribe", "board": "wins"})
        b = env.svc.boards[("demo", "wins")]
        assert b.subscribers == {"1": 1}
        a.send({"type": "logout"})
        assert b.subscribers == {} and env.svc.subs == {}

    run(body, lb_config(wins=daily()))


# -- stream consistency (hypothesis) ----------------------------------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(st.just("round"), st.integers(1, 12), st.integers(0, 50)),
        st.tuples(st.just("dup"), st.integers(0, 40), st.just(0)),
        st.tuples(st.just("tick"), st.just(0), st.just(0)),
        st.tuples(st.just("time"), st.integers(1, 4000), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=40, deadline=None)
@given(ops)
def test_deltas_applied_to_the_snapshot_equal_the_true_top_n_at_every_tick(program):
    """A subscriber's view (snapshot + every pushed delta) equals a brute-force model of
    the top N after every tick, across duplicates and a daily reset."""

    async def body(env: Env) -> None:
        a = env.client(99)
        snap = a.send({"type": "leaderboard_subscribe", "board": "wins"})["data"]
        view = {r["user_id"]: r for r in snap["top"]}
        seq, epoch = snap["seq"], snap["epoch"]
        model: dict[str, tuple[int, int]] = {}  # user -> (score, reached at ms)
        window_end = T0 + DAY
        sent: list[RoundSettled] = []
        for op, x, y in program:
            if op == "round":
                ev = env.round(x, y)
                sent.append(ev)
                if ev.at_ms / 1000 >= window_end:  # a later day: the board starts over
                    model, window_end = {}, T0 + DAY * (1 + int((ev.at_ms / 1000 - T0) // DAY))
                if y > 0:
                    score, _ = model.get(str(x), (0, 0))
                    model[str(x)] = (score + y, ev.at_ms)
                elif str(x) not in model:
                    model[str(x)] = (0, ev.at_ms)
                await env.publish(ev)
            elif op == "dup" and sent:
                await env.publish(sent[x % len(sent)])  # already counted (or late): no effect
            elif op == "time":
                env.clock.advance(x * 30)
            else:
                if env.clock.wall() >= window_end:
                    model, window_end = {}, T0 + DAY * (1 + int((env.clock.wall() - T0) // DAY))
                await env.tick()
                for d in events(a, "leaderboard_delta"):
                    assert d["seq"] == seq + 1 and epoch in (d["epoch"], d["prev_epoch"])
                    for u in d["left"]:
                        view.pop(u, None)
                    for r in d["entered"] + d["moved"]:
                        view[r["user_id"]] = r
                    seq, epoch = d["seq"], d["epoch"]
                want = sorted(model.items(), key=lambda kv: (-kv[1][0], kv[1][1], kv[0]))[:5]
                got = sorted(view.values(), key=lambda r: r["position"])
                assert [(r["user_id"], r["score"]) for r in got] == [(u, s) for u, (s, _) in want]

    run(body, lb_config(wins=daily(top_n=5)))


# -- resets and tournaments ----------------------------------------------------------------------


def test_a_reset_archives_the_period_and_pays_the_prize_table_once():
    async def body(env: Env) -> None:
        a = env.client(1)
        a.send({"type": "leaderboard_subscribe", "board": "wins"})
        for user, win in [(1, 500), (2, 900), (3, 100), (4, 50)]:
            await env.publish(env.round(user, win))
        await env.tick()
        a.link.take()
        env.clock.advance(DAY)  # midnight passes
        await env.tick()
        deltas = events(a, "leaderboard_delta")
        assert len(deltas) == 1 and deltas[0]["prev_epoch"] == f"wins:{T0}:i1"
        assert deltas[0]["window"] == [T0 + DAY, T0 + 2 * DAY] and len(deltas[0]["left"]) == 4
        while env.svc.tasks:
            await asyncio.sleep(0.001)
        env.hub.flush()
        assert [await env.balance(u) for u in (1, 2, 3, 4)] == [200, 300, 50, 0]
        pushed = a.link.take()
        (res,) = [m["data"] for m in pushed if m["event"] == "tournament_result"]
        assert res == {
            "board_id": "wins",
            "period": T0,
            "window": [T0, T0 + DAY],
            "position": 2,
            "rank": 2,
            "score": 500,
            "prize": 200,
            "currency": "FUN",
        }
        (rew,) = [m["data"] for m in pushed if m["event"] == "reward_granted"]
        assert rew["amount"] == 200 and rew["key"] == prize_key("demo", "wins", T0, 2)
        # the reset runs again (e.g. a second owner or a retry): nothing is paid twice
        b = env.svc.boards[("demo", "wins")]
        await env.svc._settle(b, T0, [("1", "P1", 500)])
        await env.svc._settle(b, T0, None)
        assert [await env.balance(u) for u in (1, 2, 3, 4)] == [200, 300, 50, 0]
        assert await env.stores.wallet.ledger_totals() == {"FUN": 0}
        r = a.send({"type": "leaderboard_results", "board": "wins"})
        await asyncio.sleep(0.01)
        env.hub.flush()
        r = r or next(m for m in a.link.take() if m["type"] == "ok")
        assert [(s["user_id"], s["prize"]) for s in r["data"]["standings"]] == [
            ("2", 300),
            ("1", 200),
            ("3", 50),
            ("4", 0),
        ]

    run(body, lb_config(wins=daily(prizes=[300, 200, 50])))


def test_prizes_are_paid_once_across_restarts():
    """Owner 1 checkpoints the day's scores and dies before the reset; owner 2 starts the
    next day and pays from the store; owner 3 starts again and pays nothing."""
    cfg = lb_config(wins=daily(prizes=[1000, 400]))

    async def go() -> None:
        stores = await open_stores("memory://")
        clock = ManualClock(T0 + 3600)

        async def day_one(env: Env) -> None:
            for user, win in [(1, 500), (2, 900), (3, 100)]:
                await env.publish(env.round(user, win))
            await env.svc.flush()  # the tick's checkpoint; then the process dies

        async def later(env: Env) -> None:
            pass

        for body, at in [(day_one, T0 + 3600), (later, T0 + DAY + 60), (later, T0 + DAY + 120)]:
            clock.now = at
            await serve(body, cfg, stores, clock)
        balances = []
        for u in (1, 2, 3):
            wb = await stores.wallet.get_balance(f"demo:{u}", "FUN")
            balances.append(0 if wb is None else wb.balance)
        assert balances == [400, 1000, 0]
        assert await stores.wallet.ledger_totals() == {"FUN": 0}
        await stores.close()

    asyncio.run(go())


def test_split_ties_share_the_prizes_of_their_positions():
    async def body(env: Env) -> None:
        for user, win in [(1, 500), (2, 500), (3, 100)]:
            await env.publish(env.round(user, win))
        env.clock.advance(DAY)
        await env.tick()
        while env.svc.tasks:
            await asyncio.sleep(0.001)
        assert [await env.balance(u) for u in (1, 2, 3)] == [501, 500, 10]

    run(body, lb_config(wins=daily(prizes=[601, 400, 10], tie_break=TieBreak.SPLIT)))


def test_a_tournament_that_requires_joining_counts_only_joined_players():
    async def body(env: Env) -> None:
        a, b = env.client(1), env.client(2)
        r = a.send({"type": "leaderboard_join", "board": "cup"})
        for _ in range(100):
            if r is not None:
                break
            await asyncio.sleep(0.001)
            env.hub.flush()
            r = next((m for m in a.link.take() if m["type"] == "ok"), None)
        assert r is not None and r["data"] == {"board": "cup", "period": T0, "joined": True}
        await env.publish(env.round(1, 100))
        await env.publish(env.round(2, 900))  # not joined: not counted
        await env.tick()
        snap = b.send({"type": "leaderboard_subscribe", "board": "cup"})["data"]
        assert [r["user_id"] for r in snap["top"]] == ["1"] and snap["me"] is None
        assert env.svc.stats.not_joined == 1
        assert b.send({"type": "leaderboard_list"})["data"]["boards"][0]["joined"] is False

    run(body, lb_config(cup=daily(join="required", prizes=[10])))


def test_a_tournament_runs_between_its_start_and_end_then_settles():
    async def body(env: Env) -> None:
        a = env.client(1)
        await env.publish(env.round(1, 100))  # before the start: not counted
        env.clock.advance(3600)
        await env.publish(env.round(1, 200))
        await env.publish(env.round(2, 50))
        env.clock.advance(3600)  # past the end
        await env.publish(env.round(2, 5000))  # after the end: not counted
        await env.tick()
        while env.svc.tasks:
            await asyncio.sleep(0.001)
        assert [await env.balance(u) for u in (1, 2)] == [70, 30]
        env.hub.flush()
        assert events(a, "tournament_result")[0]["score"] == 200
        assert a.send({"type": "leaderboard_join", "board": "cup"})["code"] == ErrorCode.JOIN_NOT_REQUIRED

    start = T0 + 2 * 3600
    cup = LeaderboardBoard(prizes=[70, 30], starts_at=start, ends_at=start + 3600)
    run(body, lb_config(cup=cup))


def test_scores_are_restored_after_a_restart():
    cfg = lb_config(wins=daily(metric=Metric.SPINS))

    async def go() -> None:
        stores = await open_stores("memory://")
        clock = ManualClock(T0 + 3600)

        async def first(env: Env) -> None:
            for user in (1, 1, 2):
                await env.publish(env.round(user, 0))
            await env.tick()
            await env.svc.flush()

        async def second(env: Env) -> None:
            a = env.client(3)
            snap = a.send({"type": "leaderboard_subscribe", "board": "wins"})["data"]
            assert [(r["user_id"], r["score"], r["name"]) for r in snap["top"]] == [
                ("1", 2, "P1"),
                ("2", 1, "P2"),
            ]
            assert snap["epoch"] == f"wins:{T0}:i2"  # a new instance: clients resubscribe

        await serve(first, cfg, stores, clock)
        await serve(second, cfg, stores, clock, instance="i2")
        await stores.close()

    asyncio.run(go())


def test_the_config_is_checked():
    import pytest

    base = lb_config(wins=daily())
    for bad in (
        {"leaderboards": {"zones": {"nowhere": {"b": {}}}}},
        {"leaderboards": {"zones": {"demo": {"b": {"top_n": 0}}}}},
        {"leaderboards": {"zones": {"demo": {"b": {"period": {"kind": "cron", "cron": "* *"}}}}}},
        {"leaderboards": {"zones": {"demo": {"b": {"prizes": [-1]}}}}},
        {"leaderboards": {"zones": {"demo": {"b": {"metric": "biggest_win"}}}}},  # needs operator best
        {"leaderboards": {"zones": {"demo": {"b": {"ends_at": 5, "starts_at": 10}}}}},
        {"events": {"url": "http://x"}},
    ):
        raw = msgspec.to_builtins(base)
        raw.update(bad)
        with pytest.raises(ValueError):
            msgspec.convert(raw, Config).check()


def test_ownership_routes_by_the_ring():
    from gameserver.leaderboards import Ownership
    from gameserver.ring import HashRing, leaderboard_key, user_key

    hub = Hub(lb_config(wins=daily()), ManualClock(T0), call_soon=lambda fn: None)
    alone = Ownership(hub)
    assert alone.alone and alone.owns_board("demo", "wins")
    ring = HashRing(["w0", "w1", "w2"])
    mine = ring.owner(leaderboard_key("demo", "wins"))
    for me in ring.members:
        o = Ownership(hub, ring, me)
        assert not o.alone and o.owns_board("demo", "wins") == (me == mine)
    # an event for a user homed on another worker goes to the forwarder
    other = next(m for m in ring.members if m != ring.owner(user_key("demo", 5)))
    o = Ownership(hub, ring, other)
    sent: list[tuple[str, str, int]] = []
    from protocol.events import OutEvent

    assert o.to_user("demo", 5, OutEvent("x")) is False and o.unrouted_events == 1
    o.forward = lambda member, zone, uid, ev: sent.append((member, zone, uid))
    assert o.to_user("demo", 5, OutEvent("x")) is True
    assert sent == [(ring.owner(user_key("demo", 5)), "demo", 5)]


def test_an_end_that_is_also_a_reset_settles_once():
    async def body(env: Env) -> None:
        a = env.client(1)
        await env.publish(env.round(1, 100))
        env.clock.advance(DAY)  # the window ends exactly at ends_at
        await env.tick()
        while env.svc.tasks:
            await asyncio.sleep(0.001)
        env.hub.flush()
        assert len(events(a, "tournament_result")) == 1
        assert env.svc.stats.settlements == 1 and await env.balance(1) == 5

    run(body, lb_config(cup=daily(prizes=[5], ends_at=T0 + DAY)))


def test_a_board_still_sending_skips_its_tick_and_the_next_delta_covers_both():
    """Overload: while a delta is still being fanned out the board does not tick, so the
    queue stays bounded and clients get one later delta with no gap in `seq`."""

    async def body(env: Env) -> None:
        clients = [env.client(u) for u in (1, 2, 3)]
        for c in clients:
            c.send({"type": "leaderboard_subscribe", "board": "wins"})
        await env.publish(env.round(1, 100))
        env.svc.tick()  # a delta for 3 subscribers, one push per loop iteration
        b = env.svc.boards[("demo", "wins")]
        assert b.sending == 1
        await env.publish(env.round(2, 200))
        env.svc.tick()  # still sending: skipped
        assert env.svc.stats.skipped_ticks == 1
        await env.tick()  # the first delta finished; this tick sends the second
        await env.tick()
        for c in clients:
            deltas = events(c, "leaderboard_delta")
            assert [d["seq"] for d in deltas] == [1, 2]
            assert [r["user_id"] for r in deltas[1]["entered"]] == ["2"]

    cfg = lb_config(wins=daily())
    cfg = msgspec.structs.replace(cfg, leaderboards=msgspec.structs.replace(cfg.leaderboards, fanout_slice=1))
    run(body, cfg)


def test_joining_is_stored_and_survives_a_restart():
    cfg = lb_config(cup=daily(join="required", prizes=[10]))

    async def go() -> None:
        stores = await open_stores("memory://")
        clock = ManualClock(T0 + 3600)

        async def first(env: Env) -> None:
            a = env.client(1)
            a.send({"type": "leaderboard_join", "board": "cup"})
            while not env.svc.boards[("demo", "cup")].joined:
                await asyncio.sleep(0.001)

        async def second(env: Env) -> None:
            assert env.svc.boards[("demo", "cup")].joined == {"1"}
            await env.publish(env.round(1, 100))
            await env.publish(env.round(2, 100))  # never joined
            await env.tick()
            b = env.svc.boards[("demo", "cup")].board
            assert b.standing("1") is not None and b.standing("2") is None

        await serve(first, cfg, stores, clock)
        await serve(second, cfg, stores, clock, instance="i2")
        await stores.close()

    asyncio.run(go())
