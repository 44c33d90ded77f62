"""Crash test: a server process is killed (SIGKILL) while clients spin, on SQLite and on MySQL.

Each round starts the server on the same database, retries every spin the previous
round left without a reply (same key), lets the clients spin, and kills the server at
a random moment; a bounded number of rounds (``ROUNDS``), then a graceful stop. After
that, every acknowledged spin is in the ledger exactly once with the reply the client
got, a retry of every unanswered spin settled it at most once, no posting lacks its
round, and every balance equals the sum of its ledger postings (WAL-1, WAL-2, WAL-3,
INT-1). Only the processes this test started are killed; everything stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from gameserver import auth
from gameserver.casino import account_id, txn_key
from persistence import open_stores
from persistence.factory import open_backend, open_engine
from persistence.sql.mysql import MysqlEngine
from tests.contract.conftest import mysql_url  # noqa: F401 - checks the service is reachable

from .client import WsClient

SECRET = "crash-secret"
USERS = [101, 102, 103, 104]
START = 1_000_000
ROUNDS = 3  # kills per test: each at a random moment of its round
ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp: Path, store_url: str) -> Path:
    path = tmp / "croupier.toml"
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
ws_port = 0
tcp_port = -1

[auth]
secret = "{SECRET}"

[store]
url = "{store_url}"

[casino.zones.demo]
currency = "FUN"
starting_balance = {START}
games = {{ fruit_slot = "96.5" }}

[[zones]]
name = "demo"
flood = {{ rate = 100000.0, burst = 100000 }}

[[zones.rooms]]
name = "Lobby"
"""
    )
    return path


@contextlib.contextmanager
def server_process(config: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gameserver", "run", "--config", str(config), "--log-level", "WARNING"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 20
        assert proc.stdout is not None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.strip().startswith("ws://"):
                url = line.strip()
        assert url is not None, "the server did not start"
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def token(user: int) -> str:
    return auth.mint(SECRET, user, "demo", expires=int(time.time()) + 3600)


class History:
    """What the clients saw: replies of acknowledged spins, keys sent without a reply."""

    def __init__(self) -> None:
        self.acked: dict[str, Any] = {}
        self.pending: set[str] = set()
        self.retried: dict[str, Any] = {}


async def spinner(url: str, user: int, tag: str, h: History, stop: asyncio.Event) -> None:
    """Spin with client keys until the connection dies; record replies and unanswered keys."""
    c = await WsClient.connect(url)
    try:
        assert (await c.request("login", token=token(user)))["type"] == "ok"
        n = 0
        while not stop.is_set() and n < 5000:
            n += 1
            key = f"u{user}-{tag}-{n}"
            h.pending.add(key)
            reply = await c.request("spin", game="fruit_slot", coin=random.choice([1, 5, 25]), key=key)
            if reply["type"] == "ok":
                h.acked[key] = reply["data"]
                h.pending.discard(key)
            else:  # only retryable errors may happen; the key stays pending
                assert reply["code"] in (8, 9), reply
    except Exception as exc:
        if not _is_disconnect(exc):
            raise
    finally:
        with contextlib.suppress(Exception):
            await c.close()


def _is_disconnect(exc: BaseException) -> bool:
    import websockets

    return isinstance(exc, ConnectionError | OSError | asyncio.TimeoutError | websockets.ConnectionClosed)


async def crash_run(url: str, proc: subprocess.Popen[str], tag: str, h: History) -> None:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(spinner(url, u, tag, h, stop)) for u in USERS]
    await asyncio.sleep(random.uniform(0.3, 1.2))
    proc.kill()  # SIGKILL, the PID we started
    await asyncio.wait_for(asyncio.gather(*tasks), 15)


