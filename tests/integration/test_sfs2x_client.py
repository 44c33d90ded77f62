"""Unmodified SmartFoxServer 2X clients against a real server.

The official JavaScript client (npm `sfs2x-api`, run by Node with `ws` as its WebSocket)
plays tests/sfs2x_js/scenario.js at `/BlueBox/websocket`, while a native WebSocket client
sits in the same room. The packages are installed into tests/sfs2x_js/node_modules (git
ignored) on first use; if that fails the test fails, unless CROUPIER_TEST_SKIP_NODE=1.
A second test speaks SFS2X over the raw TCP listener from Python.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from gameserver import auth
from gameserver.config import (
    AuthSection,
    CasinoSection,
    CasinoZone,
    Config,
    LeaderboardBoard,
    LeaderboardsSection,
    ServerSection,
    StoreSection,
)
from protocol.sfs2x import Action, Message, SFSObject, encode_frame
from protocol.sfs2x.messages import handshake_request, login_request, ping_request
from rooms.config import RoomConfig, ZoneConfig
from rooms.leaderboards.board import Metric

from .client import SfsTcpClient, WsClient
from .conftest import SECRET, Running, running_server

JS_DIR = pathlib.Path(__file__).resolve().parents[1] / "sfs2x_js"
MOD_ID = 42
USER_ID = 43
START = 10_000  # the casino's welcome credit (scenario.js checks it)


def sfs_config(transport: str) -> Config:
    return Config(
        server=ServerSection(
            host="127.0.0.1", ws_port=0, tcp_port=-1, sfs_tcp_port=0, transport=transport, sweep_interval=0.1
        ),
        auth=AuthSection(secret=SECRET),
        zones=[
            ZoneConfig(
                name="demo",
                guests=True,
                room_creation="everyone",
                groups=["default", "slots"],
                default_groups=["default"],
                rooms=[RoomConfig("Lobby", max_users=100), RoomConfig("Slot 1", group="slots")],
            ),
            ZoneConfig(name="members", guests=False, rooms=[RoomConfig("Lobby")]),
        ],
        store=StoreSection(url="memory://"),
        casino=CasinoSection(
            zones={"demo": CasinoZone(games={"fruit_slot": "96.5"}, starting_balance=START)}
        ),
        leaderboards=LeaderboardsSection(
            zones={"demo": {"spins": LeaderboardBoard(metric=Metric.SPINS, top_n=5)}}, tick_interval=0.05
        ),
    )


@pytest.fixture(scope="module")
def node() -> Iterator[str]:
    """The node binary, with sfs2x-api and ws installed next to the scenario."""
    if os.environ.get("CROUPIER_TEST_SKIP_NODE") == "1":
        pytest.skip("CROUPIER_TEST_SKIP_NODE=1")
    exe, npm = shutil.which("node"), shutil.which("npm")
    if exe is None or npm is None:
        pytest.fail("node and npm are needed for the SFS2X client test (or set CROUPIER_TEST_SKIP_NODE=1)")
    modules = JS_DIR / "node_modules"
    if not (modules / "sfs2x-api").is_dir() or not (modules / "ws").is_dir():
        pkgs = ["sfs2x-api@^1.8.6", "ws@^8"]  # the client version the protocol spec was verified with
        cmd = [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(JS_DIR), *pkgs]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(f"npm install sfs2x-api ws failed: {exc} (or set CROUPIER_TEST_SKIP_NODE=1)")
        if done.returncode != 0:
            pytest.fail(
                f"npm install sfs2x-api ws failed ({done.returncode}): {done.stderr[-2000:]}"
                " (or set CROUPIER_TEST_SKIP_NODE=1)"
            )
    yield exe


@pytest.mark.parametrize("transport", ["picows", "websockets"])
def test_official_js_client_scenarios(node: str, transport: str) -> None:
    with running_server(sfs_config(transport)) as server:
        asyncio.run(_js_scenario(node, server))


async def _js_scenario(node: str, server: Running) -> None:
    native = await WsClient.connect(f"ws://127.0.0.1:{server.server.ws_port}/ws")
    assert (await native.request("login", guest=True, zone="demo", name="native"))["type"] == "ok"
    assert (await native.request("join_room", room="Lobby"))["type"] == "ok"
    token = auth.mint(SECRET, MOD_ID, "demo", name="mod", role="moderator", expires=int(time.time()) + 600)
    carol = auth.mint(SECRET, USER_ID, "demo", name="carol", role="user", expires=int(time.time()) + 600)
    env = {**os.environ, "MOD_TOKEN": token, "USER_TOKEN": carol}
    proc = await asyncio.create_subprocess_exec(
        node,
        str(JS_DIR / "scenario.js"),
        "127.0.0.1",
        str(server.server.ws_port),
        cwd=JS_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    steps: list[str] = []
    result = ""
    try:
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
            if not line:
                break
            if line.startswith("STEP "):
                steps.append(line[5:])
                if line == "STEP joined":
                    # The SFS clients' message reached the native client; now answer them.
                    msg = await native.event("public_message")
                    assert msg["data"]["text"] == "hello room"
                    await native.request("public_message", room=msg["data"]["room"], text="hello from native")
            elif line in ("OK",) or line.startswith("FAIL"):
                result = line
    finally:
        if proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
        stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert result == "OK", f"{result} after steps {steps}\n{stderr[-3000:]}"
    assert steps == ["login-errors", "login", "join", "joined", "public", "private", "variables", "kick",
                     "ban", "extension", "leaderboard", "ping", "rooms", "spectator", "search", "owner", "invitation", "logout"]  # fmt: skip
    # The native client saw the SFS users come in, and leave (bob kicked, alice, mod).
    events = native.events
    try:
        while True:
            events.append(await native.recv(timeout=0.5))
    except TimeoutError:
        pass
    entered = {ev["data"]["user"]["name"] for ev in events if ev.get("event") == "user_entered"}
    left = {ev["data"]["user"] for ev in events if ev.get("event") == "user_left"}
    assert {"alice", "bob", "mod", "carol"} <= entered
    assert len(left) == 4 and {MOD_ID, USER_ID} <= left
    await native.close()


def test_sfs2x_over_tcp_split_packets() -> None:
    """The TCP listener re-assembles packets split at any byte and answers in SFS2X packets."""
    with running_server(sfs_config("picows")) as server:
        port = server.server.sfs_tcp_port
        assert port is not None

        async def scenario() -> None:
            c = await SfsTcpClient.connect(port)
            stream = encode_frame(handshake_request()) + encode_frame(login_request("demo", "tcpuser"))
            for i in range(len(stream)):  # one byte at a time
                c.writer.write(stream[i : i + 1])
                await c.writer.drain()
            got: list[tuple[int, SFSObject]] = []
            while len(got) < 2:
                got += await c.recv()
            assert got[0][0] == Action.HANDSHAKE and got[1][0] == Action.LOGIN
            assert got[1][1].get_utf_string("un") == "tcpuser"
            c.write(ping_request())
            [(action, _)] = await c.recv()
            assert action == Action.PING_PONG
            c.writer.write(b"\x01\x00\x00")  # no BINARY bit: the server closes
            assert await asyncio.wait_for(c.reader.read(), 5) == b""
            c.close()

        asyncio.run(scenario())


def test_a_unity_client_over_tcp_reconnects_with_hrc_and_gets_what_it_missed() -> None:
    """HRC: a C#/Unity-style TCP client in the Lobby drops without a goodbye; a native
    client talks there meanwhile; the client reconnects with `rt` = its token and gets the
    same token back, then the message it missed. Nobody saw it leave the room."""
    unity = "UnityPlayer:Android:2022.3"
    with running_server(sfs_config("picows")) as server:
        port = server.server.sfs_tcp_port
        assert port is not None

        async def scenario() -> None:
            c = await SfsTcpClient.connect(port)
            c.write(handshake_request(client_type=unity))
            token = (await c.until(Action.HANDSHAKE)).get_utf_string("tk")
            c.write(login_request("demo", "unity"))
            login = await c.until(Action.LOGIN)
            assert login.get_short("rs") == 30  # limits.resume_grace
            me = login.get_int("id")
            c.write(Message.system(Action.JOIN_ROOM, SFSObject().put_utf_string("n", "Lobby")))
            room = (await c.until(Action.JOIN_ROOM)).get_sfs_array("r").get_int(0)

            native = await WsClient.connect(server.ws_url)
            await native.request("login", guest=True, zone="demo", name="watcher")
            joined = await native.request("join_room", room="Lobby")
            assert me in {u["id"] for u in joined["data"]["users"]}

            c.abort()  # the network fails: no goodbye
            for _ in range(50):
                if server.server.hub.players[("demo", me)].conn is None:
                    break
                await asyncio.sleep(0.05)
            assert server.server.hub.players[("demo", me)].conn is None  # detached, kept
            said = await native.request("public_message", room=room, text="while you were away")
            assert said["type"] == "ok", said

            back = await SfsTcpClient.connect(port)
            back.write(handshake_request(client_type=unity, reconnection_token=token))
            assert (await back.until(Action.HANDSHAKE)).get_utf_string("tk") == token
            missed = await back.until(Action.GENERIC_MESSAGE)  # t = 0: public, in the Lobby
            assert (missed.get_byte("t"), missed.get_int("r")) == (0, room)
            assert missed.get_utf_string("m") == "while you were away"
            back.write(ping_request())
            await back.until(Action.PING_PONG)
            assert not [e for e in native.events if e.get("event") == "user_left"]
            back.close()
            await native.close()

        asyncio.run(scenario())
