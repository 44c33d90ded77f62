"""Pick-a-box over the protocol: one round per ledger path, decisions stored, INT-4 time-out."""

from __future__ import annotations

import asyncio
import itertools
from fractions import Fraction
from typing import Any

import msgspec
import pytest

from games.bonus import BonusTemplate
from games.catalog import read_catalog
from games.minigames.pick import PickConfig, PickState, auto_pick, open_box, pick_expected_credits
from gameserver.casino import request_error
from gameserver.config import Config
from gameserver.rewards.picks import PickRoundState, bonus_credits, expected_bonus_credits, prize_total
from gameserver.router import LocalRouter
from persistence import RoundChanged, RoundConflict
from protocol.codes import ErrorCode

from .test_rewards import A7, DAY_MS, START, Env, restart, rewards_config, run

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


def test_the_scheduler_reads_a_round_only_once_its_decision_is_due():
    """Open rounds cost the store nothing per tick until their decision is due; a decision
    moves the due time."""

    async def body(env: Env) -> None:
        c = env.client()
        start = await env.ok(c, {"type": "pick_start", "game": "pick_a_box", "coin": 1})
        rounds = env.stores.rounds
        reads: list[str] = []
        get_round = rounds.get_round

        async def counted(round_id: str) -> Any:
            reads.append(round_id)
            return await get_round(round_id)

        rounds.get_round = counted  # type: ignore[method-assign]
        for _ in range(5):
            env.advance(600)
            await env.rewards.tick()
        assert reads == []  # 3,000 s of 3,600: not due
        await env.ok(c, {"type": "pick_open", "round": start["round"], "box": 1})
        reads.clear()
        env.advance(3000)
        await env.rewards.tick()
        assert reads == []  # due 3,600 s after the decision, not after the start
        env.advance(601)
        await env.rewards.tick()
        assert reads == [start["round"]]
        rec = await get_round(start["round"])
        assert rec is not None and rec.status == "settled"

    run(body, pick_config())


class Elsewhere(LocalRouter):
    """The ownership of a cluster in which every player's home is another worker."""

    def owns_user(self, zone: str, user_id: int) -> bool:
        return False


def test_a_round_abandoned_before_a_restart_by_a_player_who_never_returns_is_finished():
    """INT-4 without a login: the restarted scheduler finds the overdue round in the store."""

    async def body(env: Env) -> None:
        c = env.client()
        start = await env.ok(c, {"type": "pick_start", "game": "pick_a_box", "coin": 1})
        await env.ok(c, {"type": "pick_open", "round": start["round"], "box": 2})
        c.drop()
        env2 = await restart(env)  # nobody logs in again
        await env2.rewards.tick()
        rec = await env2.stores.rounds.get_round(start["round"])
        assert rec is not None and rec.status == "open"  # not overdue yet
        env2.advance(3600 + 61)  # past the timeout, and past the next sweep
        await env2.rewards.tick()  # the sweep finds it ...
        await env2.rewards.tick()  # ... (a tick later at the latest) and the default finishes it
        rec = await env2.stores.rounds.get_round(start["round"])
        assert rec is not None and rec.status == "settled"
        opened = msgspec.msgpack.decode(rec.state)["pick"]["opened"]
        assert opened[0] == 2 and opened[1:] == sorted(opened[1:])
        assert await env2.balance(A7) == START - PICK.cost + rec.win
        env2.advance(120)
        await env2.rewards.tick()
        assert await env2.balance(A7) == START - PICK.cost + rec.win  # once
        await env2.check_ledger()
        metrics = {f.name: f.samples[0].value for f in env2.rewards.metric_families()}
        assert metrics["croupier_pick_auto_finished"] == 1 and metrics["croupier_pick_rounds_open"] == 0
        assert metrics["croupier_rewards_tick_failures"] == 0 and metrics["croupier_rewards_staged"] == 0

    run(body, pick_config())


def test_only_the_players_home_worker_finishes_an_overdue_round():
    """A worker that is not the player's home leaves the round to that one: neither a round it
    started itself before the player moved nor one its sweep reads is finished there."""

    async def body(env: Env) -> None:
        c = env.client()
        start = await env.ok(c, {"type": "pick_start", "game": "pick_a_box", "coin": 1})
        env.hub.router = Elsewhere(env.hub)  # the ring changed: the player's home is elsewhere
        env.advance(3600 + 61)
        await env.rewards.tick()  # a sweep, and the round started here
        await env.rewards.tick()
        rec = await env.stores.rounds.get_round(start["round"])
        assert rec is not None and rec.status == "open"
        assert await env.balance(A7) == START - PICK.cost
        env.hub.router = LocalRouter(env.hub)  # this worker is the home again
        await env.rewards.tick()  # forgotten here: only the next sweep finds it again
        rec = await env.stores.rounds.get_round(start["round"])
        assert rec is not None and rec.status == "open"
        env.advance(61)
        await env.rewards.tick()
        await env.rewards.tick()
        rec = await env.stores.rounds.get_round(start["round"])
        assert rec is not None and rec.status == "settled"
        assert await env.balance(A7) == START - PICK.cost + rec.win

    run(body, pick_config())


