"""Rewards requests through the fake hub on the memory store, with a manual clock:
lotteries, bonuses, missions, referrals, responsible-gaming settings, and the ledger."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from games.bonus import BonusTemplate, DailyLogin
from games.missions import Mission
from games.referral import ReferralRule
from games.rng import SeededRng
from gameserver import auth
from gameserver.casino import Casino, account_id
from gameserver.clock import ManualClock
from gameserver.config import (
    AuthSection,
    CasinoSection,
    CasinoZone,
    Config,
    LeaderboardBoard,
    LeaderboardsSection,
    LotterySchedule,
    RewardsZone,
)
from gameserver.domain import MissionCompleted, RoundSettled, mission_event_id
from gameserver.hub import Hub
from gameserver.leaderboards import Leaderboards
from gameserver.rewards import Rewards
from persistence import PostingKind, Stores, StoreUnavailable, open_stores
from protocol.codes import ErrorCode
from protocol.limits import FloodLimits
from rooms.config import RoomConfig, ZoneConfig
from rooms.leaderboards.board import Metric

from .fakes import SECRET, Client

START = 10_000
DAY_MS = 86_400_000
NO_FLOOD = FloodLimits(rate=1e9, burst=10**9)
GAMES = {"fruit_slot": "96.5"}
T0 = 1_000_000.0  # ManualClock's start (epoch seconds)


def rewards_config(policy: str = "default", **rewards: Any) -> Config:
    rewards.setdefault("lotteries", [LotterySchedule(game="quick_3of10", period_s=3600, cutoff_s=60)])
    cz = CasinoZone(
        games=GAMES, currency="FUN", starting_balance=START, policy=policy, rewards=RewardsZone(**rewards)
    )
    return Config(
        auth=AuthSection(secret=SECRET),
        zones=[ZoneConfig(name="demo", guests=True, rooms=[RoomConfig("Lobby")], flood=NO_FLOOD)],
        casino=CasinoSection(zones={"demo": cz}),
    )


class Env:
    def __init__(self, hub: Hub, stores: Stores, clock: ManualClock, config: Config) -> None:
        self.hub, self.stores, self.clock, self.config = hub, stores, clock, config
        self.casino: Casino = hub.casino  # type: ignore[assignment]
        self.rewards: Rewards = next(s for s in hub.service_list if isinstance(s, Rewards))

    def client(self, user: int = 7, ip: str = "10.0.0.7") -> Client:
        c = Client(self.hub)
        c.link.peer = f"{ip}:5000"
        tok = auth.mint(SECRET, user, "demo", expires=int(self.clock.wall()) + 10 * 86_400 * 365)
        assert c.send({"type": "login", "token": tok})["type"] == "ok"
        return c

    async def request(self, c: Client, obj: dict[str, Any]) -> dict[str, Any]:
        rid = obj.setdefault("id", c._next)
        c._next += 1
        reply = c.send(obj)
        for _ in range(3000):
            if reply is not None:
                return reply
            await asyncio.sleep(0.001)
            self.hub.flush()
            for i, msg in enumerate(c.link.written):
                if msg["type"] in ("ok", "error") and msg.get("id") == rid:
                    reply = c.link.written.pop(i)
        raise AssertionError(f"no reply to {obj}")

    async def ok(self, c: Client, obj: dict[str, Any]) -> dict[str, Any]:
        r = await self.request(c, obj)
        assert r["type"] == "ok", r
        return r["data"]  # type: ignore[no-any-return]

    async def settle(self) -> None:
        """Let event consumers and tasks finish."""
        for _ in range(5):
            await asyncio.sleep(0)
        await self.rewards.drain_tasks()

    async def balance(self, account: str) -> int:
        wb = await self.stores.wallet.get_balance(account, "FUN")
        return 0 if wb is None else wb.balance

    async def check_ledger(self) -> None:
        """Every balance equals its ledger sum; all postings sum to zero."""
        assert await self.stores.wallet.balance_mismatches() == []
        assert set((await self.stores.wallet.ledger_totals()).values()) <= {0}

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)


async def _boot(config: Config, clock: ManualClock, stores: Stores, rng: Any = None) -> Hub:
    hub = Hub(config, clock, call_soon=lambda fn: None)
    casino = Casino(hub, stores, rng=rng)
    hub.casino = casino
    hub.register(casino)
    await casino.start()
    rewards = Rewards(hub, stores, casino, rng=rng, tick=False)
    await rewards.start()
    hub.register(rewards)
    return hub


def run(body: Callable[[Env], Awaitable[None]], config: Config | None = None) -> None:
    async def go() -> None:
        config_ = config or rewards_config()
        clock = ManualClock(T0)
        stores = await open_stores("memory://", clock=lambda: int(clock.wall() * 1000))
        try:
            hub = await _boot(config_, clock, stores, SeededRng(7))
            env = Env(hub, stores, clock, config_)
            await asyncio.wait_for(body(env), 60)
            await env.rewards.drain()
            await env.casino.drain()
        finally:
            await stores.close()

    asyncio.run(go())


async def restart(env: Env) -> Env:
    """A new casino and rewards service over the same stores (a server restart)."""
    await env.rewards.drain()
    await env.casino.drain()
    hub = await _boot(env.config, env.clock, env.stores, SeededRng(99))
    return Env(hub, env.stores, env.clock, env.config)


A7 = account_id("demo", 7)
A8 = account_id("demo", 8)
A9 = account_id("demo", 9)


# -- lotteries --------------------------------------------------------------------------------


def test_lottery_commit_reveal_draw_pays_once_across_restarts():
    async def body(env: Env) -> None:
        c7, c8 = env.client(7), env.client(8, "10.0.0.8")
        lst = await env.ok(c7, {"type": "lottery_list"})
        (lot,) = lst["lotteries"]
        draw = lot["draw"]
        assert lot["lottery"] == "quick_3of10" and draw is not None and len(draw["commitment"]) == 64
        # every combination of 3 of 10 across the two players: someone must win something
        tickets7 = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 5, 10], [2, 6, 9], [3, 7, 10], [1, 4, 8], [2, 5, 7]]
        tickets8 = [[3, 6, 9], [1, 6, 10], [2, 4, 10], [3, 5, 8], [4, 7, 9], [2, 8, 10]]
        b7 = await env.ok(c7, {"type": "lottery_buy", "lottery": "quick_3of10", "tickets": tickets7})
        assert b7["cost"] == 800 and b7["balance"] == START - 800 and len(b7["tickets"]) == 8
        two = {"type": "lottery_buy", "lottery": "quick_3of10", "tickets": [[1, 2, 4], [3, 5, 6]], "id": 3}
        again = await env.ok(c7, dict(two))
        assert again == await env.ok(c7, dict(two))
        assert await env.balance(A7) == START - 1000  # id 3 bought once, its retry posted nothing
        limit = await env.request(
            c7, {"type": "lottery_buy", "lottery": "quick_3of10", "tickets": [[1, 2, 3]] * 3}
        )
        assert limit["code"] == ErrorCode.TICKET_LIMIT
        bad = await env.request(c8, {"type": "lottery_buy", "lottery": "quick_3of10", "tickets": [[1, 1, 2]]})
        assert bad["code"] == ErrorCode.BAD_TICKET
        await env.ok(c8, {"type": "lottery_buy", "lottery": "quick_3of10", "tickets": tickets8})
        pending = await env.request(c7, {"type": "lottery_results", "lottery": "quick_3of10"})
        assert pending["code"] == ErrorCode.DRAW_PENDING
        # the cutoff passes: no more sales
        env.advance(draw["cutoff_at"] / 1000 - env.clock.wall())
        closed = await env.request(
            c8, {"type": "lottery_buy", "lottery": "quick_3of10", "tickets": [[1, 2, 3]]}
        )
        assert closed["code"] == ErrorCode.SALES_CLOSED
        env.advance(60)
        await env.rewards.tick()
        await env.rewards.tick()  # a second tick (or worker) changes nothing
        res = await env.ok(c7, {"type": "lottery_results", "lottery": "quick_3of10"})
        assert res["draw"] == draw["draw"] and len(res["numbers"]) == 3 and res["tickets"] == 16
        assert hashlib.sha256(bytes.fromhex(res["seed"])).hexdigest() == draw["commitment"]
        ver = await env.ok(c8, {"type": "lottery_verify", "draw": draw["draw"]})
        assert ver["verified"] is True and ver["result"]["numbers"] == res["numbers"]
        assert len(ver["tickets"]) == 16
        prizes = {w["ticket_id"]: w["amount"] for w in ver["result"]["wins"]}
        assert prizes, "1-3, 4-6, 7-9 and a ticket with 10: some ticket matches at least one number"

        async def prize_postings() -> int:
            n = 0
            for acct in (A7, A8):
                n += sum(
                    1
                    for p in await env.stores.wallet.postings(acct, "FUN", limit=500)
                    if p.kind == PostingKind.PRIZE
                )
            return n

        paid = sum(1 for a in prizes.values() if a > 0)
        assert await prize_postings() == paid
        mine = sum(t["prize"] for t in res["my_tickets"])
        assert res["my_prize"] == mine
        assert await env.balance(A7) == START - 1000 + mine
        await env.check_ledger()
        # restart: the stored draw is not drawn again, prizes are not paid again
        env2 = await restart(env)
        await env2.rewards.tick()
        assert await prize_postings() == paid
        c7b = env2.client(7)
        res2 = await env2.ok(c7b, {"type": "lottery_results", "lottery": "quick_3of10"})
        assert res2["numbers"] == res["numbers"]
        # the next draw is on sale with a fresh commitment
        lst2 = await env2.ok(c7b, {"type": "lottery_list"})
        nxt = lst2["lotteries"][0]["draw"]
        assert nxt is not None and nxt["draw"] != draw["draw"] and nxt["commitment"] != draw["commitment"]
        assert nxt["rollover_in"] == res["rollover_out"]
        await env2.check_ledger()

    run(body)


def test_lottery_draw_interrupted_before_paying_pays_on_the_next_tick():
    async def body(env: Env) -> None:
        c7 = env.client(7)
        tickets = [
            [a, b, c] for a, b, c in ((1, 2, 3), (4, 5, 6), (7, 8, 9), (1, 5, 10), (2, 6, 9), (3, 7, 10))
        ]
        tickets += [[1, 4, 8], [2, 5, 7], [3, 6, 9], [2, 8, 10]]
        await env.ok(c7, {"type": "lottery_buy", "lottery": "quick_3of10", "tickets": tickets})
        draw = (await env.ok(c7, {"type": "lottery_list"}))["lotteries"][0]["draw"]
        env.advance(draw["draws_at"] / 1000 - env.clock.wall())
        lots = env.rewards.lotteries
        pay = lots._pay

        async def crash(*args: Any) -> None:
            raise RuntimeError("power cut")

        lots._pay = crash  # type: ignore[method-assign]
        await env.rewards.tick()
        doc = await env.stores.lotteries.get(f"draw:{draw['draw']}")
        assert doc is not None and doc.status == "drawn"
        assert await env.balance(A7) == START - 1000
        lots._pay = pay  # type: ignore[method-assign]
        await env.rewards.tick()
        doc = await env.stores.lotteries.get(f"draw:{draw['draw']}")
        assert doc is not None and doc.status == "paid"
        res = await env.ok(c7, {"type": "lottery_results", "lottery": "quick_3of10"})
        assert await env.balance(A7) == START - 1000 + res["my_prize"]
        await env.rewards.tick()
        assert await env.balance(A7) == START - 1000 + res["my_prize"]
        await env.check_ledger()

    run(body)


# -- bonuses ----------------------------------------------------------------------------------

OFFER = BonusTemplate(
    id="welcome",
    version="1",
    type="no_deposit",
    amount=500,
    wagering_multiple=2,
    contribution_bp={"slots": 10_000},
    expiry_ms=7 * DAY_MS,
    max_cashout=400,
)
SPINS = BonusTemplate(
    id="spins10",
    version="1",
    type="free_spins",
    free_spins=10,
    game_id="fruit_slot",
    coin=5,
    wagering_multiple=0,
    expiry_ms=DAY_MS,
)
MATCH = BonusTemplate(
    id="match100",
    version="1",
    type="deposit_match",
    percent_bp=10_000,
    cap=1000,
    wagering_multiple=1,
    contribution_bp={"slots": 10_000},
    expiry_ms=DAY_MS,
)


def test_daily_login_once_per_calendar_day_with_streak():
    async def body(env: Env) -> None:
        c = env.client()
        first = await env.ok(c, {"type": "bonus_claim", "bonus": "daily"})
        assert first["amount"] == 100 and first["streak"] == 1 and first["balance"] == START + 100
        twice = await env.request(c, {"type": "bonus_claim", "bonus": "daily"})
        assert twice["code"] == ErrorCode.BONUS_CLAIMED
        lst = await env.ok(c, {"type": "bonus_list"})
        assert lst["daily"]["available"] is False and lst["daily"]["streak"] == 1
        env.advance(86_400)
        second = await env.ok(c, {"type": "bonus_claim", "bonus": "daily"})
        assert second["amount"] == 200 and second["streak"] == 2
        env.advance(3 * 86_400)  # a missed day resets the streak
        third = await env.ok(c, {"type": "bonus_claim", "bonus": "daily"})
        assert third["amount"] == 100 and third["streak"] == 1
        assert await env.balance(A7) == START + 400
        await env.check_ledger()

    run(body, rewards_config(daily_login=DailyLogin(rewards=(100, 200, 300))))


def test_bonus_wagering_releases_capped_to_cash_and_keeps_the_ledger():
    async def body(env: Env) -> None:
        c = env.client()
        got = await env.ok(c, {"type": "bonus_claim", "bonus": "welcome"})
        assert got["amount"] == 500 and got["wagering_required"] == 1000 and got["bonus_balance"] == 500
        again = await env.request(c, {"type": "bonus_claim", "bonus": "welcome"})
        assert again["code"] == ErrorCode.BONUS_CLAIMED
        lst = await env.ok(c, {"type": "bonus_list"})
        assert lst["bonus_balance"] == 500 and lst["grants"][0]["status"] == "active"
        assert lst["spending_order"] == "cash_only_locked_bonus"
        cash = await env.balance(A7)
        wagered = 0
        while wagered < 1000:
            r = await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 100})
            wagered += r["stake"]
            await env.settle()
        grants = (await env.ok(c, {"type": "bonus_list"}))["grants"]
        assert grants[0]["status"] == "closed" and grants[0]["wagered"] >= 1000
        assert await env.balance(A7 + ":bonus") == 0
        # released up to max_cashout (400); the excess 100 went back to the house
        spins_net = await env.balance(A7) - cash - 400
        rounds = await env.stores.rounds.history(A7, limit=50)
        assert spins_net == sum(r.win - r.bet for r in rounds)
        await env.check_ledger()

    run(body, rewards_config(bonuses=[OFFER]))


async def crash(env: Env) -> Env:
    """A new casino and rewards service over the same stores, the old ones dropped without
    a drain: what they staged is lost, as in a crash."""
    hub = await _boot(env.config, env.clock, env.stores, SeededRng(99))
    return Env(hub, env.stores, env.clock, env.config)


def _wagered(doc: Any) -> int:
    assert doc is not None
    return int(msgspec.msgpack.decode(doc.body)["wagered"])


def test_bonus_wagering_is_staged_and_caught_up_from_the_ledger_after_a_crash():
    """Wagering progress is written by the flush, not by every round; what a crash loses
    before the flush is counted again from the round records when the grant is next read,
    once; the release is posted once."""

    async def body(env: Env) -> None:
        c = env.client()
        got = await env.ok(c, {"type": "bonus_claim", "bonus": "welcome"})
        grant_doc = f"grant:{got['grant']}"
        env.advance(1)  # rounds after the grant (the grant counts rounds from the next ms)
        staked = 0
        for _ in range(3):
            staked += (await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 100}))["stake"]
        await env.settle()
        assert _wagered(await env.stores.bonuses.get(grant_doc)) == 0  # staged, not written
        assert env.rewards.pending == 1
        lst = await env.ok(c, {"type": "bonus_list"})
        assert lst["grants"][0]["wagered"] == staked  # this worker shows its staged progress
        assert await env.rewards.flush() == 1
        assert _wagered(await env.stores.bonuses.get(grant_doc)) == staked
        for _ in range(2):
            staked += (await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 100}))["stake"]
        await env.settle()
        assert _wagered(await env.stores.bonuses.get(grant_doc)) < staked  # the crash loses these

        env2 = await crash(env)
        c2 = env2.client()
        lst = await env2.ok(c2, {"type": "bonus_list"})
        assert lst["grants"][0]["wagered"] == staked  # caught up from the rounds, once
        assert (await env2.ok(c2, {"type": "bonus_list"}))["grants"][0]["wagered"] == staked
        while staked < 1000:
            staked += (await env2.ok(c2, {"type": "spin", "game": "fruit_slot", "coin": 100}))["stake"]
            await env2.settle()
        grants = (await env2.ok(c2, {"type": "bonus_list"}))["grants"]
        assert grants[0]["status"] == "closed" and grants[0]["wagered"] == staked
        assert await env2.balance(A7 + ":bonus") == 0
        rounds = await env.stores.rounds.history(A7, limit=100)
        assert await env2.balance(A7) == START + sum(r.win - r.bet for r in rounds) + 400  # released once
        await env2.check_ledger()
        await env2.rewards.drain()
        await env2.casino.drain()

    run(body, rewards_config(bonuses=[OFFER]))


def test_bonus_catch_up_reads_past_its_first_page():
    """150 rounds lost in a crash (more than the first page the catch-up reads) all count."""

    async def body(env: Env) -> None:
        c = env.client()
        await env.ok(c, {"type": "bonus_claim", "bonus": "welcome"})
        staked = 0
        for _ in range(150):
            env.advance(0.001)
            staked += (await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 1}))["stake"]
        await env.settle()
        env2 = await crash(env)
        lst = await env2.ok(env2.client(), {"type": "bonus_list"})
        assert lst["grants"][0]["wagered"] == staked == 150
        await env2.rewards.drain()
        await env2.casino.drain()

    run(body, rewards_config(bonuses=[OFFER]))


def test_a_bonus_write_that_fails_is_caught_up_by_the_next_round():
    """The round that completes the requirement cannot write the grant (the database went
    away): nothing is released then; the next round reads the grant again and counts the
    failed round from the round records, so the grant completes and is released once."""

    async def body(env: Env) -> None:
        c = env.client()
        await env.ok(c, {"type": "bonus_claim", "bonus": "welcome"})
        env.advance(1)
        staked = 0
        while staked < 900:
            staked += (await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 100}))["stake"]
        await env.settle()
        staged = env.rewards.bonuses.staged
        real = staged.store

        class Down:
            def __getattr__(self, name: str) -> Any:
                if name == "put":
                    raise StoreUnavailable("down")
                return getattr(real, name)

        staged.store = Down()  # type: ignore[assignment]
        staked += (await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 100}))["stake"]
        await env.settle()  # its handling failed (logged)
        staged.store = real
        assert await env.balance(A7 + ":bonus") == 500 and staked == 1000  # not released
        env.advance(0.001)  # (rounds of one ms are caught up in round id order)
        await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 1})  # 1 more would not complete
        await env.settle()
        grants = (await env.ok(c, {"type": "bonus_list"}))["grants"]
        assert grants[0]["status"] == "closed" and grants[0]["wagered"] == 1000  # the failed round counted
        rounds = await env.stores.rounds.history(A7, limit=100)
        assert await env.balance(A7 + ":bonus") == 0
        assert await env.balance(A7) == START + sum(r.win - r.bet for r in rounds) + 400
        await env.check_ledger()

    run(body, rewards_config(bonuses=[OFFER]))


def test_bonus_progress_written_elsewhere_is_read_again_and_caught_up():
    """A grant another worker wrote meanwhile (a raced handoff) is not overwritten: the
    staged progress is dropped, the grant read again, and the rounds it did not count are
    counted from the round records."""

    async def body(env: Env) -> None:
        c = env.client()
        got = await env.ok(c, {"type": "bonus_claim", "bonus": "welcome"})
        grant_doc = f"grant:{got['grant']}"
        env.advance(1)
        staked = (await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 100}))["stake"]
        await env.settle()
        stored = await env.stores.bonuses.get(grant_doc)
        assert stored is not None
        await env.stores.bonuses.put(stored, expected_version=stored.version)  # the other writer
        assert await env.rewards.flush() == 0 and env.rewards.bonuses.staged.stats.conflicts == 1
        assert _wagered(await env.stores.bonuses.get(grant_doc)) == 0
        staked += (await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 100}))["stake"]
        await env.settle()
        await env.rewards.flush()
        assert _wagered(await env.stores.bonuses.get(grant_doc)) == staked  # both rounds, once each

    run(body, rewards_config(bonuses=[OFFER]))


def test_free_spins_award_plays_rounds_into_the_bonus_balance():
    async def body(env: Env) -> None:
        c = env.client()
        got = await env.ok(c, {"type": "bonus_claim", "bonus": "spins10"})
        assert len(got["spins"]) == 10
        total = sum(s["win"] for s in got["spins"])
        assert got["amount"] == total
        # no wagering: the winnings are released to cash at once
        assert got["balance"] == START + total and got["bonus_balance"] == 0
        rounds = await env.stores.rounds.history(A7, limit=20)
        assert len(rounds) == 10 and all(r.bet == 0 for r in rounds) and sum(r.win for r in rounds) == total
        await env.check_ledger()

    run(body, rewards_config(bonuses=[SPINS]))


def test_deposit_match_and_deposit_limit():
    async def body(env: Env) -> None:
        c = env.client()
        await env.ok(c, {"type": "rg_limit", "kind": "deposit", "period": "day", "amount": 1500})
        got = await env.rewards.bonuses.deposit("demo", A7, 800, "psp-1")
        assert got["granted"] == [{"bonus": "match100", "grant": f"match100@1/{A7}", "amount": 800}]
        assert await env.rewards.bonuses.deposit("demo", A7, 800, "psp-1") == {
            "deposit": "psp-1",
            "duplicate": True,
        }
        assert await env.balance(A7) == START + 800 and await env.balance(A7 + ":bonus") == 800
        try:
            await env.rewards.bonuses.deposit("demo", A7, 800, "psp-2")
        except Exception as exc:
            assert "deposit_limit" in str(exc)
        else:
            raise AssertionError("the daily deposit limit must refuse 1600 > 1500")
        await env.check_ledger()

    run(body, rewards_config(bonuses=[MATCH]))


# -- missions ---------------------------------------------------------------------------------

MISSION = Mission(
    id="spin3", metric="rounds", target=3, reward=250, starts_at=0, ends_at=10**13, period_ms=DAY_MS
)


def test_mission_progress_from_rounds_rewarded_once_per_period():
    async def body(env: Env) -> None:
        c = env.client()
        for _ in range(3):
            await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 1})
        await env.settle()
        view = await env.ok(c, {"type": "mission_progress", "mission": "spin3"})
        assert view["value"] == 3 and view["status"] == "rewarded"
        rounds = await env.stores.rounds.history(A7, limit=10)
        # a duplicate delivery of a round, and more rounds, pay nothing more
        ev = RoundSettled(
            event_id=rounds[0].round_id,
            zone="demo",
            at_ms=int(env.clock.wall() * 1000),
            user_id=7,
            name="u7",
            game="fruit_slot",
            currency="FUN",
            stake=1,
            win=0,
        )
        env.hub.events.publish(ev)
        env.hub.events.publish(ev)
        await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 1})
        await env.settle()
        view = await env.ok(c, {"type": "mission_progress", "mission": "spin3"})
        assert view["value"] == 4
        net = sum(r.win - r.bet for r in await env.stores.rounds.history(A7, limit=10))
        assert await env.balance(A7) == START + net + 250
        # the next day is a new instance
        env.advance(86_400)
        lst = await env.ok(c, {"type": "mission_list"})
        assert lst["missions"][0]["value"] == 0 and lst["missions"][0]["status"] == "active"
        missing = await env.request(c, {"type": "mission_progress", "mission": "nope"})
        assert missing["code"] == ErrorCode.MISSION_NOT_FOUND
        await env.check_ledger()

    run(body, rewards_config(missions=[MISSION]))


def test_rounds_cost_the_rewards_service_nothing_in_a_zone_where_none_counts():
    """A zone with lotteries only (nothing consumes settled rounds) spawns no task per round;
    with a mission, each round is handled once."""

    async def three_spins(env: Env) -> tuple[list[object], Client]:
        """Three spins of one player; the round handlers the rewards service spawned."""
        spawned: list[object] = []
        spawn = env.rewards.spawn

        def counted(coro: Any) -> None:
            if coro.__name__ == "_on_round":  # not the login's
                spawned.append(coro)
            spawn(coro)

        env.rewards.spawn = counted  # type: ignore[method-assign]
        c = env.client()
        for _ in range(3):
            await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 1})
        await env.settle()
        return spawned, c

    async def none_counts(env: Env) -> None:
        spawned, _ = await three_spins(env)
        assert spawned == []

    async def a_mission_counts(env: Env) -> None:
        spawned, c = await three_spins(env)
        assert len(spawned) == 3
        view = await env.ok(c, {"type": "mission_progress", "mission": "spin3"})
        assert view["value"] == 3

    run(none_counts, rewards_config())
    run(a_mission_counts, rewards_config(missions=[MISSION]))


def test_a_rewarded_mission_scores_its_points_on_the_mission_points_board_once():
    """Rewards → leaderboards: a rewarded instance publishes `MissionCompleted` (its reward
    key as the event id) with the mission's points, once; a mission without points does not."""

    async def body(env: Env) -> None:
        seen: list[MissionCompleted] = []
        env.hub.events.subscribe(
            "test", lambda e: seen.append(e) if isinstance(e, MissionCompleted) else None
        )
        boards = Leaderboards(env.hub, env.stores, env.config)
        env.hub.register(boards)
        await boards.start(tick=False)
        c = env.client()
        for _ in range(4):
            await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 1})
        await env.settle()
        period = str(int(env.clock.wall() * 1000) // DAY_MS)
        assert [(e.event_id, e.user_id, e.mission, e.points) for e in seen] == [
            (mission_event_id(f"mission:spin3:{A7}:{period}"), 7, "spin3", 40)
        ]
        view = await env.ok(c, {"type": "mission_progress", "mission": "spin3"})
        assert view["points"] == 40 and view["status"] == "rewarded"
        boards.tick()
        snap = c.send({"type": "leaderboard_snapshot", "board": "missions"})
        assert [(e["user_id"], e["score"]) for e in snap["data"]["snapshot"]["top"]] == [("7", 40)]
        env.advance(86_400)  # the next day's instance scores again
        for _ in range(3):
            await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 1})
        await env.settle()
        boards.tick()
        snap = c.send({"type": "leaderboard_snapshot", "board": "missions"})
        assert [(e["user_id"], e["score"]) for e in snap["data"]["snapshot"]["top"]] == [("7", 80)]
        assert len(seen) == 2
        await boards.drain()

    pointed = msgspec.structs.replace(MISSION, points=40)
    spins5 = Mission(id="spin5", metric="rounds", target=5, reward=10, starts_at=0, ends_at=10**13)
    config = rewards_config(missions=[pointed, spins5])
    board = LeaderboardBoard(metric=Metric.MISSION_POINTS)
    run(
        body,
        msgspec.structs.replace(
            config, leaderboards=LeaderboardsSection(zones={"demo": {"missions": board}})
        ),
    )


