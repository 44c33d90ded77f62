"""The operators' back office over the admin port: a player's account, balance adjustments
through the ledger (once per key), kicks and bans, with the audit trail; on SQLite."""

from __future__ import annotations

import asyncio
import secrets
import time
import urllib.request
from typing import Any

import msgspec
import pytest
import websockets

from gameserver import auth
from gameserver.config import CasinoSection, CasinoZone, StoreSection
from persistence import open_stores
from protocol.codes import CloseCode

from ..contract.conftest import mysql_url  # noqa: F401 - the session database fixture
from .client import WsClient, http_json
from .conftest import SECRET, running_server, server_config

PLAYER = 42


def token(user: int, role: str, name: str = "ops") -> str:
    return auth.mint(SECRET, user, "demo", name=name, role=role, expires=int(time.time()) + 600)


call = http_json


async def online(srv: Any, user: int = PLAYER, name: str = "alice") -> WsClient:
    """A player logged in with its token."""
    client = await WsClient.connect(srv.ws_url)
    reply = await client.request("login", token=token(user, "user", name))
    assert reply["type"] == "ok", reply
    return client


def with_stores(url: str, check: Any) -> None:
    """Run `check(stores)` on the store at `url` (opened and closed here)."""

    async def run() -> None:
        stores = await open_stores(url)
        try:
            await check(stores)
        finally:
            await stores.close()

    asyncio.run(run())


def config(tmp_path: Any, url: str | None = None) -> Any:
    base = server_config()
    return msgspec.structs.replace(
        base,
        store=StoreSection(url=url or f"sqlite:///{tmp_path}/office.db", zone_state=True),
        casino=CasinoSection(zones={"demo": CasinoZone(games={"fruit_slot": "96.5"}, starting_balance=1000)}),
    )


def test_an_operator_adjusts_a_balance_once_per_key_and_the_online_player_sees_it(tmp_path) -> None:
    adjust_scenario(tmp_path, f"sqlite:///{tmp_path}/office.db", PLAYER)


@pytest.mark.mysql
def test_the_same_on_mariadb(tmp_path, mysql_url: str) -> None:  # noqa: F811
    adjust_scenario(tmp_path, mysql_url, 420_000 + secrets.randbelow(100_000))  # a user of its own


