"""Group-commit writer for money: batch transactions, commit once, then acknowledge.

One writer per worker process. Game code calls :meth:`GroupCommitWriter.commit`
(or :meth:`~GroupCommitWriter.submit` and awaits the future): the transaction joins
the ones queued with it (in the same loop turn, while earlier batches commit, or for
at most ``max_delay_ms`` when that is set; at most ``max_batch``), the whole batch is
written in ONE database transaction, and every caller's future resolves only after
COMMIT returned. The reply to the client is sent after that.

Outcomes of one transaction:

- :class:`~persistence.records.TxnResult`: committed and durable; ``duplicate=True``
  when the key had already been committed (nothing was posted again, the original
  result and reply are returned);
- :class:`~persistence.errors.TxnRejected` (``InsufficientFunds``, ``RoundConflict``):
  refused by a rule, nothing posted, the other transactions of the batch are unaffected;
- :class:`~persistence.errors.StoreBusy`: the queue is full (raised by ``submit``
  at once) or the database stayed locked: not acknowledged, retry later;
- :class:`~persistence.errors.StoreUnavailable`: the database is down or timed out.
  The batch in flight may or may not have committed, so the caller retries with the
  same key and gets the true outcome. After such a failure the writer refuses new
  work at once (circuit open) until a background ``ping`` succeeds, so callers get a
  fast error instead of piling up;
- :class:`~persistence.errors.StoreError`: the database refused this transaction's
  rows (for example a value too long); the rest of its batch was committed without it
  (the batch is bisected to find the offender).

Memory is bounded by ``max_queue`` transactions; nothing is ever acknowledged
before it is committed.

Pipelining: up to ``max_inflight`` batches commit at once, each on its own
connection. A batch is started only after the previous one reported that it holds
the row locks its rules read (``on_locked`` of ``WalletStore.commit_batch``), so the
database makes a later batch wait on every account the two share: transactions are
still applied in submission order per account, while batches of different players
overlap (one prepares and sends its statements while the other waits for its
COMMIT). Rows that do not exist yet cannot be locked, so a batch that creates an
account reports "locked" only when it is done, and a batch is held back while an
earlier one in flight has a transaction of the same round. The exceptions are a
batch that had to be retried (a deadlock or a concurrent writer's key) or bisected
(a row the database refused): its transactions may then land after those of the
next batch. Each transaction is always atomic, checked and idempotent. Two
submissions of the same key while the first is still queued or in flight share its
outcome (the second gets ``duplicate=True``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from persistence.errors import (
    PersistenceError,
    StoreBusy,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    TxnRejected,
)
from persistence.records import Txn, TxnResult, now_ms, validate_txn

__all__ = ["CommitFn", "GroupCommitWriter", "PingFn", "WriterConfig", "WriterStats"]

log = logging.getLogger(__name__)

CommitFn = Callable[..., Awaitable[Sequence[TxnResult | PersistenceError]]]
"""``commit(txns, now)``, or ``commit(txns, now, on_locked)`` (see ``WalletStore.commit_batch``)."""
PingFn = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WriterConfig:
    """Limits of one writer; every field is documented in ``docs/persistence.md``."""

    max_delay_ms: float = 0.0
    """Longest time the first transaction of a batch waits for others to join. 0: no
    wait; a batch is what queued in the same loop turn or while the batches in flight
    committed (natural group commit, which forms batches by itself under load)."""
    max_batch: int = 512
    """Most transactions in one database transaction."""
    max_inflight: int = 2
    """Batches committing at the same time (each on its own connection). With 2, a new
    batch is prepared and written while the previous one waits for its COMMIT, in
    per-account order (module docstring); 1 commits strictly one batch after another."""
    max_queue: int = 10_000
    """Most transactions waiting (queued, not yet in a batch); beyond it ``submit`` raises StoreBusy."""
    commit_timeout_s: float = 2.0
    """Longest one batch may take; beyond it its callers get StoreUnavailable."""
    probe_interval_s: float = 0.25
    """First wait before pinging a database that failed; doubles up to ``max_probe_interval_s``."""
    max_probe_interval_s: float = 5.0
    probe_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        assert self.max_delay_ms >= 0, "max_delay_ms must be >= 0"
        assert self.max_batch >= 1, "max_batch must be >= 1"
        assert self.max_inflight >= 1, "max_inflight must be >= 1"
        assert self.max_queue >= self.max_batch, "max_queue must be >= max_batch"
        assert self.commit_timeout_s > 0, "commit_timeout_s must be > 0"


@dataclass(slots=True)
class WriterStats:
    batches: int = 0
    committed: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0
    busy: int = 0
    max_batch_seen: int = 0
    lingers: int = 0
    """Times a batch waited ``max_delay_ms`` for others to join (at most once per batch)."""
    batch_sizes: deque[int] = field(default_factory=lambda: deque(maxlen=1024))


@dataclass(slots=True)
class _Pending:
    txn: Txn
    future: asyncio.Future[TxnResult]
    queued_at: float


def _resolve(fut: asyncio.Future[TxnResult], outcome: TxnResult | BaseException) -> None:
    if fut.done():
        return
    if isinstance(outcome, BaseException):
        fut.set_exception(outcome)
    else:
        fut.set_result(outcome)


class GroupCommitWriter:
    """Batches money transactions into group commits (see the module docstring).

    Args:
        commit: the backend's ``wallet.commit_batch``.
        ping: the backend's ``ping``, used to detect recovery.
        config: limits.
        clock: epoch milliseconds, stamped on every committed row.
        on_commit: called with the committed results of each batch, after their
            callers were resolved (used for cache write-through); must not block.
    """

    def __init__(
        self,
        commit: CommitFn,
        ping: PingFn,
        *,
        config: WriterConfig | None = None,
        clock: Callable[[], int] = now_ms,
        on_commit: Callable[[Sequence[TxnResult]], None] | None = None,
    ) -> None:
        self._commit = commit
        try:
            self._signals_lock = "on_locked" in inspect.signature(commit).parameters
        except (TypeError, ValueError):
            self._signals_lock = False
        self._locked: asyncio.Event | None = None  # set once the latest batch holds its locks
        self._rounds_inflight: dict[str, int] = {}  # round ids of the batches committing
        self._ping = ping
        self.config = config or WriterConfig()
        self._clock = clock
        self._on_commit = on_commit
        self._queue: deque[_Pending] = deque()
        self._inflight: dict[str, asyncio.Future[TxnResult]] = {}
        self._signal = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(self.config.max_inflight)
        self._flushing: set[asyncio.Task[None]] = set()
        self._probe: asyncio.Task[None] | None = None
        self._down: str | None = None
        self._closing = False
        self.stats = WriterStats()

    # -- public API -------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False while the database is considered down (submissions fail fast)."""
        return self._down is None

    @property
    def queued(self) -> int:
        return len(self._queue)

    def submit(self, txn: Txn) -> asyncio.Future[TxnResult]:
        """Queue ``txn``; the future resolves after its batch committed.

        Raises (at once, nothing queued):
            InvalidTxn: malformed or unbalanced transaction.
            StoreBusy: ``max_queue`` transactions are already waiting.
            StoreUnavailable: the database is down (circuit open).
            StoreClosed: the writer is closing.
        """
        if self._closing:
            raise StoreClosed("writer is closed")
        validate_txn(txn)
        loop = asyncio.get_running_loop()
        first = self._inflight.get(txn.key)
        if first is not None:
            return self._follow(loop, first)
        if self._down is not None:
            raise StoreUnavailable(self._down)
        if len(self._queue) >= self.config.max_queue:
            self.stats.busy += 1
            raise StoreBusy("write queue full")
        fut: asyncio.Future[TxnResult] = loop.create_future()
        self._queue.append(_Pending(txn, fut, loop.time()))
        self._inflight[txn.key] = fut
        if self._task is None:
            self._task = loop.create_task(self._run(), name="persistence-writer")
        if len(self._queue) == 1 or len(self._queue) >= self.config.max_batch:
            self._signal.set()
        return fut

    async def commit(self, txn: Txn) -> TxnResult:
        """Submit ``txn`` and wait until it is durable. Raises as :meth:`submit` and the outcome."""
        return await self.submit(txn)

    async def close(self) -> None:
        """Stop accepting, commit everything still queued, and stop the background tasks."""
        self._closing = True
        self._signal.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None

    async def __aenter__(self) -> GroupCommitWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- internals --------------------------------------------------------------------

    def _follow(
        self, loop: asyncio.AbstractEventLoop, first: asyncio.Future[TxnResult]
    ) -> asyncio.Future[TxnResult]:
        """A future that resolves like ``first``, marked as a duplicate."""
        fut: asyncio.Future[TxnResult] = loop.create_future()

        def done(f: asyncio.Future[TxnResult]) -> None:
            if fut.done():
                return
            if f.cancelled():
                fut.set_exception(StoreUnavailable("original request was cancelled"))
            elif (exc := f.exception()) is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(msgspec.structs.replace(f.result(), duplicate=True))

        first.add_done_callback(done)
        self.stats.duplicates += 1
        return fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        delay = cfg.max_delay_ms / 1000.0
        while True:
            if not self._queue:
                if self._closing:
                    if self._flushing:
                        await asyncio.gather(*self._flushing)
                        continue
                    return
                self._signal.clear()
                await self._signal.wait()
                continue
            wait = self._queue[0].queued_at + delay - loop.time()
            if wait > 0 and len(self._queue) < cfg.max_batch and not self._closing:
                # One timer per batch, and the batch goes when it fires: uvloop rounds a
                # timer to whole milliseconds, so a deadline re-checked against loop.time()
                # fires early and is re-armed until it has passed (a busy wait, ~300 µs of
                # CPU per 2 ms batch). A timer is also cheaper than a cancelling timeout.
                self.stats.lingers += 1
                self._signal.clear()
                timer = loop.call_later(wait, self._signal.set)
                await self._signal.wait()
                timer.cancel()
                if not self._queue:  # failed meanwhile by a database error
                    continue
            await self._slots.acquire()
            if self._locked is not None and not self._locked.is_set():
                # pipelining: start the next batch only once the previous one holds its
                # row locks, so that the database queues ours behind it on shared accounts
                await self._locked.wait()
            if not self._queue:  # failed meanwhile by a database error
                self._slots.release()
                continue
            n = min(cfg.max_batch, len(self._queue))
            if self._rounds_inflight and self._shares_a_round(n):
                # a round not inserted yet has no row to lock: let its batch finish first
                self._slots.release()
                if self._flushing:
                    await asyncio.wait(list(self._flushing))
                continue
            batch = [self._queue.popleft() for _ in range(n)]
            rounds = [p.txn.round.round_id for p in batch if p.txn.round is not None]
            for rid in rounds:
                self._rounds_inflight[rid] = self._rounds_inflight.get(rid, 0) + 1
            locked = self._locked = asyncio.Event()
            if not self._signals_lock:
                locked.set()
            task = loop.create_task(self._flush_in_slot(batch, locked, rounds))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    def _shares_a_round(self, n: int) -> bool:
        inflight = self._rounds_inflight
        for i in range(n):
            rec = self._queue[i].txn.round
            if rec is not None and rec.round_id in inflight:
                return True
        return False

    async def _flush_in_slot(self, batch: list[_Pending], locked: asyncio.Event, rounds: list[str]) -> None:
        try:
            await self._flush(batch, locked)
        except Exception as exc:  # a bug below: never leave a caller waiting
            log.exception("writer batch failed unexpectedly")
            self._finish([p for p in batch if not p.future.done()], StoreError(f"writer error: {exc}"))
        finally:
            inflight = self._rounds_inflight
            for rid in rounds:
                left = inflight[rid] - 1
                if left:
                    inflight[rid] = left
                else:
                    del inflight[rid]
            locked.set()
            self._slots.release()

    async def _flush(self, batch: list[_Pending], locked: asyncio.Event) -> None:
        try:
            async with asyncio.timeout(self.config.commit_timeout_s):
                txns = [p.txn for p in batch]
                if self._signals_lock:
                    outcomes = await self._commit(txns, self._clock(), locked.set)
                else:
                    outcomes = await self._commit(txns, self._clock())
        except (StoreUnavailable, TimeoutError) as exc:
            err = (
                exc
                if isinstance(exc, StoreUnavailable)
                else StoreUnavailable(f"commit timed out after {self.config.commit_timeout_s}s")
            )
            self._finish(batch, err)
            self._trip(err.reason)
            return
        except (StoreBusy, StoreClosed) as exc:
            self._finish(batch, exc)
            return
        except Exception as exc:  # the database refused a row: find the offender
            if len(batch) == 1:
                refused = exc if isinstance(exc, StoreError) else StoreError(f"{type(exc).__name__}: {exc}")
                log.warning("txn %r refused by the database: %s", batch[0].txn.key, refused)
                self._finish(batch, refused)
                return
            mid = len(batch) // 2
            await self._flush(batch[:mid], locked)
            await self._flush(batch[mid:], locked)
            return
        if len(outcomes) != len(batch):
            raise StoreError(f"backend returned {len(outcomes)} outcomes for {len(batch)} txns")
        self._deliver(batch, outcomes)

    def _deliver(self, batch: list[_Pending], outcomes: Sequence[TxnResult | PersistenceError]) -> None:
        st = self.stats
        st.batches += 1
        st.batch_sizes.append(len(batch))
        st.max_batch_seen = max(st.max_batch_seen, len(batch))
        committed: list[TxnResult] = []
        for p, out in zip(batch, outcomes, strict=True):
            self._inflight.pop(p.txn.key, None)
            if isinstance(out, TxnResult):
                if out.duplicate:
                    st.duplicates += 1
                else:
                    st.committed += 1
                    committed.append(out)
            elif isinstance(out, TxnRejected):
                st.rejected += 1
            else:
                st.failed += 1
            _resolve(p.future, out)
        if committed and self._on_commit is not None:
            try:
                self._on_commit(committed)
            except Exception:
                log.exception("on_commit hook failed")

    def _finish(self, batch: list[_Pending], err: BaseException) -> None:
        self.stats.failed += len(batch)
        for p in batch:
            self._inflight.pop(p.txn.key, None)
            _resolve(p.future, err)

    def _trip(self, reason: str) -> None:
        """The database failed: refuse new work and fail what is queued, until a ping succeeds."""
        if self._down is None:
            log.warning("database unavailable, refusing money writes: %s", reason)
        self._down = reason
        queued = list(self._queue)
        self._queue.clear()
        self._finish(queued, StoreUnavailable(reason))
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._recover(), name="persistence-probe")

    async def _recover(self) -> None:
        cfg = self.config
        wait = cfg.probe_interval_s
        while True:
            await asyncio.sleep(wait)
            try:
                async with asyncio.timeout(cfg.probe_timeout_s):
                    await self._ping()
            except Exception as exc:
                log.debug("database still unavailable: %s", exc)
                wait = min(wait * 2, cfg.max_probe_interval_s)
                continue
            log.warning("database available again")
            self._down = None
            return