def test_mission_progress_is_staged_and_written_by_the_flush():
    """Progress below the target is one write a flush, not one a round; the progress that
    reaches the target is stored before the reward is posted; a graceful stop writes
    what was staged, and a restart reads it back."""

    async def body(env: Env) -> None:
        c = env.client()
        doc_id = f"m:spin3:{A7}:{int(env.clock.wall() * 1000) // DAY_MS}"
        for _ in range(2):
            await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 1})
        await env.settle()
        assert await env.stores.missions.get(doc_id) is None  # staged, not written
        view = await env.ok(c, {"type": "mission_progress", "mission": "spin3"})
        assert (view["value"], view["status"]) == (2, "active")  # this worker reads its own
        real = env.rewards.missions.docs.store

        class Down:  # the database went away: the write fails, a move goes on
            async def put_many(self, docs: object) -> list[object]:
                raise StoreUnavailable("down")

        env.rewards.missions.docs.store = Down()  # type: ignore[assignment]
        await env.rewards.release()  # logs, does not raise
        assert env.rewards.pending == 1 and await env.stores.missions.get(doc_id) is None
        env.rewards.missions.docs.store = real
        assert env.rewards.pending == 1 and await env.rewards.flush() == 1
        stored = await env.stores.missions.get(doc_id)
        assert stored is not None and stored.version == 1 and stored.status == "active"
        await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 1})  # the 3rd: target
        await env.settle()
        stored = await env.stores.missions.get(doc_id)
        assert stored is not None and stored.status == "rewarded" and env.rewards.pending == 0
        await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 1})
        await env.settle()
        assert env.rewards.pending == 1  # progress past the target: staged again
        env2 = await restart(env)  # drains: the staged progress is written
        stored = await env.stores.missions.get(doc_id)
        assert stored is not None and msgspec.msgpack.decode(stored.body)["value"] == 4
        c2 = env2.client()
        view = await env2.ok(c2, {"type": "mission_progress", "mission": "spin3"})
        assert (view["value"], view["status"]) == (4, "rewarded")
        net = sum(r.win - r.bet for r in await env.stores.rounds.history(A7, limit=10))
        assert await env2.balance(A7) == START + net + 250  # rewarded once
        await env2.rewards.drain()
        await env2.casino.drain()

    run(body, rewards_config(missions=[MISSION]))


