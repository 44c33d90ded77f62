"""An order-statistics index for one leaderboard period: rank, k-th and range in O(log n).

Structure: a *blocked sorted list* (the layout of sortedcontainers' ``SortedList``) plus a
Fenwick tree over the block lengths.

* Keys are tuples ``(-score, subscore, owner_id)``, so ascending key order is rank order:
  higher score first, then lower subscore (e.g. the time the score was achieved: earlier
  achiever first), then owner id as the final stable key. The order is total.
* The keys live in blocks of at most ``2 * load`` sorted keys; ``maxes[i]`` is the last key of
  block ``i``. Finding a key's block is ``bisect`` over ``maxes`` (O(log n)); placing it in the
  block is ``insort`` (a memmove of at most ``2 * load`` pointers: a constant).
* A Fenwick tree over block lengths gives "how many keys are in blocks before block i"
  (rank) and "which block holds the k-th key" (kth) in O(log(n / load)).
* A block that grows past ``2 * load`` is split and an empty block is dropped; both rebuild the
  Fenwick tree (O(n / load)), which happens once per ``load`` inserts at most, so it is
  amortised O(1) per write.

Why not a plain sorted list with ``bisect.insort``: its insert is an O(n) memmove, which is
measurable at 100k+ entries. Why not a skip list or treap: in pure Python their pointer-chasing
costs several times more per operation than ``bisect`` on short lists (see
``python -m bench.leaderboard``).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from typing import cast

from msgspec import Struct

#: (negated score, subscore, owner id): ascending order is rank order.
Key = tuple[int, int, str]

DEFAULT_LOAD = 512


class Record(Struct, frozen=True):
    """One owner's standing: ``rank`` is 1-based (position in the total order)."""

    owner_id: str
    score: int
    subscore: int
    rank: int


def make_key(owner_id: str, score: int, subscore: int) -> Key:
    return (-score, subscore, owner_id)


