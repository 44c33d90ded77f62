"""StagedDocuments over every backend: staged changes are written together, against the
version this writer stored, and never over another writer's change."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from persistence import Conflict, Document, StoreUnavailable
from persistence.base import Backend, DocumentStore
from persistence.staged import StagedDocuments
from tests.contract.conftest import Harness


def doc(id: str, body: bytes, owner: str = "p1", status: str = "active") -> Document:
    return Document(id=id, owner=owner, status=status, body=body)


async def held(store: DocumentStore, id: str) -> tuple[int, bytes] | None:
    """(version, body) of what the store holds under `id`."""
    d = await store.get(id)
    return None if d is None else (d.version, d.body)


class Gated:
    """A document store whose `put_many` waits for a gate, or fails while `down`."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()
        self.down = False
        self.calls = 0

    async def get(self, id: str) -> Document | None:
        return await self.store.get(id)

    async def put(self, d: Document, *, expected_version: int | None = None) -> Document:
        return await self.store.put(d, expected_version=expected_version)

    async def put_many(self, docs: Sequence[Document]) -> list[Document | None]:
        self.calls += 1
        self.entered.set()
        await self.gate.wait()
        if self.down:
            raise StoreUnavailable("the database went away")
        return await self.store.put_many(docs)

    async def by_owner(self, owner: str, *, status: str | None = None) -> list[Document]:
        return await self.store.by_owner(owner, status=status)

    async def delete(self, id: str) -> bool:
        return await self.store.delete(id)


def test_staged_changes_are_written_by_one_flush(harness: Harness) -> None:
    async def body(b: Backend) -> None:
        store = Gated(b.missions)
        docs = StagedDocuments(store)
        assert await docs.get("a", "p1") is None
        for i in range(5):
            docs.stage(doc("a", b"%d" % i))
        docs.stage(doc("b", b"x", owner="p2"))
        assert docs.pending == 2 and await b.missions.get("a") is None  # nothing written yet
        assert (await docs.get("a", "p1")) == doc("a", b"4")  # reads its own staged change
        assert await docs.flush() == 2 and store.calls == 1 and docs.pending == 0
        assert await held(b.missions, "a") == (1, b"4")
        assert await docs.get("a", "p1") == await b.missions.get("a")
        docs.stage(doc("a", b"5"))  # against the version it stored
        assert await docs.flush() == 1
        assert await held(b.missions, "a") == (2, b"5")
        assert await docs.flush() == 0 and store.calls == 2  # nothing staged: no transaction

    harness.run(body)


def test_a_change_staged_during_a_flush_is_written_by_the_next(harness: Harness) -> None:
    async def body(b: Backend) -> None:
        store = Gated(b.missions)
        docs = StagedDocuments(store)
        docs.stage(doc("a", b"1"))
        store.gate.clear()
        flushing = asyncio.create_task(docs.flush())
        await store.entered.wait()
        docs.stage(doc("a", b"2"))  # while b"1" is being written
        store.gate.set()
        assert await flushing == 1
        assert docs.pending == 1
        assert await docs.flush() == 1
        assert await held(b.missions, "a") == (2, b"2")
        assert docs.stats.conflicts == 0

    harness.run(body)


def test_another_writers_change_is_not_overwritten(harness: Harness) -> None:
    async def body(b: Backend) -> None:
        docs = StagedDocuments(b.missions)
        docs.stage(doc("a", b"mine"))
        docs.stage(doc("b", b"mine"))
        await docs.flush()
        theirs = await b.missions.put(doc("a", b"theirs"))  # a handoff raced: version 2
        docs.stage(doc("a", b"mine again"))
        docs.stage(doc("b", b"mine again"))
        assert await docs.flush() == 1 and docs.stats.conflicts == 1
        assert await b.missions.get("a") == theirs
        got = await b.missions.get("b")
        assert got is not None and got.body == b"mine again"
        assert await docs.get("a", "p1") == theirs  # dropped here, read again
        with pytest.raises(Conflict):
            await b.missions.put(doc("a", b"x"), expected_version=1)
        await b.missions.put(doc("a", b"again theirs"))
        with pytest.raises(Conflict):
            await docs.put(doc("a", b"rewarded", status="rewarded"))
        got = await docs.get("a", "p1")
        assert got is not None and got.body == b"again theirs"

    harness.run(body)


