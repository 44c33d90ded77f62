"""Durable leaderboard state, in the store's `LeaderboardStore` (and the cache's sorted sets).

One board of a zone is several record families, all keyed by period (the window start in
epoch seconds, as a string) so that a period's rows are read and deleted together:

| board_id | owner_id | score | meaning |
|---|---|---|---|
| `<zone>:<board>` | user id | the score | the standings (subscore = minus the tie-break time, meta = name) |
| `<zone>:<board>#seen` | round id | 1 | a round counted (written with its score: redelivery after a restart) |
| `<zone>:<board>#joined` | user id | 1 | joined the period (tournaments that require joining) |
| `<zone>:<board>#final` | user id | the score | archived final standings (subscore = -position, meta = row) |
| `<zone>:<board>#paid` | `all` | prizes paid | the period's prizes were credited |

Every `save` is ONE store transaction (scores and their dedupe markers together). The
standings are then mirrored into the cache's sorted set `lb:<zone>:<board>:<period>`
(Redis when `store.cache_url` is set), best effort: the database stays the truth and the
cache refills from it when it comes back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import msgspec

from persistence import CacheUnavailable, LeaderboardOp, LeaderboardRecord, Stores


class FinalRow(msgspec.Struct, frozen=True):
    """One row of a finished period's archived standings."""

    position: int
    rank: int
    user_id: str
    name: str
    score: int
    prize: int = 0


_final_enc = msgspec.msgpack.Encoder()
_final_dec = msgspec.msgpack.Decoder(FinalRow)


def board_id(zone: str, board: str) -> str:
    return f"{zone}:{board}"


def score_record(
    zone: str, board: str, period: int, owner: str, name: str, score: int, sub: int
) -> LeaderboardRecord:
    # the store ranks subscore descending; the rank index ranks it ascending (earlier first)
    return LeaderboardRecord(
        board_id=board_id(zone, board),
        period=str(period),
        owner_id=owner,
        score=score,
        subscore=-sub,
        meta=name.encode(),
    )


def marker(zone: str, board: str, family: str, period: int, owner: str, score: int = 1) -> LeaderboardRecord:
    return LeaderboardRecord(
        board_id=f"{board_id(zone, board)}#{family}", period=str(period), owner_id=owner, score=score
    )


def final_record(zone: str, board: str, period: int, row: FinalRow) -> LeaderboardRecord:
    return LeaderboardRecord(
        board_id=f"{board_id(zone, board)}#final",
        period=str(period),
        owner_id=row.user_id,
        score=row.score,
        subscore=-row.position,
        meta=_final_enc.encode(row),
    )


class BoardStore:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.lb = stores.backend.leaderboards

    async def save(self, records: Sequence[LeaderboardRecord]) -> None:
        """Write records in one transaction; mirror the standings into the cache."""
        if not records:
            return
        await self.lb.submit_scores(records, LeaderboardOp.SET)
        by_board: dict[str, dict[str, int]] = {}
        for r in records:
            if "#" not in r.board_id:
                by_board.setdefault(f"{r.board_id}:{r.period}", {})[r.owner_id] = r.score
        cache = self.stores.cache
        if by_board and cache.healthy:
            for key, scores in by_board.items():
                with contextlib.suppress(CacheUnavailable):
                    await cache.zadd(key, scores)

    async def standings(
        self, zone: str, board: str, period: int, limit: int
    ) -> list[tuple[str, str, int, int]]:
        """`(owner, name, score, rank-index subscore)` rows of a period, best first."""
        rows = await self.lb.top(board_id(zone, board), str(period), limit=limit)
        return [(r.owner_id, r.meta.decode(errors="replace"), r.score, -r.subscore) for r in rows]

    async def has(self, zone: str, board: str, family: str, period: int, owner: str) -> bool:
        got = await self.lb.get_score(f"{board_id(zone, board)}#{family}", str(period), owner)
        return got is not None

    async def owners(self, zone: str, board: str, family: str, period: int, limit: int) -> set[str]:
        rows = await self.lb.top(f"{board_id(zone, board)}#{family}", str(period), limit=limit)
        return {r.owner_id for r in rows}

    async def final(self, zone: str, board: str, period: int, limit: int = 10_000) -> list[FinalRow]:
        rows = await self.lb.top(f"{board_id(zone, board)}#final", str(period), limit=limit)
        out = [_final_dec.decode(r.meta) for r in rows]
        return sorted(out, key=lambda f: f.position)

    async def drop_markers(self, zone: str, board: str, period: int) -> None:
        """Forget a finished period's dedupe markers (the standings and archive stay)."""
        await self.lb.delete_period(f"{board_id(zone, board)}#seen", str(period))