class RankIndex:
    """Owners ranked by ``(score desc, subscore asc, owner_id asc)``; one entry per owner."""

    __slots__ = ("_load", "_blocks", "_maxes", "_tree", "_keys")

    def __init__(self, load: int = DEFAULT_LOAD) -> None:
        if load < 4:
            raise ValueError("load must be at least 4")
        self._load = load
        self._blocks: list[list[Key]] = []
        self._maxes: list[Key] = []
        self._tree: list[int] = [0]  # 1-based Fenwick tree over block lengths
        self._keys: dict[str, Key] = {}

    # -- size and lookup -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, owner_id: object) -> bool:
        return owner_id in self._keys

    def get(self, owner_id: str) -> tuple[int, int] | None:
        """``(score, subscore)`` of an owner, or None."""
        key = self._keys.get(owner_id)
        return None if key is None else (-key[0], key[1])

    # -- writes ----------------------------------------------------------------------

    def insert(self, owner_id: str, score: int, subscore: int = 0) -> None:
        """Add an owner, or replace its score and subscore."""
        old = self._keys.get(owner_id)
        key = (-score, subscore, owner_id)
        if old is not None:
            if old == key:
                return
            self._discard(old)
        self._keys[owner_id] = key
        self._add(key)

    def remove(self, owner_id: str) -> bool:
        """Remove an owner; False if it was not there."""
        key = self._keys.pop(owner_id, None)
        if key is None:
            return False
        self._discard(key)
        return True

    def fill(self, records: Iterable[tuple[str, int, int]]) -> None:
        """Replace the contents with ``(owner_id, score, subscore)`` records (the boot path:
        rebuild from stored records). Later duplicates of an owner win. O(n log n)."""
        keys: dict[str, Key] = {}
        for owner_id, score, subscore in records:
            keys[owner_id] = (-score, subscore, owner_id)
        ordered = sorted(keys.values())
        self._keys = keys
        self._blocks = [ordered[i : i + self._load] for i in range(0, len(ordered), self._load)]
        self._maxes = [b[-1] for b in self._blocks]
        self._rebuild()

    def clear(self) -> None:
        self.fill(())

    # -- queries ---------------------------------------------------------------------

    def rank(self, owner_id: str) -> int | None:
        """1-based rank of an owner in the total order, or None."""
        key = self._keys.get(owner_id)
        if key is None:
            return None
        return self._position(key) + 1

    def count_better(self, score: int) -> int:
        """How many owners have a strictly higher score (``1 + this`` is the shared rank of a
        tie group, for split prizes)."""
        return self._position(cast(Key, (-score,)))  # (-s,) sorts before every (-s, ...)

    def kth(self, rank: int) -> Record:
        """The owner at a 1-based rank; IndexError when out of range."""
        if not 1 <= rank <= len(self._keys):
            raise IndexError(rank)
        block, offset = self._locate(rank - 1)
        key = self._blocks[block][offset]
        return Record(key[2], -key[0], key[1], rank)

    def top(self, n: int) -> list[Record]:
        return self.range(1, n)

    def range(self, first: int, count: int) -> list[Record]:
        """Up to ``count`` records starting at 1-based rank ``first``. O(log n + count)."""
        first = max(first, 1)
        if count <= 0 or first > len(self._keys):
            return []
        out: list[Record] = []
        block, offset = self._locate(first - 1)
        rank = first
        blocks = self._blocks
        while block < len(blocks) and len(out) < count:
            chunk = blocks[block][offset : offset + count - len(out)]
            for key in chunk:
                out.append(Record(key[2], -key[0], key[1], rank))
                rank += 1
            block += 1
            offset = 0
        return out

    def around(self, owner_id: str, before: int, after: int) -> list[Record]:
        """The owner's record with up to ``before`` records above and ``after`` below."""
        rank = self.rank(owner_id)
        if rank is None:
            return []
        first = max(1, rank - before)
        return self.range(first, rank - first + 1 + after)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.range(1, len(self._keys)))

    # -- internals -------------------------------------------------------------------

    def _position(self, key: Key) -> int:
        """Number of stored keys strictly less than ``key``."""
        maxes = self._maxes
        block = bisect_left(maxes, key)
        if block == len(maxes):
            return len(self._keys)
        return self._prefix(block) + bisect_left(self._blocks[block], key)

    def _add(self, key: Key) -> None:
        maxes = self._maxes
        if not maxes:
            self._blocks.append([key])
            maxes.append(key)
            self._rebuild()
            return
        block = bisect_left(maxes, key)
        if block == len(maxes):
            block -= 1
            self._blocks[block].append(key)
            maxes[block] = key
        else:
            insort(self._blocks[block], key)
        if len(self._blocks[block]) > 2 * self._load:
            items = self._blocks[block]
            half = len(items) // 2
            self._blocks[block : block + 1] = [items[:half], items[half:]]
            maxes[block : block + 1] = [items[half - 1], items[-1]]
            self._rebuild()
        else:
            self._bump(block, 1)

    def _discard(self, key: Key) -> None:
        maxes = self._maxes
        block = bisect_left(maxes, key)
        items = self._blocks[block]
        del items[bisect_left(items, key)]
        if not items:
            del self._blocks[block]
            del maxes[block]
            self._rebuild()
            return
        maxes[block] = items[-1]
        self._bump(block, -1)

    def _rebuild(self) -> None:
        size = len(self._blocks)
        tree = [0] * (size + 1)
        for i, items in enumerate(self._blocks, 1):
            tree[i] += len(items)
            parent = i + (i & -i)
            if parent <= size:
                tree[parent] += tree[i]
        self._tree = tree

    def _bump(self, block: int, delta: int) -> None:
        tree = self._tree
        i = block + 1
        size = len(tree) - 1
        while i <= size:
            tree[i] += delta
            i += i & -i

    def _prefix(self, block: int) -> int:
        """Total length of blocks ``[0, block)``."""
        tree = self._tree
        total = 0
        i = block
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    def _locate(self, index: int) -> tuple[int, int]:
        """(block, offset) of the 0-based ``index``-th key (Fenwick descent)."""
        tree = self._tree
        size = len(tree) - 1
        pos = 0
        step = 1 << size.bit_length()
        while step:
            nxt = pos + step
            if nxt <= size and tree[nxt] <= index:
                pos = nxt
                index -= tree[nxt]
            step >>= 1
        return pos, index
