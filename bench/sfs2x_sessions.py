"""What a SmartFox (SFS2X) TCP session costs the server, side by side with a native TCP one.

For each protocol in turn (native, sfs2x, native, sfs2x...), one `croupier run` (the
session-only config of the load runs) and N client sessions from this process over
loopback TCP: a native client frames MessagePack (`login` as a guest, then `ping`); an
SFS2X client sends the handshake and a guest login as a C#/Unity client does (so
reconnection, HRC, is on for it), then the lag monitor's ping (a=29). Measured on the
server only:

- RSS per session: the server's resident memory after every session logged in, minus
  before, over N;
- CPU per login, and CPU per ping in a window where every session pings once every
  `--every` seconds (each with its own phase).

Prints the medians per protocol and the sfs2x / native ratios.
Run: `python -m bench.sfs2x_sessions` (`make bench-sfs2x-sessions`); loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from pathlib import Path
from typing import Any

import msgspec
import uvloop

from bench.heartbeat import Server, _free_port
from protocol.framing import StreamFramer, frame
from protocol.sfs2x import PacketReader, encode_frame
from protocol.sfs2x.messages import handshake_request, login_request, ping_request

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "bench/scenarios/servers/sessions.toml"
UNITY = "UnityPlayer:Android:2022.3"


def start_server() -> tuple[Server, int, int]:
    """A `croupier run` (bench/heartbeat.py's) with the native TCP and SFS2X TCP listeners
    on: the server, its native TCP port and its SFS2X TCP port."""
    tcp, sfs = _free_port(), _free_port()
    ports = {"CROUPIER_SERVER_TCP_PORT": str(tcp), "CROUPIER_SERVER_SFS_TCP_PORT": str(sfs)}
    return Server(ROOT, CONFIG, env=ports), tcp, sfs


class Client:
    """One session; `replies` counts what came back (any message but events)."""

    def __init__(self, kind: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.kind, self.reader, self.writer = kind, reader, writer
        self.framer = StreamFramer(1 << 20)
        self.packets = PacketReader()
        self.replies = 0
        self.n = 0

    def send_login(self) -> None:
        if self.kind == "native":
            self.writer.write(
                frame(msgspec.msgpack.encode({"type": "login", "id": 1, "guest": True, "zone": "demo"}))
            )
        else:
            self.writer.write(
                encode_frame(handshake_request(client_type=UNITY)) + encode_frame(login_request("demo", ""))
            )

    def send_ping(self) -> None:
        self.n += 1
        if self.kind == "native":
            self.writer.write(frame(msgspec.msgpack.encode({"type": "ping", "id": 1 + self.n})))
        else:
            self.writer.write(encode_frame(ping_request()))

    async def read(self, want: int) -> None:
        """Read until `want` replies (native: ok/error; sfs2x: packets, handshake included)."""
        while self.replies < want:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError(f"{self.kind} session closed")
            if self.kind == "native":
                self.framer.receive_data(data)
                for raw in self.framer.messages_received():
                    if msgspec.msgpack.decode(raw).get("type") in ("ok", "error"):
                        self.replies += 1
            else:
                self.packets.receive_data(data)
                self.replies += len(self.packets.packets_received())


async def one_run(kind: str, n: int, every: float, seconds: float) -> dict[str, float]:
    server, tcp_port, sfs_port = start_server()
    try:
        await asyncio.sleep(1.0)
        port = tcp_port if kind == "native" else sfs_port

        def rss() -> int:
            return int(server.ps.memory_info().rss)

        def cpu() -> float:
            return server.cpu()[1]  # the scheduler's run time (ns resolution)

        rss0, cpu0 = rss(), cpu()
        clients: list[Client] = []
        for i in range(0, n, 200):  # connect and log in 200 at a time
            batch = []
            for _ in range(min(200, n - i)):
                r, w = await asyncio.open_connection("127.0.0.1", port)
                c = Client(kind, r, w)
                c.send_login()
                batch.append(c)
            first = 1 if kind == "native" else 2  # the handshake and the login replies
            await asyncio.wait_for(asyncio.gather(*(c.read(first) for c in batch)), 60)
            clients += batch
        await asyncio.sleep(1.0)
        cpu1, rss1 = cpu(), rss()
        base = {id(c): c.replies for c in clients}
        phases = {id(c): random.random() * every for c in clients}
        start = time.monotonic()
        pings = 0

        async def pinger(c: Client) -> None:
            nonlocal pings
            t = start + phases[id(c)]
            while t < start + seconds:
                await asyncio.sleep(max(0.0, t - time.monotonic()))
                c.send_ping()
                pings += 1
                await c.read(c.replies + 1)
                t += every

        cpu2 = cpu()
        await asyncio.wait_for(asyncio.gather(*(pinger(c) for c in clients)), seconds + 30)
        cpu3 = cpu()
        answered = sum(c.replies - base[id(c)] for c in clients)
        for c in clients:
            c.writer.close()
        return {
            "rss_kib_per_session": (rss1 - rss0) / n / 1024,
            "us_per_login": (cpu1 - cpu0) / n * 1e6,
            "us_per_ping": (cpu3 - cpu2) / max(1, answered) * 1e6,
            "pings": float(answered),
            "pings_sent": float(pings),
        }
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--every", type=float, default=2.0, help="seconds between two pings of a session")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the ping window")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    results: dict[str, list[dict[str, float]]] = {"native": [], "sfs2x": []}

    async def runs() -> None:
        for r in range(args.rounds):
            for kind in ("native", "sfs2x"):
                got = await one_run(kind, args.sessions, args.every, args.seconds)
                results[kind].append(got)
                figures = ", ".join(f"{k}={v:,.1f}" for k, v in got.items())
                print(f"round {r + 1} {kind}: {figures}", flush=True)

    uvloop.run(runs())
    med: dict[str, dict[str, Any]] = {
        k: {m: statistics.median(x[m] for x in v) for m in v[0]} for k, v in results.items()
    }
    print(
        f"\n{args.sessions:,} sessions, a ping every {args.every} s for {args.seconds} s, medians of {args.rounds}:"
    )
    print("| metric | native TCP | SFS2X TCP | sfs2x / native |")
    print("|---|---:|---:|---:|")
    for m in ("rss_kib_per_session", "us_per_login", "us_per_ping"):
        a, b = med["native"][m], med["sfs2x"][m]
        print(f"| {m} | {a:,.1f} | {b:,.1f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