def adjust_scenario(tmp_path: Any, url: str, PLAYER: int) -> None:  # noqa: N803 - the test's player
    admin = token(900, "admin")
    tag = secrets.token_hex(4)  # keys of this run (the MariaDB database is shared by the tests)
    with running_server(config(tmp_path, url)) as srv:
        base = f"{srv.admin_url}/admin/players/demo/{PLAYER}"

        async def run() -> None:
            player = await WsClient.connect(srv.ws_url)
            login = await player.request("login", token=token(PLAYER, "user", "alice"))
            assert login["type"] == "ok", login
            assert (await player.request("balance"))["data"]["balance"] == 1000
            status, body = await asyncio.to_thread(call, base, bearer=admin)
            assert (status, body["online"], body["balance"], body["currency"]) == (200, True, 1000, "FUN")
            credit = {"amount": 250, "key": f"ticket-17-{tag}", "reason": "goodwill, ticket 17"}
            status, body = await asyncio.to_thread(call, base + "/adjust", "POST", credit, admin)
            assert (status, body["balance"], body["duplicate"]) == (200, 1250, False), body
            event = await player.event("balance_adjusted")
            assert event["data"] == {
                "amount": 250,
                "currency": "FUN",
                "balance": 1250,
                "reason": credit["reason"],
            }
            assert (await player.request("balance"))["data"]["balance"] == 1250  # the session's own cache
            again = await asyncio.to_thread(call, base + "/adjust", "POST", credit, admin)
            assert again[0] == 200 and again[1]["duplicate"] is True and again[1]["balance"] == 1250
            reused = await asyncio.to_thread(call, base + "/adjust", "POST", {**credit, "amount": 999}, admin)
            assert reused[0] == 409 and reused[1]["error"] == "key_reused"
            other = await asyncio.to_thread(
                call, f"{srv.admin_url}/admin/players/demo/43/adjust", "POST", credit, admin
            )
            assert other[0] == 409 and other[1]["error"] == "key_reused"  # keys are per zone, not per player
            too_much = {"amount": -5000, "key": f"ticket-18-{tag}", "reason": "chargeback"}
            status, body = await asyncio.to_thread(call, base + "/adjust", "POST", too_much, admin)
            assert (status, body["error"]) == (409, "insufficient_funds")
            debit = {"amount": -50, "key": f"ticket-19-{tag}", "reason": "chargeback"}
            status, body = await asyncio.to_thread(call, base + "/adjust", "POST", debit, admin)
            assert (status, body["balance"]) == (200, 1200)
            spin = await player.request("spin", game="fruit_slot")
            assert (
                spin["type"] == "ok"
                and spin["data"]["balance"] == 1200 - spin["data"]["stake"] + spin["data"]["win"]
            )
            status, body = await asyncio.to_thread(call, base + "/rounds?limit=5", bearer=admin)
            assert status == 200 and [r["round_id"] for r in body["rounds"]] == [spin["data"]["round"]]
            status, body = await asyncio.to_thread(call, base + "/ledger?limit=3", bearer=admin)
            kinds = [(p["kind"], p["amount"]) for p in body["postings"]]
            assert (
                status == 200
                and len(kinds) == 3
                and ("adjust", -50) in kinds
                and ("bet", -spin["data"]["stake"]) in kinds
            )
            await player.close()

        asyncio.run(run())
        status, body = call(base, bearer=admin)
        assert (status, body["online"]) == (200, False)  # offline: read from the store
        offline = {"amount": 10, "key": f"ticket-20-{tag}", "reason": "offline credit"}
        assert call(base + "/adjust", "POST", offline, admin)[1]["duplicate"] is False
        with urllib.request.urlopen(f"{srv.admin_url}/metrics", timeout=5) as scraped:
            metrics = scraped.read().decode()
        assert 'croupier_backoffice_adjusted_total{currency="FUN",direction="credit"} 260.0' in metrics
        assert 'croupier_backoffice_adjusted_total{currency="FUN",direction="debit"} 50.0' in metrics
        assert 'croupier_backoffice_operations_total{op="adjust",status="409"} 3.0' in metrics
        status, body = call(f"{srv.admin_url}/admin/audit?limit=1&verify=1", bearer=admin)
        assert status == 200 and body["chain"] == "intact"
        entries, after = [], 0
        while True:  # page through (on MariaDB the log is shared with other tests)
            page = call(f"{srv.admin_url}/admin/audit?after={after}&limit=1000", bearer=admin)[1]["entries"]
            if not page:
                break
            entries += page
            after = page[-1]["seq"]
        mine = [e for e in entries if e["target"] == f"demo:{PLAYER}"]
        assert [(e["action"], e["actor"], e["reason"]) for e in mine] == [
            ("adjust", "operator:ops", "goodwill, ticket 17"),
            ("adjust", "operator:ops", "chargeback"),
            ("adjust", "operator:ops", "offline credit"),
        ]
        assert call(f"{srv.admin_url}/admin/audit", bearer=token(901, "moderator"))[0] == 403

    async def check(stores: Any) -> None:
        assert await stores.wallet.ledger_totals() == {"FUN": 0}
        assert await stores.wallet.balance_mismatches() == []
        entries = await stores.audit.entries(limit=100_000)
        trail = [(e.action, e.actor, e.request_id) for e in entries if e.target == f"demo:{PLAYER}"]
        assert trail == [
            ("adjust", "operator:ops", f"adjust:demo:operator:{k}-{tag}")
            for k in ("ticket-17", "ticket-19", "ticket-20")
        ]
        assert await stores.audit.verify_chain() is None

    with_stores(url, check)


