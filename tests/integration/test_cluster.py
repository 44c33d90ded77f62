"""Cluster mode with real processes and sockets: a supervisor, its workers, fd hand-off.

Each cluster is `python -m gameserver run --workers N` on 127.0.0.1 (ports picked by the
kernel, read from its start-up lines). Only processes this file started are signalled,
by PID: the supervisor (SIGTERM at the end) and its workers (SIGKILL / SIGSTOP / SIGCONT
in the tests about them, PIDs from `GET /admin/workers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets

from gameserver import auth
from gameserver.casino import account_id, txn_key
from gameserver.hub import GUEST_ID_BASE
from gameserver.ring import HashRing, user_key
from gameserver.worker import all_members
from persistence import open_stores
from protocol.codes import CloseCode
from protocol.sfs2x import Action, Message, SFSObject
from protocol.sfs2x.messages import handshake_request, login_request, ping_request

from .client import SfsTcpClient, TcpClient, WsClient, http_json

SECRET = "cluster-secret"
ROOT = Path(__file__).resolve().parents[2]
START = 1_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(
    tmp: Path,
    *,
    casino: bool = True,
    transport: str = "picows",
    cluster: str = "",
    ports: tuple[int, ...] = (0, 0),
    name: str = "croupier",
    admin_port: int = 0,
    rewards: str = "",
) -> Path:
    """A cluster's config file; `rewards`: TOML lines of `[casino.zones.demo.rewards]`."""
    store = f'[store]\nurl = "sqlite:///{tmp}/{name}.db"\n' if casino else ""
    casino_zone = (
        f'[casino.zones.demo]\ncurrency = "FUN"\nstarting_balance = {START}\ngames = {{ fruit_slot = "96.5" }}\n'
        if casino
        else ""
    )
    if rewards:
        casino_zone += f"\n[casino.zones.demo.rewards]\n{rewards}\n"
    path = tmp / f"{name}.toml"
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
ws_port = {ports[0]}
tcp_port = {ports[1]}
admin_port = {admin_port}
sfs_tcp_port = {ports[2] if len(ports) > 2 else 0}
transport = "{transport}"
sweep_interval = 0.2

[limits]
close_timeout = 0.5
resume_grace = 30.0

[auth]
secret = "{SECRET}"

[cluster]
heartbeat_interval = 0.2
drain_timeout = 5.0
{cluster}

{store}
{casino_zone}
[[zones]]
name = "demo"
guests = true
flood = {{ rate = 100000.0, burst = 100000 }}

[[zones.rooms]]
name = "Lobby"
max_users = 1000
"""
    )
    return path


@dataclass
class Cluster:
    proc: subprocess.Popen[str]
    ws_url: str
    tcp_port: int
    admin_url: str
    workers: int
    nodes: int = 1
    sfs_port: int = 0

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.admin_url + path, timeout=5) as r:
            return json.loads(r.read())

    def post(self, path: str) -> Any:
        req = urllib.request.Request(self.admin_url + path, data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    async def aget(self, path: str) -> Any:
        return await asyncio.to_thread(self.get, path)

    def current(self) -> dict[str, dict[str, Any]]:
        """member -> its current process (pid, generation...)."""
        return {w["worker"]: w for w in self.get("/admin/workers")["workers"] if w["current"]}

    @property
    def ring(self) -> HashRing:
        return HashRing(all_members(self.nodes, self.workers))


@contextlib.contextmanager
def cluster(config: Path, workers: int, nodes: int = 1) -> Iterator[Cluster]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gameserver", "run", "--config", str(config), "--workers", str(workers)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        urls: dict[str, str] = {}
        deadline = time.monotonic() + 40
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline().strip()
            if not line:
                break
            for scheme in ("ws://", "tcp://", "http://", "sfs2x tcp://"):
                if line.startswith(scheme):
                    urls[scheme] = line.removeprefix("sfs2x ").split()[0]
            if line.startswith("workers:"):
                break
        assert {"ws://", "tcp://", "http://"} <= set(urls), f"the cluster did not start: {urls}"
        admin = urls["http://"].rsplit("/", 1)[0]
        sfs = int(urls["sfs2x tcp://"].rsplit(":", 1)[1]) if "sfs2x tcp://" in urls else 0
        tcp = int(urls["tcp://"].rsplit(":", 1)[1])
        yield Cluster(proc, urls["ws://"], tcp, admin, workers, nodes, sfs)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def token(user: int, zone: str = "demo") -> str:
    return auth.mint(SECRET, user, zone, expires=int(time.time()) + 3600)


def owner_of(c: Cluster, user: int) -> str:
    return c.ring.owner(user_key("demo", user))


async def chat_reaches(sender: WsClient, receiver: WsClient, room: Any, text: str) -> int:
    """`sender` says `text` in `room`, `receiver` hears it (and `sender` its own copy);
    the seq of the receiver's event."""
    said = await sender.request("public_message", room=room, text=text)
    assert said["type"] == "ok", said
    got = await receiver.event("public_message", timeout=10)
    assert got["data"]["text"] == text
    await sender.event("public_message")  # its own copy
    return int(got["seq"])


async def ws_login(c: Cluster, user: int, codec: str = "json") -> tuple[WsClient, dict[str, Any]]:
    client = await WsClient.connect(f"{c.ws_url}?token={token(user)}", codec)
    reply = await client.request("login", token=token(user))
    assert reply["type"] == "ok", reply
    return client, reply["data"]


