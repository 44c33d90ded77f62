"""The end of a period: archive the final standings, credit the prizes exactly once.

Steps, each safe to repeat (a crash or a second run at any point changes nothing twice):

1. the final standings: the archive if one exists (a re-run never re-ranks), else the
   standings given (the owner's memory) or read from the store, ranked with the board's
   tie-break; prizes from the prize table (`prize_shares`: a tie group with SPLIT shares
   the prizes of the positions it occupies);
2. archive them (`#final` rows) in one store transaction;
3. for each position with a prize, one ledger transaction from the zone's house account
   to the winner, with the idempotency key `tournament:<zone>:<board>:<period>:<position>`:
   committing it again posts nothing;
4. mark the period paid (`#paid`), so a restart does not even try again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import msgspec

from persistence import PostingKind, Stores, Txn, transfer
from rooms.leaderboards.board import Standing, TieBreak, prize_shares

from .store import BoardStore, FinalRow, final_record, marker

logger = logging.getLogger("croupier.leaderboards")

_enc = msgspec.msgpack.Encoder()


def prize_key(zone: str, board: str, period: int, position: int) -> str:
    return f"tournament:{zone}:{board}:{period}:{position}"


def rank_rows(
    rows: Sequence[tuple[str, str, int]], tie_break: TieBreak, prizes: Sequence[int]
) -> list[FinalRow]:
    """`(owner, name, score)` rows in final order -> ranked rows with their prizes."""
    standings: list[Standing] = []
    for i, (owner, name, score) in enumerate(rows, 1):
        rank = i
        if tie_break == TieBreak.SPLIT and standings and standings[-1].score == score:
            rank = standings[-1].rank
        standings.append(Standing(i, rank, owner, name, score))
    shares = prize_shares(standings, list(prizes))
    return [
        FinalRow(s.position, s.rank, s.user_id, s.name, s.score, shares.get(s.user_id, 0)) for s in standings
    ]


async def settle(
    stores: Stores,
    *,
    zone: str,
    board: str,
    period: int,
    tie_break: TieBreak,
    prizes: Sequence[int],
    archive: int,
    rows: Sequence[tuple[str, str, int]] | None,
    account: dict[str, str] | None = None,
    house: str = "",
    currency: str = "",
) -> tuple[list[FinalRow], bool]:
    """Archive and pay one finished period; returns (final rows, whether this call did it).

    `account` maps a winner's user id to its wallet account (built by the caller).
    """
    bs = BoardStore(stores)
    if await bs.has(zone, board, "paid", period, "all"):
        return await bs.final(zone, board, period), False
    final = await bs.final(zone, board, period)
    if not final:
        if rows is None:
            stored = await bs.standings(zone, board, period, archive)
            rows = [(owner, name, score) for owner, name, score, _sub in stored]
        final = rank_rows(rows[:archive], tie_break, prizes)
        if not final:
            return [], False  # nobody scored: nothing to archive or pay
        await bs.save([final_record(zone, board, period, r) for r in final])
    total = 0
    for row in final:
        if row.prize <= 0:
            continue
        to = (account or {}).get(row.user_id)
        if to is None:
            logger.error(
                "no wallet account for %s (prize %s of %s:%s)", row.user_id, row.prize, board, period
            )
            continue
        txn = Txn(
            key=prize_key(zone, board, period, row.position),
            entries=transfer(house, to, currency, row.prize, PostingKind.PRIZE),
            reply=_enc.encode(
                {"board": board, "period": period, "position": row.position, "prize": row.prize}
            ),
        )
        await stores.commit(txn)
        total += row.prize
    await bs.save([marker(zone, board, "paid", period, "all", total)])
    return final, True