def test_roles_tokens_and_bad_requests_are_refused(tmp_path) -> None:
    with running_server(config(tmp_path)) as srv:
        base = f"{srv.admin_url}/admin/players/demo/{PLAYER}"
        credit = {"amount": 5, "key": "k", "reason": "r"}
        assert call(base)[0] == 401  # no token
        assert call(base, bearer="junk")[0] == 401
        forged = auth.mint("other-secret", 900, "demo", role="admin", expires=int(time.time()) + 60)
        assert call(base, bearer=forged)[0] == 401
        assert call(base, bearer=token(900, "user"))[0] == 403  # players are not operators
        moderator = token(901, "moderator")
        assert call(base, bearer=moderator)[0] == 200  # moderators read...
        assert call(base + "/adjust", "POST", credit, moderator)[0] == 403  # ...but move no money
        admin = token(900, "admin")
        for body, code in [
            ({"amount": 0, "key": "k", "reason": "r"}, 400),
            ({"amount": 5, "key": "", "reason": "r"}, 400),
            ({"amount": 5, "key": "k" * 65, "reason": "r"}, 400),
            ({"amount": 5, "key": "k", "reason": ""}, 400),
            ({"amount": "5", "key": "k", "reason": "r"}, 400),
            ({"amount": 5, "key": "k", "reason": "r", "extra": 1}, 400),
        ]:
            assert call(base + "/adjust", "POST", body, admin)[0] == code, body
        assert call(f"{srv.admin_url}/admin/players/nowhere/{PLAYER}", bearer=admin)[0] == 404
        assert call(f"{srv.admin_url}/admin/players/demo/1500000001", bearer=admin)[0] == 400  # a guest id
        assert call(f"{srv.admin_url}/admin/players/demo/abc", bearer=admin)[0] == 400
        assert call(base + "/rounds?limit=many", bearer=admin)[0] == 400  # not a 500
        assert call(f"{srv.admin_url}/admin/audit?after=x", bearer=admin)[0] == 400
        status, body = call(base + "/adjust", "POST", None, admin)
        assert status == 400


def test_kick_ban_and_unban_reach_the_session_and_the_next_login(tmp_path) -> None:
    admin = token(900, "admin")
    with running_server(config(tmp_path)) as srv:
        base = f"{srv.admin_url}/admin/players/demo/{PLAYER}"

        async def run() -> None:
            player = await online(srv)
            status, body = await asyncio.to_thread(call, base + "/kick", "POST", {"reason": "spam"}, admin)
            assert (status, body["online"]) == (200, True)
            kicked = await player.event("kicked")
            assert kicked["data"]["reason"] == "spam"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await player.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.KICKED
            status, body = await asyncio.to_thread(
                call, base + "/ban", "POST", {"reason": "fraud", "hours": 2}, admin
            )
            assert status == 200 and body["until"] > time.time() + 7000
            again = await WsClient.connect(srv.ws_url)
            refused = await again.request("login", token=token(PLAYER, "user", "alice"))
            assert refused["type"] == "error" and refused["name"] == "user_banned"
            status, body = await asyncio.to_thread(call, base, bearer=admin)
            assert body["banned_until"] > time.time()
            status, body = await asyncio.to_thread(call, base + "/unban", "POST", {}, admin)
            assert (status, body["unbanned"]) == (200, True)
            assert (await again.request("login", token=token(PLAYER, "user", "alice")))["type"] == "ok"
            await again.close()

        asyncio.run(run())

    async def check(stores: Any) -> None:
        assert await stores.blacklist.list_bans("demo") == []  # unbanned in the store too
        actions = [e.action for e in await stores.audit.entries()]
        assert actions == ["kick", "ban", "unban"]

    with_stores(f"sqlite:///{tmp_path}/office.db", check)


