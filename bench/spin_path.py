"""Server CPU per spin request, in one process, without sockets.

The whole server-side path of a `spin` except the transport: decoding the request, the
hub's dispatch, the casino (bet checks, responsible-gaming limits, the slot engine, the
ledger transaction through the group-commit writer, the round record, RTP statistics,
the domain event and the rewards that follow it), the reply's encoding and framing.
Clients are `Connection`s on a link that records what is written; each keeps one spin
in flight (a closed loop), so batches form as they would under load.

    python -m bench.spin_path                                  # config/croupier.toml, memory://
    python -m bench.spin_path --config bench/scenarios/servers/peer.toml
    python -m bench.spin_path --profile /tmp/spin.prof         # cProfile of the measured part
    python -m bench.spin_path --op login --store sqlite:///x.db  # a guest login instead
    python -m bench.spin_path --claim welcome                  # every session wagering a bonus
    python -m bench.spin_path --referred                       # every session a referee qualifying

Reports spins/s and CPU µs per spin (process time over the measured spins: everything
in this process, the clients' few lines included), the best of `--repeat`. Compare two
checkouts by running it in each, in the same minute: this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import sys
import time
from pathlib import Path

import msgspec
import uvloop

from gameserver import config as config_mod, server as server_mod
from gameserver.connection import Connection
from gameserver.hub import Hub
from protocol.codec import MSGPACK
from protocol.limits import FloodLimits

REPO = Path(__file__).resolve().parents[1]
_decode = msgspec.msgpack.decode
_encode = msgspec.msgpack.encode


class Client:
    """One session: a link that counts its `ok` replies, and the requests it sends."""

    __slots__ = ("conn", "next_id", "done", "ready", "wake", "peer", "kind", "last", "_closed")

    def __init__(self, hub: Hub, ready: list[Client], wake: asyncio.Event, peer: str = "bench") -> None:
        self.peer = peer
        self.last = b""  # the latest reply
        self.kind = "bench"
        self._closed = False
        self.next_id = 1
        self.done = 0
        self.ready = ready
        self.wake = wake
        self.conn = Connection(hub, self, MSGPACK)  # type: ignore[arg-type]
        hub.connection_made(self.conn)

    # -- the Link the connection writes to ------------------------------------------------

    def write(self, payloads: list[bytes]) -> None:
        for p in payloads:
            head = p[:16]
            if b"\xa4type\xa2ok" in head:  # a reply: this client may send its next request
                self.done += 1
                self.last = p
                self.ready.append(self)
                self.wake.set()
            elif b"\xa4type\xa5error" in head:
                raise SystemExit(f"spin_path: an error reply: {_decode(p)}")

    def close(self, code: int, reason: str) -> None:
        self._closed = True

    def abort(self) -> None:
        self._closed = True

    def buffered(self) -> int:
        return 0

    # -- requests ---------------------------------------------------------------------

    def send(self, msg: bytes) -> None:
        self.conn.message_received(msg, True)

    def request(self, obj: dict[str, object]) -> None:
        """Send `obj` with the next request id (an id is a spin's idempotency key)."""
        self.next_id += 1
        obj["id"] = self.next_id
        self.conn.message_received(_encode(obj), True)

    def spin(self, game: str) -> None:
        self.request({"type": "spin", "game": game})


async def _run(args: argparse.Namespace) -> list[tuple[float, float]]:
    config = config_mod.load(args.config, environ={})
    config = msgspec.structs.replace(
        config,
        store=msgspec.structs.replace(config.store, url=args.store),
        # the clients here send far faster than a person: no flood limit
        zones=[msgspec.structs.replace(z, flood=FloodLimits(rate=1e9, burst=10**9)) for z in config.zones],
    )
    srv = await server_mod.start(config, listen=False)
    hub = srv.hub
    try:
        if args.op == "login":
            return await _logins(hub, args)
        wake = asyncio.Event()
        ready: list[Client] = []
        # each session from its own address (referral fraud checks compare them)
        clients = [
            Client(hub, ready, wake, f"10.{i >> 8 & 255}.{i & 255}.1:5000") for i in range(args.clients)
        ]

        async def replies(n: int) -> None:
            while sum(c.done for c in clients) < n:
                wake.clear()
                await asyncio.wait_for(wake.wait(), 10)

        for c in clients:
            c.send(_encode({"type": "login", "id": 0, "guest": True, "zone": args.zone}))
        expected = len(clients)
        await replies(expected)
        if args.claim:  # every session wagers a bonus while it spins
            for c in clients:
                c.request({"type": "bonus_claim", "bonus": args.claim})
            expected += len(clients)
            await replies(expected)
        if args.referred:  # every session but the first was referred by the first
            clients[0].request({"type": "referral_code"})
            expected += 1
            await replies(expected)
            code = _decode(clients[0].last)["data"]["code"]
            for c in clients[1:]:
                c.request({"type": "referral_apply", "code": code})
            expected += len(clients) - 1
            await replies(expected)
        ready.clear()
        game = args.game
        results: list[tuple[float, float]] = []
        for r in range(args.repeat + 1):  # the first round warms up (wallets, caches)
            target = args.spins
            done0 = sum(c.done for c in clients)
            prof = cProfile.Profile() if args.profile and r == args.repeat else None
            t0, c0 = time.perf_counter(), time.process_time()
            if prof is not None:
                prof.enable()
            sent = 0
            for c in clients[:target]:
                c.spin(game)
                sent += 1
            while sum(c.done for c in clients) - done0 < target:
                wake.clear()
                batch = ready[:]
                ready.clear()
                for c in batch:
                    if sent < target:
                        c.spin(game)
                        sent += 1
                if not ready:
                    await asyncio.wait_for(wake.wait(), 10)
            if prof is not None:
                prof.disable()
                prof.dump_stats(args.profile)
            results.append((time.perf_counter() - t0, time.process_time() - c0))
            ready.clear()
        return results[1:]
    finally:
        await srv.stop(drain_seconds=1.0)


async def _logins(hub: Hub, args: argparse.Namespace) -> list[tuple[float, float]]:
    """Guest logins, `--clients` in flight, each repeat with new sessions; the CPU counted
    until the work they leave behind (wallets, welcome credits, login rewards) is done."""
    results: list[tuple[float, float]] = []
    login = _encode({"type": "login", "id": 0, "guest": True, "zone": args.zone})
    for _ in range(args.repeat + 1):
        wake = asyncio.Event()
        ready: list[Client] = []
        t0, c0 = time.perf_counter(), time.process_time()
        left, waiting = args.spins, 0
        while left or waiting:
            while left and waiting < args.clients:
                Client(hub, ready, wake).send(login)
                left -= 1
                waiting += 1
            if not ready:
                wake.clear()
                await asyncio.wait_for(wake.wait(), 30)
            waiting -= len(ready)
            ready.clear()
        wall = time.perf_counter() - t0
        for _ in range(300):  # at most 30 s: until a tenth of a second costs under 2 ms
            c1 = time.process_time()
            await asyncio.sleep(0.1)
            if time.process_time() - c1 < 0.002:
                break
        results.append((wall, time.process_time() - c0))
        for conn in list(hub.connections):  # log them out: the next repeat starts afresh
            conn.link.close(1000, "")
            conn.connection_lost(1000)
    return results[1:]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.spin_path", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(REPO / "config" / "croupier.toml"))
    p.add_argument("--zone", default="demo")
    p.add_argument("--game", default="fruit_slot")
    p.add_argument("--op", choices=["spin", "login"], default="spin", help="what to measure")
    p.add_argument("--store", default="memory://", help="the money store (e.g. sqlite:///tmp/x.db)")
    p.add_argument("--clients", type=int, default=200, help="sessions, one spin in flight each")
    p.add_argument("--spins", type=int, default=20_000, help="spins (or logins) per repeat")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--profile", default="", help="write a cProfile of the last repeat here")
    p.add_argument("--claim", default="", help="each session claims this bonus offer first (wagering)")
    p.add_argument(
        "--referred", action="store_true", help="every session but one applies the first one's referral code"
    )
    args = p.parse_args(argv)
    if not 1 <= args.clients <= 20_000 or not 1 <= args.spins <= 1_000_000:
        print("spin_path: --clients 1..20000, --spins 1..1000000", file=sys.stderr)
        return 2
    os.environ.pop("PYTHONASYNCIODEBUG", None)
    results = uvloop.run(_run(args))
    best_wall, best_cpu = min(results, key=lambda r: r[1])
    what = f"game={args.game}" if args.op == "spin" else "guest logins"
    what += f" claim={args.claim}" if args.claim else ""
    what += " referred" if args.referred else ""
    print(
        f"spin_path {args.op} config={Path(args.config).name} store={args.store} {what}"
        f" clients={args.clients} n={args.spins}: {args.spins / best_wall:,.0f}/s,"
        f" {best_cpu / args.spins * 1e6:.1f} µs CPU each"
        f" (repeats: {', '.join(f'{c / args.spins * 1e6:.1f}' for _, c in results)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