def test_a_failed_flush_keeps_the_changes_staged(harness: Harness) -> None:
    async def body(b: Backend) -> None:
        store = Gated(b.missions)
        docs = StagedDocuments(store)
        docs.stage(doc("a", b"1"))
        store.down = True
        with pytest.raises(StoreUnavailable):
            await docs.flush()
        assert docs.pending == 1 and docs.stats.failures == 1
        docs.stage(doc("a", b"2"))
        store.down = False
        assert await docs.flush() == 1
        assert await held(b.missions, "a") == (1, b"2")

    harness.run(body)


def test_put_writes_at_once_and_replaces_the_staged_change(harness: Harness) -> None:
    async def body(b: Backend) -> None:
        docs = StagedDocuments(b.missions)
        docs.stage(doc("a", b"progress"))
        stored = await docs.put(doc("a", b"done", status="rewarded"))
        assert (stored.version, docs.pending) == (1, 0)
        assert await b.missions.get("a") == stored
        docs.stage(doc("a", b"more", status="rewarded"))
        assert await docs.flush() == 1
        assert await held(b.missions, "a") == (2, b"more")

    harness.run(body)


def test_forget_drops_the_cache_once_the_staged_changes_are_written(harness: Harness) -> None:
    async def body(b: Backend) -> None:
        store = Gated(b.missions)
        docs = StagedDocuments(store)
        docs.stage(doc("a", b"1"))
        await docs.flush()
        docs.stage(doc("b", b"1"))
        assert await docs.get("c", "p1") is None
        docs.forget("p1")
        assert docs.pending == 1  # b is still to be written
        await docs.flush()
        b_ = await b.missions.get("b")
        assert b_ is not None and b_.body == b"1"
        await b.missions.put(doc("a", b"moved on"))  # the player went elsewhere
        got = await docs.get("a", "p1")  # nothing cached: read from the store
        assert got is not None and got.body == b"moved on"
        assert docs.stats.conflicts == 0

    harness.run(body)


def test_adopt_and_latest_prefer_what_this_writer_holds(harness: Harness) -> None:
    """A document read by owner is cached by `adopt` unless a newer one is held here;
    `latest` overlays without caching; `on_conflict` hears of every dropped document."""

    async def body(b: Backend) -> None:
        dropped: list[str] = []
        docs = StagedDocuments(b.bonuses, on_conflict=lambda d: dropped.append(d.id))
        docs.stage(doc("g1", b"staged"))
        await docs.flush()
        docs.stage(doc("g1", b"newer"))
        (stored,) = await b.bonuses.by_owner("p1")
        assert stored.body == b"staged"
        assert docs.adopt(stored).body == b"newer" and docs.latest(stored).body == b"newer"
        other = await b.bonuses.put(doc("g2", b"theirs"))
        assert docs.latest(other) is other and docs.pending == 1  # not cached by `latest`
        assert docs.adopt(other) is other
        await b.bonuses.put(doc("g2", b"theirs again"))  # another writer
        with pytest.raises(Conflict):
            await docs.put(doc("g2", b"mine"))
        await b.bonuses.put(doc("g1", b"theirs"))
        assert await docs.flush() == 0
        assert dropped == ["g2", "g1"]

    harness.run(body)


def test_a_holder_other_than_the_owner_groups_what_forget_drops(harness: Harness) -> None:
    """Documents owned by one player but held by another's session (a referral, owned by
    the referrer, updated by the referee's rounds) are forgotten with the holder."""

    async def body(b: Backend) -> None:
        docs = StagedDocuments(b.referrals, holder=lambda d: d.id.removeprefix("ref:"))
        docs.stage(doc("ref:bob", b"1", owner="ann"))
        await docs.flush()
        docs.forget("ann")  # the owner's session ends: not the holder
        await b.referrals.put(doc("ref:bob", b"2", owner="ann"))
        got = await docs.get("ref:bob", "bob")
        assert got is not None and got.body == b"1"  # still held here
        docs.forget("bob")
        await b.referrals.put(doc("ref:bob", b"4", owner="ann"))
        got = await docs.get("ref:bob", "bob")  # forgotten with bob: read again
        assert got is not None and got.body == b"4"

    harness.run(body)