@pytest.fixture(scope="module")
def main_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    with cluster(write_config(tmp), 3) as c:
        yield c


# -- routing --------------------------------------------------------------------------------


def test_guests_spread_over_workers_with_unique_ring_owned_ids(main_cluster: Cluster) -> None:
    """Guests (no routing key) go to the least-loaded worker; their ids never collide and
    each id is owned (on the ring) by the worker that allocated it."""
    c = main_cluster

    async def run() -> None:
        clients, seen = [], []
        for i in range(9):
            client = await WsClient.connect(c.ws_url, "msgpack" if i % 2 else "json")
            reply = await client.request("login", guest=True, zone="demo")
            assert reply["type"] == "ok", reply
            data = reply["data"]
            holder = auth.resume_owner(data["resume_token"])
            uid = data["user"]["id"]
            assert uid >= GUEST_ID_BASE
            assert c.ring.owner(user_key("demo", uid)) == holder
            seen.append((uid, holder))
            clients.append(client)
        ids = [uid for uid, _ in seen]
        assert len(set(ids)) == len(ids)
        holders = {h for _, h in seen}
        assert len(holders) == 3, seen  # spread over every worker
        stats = await c.aget("/stats")
        assert stats["players"] >= 9
        assert sum(1 for w in stats["workers"] if w["players"] > 0) == 3
        for client in clients:
            await client.close()

    asyncio.run(run())


def test_token_users_reach_their_owner_and_resume_there(main_cluster: Cluster) -> None:
    """`?token=` routes a WebSocket to the user's ring owner; `?resume=` back to the same
    worker, where the session (and its missed events) still is."""
    c = main_cluster

    async def run() -> None:
        owners = set()
        for user in range(11, 23):
            client, data = await ws_login(c, user)
            assert auth.resume_owner(data["resume_token"]) == owner_of(c, user)
            owners.add(owner_of(c, user))
            if user % 3 == 0:  # drop, then resume through the acceptor
                client.ws.transport.abort()
                await asyncio.sleep(0.1)
                again = await WsClient.connect(f"{c.ws_url}?resume={data['resume_token']}")
                reply = await again.request("resume", token=data["resume_token"])
                assert reply["type"] == "ok", reply
                assert reply["data"]["user"] == user
                await again.close()
            else:
                await client.close()
        assert len(owners) >= 2

    asyncio.run(run())


def test_tcp_first_frame_routes_login_and_resume(main_cluster: Cluster) -> None:
    """Raw TCP: the first frame (login with a token, or resume) is the routing key."""
    c = main_cluster

    async def run() -> None:
        for user in (31, 32, 33, 34):
            t = await TcpClient.connect(c.tcp_port)
            reply = await t.request("login", token=token(user))
            assert reply["type"] == "ok", reply
            rt = reply["data"]["resume_token"]
            assert auth.resume_owner(rt) == owner_of(c, user)
            assert (await t.request("ping"))["type"] == "ok"
            t.writer.transport.abort()
            await asyncio.sleep(0.1)
            t2 = await TcpClient.connect(c.tcp_port)
            reply = await t2.request("resume", token=rt)
            assert reply["type"] == "ok", reply
            await t2.close()

    asyncio.run(run())


def test_token_login_at_a_non_owner_worker_is_refused(main_cluster: Cluster) -> None:
    """Without a key in the URL the socket lands anywhere; a token login there for a user
    owned by another worker gets 110 wrong_worker and creates no second session."""
    c = main_cluster

    async def run() -> None:
        refused, tries = 0, 0
        for user in random.Random(5).sample(range(1000, 100_000), 20):
            if refused >= 2:
                break
            tries += 1
            client = await WsClient.connect(c.ws_url)  # no ?token=
            reply = await client.request("login", token=token(user))
            if reply["type"] == "error":
                assert reply["code"] == 110 and reply["name"] == "wrong_worker", reply
                assert "?token=" in reply["message"]
                assert (await client.request("list_rooms"))["code"] == 4  # still not logged in
                refused += 1
            else:
                assert auth.resume_owner(reply["data"]["resume_token"]) == owner_of(c, user)
            await client.close()
        assert refused >= 2, tries  # each try lands on a non-owner with probability 2/3

    asyncio.run(run())


def test_bad_token_in_url_is_answered_by_the_worker(main_cluster: Cluster) -> None:
    """A forged token carries no key: the worker answers the login with bad_token."""
    c = main_cluster

    async def run() -> None:
        forged = token(5)[:-2] + "xx"
        client = await WsClient.connect(f"{c.ws_url}?token={forged}")
        reply = await client.request("login", token=forged)
        assert reply["type"] == "error" and reply["code"] == 100, reply
        await client.close()

    asyncio.run(run())


def test_smartfox_tcp_clients_are_handed_to_a_worker(main_cluster: Cluster) -> None:
    """A first SFS2X TCP connection carries no routing key: the acceptor reads its handshake
    and hands the socket to a worker, which speaks SFS2X (handshake, guest login, ping)."""
    c = main_cluster

    async def run() -> None:
        sfs = await SfsTcpClient.connect(c.sfs_port)
        sfs.write(handshake_request(), login_request("demo", "sfsuser"))
        got: list[int] = []
        while len(got) < 2:
            got += [a for a, _ in await sfs.recv()]
        assert got[:2] == [Action.HANDSHAKE, Action.LOGIN]
        sfs.write(ping_request())
        while len(got) < 3:
            got += [a for a, _ in await sfs.recv()]
        assert got[2] == Action.PING_PONG
        sfs.close()

    asyncio.run(run())