# -- referrals --------------------------------------------------------------------------------

RULE = ReferralRule(
    min_deposit=0,
    min_wagered=3,
    within_days=30,
    hold_days=2,
    reward_referrer=300,
    reward_referee=100,
    cap_per_period=5,
    require_kyc=False,
)


def test_referral_paid_once_after_activity_and_hold():
    async def body(env: Env) -> None:
        a, b = env.client(7, "10.0.0.7"), env.client(8, "10.1.1.8")
        await env.settle()
        code = (await env.ok(a, {"type": "referral_code"}))["code"]
        own = await env.request(a, {"type": "referral_apply", "code": code})
        assert own["code"] == ErrorCode.REFERRAL_INVALID
        applied = await env.ok(b, {"type": "referral_apply", "code": code})
        assert applied["status"] == "pending"
        twice = await env.request(b, {"type": "referral_apply", "code": code})
        assert twice["code"] == ErrorCode.REFERRAL_EXISTS
        for _ in range(3):
            await env.ok(b, {"type": "spin", "game": "fruit_slot", "coin": 1})
        await env.settle()
        status = await env.ok(a, {"type": "referral_code"})
        assert status["referred"][0]["status"] == "holding"
        before_a = await env.balance(A7)
        env.advance(2 * 86_400 + 1)
        await env.rewards.tick()
        await env.rewards.tick()
        assert await env.balance(A7) == before_a + 300
        status = await env.ok(a, {"type": "referral_code"})
        assert status["referred"][0]["status"] == "paid"
        await env.rewards.tick()
        assert await env.balance(A7) == before_a + 300
        await env.check_ledger()

    run(body, rewards_config(referral=RULE))


