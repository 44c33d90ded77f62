"""In-memory backend: plain dicts, the default for unit tests (URL ``memory://``).

It follows exactly the same contract as the SQL backends (the contract suite runs
over it), including idempotency and overdraft rules, but nothing survives the process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from persistence.base import (
    AccountStore,
    AuditLog,
    BlacklistStore,
    ConfigStore,
    DocumentStore,
    LeaderboardStore,
    RoundStore,
    TxnOutcome,
    VariableStore,
    WalletStore,
)
from persistence.errors import Conflict, NotFound, StoreClosed
from persistence.ledger import AccountState, RoundState, decode_result, encode_result, plan_batch
from persistence.records import (
    Account,
    AuditEntry,
    Ban,
    ConfigDoc,
    ConfigStatus,
    DocPut,
    Document,
    LeaderboardOp,
    LeaderboardRecord,
    LedgerPosting,
    ProfilePut,
    RoundRecord,
    RoundStatus,
    Txn,
    TxnResult,
    UserSnapshot,
    VarDelete,
    Variable,
    VarPut,
    VarScope,
    WalletBalance,
    WriteOp,
    distinct_ids,
    now_ms,
)
from persistence.rules import GENESIS_HASH, audit_hash, combine_score, rank_key

__all__ = ["MemoryBackend"]

replace = msgspec.structs.replace


@dataclass
class _State:
    accounts: dict[str, Account] = field(default_factory=dict)
    balances: dict[tuple[str, str], WalletBalance] = field(default_factory=dict)
    txns: dict[str, bytes] = field(default_factory=dict)
    ledger: list[LedgerPosting] = field(default_factory=list)
    rounds: dict[str, RoundRecord] = field(default_factory=dict)
    #: user -> ids of its open rounds (a session's load reads them without a scan)
    open_rounds: dict[str, set[str]] = field(default_factory=dict)
    variables: dict[tuple[str, str, str], Variable] = field(default_factory=dict)
    scores: dict[tuple[str, str, str], LeaderboardRecord] = field(default_factory=dict)
    configs: dict[tuple[str, str, int], ConfigDoc] = field(default_factory=dict)
    bans: dict[tuple[str, str, str], Ban] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    docs: dict[str, dict[str, Document]] = field(default_factory=dict)
    # Indexes for what a login reads, so that it costs the same with 200,000 users as with 10:
    #: account -> its currencies (keys of `balances`)
    currencies: dict[str, set[str]] = field(default_factory=dict)
    #: (scope, owner) -> names of its variables (keys of `variables`)
    var_names: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    #: table -> owner -> ids of its documents
    doc_owners: dict[str, dict[str, set[str]]] = field(default_factory=dict)


class _Part:
    def __init__(self, state: _State, clock: Callable[[], int]) -> None:
        self._s = state
        self._clock = clock


class MemoryAccounts(_Part):
    def _name_taken(self, zone: str, name: str, user_id: str) -> bool:
        return any(
            a.zone == zone and a.name == name and a.user_id != user_id for a in self._s.accounts.values()
        )

    async def create_account(self, account: Account) -> Account:
        if account.user_id in self._s.accounts or self._name_taken(
            account.zone, account.name, account.user_id
        ):
            raise Conflict(f"account {account.user_id!r} or name {account.name!r} exists")
        now = self._clock()
        stored = replace(account, created_at=account.created_at or now, updated_at=now)
        self._s.accounts[account.user_id] = stored
        return stored

    async def get_account(self, user_id: str) -> Account | None:
        return self._s.accounts.get(user_id)

    async def find_account(self, zone: str, name: str) -> Account | None:
        return next((a for a in self._s.accounts.values() if a.zone == zone and a.name == name), None)

    async def update_account(self, account: Account) -> Account:
        old = self._s.accounts.get(account.user_id)
        if old is None:
            raise NotFound(f"account {account.user_id!r}")
        if self._name_taken(old.zone, account.name, account.user_id):
            raise Conflict(f"name {account.name!r} is taken")
        stored = replace(account, zone=old.zone, created_at=old.created_at, updated_at=self._clock())
        self._s.accounts[account.user_id] = stored
        return stored


class MemoryWallet(_Part):
    async def open_wallet(
        self, account: str, currency: str, *, allow_negative: bool = False
    ) -> WalletBalance:
        key = (account, currency)
        cur = self._s.balances.get(key)
        if cur is None:
            cur = WalletBalance(
                account=account,
                currency=currency,
                balance=0,
                allow_negative=allow_negative,
                updated_at=self._clock(),
            )
            self._s.balances[key] = cur
            self._s.currencies.setdefault(account, set()).add(currency)
        return cur

    async def get_balance(self, account: str, currency: str) -> WalletBalance | None:
        return self._s.balances.get((account, currency))

    async def list_balances(self, account: str) -> list[WalletBalance]:
        balances = self._s.balances
        return [balances[(account, cur)] for cur in sorted(self._s.currencies.get(account, ()))]

    async def commit_batch(
        self, txns: Sequence[Txn], now: int, on_locked: Callable[[], None] | None = None
    ) -> list[TxnOutcome]:
        if on_locked is not None:
            on_locked()  # nothing awaits below: batches apply whole, in call order
        s = self._s
        touched = {(e.account, e.currency) for t in txns for e in t.entries}
        plan = plan_batch(
            txns,
            stored={t.key: s.txns[t.key] for t in txns if t.key in s.txns},
            balances={
                k: AccountState(b.balance, b.allow_negative)
                for k in touched
                if (b := s.balances.get(k)) is not None
            },
            rounds={
                t.round.round_id: RoundState(r.user_id, r.status, r.updated_at)
                for t in txns
                if t.round is not None and (r := s.rounds.get(t.round.round_id)) is not None
            },
            now=now,
        )
        for txn, result in plan.accepted:
            s.txns[txn.key] = encode_result(result)
            rid = result.round_id
            for seq, e in enumerate(txn.entries):
                s.ledger.append(
                    LedgerPosting(
                        txn_key=txn.key,
                        seq=seq,
                        account=e.account,
                        currency=e.currency,
                        amount=e.amount,
                        kind=e.kind,
                        round_id=rid,
                        created_at=now,
                    )
                )
        for k in plan.deltas.keys() | plan.new_accounts:
            st = plan.balances[k]
            s.balances[k] = WalletBalance(
                account=k[0],
                currency=k[1],
                balance=st.balance,
                allow_negative=st.allow_negative,
                updated_at=now,
            )
            s.currencies.setdefault(k[0], set()).add(k[1])
        for rid, rec in plan.round_inserts.items():
            s.rounds[rid] = rec
            _index_round(s, rec)
        for rid, rec in plan.round_updates.items():
            s.rounds[rid] = rec = replace(rec, created_at=s.rounds[rid].created_at)
            _index_round(s, rec)
        return plan.outcomes

    async def get_txn(self, key: str) -> TxnResult | None:
        blob = self._s.txns.get(key)
        return None if blob is None else decode_result(blob)

    async def txn_postings(self, key: str) -> list[LedgerPosting]:
        return [p for p in self._s.ledger if p.txn_key == key]

    async def postings(self, account: str, currency: str, *, limit: int = 50) -> list[LedgerPosting]:
        rows = [p for p in self._s.ledger if p.account == account and p.currency == currency]
        return rows[::-1][:limit]

    async def ledger_totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for p in self._s.ledger:
            totals[p.currency] = totals.get(p.currency, 0) + p.amount
        return totals

    async def balance_mismatches(self) -> list[tuple[str, str, int, int]]:
        sums: dict[tuple[str, str], int] = {}
        for p in self._s.ledger:
            sums[(p.account, p.currency)] = sums.get((p.account, p.currency), 0) + p.amount
        out = []
        for k in sorted(sums.keys() | self._s.balances.keys()):
            b = self._s.balances.get(k)
            bal = 0 if b is None else b.balance
            if bal != sums.get(k, 0):
                out.append((k[0], k[1], bal, sums.get(k, 0)))
        return out


def _index_round(s: _State, rec: RoundRecord) -> None:
    if rec.status is RoundStatus.OPEN:
        s.open_rounds.setdefault(rec.user_id, set()).add(rec.round_id)
    else:
        ids = s.open_rounds.get(rec.user_id)
        if ids is not None:
            ids.discard(rec.round_id)
            if not ids:
                del s.open_rounds[rec.user_id]


class MemoryRounds(_Part):
    async def get_round(self, round_id: str) -> RoundRecord | None:
        return self._s.rounds.get(round_id)

    async def open_rounds(self, user_id: str) -> list[RoundRecord]:
        rounds = self._s.rounds
        rows = [rounds[rid] for rid in self._s.open_rounds.get(user_id, ())]
        return sorted(rows, key=lambda r: (r.created_at, r.round_id))

    async def history(self, user_id: str, *, limit: int = 10, before: int | None = None) -> list[RoundRecord]:
        rows = [
            r
            for r in self._s.rounds.values()
            if r.user_id == user_id and (before is None or r.created_at < before)
        ]
        rows.sort(key=lambda r: (r.created_at, r.round_id), reverse=True)
        return rows[:limit]

    async def stale_open_rounds(
        self, game_id: str, before: int, *, after: tuple[int, str] | None = None, limit: int = 100
    ) -> list[RoundRecord]:
        rounds = self._s.rounds
        rows = [
            r
            for ids in self._s.open_rounds.values()
            for rid in ids
            if (r := rounds[rid]).game_id == game_id
            and r.updated_at < before
            and (after is None or (r.updated_at, r.round_id) > after)
        ]
        rows.sort(key=lambda r: (r.updated_at, r.round_id))
        return rows[:limit]


class MemoryVariables(_Part):
    async def put_variables(self, items: Sequence[Variable]) -> None:
        now = self._clock()
        for v in items:
            self._s.variables[(v.scope.value, v.owner, v.name)] = replace(v, updated_at=v.updated_at or now)
            self._s.var_names.setdefault((v.scope.value, v.owner), set()).add(v.name)

    async def delete_variables(self, keys: Sequence[tuple[VarScope, str, str]]) -> None:
        for scope, owner, name in keys:
            if self._s.variables.pop((scope.value, owner, name), None) is not None:
                names = self._s.var_names[(scope.value, owner)]
                names.discard(name)
                if not names:
                    del self._s.var_names[(scope.value, owner)]

    async def load_variables(self, scope: VarScope, owner: str) -> list[Variable]:
        variables = self._s.variables
        names = self._s.var_names.get((scope.value, owner), ())
        return [variables[(scope.value, owner, name)] for name in sorted(names)]


class MemoryLeaderboards(_Part):
    async def submit_scores(
        self, records: Sequence[LeaderboardRecord], op: LeaderboardOp
    ) -> list[LeaderboardRecord]:
        now = self._clock()
        out = []
        for rec in records:
            key = (rec.board_id, rec.period, rec.owner_id)
            stored = combine_score(self._s.scores.get(key), replace(rec, updated_at=now), op)
            self._s.scores[key] = stored
            out.append(stored)
        return out

    async def get_score(self, board_id: str, period: str, owner_id: str) -> LeaderboardRecord | None:
        return self._s.scores.get((board_id, period, owner_id))

    def _board(self, board_id: str, period: str) -> list[LeaderboardRecord]:
        rows = [r for (b, p, _), r in self._s.scores.items() if b == board_id and p == period]
        return sorted(rows, key=rank_key)

    async def top(
        self, board_id: str, period: str, *, limit: int = 10, offset: int = 0
    ) -> list[LeaderboardRecord]:
        return self._board(board_id, period)[offset : offset + limit]

    async def rank(self, board_id: str, period: str, owner_id: str) -> int | None:
        for i, r in enumerate(self._board(board_id, period), 1):
            if r.owner_id == owner_id:
                return i
        return None

    async def delete_period(self, board_id: str, period: str) -> int:
        keys = [k for k in self._s.scores if k[0] == board_id and k[1] == period]
        for k in keys:
            del self._s.scores[k]
        return len(keys)


class MemoryConfigs(_Part):
    async def put_config(self, doc: ConfigDoc) -> ConfigDoc:
        latest = max((v for (k, i, v) in self._s.configs if k == doc.kind and i == doc.id), default=0)
        if doc.version != latest + 1:
            raise Conflict(f"config {doc.kind}/{doc.id}: next version is {latest + 1}, got {doc.version}")
        stored = replace(doc, created_at=doc.created_at or self._clock())
        self._s.configs[(doc.kind, doc.id, doc.version)] = stored
        return stored

    async def get_config(self, kind: str, id: str, version: int | None = None) -> ConfigDoc | None:
        if version is not None:
            return self._s.configs.get((kind, id, version))
        pub = [d for d in await self.list_versions(kind, id) if d.status is ConfigStatus.PUBLISHED]
        return pub[-1] if pub else None

    async def list_versions(self, kind: str, id: str) -> list[ConfigDoc]:
        return sorted(
            (d for d in self._s.configs.values() if d.kind == kind and d.id == id), key=lambda d: d.version
        )

    async def published(self, kind: str) -> list[ConfigDoc]:
        ids = sorted({i for (k, i, _) in self._s.configs if k == kind})
        return [d for i in ids if (d := await self.get_config(kind, i)) is not None]

    async def set_config_status(self, kind: str, id: str, version: int, status: ConfigStatus) -> ConfigDoc:
        doc = self._s.configs.get((kind, id, version))
        if doc is None:
            raise NotFound(f"config {kind}/{id} v{version}")
        doc = replace(doc, status=status)
        self._s.configs[(kind, id, version)] = doc
        return doc


class MemoryBlacklist(_Part):
    async def add_ban(self, ban: Ban) -> Ban:
        stored = replace(ban, created_at=ban.created_at or self._clock())
        self._s.bans[(ban.zone, ban.kind, ban.value)] = stored
        return stored

    async def remove_ban(self, zone: str, kind: str, value: str) -> bool:
        return self._s.bans.pop((zone, kind, value), None) is not None

    async def find_ban(self, zone: str, kind: str, value: str, now: int) -> Ban | None:
        ban = self._s.bans.get((zone, kind, value))
        return ban if ban is not None and ban.active(now) else None

    async def list_bans(self, zone: str, *, now: int | None = None) -> list[Ban]:
        rows = [b for b in self._s.bans.values() if b.zone == zone and (now is None or b.active(now))]
        return sorted(rows, key=lambda b: (b.kind, b.value))


class MemoryAudit(_Part):
    async def append(self, entry: AuditEntry) -> AuditEntry:
        log = self._s.audit
        prev = log[-1].hash if log else GENESIS_HASH
        stored = replace(entry, seq=len(log) + 1, at=entry.at or self._clock(), prev_hash=prev, hash="")
        stored = replace(stored, hash=audit_hash(stored))
        log.append(stored)
        return stored

    async def entries(self, *, after_seq: int = 0, limit: int = 100) -> list[AuditEntry]:
        return [e for e in self._s.audit if e.seq > after_seq][:limit]

    async def verify_chain(self) -> int | None:
        prev = GENESIS_HASH
        for e in self._s.audit:
            if e.prev_hash != prev or audit_hash(e) != e.hash:
                return e.seq
            prev = e.hash
        return None


class MemoryDocuments(_Part):
    def __init__(self, state: _State, clock: Callable[[], int], table: str) -> None:
        super().__init__(state, clock)
        self._t = state.docs.setdefault(table, {})
        self._owners = state.doc_owners.setdefault(table, {})
        self.table = table

    async def get(self, id: str) -> Document | None:
        return self._t.get(id)

    async def put(self, doc: Document, *, expected_version: int | None = None) -> Document:
        old = self._t.get(doc.id)
        have = 0 if old is None else old.version
        if expected_version is not None and expected_version != have:
            raise Conflict(f"{self.table}/{doc.id}: version is {have}, expected {expected_version}")
        now = self._clock()
        created = old.created_at if old is not None else (doc.created_at or now)
        stored = replace(doc, version=have + 1, created_at=created, updated_at=now)
        self._t[doc.id] = stored
        if old is not None and old.owner != doc.owner:
            self._unindex(old)
        self._owners.setdefault(doc.owner, set()).add(doc.id)
        return stored

    async def put_many(self, docs: Sequence[Document]) -> list[Document | None]:
        distinct_ids(docs)
        out: list[Document | None] = []
        for doc in docs:
            try:
                out.append(await self.put(doc, expected_version=doc.version))
            except Conflict:
                out.append(None)
        return out

    def _unindex(self, doc: Document) -> None:
        ids = self._owners.get(doc.owner)
        if ids is not None:
            ids.discard(doc.id)
            if not ids:
                del self._owners[doc.owner]

    async def by_owner(self, owner: str, *, status: str | None = None) -> list[Document]:
        docs = self._t
        rows = [docs[i] for i in sorted(self._owners.get(owner, ()))]
        return rows if status is None else [d for d in rows if d.status == status]

    async def delete(self, id: str) -> bool:
        old = self._t.pop(id, None)
        if old is None:
            return False
        self._unindex(old)
        return True


class MemoryBackend:
    """All stores over dicts. ``clock`` returns epoch milliseconds."""

    name = "memory"

    def __init__(self, *, clock: Callable[[], int] = now_ms) -> None:
        self._state = _State()
        self._clock = clock
        self._closed = False
        self._build()

    def _build(self) -> None:
        st, ck = self._state, self._clock
        self.accounts: AccountStore = MemoryAccounts(st, ck)
        self.wallet: WalletStore = MemoryWallet(st, ck)
        self.rounds: RoundStore = MemoryRounds(st, ck)
        self._variables = MemoryVariables(st, ck)
        self.variables: VariableStore = self._variables
        self.leaderboards: LeaderboardStore = MemoryLeaderboards(st, ck)
        self.configs: ConfigStore = MemoryConfigs(st, ck)
        self.blacklist: BlacklistStore = MemoryBlacklist(st, ck)
        self.audit: AuditLog = MemoryAudit(st, ck)
        docs = {t: MemoryDocuments(st, ck, t) for t in ("lotteries", "bonuses", "missions", "referrals")}
        self._docs = docs
        self.lotteries: DocumentStore = docs["lotteries"]
        self.bonuses: DocumentStore = docs["bonuses"]
        self.missions: DocumentStore = docs["missions"]
        self.referrals: DocumentStore = docs["referrals"]

    async def migrate(self) -> list[int]:
        return []

    async def ping(self) -> None:
        if self._closed:
            raise StoreClosed("memory backend is closed")

    async def apply_writes(self, ops: Sequence[WriteOp]) -> None:
        await self.ping()
        for op in ops:
            match op:
                case VarPut(var=v):
                    await self.variables.put_variables([v])
                case VarDelete(scope=scope, owner=owner, name=name):
                    await self.variables.delete_variables([(scope, owner, name)])
                case ProfilePut(user_id=uid, profile=profile):
                    acc = self._state.accounts.get(uid)
                    if acc is not None:
                        self._state.accounts[uid] = replace(acc, profile=profile, updated_at=self._clock())
                case DocPut(table=table, doc=doc):
                    await self._docs[table].put(doc)

    async def load_user(self, user_id: str) -> UserSnapshot:
        return UserSnapshot(
            account=await self.accounts.get_account(user_id),
            balances=tuple(await self.wallet.list_balances(user_id)),
            open_rounds=tuple(await self.rounds.open_rounds(user_id)),
            variables=tuple(await self.variables.load_variables(VarScope.USER, user_id)),
        )

    async def clear(self) -> None:
        """Delete everything. Used for testing purposes only."""
        st = self._state
        for container in (
            st.accounts,
            st.balances,
            st.txns,
            st.ledger,
            st.rounds,
            st.open_rounds,
            st.variables,
            st.scores,
            st.currencies,
            st.var_names,
        ):
            container.clear()
        for other in (st.configs, st.bans, st.audit):
            other.clear()
        for table in st.docs.values():
            table.clear()
        for owners in st.doc_owners.values():
            owners.clear()

    async def close(self) -> None:
        self._closed = True
