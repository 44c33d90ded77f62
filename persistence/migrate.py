"""Apply the versioned schema migrations.

Run from the command line (the database is created if it does not exist)::

    python -m persistence.migrate sqlite:///./var/croupier.db
    python -m persistence.migrate mysql://root@127.0.0.1:3306/croupier
    python -m persistence.migrate mysql://root@127.0.0.1:3306/croupier --status
    python -m persistence.migrate mysql://root@127.0.0.1:3306/croupier --down 0

or from code with ``await backend.migrate()`` (``open_stores`` does it at start-up
unless ``migrate=False``). Applied versions are recorded in ``schema_migrations``.

Concurrency: SQLite applies all pending migrations in one ``BEGIN IMMEDIATE``
transaction (DDL is transactional there). MySQL holds ``GET_LOCK('croupier_migrate')``
while it migrates; its DDL is not transactional, so a migration that fails halfway
must be repaired by hand before it is retried.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from dataclasses import dataclass
from importlib import resources

from persistence.errors import StoreBusy
from persistence.records import now_ms
from persistence.sql.engine import SqlConn, SqlEngine

__all__ = [
    "Migration",
    "load_migrations",
    "main",
    "migrate_engine",
    "rollback_engine",
    "run",
    "status_engine",
]

_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
_SCHEMA_TABLE = {
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT",
    "mysql": "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL) "
    "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
}


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    up: tuple[str, ...]
    down: tuple[str, ...]


def split_statements(text: str) -> tuple[str, ...]:
    """Statements of an SQL script: comment lines dropped, split at ``;`` ending a line."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    parts = re.split(r";[ \t]*$", "\n".join(lines), flags=re.M)
    return tuple(p.strip() for p in parts if p.strip())


def load_migrations(dialect: str) -> list[Migration]:
    """Every migration of ``dialect`` (``sqlite`` or ``mysql``), in version order."""
    folder = resources.files("persistence.migrations").joinpath(dialect)
    out = []
    for entry in folder.iterdir():
        m = _FILE.match(entry.name)
        if m is None:
            continue
        text = entry.read_text(encoding="utf-8")
        if "-- migrate:up" not in text:
            raise ValueError(f"{dialect}/{entry.name} has no '-- migrate:up' part")
        up, _, down = text.partition("-- migrate:up")[2].partition("-- migrate:down")
        out.append(Migration(int(m.group(1)), m.group(2), split_statements(up), split_statements(down)))
    out.sort(key=lambda mig: mig.version)
    if len({mig.version for mig in out}) != len(out):
        raise ValueError(f"duplicate migration versions in {dialect}")
    return out


async def _applied(c: SqlConn, dialect: str) -> set[int]:
    await c.execute(_SCHEMA_TABLE[dialect])
    return {int(r[0]) for r in await c.fetchall("SELECT version FROM schema_migrations")}


async def migrate_engine(engine: SqlEngine, *, target: int | None = None) -> list[int]:
    """Apply pending migrations up to ``target`` (default: all); return the versions applied."""
    for attempt in range(5):
        try:
            return await _migrate(engine, target)
        except StoreBusy:  # another process holds the lock (SQLite may not wait for it)
            if attempt == 4:
                raise
            await asyncio.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


async def _migrate(engine: SqlEngine, target: int | None) -> list[int]:
    dialect = engine.dialect.name
    done: list[int] = []
    async with engine.migration_session() as c:
        applied = await _applied(c, dialect)
        for mig in load_migrations(dialect):
            if mig.version in applied or (target is not None and mig.version > target):
                continue
            for stmt in mig.up:
                await c.execute(stmt)
            await c.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (mig.version, mig.name, now_ms()),
            )
            done.append(mig.version)
    return done


async def rollback_engine(engine: SqlEngine, *, target: int) -> list[int]:
    """Run the down parts of applied migrations newer than ``target``; return their versions."""
    dialect = engine.dialect.name
    undone: list[int] = []
    async with engine.migration_session() as c:
        applied = await _applied(c, dialect)
        for mig in reversed(load_migrations(dialect)):
            if mig.version not in applied or mig.version <= target:
                continue
            for stmt in mig.down:
                await c.execute(stmt)
            await c.execute("DELETE FROM schema_migrations WHERE version = ?", (mig.version,))
            undone.append(mig.version)
    return undone


async def status_engine(engine: SqlEngine) -> list[tuple[int, str, bool]]:
    """``(version, name, applied)`` for every known migration."""
    async with engine.migration_session() as c:
        applied = await _applied(c, engine.dialect.name)
    return [(m.version, m.name, m.version in applied) for m in load_migrations(engine.dialect.name)]


async def run(url: str, *, down: int | None = None, status: bool = False) -> list[str]:
    """Migrate the database at ``url``; return human-readable report lines."""
    from persistence.factory import open_engine

    engine = await open_engine(url)
    try:
        if status:
            return [
                f"{v:04d} {n}: {'applied' if a else 'pending'}" for v, n, a in await status_engine(engine)
            ]
        if down is not None:
            return [f"reverted {v:04d}" for v in await rollback_engine(engine, target=down)] or [
                "nothing to revert"
            ]
        return [f"applied {v:04d}" for v in await migrate_engine(engine)] or ["schema is up to date"]
    finally:
        await engine.close()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: ``python -m persistence.migrate URL [--status | --down N]``."""
    parser = argparse.ArgumentParser(prog="python -m persistence.migrate", description=__doc__.split("\n")[0])
    parser.add_argument("url", help="sqlite:///./var/croupier.db or mysql://user:pass@host:3306/db")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--status", action="store_true", help="list migrations and whether they are applied")
    group.add_argument("--down", type=int, metavar="N", help="revert every migration newer than version N")
    args = parser.parse_args(argv)
    from persistence.errors import PersistenceError

    try:
        for line in asyncio.run(run(args.url, down=args.down, status=args.status)):
            print(line)
    except PersistenceError as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