def test_a_referees_activity_is_staged_and_the_qualifying_round_decides_at_once():
    """Below the qualifying threshold a round's activity is staged (written by the flush, no
    new decision); a write by another worker meanwhile makes the qualifying round read the
    referral again, not fail; that round is written and decided at once."""

    async def body(env: Env) -> None:
        a, b = env.client(7, "10.0.0.7"), env.client(8, "10.1.1.8")
        await env.settle()
        code = (await env.ok(a, {"type": "referral_code"}))["code"]
        assert (await env.ok(b, {"type": "referral_apply", "code": code}))["status"] == "pending"
        doc_id = f"ref:{account_id('demo', 8)}"
        store = env.stores.referrals

        async def wagered() -> int:
            stored = await store.get(doc_id)
            assert stored is not None
            return int(msgspec.msgpack.decode(stored.body)["activity"]["wagered"])

        for _ in range(2):
            await env.ok(b, {"type": "spin", "game": "fruit_slot", "coin": 1})
        await env.settle()
        assert await wagered() == 0 and env.rewards.pending == 1  # staged
        view = await env.ok(a, {"type": "referral_code"})
        assert view["referred"][0]["status"] == "pending"
        assert await env.rewards.flush() == 1 and await wagered() == 2
        stored = await store.get(doc_id)
        assert stored is not None
        await store.put(stored, expected_version=stored.version)  # another worker's write
        await env.ok(b, {"type": "spin", "game": "fruit_slot", "coin": 1})  # the 3rd: qualifies
        await env.settle()
        stored = await store.get(doc_id)
        assert stored is not None and stored.status == "holding" and await wagered() == 3
        assert env.rewards.pending == 0

    run(body, rewards_config(referral=RULE))


