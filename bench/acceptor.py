"""The acceptor's CPU per connection (gameserver/acceptor.py): accept, read the upgrade
request, route it (a login token's signature is checked), hand it on.

One acceptor on a uvloop in this process; a client process opens `--connections`
loopback connections (50 at a time), each sending a WebSocket upgrade request with a
login token (or none: `--guests`), and waits for the close; the "hand-off" here is the
close, so the figure is the acceptor's own work without the SCM_RIGHTS send. `--tree DIR`
times another checkout's acceptor in the same run, interleaved, for a before/after ratio.

Run: `python -m bench.acceptor` (`make bench-acceptor`).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _client(port: int, n: int, guests: bool, go: Any) -> None:
    import uvloop

    from gameserver import auth

    async def main() -> None:
        go.wait()
        query = "" if guests else f"?token={auth.mint('bench', 5, 'demo', expires=int(time.time()) + 600)}"
        head = f"GET /ws{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n".encode()
        sem = asyncio.Semaphore(50)

        async def one() -> None:
            async with sem:
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(head)
                await r.read()
                w.close()

        await asyncio.gather(*(one() for _ in range(n)))

    uvloop.run(main())


def measure(n: int, guests: bool) -> float:
    """Acceptor CPU µs per connection (this checkout's acceptor, in this process)."""
    import uvloop

    from gameserver.acceptor import Acceptor

    async def main() -> float:
        done = asyncio.Event()
        count = [0]

        def dispatch(kind: str, sock: Any, pre: bytes, route: Any) -> None:
            sock.close()
            count[0] += 1
            if count[0] == n:
                done.set()

        acc = Acceptor("bench", 5.0, 1 << 16, dispatch)
        port = acc.listen("ws", "127.0.0.1", 0, 1024)
        go = mp.Event()
        proc = mp.Process(target=_client, args=(port, n, guests, go))
        proc.start()
        await asyncio.sleep(0.3)
        t0 = time.process_time()
        go.set()
        await asyncio.wait_for(done.wait(), 120)
        cpu = time.process_time() - t0
        proc.join(30)
        acc.close()
        return cpu / n * 1e6

    return uvloop.run(main())


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.acceptor")
    p.add_argument("--connections", type=int, default=4000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--guests", action="store_true", help="no token in the URL")
    p.add_argument("--tree", help="another checkout to time in the same run (before/after)")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(measure(args.connections, args.guests))
        return
    trees = {"this checkout": str(Path(__file__).resolve().parents[1])}
    if args.tree:
        trees = {"other": str(Path(args.tree).resolve()), **trees}
    runs: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            # this file, importing the acceptor of `tree` (PYTHONPATH comes first)
            cmd = [sys.executable, __file__, "--one", "--connections", str(args.connections)]
            if args.guests:
                cmd.append("--guests")
            env = {**os.environ, "PYTHONPATH": tree}
            out = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, check=True, env=env)
            runs[name].append(float(out.stdout.strip().splitlines()[-1]))
    for name, values in runs.items():
        print(
            f"{name}: acceptor CPU per connection, median of {args.rounds}: {statistics.median(values):.1f} µs {values}"
        )
    if args.tree:
        ratio = statistics.median(runs["this checkout"]) / statistics.median(runs["other"])
        print(f"ratio this / other: x{ratio:.2f}")


if __name__ == "__main__":
    main()