def test_an_operator_sees_every_room_and_speaks_to_the_zone(tmp_path) -> None:
    admin = token(900, "admin")
    with running_server(config(tmp_path)) as srv:
        zone = f"{srv.admin_url}/admin/zones/demo"

        async def run() -> None:
            a = await online(srv)
            made = await a.request("create_room", name="Secret table", hidden=True, max_users=4)
            assert made["type"] == "ok", made
            status, body = await asyncio.to_thread(call, zone + "/rooms", bearer=admin)
            rooms = {r["name"]: r for r in body["rooms"]}
            assert status == 200 and body["players"] == 1
            assert rooms["Secret table"]["hidden"] is True and rooms["Secret table"]["members"] == [PLAYER]
            assert rooms["Secret table"]["owner"] == PLAYER and rooms["Lobby"]["static"] is True
            status, body = await asyncio.to_thread(
                call, zone + "/message", "POST", {"text": "maintenance at 3"}, admin
            )
            assert (status, body["sent"]) == (200, 1)
            said = await a.event("admin_message")
            assert said["data"]["text"] == "maintenance at 3" and said["data"]["from"]["name"] == "ops"
            assert (await asyncio.to_thread(call, zone + "/message", "POST", {"text": ""}, admin))[0] == 400
            moderator = token(901, "moderator")
            assert (await asyncio.to_thread(call, zone + "/message", "POST", {"text": "x"}, moderator))[
                0
            ] == 403
            assert (await asyncio.to_thread(call, zone + "/rooms", bearer=moderator))[0] == 200
            assert (await asyncio.to_thread(call, f"{srv.admin_url}/admin/zones/nope/rooms", bearer=admin))[
                0
            ] == 404
            await a.close()

        asyncio.run(run())


def test_the_payment_integration_deposits_and_withdraws_once_per_reference(tmp_path) -> None:
    """Deposits and withdrawals confirmed by the payment provider: the online player's
    balance moves once per reference, a reference is one payment, and a withdrawal the
    balance does not cover is refused; the ledger balances."""
    payment_scenario(tmp_path, f"sqlite:///{tmp_path}/office.db", PLAYER)


@pytest.mark.mysql
def test_payments_on_mariadb(tmp_path, mysql_url: str) -> None:  # noqa: F811
    payment_scenario(tmp_path, mysql_url, 520_000 + secrets.randbelow(100_000))


def payment_scenario(tmp_path: Any, url: str, PLAYER: int) -> None:  # noqa: N803 - the test's player
    payments = token(950, "admin", "psp")
    tag = secrets.token_hex(4)  # references of this run (the MariaDB database is shared)
    with running_server(config(tmp_path, url)) as srv:
        base = f"{srv.admin_url}/admin/players/demo/{PLAYER}"

        async def run() -> None:
            player = await online(srv, PLAYER)
            assert (await player.request("balance"))["data"]["balance"] == 1000
            dep = {"amount": 5000, "reference": f"psp-tx-1-{tag}"}
            status, body = await asyncio.to_thread(call, base + "/deposit", "POST", dep, payments)
            assert (status, body["balance"], body["duplicate"]) == (200, 6000, False), body
            assert (await player.event("payment"))["data"] == {
                "kind": "deposit", "amount": 5000, "currency": "FUN", "balance": 6000
            }  # fmt: skip
            assert (await player.request("balance"))["data"]["balance"] == 6000
            again = await asyncio.to_thread(call, base + "/deposit", "POST", dep, payments)
            assert again[0] == 200 and again[1]["duplicate"] is True and again[1]["balance"] == 6000
            other = {"amount": 1, "reference": f"psp-tx-1-{tag}"}
            assert (await asyncio.to_thread(call, base + "/deposit", "POST", other, payments))[1][
                "error"
            ] == "key_reused"
            elsewhere = f"{srv.admin_url}/admin/players/demo/{PLAYER + 1}/deposit"
            assert (await asyncio.to_thread(call, elsewhere, "POST", dep, payments))[1][
                "error"
            ] == "key_reused"
            out = {"amount": 2500, "reference": f"psp-out-1-{tag}"}
            status, body = await asyncio.to_thread(call, base + "/withdraw", "POST", out, payments)
            assert (status, body["balance"]) == (200, 3500), body
            assert (await player.event("payment"))["data"]["kind"] == "withdraw"
            assert (await asyncio.to_thread(call, base + "/withdraw", "POST", out, payments))[1][
                "duplicate"
            ] is True
            too_much = {"amount": 10_000, "reference": f"psp-out-2-{tag}"}
            status, body = await asyncio.to_thread(call, base + "/withdraw", "POST", too_much, payments)
            assert (status, body["error"]) == (409, "insufficient_funds")
            assert (await player.request("balance"))["data"]["balance"] == 3500
            for bad in ({"amount": 0, "reference": "x"}, {"amount": 5, "reference": ""}, {"amount": 5}):
                assert (await asyncio.to_thread(call, base + "/deposit", "POST", bad, payments))[0] == 400
            assert (await asyncio.to_thread(call, base + "/deposit", "POST", dep, token(951, "moderator")))[
                0
            ] == 403
            await player.close()

        asyncio.run(run())

    async def check(stores: Any) -> None:
        assert await stores.wallet.ledger_totals() == {"FUN": 0}
        assert await stores.wallet.balance_mismatches() == []
        kinds = [(p.kind, p.amount) for p in await stores.wallet.postings(f"demo:{PLAYER}", "FUN", limit=10)]
        assert ("deposit", 5000) in kinds and ("withdraw", -2500) in kinds and len(kinds) == 3  # + welcome

    with_stores(url, check)


