"""Rooms in a real cluster (supervisor, acceptor, worker processes): members on different
workers share a room, and keep it through a rolling restart (handover + resume)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import websockets

from gameserver.ring import room_key
from protocol.codes import CloseCode

from .client import WsClient
from .test_cluster import Cluster, chat_reaches, cluster, owner_of, token, write_config


def users_on_two_workers(c: Cluster) -> tuple[int, int]:
    """Two token users whose owners differ, and whose room 'Lobby' is hosted by one of them."""
    host = c.ring.owner(room_key("demo", "Lobby"))
    a = next(u for u in range(300, 400) if owner_of(c, u) == host)
    b = next(u for u in range(300, 400) if owner_of(c, u) != host)
    return a, b


async def connect(c: Cluster, user: int) -> tuple[WsClient, dict[str, Any]]:
    client = await WsClient.connect(f"{c.ws_url}?token={token(user)}")
    reply = await client.request("login", token=token(user))
    assert reply["type"] == "ok", reply
    return client, reply["data"]


async def resume(c: Cluster, old: WsClient, resume_token: str, last_seq: int) -> WsClient:
    """Wait for the move (4009), reconnect with ?resume=, resume."""
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await old.recv(15)
    assert old.ws.close_code in (CloseCode.RESUME_ELSEWHERE, CloseCode.GOING_AWAY), old.ws.close_code
    new = await WsClient.connect(f"{c.ws_url}?resume={resume_token}")
    reply = await new.request("resume", token=resume_token, last_seq=last_seq)
    assert reply["type"] == "ok", reply
    return new


def test_room_members_on_two_workers_keep_their_room_through_a_rolling_restart(tmp_path: Path) -> None:
    with cluster(write_config(tmp_path, casino=False), 2) as c:
        before = c.current()

        async def run() -> None:
            ua, ub = users_on_two_workers(c)
            a, da = await connect(c, ua)
            b, db = await connect(c, ub)
            room = (await a.request("join_room", room="Lobby"))["data"]["room"]["id"]
            joined = await b.request("join_room", room="Lobby")
            assert [u["id"] for u in joined["data"]["users"]] == [ua, ub]
            await b.request("set_user_variables", variables=[{"name": "seat", "value": 3}])
            await a.event("user_variables")
            await b.request("public_message", room=room, text="before")
            seq_a = (await a.event("public_message"))["seq"]
            seq_b = (await b.event("public_message"))["seq"]

            assert (await asyncio.to_thread(c.post, "/admin/rolling-restart"))["started"]
            a, b = await asyncio.gather(
                resume(c, a, da["resume_token"], seq_a), resume(c, b, db["resume_token"], seq_b)
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # both workers replaced
                now = c.current()
                if (
                    all(now[m]["pid"] != before[m]["pid"] for m in before)
                    and not c.get("/admin/workers")["rolling_restart"]
                ):
                    break
                await asyncio.sleep(0.2)
            else:
                pytest.fail("the rolling restart did not finish")
            # the second worker's move closes one of them again: follow it
            for _ in range(2):
                said = await a.request("public_message", room=room, text="after")
                if said["type"] == "ok":
                    break
                await asyncio.sleep(0.5)
            assert said["type"] == "ok", said
            got = await b.event("public_message", timeout=10)
            assert got["data"]["text"] == "after"
            listing = await b.request("list_rooms")
            lobby = next(r for r in listing["data"]["rooms"] if r["name"] == "Lobby")
            assert lobby["users"] == 2
            await a.close()
            await b.close()

        asyncio.run(run())


#: a mission whose progress is only written when a session moves or a worker stops (the
#: scheduler's tick, which also flushes, comes once an hour)
MOVING_MISSION = """tick_s = 3600.0
[[casino.zones.demo.rewards.missions]]
id = "spins"
metric = "rounds"
target = 1000
reward = 1
starts_at = 0
ends_at = 4102444800000
"""


def test_adding_and_removing_a_worker_moves_only_its_share(tmp_path: Path) -> None:
    """POST /admin/workers?count=3 then ?count=2: the sessions that hash to the new worker
    move to it and back (4009 + resume through the acceptor); the others are not touched.
    The mover's mission progress, staged in memory, is written before each move: the new
    owner goes on from it."""
    from gameserver.ring import HashRing, user_key
    from gameserver.worker import all_members

    three = HashRing(all_members(1, 3))
    with cluster(write_config(tmp_path, rewards=MOVING_MISSION), 2) as c:
        keys = iter(range(100))

        async def spins(client: WsClient, n: int, expect: int) -> int:
            """Spin `n` times; the mission's value once it reached `expect` (or 2.5 s passed)."""
            for _ in range(n):  # each its own key (a resumed client's request ids start again)
                got = await client.request("spin", game="fruit_slot", coin=1, key=f"k{next(keys)}")
                assert got["type"] == "ok", got
            for _ in range(50):  # the progress follows the round's reply
                view = await client.request("mission_progress", mission="spins")
                assert view["type"] == "ok", view
                if view["data"]["value"] >= expect:
                    break
                await asyncio.sleep(0.05)
            return int(view["data"]["value"])

        async def wait_workers(n: int) -> None:
            for _ in range(150):
                view = await c.aget("/admin/workers")
                current = [w for w in view["workers"] if w["current"] and w["ready"]]
                if not view["resizing"] and len(current) == n:
                    return
                await asyncio.sleep(0.2)
            pytest.fail(f"the cluster did not reach {n} workers")

        async def run() -> None:
            mover = next(u for u in range(500, 600) if three.owner(user_key("demo", u)) == "0.2")
            stayer = next(u for u in range(500, 600) if three.owner(user_key("demo", u)) != "0.2")
            m, dm = await connect(c, mover)
            s, _ = await connect(c, stayer)
            room = (await m.request("join_room", room="Lobby"))["data"]["room"]["id"]
            await s.request("join_room", room="Lobby")
            seq = (await m.event("user_entered"))["seq"]
            assert await spins(m, 3, 3) == 3

            for bad, status in (("abc", 400), ("", 400), ("2", 409), ("0", 409)):  # refused, nothing moves
                req = urllib.request.Request(
                    f"{c.admin_url}/admin/workers?count={bad}", data=b"", method="POST"
                )
                with pytest.raises(urllib.error.HTTPError) as refused:
                    await asyncio.to_thread(urllib.request.urlopen, req, None, 5)
                assert refused.value.code == status
                refused.value.close()
            post = urllib.request.Request(c.admin_url + "/admin/workers?count=3", data=b"", method="POST")
            assert (await asyncio.to_thread(lambda: urllib.request.urlopen(post, timeout=5).status)) == 202
            m = await resume(c, m, dm["resume_token"], seq)
            await wait_workers(3)
            assert await spins(m, 2, 5) == 5  # on 0.2, from the 3 written by the move
            seq = await chat_reaches(s, m, room, "to the mover on 0.2")
            stats = await c.aget("/stats")
            on_new = [w for w in stats["workers"] if w["worker"] == "0.2"]
            assert [w["players"] for w in on_new] == [1], stats  # the mover, and only it, is there

            shrink = urllib.request.Request(c.admin_url + "/admin/workers?count=2", data=b"", method="POST")
            assert (await asyncio.to_thread(lambda: urllib.request.urlopen(shrink, timeout=5).status)) == 202
            m = await resume(c, m, dm["resume_token"], seq)
            await wait_workers(2)
            assert await spins(m, 1, 6) == 6  # back home: 0.2 wrote its 2 before it went
            said = await m.request("public_message", room=room, text="back home")
            assert said["type"] == "ok", said
            assert (await s.event("public_message", timeout=10))["data"]["text"] == "back home"
            await m.close()
            await s.close()

        asyncio.run(run())


