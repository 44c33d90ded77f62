"""Rooms across workers: two hubs in a ring, their own ports, talking over a real Unix bus.

Each user connects to its home worker (as the acceptor would route it); rooms live on
the worker their name hashes to. Every scenario crosses workers on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import Any

import pytest
import websockets

from gameserver import auth
from gameserver.bus import UnixBus
from gameserver.config import AuthSection, Config, LimitsSection, ServerSection
from gameserver.hub import Hub
from gameserver.server import Server, start
from gameserver.sharding import DYNAMIC_BASE, ShardedRouter, Shards, attach_router, join_ring
from protocol.codes import CloseCode, ErrorCode
from rooms.config import RoomConfig, ZoneConfig
from rooms.zone import Zone

from ..contract.conftest import REDIS_URL, require
from . import rings
from .client import WsClient

SECRET = "sharding-secret"
MEMBERS = ["w0", "w1"]
ROOMS = ["Lobby", "Poker", "Slots", "Bingo", "Chess", "Darts"]


def config() -> Config:
    return Config(
        server=ServerSection(host="127.0.0.1", ws_port=0, tcp_port=-1, sweep_interval=0.05, admin_port=-1),
        limits=LimitsSection(),
        auth=AuthSection(secret=SECRET),
        zones=[
            ZoneConfig(
                name="demo",
                guests=True,
                room_creation="everyone",
                open_groups=True,
                rooms=[RoomConfig(name, max_users=100) for name in ROOMS],
            )
        ],
    )


SHARDS = Shards("w0", MEMBERS, {"demo": Zone(config().zones[0])})


def host_of(room: str) -> str:
    return SHARDS.host_by_name("demo", room)


def room_on(worker: str) -> str:
    return next(r for r in ROOMS if host_of(r) == worker)


def user_on(worker: str, start: int = 1000) -> int:
    return next(u for u in range(start, start + 1000) if SHARDS.home("demo", u) == worker)


def token(user: int, role: str = "user") -> str:
    return auth.mint(SECRET, user, "demo", name=f"u{user}", role=role, expires=int(time.time()) + 3600)


class Ring(rings.Ring):
    async def guest(self, worker: str, name: str) -> tuple[WsClient, dict[str, Any]]:
        c = await WsClient.connect(self.url(worker))
        r = await c.request("login", guest=True, zone="demo", name=name)
        assert r["type"] == "ok", r
        return c, r["data"]

    async def user(self, uid: int, role: str = "user") -> WsClient:
        c = await WsClient.connect(self.url(SHARDS.home("demo", uid)))
        r = await c.request("login", token=token(uid, role))
        assert r["type"] == "ok", r
        return c


def ring(bus: str = "unix") -> contextlib.AbstractContextManager[Ring]:
    """Two workers on one uvloop thread (separate hubs, ports and bus connections).

    `bus="redis"`: the workers talk through the Redis server, as two nodes would."""
    prefix = f"croupier-test:{secrets.token_hex(4)}:"  # this ring's channels only
    bus_url = rings.unix_bus_url() if bus == "unix" else REDIS_URL
    return rings.running_ring(config(), MEMBERS, bus_url, Ring, prefix=prefix)


@pytest.fixture(params=["unix", pytest.param("redis", marks=pytest.mark.redis)])
def kind(request: pytest.FixtureRequest) -> str:
    """The bus: Unix sockets (workers of one node) or Redis (nodes)."""
    if request.param == "redis":
        require("Redis", REDIS_URL)
    return str(request.param)


def run(body: Any, kind: str) -> None:
    with ring(kind) as r:
        asyncio.run(asyncio.wait_for(body(r), 30))


def test_both_hosts_have_rooms() -> None:
    assert {host_of(r) for r in ROOMS} == set(MEMBERS)  # the scenarios below need it


def test_every_worker_lists_every_room_with_the_same_ids(kind: str) -> None:
    async def body(r: Ring) -> None:
        a, da = await r.guest("w0", "ann")
        b, db = await r.guest("w1", "bob")
        for data in (da, db):
            assert [room["name"] for room in data["rooms"]] == ROOMS
            assert [room["id"] for room in data["rooms"]] == list(range(1, len(ROOMS) + 1))
        assert da["user"]["id"] != db["user"]["id"]  # guest ids do not collide
        assert SHARDS.home("demo", da["user"]["id"]) == "w0"
        assert SHARDS.home("demo", db["user"]["id"]) == "w1"
        await a.close()
        await b.close()

    run(body, kind)


def test_members_on_two_workers_share_a_room(kind: str) -> None:
    async def body(r: Ring) -> None:
        room = room_on("w1")  # hosted on w1; ann lives on w0
        a, da = await r.guest("w0", "ann")
        b, db = await r.guest("w1", "bob")
        ja = await a.request("join_room", room=room)
        assert ja["type"] == "ok", ja
        rid = ja["data"]["room"]["id"]
        jb = await b.request("join_room", room=rid)
        assert [u["name"] for u in jb["data"]["users"]] == ["ann", "bob"]
        entered = await a.event("user_entered")
        assert entered["data"]["user"]["name"] == "bob"
        assert (await a.request("public_message", room=rid, text="hi from w0"))["type"] == "ok"
        for c in (a, b):
            msg = await c.event("public_message")
            assert msg["data"]["text"] == "hi from w0"
        ok = await a.request("set_room_variables", room=rid, variables=[{"name": "pot", "value": 5}])
        assert ok["type"] == "ok", ok
        assert (await b.event("room_variables"))["data"]["variables"][0]["value"] == 5
        ok = await a.request("set_user_variables", variables=[{"name": "avatar", "value": "cat"}])
        assert ok["type"] == "ok"
        uv = await b.event("user_variables")
        assert uv["data"] == {"user": da["user"]["id"], "variables": [{"name": "avatar", "value": "cat"}]}
        # ann leaves by closing: bob sees her go (the host drops her proxy)
        await a.request("logout")
        left = await b.event("user_left")
        assert left["data"] == {"room": rid, "user": da["user"]["id"]}
        await a.close()
        await b.close()

    run(body, kind)


def test_private_message_to_a_user_on_another_worker(kind: str) -> None:
    async def body(r: Ring) -> None:
        a, _ = await r.guest("w0", "ann")
        b, db = await r.guest("w1", "bob")
        ok = await a.request("private_message", to=db["user"]["id"], text="psst")
        assert ok["type"] == "ok", ok
        got = await b.event("private_message")
        assert got["data"]["text"] == "psst"
        echo = await a.event("private_message")  # the sender gets its copy too
        assert echo["data"]["text"] == "psst"
        missing = await a.request("private_message", to=user_on("w1", 50_000), text="?")
        assert missing["type"] == "error" and missing["code"] == ErrorCode.USER_NOT_FOUND
        await a.close()
        await b.close()

    run(body, kind)


def test_created_rooms_are_announced_everywhere_and_removed_when_empty(kind: str) -> None:
    async def body(r: Ring) -> None:
        name = next(f"table-{i}" for i in range(100) if host_of(f"table-{i}") == "w1")
        a, _ = await r.guest("w0", "ann")  # creator on w0, room hosted on w1
        b, _ = await r.guest("w1", "bob")
        c, _ = await r.guest("w0", "cid")
        created = await a.request("create_room", name=name, group="default", max_users=4)
        assert created["type"] == "ok", created
        rid = created["data"]["room"]["id"]
        assert rid >= DYNAMIC_BASE and SHARDS.host("demo", rid) == "w1"
        for watcher in (b, c):  # w1's own subscriber, and w0's (through the directory)
            added = await watcher.event("room_added")
            assert added["data"]["room"]["name"] == name
        listing = await c.request("list_rooms")
        assert name in [room["name"] for room in listing["data"]["rooms"]]
        taken = await c.request("create_room", name=name)
        assert taken["type"] == "error" and taken["code"] == ErrorCode.ROOM_NAME_TAKEN
        joined = await c.request("join_room", room=name)
        assert joined["type"] == "ok"
        await c.event("room_count")
        await a.request("leave_room", room=rid)
        await c.request("leave_room", room=rid)
        removed = await b.event("room_removed")
        assert removed["data"]["room"] == rid
        await c.event("room_removed")
        assert name not in [room["name"] for room in (await c.request("list_rooms"))["data"]["rooms"]]
        for x in (a, b, c):
            await x.close()

    run(body, kind)


def test_find_rooms_and_quick_join_reach_rooms_hosted_on_another_worker(kind: str) -> None:
    """A table created on w1 is found from w0 by its variable, and a quick join from w0
    seats the player there (the join goes to the host); with no table left, the quick
    join creates one on the worker its name hashes to."""

    async def body(r: Ring) -> None:
        name = next(f"bj-{i}" for i in range(100) if host_of(f"bj-{i}") == "w1")
        b, db = await r.guest("w1", "bob")
        a, da = await r.guest("w0", "ann")
        stake = [{"name": "stake", "value": 50, "persistent": True}]
        created = await b.request("create_room", name=name, game=True, max_users=2, variables=stake)
        assert created["type"] == "ok", created
        rid = created["data"]["room"]["id"]
        await a.event("room_added")  # w0 has the listing now
        where = [{"var": "stake", "op": "==", "value": 50}]
        found = await a.request("find_rooms", where=where)
        assert [room["id"] for room in found["data"]["rooms"]] == [rid]
        assert (await a.request("find_rooms", where=[{"var": "stake", "op": ">", "value": 50}]))["data"][
            "rooms"
        ] == []
        # a variable changed on the host reaches w0's listing with the next sweep (50 ms here)
        raised = await b.request("set_room_variables", room=rid, variables=[{"name": "stake", "value": 75}])
        assert raised["type"] == "ok", raised
        high = [{"var": "stake", "op": "==", "value": 75}]
        deadline = time.monotonic() + 5
        while not (await a.request("find_rooms", where=high))["data"]["rooms"]:
            assert time.monotonic() < deadline, "w0's listing did not follow the variable"
            await asyncio.sleep(0.05)
        # silent: no event of its own (the room_count of bob's join may be there)
        assert {e.get("event") for e in a.events} <= {"room_count"}
        back = await b.request("set_room_variables", room=rid, variables=[{"name": "stake", "value": 50}])
        assert back["type"] == "ok", back
        deadline = time.monotonic() + 5
        while not (await a.request("find_rooms", where=where))["data"]["rooms"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        joined = await a.request("quick_join", where=where)
        assert joined["type"] == "ok", joined
        assert joined["data"]["room"]["id"] == rid
        assert [u["id"] for u in joined["data"]["users"]] == [db["user"]["id"], da["user"]["id"]]
        entered = await b.event("user_entered")
        assert entered["data"]["user"]["id"] == da["user"]["id"]
        c, _ = await r.guest("w0", "cid")  # the table is full: a new one
        other = next(f"bj-new-{i}" for i in range(100) if host_of(f"bj-new-{i}") == "w1")
        create = {"name": other, "game": True, "max_users": 2, "variables": stake}
        made = await c.request("quick_join", where=where, create=create)
        assert made["type"] == "ok", made
        assert (
            made["data"]["room"]["name"] == other and SHARDS.host("demo", made["data"]["room"]["id"]) == "w1"
        )
        for x in (a, b, c):
            await x.close()

    run(body, kind)


def test_find_users_looks_at_every_worker(kind: str) -> None:
    """ann (w0) is in a room hosted on w1, bob (w1) in no room, cid (w0) in a room of w0:
    a zone or group search from w0 finds each once, with what the worker that has them
    sees (the host's proxy for ann, bob's home for a user in no room)."""

    async def body(r: Ring) -> None:
        a, da = await r.guest("w0", "ann")
        b, db = await r.guest("w1", "bob")
        c, dc = await r.guest("w0", "cid")
        ann, bob, cid = da["user"]["id"], db["user"]["id"], dc["user"]["id"]
        assert (await a.request("set_user_variables", variables=[{"name": "level", "value": 5}]))[
            "type"
        ] == "ok"
        assert (await a.request("join_room", room=room_on("w1")))["type"] == "ok"
        assert (await c.request("join_room", room=room_on("w0")))["type"] == "ok"

        async def found(**q: Any) -> list[int]:
            got = await c.request("find_users", **q)
            assert got["type"] == "ok", got
            return [u["id"] for u in got["data"]["users"]]

        assert await found(where=[{"var": "level", "op": ">", "value": 3}]) == [ann]
        assert await found(where=[{"prop": "in_room", "op": "==", "value": False}]) == [bob]
        assert await found(group="default") == sorted([ann, cid])
        assert await found() == sorted([ann, bob, cid])
        assert await found(limit=2) == sorted([ann, bob, cid])[:2]
        remote_room = next(x["id"] for x in da["rooms"] if x["name"] == room_on("w1"))
        assert await found(room=remote_room, where=[{"prop": "name", "op": "==", "value": "ann"}]) == [ann]
        full = await c.request("find_users")
        assert "partial" not in full["data"]
        r.routers["w1"].bus._handlers["fusers"] = lambda src, body: asyncio.sleep(10)  # w1 stops answering
        slow = await c.request("find_users")
        assert slow["data"]["partial"] is True
        assert [u["id"] for u in slow["data"]["users"]] == [cid]  # ann is in a room of w1
        for x in (a, b, c):
            await x.close()

    run(body, kind)


def test_invitations_cross_workers_and_expire(kind: str) -> None:
    """ann (w0) invites bob (w1, another worker), cid (w0, hers) and an offline user: bob
    accepts, cid refuses, the offline one is reported expired; a second answer is refused."""

    async def body(r: Ring) -> None:
        a, da = await r.guest("w0", "ann")
        b, db = await r.guest("w1", "bob")
        c, dc = await r.guest("w0", "cid")
        ann, bob, cid = da["user"]["id"], db["user"]["id"], dc["user"]["id"]
        offline = user_on("w1", 5000)
        sent = await a.request("invite", users=[bob, cid, offline, ann], seconds=5, data={"table": "BJ-7"})
        assert sent["type"] == "ok", sent
        iid = sent["data"]["invitation"]
        assert sent["data"]["invited"] == [bob, cid, offline]  # not herself
        for x in (b, c):
            got = await x.event("invitation")
            assert got["data"]["id"] == iid and got["data"]["from"]["name"] == "ann"
            assert got["data"]["data"] == {"table": "BJ-7"} and got["data"]["seconds"] == 5
        yes = await b.request("invitation_reply", invitation=iid, accept=True, data={"seat": 2})
        assert yes["type"] == "ok", yes
        again = await b.request("invitation_reply", invitation=iid, accept=False)
        assert again["type"] == "error" and again["code"] == ErrorCode.INVITATION_NOT_FOUND
        assert (await c.request("invitation_reply", invitation=iid, accept=False))["type"] == "ok"
        answers = [await a.event("invitation_reply") for _ in range(2)]
        by = {ans["data"]["from"]["id"]: ans["data"] for ans in answers}
        assert by[bob]["accept"] is True and by[bob]["data"] == {"seat": 2}  # across workers
        assert by[cid]["accept"] is False
        expired = await a.event("invitation_reply", timeout=10)
        assert expired["data"] == {
            "invitation": iid,
            "from": {"id": offline},
            "accept": False,
            "expired": True,
        }
        late = await c.request("invitation_reply", invitation=iid + 1, accept=True)
        assert late["type"] == "error" and late["code"] == ErrorCode.INVITATION_NOT_FOUND
        from gameserver.invitations import InvitationService

        counts = {}
        for member, server in r.servers.items():
            svc = next(x for x in server.hub.service_list if isinstance(x, InvitationService))
            counts[member] = dict(svc.counts)
        assert counts["w0"] == {"sent": 1, "accepted": 1, "refused": 1, "expired": 1, "too_late": 1}
        assert counts["w1"]["too_late"] == 1 and counts["w1"]["sent"] == 0  # bob's second answer
        for x in (a, b, c):
            await x.close()

    run(body, kind)


def test_the_owner_changes_a_room_hosted_on_another_worker(kind: str) -> None:
    """ann (w0) owns a table hosted on w1: her password and capacity change is made on the
    host; the subscribers of both workers hear of it and w0's listing follows; renaming is
    refused in a cluster (a room lives where its name hashes to)."""

    async def body(r: Ring) -> None:
        name = next(f"own-{i}" for i in range(100) if host_of(f"own-{i}") == "w1")
        a, _ = await r.guest("w0", "ann")
        b, _ = await r.guest("w1", "bob")
        c, _ = await r.guest("w0", "cid")
        created = await a.request("create_room", name=name, game=True, max_users=4)
        rid = created["data"]["room"]["id"]
        for x in (b, c):
            await x.event("room_added")
        changed = await a.request("change_room", room=rid, password="secret", max_users=2)
        assert changed["type"] == "ok", changed
        assert changed["data"]["changed"] == ["password", "max_users"]
        assert (changed["data"]["room"]["locked"], changed["data"]["room"]["max_users"]) == (True, 2)
        for x in (a, b, c):  # the member; w1's subscriber, and w0's (through the directory)
            ev = await x.event("room_changed")
            assert ev["data"]["room"]["id"] == rid and ev["data"]["changed"] == ["password", "max_users"]
        found = await c.request("find_rooms", where=[{"prop": "locked", "op": "==", "value": True}])
        assert [room["id"] for room in found["data"]["rooms"]] == [rid]
        refused = await b.request("change_room", room=rid, password="")
        assert refused["type"] == "error" and refused["code"] == ErrorCode.PERMISSION_DENIED
        renamed = await a.request("change_room", room=rid, name="elsewhere")
        assert renamed["type"] == "error" and renamed["code"] == ErrorCode.NOT_SUPPORTED
        # ann is a member and a subscriber of the group on w0: told once, by the host
        assert [e for e in a.events if e.get("event") == "room_changed"] == []
        for x in (a, b, c):
            await x.close()

    run(body, kind)


def test_moderator_kicks_a_user_on_another_worker_and_admin_speaks_to_the_zone(kind: str) -> None:
    async def body(r: Ring) -> None:
        mod_id, victim_id = user_on("w0"), user_on("w1")
        admin_id = user_on("w0", 5000)
        mod = await r.user(mod_id, "moderator")
        victim = await r.user(victim_id)
        admin = await r.user(admin_id, "admin")
        other, _ = await r.guest("w1", "eve")
        said = await admin.request("admin_message", text="maintenance at 6", scope="zone")
        assert said["type"] == "ok", said
        for c in (victim, other, mod):
            assert (await c.event("admin_message"))["data"]["text"] == "maintenance at 6"
        kicked = await mod.request("kick", user=victim_id, reason="spam")
        assert kicked["type"] == "ok", kicked
        note = await victim.event("kicked")
        assert note["data"]["reason"] == "spam"
        with pytest.raises(websockets.ConnectionClosed):  # the socket closes
            await victim.recv(2)
        assert victim.ws.close_code == CloseCode.KICKED
        for c in (mod, admin, other):
            await c.close()

    run(body, kind)


def test_a_worker_that_restarts_drops_the_proxies_of_its_users(kind: str) -> None:
    async def body(r: Ring) -> None:
        room = room_on("w0")
        a, _ = await r.guest("w0", "ann")
        b, db = await r.guest("w1", "bob")
        rid = (await b.request("join_room", room=room))["data"]["room"]["id"]
        await a.request("join_room", room=rid)
        r0 = r.routers["w0"]
        assert ("demo", db["user"]["id"]) in r0.homes
        r0._on_hello("w1", None)  # what w0 does when a restarted w1 says hello
        left = await a.event("user_left")
        assert left["data"]["user"] == db["user"]["id"]
        assert ("demo", db["user"]["id"]) not in r0.homes
        await a.close()
        await b.close()

    run(body, kind)


def test_a_rolling_restart_hands_sessions_and_rooms_to_the_successor() -> None:
    """w1 is replaced: its successor adopts w1's sessions and hosted rooms, clients resume
    on it (close 4009 + resume token) and see the same rooms, members and variables."""

    async def body(r: Ring) -> None:
        room_w1, room_w0 = room_on("w1"), room_on("w0")
        ann, da = await r.guest("w0", "ann")
        bob, db = await r.guest("w1", "bob")
        rid1 = (await bob.request("join_room", room=room_w1))["data"]["room"]["id"]
        await ann.request("join_room", room=rid1)
        rid0 = (await bob.request("join_room", room=room_w0))["data"]["room"]["id"]
        await bob.request("set_room_variables", room=rid1, variables=[{"name": "pot", "value": 40}])
        await bob.request("public_message", room=rid1, text="before the move")
        await ann.event("public_message")
        said_seq = (await bob.event("public_message"))["seq"]
        # invitations both ways: w1 keeps what bob sent and what he received
        inv_b = (await bob.request("invite", users=[da["user"]["id"]], seconds=60))["data"]["invitation"]
        await ann.event("invitation")
        inv_a = (await ann.request("invite", users=[db["user"]["id"]], seconds=60))["data"]["invitation"]
        last = max(said_seq, (await bob.event("invitation"))["seq"])
        directory = r.bus_url.removeprefix("unix://")

        async def successor() -> tuple[Server, ShardedRouter]:
            hub = Hub(config())
            bus = UnixBus("w1", directory, listen_as="w1.next")
            router = await attach_router(hub, "w1", MEMBERS, bus, takeover=10)
            server = await start(hub.config, hub=hub)
            return server, router

        new_server, new_router = await r.on_servers(successor())
        moved = await r.on_servers(r.routers["w1"].hand_over(directory))
        assert moved == 1
        assert new_router.serving.is_set()
        old_server = r.servers["w1"]
        r.servers["w1.old"], r.routers["w1.old"] = old_server, r.routers["w1"]
        r.servers["w1"], r.routers["w1"] = new_server, new_router
        old_server.hub.shutdown(CloseCode.RESUME_ELSEWHERE, "worker restarting: reconnect and resume")
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await bob.recv(2)
        assert bob.ws.close_code == CloseCode.RESUME_ELSEWHERE
        bob2 = await WsClient.connect(r.url("w1"))
        resumed = await bob2.request("resume", token=db["resume_token"], last_seq=last)
        assert resumed["type"] == "ok", resumed
        assert resumed["data"]["user"] == db["user"]["id"]
        # the room hosted by the replaced worker, with its member on w0 and its variable
        said = await ann.request("public_message", room=rid1, text="after the move")
        assert said["type"] == "ok", said
        assert (await bob2.event("public_message"))["data"]["text"] == "after the move"
        assert (await ann.event("public_message"))["data"]["text"] == "after the move"
        for _ in range(100):  # the directory on w0 follows within a sweep or two
            listing = await ann.request("list_rooms")
            hall = next(x for x in listing["data"]["rooms"] if x["id"] == rid1)
            if hall["users"] == 2 and hall.get("variables"):
                break
            await asyncio.sleep(0.02)
        assert hall["users"] == 2 and hall["variables"] == [{"name": "pot", "value": 40}], hall
        # bob's membership in the room on w0 survived too
        said = await bob2.request("public_message", room=rid0, text="still in w0's room")
        assert said["type"] == "ok", said
        # the invitations moved with w1: answers reach the successor and go on from there
        assert (await ann.request("invitation_reply", invitation=inv_b, accept=True))["type"] == "ok"
        assert (await bob2.event("invitation_reply"))["data"]["accept"] is True
        answered = await bob2.request("invitation_reply", invitation=inv_a, accept=False)
        assert answered["type"] == "ok", answered
        assert (await ann.event("invitation_reply"))["data"]["accept"] is False
        for c in (ann, bob2):
            await c.close()

    run(body, "unix")


def test_bus_traffic_shows_in_the_metrics(kind: str) -> None:
    async def body(r: Ring) -> None:
        from prometheus_client import generate_latest

        from gameserver.metrics import registry_for

        a, _ = await r.guest("w0", "ann")
        await a.request("join_room", room=room_on("w1"))
        text = generate_latest(registry_for(r.servers["w0"].hub)).decode()
        calls = next(line for line in text.splitlines() if line.startswith("croupier_bus_calls_total"))
        assert float(calls.split()[-1]) >= 1
        assert 'croupier_bus_call_seconds{quantile="0.99"}' in text
        for name in ("casts", "calls", "dropped", "frames_received", "bytes_sent"):  # the dashboard's
            assert f"croupier_bus_{name}_total" in text
        assert 'croupier_zone_users{zone="demo"} 1.0' in text  # sessions here, not proxies
        await a.close()

    run(body, kind)


def test_adding_a_worker_moves_only_its_share_of_users_and_rooms() -> None:
    """w2 joins the ring: the users and rooms that now hash to w2 move there (sessions
    resume on w2 with their rooms, members and events); everything else stays put."""
    grown = [*MEMBERS, "w2"]
    big = Shards("w2", grown, {"demo": Zone(config().zones[0])})

    async def body(r: Ring) -> None:
        stay_room = next(n for n in ROOMS if big.host_by_name("demo", n) == host_of(n))
        move_room = next(n for n in ROOMS if big.host_by_name("demo", n) == "w2")
        # guests get ring-owned ids on the worker they connect to: connect until one would move
        movers, stayers = [], []
        while not movers or not stayers:
            c, d = await r.guest("w0", f"g{len(movers) + len(stayers)}")
            uid = d["user"]["id"]
            (movers if big.home("demo", uid) == "w2" else stayers).append((c, d))
        (mover, dm), (stayer, _) = movers[0], stayers[0]
        other, _ = await r.guest("w1", "olga")
        for c in (mover, stayer, other):
            for room in (stay_room, move_room):
                assert (await c.request("join_room", room=room))["type"] == "ok"
        rid_stay = SHARDS.static["demo"] and next(
            k for k, v in SHARDS.static["demo"].items() if v == stay_room
        )
        rid_move = next(k for k, v in SHARDS.static["demo"].items() if v == move_room)
        await other.request("set_room_variables", room=rid_move, variables=[{"name": "pot", "value": 9}])
        await mover.event("room_variables")
        seq = mover.events[-1]["seq"] if mover.events else 0

        routed: dict[str, tuple[dict[str, str], bool]] = {}  # what each worker told its acceptor

        async def grow() -> dict[str, dict[str, str]]:
            hub = Hub(config())
            router = await join_ring(hub, "w2", grown, r.bus_url)
            r.servers["w2"], r.routers["w2"] = await start(hub.config, hub=hub), router
            for w in MEMBERS:
                conns = [p.conn for p in r.routers[w].hub.players.values() if p.conn is not None]

                def told(moved: dict[str, str], w: str = w, conns: list[Any] = conns) -> None:
                    # before any moved client is told to go (4009): its resume must find the way
                    routed[w] = (dict(moved), not any(c.session.close_expected() for c in conns))

                r.routers[w].on_moved_out = told
            moves = await asyncio.gather(*(r.routers[w].change_ring(grown) for w in MEMBERS))
            return dict(zip(MEMBERS, moves, strict=True))

        moves = await r.on_servers(grow())
        assert sorted(t for m in moves.values() for t in m) == sorted(d["resume_token"] for _, d in movers)
        assert {w: (m, True) for w, m in moves.items() if m} == routed
        assert all(set(m.values()) <= {"w2"} for m in moves.values())  # a new member only receives
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await mover.recv(2)
        assert mover.ws.close_code == CloseCode.RESUME_ELSEWHERE
        moved = await WsClient.connect(r.url("w2"))
        resumed = await moved.request("resume", token=dm["resume_token"], last_seq=seq)
        assert resumed["type"] == "ok", resumed
        seen = [resumed["data"]["last_seq"]]  # seqs the moved client has seen
        # the stayer was not touched; everyone still shares both rooms
        for room in (rid_stay, rid_move):
            said = await other.request("public_message", room=room, text=f"to {room}")
            assert said["type"] == "ok", said
            for c in (moved, stayer, other):
                got = await c.event("public_message")
                assert got["data"]["text"] == f"to {room}"
                if c is moved:
                    seen.append(got["seq"])
        said = await moved.request("public_message", room=rid_stay, text="from w2")
        assert said["type"] == "ok", said
        for c in (other, stayer, moved):
            got = await c.event("public_message")
            assert got["data"]["text"] == "from w2"
            if c is moved:
                seen.append(got["seq"])
        for _ in range(40):  # the listing on w0 follows within a sweep (flood limit: 20/s)
            listing = await stayer.request("list_rooms")
            moved_view = next(x for x in listing["data"]["rooms"] if x["id"] == rid_move)
            if moved_view["users"] == 3:
                break
            await asyncio.sleep(0.1)
        assert moved_view["users"] == 3 and moved_view["variables"] == [{"name": "pot", "value": 9}]
        assert r.routers["w2"].hub.zones["demo"].rooms[rid_move].name == move_room
        assert rid_move not in r.routers["w0"].hub.zones["demo"].rooms
        assert rid_move not in r.routers["w1"].hub.zones["demo"].rooms
        # ... and w2 leaves again: its share goes back where it came from
        await moved.request("ping")  # everything sent to it before has arrived
        seq = max(seen)

        async def shrink() -> list[dict[str, str]]:
            return list(await asyncio.gather(*(r.routers[w].change_ring(MEMBERS) for w in grown)))

        back = await r.on_servers(shrink())
        assert back[0] == back[1] == {}  # staying members give nothing away
        assert len(back[2]) == len(movers)  # the leaver gives everything back
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await moved.recv(2)
        home = SHARDS.home("demo", dm["user"]["id"])
        again = await WsClient.connect(r.url(home))
        resumed = await again.request("resume", token=dm["resume_token"], last_seq=seq)
        assert resumed["type"] == "ok", resumed
        said = await other.request("public_message", room=rid_move, text="home again")
        assert said["type"] == "ok", said
        for c in (again, stayer, other):
            got = await c.event("public_message")
            assert got["data"]["text"] == "home again"
        assert rid_move in r.routers[host_of(move_room)].hub.zones["demo"].rooms
        for c in (again, stayer, other, *(x for x, _ in movers[1:] + stayers[1:])):
            await c.close()

    run(body, "unix")


def test_zone_max_users_counts_the_sessions_of_every_worker() -> None:
    """A zone of 3 users with sessions on both workers: the fourth login is refused
    (zone full) on either worker, and accepted again once someone logged out."""
    import msgspec

    base = config()
    cfg = msgspec.structs.replace(base, zones=[msgspec.structs.replace(base.zones[0], max_users=3)])
    bus_url = rings.unix_bus_url()

    async def login(r: Ring, uid: int) -> tuple[WsClient, dict[str, Any]]:
        c = await WsClient.connect(r.url(SHARDS.home("demo", uid)))
        return c, await c.request("login", token=token(uid))

    async def body(r: Ring) -> None:
        a, b, c = user_on("w0", 100), user_on("w0", user_on("w0", 100) + 1), user_on("w1", 100)
        clients = []
        for uid in (a, b, c):
            client, reply = await login(r, uid)
            assert reply["type"] == "ok", reply
            clients.append(client)
        await asyncio.sleep(0.3)  # a few sweeps: the workers have told each other
        for worker in MEMBERS:
            extra, reply = await login(r, user_on(worker, 5000))
            assert reply["code"] == ErrorCode.ZONE_FULL, (worker, reply)
            await extra.close()
        assert (await clients[2].request("logout"))["type"] == "ok"
        await asyncio.sleep(0.3)
        extra, reply = await login(r, user_on("w0", 5000))
        assert reply["type"] == "ok", reply
        for client in [*clients, extra]:
            await client.close()

    with rings.running_ring(
        cfg, MEMBERS, bus_url, Ring, prefix=f"croupier-test:{secrets.token_hex(4)}:"
    ) as r:
        asyncio.run(asyncio.wait_for(body(r), 30))
