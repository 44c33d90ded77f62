"""Non-money write-behind on every backend: coalesced, delayed, flushed on graceful shutdown."""

from __future__ import annotations

from persistence import (
    Account,
    DocPut,
    Document,
    ProfilePut,
    VarDelete,
    Variable,
    VarPut,
    VarScope,
    WriteBehindConfig,
)
from persistence.base import Backend
from persistence.factory import Stores
from tests.contract.conftest import Harness

SLOW = WriteBehindConfig(flush_interval_ms=60_000)


def test_changes_wait_for_the_flush_and_are_written_on_close(harness: Harness) -> None:
    """Puts are not in the database before the flush; close() writes the last value of each key."""

    async def body(s: Stores) -> None:
        await s.accounts.create_account(Account(user_id="u1", zone="z", name="n"))
        for i in range(100):
            s.put_later(
                VarPut(var=Variable(scope=VarScope.USER, owner="u1", name="spins", value=str(i).encode()))
            )
            s.put_later(
                DocPut(table="missions", doc=Document(id="m1:u1", owner="u1", body=f"progress={i}".encode()))
            )
        s.put_later(ProfilePut(user_id="u1", profile=b'{"lvl":2}'))
        assert s.write_behind.dirty == 3
        assert await s.variables.load_variables(VarScope.USER, "u1") == []
        if harness.kind == "memory":
            await s.write_behind.flush()
            await check(s.backend)

    harness.run_stores(body, write_behind=SLOW)
    if harness.kind != "memory":
        harness.run(check, fresh=False)  # after a restart


async def check(b: Backend) -> None:
    [v] = await b.variables.load_variables(VarScope.USER, "u1")
    assert v.value == b"99"
    doc = await b.missions.get("m1:u1")
    assert doc is not None and doc.body == b"progress=99" and doc.version == 1
    acc = await b.accounts.get_account("u1")
    assert acc is not None and acc.profile == b'{"lvl":2}'


def test_background_flush_writes_within_the_interval(harness: Harness) -> None:
    """With a short interval the change reaches the database without an explicit flush."""
    import asyncio

    async def body(s: Stores) -> None:
        s.put_later(VarPut(var=Variable(scope=VarScope.ROOM, owner="lobby", name="pot", value=b"7")))
        deadline = asyncio.get_running_loop().time() + 10  # generous: shared, loaded machines
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
            # the row can be readable (committed) a moment before the flush that wrote it
            # has returned and counted itself: wait for both
            if await s.variables.load_variables(VarScope.ROOM, "lobby") and s.write_behind.flushes:
                break
        assert [v.value for v in await s.variables.load_variables(VarScope.ROOM, "lobby")] == [b"7"]
        assert s.write_behind.dirty == 0 and s.write_behind.flushes >= 1

    harness.run_stores(body, write_behind=WriteBehindConfig(flush_interval_ms=20))


def test_load_variables_sees_the_writes_not_flushed_yet(harness: Harness) -> None:
    """Stores.load_variables lays the pending puts and deletes over the database (read-your-writes)."""

    def put(name: str, value: bytes) -> VarPut:
        return VarPut(var=Variable(scope=VarScope.USER, owner="demo:9", name=name, value=value))

    async def body(s: Stores) -> None:
        s.put_later(put("a", b"1"))
        s.put_later(put("b", b"1"))
        await s.write_behind.flush()
        s.put_later(put("a", b"2"))  # pending update
        s.put_later(VarDelete(scope=VarScope.USER, owner="demo:9", name="b"))  # pending delete
        s.put_later(put("c", b"3"))  # pending insert
        s.put_later(VarPut(var=Variable(scope=VarScope.USER, owner="demo:90", name="x", value=b"0")))
        got = await s.load_variables(VarScope.USER, "demo:9")
        assert [(v.name, v.value) for v in got] == [("a", b"2"), ("c", b"3")]
        [stored] = [v for v in await s.variables.load_variables(VarScope.USER, "demo:9") if v.name == "a"]
        assert stored.value == b"1"  # the database itself has not changed yet
        await s.write_behind.flush()
        assert s.write_behind.pending(("var",)) == []
        got = await s.load_variables(VarScope.USER, "demo:9")
        assert [(v.name, v.value) for v in got] == [("a", b"2"), ("c", b"3")]

    harness.run_stores(body, write_behind=SLOW)
