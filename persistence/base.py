"""Store interfaces: one small ``Protocol`` per aggregate.

Every backend (memory, SQLite, MySQL) implements all of them, and the contract
suite in ``tests/contract/`` runs the same tests over each. Methods take and
return the Structs of :mod:`persistence.records`, never driver rows, and raise
only :mod:`persistence.errors`.

Money is written only through :meth:`WalletStore.commit_batch`, normally called by
the group-commit writer (:mod:`persistence.writer`), never directly by game code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from persistence.errors import PersistenceError
from persistence.records import (
    Account,
    AuditEntry,
    Ban,
    ConfigDoc,
    ConfigStatus,
    Document,
    LeaderboardOp,
    LeaderboardRecord,
    LedgerPosting,
    RoundRecord,
    Txn,
    TxnResult,
    UserSnapshot,
    Variable,
    VarScope,
    WalletBalance,
    WriteOp,
)

__all__ = [
    "AccountStore",
    "AuditLog",
    "Backend",
    "BlacklistStore",
    "ConfigStore",
    "DocumentStore",
    "LeaderboardStore",
    "RoundStore",
    "TxnOutcome",
    "VariableStore",
    "WalletStore",
]

TxnOutcome = TxnResult | PersistenceError
"""Per-transaction outcome of a batch: the result, or the error for that transaction only."""


class AccountStore(Protocol):
    async def create_account(self, account: Account) -> Account:
        """Insert a new account (timestamps are set by the store).

        Raises:
            Conflict: the user id, or the name in that zone, is taken.
        """
        ...

    async def get_account(self, user_id: str) -> Account | None: ...

    async def find_account(self, zone: str, name: str) -> Account | None: ...

    async def update_account(self, account: Account) -> Account:
        """Replace name, partner, status and profile of an existing account.

        Raises:
            NotFound: no such user. Conflict: the new name is taken in the zone.
        """
        ...


class WalletStore(Protocol):
    async def open_wallet(
        self, account: str, currency: str, *, allow_negative: bool = False
    ) -> WalletBalance:
        """Create a zero balance if it does not exist (idempotent); return the current one.

        House and bank accounts must be opened with ``allow_negative=True`` (WAL-5).
        """
        ...

    async def get_balance(self, account: str, currency: str) -> WalletBalance | None: ...

    async def list_balances(self, account: str) -> list[WalletBalance]: ...

    async def commit_batch(
        self, txns: Sequence[Txn], now: int, on_locked: Callable[[], None] | None = None
    ) -> list[TxnOutcome]:
        """Apply ``txns`` in order in ONE database transaction and commit it.

        ``on_locked`` is called once the rows the batch's rules read (player balances,
        rounds) are locked: a batch started after that point queues behind this one
        on every account they share, so the writer may pipeline batches and still
        apply each account's transactions in submission order.

        Returns one outcome per transaction: a :class:`TxnResult` (``duplicate=True``
        when the key was already committed) or a :class:`~persistence.errors.TxnRejected`
        that posted nothing. Business rejections never fail the other transactions.

        Raises:
            StoreUnavailable: connection lost or timed out (outcome unknown: retry the keys).
            StoreBusy: lock contention persisted after retries.
            StoreError: the database refused a row; the caller should isolate the offender.
        """
        ...

    async def get_txn(self, key: str) -> TxnResult | None:
        """The stored result of a committed key (``duplicate=True``), or None."""
        ...

    async def txn_postings(self, key: str) -> list[LedgerPosting]: ...

    async def postings(self, account: str, currency: str, *, limit: int = 50) -> list[LedgerPosting]:
        """The newest postings of an account, newest first."""
        ...

    async def ledger_totals(self) -> dict[str, int]:
        """Sum of all postings per currency: every value is 0 in a healthy ledger (WAL-1)."""
        ...

    async def balance_mismatches(self) -> list[tuple[str, str, int, int]]:
        """``(account, currency, balance, ledger_sum)`` for every balance that differs from its postings."""
        ...


class RoundStore(Protocol):
    """Read side of game rounds. Rounds are written only inside money transactions."""

    async def get_round(self, round_id: str) -> RoundRecord | None: ...

    async def open_rounds(self, user_id: str) -> list[RoundRecord]:
        """Rounds still in progress (free spins, pick features), oldest first (INT-1)."""
        ...

    async def history(self, user_id: str, *, limit: int = 10, before: int | None = None) -> list[RoundRecord]:
        """The user's rounds, newest first; ``before`` pages by ``created_at`` (HIST-1)."""
        ...

    async def stale_open_rounds(
        self, game_id: str, before: int, *, after: tuple[int, str] | None = None, limit: int = 100
    ) -> list[RoundRecord]:
        """Open rounds of a game, of every user, last written before ``before`` (epoch ms),
        by ``(updated_at, round_id)``; ``after`` pages past the last one seen (INT-4)."""
        ...