def test_a_reconnecting_smartfox_client_is_routed_back_to_its_worker(main_cluster: Cluster) -> None:
    """HRC across workers: the session token names the worker, and the acceptor reads the
    handshake's `rt` to hand the reconnection to it. Four clients drop and come back: each
    gets its token back (the least-loaded worker would be the right one for all four only
    about once in 81 runs)."""
    c = main_cluster
    unity = "UnityPlayer:iOS:2022.3"

    async def one(i: int) -> None:
        sfs = await SfsTcpClient.connect(c.sfs_port)
        sfs.write(handshake_request(client_type=unity), login_request("demo", f"u{i}"))
        token = (await sfs.until(Action.HANDSHAKE)).get_utf_string("tk")
        assert (await sfs.until(Action.LOGIN)).get_short("rs") == 30
        assert auth.resume_owner(token) is not None  # "<member>.<hex>"
        sfs.abort()
        await asyncio.sleep(0.3)
        back = await SfsTcpClient.connect(c.sfs_port)
        back.write(handshake_request(client_type=unity, reconnection_token=token))
        [(action, params), *_] = await back.recv()
        assert action == Action.HANDSHAKE and params.get_utf_string("tk") == token, i
        back.write(ping_request())
        await back.until(Action.PING_PONG)
        back.close()

    async def run() -> None:
        await asyncio.gather(*(one(i) for i in range(4)))

    asyncio.run(run())


