"""The send tick (`server.event_tick_ms`) side by side: server CPU per delivered event
against the time the event took, for a lobby chatting at a steady rate.

    python -m bench.send_tick                     # ticks 0, 25, 50 ms; 3 interleaved rounds
    python -m bench.send_tick --ticks 0,10,25 --rate 400 --members 1000

For each tick a fresh `croupier run` (bench/configs/bench.toml, picows, MessagePack)
gets `--members` clients in the Lobby; `--senders` of them send `--rate` chats per
second in all, evenly paced (not as fast as the server can take them: a saturated
server batches by itself, with or without a tick). Each chat goes to every member,
the sender included. Per tick it reports deliveries per second, server CPU microseconds
per delivery (user + system: the kernel's socket work counts), and the p50/p99 of the
delivery time (chat sent to copy received, in this process, so one clock). Ticks run in
the order given in each round, the rounds interleave (the machine is shared and noisy),
and each figure is the median over rounds; the ratio is the median of per-round ratios
against the first tick. Loopback only; the server is ended by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import msgspec
import uvloop

from .server_proc import ServerProcess
from .transport import Bot, close_all, open_bots, request

enc = msgspec.msgpack.Encoder().encode


class Chat(msgspec.Struct):
    text: str = ""


class Incoming(msgspec.Struct):
    type: str
    event: str = ""
    data: msgspec.Raw = msgspec.Raw()


_incoming = msgspec.msgpack.Decoder(Incoming).decode
_chat = msgspec.msgpack.Decoder(Chat).decode


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


async def one(tick_ms: float, args: argparse.Namespace) -> dict[str, float]:
    server = ServerProcess("picows", CROUPIER_SERVER_EVENT_TICK_MS=str(tick_ms))
    try:
        bots = await open_bots(server.port, args.members)
        for b in bots:
            r = await request(b, {"type": "join_room", "id": 2, "room": "Lobby"})
            assert r["type"] == "ok", r
        await asyncio.sleep(1.0)  # the joins' user_entered events go out
        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        counting = {"on": False, "delivered": 0}

        def listen(bot: Bot) -> None:
            def on_message(data: bytes) -> None:
                msg = _incoming(data)
                if msg.type == "event" and msg.event == "public_message" and counting["on"]:
                    t0 = sent_at.get(_chat(msg.data).text)
                    if t0 is not None:
                        latencies.append(time.perf_counter() - t0)
                        counting["delivered"] += 1

            bot.proto.on_message = on_message

        for b in bots:
            listen(b)
        senders = bots[: args.senders]
        period = 1.0 / args.rate
        counting["on"] = True
        cpu0, t0 = server.cpu_seconds(), time.perf_counter()
        n = int(args.seconds * args.rate)
        for i in range(n):  # bounded: seconds x rate chats
            due = t0 + i * period
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            text = f"c{i}"
            sent_at[text] = time.perf_counter()
            senders[i % len(senders)].proto.send(
                enc({"type": "public_message", "id": 10 + i, "room": 1, "text": text})
            )
        await asyncio.sleep(tick_ms / 1000 + 0.3)  # the last chats' deliveries
        elapsed, cpu = time.perf_counter() - t0, server.cpu_seconds() - cpu0
        counting["on"] = False
        delivered = counting["delivered"]
        expected = n * args.members
        close_all(bots)
        return {
            "deliveries_per_s": delivered / elapsed,
            "cpu_us_per_delivery": 1e6 * cpu / max(delivered, 1),
            "server_cpu_percent": 100 * cpu / elapsed,
            "delivery_p50_ms": 1e3 * percentile(latencies, 50),
            "delivery_p99_ms": 1e3 * percentile(latencies, 99),
            "lost": float(expected - delivered),
        }
    finally:
        server.stop()


async def main_async(args: argparse.Namespace) -> dict[float, list[dict[str, float]]]:
    rows: dict[float, list[dict[str, float]]] = {t: [] for t in args.ticks}
    for r in range(args.rounds):
        for t in args.ticks:
            rows[t].append(await one(t, args))
            print(
                f"round {r + 1} tick {t:g} ms: " + ", ".join(f"{k}={v:,.1f}" for k, v in rows[t][-1].items())
            )
    return rows


def table(rows: dict[float, list[dict[str, float]]]) -> str:
    ticks = list(rows)
    base = ticks[0]
    keys = list(rows[base][0])
    head = "| metric | " + " | ".join(f"tick {t:g} ms" for t in ticks) + " | "
    head += " | ".join(f"{t:g} / {base:g}" for t in ticks[1:]) + " |"
    lines = [head, "|---|" + "---:|" * (2 * len(ticks) - 1)]
    for k in keys:
        meds = [statistics.median(x[k] for x in rows[t]) for t in ticks]
        ratios = []
        for t in ticks[1:]:
            pairs = [(x[k], y[k]) for x, y in zip(rows[t], rows[base], strict=True) if y[k]]
            ratios.append(f"{statistics.median(a / b for a, b in pairs):.2f}" if pairs else "-")
        lines.append(f"| {k} | " + " | ".join(f"{m:,.1f}" for m in meds) + " | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.send_tick", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--ticks", default="0,25,50", help="send ticks in ms, comma separated; the first is the base"
    )
    p.add_argument("--members", type=int, default=500, help="clients in the Lobby")
    p.add_argument("--senders", type=int, default=50, help="members that chat")
    p.add_argument("--rate", type=float, default=100.0, help="chats per second, all senders together")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=3)
    return p


def main(argv: list[str] | None = None) -> int:
    args: Any = parser().parse_args(argv)
    args.ticks = [float(t) for t in str(args.ticks).split(",") if t.strip()]
    if not args.ticks or any(not 0 <= t <= 1000 for t in args.ticks):
        print("send_tick: --ticks must be values in 0..1000 ms", flush=True)
        return 2
    if not (1 <= args.senders <= args.members <= 18_000 and 0 < args.rate <= 5000 and 0 < args.seconds <= 60):
        print("send_tick: need 1 <= senders <= members <= 18000, 0 < rate <= 5000, 0 < seconds <= 60")
        return 2
    rows = uvloop.run(main_async(args))
    print(
        f"\n{args.members} members, {args.senders} senders, {args.rate:g} chats/s for {args.seconds:g} s;"
        f" medians over {args.rounds} round(s), ratios = median of per-round ratios"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