def test_an_operator_excludes_a_player_whose_next_bet_is_refused(tmp_path) -> None:
    admin = token(900, "admin")
    with running_server(config(tmp_path)) as srv:
        base = f"{srv.admin_url}/admin/players/demo/{PLAYER}"

        async def run() -> None:
            player = await online(srv)
            assert (await player.request("spin", game="fruit_slot", coin=1))["type"] == "ok"
            status, body = await asyncio.to_thread(call, base + "/rg", bearer=token(901, "moderator"))
            assert status == 200 and body["self_excluded"] is False and body["excluded_until"] is None
            ex = {"seconds": 30 * 86400, "reason": "problem gambling report 88"}
            assert (await asyncio.to_thread(call, base + "/exclude", "POST", ex, token(901, "moderator")))[
                0
            ] == 403
            status, body = await asyncio.to_thread(call, base + "/exclude", "POST", ex, admin)
            assert status == 200 and body["self_excluded"] is True and body["excluded_until"] > 0, body
            refused = await player.request("spin", game="fruit_slot", coin=1)
            assert refused["type"] == "error" and refused["name"] == "policy_refused", refused
            assert (
                await asyncio.to_thread(call, base + "/exclude", "POST", {"seconds": 0, "reason": "x"}, admin)
            )[0] == 400
            await player.close()

        asyncio.run(run())

    async def check(stores: Any) -> None:
        [entry] = [e for e in await stores.audit.entries() if e.action == "exclude"]
        assert entry.reason == "problem gambling report 88" and entry.actor == "operator:ops"

    with_stores(f"sqlite:///{tmp_path}/office.db", check)


def test_an_operator_closes_a_room(tmp_path) -> None:
    admin = token(900, "admin")
    with running_server(config(tmp_path)) as srv:
        zone = f"{srv.admin_url}/admin/zones/demo"

        async def run() -> None:
            a = await online(srv)
            b = await online(srv, PLAYER + 1, "bob")
            rid = (await a.request("create_room", name="Table 5", max_users=4))["data"]["room"]["id"]
            assert (await b.request("join_room", room=rid))["type"] == "ok"
            lobby = (await a.request("join_room", room="Lobby"))["data"]["room"]["id"]
            status, body = await asyncio.to_thread(call, f"{zone}/rooms/{rid}/close", "POST", {}, admin)
            assert (status, body) == (200, {"closed": 1, "left": 2})
            assert (await a.event("user_left"))["data"] == {
                "room": rid,
                "user": PLAYER,
            }  # each leaves, as in a leave
            seen = [(await b.event("user_left"))["data"]["user"] for _ in range(2)]
            assert seen == [PLAYER, PLAYER + 1]
            assert (await b.request("join_room", room=rid))["code"] == 200  # removed with its last member
            status, body = await asyncio.to_thread(call, f"{zone}/rooms/{lobby}/close", "POST", {}, admin)
            assert (status, body) == (200, {"closed": 1, "left": 1})
            assert (await b.request("join_room", room="Lobby"))["type"] == "ok"  # configured: it stays
            missing = await asyncio.to_thread(call, f"{zone}/rooms/999/close", "POST", {}, admin)
            assert missing == (200, {"closed": 0, "left": 0})
            assert (
                await asyncio.to_thread(call, f"{zone}/rooms/{lobby}/close", "POST", {}, token(7, "user"))
            )[0] == 403
            await a.close()
            await b.close()

        asyncio.run(run())
