"""Rewards over real sockets against a SQLite file: a scheduled lottery draw (commit-reveal,
verified by the client), prizes once across a restart, the daily bonus, a mission, a
referral held for review, and responsible-gaming settings that survive a restart."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from pathlib import Path
from typing import Any

import msgspec

from games.bonus import DailyLogin
from games.lottery import Draw, DrawResult, LotteryConfig, Ticket, verify_draw
from games.missions import Mission
from games.referral import ReferralRule
from gameserver.casino import account_id
from gameserver.config import CasinoSection, CasinoZone, Config, LotterySchedule, RewardsZone, StoreSection
from protocol.codes import ErrorCode
from protocol.sfs2x import Action, PacketReader, SFSArray, SFSObject, decode_packet_message, encode_frame
from protocol.sfs2x.messages import extension_request, handshake_request, login_request
from tests.contract.conftest import mysql_url  # noqa: F401 - the session database fixture

from .client import WsClient
from .conftest import Running, running_server, server_config
from .test_casino import FAST, login, on_server, stores_of

START = 10_000
TICKETS = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 5, 10]]  # every number is on some ticket


def rewards_server_config(url: str) -> Config:
    base = server_config("picows", flood=FAST)
    rewards = RewardsZone(
        lotteries=[LotterySchedule(game="quick_3of10", period_s=3, cutoff_s=1)],
        daily_login=DailyLogin(rewards=(50, 100)),
        missions=[Mission(id="spin2", metric="rounds", target=2, reward=75, starts_at=0, ends_at=10**13)],
        referral=ReferralRule(
            min_deposit=0,
            min_wagered=1,
            within_days=30,
            hold_days=1,
            reward_referrer=300,
            reward_referee=100,
            cap_per_period=5,
            require_kyc=False,
        ),
        tick_s=0.1,
    )
    zone = CasinoZone(games={"fruit_slot": "96.5"}, currency="FUN", starting_balance=START, rewards=rewards)
    return msgspec.structs.replace(
        base, store=StoreSection(url=url, commit_timeout=3.0), casino=CasinoSection(zones={"demo": zone})
    )


def ledger_ok(r: Running) -> None:
    async def check() -> None:
        assert set((await stores_of(r).wallet.ledger_totals()).values()) <= {0}
        assert await stores_of(r).wallet.balance_mismatches() == []

    on_server(r, check())


def prize_postings(r: Running, accounts: list[str]) -> int:
    async def count() -> int:
        n = 0
        for a in accounts:
            n += sum(1 for p in await stores_of(r).wallet.postings(a, "FUN", limit=1000) if p.kind == "prize")
        return n

    return on_server(r, count())


async def open_draw(c: WsClient) -> dict[str, Any]:
    """The draw on sale with at least 0.8 s of sales left."""
    for _ in range(100):
        lot = (await c.request("lottery_list"))["data"]["lotteries"][0]
        draw = lot["draw"]
        if draw is not None and draw["cutoff_at"] - time.time() * 1000 > 800:
            return draw  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError("no draw on sale")


async def results(c: WsClient, draw_id: str) -> dict[str, Any]:
    """The draw's results once drawn and every prize credited."""
    for _ in range(100):
        r = await c.request("lottery_results", lottery="quick_3of10", draw=draw_id)
        if r["type"] == "ok" and r["data"]["paid"]:
            return r["data"]  # type: ignore[no-any-return]
        if r["type"] == "ok":
            await asyncio.sleep(0.05)
            continue
        assert r["code"] == ErrorCode.DRAW_PENDING, r
        await asyncio.sleep(0.1)
    raise AssertionError("the draw did not happen")


def test_lottery_draw_verified_by_the_client_and_paid_once_across_a_restart(tmp_path: Path) -> None:
    lottery_draw_and_restart(f"sqlite:///{tmp_path}/r.db", 7)


def test_lottery_draw_on_mysql(mysql_url: str) -> None:  # noqa: F811
    lottery_draw_and_restart(mysql_url, 70_000 + secrets.randbelow(10_000))


