"""SFS2X codec throughput: messages encoded and decoded per second, one core.

Cases (each a complete WebSocket frame, as the transport sees it):

- ``login``: the Login response of a zone with 20 rooms (a few with variables,
  some game rooms), about 1.3 KB, so it goes through zlib at the default
  1024-byte threshold;
- ``login-plain``: the same with compression off, to isolate the codec;
- ``extension``: a slot-spin extension response (c=1, a=13) with a 5x3 reel
  grid, win lines and balances, about 300 bytes, uncompressed;
- ``ping``: the 23-byte lag-monitor pong.

For each case it reports, per second: ``encode`` (Message -> frame bytes),
``decode`` (frame bytes -> Message), ``enc+dec`` (both, one round trip) and
``build+encode`` (the builders from plain Structs, then encode). Each figure is
the minimum time over repeats of ``timeit`` (the least disturbed run). Run with
``python -m bench.sfs2x_codec``.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable

from protocol.sfs2x import (
    Message,
    RoomInfo,
    RoomVariable,
    SFSArray,
    SFSObject,
    decode_frame,
    encode_frame,
)
from protocol.sfs2x.messages import extension_response, login_response, pong

REPEAT = 5


def _rooms() -> list[RoomInfo]:
    rooms = []
    for i in range(20):
        is_game = i % 3 == 0
        variables = (
            (RoomVariable("jackpot", 125_000 + i), RoomVariable("theme", "gold")) if i % 4 == 0 else ()
        )
        rooms.append(
            RoomInfo(
                id=i + 1,
                name=f"Slots room {i + 1}",
                group_id="slots" if is_game else "default",
                is_game=is_game,
                user_count=i,
                max_users=50,
                variables=variables,
                max_spectators=5 if is_game else 0,
            )
        )
    return rooms


ROOMS = _rooms()


def build_login() -> Message:
    return login_response("Casino", "Guest#1234", 1234, 1, ROOMS, reconnection_seconds=30)


def build_spin() -> Message:
    reels = SFSArray()
    for column in range(5):
        reels.add_short_array([(column * 3 + row) % 9 for row in range(3)])
    lines = SFSArray()
    for line in range(3):
        lines.add_sfs_object(SFSObject().put_byte("line", line).put_byte("count", 3).put_long("win", 250))
    params = (
        SFSObject()
        .put_long("spinId", 9_876_543_210)
        .put_sfs_array("reels", reels)
        .put_sfs_array("lines", lines)
        .put_long("bet", 100)
        .put_long("win", 750)
        .put_long("balance", 1_000_650)
        .put_bool("freeSpins", False)
        .put_utf_string("currency", "EUR")
    )
    return extension_response("slots.spin", params, room_id=7)


def _rate(fn: Callable[[], object], number: int) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=REPEAT))
    return number / best


def main() -> None:
    login, spin = build_login(), build_spin()
    cases: list[tuple[str, Message, Callable[[], Message], int | None, int]] = [
        ("login", login, build_login, 1024, 2_000),
        ("login-plain", login, build_login, None, 2_000),
        ("extension", spin, build_spin, 1024, 20_000),
        ("ping", pong(), pong, 1024, 50_000),
    ]
    print(
        f"{'case':<12} {'bytes':>6} {'encode/s':>10} {'decode/s':>10} {'enc+dec/s':>10} {'build+encode/s':>15}"
    )
    for name, message, build, threshold, number in cases:
        frame = encode_frame(message, compression_threshold=threshold)
        assert decode_frame(frame) == message
        encode = _rate(lambda: encode_frame(message, compression_threshold=threshold), number)  # noqa: B023
        decode = _rate(lambda: decode_frame(frame), number)  # noqa: B023
        both = _rate(lambda: decode_frame(encode_frame(message, compression_threshold=threshold)), number)  # noqa: B023
        full = _rate(lambda: encode_frame(build(), compression_threshold=threshold), number)  # noqa: B023
        print(f"{name:<12} {len(frame):>6} {encode:>10,.0f} {decode:>10,.0f} {both:>10,.0f} {full:>15,.0f}")


if __name__ == "__main__":
    main()
