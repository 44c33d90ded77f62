"""Crash test: a server process on SQLite is killed (SIGKILL) while clients spin.

After a restart on the same file, every acknowledged spin is in the ledger exactly once
with the reply the client got, a retry of every spin left without a reply settles it at
most once, and every balance equals the sum of its ledger postings (WAL-1, WAL-2, INT-1).
Only the process this test started is killed; everything stays on 127.0.0.1.
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

import pytest

from gameserver import auth
from gameserver.casino import account_id, txn_key
from persistence import open_stores

from .client import WsClient

SECRET = "crash-secret"
USERS = [101, 102, 103, 104]
START = 1_000_000
ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp: Path) -> Path:
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
url = "sqlite:///{tmp}/crash.db"

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


async def spinner(url: str, user: int, acked: dict[str, Any], pending: set[str], stop: asyncio.Event) -> None:
    """Spin with client keys until the connection dies; record replies and unanswered keys."""
    c = await WsClient.connect(url)
    try:
        assert (await c.request("login", token=token(user)))["type"] == "ok"
        n = 0
        while not stop.is_set() and n < 5000:
            n += 1
            key = f"u{user}-{n}"
            pending.add(key)
            reply = await c.request("spin", game="fruit_slot", coin=random.choice([1, 5, 25]), key=key)
            if reply["type"] == "ok":
                acked[key] = reply["data"]
                pending.discard(key)
            else:  # only retryable errors may happen; the key stays pending
                assert reply["code"] in (8, 9), reply
    except (TimeoutError, ConnectionError, OSError, Exception) as exc:
        if not _is_disconnect(exc):
            raise
    finally:
        with contextlib.suppress(Exception):
            await c.close()


def _is_disconnect(exc: BaseException) -> bool:
    import websockets

    return isinstance(exc, ConnectionError | OSError | asyncio.TimeoutError | websockets.ConnectionClosed)


async def crash_run(url: str, proc: subprocess.Popen[str]) -> tuple[dict[str, Any], set[str]]:
    acked: dict[str, Any] = {}
    pending: set[str] = set()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(spinner(url, u, acked, pending, stop)) for u in USERS]
    await asyncio.sleep(random.uniform(0.4, 1.2))
    proc.kill()  # SIGKILL, the PID we started
    await asyncio.wait_for(asyncio.gather(*tasks), 15)
    return acked, pending


async def retry_pending(url: str, acked: dict[str, Any], pending: set[str]) -> dict[str, Any]:
    """After the restart, retry every unanswered spin with its key; returns the replies."""
    got: dict[str, Any] = {}
    for user in USERS:
        mine = sorted(k for k in pending if k.startswith(f"u{user}-"))
        if not mine:
            continue
        c = await WsClient.connect(url)
        try:
            assert (await c.request("login", token=token(user)))["type"] == "ok"
            for key in mine:
                reply = await c.request("spin", game="fruit_slot", coin=1, key=key)
                if reply["type"] == "error":
                    # the first attempt committed with another coin: same key, other request
                    assert reply["code"] == 408, reply
                    continue
                got[key] = reply["data"]
                again = await c.request("spin", game="fruit_slot", coin=1, key=key)
                assert again["data"] == reply["data"]
        finally:
            await c.close()
    return got


async def reconcile(db: Path, acked: dict[str, Any], retried: dict[str, Any]) -> int:
    stores = await open_stores(f"sqlite:///{db}")
    try:
        assert await stores.wallet.ledger_totals() == {"FUN": 0}
        assert await stores.wallet.balance_mismatches() == []
        for key, data in {**acked, **retried}.items():
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
        return len(acked)
    finally:
        await stores.close()


@pytest.mark.slow
def test_sigkill_while_spinning_loses_no_acknowledged_spin(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with server_process(config) as (proc, url):
        acked, pending = asyncio.run(crash_run(url, proc))
    assert acked, "no spin was acknowledged before the kill"
    print(f"acknowledged {len(acked)}, unanswered {len(pending)}")
    with server_process(config) as (proc, url):
        retried = asyncio.run(retry_pending(url, acked, pending))
        print(f"retried {len(retried)} after the restart")
        proc.terminate()  # graceful stop: drains the writer, closes the store
        assert proc.wait(10) == 0
    assert asyncio.run(reconcile(tmp_path / "crash.db", acked, retried)) == len(acked)
