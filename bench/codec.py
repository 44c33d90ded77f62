"""Codec and session hot paths, in-process (no sockets).

Cases (minimum of 5 repeats, operations per second, one line each):
- decode a `ping` / `public_message` request (JSON and MessagePack, typed Structs);
- encode an `ok` reply and an `event` push (the push reuses a cached body);
- one reused Encoder vs a new Encoder per message;
- a whole `ping` through the sans-I/O session (bytes in -> reply bytes out);
- one room event framed for 100 recipients (per-recipient seq envelope + WS frame).
Run: `python -m bench.codec`.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable

import msgspec

from protocol.codec import JSON, MSGPACK
from protocol.events import OutEvent
from protocol.limits import FloodLimits, SessionLimits
from protocol.messages import Event, Ok
from protocol.session import Session
from protocol.wsframe import OP_BINARY, encode_frames

PING = {"type": "ping", "id": 12345, "t": 1733222400000}
CHAT = {
    "type": "public_message",
    "id": 77,
    "room": 1,
    "text": "good luck everyone, the jackpot is hot tonight",
}


def best(fn: Callable[[], object], number: int) -> float:
    return number / min(timeit.repeat(fn, number=number, repeat=5))


def line(name: str, rate: float) -> None:
    print(f"{name:<58} {rate:>14,.0f} /s")


def main() -> None:
    for codec, enc in ((JSON, msgspec.json.encode), (MSGPACK, msgspec.msgpack.encode)):
        ping, chat = enc(PING), enc(CHAT)
        line(f"decode ping ({codec.name}, {len(ping)} B)", best(lambda c=codec, d=ping: c.decode(d), 200_000))
        line(
            f"decode public_message ({codec.name}, {len(chat)} B)",
            best(lambda c=codec, d=chat: c.decode(d), 200_000),
        )
        ok = Ok(12345, {"t": 1, "now": 2})
        line(f"encode ok reply ({codec.name})", best(lambda c=codec, ok=ok: c.encode(ok), 200_000))
        ev = OutEvent("public_message", {"room": 1, "from": 9, "text": CHAT["text"], "data": None})
        line(
            f"encode event, cached body ({codec.name})",
            best(lambda c=codec, ev=ev: c.encode(Event(5, ev.name, ev.body(c))), 200_000),
        )
    mod = msgspec.msgpack
    reused = mod.Encoder()
    line("encode ok, reused Encoder (msgpack)", best(lambda: reused.encode(Ok(1, None)), 200_000))
    line(
        "encode ok, new Encoder each time (msgpack)", best(lambda: mod.Encoder().encode(Ok(1, None)), 200_000)
    )

    s = Session(MSGPACK, SessionLimits(), FloodLimits(rate=1e9, burst=10**9), 0.0)
    s.authenticate()
    raw = msgspec.msgpack.encode(PING)

    def session_ping() -> None:
        s.receive_message(raw, True, 1.0)
        encode_frames(s.data_to_send(), OP_BINARY)

    line("ping through the session + WS framing (msgpack)", best(session_ping, 100_000))

    sessions = [Session(MSGPACK, SessionLimits(), FloodLimits(), 0.0) for _ in range(100)]

    def fanout() -> None:
        ev = OutEvent("public_message", {"room": 1, "from": 9, "text": CHAT["text"], "data": None})
        for i, sess in enumerate(sessions):
            sess.send_event(i, ev)
            encode_frames(sess.data_to_send(), OP_BINARY)

    line("one event to 100 sessions, framed (deliveries)", 100 * best(fanout, 2_000))


if __name__ == "__main__":
    main()
