"""The Colyseus client of the load generator against the real Colyseus peer server.

bench/peers/colyseus/server.mjs runs under Node with the pinned packages, installed into
bench/peers/colyseus/node_modules (git ignored) from the lockfile on first use. Without
`node` or `npm` the tests are skipped. One test speaks the protocol byte by byte (a
seat reservation, JOIN_ROOM and its confirmation, ROOM_REQUEST / ROOM_RESPONSE, PING);
one runs the load generator with `protocol="colyseus"` for a few sessions.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from websockets.asyncio.client import connect

from bench.loadgen import colyseus, scenario
from bench.loadgen.runner import Options, run

PEER_DIR = Path(__file__).resolve().parents[2] / "bench" / "peers" / "colyseus"
START = 100_000  # the peer's starting balance (PEER_STARTING_BALANCE)
#: every pay of fruit_slot at coin 1 (its paytable), and no win
FRUIT_WINS = {0, 2, 5, 10, 15, 20, 50, 100, 500}

SMALL = """
name = "peer-ci"
connections = 24
duration = 3

[ramp]
rate = 200
concurrency = 24

[reconnect]
enabled = false

[[profiles]]
name = "spinner"
weight = 1
steps = [{ op = "login" }, { op = "ping", every = 0.5 }, { op = "spin", every = 0.25 }]