async def retry_pending(url: str, h: History) -> None:
    """After a restart, retry every unanswered spin with its key (twice: same reply)."""
    for user in USERS:
        mine = sorted(k for k in h.pending if k.startswith(f"u{user}-"))
        if not mine:
            continue
        c = await WsClient.connect(url)
        try:
            assert (await c.request("login", token=token(user)))["type"] == "ok"
            for key in mine:
                reply = await c.request("spin", game="fruit_slot", coin=1, key=key)
                h.pending.discard(key)
                if reply["type"] == "error":
                    # the first attempt committed with another coin: same key, other request
                    assert reply["code"] == 408, reply
                    continue
                h.retried[key] = reply["data"]
                again = await c.request("spin", game="fruit_slot", coin=1, key=key)
                assert again["data"] == reply["data"]
        finally:
            await c.close()


async def reconcile(store_url: str, h: History) -> None:
    stores = await open_stores(store_url)
    try:
        assert await stores.wallet.ledger_totals() == {"FUN": 0}
        assert await stores.wallet.balance_mismatches() == []
        for key, data in {**h.acked, **h.retried}.items():
            user = int(key[1:].split("-")[0])
            acct = account_id("demo", user)
            full = txn_key("spin", acct, "k", key)
            result = await stores.wallet.get_txn(full)
            assert result is not None, f"acknowledged spin {key} is not in the ledger"
            assert result.round_id == data["round"]
            legs = [p for p in await stores.wallet.txn_postings(full) if p.account == acct]
            assert sum(1 for p in legs if p.kind == "bet") == 1
            assert sum(p.amount for p in legs) == data["net"]
        for user in USERS:
            acct = account_id("demo", user)
            wb = await stores.wallet.get_balance(acct, "FUN")
            assert wb is not None
            rows = await stores.wallet.postings(acct, "FUN", limit=1_000_000)
            assert wb.balance == sum(p.amount for p in rows)
            assert sum(1 for p in rows if p.kind == "bonus") == 1  # the welcome credit, once
            for rid in {p.round_id for p in rows if p.kind != "bonus"}:  # no posting without its round
                assert rid and await stores.rounds.get_round(rid) is not None, f"posting of round {rid!r}"
    finally:
        await stores.close()


def crash_rounds(tmp: Path, store_url: str) -> History:
    config = write_config(tmp, store_url)
    h = History()
    for i in range(ROUNDS):
        with server_process(config) as (proc, url):
            asyncio.run(retry_pending(url, h))
            asyncio.run(crash_run(url, proc, f"r{i}", h))
        print(f"round {i}: acknowledged {len(h.acked)}, unanswered {len(h.pending)}")
    with server_process(config) as (proc, url):
        asyncio.run(retry_pending(url, h))
        print(f"retried {len(h.retried)} after the last restart")
        proc.terminate()  # graceful stop: drains the writer, closes the store
        assert proc.wait(10) == 0
    assert not h.pending
    assert h.acked, "no spin was acknowledged before a kill"
    asyncio.run(reconcile(store_url, h))
    return h


@pytest.mark.slow
def test_sigkill_while_spinning_loses_no_acknowledged_spin(tmp_path: Path) -> None:
    crash_rounds(tmp_path, f"sqlite:///{tmp_path}/crash.db")


@pytest.fixture
def crash_db(mysql_url: str) -> Iterator[str]:  # noqa: F811
    """A database of its own (next to the session's), migrated, dropped afterwards."""
    p = urlsplit(mysql_url)
    url = urlunsplit((p.scheme, p.netloc, p.path + "_crash", p.query, ""))

    async def migrate() -> None:
        backend = await open_backend(url)
        try:
            await backend.migrate()
        finally:
            await backend.close()

    async def drop() -> None:
        engine = await open_engine(url)
        assert isinstance(engine, MysqlEngine)
        try:
            await engine.drop_database()
        finally:
            await engine.close()

    asyncio.run(migrate())
    try:
        yield url
    finally:
        asyncio.run(drop())


@pytest.mark.slow
@pytest.mark.mysql
def test_sigkill_while_spinning_on_mysql_loses_no_acknowledged_spin(tmp_path: Path, crash_db: str) -> None:
    crash_rounds(tmp_path, crash_db)