def test_referral_shared_ip_and_ring_are_held_for_review():
    async def body(env: Env) -> None:
        a, b = env.client(7, "10.0.0.7"), env.client(8, "10.0.0.7")  # same address
        await env.settle()
        code = (await env.ok(a, {"type": "referral_code"}))["code"]
        held = await env.ok(b, {"type": "referral_apply", "code": code})
        assert held == {"status": "held_for_review", "reason": "shared_ip", "release_at": None}
        # a ring: 9 referred by 10, 10 by 11, then 11 tries to be referred by 9
        c9, c10, c11 = env.client(9, "10.9.0.1"), env.client(10, "10.10.0.1"), env.client(11, "10.11.0.1")
        await env.settle()
        k9 = (await env.ok(c9, {"type": "referral_code"}))["code"]
        k10 = (await env.ok(c10, {"type": "referral_code"}))["code"]
        k11 = (await env.ok(c11, {"type": "referral_code"}))["code"]
        assert (await env.ok(c9, {"type": "referral_apply", "code": k10}))["status"] == "pending"
        assert (await env.ok(c10, {"type": "referral_apply", "code": k11}))["status"] == "pending"
        ring = await env.ok(c11, {"type": "referral_apply", "code": k9})
        assert ring["status"] == "held_for_review" and ring["reason"] == "referral_ring"

    run(body, rewards_config(referral=RULE))


