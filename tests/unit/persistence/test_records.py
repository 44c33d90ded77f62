"""Records, transaction validation, URLs, SQL text helpers and the memory cache."""

from __future__ import annotations

import pytest

from persistence import Entry, InvalidTxn, PostingKind, Txn, TxnResult, spin_txn, transfer
from persistence.cache import MemoryCache
from persistence.migrate import split_statements
from persistence.records import BalanceAfter, validate_txn
from persistence.sql.engine import MYSQL, SQLITE, placeholders
from persistence.sql.mysql import literal, render
from persistence.url import parse_url
from tests.unit.persistence.conftest import run

BET = PostingKind.BET


def test_spin_txn_moves_the_bet_and_the_win() -> None:
    """A spin is a bet pair and, when it wins, a win pair, each balanced."""
    t = spin_txn("r:spin", player="p", house="h", currency="EUR", bet=100, win=30)
    assert t.entries == (
        Entry("p", "EUR", -100, BET),
        Entry("h", "EUR", 100, BET),
        Entry("h", "EUR", -30, PostingKind.WIN),
        Entry("p", "EUR", 30, PostingKind.WIN),
    )
    assert spin_txn("k", player="p", house="h", currency="EUR", bet=5, win=0).entries == transfer(
        "p", "h", "EUR", 5, BET
    )
    validate_txn(t)


@pytest.mark.parametrize(
    ("txn", "message"),
    [
        (Txn(key="", entries=()), "txn key"),
        (Txn(key="k" * 129, entries=()), "txn key"),
        (Txn(key="k", entries=(Entry("a", "EUR", 1, BET),)), "unbalanced"),
        (Txn(key="k", entries=(Entry("a", "EUR", 1, BET), Entry("b", "USD", -1, BET))), "unbalanced"),
        (Txn(key="k", entries=(Entry("", "EUR", 0, BET),)), "account"),
        (Txn(key="k", entries=(Entry("a", "", 0, BET),)), "currency"),
        (Txn(key="k", entries=(Entry("a", "EUR", 2**63, BET), Entry("b", "EUR", -(2**63), BET))), "int64"),
        (Txn(key="k", entries=(Entry("a", "EUR", True, BET), Entry("b", "EUR", -1, BET))), "int64"),  # type: ignore[arg-type]
        (Txn(key="k", entries=tuple(Entry("a", "EUR", 0, BET) for _ in range(65))), "entries"),
    ],
)
def test_malformed_txns_are_invalid(txn: Txn, message: str) -> None:
    """Each malformed transaction is refused with InvalidTxn naming the problem."""
    with pytest.raises(InvalidTxn, match=message):
        validate_txn(txn)


def test_result_balance_lookup() -> None:
    """TxnResult.balance finds the balance after the txn, or None for untouched accounts."""
    r = TxnResult(key="k", committed_at=1, balances=(BalanceAfter("a", "EUR", 5),))
    assert (r.balance("a", "EUR"), r.balance("a", "USD")) == (5, None)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory://", {"scheme": "memory"}),
        ("sqlite:///./var/croupier.db", {"scheme": "sqlite", "path": "./var/croupier.db"}),
        (
            "sqlite:////srv/c.db?timeout=3",
            {"scheme": "sqlite", "path": "/srv/c.db", "options": {"timeout": "3"}},
        ),
        ("sqlite:///:memory:", {"scheme": "sqlite", "path": ":memory:"}),
        (
            "mysql://app:p%40ss@db.local:3307/croupier?pool_size=4",
            {
                "scheme": "mysql",
                "host": "db.local",
                "port": 3307,
                "user": "app",
                "password": "p@ss",
                "database": "croupier",
            },
        ),
        ("mariadb://root@127.0.0.1/c", {"scheme": "mysql", "port": None, "database": "c"}),
        (
            "redis://127.0.0.1:6379/15?prefix=x:",
            {"scheme": "redis", "database": "15", "options": {"prefix": "x:"}},
        ),
    ],
)
def test_store_urls(url: str, expected: dict[str, object]) -> None:
    """Every documented URL form parses to its parts."""
    u = parse_url(url)
    for k, v in expected.items():
        assert getattr(u, k) == v


@pytest.mark.parametrize("url", ["postgres://x/y", "mysql://root@host", "sqlite://"])
def test_bad_store_urls(url: str) -> None:
    """Unknown schemes and missing database names are errors."""
    with pytest.raises(ValueError):
        parse_url(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///x.db?checkpoint_interval=soon", "checkpoint_interval='soon' is not a number"),
        ("sqlite:///x.db?busy_timeout_ms=1.5", "busy_timeout_ms='1.5' is not a whole number"),
    ],
)
def test_a_store_url_option_that_is_not_a_number_is_named(url: str, message: str) -> None:
    u = parse_url(url)
    with pytest.raises(ValueError, match=message):
        u.option("checkpoint_interval", 1.0)
        u.int_option("busy_timeout_ms", 5000)


def test_mysql_literals_escape_everything() -> None:
    """Strings are quoted with backslash escapes, bytes become hex, ints and None are bare."""
    assert literal('it\'s \\ "x"\n\x00\x1a') == "'it\\'s \\\\ \\\"x\\\"\\n\\0\\Z'"
    assert literal(b"\x00\xff") == "X'00ff'" and literal(b"") == "X''"
    assert (literal(-5), literal(None), literal(True)) == ("-5", "NULL", "1")
    assert literal(BET) == "'bet'"
    assert render("SELECT ? + ?, ?", (1, 2, "a?b")) == "SELECT 1 + 2, 'a?b'"
    with pytest.raises(ValueError):
        render("SELECT ?", (1, 2))
    with pytest.raises(TypeError):
        literal(1.5)  # type: ignore[arg-type]


def test_dialect_upserts() -> None:
    """The upsert tail is ON CONFLICT for SQLite and ON DUPLICATE KEY for MySQL."""
    assert (
        SQLITE.upsert(["k"], ["a"], ["n"])
        == " ON CONFLICT (k) DO UPDATE SET n = n + excluded.n, a = excluded.a"
    )
    assert MYSQL.upsert(["k"], ["a"], ["n"]) == " ON DUPLICATE KEY UPDATE n = n + VALUES(n), a = VALUES(a)"
    assert placeholders(3) == "(?, ?, ?)"


def test_migration_scripts_split_into_statements() -> None:
    """Comment lines are dropped and statements end at a semicolon closing a line."""
    text = "-- comment\nCREATE TABLE a (x INT DEFAULT ';');\n\nCREATE INDEX i ON a (x);  \n-- tail\n"
    assert split_statements(text) == ("CREATE TABLE a (x INT DEFAULT ';')", "CREATE INDEX i ON a (x)")


def test_memory_cache_expiry_and_order() -> None:
    """The memory cache expires by its clock and orders ties like Redis (reverse member order)."""
    now = [0.0]
    cache = MemoryCache(clock=lambda: now[0])

    async def body() -> None:
        await cache.set_many({"a": b"1"}, 10)
        await cache.zadd("b", {"x": 1, "y": 1, "z": 2}, ttl_s=5)
        assert await cache.ztop("b") == [("z", 2), ("y", 1), ("x", 1)]
        now[0] = 6
        assert await cache.ztop("b") == [] and await cache.get("a") == b"1"
        now[0] = 10
        assert await cache.get("a") is None

    run(body())