def test_a_default_computed_from_a_stale_round_is_refused_and_the_players_box_kept():
    """Another writer (the player, on the worker that is now the home) opened a box after the
    scheduler read the round: the scheduler's default is refused, nothing is posted, and the
    next tick decides from the stored round."""

    async def body(env: Env) -> None:
        c = env.client()
        start = await env.ok(c, {"type": "pick_start", "game": "pick_a_box", "coin": 1})
        stale = await env.stores.rounds.get_round(start["round"])
        assert stale is not None
        env.advance(1)
        await env.ok(c, {"type": "pick_open", "round": start["round"], "box": 7})
        picks = env.rewards.picks
        zr = env.rewards.zones["demo"]
        config = picks.games["demo"]["pick_a_box"]
        st = msgspec.msgpack.decode(stale.state, type=PickRoundState)
        auto = auto_pick(config, st.pick)
        with pytest.raises(RoundChanged):
            await picks._advance(zr, config, stale, st, auto, f"{stale.round_id}:auto", ["pick_auto"])
        assert await env.balance(A7) == START - PICK.cost
        rec = await env.stores.rounds.get_round(start["round"])
        assert rec is not None and msgspec.msgpack.decode(rec.state)["pick"]["opened"] == [7]
        env.advance(3600 + 61)
        await env.rewards.tick()
        rec = await env.stores.rounds.get_round(start["round"])
        assert rec is not None and rec.status == "settled"
        assert msgspec.msgpack.decode(rec.state)["pick"]["opened"][0] == 7
        assert await env.balance(A7) == START - PICK.cost + rec.win
        await env.check_ledger()

    run(body, pick_config())


def test_a_round_changed_meanwhile_is_busy_on_the_wire():
    """The wire outcome of RoundChanged: 8 `busy` (retry with the same id), nothing posted."""
    exc = request_error(RoundChanged("k", "round 'r' was written after it was read"), "pick_open")
    assert exc.code == ErrorCode.BUSY and "retry" in str(exc)
    assert request_error(RoundConflict("k", "settled"), "x").code == ErrorCode.ROUND_COMPLETE


MINI_BONUS = BonusTemplate(
    id="minigame",
    version="1",
    type="no_deposit",
    wagering_multiple=2,
    contribution_bp={"slots": 10_000},
    expiry_ms=DAY_MS,
    game_id="fruit_slot",  # free-spin prizes are played here, at this coin
    coin=5,
)
BONUS_PICK = msgspec.json.decode(read_catalog("pick_a_bonus"), type=PickConfig)


def test_expected_bonus_credits_are_exact_over_every_layout():
    """Averaged over all 7! layouts (a fixed strategy: boxes 0, 1, 2), bonus and cash prizes
    equal the closed forms."""
    cash = bonus = spins = Fraction(0)
    layouts = list(itertools.permutations(range(len(BONUS_PICK.prizes))))
    for layout in layouts:
        state = PickState(coin=1, layout=layout)
        while not state.done:
            state = open_box(BONUS_PICK, state, len(state.opened))
        cash += sum(BONUS_PICK.prizes[layout[b]].credits for b in state.opened)
        bonus += bonus_credits(BONUS_PICK, state)
        spins += prize_total(BONUS_PICK, state, "free_spins")
    assert cash / len(layouts) == pick_expected_credits(BONUS_PICK)
    assert bonus / len(layouts) == expected_bonus_credits(BONUS_PICK)
    assert spins / len(layouts) == expected_bonus_credits(BONUS_PICK, "free_spins")


def test_bonus_prizes_go_to_the_bonus_balance_with_wagering():
    async def body(env: Env) -> None:
        c = env.client()
        won_bonus = spins = 0
        for _ in range(8):
            start = await env.ok(c, {"type": "pick_start", "game": "pick_a_bonus", "coin": 5})
            box, r = 0, {"complete": False}
            while not r["complete"]:
                r = await env.ok(c, {"type": "pick_open", "round": start["round"], "box": box})
                box += 1
            won_bonus += r["bonus"]
            spins += r["free_spins"]
        assert won_bonus > 0 and spins > 0, "eight rounds of three picks (seeded RNG)"
        free = [r for r in await env.stores.rounds.history(A7, limit=100) if r.bet == 0]
        assert len(free) == spins and all(r.game_id == "fruit_slot" for r in free)
        won_bonus += sum(r.win for r in free)  # free-spin wins go to the bonus balance too
        assert await env.balance(A7 + ":bonus") == won_bonus
        grants = (await env.ok(c, {"type": "bonus_list"}))["grants"]
        assert len(grants) == 1 and grants[0]["status"] == "active"  # later prizes join the first grant
        assert grants[0]["amount"] == won_bonus and grants[0]["wagering_required"] == 2 * won_bonus
        await env.check_ledger()

    run(body, rewards_config(pick_games=["pick_a_bonus"], minigame_bonus=MINI_BONUS))


def test_free_spin_prizes_need_a_game_on_the_zone_terms():
    terms = msgspec.structs.replace(MINI_BONUS, game_id=None)
    try:
        run(lambda env: asyncio.sleep(0), rewards_config(pick_games=["pick_a_bonus"], minigame_bonus=terms))
    except ValueError as exc:
        assert "free-spin" in str(exc)
    else:
        raise AssertionError("free-spin prizes need a game to be played on")


def test_bonus_prizes_need_the_zone_terms():
    try:
        run(lambda env: asyncio.sleep(0), rewards_config(pick_games=["pick_a_bonus"]))
    except ValueError as exc:
        assert "minigame_bonus" in str(exc)
    else:
        raise AssertionError("a pick game with bonus prizes needs rewards.minigame_bonus")
