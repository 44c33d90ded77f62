"""Write-behind for non-money state: coalesce per key, write in the background.

Progress counters, profile fields and persistent room/user variables change
often and are cheap to lose a second of, unlike money. :meth:`WriteBehind.put`
records the latest value per key (``op.coalesce_key``) and returns at once; a
background task writes the dirty set every ``flush_interval_ms`` in one database
transaction; :meth:`WriteBehind.close` (graceful shutdown) flushes what is left.

Loss window on a hard crash (``kill -9``, power loss): the changes made since the
last successful flush, i.e. at most ``flush_interval_ms`` plus the duration of one
flush; while the database is unavailable, everything put since it went down (the
dirty set is kept and retried with backoff, not dropped). Money never goes
through here.

Memory is bounded: at most ``max_dirty`` distinct keys are held. When that many
are dirty (the database is slow or down), ``put`` of a *new* key raises
:class:`~persistence.errors.StoreBusy`; updating a key already dirty always works,
since it costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass

from persistence.errors import StoreBusy, StoreClosed, StoreUnavailable
from persistence.records import WriteOp

__all__ = ["ApplyFn", "WriteBehind", "WriteBehindConfig"]

log = logging.getLogger(__name__)

ApplyFn = Callable[[Sequence[WriteOp]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WriteBehindConfig:
    flush_interval_ms: float = 1000.0
    """Bounded delay: a change reaches the database within about this long."""
    max_dirty: int = 100_000
    """Most distinct dirty keys held in memory."""
    max_ops_per_txn: int = 2000
    """A flush writes the dirty set in transactions of at most this many writes."""
    flush_timeout_s: float = 5.0
    max_retry_interval_s: float = 10.0

    def __post_init__(self) -> None:
        assert self.flush_interval_ms > 0, "flush_interval_ms must be > 0"
        assert self.max_dirty >= 1, "max_dirty must be >= 1"
        assert self.max_ops_per_txn >= 1, "max_ops_per_txn must be >= 1"


class WriteBehind:
    """Coalescing write-behind buffer over ``apply`` (a backend's ``apply_writes``)."""

    def __init__(
        self,
        apply: ApplyFn,
        *,
        config: WriteBehindConfig | None = None,
        on_flushed: Callable[[Sequence[WriteOp]], None] | None = None,
    ) -> None:
        self._apply = apply
        self._on_flushed = on_flushed
        self.config = config or WriteBehindConfig()
        self._dirty: dict[Hashable, WriteOp] = {}
        self._writing: dict[Hashable, WriteOp] = {}  # taken by the flush in progress
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.flushes = 0
        self.failures = 0

    @property
    def dirty(self) -> int:
        """Number of keys not written yet (those of a flush in progress included)."""
        if not self._writing:
            return len(self._dirty)
        return len(self._dirty) + sum(1 for k in self._writing if k not in self._dirty)

    def pending(self, prefix: tuple[str, ...]) -> list[WriteOp]:
        """The writes not yet known to be in the database whose key starts with ``prefix``.

        For read-your-writes: a reader overlays them on what it loaded (the newest
        write per key; a flush in progress counts as pending until it succeeded).
        Costs one pass over the dirty set, which is small in normal operation.
        """
        n = len(prefix)
        found: dict[Hashable, WriteOp] = {}
        for source in (self._writing, self._dirty):  # dirty is newer
            for key, op in source.items():
                if isinstance(key, tuple) and key[:n] == prefix:
                    found[key] = op
        return list(found.values())

    def put(self, op: WriteOp) -> None:
        """Record ``op``, replacing any pending write of the same key.

        Raises:
            StoreBusy: ``max_dirty`` other keys are already waiting.
            StoreClosed: after :meth:`close`.
        """
        if self._closed:
            raise StoreClosed("write-behind is closed")
        key = op.coalesce_key
        if key not in self._dirty and len(self._dirty) >= self.config.max_dirty:
            raise StoreBusy("write-behind buffer full")
        self._dirty[key] = op
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="persistence-write-behind")

    async def flush(self) -> int:
        """Write everything dirty now; return the number of writes.

        Raises:
            StoreUnavailable / StoreBusy / StoreError: the write failed; the ops stay
                dirty (newer puts of the same keys win) and will be retried.
        """
        async with self._lock:
            batch, self._dirty = self._dirty, {}
            if not batch:
                return 0
            self._writing = batch
            try:
                return await self._flush_taken(batch)
            finally:
                self._writing = {}

    async def _flush_taken(self, batch: dict[Hashable, WriteOp]) -> int:
        items = list(batch.items())
        step = self.config.max_ops_per_txn
        for i in range(0, len(items), step):
            part = items[i : i + step]
            ops = [op for _, op in part]
            try:
                async with asyncio.timeout(self.config.flush_timeout_s):
                    await self._apply(ops)
            except BaseException as exc:
                for k, op in items[i:]:
                    self._dirty.setdefault(k, op)  # a newer put of k wins
                self.failures += 1
                if isinstance(exc, TimeoutError):
                    raise StoreUnavailable("write-behind flush timed out") from exc
                raise
            if self._on_flushed is not None:
                try:
                    self._on_flushed(ops)
                except Exception:
                    log.exception("write-behind on_flushed hook failed")
        self.flushes += 1
        return len(items)

    async def _run(self) -> None:
        interval = self.config.flush_interval_ms / 1000.0
        wait = interval
        while not self._closed:
            await asyncio.sleep(wait)
            try:
                await self.flush()
                wait = interval
            except Exception as exc:
                wait = min(max(wait * 2, interval), self.config.max_retry_interval_s)
                log.warning(
                    "write-behind flush failed (%d keys kept, retry in %.1fs): %s", self.dirty, wait, exc
                )

    async def close(self) -> None:
        """Stop the background task and flush what is left (graceful shutdown).

        Raises:
            StoreUnavailable etc.: the final flush failed; ``dirty`` keys are lost.
        """
        self._closed = True
        if self._task is not None:
            async with self._lock:  # let a flush in progress finish, then stop the loop
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
