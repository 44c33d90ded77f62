"""SQL implementations of the non-money stores (shared by SQLite and MySQL)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from persistence.errors import Conflict, NotFound
from persistence.records import (
    Account,
    AuditEntry,
    Ban,
    ConfigDoc,
    ConfigStatus,
    Document,
    LeaderboardOp,
    LeaderboardRecord,
    Variable,
    VarScope,
    distinct_ids,
)
from persistence.rules import GENESIS_HASH, audit_hash, combine_score
from persistence.sql.engine import Param, Row, SqlConn, SqlEngine, placeholders
from persistence.sql.wallet import chunks

__all__ = [
    "DOC_TABLES",
    "SqlAccounts",
    "SqlAudit",
    "SqlBlacklist",
    "SqlConfigs",
    "SqlDocuments",
    "SqlLeaderboards",
    "SqlVariables",
]

replace = msgspec.structs.replace
DOC_TABLES = ("lotteries", "bonuses", "missions", "referrals")


class _Sql:
    def __init__(self, engine: SqlEngine, clock: Callable[[], int]) -> None:
        self._e = engine
        self._d = engine.dialect
        self._clock = clock


_ACCOUNT_COLS = "user_id, zone, name, partner_id, status, profile, created_at, updated_at"


def _account(r: Row) -> Account:
    return Account(
        user_id=r[0],
        zone=r[1],
        name=r[2],
        partner_id=r[3],
        status=r[4],
        profile=bytes(r[5]),
        created_at=r[6],
        updated_at=r[7],
    )


class SqlAccounts(_Sql):
    async def create_account(self, account: Account) -> Account:
        now = self._clock()
        a = replace(account, created_at=account.created_at or now, updated_at=now)
        async with self._e.transaction() as c:
            await c.execute(
                f"INSERT INTO accounts ({_ACCOUNT_COLS}) VALUES {placeholders(8)}",
                (a.user_id, a.zone, a.name, a.partner_id, a.status, a.profile, a.created_at, a.updated_at),
            )
        return a

    async def _one(self, where: str, params: Sequence[Param]) -> Account | None:
        async with self._e.read() as c:
            rows = await c.fetchall(f"SELECT {_ACCOUNT_COLS} FROM accounts WHERE {where}", params)
        return _account(rows[0]) if rows else None

    async def get_account(self, user_id: str) -> Account | None:
        return await self._one("user_id = ?", (user_id,))

    async def find_account(self, zone: str, name: str) -> Account | None:
        return await self._one("zone = ? AND name = ?", (zone, name))

    async def update_account(self, account: Account) -> Account:
        async with self._e.transaction() as c:
            rows = await c.fetchall(
                f"SELECT zone, created_at FROM accounts WHERE user_id = ?{self._d.for_update}",
                (account.user_id,),
            )
            if not rows:
                raise NotFound(f"account {account.user_id!r}")
            a = replace(account, zone=rows[0][0], created_at=rows[0][1], updated_at=self._clock())
            await c.execute(
                "UPDATE accounts SET name = ?, partner_id = ?, status = ?, profile = ?, updated_at = ? WHERE user_id = ?",
                (a.name, a.partner_id, a.status, a.profile, a.updated_at, a.user_id),
            )
        return a


class SqlVariables(_Sql):
    async def put_variables(self, items: Sequence[Variable]) -> None:
        if items:
            async with self._e.transaction() as c:
                await self.put_in(c, items)

    async def put_in(self, c: SqlConn, items: Sequence[Variable]) -> None:
        now = self._clock()
        latest = {(v.scope.value, v.owner, v.name): v for v in items}
        rows = [(s, o, n, v.value, v.updated_at or now) for (s, o, n), v in sorted(latest.items())]
        await c.insert_many(
            "INSERT INTO variables (scope, owner, name, value, updated_at) VALUES",
            rows,
            self._d.upsert(["scope", "owner", "name"], ["value", "updated_at"]),
        )

    async def delete_variables(self, keys: Sequence[tuple[VarScope, str, str]]) -> None:
        if keys:
            async with self._e.transaction() as c:
                await self.delete_in(c, keys)

    async def delete_in(self, c: SqlConn, keys: Sequence[tuple[VarScope, str, str]]) -> None:
        for scope, owner, name in keys:
            await c.execute(
                "DELETE FROM variables WHERE scope = ? AND owner = ? AND name = ?", (scope.value, owner, name)
            )

    async def load_variables(self, scope: VarScope, owner: str) -> list[Variable]:
        async with self._e.read() as c:
            rows = await c.fetchall(
                "SELECT name, value, updated_at FROM variables WHERE scope = ? AND owner = ? ORDER BY name",
                (scope.value, owner),
            )
        return [
            Variable(scope=scope, owner=owner, name=r[0], value=bytes(r[1]), updated_at=r[2]) for r in rows
        ]


_LB_COLS = "board_id, period, owner_id, score, subscore, meta, updated_at"


def _lb(r: Row) -> LeaderboardRecord:
    return LeaderboardRecord(
        board_id=r[0],
        period=r[1],
        owner_id=r[2],
        score=r[3],
        subscore=r[4],
        meta=bytes(r[5]),
        updated_at=r[6],
    )


class SqlLeaderboards(_Sql):
    async def submit_scores(
        self, records: Sequence[LeaderboardRecord], op: LeaderboardOp
    ) -> list[LeaderboardRecord]:
        if not records:
            return []
        now = self._clock()
        out: list[LeaderboardRecord] = []
        async with self._e.transaction() as c:
            current: dict[tuple[str, str, str], LeaderboardRecord] = {}
            boards = sorted({(r.board_id, r.period) for r in records})
            for board, period in boards:
                owners = sorted({r.owner_id for r in records if (r.board_id, r.period) == (board, period)})
                for part in chunks(owners):
                    rows = await c.fetchall(
                        f"SELECT {_LB_COLS} FROM leaderboard_records WHERE board_id = ? AND period = ? "
                        f"AND owner_id IN {placeholders(len(part))} ORDER BY owner_id{self._d.for_update}",
                        (board, period, *part),
                    )
                    current.update(((r[0], r[1], r[2]), _lb(r)) for r in rows)
            for rec in records:
                key = (rec.board_id, rec.period, rec.owner_id)
                stored = combine_score(current.get(key), replace(rec, updated_at=now), op)
                current[key] = stored
                out.append(stored)
            final = {(r.board_id, r.period, r.owner_id): r for r in out}
            await c.insert_many(
                f"INSERT INTO leaderboard_records ({_LB_COLS}) VALUES",
                [(*k, r.score, r.subscore, r.meta, r.updated_at) for k, r in sorted(final.items())],
                self._d.upsert(
                    ["board_id", "period", "owner_id"], ["score", "subscore", "meta", "updated_at"]
                ),
            )
        return out

    async def get_score(self, board_id: str, period: str, owner_id: str) -> LeaderboardRecord | None:
        async with self._e.read() as c:
            rows = await c.fetchall(
                f"SELECT {_LB_COLS} FROM leaderboard_records WHERE board_id = ? AND period = ? AND owner_id = ?",
                (board_id, period, owner_id),
            )
        return _lb(rows[0]) if rows else None

    async def top(
        self, board_id: str, period: str, *, limit: int = 10, offset: int = 0
    ) -> list[LeaderboardRecord]:
        async with self._e.read() as c:
            rows = await c.fetchall(
                f"SELECT {_LB_COLS} FROM leaderboard_records WHERE board_id = ? AND period = ? "
                "ORDER BY score DESC, subscore DESC, owner_id ASC LIMIT ? OFFSET ?",
                (board_id, period, limit, offset),
            )
        return [_lb(r) for r in rows]

    async def rank(self, board_id: str, period: str, owner_id: str) -> int | None:
        me = await self.get_score(board_id, period, owner_id)
        if me is None:
            return None
        async with self._e.read() as c:
            rows = await c.fetchall(
                "SELECT COUNT(*) FROM leaderboard_records WHERE board_id = ? AND period = ? AND "
                "(score > ? OR (score = ? AND subscore > ?) OR (score = ? AND subscore = ? AND owner_id < ?))",
                (board_id, period, me.score, me.score, me.subscore, me.score, me.subscore, owner_id),
            )
        return int(rows[0][0]) + 1

    async def delete_period(self, board_id: str, period: str) -> int:
        async with self._e.transaction() as c:
            return await c.execute(
                "DELETE FROM leaderboard_records WHERE board_id = ? AND period = ?", (board_id, period)
            )


_CFG_COLS = "kind, id, version, status, body, author, created_at"


def _cfg(r: Row) -> ConfigDoc:
    return ConfigDoc(
        kind=r[0],
        id=r[1],
        version=r[2],
        status=ConfigStatus(r[3]),
        body=bytes(r[4]),
        author=r[5],
        created_at=r[6],
    )


class SqlConfigs(_Sql):
    async def put_config(self, doc: ConfigDoc) -> ConfigDoc:
        d = replace(doc, created_at=doc.created_at or self._clock())
        async with self._e.transaction() as c:
            rows = await c.fetchall(
                f"SELECT version FROM configs WHERE kind = ? AND id = ? ORDER BY version DESC LIMIT 1{self._d.for_update}",
                (d.kind, d.id),
            )
            latest = rows[0][0] if rows else 0
            if d.version != latest + 1:
                raise Conflict(f"config {d.kind}/{d.id}: next version is {latest + 1}, got {d.version}")
            await c.execute(
                f"INSERT INTO configs ({_CFG_COLS}) VALUES {placeholders(7)}",
                (d.kind, d.id, d.version, d.status.value, d.body, d.author, d.created_at),
            )
        return d

    async def get_config(self, kind: str, id: str, version: int | None = None) -> ConfigDoc | None:
        params: tuple[Param, ...]
        if version is None:
            where = "kind = ? AND id = ? AND status = ? ORDER BY version DESC LIMIT 1"
            params = (kind, id, ConfigStatus.PUBLISHED.value)
        else:
            where, params = "kind = ? AND id = ? AND version = ?", (kind, id, version)
        async with self._e.read() as c:
            rows = await c.fetchall(f"SELECT {_CFG_COLS} FROM configs WHERE {where}", params)
        return _cfg(rows[0]) if rows else None

    async def list_versions(self, kind: str, id: str) -> list[ConfigDoc]:
        async with self._e.read() as c:
            rows = await c.fetchall(
                f"SELECT {_CFG_COLS} FROM configs WHERE kind = ? AND id = ? ORDER BY version", (kind, id)
            )
        return [_cfg(r) for r in rows]

    async def published(self, kind: str) -> list[ConfigDoc]:
        cols = ", ".join(f"c.{col.strip()}" for col in _CFG_COLS.split(","))
        async with self._e.read() as c:
            rows = await c.fetchall(
                f"SELECT {cols} FROM configs c JOIN (SELECT id, MAX(version) AS v FROM configs "
                "WHERE kind = ? AND status = ? GROUP BY id) m ON c.id = m.id AND c.version = m.v "
                "WHERE c.kind = ? ORDER BY c.id",
                (kind, ConfigStatus.PUBLISHED.value, kind),
            )
        return [_cfg(r) for r in rows]

    async def set_config_status(self, kind: str, id: str, version: int, status: ConfigStatus) -> ConfigDoc:
        async with self._e.transaction() as c:
            await c.execute(
                "UPDATE configs SET status = ? WHERE kind = ? AND id = ? AND version = ?",
                (status.value, kind, id, version),
            )
            rows = await c.fetchall(
                f"SELECT {_CFG_COLS} FROM configs WHERE kind = ? AND id = ? AND version = ?",
                (kind, id, version),
            )
        if not rows:
            raise NotFound(f"config {kind}/{id} v{version}")
        return _cfg(rows[0])


_BAN_COLS = "zone, kind, value, until, reason, created_by, created_at"


def _ban(r: Row) -> Ban:
    return Ban(zone=r[0], kind=r[1], value=r[2], until=r[3], reason=r[4], created_by=r[5], created_at=r[6])


class SqlBlacklist(_Sql):
    async def add_ban(self, ban: Ban) -> Ban:
        b = replace(ban, created_at=ban.created_at or self._clock())
        async with self._e.transaction() as c:
            await c.insert_many(
                f"INSERT INTO bans ({_BAN_COLS}) VALUES",
                [(b.zone, b.kind, b.value, b.until, b.reason, b.created_by, b.created_at)],
                self._d.upsert(["zone", "kind", "value"], ["until", "reason", "created_by", "created_at"]),
            )
        return b

    async def remove_ban(self, zone: str, kind: str, value: str) -> bool:
        async with self._e.transaction() as c:
            n = await c.execute(
                "DELETE FROM bans WHERE zone = ? AND kind = ? AND value = ?", (zone, kind, value)
            )
        return n > 0

    async def find_ban(self, zone: str, kind: str, value: str, now: int) -> Ban | None:
        async with self._e.read() as c:
            rows = await c.fetchall(
                f"SELECT {_BAN_COLS} FROM bans WHERE zone = ? AND kind = ? AND value = ? AND (until = 0 OR until > ?)",
                (zone, kind, value, now),
            )
        return _ban(rows[0]) if rows else None

    async def list_bans(self, zone: str, *, now: int | None = None) -> list[Ban]:
        cond, params = ("", (zone,)) if now is None else (" AND (until = 0 OR until > ?)", (zone, now))
        async with self._e.read() as c:
            rows = await c.fetchall(
                f"SELECT {_BAN_COLS} FROM bans WHERE zone = ?{cond} ORDER BY kind, value", params
            )
        return [_ban(r) for r in rows]


_AUDIT_COLS = "seq, at, actor, action, target, before_value, after_value, reason, request_id, prev_hash, hash"


def _audit(r: Row) -> AuditEntry:
    return AuditEntry(
        seq=r[0],
        at=r[1],
        actor=r[2],
        action=r[3],
        target=r[4],
        before=bytes(r[5]),
        after=bytes(r[6]),
        reason=r[7],
        request_id=r[8],
        prev_hash=r[9],
        hash=r[10],
    )


class SqlAudit(_Sql):
    async def append(self, entry: AuditEntry) -> AuditEntry:
        for attempt in range(5):
            try:
                return await self._append(entry)
            except Conflict:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    async def _append(self, entry: AuditEntry) -> AuditEntry:
        async with self._e.transaction() as c:
            rows = await c.fetchall(
                f"SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1{self._d.for_update}"
            )
            seq, prev = (rows[0][0], rows[0][1]) if rows else (0, GENESIS_HASH)
            e = replace(entry, seq=seq + 1, at=entry.at or self._clock(), prev_hash=prev, hash="")
            e = replace(e, hash=audit_hash(e))
            await c.execute(
                f"INSERT INTO audit_log ({_AUDIT_COLS}) VALUES {placeholders(11)}",
                (
                    e.seq,
                    e.at,
                    e.actor,
                    e.action,
                    e.target,
                    e.before,
                    e.after,
                    e.reason,
                    e.request_id,
                    e.prev_hash,
                    e.hash,
                ),
            )
        return e

    async def entries(self, *, after_seq: int = 0, limit: int = 100) -> list[AuditEntry]:
        async with self._e.read() as c:
            rows = await c.fetchall(
                f"SELECT {_AUDIT_COLS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            )
        return [_audit(r) for r in rows]

    async def verify_chain(self) -> int | None:
        prev, after = GENESIS_HASH, 0
        while True:
            page = await self.entries(after_seq=after, limit=1000)
            if not page:
                return None
            for e in page:
                if e.prev_hash != prev or audit_hash(e) != e.hash:
                    return e.seq
                prev, after = e.hash, e.seq


_DOC_COLS = "id, owner, status, version, body, created_at, updated_at"


def _doc(r: Row) -> Document:
    return Document(
        id=r[0], owner=r[1], status=r[2], version=r[3], body=bytes(r[4]), created_at=r[5], updated_at=r[6]
    )


class SqlDocuments(_Sql):
    def __init__(self, engine: SqlEngine, clock: Callable[[], int], table: str) -> None:
        super().__init__(engine, clock)
        if table not in DOC_TABLES:
            raise ValueError(f"unknown document table {table!r}")
        self.table = table

    async def get(self, id: str) -> Document | None:
        async with self._e.read() as c:
            rows = await c.fetchall(f"SELECT {_DOC_COLS} FROM {self.table} WHERE id = ?", (id,))
        return _doc(rows[0]) if rows else None

    async def put(self, doc: Document, *, expected_version: int | None = None) -> Document:
        now = self._clock()
        async with self._e.transaction() as c:
            rows = await c.fetchall(
                f"SELECT version, created_at FROM {self.table} WHERE id = ?{self._d.for_update}", (doc.id,)
            )
            have = rows[0][0] if rows else 0
            if expected_version is not None and expected_version != have:
                raise Conflict(f"{self.table}/{doc.id}: version is {have}, expected {expected_version}")
            created = rows[0][1] if rows else (doc.created_at or now)
            d = replace(doc, version=have + 1, created_at=created, updated_at=now)
            if rows:
                await c.execute(
                    f"UPDATE {self.table} SET owner = ?, status = ?, version = ?, body = ?, updated_at = ? WHERE id = ?",
                    (d.owner, d.status, d.version, d.body, d.updated_at, d.id),
                )
            else:
                await c.execute(
                    f"INSERT INTO {self.table} ({_DOC_COLS}) VALUES {placeholders(7)}",
                    (d.id, d.owner, d.status, d.version, d.body, d.created_at, d.updated_at),
                )
        return d

    async def put_many(self, docs: Sequence[Document]) -> list[Document | None]:
        distinct_ids(docs)
        if not docs:
            return []
        now = self._clock()
        have: dict[str, tuple[int, int]] = {}
        async with self._e.transaction() as c:
            for ids in chunks(sorted(d.id for d in docs), 500):
                rows = await c.fetchall(
                    f"SELECT id, version, created_at FROM {self.table} "
                    f"WHERE id IN {placeholders(len(ids))}{self._d.for_update}",
                    ids,
                )
                have.update((r[0], (r[1], r[2])) for r in rows)
            out: list[Document | None] = []
            for d in docs:
                version, created = have.get(d.id, (0, d.created_at or now))
                ok = d.version == version
                out.append(
                    replace(d, version=version + 1, created_at=created, updated_at=now) if ok else None
                )
            written = sorted((d for d in out if d is not None), key=lambda d: d.id)
            for batch in chunks(written, 500):
                await c.insert_many(
                    f"INSERT INTO {self.table} ({_DOC_COLS}) VALUES",
                    [(d.id, d.owner, d.status, 1, d.body, d.created_at, d.updated_at) for d in batch],
                    self._d.upsert(["id"], ["owner", "status", "body", "updated_at"], ["version"]),
                )
        return out

    async def put_in(self, c: SqlConn, docs: Sequence[Document]) -> None:
        """Blind upserts for write-behind: the version is bumped by one."""
        now = self._clock()
        latest = {d.id: d for d in docs}
        await c.insert_many(
            f"INSERT INTO {self.table} ({_DOC_COLS}) VALUES",
            [
                (d.id, d.owner, d.status, 1, d.body, d.created_at or now, now)
                for _, d in sorted(latest.items())
            ],
            self._d.upsert(["id"], ["owner", "status", "body", "updated_at"], ["version"]),
        )

    async def by_owner(self, owner: str, *, status: str | None = None) -> list[Document]:
        cond, params = ("", (owner,)) if status is None else (" AND status = ?", (owner, status))
        async with self._e.read() as c:
            rows = await c.fetchall(
                f"SELECT {_DOC_COLS} FROM {self.table} WHERE owner = ?{cond} ORDER BY id", params
            )
        return [_doc(r) for r in rows]

    async def delete(self, id: str) -> bool:
        async with self._e.transaction() as c:
            n = await c.execute(f"DELETE FROM {self.table} WHERE id = ?", (id,))
        return n > 0
