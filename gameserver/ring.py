"""Consistent hash ring with virtual nodes: who owns a user, a room or a leaderboard.

The hash is documented so that every process, node and load balancer computes the same
owner: `h(s) = int.from_bytes(blake2b(s.encode("utf-8"), digest_size=8).digest(), "big")`.
Each member `m` is placed at the points `h(f"{m}#{i}")` for i in 0 .. vnodes-1; a key
belongs to the first point clockwise from `h(key)` (wrapping around). Keys are
`"u:{zone}:{user_id}"` for users, `"r:{zone}:{room_id}"` for rooms and
`"l:{zone}:{board}"` for leaderboards. Adding or removing a member moves only the keys
whose nearest point changed: about 1/N of them, all to or from that member.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from hashlib import blake2b

DEFAULT_VNODES = 160


def ring_hash(s: str) -> int:
    """The ring's 64-bit hash of a string (stable across processes and versions)."""
    return int.from_bytes(blake2b(s.encode("utf-8"), digest_size=8).digest(), "big")


def user_key(zone: str, user_id: int) -> str:
    return f"u:{zone}:{user_id}"


def room_key(zone: str, room_id: int | str) -> str:
    return f"r:{zone}:{room_id}"


def leaderboard_key(zone: str, board: str) -> str:
    return f"l:{zone}:{board}"


class HashRing:
    """An immutable ring; `with_member` / `without_member` return new rings."""

    __slots__ = ("members", "vnodes", "_points", "_owners")

    def __init__(self, members: Iterable[str], vnodes: int = DEFAULT_VNODES) -> None:
        self.members = tuple(sorted(set(members)))
        if not self.members:
            raise ValueError("a ring needs at least one member")
        if vnodes < 1:
            raise ValueError("vnodes must be at least 1")
        self.vnodes = vnodes
        points = sorted((ring_hash(f"{m}#{i}"), m) for m in self.members for i in range(vnodes))
        self._points = [p for p, _ in points]
        self._owners = [m for _, m in points]

    def owner(self, key: str) -> str:
        """The member that owns `key`."""
        i = bisect.bisect_right(self._points, ring_hash(key))
        return self._owners[i % len(self._owners)]

    def with_member(self, member: str) -> HashRing:
        return HashRing((*self.members, member), self.vnodes)

    def without_member(self, member: str) -> HashRing:
        return HashRing((m for m in self.members if m != member), self.vnodes)

    def __repr__(self) -> str:
        return f"HashRing({list(self.members)}, vnodes={self.vnodes})"
