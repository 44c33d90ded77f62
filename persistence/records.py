"""Records stored and returned by the persistence layer (msgspec Structs).

Conventions:
- Money is an ``int`` in minor units (or whole coins). There are no floats in money types.
- Times are ``int`` milliseconds since the Unix epoch, taken from an injected clock.
- Opaque payloads (profiles, round state, variable values, config bodies) are
  ``bytes``; the caller chooses the encoding (JSON or MessagePack).
- Records are frozen: change one with ``msgspec.structs.replace``.

Schema evolution follows msgspec's rules: new fields get defaults.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Sequence

import msgspec

from persistence.errors import InvalidTxn

__all__ = [
    "MAX_ENTRIES",
    "MAX_ID_LEN",
    "MAX_KEY_LEN",
    "Account",
    "AuditEntry",
    "BalanceAfter",
    "Ban",
    "ConfigDoc",
    "ConfigStatus",
    "DocPut",
    "Document",
    "Entry",
    "LeaderboardOp",
    "LeaderboardRecord",
    "LedgerPosting",
    "PostingKind",
    "ProfilePut",
    "RoundRecord",
    "RoundStatus",
    "Txn",
    "TxnResult",
    "UserSnapshot",
    "VarDelete",
    "VarPut",
    "VarScope",
    "Variable",
    "WalletBalance",
    "WriteOp",
    "now_ms",
    "spin_txn",
    "transfer",
    "validate_txn",
]

MAX_KEY_LEN = 128
"""Longest idempotency key (characters)."""
MAX_ID_LEN = 64
"""Longest account, user, round, game or currency id (characters)."""
MAX_ENTRIES = 64
"""Most ledger entries in one transaction."""
INT64_MAX = 2**63 - 1


def now_ms() -> int:
    """The default clock: wall time in integer milliseconds."""
    return time.time_ns() // 1_000_000


class PostingKind(enum.StrEnum):
    """Why money moved; stored on every ledger posting (reconciliation groups by it)."""

    BET = "bet"
    WIN = "win"
    REFUND = "refund"
    BONUS = "bonus"
    PRIZE = "prize"
    DEPOSIT = "deposit"
    WITHDRAW = "withdraw"
    ADJUST = "adjust"
    TRANSFER = "transfer"


class RoundStatus(enum.StrEnum):
    OPEN = "open"
    SETTLED = "settled"
    VOIDED = "voided"


class VarScope(enum.StrEnum):
    ROOM = "room"
    USER = "user"


class ConfigStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


class LeaderboardOp(enum.StrEnum):
    """How a submitted score combines with the stored one."""

    BEST = "best"
    SET = "set"
    INCR = "incr"
    DECR = "decr"


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """A user account (login identity and profile) in a zone."""

    user_id: str
    zone: str
    name: str
    partner_id: str = ""
    status: str = "active"
    profile: bytes = b""
    created_at: int = 0
    updated_at: int = 0


class Entry(msgspec.Struct, frozen=True, array_like=True):
    """One leg of a money transaction: ``amount`` is added to ``account`` (negative = debit)."""

    account: str
    currency: str
    amount: int
    kind: PostingKind


class LedgerPosting(msgspec.Struct, frozen=True, kw_only=True):
    """A stored ledger row: one entry of one committed transaction (append-only)."""

    txn_key: str
    seq: int
    account: str
    currency: str
    amount: int
    kind: PostingKind
    round_id: str = ""
    created_at: int = 0


class WalletBalance(msgspec.Struct, frozen=True, kw_only=True):
    """The balance of one account in one currency: a view of the sum of its ledger postings."""

    account: str
    currency: str
    balance: int
    allow_negative: bool = False
    updated_at: int = 0


class RoundRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One game round (HIST-2): immutable once settled or voided.

    ``state`` holds the outcome and RNG-derived results (stops, picks, feature
    steps), encoded by the game. An ``open`` round (free spins, pick feature) may be
    rewritten by later transactions of the same user until it is settled.
    """

    round_id: str
    user_id: str
    game_id: str
    game_version: str = ""
    math_version: str = ""
    currency: str = ""
    bet: int = 0
    win: int = 0
    status: RoundStatus = RoundStatus.SETTLED
    state: bytes = b""
    balance_before: int = 0
    balance_after: int = 0
    session_id: str = ""
    partner_id: str = ""
    created_at: int = 0
    updated_at: int = 0
    settled_at: int = 0


