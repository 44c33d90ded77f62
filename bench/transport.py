"""Full-stack transport benchmark: picows vs websockets, side by side, as ratios.

What it measures, for each WebSocket stack in one interleaved run (A, B, A, B, ...):
- `ping`: N clients each keep one `ping` request in flight (game-like, no pipelining);
  round trips per second and per server CPU-second, through the whole server (frame
  parsing, MessagePack decode, session, reply encode, batched write).
- `fanout`: N clients in one room; S of them chat with one message in flight each;
  deliveries (events received by clients) per second and per server CPU-second.
- `login`: N connections opened and logged in as guests, 100 in flight; handshakes+logins
  per server CPU-second, and server RSS per idle logged-in connection.

The client is a raw asyncio protocol on uvloop (bench/wsclient.py) in this process; the
server is a separate `croupier run` process. Per-server-CPU-second figures stay fair when
the client, not the server, is the limit. Run: `python -m bench.transport [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import uvloop

from .server_proc import ServerProcess
from .wsclient import WsClientProtocol, connect

SUB = "croupier.v1.msgpack"
enc = msgspec.msgpack.Encoder().encode
dec = msgspec.msgpack.Decoder().decode


@dataclass
class Bot:
    proto: WsClientProtocol
    waiter: asyncio.Future[dict] | None = None
    received: int = 0
    user_id: int = 0


async def open_bots(port: int, n: int, in_flight: int = 100) -> list[Bot]:
    bots: list[Bot] = []
    sem = asyncio.Semaphore(in_flight)
    loop = asyncio.get_running_loop()

    async def one(i: int) -> None:
        async with sem:
            bot = Bot(proto=None)  # type: ignore[arg-type]

            def on_message(data: bytes, bot: Bot = bot) -> None:
                msg = dec(data)
                bot.received += 1
                if msg.get("type") != "event" and bot.waiter is not None and not bot.waiter.done():
                    bot.waiter.set_result(msg)

            bot.proto = await connect("127.0.0.1", port, "/ws", SUB, on_message)
            bot.waiter = loop.create_future()
            bot.proto.send(enc({"type": "login", "id": 1, "guest": True, "zone": "bench", "name": f"b{i}"}))
            reply = await bot.waiter
            assert reply["type"] == "ok", reply
            bot.user_id = reply["data"]["user"]["id"]
            bots.append(bot)

    await asyncio.gather(*(one(i) for i in range(n)))
    return bots


async def request(bot: Bot, msg: dict) -> dict:
    bot.waiter = asyncio.get_running_loop().create_future()
    bot.proto.send(enc(msg))
    return await bot.waiter


async def measure(
    server: ServerProcess, seconds: float, work: Callable[[float], object]
) -> tuple[float, float]:
    """Run `work(deadline)` coroutines; return (elapsed, server CPU seconds)."""
    cpu0, t0 = server.cpu_seconds(), time.perf_counter()
    await work(time.perf_counter() + seconds)  # type: ignore[misc]
    return time.perf_counter() - t0, server.cpu_seconds() - cpu0


async def ping_case(server: ServerProcess, clients: int, seconds: float) -> dict[str, float]:
    """Each client sends the next ping from the reply callback: no task per round trip."""
    bots = await open_bots(server.port, clients)
    ping = enc({"type": "ping", "id": 7})
    state = {"done": 0, "running": True}

    def pump(bot: Bot) -> None:
        def on_reply(data: bytes) -> None:
            state["done"] += 1
            if state["running"]:
                bot.proto.send(ping)

        bot.proto.on_message = on_reply

    async def work(deadline: float) -> None:
        for b in bots:
            pump(b)
            b.proto.send(ping)
        await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
        state["running"] = False

    elapsed, cpu = await measure(server, seconds, work)
    done = state["done"]
    close_all(bots)
    return {"rt_per_s": done / elapsed, "rt_per_cpu_s": done / max(cpu, 1e-9), "server_cpu": cpu / elapsed}


async def fanout_case(server: ServerProcess, clients: int, senders: int, seconds: float) -> dict[str, float]:
    bots = await open_bots(server.port, clients)
    for b in bots:
        r = await request(b, {"type": "join_room", "id": 2, "room": "Lobby"})
        assert r["type"] == "ok", r
    await asyncio.sleep(0.5)  # let join events settle
    before = sum(b.received for b in bots)

    async def chat(bot: Bot, deadline: float) -> None:
        i = 10
        while time.perf_counter() < deadline:
            i += 1
            await request(bot, {"type": "public_message", "id": i, "room": 1, "text": "x" * 80})

    async def work(deadline: float) -> None:
        await asyncio.gather(*(chat(b, deadline) for b in bots[:senders]))
        await asyncio.sleep(0.3)  # deliveries in flight

    elapsed, cpu = await measure(server, seconds, work)
    delivered = sum(b.received for b in bots) - before
    close_all(bots)
    return {"deliveries_per_s": delivered / elapsed, "deliveries_per_cpu_s": delivered / max(cpu, 1e-9)}


async def login_case(server: ServerProcess, clients: int) -> dict[str, float]:
    rss0, cpu0, t0 = server.rss(), server.cpu_seconds(), time.perf_counter()
    bots = await open_bots(server.port, clients)
    elapsed, cpu = time.perf_counter() - t0, server.cpu_seconds() - cpu0
    await asyncio.sleep(0.3)
    rss = server.rss() - rss0
    close_all(bots)
    return {
        "logins_per_s": clients / elapsed,
        "logins_per_cpu_s": clients / max(cpu, 1e-9),
        "kib_per_conn": rss / clients / 1024,
    }


def close_all(bots: list[Bot]) -> None:
    for b in bots:
        if b.proto.transport is not None:
            b.proto.transport.close()


async def one_round(transport: str, args: argparse.Namespace) -> dict[str, float]:
    server = ServerProcess(transport)
    try:
        out: dict[str, float] = {}
        out.update(await ping_case(server, args.clients, args.seconds))
        await asyncio.sleep(0.3)
        out.update(await fanout_case(server, args.fanout_clients, args.senders, args.seconds))
        await asyncio.sleep(0.3)
        out.update(await login_case(server, args.login_clients))
        return out
    finally:
        server.stop()


async def main_async(args: argparse.Namespace) -> None:
    stacks = ["picows", "websockets"]
    rows: dict[str, list[dict[str, float]]] = {s: [] for s in stacks}
    for r in range(args.rounds):
        for s in stacks:
            rows[s].append(await one_round(s, args))
            print(
                f"round {r + 1} {s}: " + ", ".join(f"{k}={v:,.1f}" for k, v in rows[s][-1].items()),
                flush=True,
            )
    keys = list(rows[stacks[0]][0])
    print(f"\nmedians over {args.rounds} round(s); ratio = picows / websockets (median of per-round ratios)")
    print("| metric | picows | websockets | ratio |\n|---|---:|---:|---:|")
    for k in keys:
        a = statistics.median(x[k] for x in rows["picows"])
        b = statistics.median(x[k] for x in rows["websockets"])
        ratio = statistics.median(
            x[k] / y[k] for x, y in zip(rows["picows"], rows["websockets"], strict=True)
        )
        print(f"| {k} | {a:,.1f} | {b:,.1f} | {ratio:.2f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one short round (about 30 s)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--clients", type=int, default=500)
    p.add_argument("--fanout-clients", type=int, default=500)
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--login-clients", type=int, default=3000)
    args = p.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.login_clients = 1, 2.0, 1000
    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
