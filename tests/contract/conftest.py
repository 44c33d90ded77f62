"""Fixtures of the contract suite: the same tests over memory, SQLite and MySQL.

Real services, no mocks:

- MySQL/MariaDB at ``CROUPIER_TEST_MYSQL`` (default
  ``mysql://root@127.0.0.1:3306/croupier_test``). Each test session creates its
  own database, named after that one plus a random suffix, migrates it once, and
  drops it at the end; every test starts from empty tables.
- Redis at ``CROUPIER_TEST_REDIS`` (default ``redis://127.0.0.1:6379/15``). Each
  session uses its own key prefix and deletes its keys at the end.

An unreachable service FAILS the tests that need it, with the reason, unless
``CROUPIER_TEST_SKIP_SERVICES=1`` is set (then they are skipped).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

from persistence.base import Backend
from persistence.factory import Stores, open_backend, open_engine, open_stores
from persistence.sql.mysql import MysqlEngine

T = TypeVar("T")

MYSQL_URL = os.environ.get("CROUPIER_TEST_MYSQL", "mysql://root@127.0.0.1:3306/croupier_test")
REDIS_URL = os.environ.get("CROUPIER_TEST_REDIS", "redis://127.0.0.1:6379/15")
SKIP_SERVICES = os.environ.get("CROUPIER_TEST_SKIP_SERVICES") == "1"
RUN_ID = secrets.token_hex(4)
TEST_TIMEOUT_S = 60.0


def run(coro: Awaitable[T]) -> T:
    """Run one test body on a fresh event loop, with a hard timeout."""

    async def bounded() -> T:
        async with asyncio.timeout(TEST_TIMEOUT_S):
            return await coro

    return asyncio.run(bounded())


def require(service: str, url: str) -> None:
    """Fail (or skip with CROUPIER_TEST_SKIP_SERVICES=1) when ``url`` does not accept TCP."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or (3306 if service == "MySQL" else 6379)
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        msg = f"{service} is not reachable at {host}:{port} ({exc}); start it, set its URL, or set CROUPIER_TEST_SKIP_SERVICES=1"
        if SKIP_SERVICES:
            pytest.skip(msg)
        pytest.fail(msg, pytrace=False)


def _with_db(url: str, db: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + db, p.query, p.fragment))


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    """A migrated MySQL database for this session (dropped at the end)."""
    require("MySQL", MYSQL_URL)
    base = urlsplit(MYSQL_URL).path.lstrip("/") or "croupier_test"
    url = _with_db(MYSQL_URL, f"{base}_{RUN_ID}")

    async def setup() -> None:
        backend = await open_backend(url)
        try:
            await backend.migrate()
        finally:
            await backend.close()

    run(setup())
    yield url

    async def teardown() -> None:
        engine = await open_engine(url)
        assert isinstance(engine, MysqlEngine)
        try:
            await engine.drop_database()
        finally:
            await engine.close()

    run(teardown())


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The test Redis URL with a key prefix unique to this session (keys deleted at the end)."""
    require("Redis", REDIS_URL)
    prefix = f"croupier_test_{RUN_ID}:"
    sep = "&" if "?" in REDIS_URL else "?"
    url = f"{REDIS_URL}{sep}prefix={prefix}"
    yield url

    async def teardown() -> None:
        from persistence.factory import open_cache

        cache = open_cache(url)
        try:
            await cache.invalidate_all()
        finally:
            await cache.close()

    run(teardown())


BACKENDS = ["memory", "sqlite", pytest.param("mysql", marks=pytest.mark.mysql)]


class Harness:
    """Opens the backend under test, empty, for one test body."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.url = url

    def run(self, body: Callable[[Backend], Awaitable[T]], *, fresh: bool = True) -> T:
        """Run ``body`` on a newly opened backend; emptied first unless ``fresh=False`` (a restart)."""

        async def go() -> T:
            backend = await open_backend(self.url)
            try:
                await backend.migrate()
                if fresh:
                    await backend.clear()
                return await body(backend)
            finally:
                await backend.close()

        return run(go())

    def run_stores(self, body: Callable[[Stores], Awaitable[T]], **options: Any) -> T:
        async def go() -> T:
            stores = await open_stores(self.url, **options)
            try:
                await stores.backend.clear()
                return await body(stores)
            finally:
                await stores.close()

        return run(go())


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    kind: str = request.param
    if kind == "memory":
        return Harness(kind, "memory://")
    if kind == "sqlite":
        return Harness(kind, f"sqlite:///{tmp_path}/croupier.db")
    return Harness(kind, request.getfixturevalue("mysql_url"))