def test_sigkill_of_a_room_host_restores_its_sessions_and_rooms(tmp_path: Path) -> None:
    """SIGKILL the worker that hosts 'Lobby' and holds user A: its restarted process
    restores its checkpoint (gameserver/checkpoint.py). A resumes (``gap``: events after
    the checkpoint are lost) and is still in the Lobby with B, who lives on the other
    worker; C, also on the other worker, joined after the last checkpoint and is still a
    member too (the peers reconcile what changed after it)."""
    run_dir = tmp_path / "run"
    extra = f'checkpoint_interval = 3.0\nrun_dir = "{run_dir}"'
    with cluster(write_config(tmp_path, casino=False, cluster=extra), 2) as c:
        ckpts = run_dir / "checkpoints"

        async def checkpoint_after(t: float, member: str) -> None:
            for _ in range(100):
                files = list(ckpts.glob(f"{member}.*.ckpt"))
                if files and max(f.stat().st_mtime for f in files) > t:
                    return
                await asyncio.sleep(0.1)
            pytest.fail("no checkpoint written")

        async def run() -> None:
            host = c.ring.owner(room_key("demo", "Lobby"))
            ua, ub = users_on_two_workers(c)
            uc = next(u for u in range(400, 500) if owner_of(c, u) != host)
            a, da = await connect(c, ua)
            b, _ = await connect(c, ub)
            room = (await a.request("join_room", room="Lobby"))["data"]["room"]["id"]
            assert (await b.request("join_room", room="Lobby"))["type"] == "ok"
            seq_a = (await a.event("user_entered"))["seq"]
            victim = c.current()[host]
            await checkpoint_after(time.time(), host)  # the next one is 3 s away
            cl, _ = await connect(c, uc)  # after the checkpoint: only its home knows it
            assert (await cl.request("join_room", room="Lobby"))["type"] == "ok"
            seq_a = (await a.event("user_entered"))["seq"]  # not in the checkpoint
            os.kill(victim["pid"], signal.SIGKILL)
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await a.recv(10)
            for _ in range(150):
                now = c.current()
                if host in now and now[host]["pid"] != victim["pid"] and now[host]["ready"]:
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the killed worker was not restarted")
            a = await WsClient.connect(f"{c.ws_url}?resume={da['resume_token']}")
            reply = await a.request("resume", token=da["resume_token"], last_seq=seq_a)
            assert reply["type"] == "ok", reply
            assert reply["data"]["gap"] is True
            # numbering goes on from the client's seq: what the restore sent is replayed after it
            assert reply["data"]["last_seq"] >= seq_a
            replayed = [await a.recv() for _ in range(reply["data"]["last_seq"] - seq_a)]
            assert [e["seq"] for e in replayed] == list(range(seq_a + 1, reply["data"]["last_seq"] + 1))
            said = await a.request("public_message", room=room, text="after the crash")
            assert said["type"] == "ok", said
            for other in (b, cl):
                got = await other.event("public_message", timeout=10)
                assert got["data"]["text"] == "after the crash"
            for _ in range(30):  # room counts are coalesced: one sweep later at most
                listing = await b.request("list_rooms")
                lobby = next(r for r in listing["data"]["rooms"] if r["name"] == "Lobby")
                if lobby["users"] == 3:
                    break
                await asyncio.sleep(0.1)
            assert lobby["users"] == 3
            other = next(m for m in c.current() if m != host)
            assert c.current()[other]["pid"] != victim["pid"]
            for client in (a, b, cl):
                await client.close()

        asyncio.run(run())