[[profiles]]
name = "chatter"
weight = 1
steps = [
  { op = "login" },
  { op = "join_room", fields = { room = "Lobby" } },
  { op = "ping", every = 0.5 },
  { op = "chat", every = 0.5, fields = { text = "good luck @t$sent_us" } },
]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A running Colyseus peer on a free loopback port."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the Colyseus peer")
    if not (PEER_DIR / "node_modules" / "@colyseus" / "core").is_dir():
        cmd = [npm, "ci", "--prefix", str(PEER_DIR), "--no-audit", "--no-fund"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(f"npm ci in bench/peers/colyseus failed: {exc}")
        if done.returncode != 0:
            pytest.fail(f"npm ci in bench/peers/colyseus failed ({done.returncode}): {done.stderr[-2000:]}")
    port = _free_port()
    log = tmp_path_factory.mktemp("peer") / "colyseus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [node, "server.mjs", "--port", str(port), "--host", "127.0.0.1"],
            cwd=PEER_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Colyseus peer did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_header_encoding_round_trips() -> None:
    for n in (0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32 + 5):
        assert colyseus.decode_number(colyseus.encode_number(n), 0) == (n, len(colyseus.encode_number(n)))
    assert colyseus.encode_number(300) == b"\xcd\x2c\x01"  # little-endian, as @colyseus/schema
    for s in ("spin", "x" * 40, "é" * 200, "y" * 70_000):
        enc = colyseus.encode_string(s)
        assert colyseus.is_string(enc, 0)
        assert colyseus.decode_string(enc, 0) == (s, len(enc))
    assert colyseus.decode_number(b"\xff", 0) == (-1, 1)


def _matchmake(port: int, room: str) -> dict[str, str]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/matchmake/joinOrCreate/{room}",
        data=json.dumps({"name": "probe"}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:  # loopback only
        seat = json.loads(resp.read())
    assert isinstance(seat, dict)
    return seat


async def _probe(port: int) -> None:
    seat = _matchmake(port, "casino")
    url = f"ws://127.0.0.1:{port}/{seat['processId']}/{seat['roomId']}?sessionId={seat['sessionId']}"
    async with connect(url, compression=None, open_timeout=5) as ws:
        join = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(join, bytes) and join[0] == colyseus.JOIN_ROOM
        await ws.send(bytes((colyseus.JOIN_ROOM,)))  # confirm
        head = bytes((colyseus.ROOM_REQUEST,)) + colyseus.encode_number(300)
        await ws.send(head + colyseus.encode_string("spin") + msgspec.msgpack.encode({"coin": 1}))
        reply = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(reply, bytes) and reply[0] == colyseus.ROOM_RESPONSE
        rid, pos = colyseus.decode_number(reply, 1)
        assert rid == 300 and reply[pos] == colyseus.STATUS_OK
        spin = msgspec.msgpack.decode(reply[pos + 1 :])
        assert spin["game"] == "fruit_slot" and spin["stake"] == 1 and spin["lines"] == 1
        assert spin["win"] in FRUIT_WINS
        assert spin["balance"] == START - 1 + spin["win"]
        assert len(spin["stops"]) == 3 and all(0 <= s < 20 for s in spin["stops"])
        # a type the room has no handler for: ERROR "no_handler" (reported as unsupported)
        await ws.send(bytes((colyseus.ROOM_REQUEST, 5)) + colyseus.encode_string("teleport") + b"\x80")
        reply = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(reply, bytes)
        rid, pos = colyseus.decode_number(reply, 1)
        assert rid == 5 and reply[pos] == colyseus.STATUS_ERROR
        assert msgspec.msgpack.decode(reply[pos + 1 :])["name"] == "no_handler"
        await ws.send(bytes((colyseus.PING,)))
        assert await asyncio.wait_for(ws.recv(), 5) == bytes((colyseus.PING,))


def test_the_protocol_byte_by_byte(peer: int) -> None:
    asyncio.run(_probe(peer))


def test_loadgen_drives_the_colyseus_peer(peer: int, tmp_path: Path) -> None:
    sc = scenario.parse(SMALL.encode(), "toml")
    opts = Options(
        scenario=sc,
        connections=sc.connections,
        duration=sc.duration,
        out=tmp_path / "run",
        targets=[("127.0.0.1", peer, "/")],
        workers=1,
        progress=False,
        settle=1.0,
        protocol="colyseus",
    )
    report = run(opts)
    assert report["errors"]["total"] == 0, report["errors"]
    assert report["connections"]["held_at_end"] == 24
    steps = report["steps"]
    for label in ("login", "ping", "spin", "chat"):
        st = steps[label]
        assert st["sent"] > 0 and st["ok"] == st["sent"] - st["lost"], (label, st)
    assert steps["join_room"]["sent"] == 0  # folded into login: the chatters joined `lobby`
    chatters = 12
    ev = report["messages"]["events"]
    # every chat reaches every lobby member, the sender included; joins announce themselves
    assert ev["public_message"] >= steps["chat"]["ok"]
    assert ev["public_message"] <= steps["chat"]["sent"] * chatters
    assert ev["user_entered"] == chatters * (chatters - 1) // 2
    assert ev["room_joined"] == chatters
    # the chats were stamped: each member's copy has a delivery time
    assert steps["chat_delivery"]["ok"] == steps["chat_delivery"]["latency"]["count"] == ev["public_message"]
    assert report["messages"]["replies_without_request"] == 0
    assert report["pass"], report["criteria"]


def test_peer_figures_use_the_hold_window_only() -> None:
    from bench.peer import Sampler, figures, ratios

    rows = [
        {"phase": "ramp", "wall": 99.0, "sent": 0, "received": 0, "other_cpu": 0.0},
        {"phase": "hold", "wall": 100.0, "sent": 1000, "received": 1000, "other_cpu": 30.0},
        {"phase": "hold", "wall": 110.0, "sent": 6000, "received": 6000, "other_cpu": 30.0},
        {"phase": "closing", "wall": 111.0, "sent": 6000, "received": 6000, "other_cpu": 0.0},
    ]
    report = {
        "pass": True,
        "errors": {"total": 0},
        "timeline": rows,
        "connections": {"held_at_end": 100, "handshakes_per_s": 500.0},
        "timing": {"ramp_s": 1.0},
        "steps": {
            "spin": {"sent": 10, "ok": 10, "hold_latency": {"p50_ms": 1.0, "p99_ms": 4.0, "count": 10}}
        },
        "messages": {"events": {}},
    }
    s = Sampler(pid=0)
    s.samples = [(98.0, 1.0, 10 * 2**20), (100.0, 2.0, 11 * 2**20), (110.0, 7.0, 12 * 2**20)]
    f = figures("x", report, s)
    assert f["messages"] == 10_000 and f["messages_per_s"] == 1000.0
    assert f["server_cpu_s"] == 5.0 and f["server_cpu_percent"] == 50.0
    assert f["messages_per_cpu_s"] == 2000.0
    assert f["rss_per_session_kib"] == 20.48  # (12 - 10) MiB over 100 sessions
    assert f["other_cpu_percent"] == 0.0  # 30% of "other" was this server's 50%: clipped
    g = {**f, "messages_per_cpu_s": 1000.0, "steps": {"spin": {**f["steps"]["spin"], "p99_ms": 8.0}}}
    r = ratios(f, g)
    assert r["messages_per_cpu_s"] == 2.0 and r["spin_p99_ms"] == 0.5
