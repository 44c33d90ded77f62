"""Random numbers for game outcomes (requirements RNG-1 to RNG-4, RNG-8).

Every outcome-affecting draw goes through one small interface, :class:`Rng`. Production code is
given a :class:`SystemRng` (operating-system CSPRNG); it never accepts a seed. :class:`SeededRng`
is a deterministic generator for tests and offline simulation only: no production code path
constructs it (a test enforces that only the simulator and tests refer to it).

Integers in ``[0, n)`` are scaled by rejection sampling on the smallest sufficient number of bits,
so every value is exactly equally likely; there is no ``raw % n`` and no float scaling.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import weakref
from bisect import bisect_right
from collections.abc import Callable, MutableSequence, Sequence
from typing import Protocol, TypeVar

__all__ = [
    "DerivedRng",
    "Rng",
    "RngUnavailable",
    "SeededRng",
    "SystemRng",
    "randbelow_from_bits",
    "sample_indices",
    "shuffle",
    "weighted_index",
]

T = TypeVar("T")

# Bytes fetched from the entropy source per refill. Large enough to amortise the call, small
# enough that a buffer discarded at fork time costs nothing.
_CHUNK = 4096


class RngUnavailable(RuntimeError):
    """The entropy source failed; games that depend on it must stop (RNG-8)."""


class Rng(Protocol):
    """The only randomness interface game code may use."""

    def randbelow(self, n: int) -> int:
        """Return a uniformly distributed integer in ``[0, n)``; ``n`` must be positive."""
        ...

    def getrandbits(self, k: int) -> int:
        """Return a uniformly distributed integer with ``k`` random bits (``k >= 0``)."""
        ...


def randbelow_from_bits(getrandbits: Callable[[int], int], n: int) -> int:
    """Scale raw random bits to ``[0, n)`` without bias (RNG-3).

    Draws ``k = bit_length(n - 1)`` bits and rejects values ``>= n``: the largest multiple of
    ``n`` not above ``2**k`` is ``n`` itself, so accepted values are exactly uniform. At most
    half of the draws are rejected on average.

    Args:
        getrandbits: Source of uniform ``k``-bit integers.
        n: Size of the range; must be positive.

    Returns:
        An integer in ``[0, n)``.

    Raises:
        ValueError: If ``n`` is not positive.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    k = (n - 1).bit_length()
    r = getrandbits(k)
    while r >= n:
        r = getrandbits(k)
    return r


class _BufferedRng:
    """Shared machinery: uniform bits served from a byte buffer refilled by ``_more``."""

    __slots__ = ("__weakref__", "_buf", "_pos")

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0

    def _more(self) -> bytes:
        raise NotImplementedError

    def _reset(self) -> None:
        self._buf = b""
        self._pos = 0

    def getrandbits(self, k: int) -> int:
        """Return an integer with ``k`` uniform random bits."""
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        nbytes = (k + 7) >> 3
        pos = self._pos
        end = pos + nbytes
        if end > len(self._buf):
            buf = self._buf[pos:]
            while len(buf) < nbytes:
                buf += self._more()
            self._buf = buf
            pos, end = 0, nbytes
        self._pos = end
        return int.from_bytes(self._buf[pos:end], "little") >> ((nbytes << 3) - k)

    def randbelow(self, n: int) -> int:
        """Return a uniform integer in ``[0, n)`` (rejection sampling, RNG-3)."""
        return randbelow_from_bits(self.getrandbits, n)


_LIVE_SYSTEM_RNGS: weakref.WeakSet[SystemRng] = weakref.WeakSet()


def _forget_buffers_after_fork() -> None:
    # A child process must never replay bytes its parent (or a sibling) also holds (RNG-2).
    for rng in list(_LIVE_SYSTEM_RNGS):
        rng._reset()


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_forget_buffers_after_fork)


class SystemRng(_BufferedRng):
    """Production RNG: bytes from the operating system CSPRNG (``os.urandom``).

    There is no seed parameter: two instances never share a stream, and a forked child discards
    any buffered bytes it inherited. If the entropy source fails, :class:`RngUnavailable` is
    raised and no value is returned (RNG-8).
    """

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__()
        _LIVE_SYSTEM_RNGS.add(self)

    def _more(self) -> bytes:
        try:
            return os.urandom(_CHUNK)
        except OSError as exc:
            raise RngUnavailable("operating-system entropy source failed") from exc


class SeededRng(_BufferedRng):
    """Deterministic generator for tests and simulation only. Never use it to decide real play.

    The stream is SHAKE-256 over a domain tag, the seed and a block counter, so equal seeds give
    equal streams on every platform and Python version.

    Args:
        seed: Any integer, string or bytes.
    """

    __slots__ = ("_counter", "_seed")

    def __init__(self, seed: int | str | bytes) -> None:
        super().__init__()
        if isinstance(seed, int):
            seed = seed.to_bytes((seed.bit_length() + 8) // 8, "little", signed=True)
        elif isinstance(seed, str):
            seed = seed.encode()
        self._seed = b"croupier-seeded-rng\x00" + seed
        self._counter = 0

    def _more(self) -> bytes:
        block = hashlib.shake_256(self._seed + self._counter.to_bytes(8, "little")).digest(_CHUNK)
        self._counter += 1
        return block


class DerivedRng(_BufferedRng):
    """Deterministic stream derived from a *secret* seed, for commit-reveal draws (RNG-9).

    Blocks are ``HMAC-SHA256(seed, context || counter)``. The seed must be at least 256 bits and
    drawn from :class:`SystemRng` (see ``games.lottery.new_seed``); publishing ``sha256(seed)``
    before the draw and the seed after it lets anyone recompute the result.

    Raises:
        ValueError: If the seed is shorter than 32 bytes.
    """

    __slots__ = ("_context", "_counter", "_key")

    def __init__(self, seed: bytes, context: bytes) -> None:
        super().__init__()
        if len(seed) < 32:
            raise ValueError("a derivation seed needs at least 256 bits")
        self._key = seed
        self._context = context
        self._counter = 0

    def _more(self) -> bytes:
        block = hmac.new(self._key, self._context + self._counter.to_bytes(8, "big"), hashlib.sha256).digest()
        self._counter += 1
        return block


def weighted_index(rng: Rng, cumulative: Sequence[int]) -> int:
    """Pick an index with probability proportional to its weight.

    Args:
        rng: The random source.
        cumulative: Running totals of positive integer weights (strictly increasing).

    Returns:
        ``i`` with probability ``(cumulative[i] - cumulative[i - 1]) / cumulative[-1]``.
    """
    return bisect_right(cumulative, rng.randbelow(cumulative[-1]))


def shuffle(rng: Rng, items: MutableSequence[T]) -> None:
    """Shuffle ``items`` in place with an unbiased Fisher-Yates shuffle."""
    for i in range(len(items) - 1, 0, -1):
        j = rng.randbelow(i + 1)
        items[i], items[j] = items[j], items[i]


def sample_indices(rng: Rng, population: int, k: int) -> list[int]:
    """Draw ``k`` distinct indices from ``range(population)``, in draw order.

    Uses a partial Fisher-Yates shuffle, so every ordered k-tuple (and hence every k-subset) is
    equally likely (LOT-1, RNG-4).

    Raises:
        ValueError: If ``k`` is negative or larger than ``population``.
    """
    if not 0 <= k <= population:
        raise ValueError("sample size must be between 0 and the population size")
    pool = list(range(population))
    for i in range(k):
        j = i + rng.randbelow(population - i)
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:k]