def lottery_draw_and_restart(url: str, user: int) -> None:
    config = rewards_server_config(url)
    a7 = account_id("demo", user)
    with running_server(config) as r:

        async def play() -> dict[str, Any]:
            c, _ = await login(r.ws_url, user)
            try:
                draw = await open_draw(c)
                bought = await c.request("lottery_buy", lottery="quick_3of10", tickets=TICKETS, key="buy-1")
                assert bought["type"] == "ok", bought
                assert bought["data"]["balance"] == START - 400
                again = await c.request("lottery_buy", lottery="quick_3of10", tickets=TICKETS, key="buy-1")
                assert again == {**bought, "id": again["id"]}
                res = await results(c, draw["draw"])
                assert hashlib.sha256(bytes.fromhex(res["seed"])).hexdigest() == draw["commitment"]
                ver = (await c.request("lottery_verify", draw=draw["draw"]))["data"]
                # the client checks the draw itself from what was published
                config = msgspec.convert(ver["lottery"], LotteryConfig)
                ok = verify_draw(
                    config,
                    msgspec.convert(ver["draw"], Draw),
                    msgspec.convert(ver["result"], DrawResult),
                    [msgspec.convert(t, Ticket) for t in ver["tickets"]],
                )
                assert ok and ver["verified"]
                assert res["my_prize"] > 0  # one of the tickets holds each number
                bal = (await c.request("balance"))["data"]["balance"]
                assert bal == START - 400 + res["my_prize"]
                return res
            finally:
                await c.close()

        res = asyncio.run(play())
        ledger_ok(r)
        paid = prize_postings(r, [a7])
        assert paid == sum(1 for t in res["my_tickets"] if t["prize"] > 0)
    with running_server(config) as r2:

        async def after() -> None:
            c, _ = await login(r2.ws_url, user)
            try:
                again = await c.request("lottery_results", lottery="quick_3of10", draw=res["draw"])
                assert again["data"]["numbers"] == res["numbers"]
                assert (await c.request("balance"))["data"]["balance"] == START - 400 + res["my_prize"]
            finally:
                await c.close()

        asyncio.run(after())
        time.sleep(0.3)  # a few scheduler ticks
        assert prize_postings(r2, [a7]) == paid
        ledger_ok(r2)


def test_bonus_mission_referral_and_limits_over_sockets(tmp_path: Path) -> None:
    config = rewards_server_config(f"sqlite:///{tmp_path}/r.db")
    with running_server(config) as r:

        async def body() -> None:
            a, _ = await login(r.ws_url, 21)
            b, _ = await login(r.ws_url, 22)
            try:
                daily = await a.request("bonus_claim", bonus="daily")
                assert daily["data"]["amount"] == 50 and daily["data"]["balance"] == START + 50
                assert (await a.request("bonus_claim", bonus="daily"))["code"] == ErrorCode.BONUS_CLAIMED
                for _ in range(2):
                    assert (await a.request("spin", game="fruit_slot", coin=1))["type"] == "ok"
                view = {}
                for _ in range(50):
                    view = (await a.request("mission_progress", mission="spin2"))["data"]
                    if view["status"] == "rewarded":
                        break
                    await asyncio.sleep(0.05)
                assert view["value"] == 2 and view["status"] == "rewarded"
                code = (await a.request("referral_code"))["data"]["code"]
                # both players connect from 127.0.0.1: linked accounts are held for review
                held = await b.request("referral_apply", code=code)
                assert held["data"]["status"] == "held_for_review" and held["data"]["reason"] == "shared_ip"
                lim = await b.request("rg_limit", kind="loss", period="day", amount=0)
                assert lim["data"]["limits"][0]["amount"] == 0
                refused = await b.request("spin", game="fruit_slot", coin=1)
                assert refused["code"] == ErrorCode.POLICY_REFUSED and "loss_limit" in refused["message"]
                # a wager limit counts the rounds played before it was set (the round history)
                assert (await a.request("rg_limit", kind="wager", period="day", amount=3))["type"] == "ok"
                assert (await a.request("spin", game="fruit_slot", coin=1))["type"] == "ok"
                over = await a.request("spin", game="fruit_slot", coin=1)
                assert over["code"] == ErrorCode.POLICY_REFUSED and "wager_limit" in over["message"]
            finally:
                await a.close()
                await b.close()

        asyncio.run(body())
        ledger_ok(r)
    with running_server(config) as r2:

        async def after() -> None:
            a, _ = await login(r2.ws_url, 21)
            b, _ = await login(r2.ws_url, 22)
            try:
                status = (await b.request("rg_status"))["data"]
                assert status["limits"][0]["kind"] == "loss" and status["limits"][0]["amount"] == 0
                refused = await b.request("spin", game="fruit_slot", coin=1)
                assert refused["code"] == ErrorCode.POLICY_REFUSED
                # after the restart the wager window is rebuilt from the stored rounds
                again = await a.request("spin", game="fruit_slot", coin=1)
                assert again["code"] == ErrorCode.POLICY_REFUSED and "wager_limit" in again["message"]
                assert (await a.request("rg_status"))["data"]["activity"]["day"]["wagered"] == 3
            finally:
                await a.close()
                await b.close()

        asyncio.run(after())


