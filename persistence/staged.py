"""Versioned documents of one writer, with their changes staged and written together.

The rewards services keep progress (mission counters, bonus wagering) in versioned
documents that one worker writes: the owner of the player. Writing each change at once
costs a durable transaction per settled round; `StagedDocuments` keeps the latest
version of each document in memory instead, and writes what changed in one conditional
transaction (`DocumentStore.put_many`) when `flush` runs (the rewards scheduler calls it
every tick), before a player's session moves to another worker, and at a graceful stop.
A change that must be durable before money moves (a mission reaching its target, a bonus
completed) is written at once with `put`.

Every write is conditional on the version this writer last stored, so a document that
another worker wrote meanwhile (a handoff raced) is not overwritten: it is dropped from
memory and read again. A hard crash loses the changes staged since the last flush.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from msgspec.structs import replace

from persistence.base import DocumentStore
from persistence.errors import Conflict
from persistence.records import Document

log = logging.getLogger(__name__)


@dataclass(slots=True)
class StagedStats:
    flushes: int = 0
    written: int = 0  #: documents written by flushes
    conflicts: int = 0  #: staged documents another writer had changed (dropped)
    failures: int = 0  #: flushes that failed (their documents stay staged)


class StagedDocuments:
    """A read cache and a staging area over one `DocumentStore`, for a single writer.

    A cached document's ``version`` is the version stored; a staged one carries the
    newer body to write against that version.
    """

    def __init__(
        self,
        store: DocumentStore,
        name: str = "documents",
        on_conflict: Callable[[Document], None] | None = None,
        holder: Callable[[Document], str] | None = None,
    ) -> None:
        """`on_conflict` is told of each document dropped because another writer changed it
        (a flush or a `put` found a newer version): a cache built on these documents drops
        its copy too. `holder` names the player whose session keeps a document cached here
        (what `forget` is called with); by default its owner."""
        self.store = store
        self.name = name
        self.on_conflict = on_conflict
        self._holder = holder or (lambda d: d.owner)
        self.stats = StagedStats()
        self._docs: dict[str, Document | None] = {}  # id -> latest (None: not stored)
        self._staged: set[str] = set()
        self._owned: dict[str, set[str]] = {}  # owner -> cached ids
        self._owner: dict[str, str] = {}  # cached id -> owner
        self._gone: set[str] = set()  # owners forgotten while some of their docs were staged
        self._lock = asyncio.Lock()  # one write at a time: `put` waits for a flush

    @property
    def pending(self) -> int:
        """Documents staged and not written yet."""
        return len(self._staged)

    def staged_of(self, owner: str) -> bool:
        return any(i in self._staged for i in self._owned.get(owner, ()))

    async def get(self, id: str, owner: str) -> Document | None:
        """The latest document (staged or stored), reading the store once; ``owner`` is
        the holder it has or would have (what `forget` drops)."""
        if id in self._docs:
            return self._docs[id]
        doc = await self.store.get(id)
        if id in self._docs:  # staged or read by another task meanwhile: that one is newer
            return self._docs[id]
        self._docs[id] = doc
        self._owner[id] = owner
        self._owned.setdefault(owner, set()).add(id)
        return doc

    def adopt(self, doc: Document) -> Document:
        """Cache ``doc``, read from the store by other means (a query by owner), unless this
        writer holds it already: then the cached one (staged, or stored since) is returned."""
        cur = self._docs.get(doc.id)
        if cur is not None:
            return cur
        self._keep(doc)
        return doc

    def latest(self, doc: Document) -> Document:
        """The cached version of a document read from the store, if any, else ``doc``."""
        return self._docs.get(doc.id) or doc

    def _version(self, id: str) -> int:
        cur = self._docs.get(id)
        return 0 if cur is None else cur.version

    def _keep(self, doc: Document) -> None:
        holder = self._holder(doc)
        old = self._owner.get(doc.id)
        if old is not None and old != holder:
            self._drop(doc.id)
        self._docs[doc.id] = doc
        self._owner[doc.id] = holder
        self._owned.setdefault(holder, set()).add(doc.id)
        self._gone.discard(holder)

    def stage(self, doc: Document) -> Document:
        """Keep ``doc`` as the latest, to be written by the next flush. Its ``version``
        is replaced by the stored one (read the document with `get` first)."""
        doc = replace(doc, version=self._version(doc.id))
        self._keep(doc)
        self._staged.add(doc.id)
        return doc

    async def put(self, doc: Document) -> Document:
        """Write ``doc`` now (against the stored version), replacing a staged change.

        Raises:
            Conflict: another writer changed it (it is dropped here: `get` reads it again).
        """
        async with self._lock:
            expected = self._version(doc.id)
            try:
                stored = await self.store.put(doc, expected_version=expected)
            except Conflict:
                self._conflict(doc)
                raise
            self._staged.discard(doc.id)
            self._keep(stored)
            return stored

    async def flush(self) -> int:
        """Write every staged document in one transaction; returns how many were written.

        A store error keeps them staged (the next flush tries again) and is raised.
        """
        async with self._lock:
            if not self._staged:
                self._evict_gone()
                return 0
            batch = [d for i in self._staged if (d := self._docs.get(i)) is not None]
            self._staged.clear()
            self.stats.flushes += 1
            try:
                stored = await self.store.put_many(batch)
            except BaseException:
                self.stats.failures += 1
                self._staged.update(d.id for d in batch if self._docs.get(d.id) is not None)
                raise
            written = 0
            for sent, new in zip(batch, stored, strict=True):
                if new is None:
                    self.stats.conflicts += 1
                    log.warning(
                        "%s: %s was written elsewhere; its staged change is dropped", self.name, sent.id
                    )
                    self._conflict(sent)
                    continue
                written += 1
                cur = self._docs.get(sent.id)
                if cur is sent or cur is None:
                    self._docs[sent.id] = new
                else:  # staged again while this flush ran: write that against the new version
                    self._docs[sent.id] = replace(cur, version=new.version)
            self.stats.written += written
            self._evict_gone()
            return written

    def forget(self, owner: str) -> None:
        """Drop the owner's cached documents (a session ended here); staged ones are
        dropped once the next flush wrote them."""
        ids = self._owned.get(owner)
        if not ids:
            return
        for i in [i for i in ids if i not in self._staged]:
            ids.discard(i)
            self._docs.pop(i, None)
            self._owner.pop(i, None)
        if ids:
            self._gone.add(owner)
        else:
            del self._owned[owner]

    def _evict_gone(self) -> None:
        for owner in list(self._gone):
            if not self.staged_of(owner):
                self._gone.discard(owner)
                for i in self._owned.pop(owner, ()):
                    self._docs.pop(i, None)
                    self._owner.pop(i, None)

    def _conflict(self, doc: Document) -> None:
        self._drop(doc.id)
        if self.on_conflict is not None:
            self.on_conflict(doc)

    def _drop(self, id: str) -> None:
        self._staged.discard(id)
        self._docs.pop(id, None)
        owner = self._owner.pop(id, None)
        ids = None if owner is None else self._owned.get(owner)
        if owner is not None and ids is not None:
            ids.discard(id)
            if not ids:
                del self._owned[owner]