class VariableStore(Protocol):
    async def put_variables(self, items: Sequence[Variable]) -> None: ...

    async def delete_variables(self, keys: Sequence[tuple[VarScope, str, str]]) -> None: ...

    async def load_variables(self, scope: VarScope, owner: str) -> list[Variable]: ...


class LeaderboardStore(Protocol):
    """Leaderboard truth; ranking is score desc, subscore desc, owner id asc."""

    async def submit_scores(
        self, records: Sequence[LeaderboardRecord], op: LeaderboardOp
    ) -> list[LeaderboardRecord]:
        """Combine each record with the stored one by ``op``; return the stored results."""
        ...

    async def get_score(self, board_id: str, period: str, owner_id: str) -> LeaderboardRecord | None: ...

    async def top(
        self, board_id: str, period: str, *, limit: int = 10, offset: int = 0
    ) -> list[LeaderboardRecord]: ...

    async def rank(self, board_id: str, period: str, owner_id: str) -> int | None:
        """1-based rank, or None when the owner has no score."""
        ...

    async def delete_period(self, board_id: str, period: str) -> int: ...


class ConfigStore(Protocol):
    async def put_config(self, doc: ConfigDoc) -> ConfigDoc:
        """Store a new version; it must be ``latest + 1`` (the first is 1).

        Raises:
            Conflict: the version is not the next one. A stored body never changes.
        """
        ...

    async def get_config(self, kind: str, id: str, version: int | None = None) -> ConfigDoc | None:
        """A given version, or with ``version=None`` the latest *published* one."""
        ...

    async def list_versions(self, kind: str, id: str) -> list[ConfigDoc]: ...

    async def published(self, kind: str) -> list[ConfigDoc]:
        """The latest published version of every document of ``kind``."""
        ...

    async def set_config_status(self, kind: str, id: str, version: int, status: ConfigStatus) -> ConfigDoc:
        """Raises NotFound."""
        ...


class BlacklistStore(Protocol):
    async def add_ban(self, ban: Ban) -> Ban:
        """Insert or replace the ban on ``(zone, kind, value)``."""
        ...

    async def remove_ban(self, zone: str, kind: str, value: str) -> bool: ...

    async def find_ban(self, zone: str, kind: str, value: str, now: int) -> Ban | None:
        """The active ban on that value, if any."""
        ...

    async def list_bans(self, zone: str, *, now: int | None = None) -> list[Ban]:
        """All bans of a zone, or only those active at ``now``."""
        ...


class AuditLog(Protocol):
    async def append(self, entry: AuditEntry) -> AuditEntry:
        """Append with the next ``seq`` and the chained hash; return the stored entry."""
        ...

    async def entries(self, *, after_seq: int = 0, limit: int = 100) -> list[AuditEntry]: ...

    async def verify_chain(self) -> int | None:
        """The first ``seq`` whose hash does not verify, or None when the chain is intact."""
        ...


class DocumentStore(Protocol):
    """Generic versioned records: lotteries, bonuses, missions, referrals."""

    async def get(self, id: str) -> Document | None: ...

    async def put(self, doc: Document, *, expected_version: int | None = None) -> Document:
        """Insert or replace; the stored version becomes ``old + 1``.

        With ``expected_version`` (0 = must not exist) the write is conditional.

        Raises:
            Conflict: the stored version differs from ``expected_version``.
        """
        ...

    async def put_many(self, docs: Sequence[Document]) -> list[Document | None]:
        """Conditional puts in one transaction: each ``doc.version`` is the version it
        expects stored (0 = must not exist). One result per doc, in order: the stored
        document (version ``old + 1``), or None where the stored version differed (that
        doc is not written; the others are).

        Raises:
            ValueError: an id appears twice (nothing is written).
        """
        ...

    async def by_owner(self, owner: str, *, status: str | None = None) -> list[Document]: ...

    async def delete(self, id: str) -> bool: ...


class Backend(Protocol):
    """Everything one database offers, with its lifecycle."""

    accounts: AccountStore
    wallet: WalletStore
    rounds: RoundStore
    variables: VariableStore
    leaderboards: LeaderboardStore
    configs: ConfigStore
    blacklist: BlacklistStore
    audit: AuditLog
    lotteries: DocumentStore
    bonuses: DocumentStore
    missions: DocumentStore
    referrals: DocumentStore

    @property
    def name(self) -> str:
        """``memory``, ``sqlite`` or ``mysql``."""
        ...

    async def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied."""
        ...

    async def ping(self) -> None:
        """Raises StoreUnavailable when the database does not answer."""
        ...

    async def apply_writes(self, ops: Sequence[WriteOp]) -> None:
        """Apply coalesced non-money writes in one transaction (used by write-behind)."""
        ...

    async def load_user(self, user_id: str) -> UserSnapshot: ...

    async def clear(self) -> None:
        """Delete every row. Used for testing purposes only."""
        ...

    async def close(self) -> None: ...