def test_the_back_office_runs_each_operation_on_the_players_worker(main_cluster: Cluster) -> None:
    """The supervisor's admin port forwards `/admin/players/...` to the player's home
    worker: a credit there moves the session's own balance and tells it; a worker that is
    not the home never sees it."""
    c = main_cluster
    admin = auth.mint(SECRET, 990, "demo", name="ops", role="admin", expires=int(time.time()) + 600)

    def office(path: str, body: Any = None) -> tuple[int, Any]:
        return http_json(c.admin_url + path, "GET" if body is None else "POST", body, admin)

    async def run() -> None:
        users = {owner_of(c, u): u for u in range(300, 400)}  # one user per worker
        assert len(users) == c.workers
        for member, user in sorted(users.items()):
            client, _ = await ws_login(c, user)
            before = (await client.request("balance"))["data"]["balance"]
            status, body = await asyncio.to_thread(office, f"/admin/players/demo/{user}")
            assert (status, body["online"], body["balance"]) == (200, True, before), (member, body)
            credit = {"amount": 7, "key": f"cluster-{user}-{time.time_ns()}", "reason": "test"}
            status, body = await asyncio.to_thread(office, f"/admin/players/demo/{user}/adjust", credit)
            assert (status, body["balance"]) == (200, before + 7), (member, body)
            assert (await client.event("balance_adjusted"))["data"]["balance"] == before + 7
            assert (await client.request("balance"))["data"]["balance"] == before + 7
            await client.close()
        clients = [(await ws_login(c, user))[0] for user in users.values()]  # one on each worker
        try:  # (the cluster is shared by this module's tests: others may have sessions online)
            status, body = await asyncio.to_thread(office, "/admin/zones/demo/message", {"text": "hello all"})
            assert status == 200 and body["sent"] >= len(clients) and "missing_workers" not in body
            for client in clients:
                assert (await client.event("admin_message"))["data"]["text"] == "hello all"
            status, body = await asyncio.to_thread(office, "/admin/zones/demo/rooms")
            assert status == 200 and [r["name"] for r in body["rooms"]].count("Lobby") == 1  # hosted once
            assert body["players"] >= len(clients)
            made = await clients[0].request("create_room", name=f"office-{time.time_ns()}", max_users=4)
            rid = made["data"]["room"]["id"]
            assert (await clients[1].request("join_room", room=rid))["type"] == "ok"
            status, body = await asyncio.to_thread(office, f"/admin/zones/demo/rooms/{rid}/close", {})
            assert (status, body["closed"], body["left"]) == (200, 1, 2)  # by its host, whichever it is
            assert (await clients[2].request("join_room", room=rid))["code"] == 200  # gone everywhere
        finally:
            for client in clients:
                await client.close()
        unauthorized = urllib.request.Request(c.admin_url + f"/admin/players/demo/{users[min(users)]}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(unauthorized, timeout=5)
        assert refused.value.code == 401
        refused.value.close()

    asyncio.run(run())


def test_metrics_sum_counters_and_label_gauges(main_cluster: Cluster) -> None:
    c = main_cluster
    with urllib.request.urlopen(c.admin_url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    lines = text.splitlines()
    login = [ln for ln in lines if ln.startswith('croupier_requests_total{type="Login"}')]
    assert len(login) == 1, login  # one summed series
    stats = c.get("/stats")
    assert float(login[0].split()[-1]) >= stats["requests"]["Login"]
    players = [ln for ln in lines if ln.startswith("croupier_players{")]
    assert sorted(ln.split('"')[1] for ln in players) == ["0.0", "0.1", "0.2"]
    # every worker process applies server.gc_freeze: its start-up objects are frozen
    frozen = [ln for ln in lines if ln.startswith("croupier_gc_frozen_objects{")]
    assert len(frozen) == 3 and all(float(ln.split()[-1]) > 1000 for ln in frozen), frozen
    with urllib.request.urlopen(c.admin_url + "/readyz", timeout=5) as r:
        assert r.status == 200


def test_sigkill_of_a_worker_restarts_it_and_spares_the_others(main_cluster: Cluster) -> None:
    """SIGKILL one worker: its clients drop, the supervisor starts a new process for it,
    which restores the sessions of its last checkpoint: the clients resume there (with
    ``gap``). The other workers' clients go on."""
    c = main_cluster

    async def run() -> None:
        before = c.current()
        victim = "0.1"
        users = {owner_of(c, u): u for u in range(40, 80)}
        assert set(users) == {"0.0", "0.1", "0.2"}
        clients = {m: await ws_login(c, u) for m, u in users.items()}
        for _ in range(30):  # a guest on the victim, which spins: its wallet names its session
            guest = await WsClient.connect(c.ws_url)
            g = (await guest.request("login", guest=True, zone="demo"))["data"]
            if auth.resume_owner(g["resume_token"]) == victim:
                break
            await guest.close()
        else:
            pytest.fail("no guest landed on the victim")
        assert (await guest.request("spin", game="fruit_slot", coin=1, key="g1"))["type"] == "ok"
        guest_balance = (await guest.request("balance"))["data"]["balance"]
        await asyncio.sleep(4.5)  # past a checkpoint (cluster.checkpoint_interval: 2 s)
        os.kill(before[victim]["pid"], signal.SIGKILL)
        with pytest.raises(websockets.ConnectionClosed):
            await clients[victim][0].request("ping")
        for m in ("0.0", "0.2"):
            assert (await clients[m][0].request("ping"))["type"] == "ok"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = await asyncio.to_thread(c.current)
            if victim in now and now[victim]["pid"] != before[victim]["pid"] and now[victim]["ready"]:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the killed worker was not restarted")
        assert now[victim]["generation"] > before[victim]["generation"]
        assert {m: now[m]["pid"] for m in ("0.0", "0.2")} == {m: before[m]["pid"] for m in ("0.0", "0.2")}
        rt = clients[victim][1]["resume_token"]
        client = await WsClient.connect(f"{c.ws_url}?resume={rt}")
        resumed = await client.request("resume", token=rt)
        assert resumed["type"] == "ok", resumed
        assert resumed["data"] == {"user": users[victim], "last_seq": 0, "gap": True}
        assert (await client.request("balance"))["type"] == "ok"
        guest = await WsClient.connect(f"{c.ws_url}?resume={g['resume_token']}")
        assert (await guest.request("resume", token=g["resume_token"]))["data"]["gap"] is True
        assert (await guest.request("balance"))["data"]["balance"] == guest_balance  # the same wallet
        await guest.close()
        for m in ("0.0", "0.2"):
            assert (await clients[m][0].request("ping"))["type"] == "ok"
            await clients[m][0].close()
        await clients[victim][0].close()
        await client.close()

    asyncio.run(run())


# -- the WebSocket stacks -------------------------------------------------------------------


def test_websockets_stack_adopts_handed_sockets(tmp_path: Path) -> None:
    """The same routing with the websockets stack (its sans-I/O protocol adopts the socket);
    then SIGHUP to the supervisor rolls the workers, and a second roll waits for the first."""
    with cluster(write_config(tmp_path, casino=False, transport="websockets"), 2) as c:

        async def run() -> None:
            for user in (1, 2, 3, 4, 5):
                client, data = await ws_login(c, user, "msgpack")
                assert auth.resume_owner(data["resume_token"]) == owner_of(c, user)
                client.ws.transport.abort()
                await asyncio.sleep(0.05)
                again = await WsClient.connect(f"{c.ws_url}?resume={data['resume_token']}")
                assert (await again.request("resume", token=data["resume_token"]))["type"] == "ok"
                await again.close()
            guest = await WsClient.connect(c.ws_url)
            assert (await guest.request("login", guest=True, zone="demo"))["type"] == "ok"
            # SIGHUP to the supervisor: a rolling restart; the guest is moved with 4009
            before = await asyncio.to_thread(c.current)
            c.proc.send_signal(signal.SIGHUP)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await guest.recv(15)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4009
            await guest.close()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                view = await c.aget("/admin/workers")
                now = {w["worker"]: w for w in view["workers"] if w["current"]}
                if not view["rolling_restart"] and all(now[m]["pid"] != before[m]["pid"] for m in before):
                    break
                await asyncio.sleep(0.2)
            else:
                pytest.fail("SIGHUP did not restart every worker")
            assert c.post("/admin/rolling-restart")["started"]  # and again over HTTP...
            with pytest.raises(urllib.error.HTTPError) as busy:
                c.post("/admin/rolling-restart")  # ...but not twice at once
            assert busy.value.code == 409
            busy.value.close()

        asyncio.run(run())


def test_smartfox_clients_take_their_sessions_back_after_a_rolling_restart(tmp_path: Path) -> None:
    """A Unity client in the Lobby when its worker is replaced: the worker closes its
    socket without a goodbye (no 1005), so the client reconnects with its token (HRC), to
    the successor, which has its session (HrcState in the handover): the same token, still
    in the Lobby, and a native client there never sees it leave."""
    unity = "UnityPlayer:Android:2022.3"
    with cluster(write_config(tmp_path, casino=False), 2) as c:

        async def run() -> None:
            sfs = await SfsTcpClient.connect(c.sfs_port)
            sfs.write(handshake_request(client_type=unity), login_request("demo", "mobile"))
            tk = (await sfs.until(Action.HANDSHAKE)).get_utf_string("tk")
            me = (await sfs.until(Action.LOGIN)).get_int("id")
            sfs.write(Message.system(Action.JOIN_ROOM, SFSObject().put_utf_string("n", "Lobby")))
            lobby = (await sfs.until(Action.JOIN_ROOM)).get_sfs_array("r").get_int(0)
            worker = auth.resume_owner(tk)
            native, data = await ws_login(c, next(u for u in range(1, 200) if owner_of(c, u) == worker))
            assert (await native.request("join_room", room="Lobby"))["type"] == "ok"
            before = await asyncio.to_thread(c.current)
            assert (await asyncio.to_thread(c.post, "/admin/rolling-restart"))["started"]
            with pytest.raises((AssertionError, ConnectionError)):  # closed, without a 1005
                while True:
                    for action, _ in await sfs.recv(20):
                        assert action != 1005, "a goodbye: the client would not reconnect"
            sfs.close()
            back: SfsTcpClient | None = None
            deadline = time.monotonic() + 20
            while back is None and time.monotonic() < deadline:
                try:
                    attempt = await SfsTcpClient.connect(c.sfs_port)
                except OSError:
                    await asyncio.sleep(0.2)  # the acceptor is not there yet
                    continue
                try:
                    attempt.write(handshake_request(client_type=unity, reconnection_token=tk))
                    hs = await attempt.until(Action.HANDSHAKE)
                except (AssertionError, ConnectionError, TimeoutError):
                    attempt.close()
                    await asyncio.sleep(0.2)  # the successor is not serving yet
                    continue
                assert hs.get_utf_string("tk") == tk, "a new session: the successor had no HRC state"
                back = attempt
            assert back is not None, "could not reconnect"
            now = await asyncio.to_thread(c.current)
            assert now[worker]["pid"] != before[worker]["pid"]  # a new process holds it
            native2 = native
            if native.ws.close_code is not None:  # moved too (4009): resume there
                native2 = await WsClient.connect(f"{c.ws_url}?resume={data['resume_token']}")
                assert (await native2.request("resume", token=data["resume_token"]))["type"] == "ok"
            said = await native2.request("public_message", room=lobby, text="still here?")
            assert said["type"] == "ok", said
            await native2.event("public_message")  # its own copy
            got = await back.until(Action.GENERIC_MESSAGE, timeout=10)
            assert got.get_utf_string("m") == "still here?"
            say = SFSObject().put_byte("t", 0).put_int("r", lobby).put_utf_string("m", "yes")
            back.write(Message.system(Action.GENERIC_MESSAGE, say))
            heard = await native2.event("public_message", timeout=10)
            assert heard["data"]["text"] == "yes" and heard["data"]["from"] == me
            left = [e for e in native2.events if e.get("event") == "user_left"]
            assert left == []
            back.close()
            await native2.close()

        asyncio.run(run())


# -- rolling restart ------------------------------------------------------------------------


class Spins:
    def __init__(self) -> None:
        self.acked: dict[tuple[int, str], Any] = {}
        self.failed: list[Any] = []
        self.closes: list[int] = []
        self.resumed = 0
        self.relogged = 0


async def spin_player(c: Cluster, user: int, spins: Spins, stop: asyncio.Event) -> None:
    """Spin until `stop`; on 4009/1001 reconnect with ?resume= (or log in again) and retry
    the request that was in flight with the same key."""
    n = 0
    resume: str | None = None
    while not stop.is_set():
        url = f"{c.ws_url}?resume={resume}" if resume else f"{c.ws_url}?token={token(user)}"
        client = await WsClient.connect(url)
        try:
            if resume:
                reply = await client.request("resume", token=resume)
                if reply["type"] == "ok":
                    spins.resumed += 1
                else:
                    assert reply["code"] == 106, reply
                    await client.close()
                    resume = None
                    spins.relogged += 1
                    continue
            else:
                reply = await client.request("login", token=token(user))
                assert reply["type"] == "ok", reply
                resume = reply["data"]["resume_token"]
            while not stop.is_set():
                key = f"u{user}-{n}"
                reply = await client.request("spin", game="fruit_slot", coin=1, key=key)
                if reply["type"] != "ok":
                    spins.failed.append(reply)
                else:
                    spins.acked[(user, key)] = reply["data"]
                n += 1
                await asyncio.sleep(0.01)
            await client.close()
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            spins.closes.append(code)
            assert code in (1001, 4009), code  # only the drain closes connections here
        finally:
            with contextlib.suppress(Exception):
                await client.close()


async def reconcile(store_url: str, spins: Spins) -> None:
    stores = await open_stores(store_url)
    try:
        assert await stores.wallet.ledger_totals() == {"FUN": 0}
        assert await stores.wallet.balance_mismatches() == []
        for (user, key), data in spins.acked.items():
            acct = account_id("demo", user)
            result = await stores.wallet.get_txn(txn_key("spin", acct, "k", key))
            assert result is not None, f"acknowledged spin {key} is not in the ledger"
            assert result.round_id == data["round"]
    finally:
        await stores.close()


def test_rolling_restart_under_load_loses_nothing(tmp_path: Path) -> None:
    """POST /admin/rolling-restart while players spin: every worker is replaced one at a
    time, clients get 4009 and come back, 0 failed requests, 0 acknowledged spins lost."""
    config = write_config(tmp_path)
    spins = Spins()
    with cluster(config, 2) as c:
        before = c.current()

        async def run() -> None:
            stop = asyncio.Event()
            users = list(range(200, 208))
            tasks = [asyncio.create_task(spin_player(c, u, spins, stop)) for u in users]
            await asyncio.sleep(1.0)
            assert (await asyncio.to_thread(c.post, "/admin/rolling-restart"))["started"]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                view = await c.aget("/admin/workers")
                now = {w["worker"]: w for w in view["workers"] if w["current"]}
                if not view["rolling_restart"] and all(now[m]["pid"] != before[m]["pid"] for m in before):
                    break
                await asyncio.sleep(0.2)
            else:
                pytest.fail("the rolling restart did not finish")
            acked_at_end = len(spins.acked)
            await asyncio.sleep(1.0)  # everyone is back and spinning on the new workers
            assert len(spins.acked) > acked_at_end
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 20)

        asyncio.run(run())
        after = c.current()
        assert all(after[m]["generation"] > before[m]["generation"] for m in before)
        with urllib.request.urlopen(c.admin_url + "/metrics", timeout=5) as r:
            text = r.read().decode()
        assert "croupier_supervisor_superseded_total 0.0" in text  # replaced by the roll only
    assert spins.failed == [], [f.get("message") for f in spins.failed[:3]]
    assert spins.closes and set(spins.closes) <= {1001, 4009}
    assert 4009 in spins.closes
    assert len(spins.acked) > 50
    asyncio.run(reconcile(f"sqlite:///{tmp_path}/croupier.db", spins))


# -- fencing --------------------------------------------------------------------------------


def test_stalled_worker_that_wakes_up_acts_for_nobody(tmp_path: Path) -> None:
    """SIGSTOP a worker past its lease: the supervisor replaces it. On SIGCONT the old
    process finds its lease expired, handles nothing (the spin its client sent while it
    was stopped is never played) and exits by itself."""
    config = write_config(tmp_path, cluster="kill_superseded = false\nlease_timeout = 1.5")
    with cluster(config, 2) as c:

        async def run() -> None:
            before = c.current()
            user = next(u for u in range(300, 400) if owner_of(c, u) == "0.0")
            old_client, _ = await ws_login(c, user)
            bal = (await old_client.request("balance"))["data"]["balance"]
            old_pid = before["0.0"]["pid"]
            os.kill(old_pid, signal.SIGSTOP)
            try:
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    now = await asyncio.to_thread(c.current)
                    if "0.0" in now and now["0.0"]["pid"] != old_pid and now["0.0"]["ready"]:
                        break
                    await asyncio.sleep(0.1)
                else:
                    pytest.fail("the stalled worker was not replaced")
                # the stale connection: a spin sent while its worker sleeps
                await old_client.send(
                    {"type": "spin", "id": 99, "game": "fruit_slot", "coin": 1, "key": "stale"}
                )
                new_client, _ = await ws_login(c, user)  # the user moved to the new process
            finally:
                os.kill(old_pid, signal.SIGCONT)
            with pytest.raises((websockets.ConnectionClosed, TimeoutError)):
                while True:  # no reply to the stale spin: the connection is dropped
                    msg = await old_client.recv(timeout=5)
                    assert msg.get("id") != 99, msg
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and Path(f"/proc/{old_pid}").exists():
                await asyncio.sleep(0.1)
            assert not Path(f"/proc/{old_pid}").exists(), "the superseded worker did not exit"
            await old_client.close()
            reply = await new_client.request("balance")
            assert reply["data"]["balance"] == bal  # the stale spin was never played
            spin = await new_client.request("spin", game="fruit_slot", coin=1, key="stale")
            assert spin["type"] == "ok", spin  # the key was never used: played now, once
            await new_client.close()

        asyncio.run(run())


# -- several nodes --------------------------------------------------------------------------


def test_two_nodes_share_one_ring_and_redirect(tmp_path: Path) -> None:
    """Two supervisors with the same [cluster] nodes list form one ring of 4 workers; a
    client at the wrong node gets close 4010 with the right node's address."""
    ports = [(free_port(), free_port()), (free_port(), free_port())]
    nodes = "\n".join(
        f'[[cluster.nodes]]\nhost = "127.0.0.1"\nws_port = {ws}\ntcp_port = {tcp}\n' for ws, tcp in ports
    )
    configs = [
        write_config(
            tmp_path, casino=False, cluster=f"node_index = {i}\n{nodes}", ports=ports[i], name=f"n{i}"
        )
        for i in range(2)
    ]
    with cluster(configs[0], 2, nodes=2) as a, cluster(configs[1], 2, nodes=2) as b:

        async def run() -> None:
            ring = a.ring
            remote = next(u for u in range(1, 200) if ring.owner(user_key("demo", u)).startswith("1."))
            local = next(u for u in range(1, 200) if ring.owner(user_key("demo", u)).startswith("0."))
            # WebSocket: 101, then close 4010 with the owner node's URL as the reason
            ws = await websockets.connect(f"{a.ws_url}?token={token(remote)}")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4010
            assert closed.value.rcvd.reason == b.ws_url
            client = await WsClient.connect(f"{closed.value.rcvd.reason}?token={token(remote)}")
            reply = await client.request("login", token=token(remote))
            assert reply["type"] == "ok" and auth.resume_owner(reply["data"]["resume_token"]).startswith("1.")
            await client.close()
            # raw TCP: a `closing` message with code 4010 and the tcp:// address
            t = await TcpClient.connect(a.tcp_port)
            await t.send({"type": "login", "id": 1, "token": token(remote)})
            closing = await t.recv()
            assert closing == {"type": "closing", "code": 4010, "reason": f"tcp://127.0.0.1:{b.tcp_port}"}
            with pytest.raises(ConnectionError):
                await t.recv()
            await t.close()
            # the local user is served here; guests of both nodes never share an id
            client, data = await ws_login(a, local)
            assert auth.resume_owner(data["resume_token"]).startswith("0.")
            await client.close()
            ids = set()
            for node in (a, b, a, b, a, b):
                g = await WsClient.connect(node.ws_url)
                reply = await g.request("login", guest=True, zone="demo")
                holder = auth.resume_owner(reply["data"]["resume_token"])
                assert ring.owner(user_key("demo", reply["data"]["user"]["id"])) == holder
                ids.add(reply["data"]["user"]["id"])
                await g.close()
            assert len(ids) == 6

        asyncio.run(run())


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_haproxy_config_in_front_of_two_nodes(tmp_path: Path) -> None:
    """deploy/haproxy.cfg on loopback ports: every token user ends up logged in on its
    owner, directly or after one 4010 redirect to the owner's per-node frontend."""
    lb, f0, f1, lbtcp = free_port(), free_port(), free_port(), free_port()
    node_ports = [(free_port(), free_port(), free_port()) for _ in range(2)]  # ws, tcp, admin
    cfg = (ROOT / "deploy/haproxy.cfg").read_text()
    for old, new in (
        [
            ("maxconn 200000", "maxconn 2000"),
            ("bind :80\n", f"bind 127.0.0.1:{lb}\n"),
            ("bind :8810", f"bind 127.0.0.1:{f0}"),
            ("bind :8811", f"bind 127.0.0.1:{f1}"),
            ("bind :8801", f"bind 127.0.0.1:{lbtcp}"),
            ("inter 2s", "inter 200ms"),
        ]
        + [
            (f"10.0.0.{i + 1}:8800 check port 8802", f"127.0.0.1:{ws} check port {admin}")
            for i, (ws, _, admin) in enumerate(node_ports)
        ]
        + [(f"10.0.0.{i + 1}:8801", f"127.0.0.1:{tcp}") for i, (_, tcp, _) in enumerate(node_ports)]
    ):
        assert old in cfg, old
        cfg = cfg.replace(old, new)
    (tmp_path / "haproxy.cfg").write_text(cfg)
    nodes = "\n".join(
        f'[[cluster.nodes]]\nhost = "127.0.0.1"\nws_port = {front}\ntcp_port = {tcp}\n'
        for front, (_, tcp, _) in zip((f0, f1), node_ports, strict=True)
    )
    configs = [
        write_config(
            tmp_path,
            casino=False,
            cluster=f"node_index = {i}\n{nodes}",
            ports=(ws, tcp),
            name=f"n{i}",
            admin_port=admin,
        )
        for i, (ws, tcp, admin) in enumerate(node_ports)
    ]
    with cluster(configs[0], 2, nodes=2) as a, cluster(configs[1], 2, nodes=2):
        haproxy = subprocess.Popen(
            ["haproxy", "-db", "-f", str(tmp_path / "haproxy.cfg")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:

            async def run() -> None:
                await asyncio.sleep(1.0)  # health checks
                redirected = 0
                for user in range(1, 17):
                    url = f"ws://127.0.0.1:{lb}/ws?token={token(user)}"
                    client = await WsClient.connect(url)
                    try:
                        reply = await client.request("login", token=token(user))
                    except websockets.ConnectionClosed as exc:
                        assert exc.rcvd is not None and exc.rcvd.code == 4010
                        assert exc.rcvd.reason in (f"ws://127.0.0.1:{f0}/ws", f"ws://127.0.0.1:{f1}/ws")
                        redirected += 1
                        client = await WsClient.connect(f"{exc.rcvd.reason}?token={token(user)}")
                        reply = await client.request("login", token=token(user))
                    assert reply["type"] == "ok", reply
                    assert auth.resume_owner(reply["data"]["resume_token"]) == a.ring.owner(
                        user_key("demo", user)
                    )
                    await client.close()
                assert redirected < 16  # HAProxy's own hash put some users on their node

            asyncio.run(run())
        finally:
            haproxy.terminate()
            haproxy.wait(10)


def _post_json(c: Cluster, path: str, body: Any) -> tuple[int, Any]:
    return http_json(c.admin_url + path, "POST", body)


@pytest.mark.redis
def test_a_node_joins_a_running_cluster_and_leaves_again(tmp_path: Path) -> None:
    """Node 0 runs alone (2 workers, Redis bus); node 1 starts `joining` and
    `POST /admin/nodes` on both adds it: the users that now hash to node 1 move there
    (4009, resume through node 0's acceptor, 4010 to node 1, resume) and keep their room
    with the users who stay. Removing it again (leaving node first) moves them back."""
    from ..contract.conftest import REDIS_URL, require

    require("Redis", REDIS_URL)
    ports = [(free_port(), free_port()), (free_port(), free_port())]
    addrs = [{"host": "127.0.0.1", "ws_port": ws, "tcp_port": tcp} for ws, tcp in ports]
    bus = f'bus_url = "{REDIS_URL}"\nbus_prefix = "croupier-test:{random.getrandbits(32):x}:"'
    both = "\n".join(
        f'[[cluster.nodes]]\nhost = "127.0.0.1"\nws_port = {ws}\ntcp_port = {tcp}\n' for ws, tcp in ports
    )
    cfg0 = write_config(tmp_path, casino=False, cluster=bus, ports=ports[0], name="n0")
    cfg1 = write_config(
        tmp_path,
        casino=False,
        cluster=f"{bus}\nnode_index = 1\njoining = true\n{both}",
        ports=ports[1],
        name="n1",
    )
    two = HashRing(all_members(2, 2))
    opened: list[WsClient] = []  # closed at the end, also when an assertion fails
    with cluster(cfg0, 2) as a:

        async def login(url: str, user: int) -> tuple[WsClient, dict[str, Any]]:
            client = await WsClient.connect(f"{url}?token={token(user)}")
            opened.append(client)
            reply = await client.request("login", token=token(user))
            assert reply["type"] == "ok", reply
            return client, reply["data"]

        async def follow(old: WsClient, url: str, rt: str, last_seq: int) -> tuple[WsClient, str]:
            """Wait for 4009; resume at `url`, following one 4010 redirect."""
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await old.recv(15)
            assert old.ws.close_code == CloseCode.RESUME_ELSEWHERE, old.ws.close_code
            for _ in range(3):
                client = await WsClient.connect(f"{url}?resume={rt}")
                opened.append(client)
                try:
                    reply = await client.request("resume", token=rt, last_seq=last_seq)
                except websockets.ConnectionClosed:
                    code, reason = client.ws.close_code, client.ws.close_reason
                    assert code == CloseCode.WRONG_NODE, (code, reason)
                    url = reason
                    continue
                assert reply["type"] == "ok", reply
                return client, url
            pytest.fail("no resume after 3 redirects")

        async def settled(*nodes: Any) -> None:
            """Wait until no node is still carrying out its last node-list change: an
            operator starts the next one only then (docs/cluster.md; a node answers 409
            `busy` before)."""
            for _ in range(300):  # bounded: 15 s
                views = [await node.aget("/admin/nodes") for node in nodes]
                if not any(v["changing"] for v in views):
                    return
                await asyncio.sleep(0.05)
            pytest.fail(f"a node-list change did not finish: {views}")

        async def run() -> None:
            mover = next(u for u in range(1, 300) if two.owner(user_key("demo", u)).startswith("1."))
            stayer = next(u for u in range(1, 300) if two.owner(user_key("demo", u)).startswith("0."))
            try:
                await moves(mover, stayer)
            finally:  # a failure must not leave the clients to a later test's collection
                for client in opened:
                    await client.close()

        async def moves(mover: int, stayer: int) -> None:
            m, dm = await login(a.ws_url, mover)  # both on node 0 while it is alone
            s, _ = await login(a.ws_url, stayer)
            room = (await m.request("join_room", room="Lobby"))["data"]["room"]["id"]
            await s.request("join_room", room="Lobby")
            seq = (await m.event("user_entered"))["seq"]
            with cluster(cfg1, 2, nodes=2) as b:
                # joining: node 1 sends its clients to node 0 (which still owns every user)
                ws = await websockets.connect(f"{b.ws_url}?token={token(mover)}")
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.WRONG_NODE
                unchanged = await asyncio.to_thread(_post_json, a, "/admin/nodes", {"nodes": [addrs[1]]})
                assert unchanged[0] == 409
                for bad in ({"nodes": "x"}, {"nodes": [{"host": 1}]}, {"nodez": addrs}, []):  # malformed
                    assert (await asyncio.to_thread(_post_json, a, "/admin/nodes", bad))[0] == 400, bad
                status, body = await asyncio.to_thread(_post_json, a, "/admin/nodes", {"nodes": addrs})
                assert status == 202, body
                m, url = await follow(m, a.ws_url, dm["resume_token"], seq)
                assert url == b.ws_url  # redirected to the new node
                assert (await asyncio.to_thread(_post_json, b, "/admin/nodes", {"nodes": addrs}))[0] == 202
                seq = await chat_reaches(s, m, room, "to node 1")
                stats = await b.aget("/stats")
                assert stats["players"] == 1  # the mover, and only it

                # and out again: the leaving node first, then the one that stays
                await settled(a, b)
                for node in (b, a):
                    status, body = await asyncio.to_thread(
                        _post_json, node, "/admin/nodes", {"nodes": addrs[:1]}
                    )
                    assert status == 202, body
                m, url = await follow(m, b.ws_url, dm["resume_token"], seq)
                assert url == a.ws_url
                said = await m.request("public_message", room=room, text="back on node 0")
                assert said["type"] == "ok", said
                assert (await s.event("public_message", timeout=10))["data"]["text"] == "back on node 0"

        asyncio.run(run())
