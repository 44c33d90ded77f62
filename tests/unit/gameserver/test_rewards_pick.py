"""Pick-a-box over the protocol: one round per ledger path, decisions stored, INT-4 time-out."""

from __future__ import annotations

from fractions import Fraction

import msgspec

from games.catalog import read_catalog
from games.minigames.pick import PickConfig, pick_expected_credits
from gameserver.config import Config
from protocol.codes import ErrorCode

from .test_rewards import A7, START, Env, restart, rewards_config, run

PICK = msgspec.json.decode(read_catalog("pick_a_box"), type=PickConfig)


def pick_config() -> Config:
    return rewards_config(pick_games=["pick_a_box"], pick_timeout_s=3600)


def test_pick_round_settles_once_with_the_stored_layout():
    async def body(env: Env) -> None:
        c = env.client()
        info = await env.ok(c, {"type": "pick_info"})
        (g,) = info["games"]
        assert Fraction(g["rtp_exact"]) == pick_expected_credits(PICK) / PICK.cost
        assert g["boxes"] == 8 and g["picks"] == 3 and info["timeout_s"] == 3600
        start = await env.ok(c, {"type": "pick_start", "game": "pick_a_box", "coin": 5, "id": 40})
        assert start["stake"] == 90 and start["balance"] == START - 90 and not start["complete"]
        assert await env.ok(c, {"type": "pick_start", "game": "pick_a_box", "coin": 5, "id": 40}) == start
        busy = await env.request(c, {"type": "pick_start", "game": "pick_a_box", "coin": 5})
        assert busy["code"] == ErrorCode.ROUND_IN_PROGRESS
        bal = await env.ok(c, {"type": "balance"})
        assert [r["round"] for r in bal["open_rounds"]] == [start["round"]]
        rid, box, last = start["round"], 0, None
        while True:
            r = await env.ok(c, {"type": "pick_open", "round": rid, "box": box, "id": 100 + box})
            assert r["box"] == box and box in r["opened"]
            again = await env.ok(c, {"type": "pick_open", "round": rid, "box": box, "id": 100 + box})
            assert again["step"] == r["step"]
            last = r
            if r["complete"]:
                break
            box += 1
        shut = await env.request(c, {"type": "pick_open", "round": rid, "box": 7})
        assert shut["code"] == ErrorCode.ROUND_COMPLETE
        rec = await env.stores.rounds.get_round(rid)
        assert rec is not None and rec.status == "settled" and rec.win == last["win"]
        assert await env.balance(A7) == START - 90 + last["win"] == last["balance"]
        hist = await env.ok(c, {"type": "history", "limit": 1})
        assert hist["rounds"][0]["round"] == rid and len(hist["rounds"][0]["steps"]) == len(last["opened"])
        assert (await env.ok(c, {"type": "balance"}))["open_rounds"] == []
        await env.check_ledger()

    run(body, pick_config())


def test_abandoned_pick_is_finished_by_the_default_after_the_timeout_even_across_a_restart():
    async def body(env: Env) -> None:
        c = env.client()
        start = await env.ok(c, {"type": "pick_start", "game": "pick_a_box", "coin": 1})
        await env.ok(c, {"type": "pick_open", "round": start["round"], "box": 5})
        env.advance(3000)
        await env.rewards.tick()
        rec = await env.stores.rounds.get_round(start["round"])
        assert rec is not None and rec.status == "open"  # not yet overdue: the clock restarted at the pick
        env2 = await restart(env)
        c.drop()
        env2.client()  # the player logs in again on the restarted server
        await env2.settle()
        env2.advance(3600)
        await env2.rewards.tick()
        rec = await env2.stores.rounds.get_round(start["round"])
        assert rec is not None and rec.status == "settled"
        st = msgspec.msgpack.decode(rec.state)
        opened = st["pick"]["opened"]
        assert opened[0] == 5 and opened[1:] == sorted(opened[1:])  # then the lowest boxes, in order
        assert await env2.balance(A7) == START - PICK.cost + rec.win
        await env2.rewards.tick()
        assert await env2.balance(A7) == START - PICK.cost + rec.win
        await env2.check_ledger()

    run(body, pick_config())
