"""What a worker's checkpoint (gameserver/checkpoint.py) costs its event loop.

Builds one worker's state in-process (N sessions logged in to a zone, each in the lobby) and times, side by side, taking the checkpoint
(the export, on the event loop), encoding it, writing it (a thread, off the loop) and
decoding it; the cost per second of serving is the export + encode time divided by
`cluster.checkpoint_interval`.

Run: `python -m bench.checkpoint` (`--sessions 20000` is about one full worker).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

import msgspec

from gameserver.bus import UnixBus
from gameserver.checkpoint import Checkpoint, CheckpointFiles, SessionCache, complete, take
from gameserver.config import Config
from gameserver.hub import Hub
from gameserver.player import Player
from gameserver.sharding import ShardedRouter
from protocol.events import OutEvent
from rooms.roles import Role
from rooms.user import User


def build(sessions: int, where: str) -> ShardedRouter:
    config = msgspec.convert(
        {"zones": [{"name": "demo", "guests": True, "rooms": [{"name": "Lobby", "max_users": 1_000_000}]}]},
        Config,
    )
    hub = Hub(config)
    router = ShardedRouter(hub, "0.0", ["0.0"], UnixBus("0.0", where))
    hub.router = router
    zone = hub.zones["demo"]
    lobby = zone.room("Lobby")
    event = OutEvent("public_message", {"room": lobby.id, "user": 1, "text": "hello"})
    for uid in range(1, sessions + 1):
        zone.add_user(User(uid, f"user{uid}", Role.USER))
        lobby.players[uid] = uid  # as join_room does, without its O(members) events
        zone.users[uid].rooms.add(lobby.id)
        player = Player(uid, "demo", f"user{uid}", Role.USER, 256, f"rt-{uid:012d}")
        for _ in range(3):  # events are not checkpointed, only the last seq
            player.log.append(event)
        hub.players[("demo", uid)] = player
        hub.by_resume_token[player.resume_token] = player
    return router


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.checkpoint")
    parser.add_argument("--sessions", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    enc = msgspec.msgpack.Encoder()
    dec = msgspec.msgpack.Decoder(Checkpoint)
    print(
        "| sessions | full copy + encode (the handover's) | checkpoint, first | checkpoint, next "
        "| ratio | bytes | write (thread) | decode + complete |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sessions:
        with tempfile.TemporaryDirectory() as where:
            router = build(n, where)
            files = CheckpointFiles(where, "0.0", 1)
            full, first, warm, wr, back = [], [], [], [], []
            data = b""
            for _ in range(args.repeat):  # interleaved, so that machine noise hits both
                t0 = time.perf_counter()
                enc.encode(router.export_state(events=0))
                t1 = time.perf_counter()
                cache: SessionCache = {}
                take(router, 1, time.time(), cache)
                t2 = time.perf_counter()
                data = take(router, 1, time.time(), cache)
                t3 = time.perf_counter()
                asyncio.run(asyncio.to_thread(files.write, data))
                t4 = time.perf_counter()
                complete(dec.decode(data), {"demo": ["default"]})
                t5 = time.perf_counter()
                for acc, dt in zip(
                    (full, first, warm, wr, back),
                    (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4),
                    strict=True,
                ):
                    acc.append(dt * 1e3)
            f, w = statistics.median(full), statistics.median(warm)
            print(
                f"| {n:,} | {f:.1f} ms | {statistics.median(first):.1f} ms | {w:.1f} ms | x{f / w:.1f} "
                f"| {len(data) / 1e6:.2f} MB | {statistics.median(wr):.1f} ms | {statistics.median(back):.1f} ms |"
            )


if __name__ == "__main__":
    main()
