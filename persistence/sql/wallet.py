"""SQL wallet (ledger, balances, money batches) and round history, for SQLite and MySQL.

One batch is one database transaction with a fixed number of statements,
whatever its size:

1. ``SELECT ... FROM txns WHERE txn_key IN (...)``: keys already committed;
2. ``SELECT ... FROM balances WHERE account IN (...) FOR UPDATE``: lock the
   touched accounts (in account order, so concurrent writers do not deadlock);
3. ``SELECT ... FROM rounds WHERE round_id IN (...) FOR UPDATE``;
4. :func:`persistence.ledger.plan_batch` decides every txn in Python;
5. one multi-row INSERT each into ``txns``, ``ledger`` and ``rounds``, and one
   multi-row upsert of the net balance delta per account; then COMMIT.

The database still guards the invariants on its own: ``txns.txn_key`` is the
primary key, ``ledger (txn_key, seq)`` is unique, and a CHECK constraint refuses a
negative balance on accounts without ``allow_negative``. A concurrent writer that
commits the same key first makes our INSERT fail: the batch is retried and the key
comes back as a duplicate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from persistence.base import TxnOutcome
from persistence.errors import Conflict, StaleConnection, StoreBusy, StoreError
from persistence.ledger import AccountState, BatchPlan, RoundState, decode_result, encode_result, plan_batch
from persistence.records import (
    LedgerPosting,
    PostingKind,
    RoundRecord,
    RoundStatus,
    Txn,
    TxnResult,
    WalletBalance,
)
from persistence.sql.engine import (
    Param,
    Row,
    RowCountMismatch,
    SqlConn,
    SqlEngine,
    ThreadConn,
    Write,
    mysql_string,
    placeholders,
)

__all__ = ["ROUND_COLS", "SqlRounds", "SqlWallet", "round_from_row"]

T = TypeVar("T")
_CHUNK = 1000
#: a batch's SELECTs, what each returns ("txns", "balances" or "rounds"), the accounts it touches
_Reads = tuple[list[tuple[str, Sequence[Param]]], list[str], set[tuple[str, str]]]
_BATCH_ATTEMPTS = 4

ROUND_COLS = (
    "round_id, user_id, game_id, game_version, math_version, currency, bet, win, status, state, "
    "balance_before, balance_after, session_id, partner_id, created_at, updated_at, settled_at"
)
_ROUND_MUTABLE = [
    c.strip() for c in ROUND_COLS.split(",") if c.strip() not in ("round_id", "user_id", "created_at")
]
_POSTING_COLS = "txn_key, seq, account, currency, amount, kind, round_id, created_at"


def chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def round_row(r: RoundRecord) -> tuple[Param, ...]:
    return (
        r.round_id,
        r.user_id,
        r.game_id,
        r.game_version,
        r.math_version,
        r.currency,
        r.bet,
        r.win,
        r.status.value,
        r.state,
        r.balance_before,
        r.balance_after,
        r.session_id,
        r.partner_id,
        r.created_at,
        r.updated_at,
        r.settled_at,
    )


def round_from_row(row: Row) -> RoundRecord:
    return RoundRecord(
        round_id=row[0],
        user_id=row[1],
        game_id=row[2],
        game_version=row[3],
        math_version=row[4],
        currency=row[5],
        bet=row[6],
        win=row[7],
        status=RoundStatus(row[8]),
        state=bytes(row[9]),
        balance_before=row[10],
        balance_after=row[11],
        session_id=row[12],
        partner_id=row[13],
        created_at=row[14],
        updated_at=row[15],
        settled_at=row[16],
    )


def _posting(row: Row) -> LedgerPosting:
    return LedgerPosting(
        txn_key=row[0],
        seq=row[1],
        account=row[2],
        currency=row[3],
        amount=row[4],
        kind=PostingKind(row[5]),
        round_id=row[6],
        created_at=row[7],
    )


def _balance(row: Row) -> WalletBalance:
    return WalletBalance(
        account=row[0], currency=row[1], balance=row[2], allow_negative=bool(row[3]), updated_at=row[4]
    )


class SqlWallet:
    def __init__(self, engine: SqlEngine, clock: Callable[[], int]) -> None:
        self._e = engine
        self._d = engine.dialect
        self._clock = clock
        self._balance_upsert = self._d.upsert(["account", "currency"], ["updated_at"], ["balance"])
        self._round_upsert = self._d.upsert(["round_id"], _ROUND_MUTABLE)
        # House and bank accounts seen so far. ``allow_negative`` never changes after an
        # account is opened, so these need no lock and no read: no rule depends on them.
        self._house: set[tuple[str, str]] = set()

    def forget_accounts(self) -> None:
        """Drop the remembered house accounts (after the tables were emptied)."""
        self._house.clear()

    async def open_wallet(
        self, account: str, currency: str, *, allow_negative: bool = False
    ) -> WalletBalance:
        async with self._e.transaction() as c:
            await c.execute(
                f"{self._d.insert_ignore} INTO balances (account, currency, balance, allow_negative, updated_at) "
                "VALUES (?, ?, 0, ?, ?)",
                (account, currency, int(allow_negative), self._clock()),
            )
            rows = await c.fetchall(
                "SELECT account, currency, balance, allow_negative, updated_at FROM balances "
                "WHERE account = ? AND currency = ?",
                (account, currency),
            )
        return _balance(rows[0])

    async def get_balance(self, account: str, currency: str) -> WalletBalance | None:
        async with self._e.read() as c:
            rows = await c.fetchall(
                "SELECT account, currency, balance, allow_negative, updated_at FROM balances "
                "WHERE account = ? AND currency = ?",
                (account, currency),
            )
        return _balance(rows[0]) if rows else None

    async def list_balances(self, account: str) -> list[WalletBalance]:
        async with self._e.read() as c:
            rows = await c.fetchall(
                "SELECT account, currency, balance, allow_negative, updated_at FROM balances "
                "WHERE account = ? ORDER BY currency",
                (account,),
            )
        return [_balance(r) for r in rows]

    async def commit_batch(
        self, txns: Sequence[Txn], now: int, on_locked: Callable[[], None] | None = None
    ) -> list[TxnOutcome]:
        if not txns:
            if on_locked is not None:
                on_locked()
            return []
        attempt = 0
        stale = 0
        while True:
            try:
                async with self._e.transaction(merge_begin=True) as c:
                    in_thread = getattr(c, "in_thread", None)
                    if in_thread is not None:
                        # SQLite: the reads, the decision and the writes in one trip to the
                        # connection's thread. Batches take the engine's write lock in turn,
                        # so the next one may queue behind this one now.
                        if on_locked is not None:
                            on_locked()
                        plan: BatchPlan = await in_thread(lambda tc: self._commit_now(tc, txns, now))
                    else:
                        plan, all_locked = await self._plan(c, txns, now)
                        if on_locked is not None and all_locked:
                            on_locked()  # the balances it reads are ours until COMMIT
                        await self._write(c, plan, now)
                return plan.outcomes
            except RowCountMismatch as exc:
                raise StoreError(f"balance update: {exc}: an account vanished") from None
            except StaleConnection:
                # a pooled connection had died while idle; nothing ran: once more on a new one
                stale += 1
                if stale > 1:
                    raise
            except (Conflict, StoreBusy):
                # A concurrent writer committed one of our keys or rounds first, or a
                # deadlock: run the batch again, which now sees those rows.
                attempt += 1
                if attempt >= _BATCH_ATTEMPTS:
                    raise
                await asyncio.sleep(0.002 * attempt)

    async def _plan(self, c: SqlConn, txns: Sequence[Txn], now: int) -> tuple[BatchPlan, bool]:
        """Read (and lock) everything the batch needs, in one round trip, then decide.

        Also returns whether every account the batch touches exists (so is now locked).
        """
        reads = self._reads(txns)
        return self._decide(txns, reads, await c.fetch_all(reads[0]), now)

    def _commit_now(self, c: ThreadConn, txns: Sequence[Txn], now: int) -> BatchPlan:
        """The whole batch on the connection's own thread: read, decide, write, COMMIT."""
        reads = self._reads(txns)
        plan, _ = self._decide(txns, reads, c.fetch_all_now(reads[0]), now)
        writes = self._writes(plan, now)
        if writes is None:  # nothing to write: end the transaction here too
            c.write_all_now([], commit=True)
        else:
            c.write_all_now(writes[0], commit=True, expect_last=writes[1])
        return plan

    def _reads(self, txns: Sequence[Txn]) -> _Reads:
        """The SELECTs a batch needs (what each returns, and every account it touches)."""
        lock = self._d.for_update
        house = self._house
        keys = list(dict.fromkeys(t.key for t in txns))
        touched = {(e.account, e.currency) for t in txns for e in t.entries}
        accounts = sorted({a for a, cur in touched if (a, cur) not in house})
        round_ids = sorted({t.round.round_id for t in txns if t.round is not None})
        queries: list[tuple[str, Sequence[Param]]] = []
        kinds: list[str] = []
        for part in chunks(keys):
            queries.append(
                (f"SELECT txn_key, result FROM txns WHERE txn_key IN {placeholders(len(part))}", part)
            )
            kinds.append("txns")
        for acc in chunks(accounts):
            queries.append(
                (
                    "SELECT account, currency, balance, allow_negative FROM balances "
                    f"WHERE account IN {placeholders(len(acc))} ORDER BY account, currency{lock}",
                    acc,
                )
            )
            kinds.append("balances")
        for rid in chunks(round_ids):
            queries.append(
                (
                    f"SELECT round_id, user_id, status, updated_at FROM rounds WHERE round_id IN {placeholders(len(rid))}"
                    f" ORDER BY round_id{lock}",
                    rid,
                )
            )
            kinds.append("rounds")
        return queries, kinds, touched

    def _decide(
        self, txns: Sequence[Txn], reads: _Reads, results: list[list[Row]], now: int
    ) -> tuple[BatchPlan, bool]:
        """Decide the batch against what its reads returned (`plan_batch`)."""
        _, kinds, touched = reads
        house = self._house
        stored: dict[str, bytes] = {}
        balances = {k: AccountState(0, True) for k in touched if k in house}
        rounds: dict[str, RoundState] = {}
        for kind, rows in zip(kinds, results, strict=True):
            if kind == "txns":
                stored.update((r[0], bytes(r[1])) for r in rows)
            elif kind == "balances":
                for r in rows:
                    st = balances[(r[0], r[1])] = AccountState(r[2], bool(r[3]))
                    if st.allow_negative:
                        house.add((r[0], r[1]))
            else:
                rounds.update((r[0], RoundState(r[1], RoundStatus(r[2]), r[3])) for r in rows)
        plan = plan_batch(txns, stored=stored, balances=balances, rounds=rounds, now=now)
        # An account without a row has nothing to lock: a batch started now would not
        # queue behind this one on it. Only a batch whose accounts all exist is "locked".
        return plan, len(balances) == len(touched)

    async def _write(self, c: SqlConn, plan: BatchPlan, now: int) -> None:
        """Every write of the batch in one round trip, then the COMMIT, only if the balance
        updates touched every planned row (else RowCountMismatch, nothing committed)."""
        writes = self._writes(plan, now)
        if writes is not None:
            await c.write_all(writes[0], commit=True, expect_last=writes[1])

    def _writes(self, plan: BatchPlan, now: int) -> tuple[list[Write], int] | None:
        """The batch's writes, and the rows the last must touch (None: nothing accepted)."""
        if not plan.accepted:
            return None
        if self._d.name == "mysql":
            writes = self._mysql_inserts(plan, now)
        else:
            txn_rows: list[tuple[Param, ...]] = []
            ledger_rows: list[tuple[Param, ...]] = []
            for txn, result in plan.accepted:
                key, rid = txn.key, result.round_id
                txn_rows.append((key, rid, now, encode_result(result)))
                for seq, e in enumerate(txn.entries):
                    ledger_rows.append((key, seq, e.account, e.currency, e.amount, e.kind.value, rid, now))
            writes = [
                Write("INSERT INTO txns (txn_key, round_id, created_at, result) VALUES", txn_rows),
                Write(f"INSERT INTO ledger ({_POSTING_COLS}) VALUES", ledger_rows),
                Write(
                    f"INSERT INTO rounds ({ROUND_COLS}) VALUES",
                    [round_row(r) for _, r in sorted(plan.round_inserts.items())],
                ),
            ]
        writes += [
            Write(
                f"INSERT INTO rounds ({ROUND_COLS}) VALUES",
                [round_row(r) for _, r in sorted(plan.round_updates.items())],
                self._round_upsert,
            ),
        ]
        # balances last: the house row is locked only from here to COMMIT
        new, existing, expected = self._balance_writes(plan, now)
        writes += [new, existing]
        return writes, expected

    @staticmethod
    def _mysql_inserts(plan: BatchPlan, now: int) -> list[Write]:
        """The txns, ledger and new-round rows rendered straight to MySQL literals.

        The hot path of a batch (about five rows per spin): one f-string per row with
        memoised string literals, instead of a tuple per row rendered value by value.
        """
        memo: dict[str, str] = {}

        def q(s: str) -> str:
            lit = memo.get(s)
            if lit is None:
                lit = memo[s] = mysql_string(s)
            return lit

        txns: list[str] = []
        ledger: list[str] = []
        tail = f",{now})"
        for txn, result in plan.accepted:
            k, r = q(txn.key), q(result.round_id)
            txns.append(f"({k},{r},{now},X'{encode_result(result).hex()}')")
            for seq, e in enumerate(txn.entries):
                ledger.append(
                    f"({k},{seq},{q(e.account)},{q(e.currency)},{e.amount},{q(e.kind.value)},{r}{tail}"
                )
        rounds = [
            f"({q(x.round_id)},{q(x.user_id)},{q(x.game_id)},{q(x.game_version)},{q(x.math_version)},"
            f"{q(x.currency)},{x.bet},{x.win},{q(x.status.value)},X'{x.state.hex()}',{x.balance_before},"
            f"{x.balance_after},{q(x.session_id)},{q(x.partner_id)},{x.created_at},{x.updated_at},{x.settled_at})"
            for _, x in sorted(plan.round_inserts.items())
        ]
        return [
            Write("INSERT INTO txns (txn_key, round_id, created_at, result) VALUES", (), text=txns),
            Write(f"INSERT INTO ledger ({_POSTING_COLS}) VALUES", (), text=ledger),
            Write(f"INSERT INTO rounds ({ROUND_COLS}) VALUES", (), text=rounds),
        ]

    def _balance_writes(self, plan: BatchPlan, now: int) -> tuple[Write, Write, int]:
        """Writes applying the net delta per account: INSERT new accounts, add to existing ones.

        Both databases check CHECK constraints on an upsert's *candidate* row before
        resolving the key conflict, so deltas of existing accounts cannot go through a
        plain upsert. SQLite runs one UPDATE per account (executemany, in C). MySQL
        runs one multi-row upsert whose candidate rows say ``allow_negative=1`` (so the
        candidate passes) while the assignment leaves the stored flag alone: the CHECK
        then judges the real, updated row. Every account is locked and exists, so every
        row must be an update (MySQL counts 2): anything else aborts the transaction.
        House accounts come last, so their row lock (the one every batch needs) is held
        only from that statement to COMMIT.
        """
        new = Write(
            "INSERT INTO balances (account, currency, balance, allow_negative, updated_at) VALUES",
            [(a, cur, plan.deltas.get((a, cur), 0), 0, now) for a, cur in sorted(plan.new_accounts)],
        )
        existing = sorted(
            (k for k, d in plan.deltas.items() if d and k not in plan.new_accounts),
            key=lambda k: (plan.balances[k].allow_negative, k),
        )
        if self._d.name == "sqlite":
            update = Write(
                "UPDATE balances SET balance = balance + ?, updated_at = ? WHERE account = ? AND currency = ?",
                [(plan.deltas[k], now, k[0], k[1]) for k in existing],
                each=True,
            )
            return new, update, len(existing)
        upsert = Write(
            "INSERT INTO balances (account, currency, balance, allow_negative, updated_at) VALUES",
            [(a, cur, plan.deltas[(a, cur)], 1, now) for a, cur in existing],
            self._balance_upsert,
        )
        return new, upsert, 2 * len(existing)

    async def get_txn(self, key: str) -> TxnResult | None:
        async with self._e.read() as c:
            rows = await c.fetchall("SELECT result FROM txns WHERE txn_key = ?", (key,))
        return decode_result(bytes(rows[0][0])) if rows else None

    async def txn_postings(self, key: str) -> list[LedgerPosting]:
        async with self._e.read() as c:
            rows = await c.fetchall(
                f"SELECT {_POSTING_COLS} FROM ledger WHERE txn_key = ? ORDER BY seq", (key,)
            )
        return [_posting(r) for r in rows]

    async def postings(self, account: str, currency: str, *, limit: int = 50) -> list[LedgerPosting]:
        async with self._e.read() as c:
            rows = await c.fetchall(
                f"SELECT {_POSTING_COLS} FROM ledger WHERE account = ? AND currency = ? ORDER BY id DESC LIMIT ?",
                (account, currency, limit),
            )
        return [_posting(r) for r in rows]

    async def ledger_totals(self) -> dict[str, int]:
        async with self._e.read() as c:
            rows = await c.fetchall(
                "SELECT currency, SUM(amount) FROM ledger GROUP BY currency ORDER BY currency"
            )
        return {r[0]: int(r[1]) for r in rows}

    async def balance_mismatches(self) -> list[tuple[str, str, int, int]]:
        async with self._e.read() as c:
            bal = await c.fetchall("SELECT account, currency, balance FROM balances")
            sums = await c.fetchall(
                "SELECT account, currency, SUM(amount) FROM ledger GROUP BY account, currency"
            )
        b = {(r[0], r[1]): int(r[2]) for r in bal}
        s = {(r[0], r[1]): int(r[2]) for r in sums}
        return [
            (a, cur, b.get((a, cur), 0), s.get((a, cur), 0))
            for a, cur in sorted(b.keys() | s.keys())
            if b.get((a, cur), 0) != s.get((a, cur), 0)
        ]


