"""Leaderboards across workers: two hubs in a ring on one loop thread, a real Unix bus, one
SQLite file (the store every worker of a node shares), real WebSocket clients.

Each board lives on the worker its key hashes to; a player connects to its home worker.
The scenarios cross workers on purpose: rounds settled on one worker score on a board owned
by the other (`lb.score`), requests for a remote board are bus calls to its owner
(`lb.req`, `lb.list`), its deltas come back once per member (`lb.push`), a session's end
and a member's restart clean up the owner's subscribers (`lb.gone`, `lb.hello`), a ring
change moves a board with its standings (`lb.handoff`). The last test runs a real
`--workers 2` cluster through a rolling restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import websockets

from gameserver.casino import account_id
from gameserver.config import Config, EventsSection, LeaderboardBoard, LeaderboardsSection
from gameserver.hub import Hub
from gameserver.leaderboards import Leaderboards
from gameserver.ring import HashRing, leaderboard_key, user_key
from gameserver.server import Server, start
from gameserver.sharding import ShardedRouter, join_ring
from protocol.codes import ErrorCode
from rooms.leaderboards.board import Metric
from rooms.leaderboards.periods import PeriodConfig

from ..contract.conftest import REDIS_URL, require
from . import rings
from .client import WsClient
from .test_casino import casino_server_config, login

MEMBERS = ["w0", "w1"]
RING = HashRing(MEMBERS)
NAMES = ["spins", "wins", "daily", "race", "sprint", "marathon", "cup", "derby", "league", "rally"]


def board_on(worker: str, skip: tuple[str, ...] = ()) -> str:
    return next(n for n in NAMES if RING.owner(leaderboard_key("demo", n)) == worker and n not in skip)


def user_on(worker: str, start_at: int = 7000) -> int:
    return next(u for u in range(start_at, start_at + 1000) if RING.owner(user_key("demo", u)) == worker)


ON_W0, ON_W1 = board_on("w0"), board_on("w1")
SPINS = LeaderboardBoard(title="Most spins", metric=Metric.SPINS, period=PeriodConfig(kind="daily"), top_n=5)


def cluster_config(tmp_path: Path, **boards: LeaderboardBoard) -> Config:
    base = casino_server_config(f"sqlite:///{tmp_path}/cluster.db")
    boards = boards or {ON_W0: SPINS, ON_W1: SPINS}
    return msgspec.structs.replace(
        base,
        server=msgspec.structs.replace(base.server, tcp_port=-1, admin_port=-1),
        leaderboards=LeaderboardsSection(zones={"demo": boards}, tick_interval=0.05),
    )


class Ring(rings.Ring):
    def lb(self, worker: str) -> Leaderboards:
        return lb_of(self.servers[worker].hub)


def lb_of(hub: Hub) -> Leaderboards:
    return next(s for s in hub.service_list if isinstance(s, Leaderboards))


def ring(config: Config) -> contextlib.AbstractContextManager[Ring]:
    """w0 attaches its router before its services start (as test_sharding's ring); w1 the
    other way round, as gameserver/worker.py does (`join_cluster` after `attach_router`)."""
    bus_url = rings.unix_bus_url("croupier-lb-bus-")
    return rings.running_ring(config, MEMBERS, bus_url, Ring, late=("w1",))


def run(config: Config, body: Any) -> None:
    with ring(config) as r:
        asyncio.run(asyncio.wait_for(body(r), 30))


async def eventually(check: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def delta_of(c: WsClient, board: str, timeout: float) -> dict[str, Any]:
    """The next delta of `board` (the other events stay queued)."""

    def mine(msg: dict[str, Any]) -> bool:
        return msg.get("event") == "leaderboard_delta" and msg["data"]["board_id"] == board

    for i, msg in enumerate(c.events):
        if mine(msg):
            return c.events.pop(i)["data"]  # type: ignore[no-any-return]
    while True:
        msg = await c.recv(timeout)
        if mine(msg):
            return msg["data"]  # type: ignore[no-any-return]
        c.events.append(msg)


class View:
    """A client's copy of a board's top N, kept with the deltas (as ClientView does)."""

    def __init__(self, snap: dict[str, Any]) -> None:
        self.epoch, self.seq = snap["epoch"], snap["seq"]
        self.rows = {e["user_id"]: e["score"] for e in snap["top"]}

    async def until(self, c: WsClient, board: str, want: dict[str, int]) -> None:
        deadline = time.monotonic() + 5
        while self.rows != want:
            assert time.monotonic() < deadline, (self.rows, want)
            try:
                d = await delta_of(c, board, max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                raise AssertionError(f"{board}: {self.rows} != {want}") from None
            assert d["seq"] == self.seq + 1 and d["epoch"] in (self.epoch, d["prev_epoch"]), d
            self.seq, self.epoch = d["seq"], d["epoch"]
            for uid in d["left"]:
                self.rows.pop(uid, None)
            for e in d["entered"] + d["moved"]:
                self.rows[e["user_id"]] = e["score"]


async def spin(c: WsClient, times: int = 1) -> int:
    balance = 0
    for _ in range(times):
        r = await c.request("spin", game="fruit_slot", coin=1)
        assert r["type"] == "ok", r
        balance = r["data"]["balance"]
    return balance


def test_the_boards_live_on_both_workers() -> None:
    assert ON_W0 != ON_W1  # the scenarios below need one board on each worker


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def events(request: pytest.FixtureRequest) -> Iterator[EventsSection]:
    """The domain event bus: in-process per worker (rounds are cast to the owners), or one
    Redis stream every worker reads through its own consumer group (no casts)."""
    if request.param == "local":
        yield EventsSection()
        return
    require("Redis", REDIS_URL)
    stream = f"croupier_test:{secrets.token_hex(6)}:events"
    yield EventsSection(url=REDIS_URL, stream=stream, node="it-node", claim_idle=5.0)

    async def drop() -> None:
        import redis.asyncio as aioredis

        cli = aioredis.Redis.from_url(REDIS_URL)
        await cli.delete(stream)
        await cli.aclose()

    asyncio.run(drop())


def test_players_on_two_workers_meet_on_each_board(tmp_path: Path, events: EventsSection) -> None:
    """Ann (w0) and Bob (w1) subscribe to a board on each worker and spin: both boards count
    both players, each sees the other's score in the deltas and the snapshots."""

    async def body(r: Ring) -> None:
        ann_id, bob_id = user_on("w0"), user_on("w1")
        ann, _ = await login(r.url("w0"), ann_id)
        bob, _ = await login(r.url("w1"), bob_id)
        views: dict[tuple[str, str], View] = {}
        for who, c in (("ann", ann), ("bob", bob)):
            for board in (ON_W0, ON_W1):
                got = await c.request("leaderboard_subscribe", board=board)
                assert got["type"] == "ok", got
                assert got["data"]["board_id"] == board and got["data"]["top"] == []
                views[(who, board)] = View(got["data"])
        await spin(ann, 1)
        await spin(bob, 2)
        want = {str(ann_id): 1, str(bob_id): 2}
        for who, c in (("ann", ann), ("bob", bob)):
            for board in (ON_W0, ON_W1):
                await views[(who, board)].until(c, board, want)
        # own standing changes reach the remote subscriber too
        mine = await ann.event("leaderboard_rank")
        assert mine["data"]["me"]["user_id"] == str(ann_id)
        for c in (ann, bob):
            for board in (ON_W0, ON_W1):
                snap = (await c.request("leaderboard_snapshot", board=board))["data"]["snapshot"]
                assert [(e["user_id"], e["score"]) for e in snap["top"]] == [
                    (str(bob_id), 2),
                    (str(ann_id), 1),
                ]
        # only the owner holds scores: the other worker's copy of each board stays empty
        w0, w1 = r.lb("w0"), r.lb("w1")
        assert w0.boards[("demo", ON_W0)].board.index.get(str(bob_id)) is not None
        assert w1.boards[("demo", ON_W0)].board.index.get(str(ann_id)) is None
        assert w1.boards[("demo", ON_W1)].board.index.get(str(ann_id)) is not None
        # the list merges both workers' boards, in the configured order
        for c in (ann, bob):
            listed = (await c.request("leaderboard_list"))["data"]["boards"]
            assert [(b["board"], b["subscribed"]) for b in listed] == [(ON_W0, True), (ON_W1, True)]
            assert all(b["seq"] >= 1 for b in listed), listed
        # errors keep their codes across the bus (the same as on the owner)
        for c, board in ((ann, ON_W1), (bob, ON_W1), (bob, ON_W0)):
            got = await c.request("leaderboard_join", board=board)
            assert got["type"] == "error" and got["code"] == ErrorCode.JOIN_NOT_REQUIRED, got
            got = await c.request("leaderboard_results", board=board)
            assert got["type"] == "error" and got["code"] == ErrorCode.RESULTS_NOT_FOUND, got
        assert (await ann.request("leaderboard_subscribe", board="nope"))["code"] == ErrorCode.BOARD_NOT_FOUND
        # an unsubscribe reaches the owner; so does the end of a session
        got = await bob.request("leaderboard_unsubscribe", board=ON_W0)
        assert got["data"] == {"board": ON_W0, "subscribed": False}, got
        assert str(bob_id) not in w0.boards[("demo", ON_W0)].subscribers
        assert str(ann_id) in w1.boards[("demo", ON_W1)].subscribers
        await ann.request("logout")
        await ann.close()

        async def ann_gone() -> bool:
            return str(ann_id) not in w1.boards[("demo", ON_W1)].subscribers

        await eventually(ann_gone)
        listed = (await bob.request("leaderboard_list"))["data"]["boards"]
        assert [(b["board"], b["subscribed"]) for b in listed] == [(ON_W0, False), (ON_W1, True)]
        await bob.close()
        # each owner counted each of the 3 rounds once, and left the other's board alone
        assert (w0.stats.applied, w1.stats.applied) == (3, 3)
        assert w0.ownership.foreign_scores == w1.ownership.foreign_scores == 3

    config = msgspec.structs.replace(cluster_config(tmp_path), events=events)
    run(config, body)


def test_a_restarted_member_is_forgotten_and_its_boards_subscribed_again(tmp_path: Path) -> None:
    """`lb.hello` from w1: w0 drops the subscribers it kept for w1's sessions, and
    subscribes its own sessions again to the boards w1 owns (w1 starts with none)."""

    async def body(r: Ring) -> None:
        ann_id, bob_id = user_on("w0"), user_on("w1")
        ann, _ = await login(r.url("w0"), ann_id)
        bob, _ = await login(r.url("w1"), bob_id)
        view = View((await ann.request("leaderboard_subscribe", board=ON_W1))["data"])
        assert (await bob.request("leaderboard_subscribe", board=ON_W0))["type"] == "ok"
        w0, w1 = r.lb("w0"), r.lb("w1")
        assert w0.boards[("demo", ON_W0)].homes == {str(bob_id): "w1"}

        async def restart_w1() -> None:  # what a fresh process of w1 would look like
            b = w1.boards[("demo", ON_W1)]
            for owner in list(b.subscribers):
                w1._drop_subscriber(b, owner)
            assert w1.ownership.bus is not None
            w1.ownership.bus.cast("w0", "lb.hello", None)

        await r.on_servers(restart_w1())

        async def settled() -> bool:
            return (
                not w0.boards[("demo", ON_W0)].subscribers
                and str(ann_id) in w1.boards[("demo", ON_W1)].subscribers
            )

        await eventually(settled)
        await spin(bob, 1)
        await view.until(ann, ON_W1, {str(bob_id): 1})  # ann still gets w1's deltas
        await ann.close()
        await bob.close()

    run(cluster_config(tmp_path), body)


def test_a_tournament_on_another_worker_pays_its_winner_once(tmp_path: Path) -> None:
    """The cup lives on w1; Ann (w0) wins it: w1 pays from the shared ledger, once, and
    Ann's worker hears it (`tournament_result`, `reward_granted`, a fresh balance)."""
    now = int(time.time())
    cup_name = board_on("w1")
    cup = LeaderboardBoard(
        title="Sprint", metric=Metric.SPINS, prizes=[777], starts_at=now - 60, ends_at=now + 2
    )

    async def body(r: Ring) -> None:
        ann_id, bob_id = user_on("w0"), user_on("w1")
        ann, _ = await login(r.url("w0"), ann_id)
        bob, _ = await login(r.url("w1"), bob_id)
        bal = await spin(ann, 2)
        await spin(bob, 1)
        result = (await ann.event("tournament_result", timeout=8))["data"]
        assert result["board_id"] == cup_name and result["position"] == 1 and result["prize"] == 777
        reward = (await ann.event("reward_granted"))["data"]
        assert reward["amount"] == 777 and reward["key"].startswith(f"tournament:demo:{cup_name}:")
        lost = (await bob.event("tournament_result", timeout=8))["data"]
        assert lost["position"] == 2 and lost["prize"] == 0
        assert (await ann.request("balance"))["data"]["balance"] == bal + 777
        res = await ann.request("leaderboard_results", board=cup_name)
        assert res["type"] == "ok" and res["data"]["me"]["prize"] == 777, res
        w0, w1 = r.lb("w0"), r.lb("w1")
        assert (w0.stats.settlements, w1.stats.settlements) == (0, 1)
        stores = r.servers["w0"].stores
        assert stores is not None

        async def prizes() -> int:
            rows = await stores.wallet.postings(account_id("demo", ann_id), "FUN", limit=1000)
            return sum(1 for p in rows if p.kind == "prize")

        assert await r.on_servers(prizes()) == 1
        await ann.close()
        await bob.close()

    run(cluster_config(tmp_path, **{cup_name: cup}), body)


GROWN = [*MEMBERS, "w2"]
BIG = HashRing(GROWN)


def test_a_board_moves_with_its_standings_and_subscribers_when_the_ring_grows(tmp_path: Path) -> None:
    """A third worker joins: the board that now hashes to it is handed over by its old
    owner (standings, subscribers) and keeps counting from there."""
    mover = next(n for n in NAMES if BIG.owner(leaderboard_key("demo", n)) == "w2")
    old = RING.owner(leaderboard_key("demo", mover))
    config = cluster_config(tmp_path, **{mover: SPINS})
    # no checkpoint before the move: the standings come with the hand-off, not from the store
    config = msgspec.structs.replace(
        config, leaderboards=msgspec.structs.replace(config.leaderboards, checkpoint_interval=60.0)
    )

    def staying(worker: str) -> int:  # a user whose home is the same in both rings
        return next(
            u
            for u in range(7000, 9000)
            if RING.owner(user_key("demo", u)) == worker == BIG.owner(user_key("demo", u))
        )

    async def body(r: Ring) -> None:
        ann_id, bob_id = staying("w0"), staying("w1")
        ann, _ = await login(r.url("w0"), ann_id)
        bob, _ = await login(r.url("w1"), bob_id)
        view = View((await ann.request("leaderboard_subscribe", board=mover))["data"])
        await spin(ann, 1)
        await spin(bob, 2)
        await view.until(ann, mover, {str(ann_id): 1, str(bob_id): 2})

        async def grow() -> None:
            hub = Hub(config)
            router = await join_ring(hub, "w2", GROWN, r.bus_url)
            r.servers["w2"], r.routers["w2"] = await start(config, hub=hub), router
            await asyncio.gather(*(r.routers[w].change_ring(GROWN) for w in MEMBERS))

        await r.on_servers(grow())

        def score(worker: str, uid: int) -> int | None:
            got = r.lb(worker).boards[("demo", mover)].board.index.get(str(uid))
            return None if got is None else got[0]

        async def handed() -> bool:  # the old owner's copy is empty once it handed it over
            gave = score(old, ann_id) is None and score(old, bob_id) is None
            return (
                gave
                and r.lb("w2").stats.handoffs == 1
                and score("w2", ann_id) == 1
                and score("w2", bob_id) == 2
            )

        await eventually(handed)
        assert str(ann_id) in r.lb("w2").boards[("demo", mover)].subscribers
        await spin(ann, 1)  # counted on top of the handed-over score

        async def counted() -> bool:
            return score("w2", ann_id) == 2

        await eventually(counted)
        # ann's subscription moved: the new owner's deltas (a new epoch) reach her
        d = await delta_of(ann, mover, 5)
        while d["epoch"] == view.epoch:
            d = await delta_of(ann, mover, 5)
        snap = (await ann.request("leaderboard_snapshot", board=mover))["data"]["snapshot"]
        assert snap["epoch"] == d["epoch"]
        assert [(e["user_id"], e["score"]) for e in snap["top"]] == [(str(bob_id), 2), (str(ann_id), 2)]

        # ... and w2 leaves again: the board goes back, with everything counted meanwhile
        async def shrink() -> None:
            await asyncio.gather(*(r.routers[w].change_ring(MEMBERS) for w in GROWN))
            await r.lb("w2").drain()  # a leaver drains before it stops

        await r.on_servers(shrink())

        async def back() -> bool:
            return r.lb(old).stats.handoffs == 1 and score(old, ann_id) == 2 and score(old, bob_id) == 2

        await eventually(back)
        assert str(ann_id) in r.lb(old).boards[("demo", mover)].subscribers
        await ann.close()
        await bob.close()

    run(config, body)


def test_a_real_two_worker_cluster_shares_a_board(tmp_path: Path) -> None:
    """`gameserver run --workers 2`: the same over worker processes and the acceptor."""
    from .test_cluster import cluster, owner_of, token as cluster_token, write_config

    path = write_config(tmp_path)
    with path.open("a") as f:
        f.write(
            '\n[leaderboards]\ntick_interval = 0.05\n\n[leaderboards.zones.demo.spins]\nmetric = "spins"\n'
            'period = { kind = "daily" }\n'
        )

    with cluster(path, 2) as c:
        owner = c.ring.owner(leaderboard_key("demo", "spins"))
        here = next(u for u in range(500, 600) if owner_of(c, u) == owner)
        there = next(u for u in range(500, 600) if owner_of(c, u) != owner)

        async def body() -> None:
            clients = []
            for uid in (here, there):
                client = await WsClient.connect(f"{c.ws_url}?token={cluster_token(uid)}")
                assert (await client.request("login", token=cluster_token(uid)))["type"] == "ok"
                clients.append(client)
            views = []
            for client in clients:
                got = await client.request("leaderboard_subscribe", board="spins")
                assert got["type"] == "ok", got
                views.append(View(got["data"]))
            await spin(clients[0], 1)
            await spin(clients[1], 2)
            for client, view in zip(clients, views, strict=True):
                await view.until(client, "spins", {str(here): 1, str(there): 2})
            for client in clients:
                await client.close()
            # a rolling restart: the successors hold the same standings and keep counting
            before = c.current()
            assert (await asyncio.to_thread(c.post, "/admin/rolling-restart"))["started"]
            deadline = time.monotonic() + 30
            while True:
                now = c.current()
                replaced = all(m in now and now[m]["pid"] != before[m]["pid"] for m in before)
                if replaced and not c.get("/admin/workers")["rolling_restart"]:
                    break
                assert time.monotonic() < deadline, "the rolling restart did not finish"
                await asyncio.sleep(0.2)
            client = await WsClient.connect(f"{c.ws_url}?token={cluster_token(there)}")
            assert (await client.request("login", token=cluster_token(there)))["type"] == "ok"
            got = await client.request("leaderboard_subscribe", board="spins")
            assert got["type"] == "ok", got
            view = View(got["data"])
            assert view.rows == {str(here): 1, str(there): 2}
            await spin(client, 1)
            await view.until(client, "spins", {str(here): 1, str(there): 3})
            await client.close()

        asyncio.run(asyncio.wait_for(body(), 60))


def test_a_rolling_restart_keeps_the_moved_sessions_subscriptions(tmp_path: Path) -> None:
    """w1 is replaced (handover): its player, subscribed to a board owned by w0 and to one
    owned by w1, resumes on the successor and keeps getting both boards' deltas without
    subscribing again."""

    async def body(r: Ring) -> None:
        from gameserver.bus import UnixBus
        from gameserver.sharding import attach_router
        from protocol.codes import CloseCode

        uid_w1, uid_w0 = user_on("w1"), user_on("w0", 8000)
        mover, md = await login(r.url("w1"), uid_w1)
        other, _ = await login(r.url("w0"), uid_w0)
        for board in (ON_W0, ON_W1):
            assert (await mover.request("leaderboard_subscribe", board=board))["type"] == "ok"
        directory = r.bus_url.removeprefix("unix://")
        config = r.servers["w1"].hub.config

        async def successor() -> tuple[Server, ShardedRouter]:
            hub = Hub(config)
            server = await start(config, hub=hub)
            bus = UnixBus("w1", directory, listen_as="w1.next")
            router = await attach_router(hub, "w1", MEMBERS, bus, takeover=10)
            lb_of(hub).join_cluster(router)
            return server, router

        new_server, new_router = await r.on_servers(successor())
        await r.on_servers(r.routers["w1"].hand_over(directory))
        old = r.servers["w1"]
        r.servers["w1.old"], r.routers["w1.old"] = old, r.routers["w1"]
        r.servers["w1"], r.routers["w1"] = new_server, new_router
        old.hub.shutdown(CloseCode.RESUME_ELSEWHERE, "moving")
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                mover.events.append(await mover.recv(2))
        seen = max((e["seq"] for e in mover.events if e.get("type") == "event"), default=0)
        await asyncio.sleep(0.3)  # the successor says hello; the owners keep its subscribers
        moved = await WsClient.connect(r.url("w1"))
        resumed = await moved.request("resume", token=md["resume_token"], last_seq=seen)
        assert resumed["type"] == "ok", resumed
        await spin(other, 2)  # scores on both boards: deltas to the moved session
        for board in (ON_W0, ON_W1):
            d = await delta_of(moved, board, 5)
            assert any(e["user_id"] == str(uid_w0) for e in d["entered"] + d["moved"]), d
        await moved.close()
        await other.close()

    run(cluster_config(tmp_path), body)