# -- responsible gaming -----------------------------------------------------------------------


def test_limits_timeout_and_self_exclusion_are_applied_and_persisted():
    async def body(env: Env) -> None:
        c = env.client()
        st = await env.ok(c, {"type": "rg_limit", "kind": "wager", "period": "day", "amount": 3})
        assert st["limits"] == [
            {
                "kind": "wager",
                "period": "day",
                "amount": 3,
                "pending": None,
                "pending_at": None,
                "needs_confirmation": False,
            }
        ]
        for _ in range(3):
            await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 1})
        refused = await env.request(c, {"type": "spin", "game": "fruit_slot", "coin": 1})
        assert refused["code"] == ErrorCode.POLICY_REFUSED and "wager_limit" in refused["message"]
        # an increase waits for the cooling-off period
        up = await env.ok(c, {"type": "rg_limit", "kind": "wager", "period": "day", "amount": 100})
        assert up["limits"][0]["amount"] == 3 and up["limits"][0]["pending"] == 100
        bad = await env.request(c, {"type": "rg_timeout", "seconds": 5})
        assert bad["code"] == ErrorCode.LIMIT_INVALID
        await env.ok(c, {"type": "rg_timeout", "seconds": 86_400})
        t = await env.request(c, {"type": "lottery_buy", "lottery": "quick_3of10", "tickets": [[1, 2, 3]]})
        assert t["code"] == ErrorCode.POLICY_REFUSED and "timeout" in t["message"]
        env.advance(86_400 + 1)
        assert (await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 1}))["stake"] == 1
        no = await env.request(c, {"type": "rg_exclude", "seconds": 182 * 86_400})
        assert no["code"] == ErrorCode.LIMIT_INVALID  # needs the positive confirmation
        ex = await env.ok(c, {"type": "rg_exclude", "seconds": 182 * 86_400, "confirm": True})
        assert ex["self_excluded"] is True
        # restart: the exclusion is persisted and applied by the casino
        env2 = await restart(env)
        c2 = env2.client()
        spin = await env2.request(c2, {"type": "spin", "game": "fruit_slot", "coin": 1})
        assert spin["code"] == ErrorCode.POLICY_REFUSED and "self_excluded" in spin["message"]
        claim = await env2.request(c2, {"type": "bonus_claim", "bonus": "daily"})
        assert claim["code"] == ErrorCode.POLICY_REFUSED
        early = await env2.request(c2, {"type": "rg_reactivate"})
        assert early["code"] == ErrorCode.NOT_EXCLUDED
        env2.advance(182 * 86_400 + 1)
        still = await env2.request(c2, {"type": "spin", "game": "fruit_slot", "coin": 1})
        assert still["code"] == ErrorCode.POLICY_REFUSED  # never ends by itself
        back = await env2.ok(c2, {"type": "rg_reactivate"})
        assert back["self_excluded"] is False
        assert (await env2.ok(c2, {"type": "spin", "game": "fruit_slot", "coin": 1}))["stake"] == 1

    run(body, rewards_config(daily_login=DailyLogin(rewards=(100,))))