class SqlRounds:
    def __init__(self, engine: SqlEngine) -> None:
        self._e = engine

    async def get_round(self, round_id: str) -> RoundRecord | None:
        async with self._e.read() as c:
            rows = await c.fetchall(f"SELECT {ROUND_COLS} FROM rounds WHERE round_id = ?", (round_id,))
        return round_from_row(rows[0]) if rows else None

    async def open_rounds(self, user_id: str) -> list[RoundRecord]:
        async with self._e.read() as c:
            rows = await c.fetchall(
                f"SELECT {ROUND_COLS} FROM rounds WHERE user_id = ? AND status = ? ORDER BY created_at, round_id",
                (user_id, RoundStatus.OPEN.value),
            )
        return [round_from_row(r) for r in rows]

    async def history(self, user_id: str, *, limit: int = 10, before: int | None = None) -> list[RoundRecord]:
        cond, params = ("", (user_id,)) if before is None else (" AND created_at < ?", (user_id, before))
        async with self._e.read() as c:
            rows = await c.fetchall(
                f"SELECT {ROUND_COLS} FROM rounds WHERE user_id = ?{cond} "
                "ORDER BY created_at DESC, round_id DESC LIMIT ?",
                (*params, limit),
            )
        return [round_from_row(r) for r in rows]

    async def stale_open_rounds(
        self, game_id: str, before: int, *, after: tuple[int, str] | None = None, limit: int = 100
    ) -> list[RoundRecord]:
        page = ""
        params: tuple[int | str, ...] = ()
        if after is not None:  # (updated_at, round_id) > after, spelled out for the index
            page = " AND (updated_at > ? OR (updated_at = ? AND round_id > ?))"
            params = (after[0], *after)
        async with self._e.read() as c:
            rows = await c.fetchall(
                # the status as a literal: SQLite's partial index (0002) is then certain to apply
                f"SELECT {ROUND_COLS} FROM rounds WHERE status = '{RoundStatus.OPEN.value}' AND game_id = ? "
                f"AND updated_at < ?{page} ORDER BY updated_at, round_id LIMIT ?",
                (game_id, before, *params, limit),
            )
        return [round_from_row(r) for r in rows]
