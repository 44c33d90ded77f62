"""The SQL backend: every store over one engine (SQLite or MySQL)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from persistence.base import (
    AccountStore,
    AuditLog,
    BlacklistStore,
    ConfigStore,
    DocumentStore,
    LeaderboardStore,
    RoundStore,
    VariableStore,
    WalletStore,
)
from persistence.records import (
    DocPut,
    ProfilePut,
    UserSnapshot,
    VarDelete,
    VarPut,
    VarScope,
    WriteOp,
    now_ms,
)
from persistence.sql.engine import SqlEngine
from persistence.sql.stores import (
    DOC_TABLES,
    SqlAccounts,
    SqlAudit,
    SqlBlacklist,
    SqlConfigs,
    SqlDocuments,
    SqlLeaderboards,
    SqlVariables,
)
from persistence.sql.wallet import SqlRounds, SqlWallet

__all__ = ["SqlBackend"]

_TABLES = (
    "accounts",
    "balances",
    "txns",
    "ledger",
    "rounds",
    "variables",
    "leaderboard_records",
    "configs",
    "bans",
    "audit_log",
    *DOC_TABLES,
)


class SqlBackend:
    def __init__(self, engine: SqlEngine, *, clock: Callable[[], int] = now_ms) -> None:
        self.engine = engine
        self._clock = clock
        self.accounts: AccountStore = SqlAccounts(engine, clock)
        self._wallet = SqlWallet(engine, clock)
        self.wallet: WalletStore = self._wallet
        self.rounds: RoundStore = SqlRounds(engine)
        self._variables = SqlVariables(engine, clock)
        self.variables: VariableStore = self._variables
        self.leaderboards: LeaderboardStore = SqlLeaderboards(engine, clock)
        self.configs: ConfigStore = SqlConfigs(engine, clock)
        self.blacklist: BlacklistStore = SqlBlacklist(engine, clock)
        self.audit: AuditLog = SqlAudit(engine, clock)
        docs = {t: SqlDocuments(engine, clock, t) for t in DOC_TABLES}
        self._docs = docs
        self.lotteries: DocumentStore = docs["lotteries"]
        self.bonuses: DocumentStore = docs["bonuses"]
        self.missions: DocumentStore = docs["missions"]
        self.referrals: DocumentStore = docs["referrals"]

    @property
    def name(self) -> str:
        return self.engine.dialect.name

    async def migrate(self) -> list[int]:
        from persistence.migrate import migrate_engine  # not at import: ``python -m persistence.migrate``

        return await migrate_engine(self.engine)

    async def ping(self) -> None:
        await self.engine.ping()

    async def apply_writes(self, ops: Sequence[WriteOp]) -> None:
        if not ops:
            return
        var_puts = [op.var for op in ops if isinstance(op, VarPut)]
        var_dels = [(op.scope, op.owner, op.name) for op in ops if isinstance(op, VarDelete)]
        profiles = [op for op in ops if isinstance(op, ProfilePut)]
        docs: dict[str, list[DocPut]] = {}
        for op in ops:
            if isinstance(op, DocPut):
                docs.setdefault(op.table, []).append(op)
        now = self._clock()
        async with self.engine.transaction() as c:
            if var_puts:
                await self._variables.put_in(c, var_puts)
            if var_dels:
                await self._variables.delete_in(c, var_dels)
            for p in profiles:
                await c.execute(
                    "UPDATE accounts SET profile = ?, updated_at = ? WHERE user_id = ?",
                    (p.profile, now, p.user_id),
                )
            for table, puts in sorted(docs.items()):
                await self._docs[table].put_in(c, [p.doc for p in puts])

    async def load_user(self, user_id: str) -> UserSnapshot:
        return UserSnapshot(
            account=await self.accounts.get_account(user_id),
            balances=tuple(await self.wallet.list_balances(user_id)),
            open_rounds=tuple(await self.rounds.open_rounds(user_id)),
            variables=tuple(await self.variables.load_variables(VarScope.USER, user_id)),
        )

    async def clear(self) -> None:
        """Delete every row of every table. Used for testing purposes only."""
        async with self.engine.transaction() as c:
            for table in _TABLES:
                await c.execute(f"DELETE FROM {table}")
        self._wallet.forget_accounts()

    async def close(self) -> None:
        await self.engine.close()