def test_pick_round_survives_a_reconnect_and_a_restart(tmp_path: Path) -> None:
    """INT-1/INT-2 over sockets: an open pick round is listed after a new login, blocks a second
    round of the game, and continues from the stored layout after a server restart."""
    base = rewards_server_config(f"sqlite:///{tmp_path}/p.db")
    zone = msgspec.structs.replace(
        base.casino.zones["demo"],
        rewards=msgspec.structs.replace(
            base.casino.zones["demo"].rewards, pick_games=["pick_a_box"], missions=[]
        ),  # no mission rewards in the balance arithmetic below
    )
    config = msgspec.structs.replace(base, casino=msgspec.structs.replace(base.casino, zones={"demo": zone}))
    with running_server(config) as r:

        async def begin() -> dict[str, Any]:
            c, _ = await login(r.ws_url, 31)
            try:
                for n in range(20):  # until a first pick does not end the round (2 of 8 boxes do)
                    start = await c.request("pick_start", game="pick_a_box", coin=5, key=f"pick-{n}")
                    assert start["type"] == "ok", start
                    first = await c.request("pick_open", round=start["data"]["round"], box=4)
                    assert first["type"] == "ok" and first["data"]["opened"] == [4]
                    if not first["data"]["complete"]:
                        return {
                            "start": start["data"],
                            "first": first["data"],
                            "key": f"pick-{n}",
                            "rounds": n,
                        }
                raise AssertionError("every first pick ended its round")
            finally:
                await c.close()

        opened = asyncio.run(begin())
    rid = opened["start"]["round"]
    with running_server(config) as r2:

        async def resume() -> None:
            c, _ = await login(r2.ws_url, 31)
            try:
                bal = (await c.request("balance"))["data"]
                assert [o["round"] for o in bal["open_rounds"]] == [rid]
                busy = await c.request("pick_start", game="pick_a_box", coin=5)
                assert busy["code"] == ErrorCode.ROUND_IN_PROGRESS
                again = await c.request("pick_start", game="pick_a_box", coin=5, key=opened["key"])
                assert again["data"]["round"] == rid  # the key returns the original round
                dup = await c.request("pick_open", round=rid, box=4)
                assert dup["code"] == ErrorCode.BAD_REQUEST  # box 4 is already open
                box, last = 0, opened["first"]
                while not last["complete"]:
                    if box != 4:
                        step = await c.request("pick_open", round=rid, box=box)
                        assert step["type"] == "ok", step
                        last = step["data"]
                    box += 1
                settled_before = (await c.request("history", limit=50))["data"]["rounds"][1:]
                assert len(settled_before) == opened["rounds"]  # the rounds a first pick ended
                spent = sum(h["stake"] - h["win"] for h in settled_before)
                assert last["balance"] == START - spent - 90 + last["win"]
                hist = (await c.request("history", limit=1))["data"]["rounds"][0]
                assert hist["round"] == rid and hist["status"] == "settled"
                assert [s["box"] for s in hist["steps"]] == last["opened"]
            finally:
                await c.close()

        asyncio.run(resume())
        ledger_ok(r2)


def test_smartfox_client_buys_a_ticket_through_an_extension_call() -> None:
    """An SFS2X TCP client reaches the rewards requests as `casino.<type>` extension calls."""
    base = rewards_server_config("memory://")
    config = msgspec.structs.replace(base, server=msgspec.structs.replace(base.server, sfs_tcp_port=0))
    with running_server(config) as r:
        port = r.server.sfs_tcp_port
        assert port is not None

        async def scenario() -> None:
            rd, w = await asyncio.open_connection("127.0.0.1", port)
            reader = PacketReader()

            async def call(command: str, params: SFSObject) -> SFSObject:
                w.write(encode_frame(extension_request(command, params)))
                while True:
                    data = await asyncio.wait_for(rd.read(65536), 5)
                    assert data, "closed"
                    reader.receive_data(data)
                    for packet in reader.packets_received():
                        msg = decode_packet_message(packet)
                        if msg.action == Action.CALL_EXTENSION and msg.params.get_utf_string("c") == command:
                            return msg.params.get_sfs_object("p")

            w.write(encode_frame(handshake_request()) + encode_frame(login_request("demo", "sfsplayer")))
            await w.drain()
            lst = await call("casino.lottery_list", SFSObject())
            assert lst.get_utf_string("currency") == "FUN"
            for _ in range(50):  # wait for a draw with sales open
                draw = (
                    (await call("casino.lottery_list", SFSObject()))
                    .get_sfs_array("lotteries")
                    .get_sfs_object(0)
                )
                if (
                    draw.get("draw") is not None
                    and draw.get_sfs_object("draw").get("cutoff_at") - time.time() * 1000 > 500
                ):
                    break
                await asyncio.sleep(0.1)
            tickets = SFSArray().add_int_array([1, 2, 3])
            p = SFSObject().put_utf_string("lottery", "quick_3of10").put_sfs_array("tickets", tickets)
            bought = await call("casino.lottery_buy", p)
            assert bought.get("cost") == 100 and bought.get("balance") == START - 100
            w.close()

        asyncio.run(scenario())