def test_smartfox_clients_take_their_sessions_back_after_a_worker_is_added(tmp_path: Path) -> None:
    """A ring change moves the sessions whose users now hash to the new worker; a Unity
    client among them is closed without a goodbye, reconnects with its token (HRC), and
    the acceptor sends it to the new owner (the token is relocated), which has its
    SmartFox session: the same token. The clients that did not move are not touched."""
    from gameserver.ring import HashRing, user_key
    from gameserver.worker import all_members
    from protocol.sfs2x import Action
    from protocol.sfs2x.messages import handshake_request, login_request, ping_request

    from .client import SfsTcpClient

    unity = "UnityPlayer:Android:2022.3"
    three = HashRing(all_members(1, 3))
    with cluster(write_config(tmp_path, casino=False), 2) as c:

        async def run() -> None:
            movers: list[tuple[SfsTcpClient, str]] = []
            stayers: list[SfsTcpClient] = []
            for i in range(30):  # guests land anywhere: log in until one will move
                sfs = await SfsTcpClient.connect(c.sfs_port)
                sfs.write(handshake_request(client_type=unity), login_request("demo", f"g{i}"))
                tk = (await sfs.until(Action.HANDSHAKE)).get_utf_string("tk")
                uid = (await sfs.until(Action.LOGIN)).get_int("id")
                if three.owner(user_key("demo", uid)) == "0.2":
                    movers.append((sfs, tk))
                else:
                    stayers.append(sfs)
                if movers and len(stayers) >= 2:
                    break
            assert movers and stayers
            post = urllib.request.Request(c.admin_url + "/admin/workers?count=3", data=b"", method="POST")
            assert (await asyncio.to_thread(lambda: urllib.request.urlopen(post, timeout=5).status)) == 202
            for sfs, tk in movers:
                with pytest.raises((AssertionError, ConnectionError)):  # closed, without a 1005
                    while True:
                        for action, _ in await sfs.recv(20):
                            assert action != 1005, "a goodbye: the client would not reconnect"
                sfs.close()
                back = None
                for _ in range(50):
                    attempt = await SfsTcpClient.connect(c.sfs_port)
                    attempt.write(handshake_request(client_type=unity, reconnection_token=tk))
                    try:
                        hs = await attempt.until(Action.HANDSHAKE)
                    except (AssertionError, ConnectionError, TimeoutError):
                        attempt.close()
                        await asyncio.sleep(0.2)
                        continue
                    assert hs.get_utf_string("tk") == tk, "a new session: the new owner had no HRC state"
                    back = attempt
                    break
                assert back is not None
                back.write(ping_request())
                await back.until(Action.PING_PONG)
                back.close()
            for sfs in stayers:  # not moved: the same connection still answers
                sfs.write(ping_request())
                await sfs.until(Action.PING_PONG)
                sfs.close()

        asyncio.run(run())
