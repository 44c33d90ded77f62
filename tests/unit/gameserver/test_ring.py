"""The consistent hash ring: stable, balanced, and moving only the share that must move."""

from __future__ import annotations

from collections import Counter

import pytest

from gameserver.ring import HashRing, ring_hash, room_key, user_key

KEYS = [user_key("demo", uid) for uid in range(20_000)]


def test_hash_is_the_documented_one():
    """blake2b-64 big-endian: pinned so every process and node agrees."""
    assert ring_hash("u:demo:42") == 0xF116EF52B5D0E3CD  # pinned: a change here re-homes every user


def test_owner_is_deterministic_and_order_independent():
    a = HashRing(["w0", "w1", "w2"])
    b = HashRing(["w2", "w0", "w1"])
    assert all(a.owner(k) == b.owner(k) for k in KEYS[:2000])


def test_balance_with_virtual_nodes():
    ring = HashRing([f"w{i}" for i in range(8)])
    counts = Counter(ring.owner(k) for k in KEYS)
    fair = len(KEYS) / 8
    assert max(counts.values()) < fair * 1.25
    assert min(counts.values()) > fair * 0.75


def test_adding_a_member_moves_only_its_share_to_it():
    before = HashRing([f"w{i}" for i in range(4)])
    after = before.with_member("w4")
    moved = [k for k in KEYS if before.owner(k) != after.owner(k)]
    assert all(after.owner(k) == "w4" for k in moved)
    assert 0.12 < len(moved) / len(KEYS) < 0.28  # about 1/5


def test_removing_a_member_moves_only_its_keys():
    before = HashRing([f"w{i}" for i in range(5)])
    after = before.without_member("w2")
    for k in KEYS[:5000]:
        if before.owner(k) != "w2":
            assert after.owner(k) == before.owner(k)
        else:
            assert after.owner(k) != "w2"


def test_users_and_rooms_share_one_ring_with_distinct_keys():
    ring = HashRing(["a", "b"])
    assert user_key("demo", 7) != room_key("demo", 7)
    assert ring.owner(room_key("demo", 7)) in {"a", "b"}


def test_bad_rings():
    with pytest.raises(ValueError):
        HashRing([])
    with pytest.raises(ValueError):
        HashRing(["a"], vnodes=0)
