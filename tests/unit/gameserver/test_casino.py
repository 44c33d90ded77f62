"""Casino requests through the fake hub, on the memory store: ledger effects, retries, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest

from games.rng import Rng
from gameserver import auth
from gameserver.casino import Casino, account_id
from gameserver.clock import ManualClock
from gameserver.config import AuthSection, CasinoSection, CasinoZone, Config
from gameserver.hub import Hub
from persistence import Stores, open_stores
from protocol.codes import ErrorCode
from protocol.limits import FloodLimits
from rooms.config import RoomConfig, ZoneConfig

from .fakes import SECRET, Client

START = 10_000
NO_FLOOD = FloodLimits(rate=1e9, burst=10**9)
GAMES = {"fruit_slot": "96.5", "demo_orchard": "96"}


def casino_config(**zone: Any) -> Config:
    zone.setdefault("starting_balance", START)
    cz = CasinoZone(games=GAMES, currency="FUN", **zone)
    return Config(
        auth=AuthSection(secret=SECRET),
        zones=[
            ZoneConfig(name="demo", guests=True, rooms=[RoomConfig("Lobby")], flood=NO_FLOOD),
            ZoneConfig(name="plain", guests=True, rooms=[RoomConfig("Lobby")]),
        ],
        casino=CasinoSection(zones={"demo": cz}),
    )


class Env:
    def __init__(self, hub: Hub, stores: Stores, clock: ManualClock) -> None:
        self.hub, self.stores, self.clock = hub, stores, clock

    def client(self, user: int = 7, zone: str = "demo") -> Client:
        c = Client(self.hub)
        tok = auth.mint(SECRET, user, zone, expires=int(self.clock.wall()) + 3600)
        assert c.send({"type": "login", "token": tok})["type"] == "ok"
        return c

    async def request(self, c: Client, obj: dict[str, Any]) -> dict[str, Any]:
        """Send a request and wait for its (asynchronous) reply."""
        rid = obj.setdefault("id", c._next)
        self.clock.advance(0.001)  # the flood filter's bucket refills with (manual) time
        reply = c.send(obj)
        for _ in range(2000):
            if reply is not None:
                return reply
            await asyncio.sleep(0.001)
            self.hub.flush()
            for i, msg in enumerate(c.link.written):
                if msg["type"] in ("ok", "error") and msg.get("id") == rid:
                    reply = c.link.written.pop(i)
        raise AssertionError(f"no reply to {obj}: {c.link.written[-3:]} {c.link.closed}")

    async def balance(self, user: int = 7) -> int:
        wb = await self.stores.wallet.get_balance(account_id("demo", user), "FUN")
        assert wb is not None
        return wb.balance


def run(body: Callable[[Env], Awaitable[None]], config: Config | None = None, rng: Rng | None = None) -> None:
    async def go() -> None:
        config_ = config or casino_config()
        clock = ManualClock()
        hub = Hub(config_, clock, call_soon=lambda fn: None)
        stores = await open_stores("memory://")
        try:
            hub.casino = Casino(hub, stores, rng=rng)
            hub.register(hub.casino)
            await hub.casino.start()
            await asyncio.wait_for(body(Env(hub, stores, clock)), 30)
            await hub.casino.drain()
        finally:
            await stores.close()

    asyncio.run(go())


async def spin_until_free_spins(env: Env, c: Client, tries: int = 3000) -> dict[str, Any]:
    """Spin demo_orchard at the smallest stake until a round with free spins opens."""
    for _ in range(tries):
        r = await env.request(c, {"type": "spin", "game": "demo_orchard", "coin": 1})
        assert r["type"] == "ok", r
        if not r["data"]["complete"]:
            return r["data"]
    raise AssertionError("no free spins in time")


def test_spin_moves_money_through_the_ledger():
    async def body(env: Env) -> None:
        c = env.client()
        r = await env.request(c, {"type": "spin", "game": "fruit_slot", "coin": 5})
        assert r["type"] == "ok", r
        d = r["data"]
        assert d["stake"] == 5 and d["net"] == d["win"] - d["stake"]
        assert d["balance"] == START - d["stake"] + d["win"] == await env.balance()
        assert d["complete"] and d["steps"] == 1 and d["step"]["stops"]
        assert d["ldw"] == (0 < d["win"] < d["stake"])
        assert await env.stores.wallet.ledger_totals() == {"FUN": 0}
        assert await env.stores.wallet.balance_mismatches() == []
        rec = await env.stores.rounds.get_round(d["round"])
        assert rec is not None and rec.status == "settled" and rec.bet == 5 and rec.win == d["win"]
        b = await env.request(c, {"type": "balance"})
        assert b["data"] == {"currency": "FUN", "balance": d["balance"], "open_rounds": []}

    run(body)


def test_retry_returns_the_original_reply_and_posts_once():
    async def body(env: Env) -> None:
        c = env.client()
        first = await env.request(c, {"type": "spin", "game": "fruit_slot", "coin": 25, "id": 99})
        again = await env.request(c, {"type": "spin", "game": "fruit_slot", "coin": 25, "id": 99})
        assert first == again
        postings = await env.stores.wallet.postings(account_id("demo", 7), "FUN")
        bets = [p for p in postings if p.kind == "bet"]
        assert len(bets) == 1
        assert await env.balance() == first["data"]["balance"]
        other = await env.request(c, {"type": "spin", "game": "fruit_slot", "coin": 1, "id": 99})
        assert other["code"] == ErrorCode.REQUEST_ID_REUSED

    run(body)


def test_concurrent_copies_post_once():
    async def body(env: Env) -> None:
        c = env.client()
        await env.request(c, {"type": "balance"})
        for _ in range(10):
            c.conn.message_received(b'{"type": "spin", "id": 5, "game": "fruit_slot", "coin": 100}', False)
        await env.hub.casino.drain()
        env.hub.flush()
        replies = [m for m in c.link.take() if m.get("id") == 5]
        assert len(replies) == 10 and all(r == replies[0] for r in replies)
        bets = [p for p in await env.stores.wallet.postings(account_id("demo", 7), "FUN") if p.kind == "bet"]
        assert len(bets) == 1

    run(body)


def test_refusals():
    async def body(env: Env) -> None:
        c = env.client()
        assert (await env.request(c, {"type": "spin", "game": "nope"}))["code"] == ErrorCode.GAME_NOT_FOUND
        bad = await env.request(c, {"type": "spin", "game": "fruit_slot", "coin": 3})
        assert bad["code"] == ErrorCode.BAD_BET
        lines = await env.request(c, {"type": "spin", "game": "fruit_slot", "coin": 1, "lines": 2})
        assert lines["code"] == ErrorCode.BAD_BET
        assert (await env.request(c, {"type": "game_info", "game": "nope"}))[
            "code"
        ] == ErrorCode.GAME_NOT_FOUND
        rnf = await env.request(c, {"type": "round_continue", "round": "nope"})
        assert rnf["code"] == ErrorCode.ROUND_NOT_FOUND
        plain = env.client(user=8, zone="plain")
        assert (await env.request(plain, {"type": "balance"}))["code"] == ErrorCode.NO_CASINO
        assert await env.balance() == START  # nothing posted

    run(body)


def test_insufficient_funds_posts_nothing():
    async def body(env: Env) -> None:
        c = env.client()
        spent = 0
        while True:
            r = await env.request(c, {"type": "spin", "game": "fruit_slot", "coin": 100})
            if r["type"] == "error":
                assert r["code"] == ErrorCode.INSUFFICIENT_FUNDS, r
                break
            spent += 1
            assert spent < 10_000
        bal = await env.balance()
        assert bal < 100
        assert await env.stores.wallet.ledger_totals() == {"FUN": 0}
        assert await env.stores.wallet.balance_mismatches() == []

    # A small bankroll: at 96.5% RTP, 10,000 would take about 3,000 spins to run out.
    run(body, casino_config(starting_balance=500))


def test_policy_min_cycle():
    async def body(env: Env) -> None:
        c = env.client()
        assert (await env.request(c, {"type": "spin", "game": "fruit_slot"}))["type"] == "ok"
        r = await env.request(c, {"type": "spin", "game": "fruit_slot"})
        assert r["code"] == ErrorCode.POLICY_REFUSED and "min_cycle" in r["message"]

    run(body, casino_config(policy="gb"))


def test_store_closed_is_unavailable_and_keeps_the_session():
    async def body(env: Env) -> None:
        c = env.client()
        assert (await env.request(c, {"type": "balance"}))["type"] == "ok"
        await env.stores.writer.close()
        r = await env.request(c, {"type": "spin", "game": "fruit_slot"})
        assert r["code"] == ErrorCode.UNAVAILABLE
        assert c.link.closed is None

    run(body)


def test_free_spins_continue_after_resume():
    async def body(env: Env) -> None:
        c = env.client()
        first = await spin_until_free_spins(env, c)
        rid = first["round"]
        bal = await env.request(c, {"type": "balance"})
        assert [r["round"] for r in bal["data"]["open_rounds"]] == [rid]
        # another round of the same game must wait (INT-2)
        blocked = await env.request(c, {"type": "spin", "game": "demo_orchard", "coin": 1})
        assert blocked["code"] == ErrorCode.ROUND_IN_PROGRESS
        # the connection drops; the client resumes on a new one
        login_token = None
        for p in env.hub.players.values():
            login_token = p.resume_token
        c.drop()
        c2 = Client(env.hub)
        c2._next = 1000
        assert c2.send({"type": "resume", "token": login_token})["type"] == "ok"
        revealed = first["revealed"]
        running = first["running_win"]
        while True:
            r = await env.request(c2, {"type": "round_continue", "round": rid})
            assert r["type"] == "ok", r
            d = r["data"]
            assert d["revealed"] == revealed + 1 and d["running_win"] >= running
            revealed, running = d["revealed"], d["running_win"]
            if d["complete"]:
                break
        assert running == first["win"] == d["win"]
        again = await env.request(c2, {"type": "round_continue", "round": rid})
        assert again["code"] == ErrorCode.ROUND_COMPLETE
        old = await env.request(c2, {"type": "round_continue", "round": rid, "step": 0})
        assert old["type"] == "ok" and old["data"]["step"] == first["step"]
        rec = await env.stores.rounds.get_round(rid)
        assert rec is not None and rec.status == "settled"
        hist = await env.request(c2, {"type": "history", "limit": 5})
        entry = next(h for h in hist["data"]["rounds"] if h["round"] == rid)
        assert entry["revealed"] == entry["total_steps"] == d["steps"]
        assert await env.stores.wallet.balance_mismatches() == []

    run(body)


def test_history_pages_and_game_info():
    async def body(env: Env) -> None:
        c = env.client()
        ids = []
        for _ in range(12):
            env.clock.advance(1)
            ids.append((await env.request(c, {"type": "spin", "game": "fruit_slot"}))["data"]["round"])
            await asyncio.sleep(0.002)  # distinct created_at
        page = (await env.request(c, {"type": "history", "limit": 10}))["data"]
        assert len(page["rounds"]) == 10 and page["before"] is not None
        rest = (await env.request(c, {"type": "history", "limit": 10, "before": page["before"]}))["data"]
        got = [h["round"] for h in page["rounds"] + rest["rounds"]]
        assert got == ids[::-1]
        h = page["rounds"][0]
        assert h["balance_after"] == h["balance_before"] - h["stake"] + h["win"]
        listing = (await env.request(c, {"type": "game_info"}))["data"]
        assert {g["game"] for g in listing["games"]} == set(GAMES)
        info = (await env.request(c, {"type": "game_info", "game": "fruit_slot"}))["data"]
        assert info["rtp"] == 96.5 and info["coin_values"] == [1, 5, 25, 100] and info["paytable"]

    run(body)


def test_hub_without_casino_says_not_supported():
    from .fakes import make_hub

    hub, _ = make_hub()
    c = Client(hub)
    assert c.send({"type": "login", "guest": True, "zone": "demo"})["type"] == "ok"
    assert c.send({"type": "spin", "game": "fruit_slot"})["code"] == ErrorCode.NOT_SUPPORTED


@pytest.mark.parametrize("bad", [{"games": {"nope": "1"}}, {"games": {"fruit_slot": "42"}}])
def test_bad_catalogue_is_refused_at_start(bad):
    from gameserver.casino import build_zone

    with pytest.raises(ValueError):
        build_zone("demo", CasinoZone(**bad))


def test_a_new_session_reusing_request_ids_gets_new_spins():
    async def body(env: Env) -> None:
        c = env.client()
        first = await env.request(c, {"type": "spin", "game": "fruit_slot", "id": 3})
        c.send({"type": "logout"})
        c2 = env.client()
        again = await env.request(c2, {"type": "spin", "game": "fruit_slot", "id": 3})
        assert again["type"] == "ok" and again["data"]["round"] != first["data"]["round"]
        bets = [p for p in await env.stores.wallet.postings(account_id("demo", 7), "FUN") if p.kind == "bet"]
        assert len(bets) == 2

    run(body)


def test_a_client_key_outlives_the_session():
    async def body(env: Env) -> None:
        c = env.client()
        spin = {"type": "spin", "game": "fruit_slot", "key": "0b7e-spin-1"}
        first = await env.request(c, {**spin, "id": 3})
        c.send({"type": "logout"})
        c2 = env.client()
        again = await env.request(c2, {**spin, "id": 40})
        assert again["data"] == first["data"]
        bets = [p for p in await env.stores.wallet.postings(account_id("demo", 7), "FUN") if p.kind == "bet"]
        assert len(bets) == 1

    run(body)


def test_minigame_scratch_card_is_settled_like_a_spin():
    async def body(env: Env) -> None:
        c = env.client()
        r = await env.request(c, {"type": "minigame_play", "game": "scratch_card", "coin": 5, "id": 50})
        assert r["type"] == "ok", r
        d = r["data"]
        assert d["stake"] == 10 and d["step"]["type"] == "scratch" and len(d["step"]["grid"]) == 9
        assert d["balance"] == START - d["stake"] + d["win"] == await env.balance()
        again = await env.request(c, {"type": "minigame_play", "game": "scratch_card", "coin": 5, "id": 50})
        assert again == r
        bad = await env.request(c, {"type": "minigame_play", "game": "scratch_card", "coin": 3})
        assert bad["code"] == ErrorCode.BAD_BET
        nope = await env.request(c, {"type": "minigame_play", "game": "fruit_slot"})
        assert nope["code"] == ErrorCode.GAME_NOT_FOUND
        info = (await env.request(c, {"type": "game_info"}))["data"]
        assert [g["game"] for g in info["minigames"]] == ["scratch_card"]
        assert await env.stores.wallet.balance_mismatches() == []

    run(body, casino_config(minigames=["scratch_card"]))


@pytest.mark.parametrize("name", ["wheel_of_fortune", "pick_a_box", "fruit_slot", "nope"])
def test_minigames_that_cannot_be_settled_are_refused_at_start(name):
    from gameserver.casino import build_zone

    with pytest.raises(ValueError):
        build_zone("demo", CasinoZone(minigames=[name]))


def test_ended_sessions_leave_no_cached_wallet():
    async def body(env: Env) -> None:
        c = env.client()
        assert (await env.request(c, {"type": "spin", "game": "fruit_slot"}))["type"] == "ok"
        assert ("demo", 7) in env.hub.casino.wallets
        c.send({"type": "logout"})
        await env.hub.casino.drain()
        assert env.hub.casino.wallets == {}

    run(body)


def test_concurrent_game_info_computes_an_undeclared_rtp_once(monkeypatch):
    """Many players asking for a game without a declared RTP share one exact computation."""
    import gameserver.casino as casino_mod

    calls = []
    real = casino_mod.exact_report

    def counting(slot):
        calls.append(slot)
        return real(slot)

    monkeypatch.setattr(casino_mod, "exact_report", counting)

    async def scenario():
        from gameserver.casino import Game

        game = Game(name="g", profile="p", slot=_any_slot())
        casino = casino_mod.Casino.__new__(casino_mod.Casino)
        casino._disclosing = {}
        await asyncio.gather(*(casino._disclose(game) for _ in range(20)))
        return game

    game = asyncio.run(scenario())
    assert len(calls) == 1
    assert game.rtp is not None


def _any_slot():
    from games.catalog import read_catalog
    from games.slots import compile_game, decode_config

    return compile_game(decode_config(read_catalog("fruit_slot")), "96.5")


def test_a_snapshot_read_before_the_welcome_credit_landed_is_not_an_empty_wallet():
    """An earlier attempt committed the welcome credit after its reply timed out; the next
    load read the user before that commit was visible. The balance is read again, so the
    player is not refused for a balance of 0 (and nothing is credited twice)."""

    async def body(env: Env) -> None:
        c = env.client()
        stores = env.stores
        assert (await env.request(c, {"type": "balance"}))["data"]["balance"] == START  # credited
        assert env.hub.casino is not None
        env.hub.casino.wallets.clear()  # as if that attempt's reply had timed out
        real = stores.load_user

        async def stale(account: str) -> Any:  # what a read just before the commit returns
            snap = await real(account)
            return msgspec.structs.replace(snap, balances=())

        stores.load_user = stale  # type: ignore[method-assign]
        r = await env.request(c, {"type": "spin", "game": "fruit_slot", "coin": 5})
        assert r["type"] == "ok", r
        stores.load_user = real  # type: ignore[method-assign]
        assert r["data"]["balance"] == START - 5 + r["data"]["win"] == await env.balance()
        assert await stores.wallet.ledger_totals() == {"FUN": 0}

    run(body)


def test_without_warm_wallets_a_login_costs_the_store_nothing():
    config = casino_config()
    config = msgspec.structs.replace(
        config, casino=msgspec.structs.replace(config.casino, warm_wallets=False)
    )

    async def body(env: Env) -> None:
        c = env.client()
        await asyncio.sleep(0.05)
        assert env.hub.casino is not None and env.hub.casino.wallets == {}
        assert await env.stores.wallet.get_balance(account_id("demo", 7), "FUN") is None  # no welcome yet
        r = await env.request(c, {"type": "spin", "game": "fruit_slot"})
        assert r["type"] == "ok" and r["data"]["balance"] == START - 1 + r["data"]["win"]

    run(body, config)


def test_a_cluster_worker_has_its_own_house_account():
    """Every round updates the house balance row: one per worker, so workers never wait
    on each other's lock (the zone's house is the sum of house:<zone>:*)."""
    from types import SimpleNamespace

    async def body() -> None:
        config = casino_config()
        stores = await open_stores("memory://")
        try:
            single = Casino(Hub(config, ManualClock(), call_soon=lambda fn: None), stores)
            worker_hub = Hub(config, ManualClock(), call_soon=lambda fn: None)
            worker_hub.info = SimpleNamespace(member="0.3")  # type: ignore[attr-defined]
            clustered = Casino(worker_hub, stores)
            assert single.zones["demo"].house == "house:demo"
            assert clustered.zones["demo"].house == "house:demo:0.3"
        finally:
            await stores.close()

    asyncio.run(body())