class Txn(msgspec.Struct, frozen=True, kw_only=True):
    """One atomic money operation: its entries, an optional round record, and the reply.

    ``key`` is the idempotency key (``round_id:bet``, a client request id...). It is
    unique in the database: committing the same key again posts nothing and returns
    the original :class:`TxnResult` with ``duplicate=True``.

    ``reply`` is stored with the transaction and returned on duplicates, so a retried
    request gets the identical answer (for example the encoded spin result).
    """

    key: str
    entries: tuple[Entry, ...]
    round: RoundRecord | None = None
    reply: bytes = b""
    #: the ``updated_at`` of the stored round this transaction was computed from: when set,
    #: a round written since is refused (``RoundConflict``), not overwritten by a stale state
    round_base: int = 0


class BalanceAfter(msgspec.Struct, frozen=True, array_like=True):
    """The balance of an account right after a transaction."""

    account: str
    currency: str
    balance: int


class TxnResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a committed transaction returns (and returns again on a duplicate key).

    ``balances`` holds the balance right after this transaction of every account it
    touched, except house and bank accounts (``allow_negative``), which are not reported.
    """

    key: str
    committed_at: int
    balances: tuple[BalanceAfter, ...] = ()
    reply: bytes = b""
    round_id: str = ""
    duplicate: bool = False

    def balance(self, account: str, currency: str) -> int | None:
        """The balance of ``account``/``currency`` after this transaction, if it was touched."""
        for b in self.balances:
            if b.account == account and b.currency == currency:
                return b.balance
        return None


class Variable(msgspec.Struct, frozen=True, kw_only=True):
    """A persistent room or user variable."""

    scope: VarScope
    owner: str
    name: str
    value: bytes
    updated_at: int = 0


class LeaderboardRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A score on a board for one period; ranking is score desc, subscore desc, owner asc."""

    board_id: str
    period: str
    owner_id: str
    score: int
    subscore: int = 0
    meta: bytes = b""
    updated_at: int = 0


class ConfigDoc(msgspec.Struct, frozen=True, kw_only=True):
    """One version of a configuration document (game, lottery, promotion, partner)."""

    kind: str
    id: str
    version: int
    body: bytes
    status: ConfigStatus = ConfigStatus.DRAFT
    author: str = ""
    created_at: int = 0


class Ban(msgspec.Struct, frozen=True, kw_only=True):
    """A blacklist entry: ``kind`` is ``user``, ``ip``, ``device``, ``email``, ``country``...

    ``until`` is the expiry in epoch ms; 0 means permanent.
    """

    zone: str
    kind: str
    value: str
    until: int = 0
    reason: str = ""
    created_by: str = ""
    created_at: int = 0

    def active(self, now: int) -> bool:
        return self.until == 0 or self.until > now


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """An append-only audit record; ``seq``, ``prev_hash`` and ``hash`` are set by the store."""

    actor: str
    action: str
    target: str = ""
    before: bytes = b""
    after: bytes = b""
    reason: str = ""
    request_id: str = ""
    at: int = 0
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""


class Document(msgspec.Struct, frozen=True, kw_only=True):
    """A generic versioned record (lottery, bonus grant, mission instance, referral)."""

    id: str
    owner: str = ""
    status: str = ""
    version: int = 0
    body: bytes = b""
    created_at: int = 0
    updated_at: int = 0


class UserSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the owner worker loads lazily for a user on first contact."""

    account: Account | None
    balances: tuple[WalletBalance, ...]
    open_rounds: tuple[RoundRecord, ...]
    variables: tuple[Variable, ...]


class VarPut(msgspec.Struct, frozen=True, tag=True):
    """Write-behind: upsert a persistent variable."""

    var: Variable

    @property
    def coalesce_key(self) -> tuple[str, ...]:
        return ("var", self.var.scope.value, self.var.owner, self.var.name)


class VarDelete(msgspec.Struct, frozen=True, tag=True):
    """Write-behind: delete a persistent variable."""

    scope: VarScope
    owner: str
    name: str

    @property
    def coalesce_key(self) -> tuple[str, ...]:
        return ("var", self.scope.value, self.owner, self.name)


class ProfilePut(msgspec.Struct, frozen=True, tag=True):
    """Write-behind: replace a user's profile blob."""

    user_id: str
    profile: bytes

    @property
    def coalesce_key(self) -> tuple[str, ...]:
        return ("profile", self.user_id)


def distinct_ids(docs: Sequence[Document]) -> None:
    """Raises ValueError when two of ``docs`` share an id (`DocumentStore.put_many`)."""
    if len({d.id for d in docs}) != len(docs):
        raise ValueError("put_many: each document id may appear once")


class DocPut(msgspec.Struct, frozen=True, tag=True):
    """Write-behind: upsert a generic document, unconditionally (the rewards services
    write theirs at once, with ``expected_version``: docs/persistence.md)."""

    table: str
    doc: Document

    @property
    def coalesce_key(self) -> tuple[str, ...]:
        return ("doc", self.table, self.doc.id)


WriteOp = VarPut | VarDelete | ProfilePut | DocPut
"""A non-money write; writes with the same ``coalesce_key`` replace each other."""


def transfer(src: str, dst: str, currency: str, amount: int, kind: PostingKind) -> tuple[Entry, Entry]:
    """Two balanced entries moving ``amount`` from ``src`` to ``dst``."""
    return (Entry(src, currency, -amount, kind), Entry(dst, currency, amount, kind))


def spin_txn(
    key: str,
    *,
    player: str,
    house: str,
    currency: str,
    bet: int,
    win: int,
    round: RoundRecord | None = None,
    reply: bytes = b"",
) -> Txn:
    """A spin: the bet moves player -> house and the win house -> player, in one transaction."""
    entries: list[Entry] = []
    if bet:
        entries.extend(transfer(player, house, currency, bet, PostingKind.BET))
    if win:
        entries.extend(transfer(house, player, currency, win, PostingKind.WIN))
    return Txn(key=key, entries=tuple(entries), round=round, reply=reply)


def _check_id(what: str, value: str, limit: int = MAX_ID_LEN) -> None:
    if not value or len(value) > limit:
        raise InvalidTxn(f"{what} must be 1-{limit} characters, got {value!r:.80}")


def validate_txn(txn: Txn) -> None:
    """Check that ``txn`` is well-formed and balanced (WAL-1).

    Raises:
        InvalidTxn: empty or long key, too many entries, a non-integer or out-of-range
            amount, or entries that do not sum to zero in every currency.
    """
    _check_id("txn key", txn.key, MAX_KEY_LEN)
    if len(txn.entries) > MAX_ENTRIES:
        raise InvalidTxn(f"txn {txn.key!r} has {len(txn.entries)} entries, at most {MAX_ENTRIES}")
    sums: dict[str, int] = {}
    for e in txn.entries:
        amount, account, currency = e.amount, e.account, e.currency
        if type(amount) is not int or not -INT64_MAX <= amount <= INT64_MAX:
            raise InvalidTxn(f"txn {txn.key!r}: amount must be an int64, got {amount!r}")
        if not 0 < len(account) <= MAX_ID_LEN:
            _check_id("account", account)
        if not 0 < len(currency) <= MAX_ID_LEN:
            _check_id("currency", currency)
        sums[currency] = sums.get(currency, 0) + amount
    if any(sums.values()):
        raise InvalidTxn(f"txn {txn.key!r} is unbalanced: { ({c: s for c, s in sums.items() if s}) }")
    if txn.round is not None:
        _check_id("round id", txn.round.round_id)
        _check_id("user id", txn.round.user_id)


def touched_accounts(txns: Iterable[Txn]) -> set[tuple[str, str]]:
    """Every (account, currency) pair that ``txns`` post to."""
    return {(e.account, e.currency) for t in txns for e in t.entries}
