"""Ledger reconciliation under a random mix of rewards and casino operations: retries,
duplicate ticks and restarts never pay twice, and every balance equals its ledger sum."""

from __future__ import annotations

import random
from typing import Any

import pytest

from games.bonus import DailyLogin
from games.missions import Mission
from gameserver.casino import account_id
from gameserver.config import LotterySchedule
from persistence import PostingKind

from .test_rewards import DAY_MS, OFFER, Env, restart, rewards_config, run

USERS = (7, 8, 9)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations_keep_the_ledger_and_pay_each_prize_once(seed: int) -> None:
    rnd = random.Random(seed)
    config = rewards_config(
        lotteries=[LotterySchedule(game="quick_3of10", period_s=600, cutoff_s=30)],
        daily_login=DailyLogin(rewards=(100, 200)),
        bonuses=[OFFER],
        missions=[
            Mission(
                id="m", metric="rounds", target=5, reward=50, starts_at=0, ends_at=10**13, period_ms=DAY_MS
            )
        ],
        pick_games=["pick_a_box"],
    )

    async def body(env: Env) -> None:
        clients = {u: env.client(u, f"10.0.0.{u}") for u in USERS}
        sent: list[tuple[int, dict[str, Any]]] = []
        for _ in range(150):
            user = rnd.choice(USERS)
            op = rnd.random()
            if op < 0.3:
                req: dict[str, Any] = {"type": "spin", "game": "fruit_slot", "coin": rnd.choice([1, 5])}
            elif op < 0.5:
                tickets = [sorted(rnd.sample(range(1, 11), 3)) for _ in range(rnd.randint(1, 2))]
                req = {"type": "lottery_buy", "lottery": "quick_3of10", "tickets": tickets}
            elif op < 0.6:
                req = {"type": "bonus_claim", "bonus": rnd.choice(["daily", "welcome"])}
            elif op < 0.65:
                req = {"type": "pick_start", "game": "pick_a_box", "coin": 1}
            elif op < 0.75 and sent:
                user, req = rnd.choice(sent)  # a retry of an earlier request, same id
                await env.request(clients[user], dict(req))
                continue
            elif op < 0.9:
                env.advance(rnd.choice([30, 120, 400]))
                await env.rewards.tick()
                if rnd.random() < 0.3:
                    await env.rewards.tick()  # a duplicate tick
                continue
            else:
                env = await restart(env)
                clients = {u: env.client(u, f"10.0.0.{u}") for u in USERS}
                sent.clear()  # request ids are per session
                continue
            r = await env.request(clients[user], req)
            sent.append((user, {**req, "id": r["id"]}))
            await env.settle()
        env.advance(3 * 86_400)  # every pick round times out, every draw is due
        await env.rewards.tick()
        await env.rewards.tick()
        await env.settle()
        await env.check_ledger()
        # each winning ticket of every draw was paid exactly once, for its amount
        paid: dict[str, int] = {}
        for u in USERS:
            for p in await env.stores.wallet.postings(account_id("demo", u), "FUN", limit=10_000):
                if p.kind == PostingKind.PRIZE:
                    assert p.txn_key not in paid, "a prize was paid twice"
                    paid[p.txn_key] = p.amount
        expected: dict[str, int] = {}
        docs = await env.stores.lotteries.by_owner("draws:demo:quick_3of10")
        assert sum(d.status == "paid" for d in docs) >= 2
        for doc in docs:
            if doc.status == "open":  # the draw on sale now
                continue
            ver = await env.ok(
                clients[USERS[0]], {"type": "lottery_verify", "draw": doc.id.removeprefix("draw:")}
            )
            assert ver["verified"]
            for w in ver["result"]["wins"]:
                if w["amount"]:
                    expected[f"lottery:{ver['draw']['draw_id']}:{w['ticket_id']}"] = w["amount"]
        assert expected and paid == expected

    run(body, config)