def test_scheduled_offer_is_claimable_only_inside_its_window():
    start_ms = int(T0 * 1000) + DAY_MS
    promo = msgspec.structs.replace(
        OFFER, id="weekend", available_from=start_ms, available_until=start_ms + DAY_MS
    )

    async def body(env: Env) -> None:
        c = env.client()
        assert (await env.ok(c, {"type": "bonus_list"}))["offers"] == []
        early = await env.request(c, {"type": "bonus_claim", "bonus": "weekend"})
        assert early["code"] == ErrorCode.BONUS_NOT_FOUND
        env.advance(86_400)
        assert (await env.ok(c, {"type": "bonus_list"}))["offers"][0]["bonus"] == "weekend"
        assert (await env.ok(c, {"type": "bonus_claim", "bonus": "weekend"}))["amount"] == 500
        env.advance(86_400)
        assert (await env.ok(c, {"type": "bonus_list"}))["offers"] == []

    run(body, rewards_config(bonuses=[promo]))


def test_a_lottery_schedule_starts_and_ends_at_its_configured_times():
    start = int(T0) + 7200  # two hours after the clock's start, then hourly draws for two hours
    sched = LotterySchedule(game="quick_3of10", period_s=3600, cutoff_s=60, start_s=start, end_s=start + 7200)

    async def body(env: Env) -> None:
        c = env.client()
        assert (await env.ok(c, {"type": "lottery_list"}))["lotteries"][0]["draw"] is None
        env.advance(7200)
        await env.rewards.tick()
        first = (await env.ok(c, {"type": "lottery_list"}))["lotteries"][0]["draw"]
        assert first is not None and first["opens_at"] == start * 1000
        env.advance(3600)
        await env.rewards.tick()
        second = (await env.ok(c, {"type": "lottery_list"}))["lotteries"][0]
        assert second["draw"]["draw"] != first["draw"] and second["last_draw"] == first["draw"]
        env.advance(3600)
        await env.rewards.tick()
        over = (await env.ok(c, {"type": "lottery_list"}))["lotteries"][0]
        assert over["draw"] is None and over["last_draw"] == second["draw"]["draw"]

    run(body, rewards_config(lotteries=[sched]))


def test_session_limit_and_reality_checks():
    async def body(env: Env) -> None:
        c = env.client()
        st = await env.ok(c, {"type": "rg_session", "limit_s": 3600, "reality_check_s": 600})
        assert st["session"]["limit_s"] == 3600 and st["session"]["reality_check_s"] == 600
        spin = await env.ok(c, {"type": "spin", "game": "fruit_slot", "coin": 5})
        env.advance(300)
        await env.rewards.tick()
        env.hub.flush()
        assert c.link.events("reality_check") == []  # not yet
        env.advance(301)
        await env.rewards.tick()
        await env.rewards.tick()  # once per interval
        env.hub.flush()
        (check,) = c.link.events("reality_check")
        assert check["data"]["elapsed_s"] >= 600 and check["data"]["net"] == spin["win"] - spin["stake"]
        env.advance(3000)
        refused = await env.request(c, {"type": "spin", "game": "fruit_slot", "coin": 5})
        assert refused["code"] == ErrorCode.POLICY_REFUSED and "session_limit" in refused["message"]
        c.send({"type": "logout"})
        await env.settle()
        c2 = env.client()  # a new session
        assert (await env.ok(c2, {"type": "spin", "game": "fruit_slot", "coin": 5}))["stake"] == 5

    run(body)
