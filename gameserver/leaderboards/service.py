"""The leaderboard service: settled rounds in, snapshots and batched deltas out, prizes paid.

* **Scores** come from `RoundSettled` domain events (the casino publishes one after each
  commit). The consumer applies each to the boards of the event's zone that this member
  owns (`Ownership`), idempotently per round id (`rooms.leaderboards.board`). With a store,
  changed scores are checkpointed every `checkpoint_interval` in one transaction; with the Redis event bus
  the round ids go into that same transaction and the event is acknowledged only after it,
  so a redelivered event after a crash is recognised (see docs/leaderboards.md).
* **Ticks** (every `leaderboards.tick_interval`): each board's stream diffs its top N
  (skipped when nothing changed) and checks at most `rank_budget` own ranks; the delta is
  one `OutEvent` (encoded once per codec) pushed to every subscriber, at most
  `fanout_slice` pushes per loop iteration so sessions' traffic runs in between.
* **Period ends** archive the final standings and, for tournaments, credit the prize table
  exactly once through the ledger (`tournament.settle`); online players get
  `tournament_result` and `reward_granted`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from persistence import LeaderboardRecord, Stores
from protocol import leaderboard_messages as lm
from protocol.codes import ErrorCode
from protocol.errors import RequestError
from protocol.events import OutEvent
from rooms.leaderboards.board import Leaderboard, LeaderboardConfig, Outcome, RoundSettled as Round
from rooms.leaderboards.periods import ALL_TIME
from rooms.leaderboards.stream import LeaderboardStream, Snapshot

from ..casino import account_id
from ..config import Config, LeaderboardBoard
from ..domain import DomainEvent, RedisStreamEvents, RoundSettled
from ..hub import GUEST_ID_BASE
from .owner import Ownership
from .store import BoardStore, FinalRow, marker, score_record
from .tournament import prize_key, rank_rows, settle

if TYPE_CHECKING:
    from ..hub import Hub
    from ..player import Player

logger = logging.getLogger("croupier.leaderboards")

#: Rows restored per board at start-up, and archived at a period's end (at least top N and
#: every prize position).
RESTORE_LIMIT = 100_000
#: Finished periods checked for unpaid prizes at start-up (the server may have been down).
CATCH_UP_PERIODS = 3


@dataclass
class Board:
    """One board of a zone on its owner: the core board, its stream and local subscribers."""

    zone: str
    name: str
    cfg: LeaderboardBoard
    board: Leaderboard
    stream: LeaderboardStream
    #: owner id -> user id of the sessions on this worker that subscribed
    subscribers: dict[str, int] = field(default_factory=dict)
    #: players who joined the current period (join = "required")
    joined: set[str] = field(default_factory=set)
    joined_period: int = 0
    ended: bool = False  # past `ends_at`: settled, no more scores
    #: deltas of this board still being fanned out; while > 0 the board skips its ticks,
    #: so under overload the next delta covers several ticks (no gap, a bounded queue)
    sending: int = 0
    #: the last finished periods' results kept in memory: period start -> rows
    results: dict[int, list[FinalRow]] = field(default_factory=dict)
    #: periods whose settlement this owner started (an end that is also a reset: once)
    finishing: set[int] = field(default_factory=set)

    def counts(self, at: float) -> bool:
        c = self.cfg
        return not ((c.starts_at and at < c.starts_at) or (c.ends_at and at >= c.ends_at))

    def describe(self, owner: str, currency: str | None) -> dict[str, Any]:
        c, b = self.cfg, self.board
        return {
            "board": self.name,
            "title": c.title or self.name,
            "metric": str(c.metric),
            "operator": str(c.operator),
            "period": {"kind": c.period.kind, "timezone": c.period.timezone},
            "window": [b.start, b.end],
            "top_n": c.top_n,
            "tie_break": str(c.tie_break),
            "eligibility": {"games": list(c.eligibility.games), "min_bet": c.eligibility.min_bet},
            "prizes": list(c.prizes),
            "currency": currency if c.prizes else None,
            "join": c.join,
            "joined": owner in self.joined if c.join == "required" else True,
            "starts_at": c.starts_at or None,
            "ends_at": c.ends_at or None,
            "epoch": self.stream.epoch,
            "seq": self.stream.seq,
        }


@dataclass
class Stats:
    applied: int = 0
    unchanged: int = 0
    duplicates: int = 0
    ineligible: int = 0
    late: int = 0
    not_joined: int = 0
    ticks: int = 0
    skipped_ticks: int = 0  # board ticks skipped while its previous delta was still being sent
    deltas: int = 0
    rank_events: int = 0
    pushes: int = 0
    checkpoints: int = 0
    checkpoint_failures: int = 0
    settlements: int = 0
    tick_seconds_max: float = 0.0
    tick_seconds_total: float = 0.0


class Leaderboards:
    """The service the hub sends leaderboard requests to (gameserver/services.py)."""

    request_types = lm.LEADERBOARD_TYPES

    def __init__(
        self,
        hub: Hub,
        stores: Stores | None = None,
        config: Config | None = None,
        *,
        ownership: Ownership | None = None,
        instance: str | None = None,
    ) -> None:
        self.hub = hub
        self.stores = stores
        self.config = config or hub.config
        self.section = self.config.leaderboards
        self.ownership = ownership or Ownership(hub)
        self.instance = instance or secrets.token_hex(3)
        self.store = BoardStore(stores) if stores is not None else None
        self.stats = Stats()
        self.boards: dict[tuple[str, str], Board] = {}
        self.by_zone: dict[str, list[Board]] = {}
        #: the boards each local session subscribed to
        self.subs: dict[tuple[str, int], set[str]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.boot_ms = int(hub.clock.wall() * 1000)
        #: the Redis bus redelivers across restarts: keep round ids with the scores
        self.durable_dedupe = isinstance(hub.events, RedisStreamEvents) and stores is not None
        self._pending: dict[tuple[str, str, str], LeaderboardRecord] = {}
        self._flushing: asyncio.Task[None] | None = None
        self._checkpointed_at = float("-inf")  # perf_counter() of the last tick's checkpoint
        self._flushed: asyncio.Future[None] | None = None  # resolved by the next checkpoint
        self._fanout: deque[tuple[str, OutEvent, list[int], int, Board | None]] = deque()
        self._fanout_scheduled = False
        self._ticker: asyncio.Task[None] | None = None
        now = hub.clock.wall()
        for zone, boards in self.section.zones.items():
            for name, cfg in boards.items():
                self._add(zone, name, cfg, now)

    def _add(self, zone: str, name: str, cfg: LeaderboardBoard, now: float) -> None:
        core = LeaderboardConfig(
            id=name,
            metric=cfg.metric,
            operator=cfg.operator,
            period=cfg.period,
            eligibility=cfg.eligibility,
            top_n=cfg.top_n,
            tie_break=cfg.tie_break,
            neighbours=cfg.neighbours,
        )
        board = Leaderboard(core, now, seen_limit=self.section.seen_limit)
        stream = LeaderboardStream(
            board, instance=self.instance, history=self.section.history, rank_budget=self.section.rank_budget
        )
        b = Board(zone, name, cfg, board, stream, joined_period=board.start)
        self.boards[(zone, name)] = b
        self.by_zone.setdefault(zone, []).append(b)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, *, tick: bool = True) -> None:
        """Restore the current periods from the store, pay what a restart left unpaid,
        subscribe to settled rounds and start the tick driver."""
        cluster = self.config.cluster
        if self.boards and (cluster.workers != 1 or cluster.nodes):
            logger.warning(
                "leaderboards run on every worker with the rounds of that worker only: the "
                "cross-worker hop (Ownership.forward) is not connected yet (docs/leaderboards.md)"
            )
        if self.store is not None:
            for b in self.boards.values():
                if self.ownership.owns_board(b.zone, b.name):
                    await self._restore(b)
        self.hub.events.subscribe(f"leaderboards@{self.ownership.me}", self.on_event)
        if self.store is not None:
            for b in self.boards.values():
                if self.ownership.owns_board(b.zone, b.name):
                    await self._catch_up(b)
        if tick:
            self._ticker = asyncio.get_running_loop().create_task(self._drive(), name="leaderboards")

    async def _restore(self, b: Board) -> None:
        assert self.store is not None
        start = b.board.start
        rows = await self.store.standings(b.zone, b.name, start, RESTORE_LIMIT)
        if rows:
            b.board.restore(rows)
            b.stream.tick(self.hub.clock.wall())  # the restored top becomes the stream's base
        if b.cfg.join == "required":
            b.joined = await self.store.owners(b.zone, b.name, "joined", start, RESTORE_LIMIT)
            b.joined_period = start
        if self.stores is not None and rows:
            with contextlib.suppress(Exception):
                await self.stores.refill_leaderboard(f"{b.zone}:{b.name}", str(start))

    async def _catch_up(self, b: Board) -> None:
        """Settle recent finished periods a crash or a stop left unsettled (idempotent)."""
        if b.cfg.period.kind == "all_time" and not b.cfg.ends_at:
            return
        now = self.hub.clock.wall()
        starts: list[int] = []
        if b.cfg.ends_at and now >= b.cfg.ends_at:
            b.ended = True
            starts.append(b.board.period.window(b.cfg.ends_at - 1)[0])
        elif b.cfg.period.kind != "all_time":
            start = b.board.start
            for _ in range(CATCH_UP_PERIODS):
                start = b.board.period.window(start - 1)[0]
                if b.cfg.starts_at and start < b.board.period.window(b.cfg.starts_at)[0]:
                    break
                starts.append(start)
        for start in starts:
            await self._settle(b, start, None)

    async def drain(self) -> None:
        """Stop ticking, checkpoint what is pending, finish settlements in flight."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self.flush()
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def _drive(self) -> None:
        interval = self.section.tick_interval
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = max(next_at + interval, loop.time())  # no catch-up burst after a stall
            try:
                self.tick()
            except Exception:
                logger.exception("leaderboard tick failed")

    # -- scores ------------------------------------------------------------------------

    def on_event(self, event: DomainEvent) -> Awaitable[None] | None:
        """The event bus consumer: apply a settled round to the zone's boards owned here."""
        if not isinstance(event, RoundSettled):
            return None
        boards = self.by_zone.get(event.zone)
        if not boards:
            return None
        if self.durable_dedupe and (
            event.at_ms < self.boot_ms or any(event.at_ms / 1000 <= b.board.forgotten_until for b in boards)
        ):
            return self._apply_checked(event, boards)  # perhaps counted before a restart (or forgotten)
        self._apply(event, boards, ())
        return self._durable()

    async def _apply_checked(self, event: RoundSettled, boards: list[Board]) -> None:
        assert self.store is not None
        at = event.at_ms / 1000
        counted = set()
        for b in boards:
            start = b.board.period.window(at)[0]
            if await self.store.has(b.zone, b.name, "seen", start, event.event_id):
                counted.add(b.name)
                if start == b.board.start:
                    b.board.mark_seen(event.event_id)
        self._apply(event, boards, counted)
        waiter = self._durable()
        if waiter is not None:
            await waiter

    def _apply(self, event: RoundSettled, boards: list[Board], skip: set[str] | tuple[()]) -> None:
        at = event.at_ms / 1000
        owner = str(event.user_id)
        rnd = Round(event.event_id, owner, event.name, event.game, event.stake, event.win, at)
        st = self.stats
        for b in boards:
            if b.name in skip:
                st.duplicates += 1
                continue
            if not self.ownership.owns_board(b.zone, b.name):
                self.ownership.foreign_scores += 1
                continue
            if not b.counts(at) or b.ended:
                st.ineligible += 1
                continue
            board = b.board
            if at >= board.end:
                board.roll(at)
            if b.cfg.join == "required":
                if b.joined_period != board.start:
                    b.joined, b.joined_period = set(), board.start
                if owner not in b.joined:
                    st.not_joined += 1
                    continue
            outcome = board.apply(rnd)
            if outcome is Outcome.APPLIED:
                st.applied += 1
                if self.store is not None:
                    self._remember(b, owner, event.event_id)
            elif outcome is Outcome.DUPLICATE:
                st.duplicates += 1
            elif outcome is Outcome.UNCHANGED:
                st.unchanged += 1
            elif outcome is Outcome.LATE:
                st.late += 1
            else:
                st.ineligible += 1

    def _remember(self, b: Board, owner: str, round_id: str) -> None:
        board = b.board
        got = board.index.get(owner)
        assert got is not None
        rec = score_record(b.zone, b.name, board.start, owner, board.names.get(owner, ""), got[0], got[1])
        self._pending[(rec.board_id, rec.period, owner)] = rec
        if self.durable_dedupe:
            m = marker(b.zone, b.name, "seen", board.start, round_id)
            self._pending[(m.board_id, m.period, round_id)] = m

    def _durable(self) -> asyncio.Future[None] | None:
        """With the Redis bus: a future the next checkpoint resolves (the event is then acked)."""
        if not self.durable_dedupe:
            return None
        if self._flushed is None:
            self._flushed = asyncio.get_running_loop().create_future()
        return self._flushed

    async def flush(self) -> None:
        """Checkpoint pending scores (and dedupe markers) in one store transaction."""
        while self._flushing is not None and not self._flushing.done():
            await asyncio.wait([self._flushing])
        if self._pending or self._flushed is not None:
            self._flushing = asyncio.get_running_loop().create_task(self._checkpoint())
            await asyncio.wait([self._flushing])

    async def _checkpoint(self) -> None:
        records, self._pending = list(self._pending.values()), {}
        waiter, self._flushed = self._flushed, None
        try:
            if self.store is not None:
                await self.store.save(records)
            self.stats.checkpoints += 1
        except Exception as exc:
            self.stats.checkpoint_failures += 1
            logger.warning("leaderboard checkpoint of %d records failed: %s (retried)", len(records), exc)
            for r in records:  # newer values written meanwhile win
                self._pending.setdefault((r.board_id, r.period, r.owner_id), r)
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)  # not acknowledged: the bus redelivers
                waiter.exception()  # retrieved here; the bus sees it through its own await
            return
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the tick ----------------------------------------------------------------------

    def tick(self) -> None:
        """One tick of every board owned here: deltas, own ranks, resets; then a checkpoint."""
        started = time.perf_counter()
        now = self.hub.clock.wall()
        st = self.stats
        for b in self.boards.values():
            if not self.ownership.owns_board(b.zone, b.name):
                continue
            if b.cfg.ends_at and now >= b.cfg.ends_at and not b.ended:
                b.ended = True
                self._finish(b, b.board.start, b.board.index.top(self._archive_size(b)), b.board.names)
            if b.sending:
                st.skipped_ticks += 1
                continue
            t = b.stream.tick(now)
            if t.delta is not None:
                st.deltas += 1
                if t.delta.prev_epoch is not None and b.board.previous is not None:
                    (_id, start), index, names = b.board.previous
                    if not (b.cfg.ends_at and start >= b.cfg.ends_at) and start < ALL_TIME[1]:
                        self._finish(b, start, index.top(self._archive_size(b)), names)
                if b.subscribers:
                    self._send(b.zone, OutEvent(lm.DELTA_EVENT, t.delta), list(b.subscribers.values()), b)
            for mine in t.mine:
                uid = b.subscribers.get(mine.user_id)
                if uid is not None:
                    st.rank_events += 1
                    data = {"board_id": b.name, "epoch": mine.epoch, "seq": mine.seq, "me": mine.me}
                    self._send(b.zone, OutEvent(lm.RANK_EVENT, data), [uid])
        idle = self._flushing is None or self._flushing.done()
        due = started - self._checkpointed_at >= self.section.checkpoint_interval
        if idle and due and (self._pending or self._flushed is not None):
            self._checkpointed_at = started
            self._flushing = asyncio.get_running_loop().create_task(self._checkpoint())
        st.ticks += 1
        took = time.perf_counter() - started
        st.tick_seconds_total += took
        st.tick_seconds_max = max(st.tick_seconds_max, took)

    def _archive_size(self, b: Board) -> int:
        return max(b.cfg.top_n, len(b.cfg.prizes))

    def _finish(self, b: Board, start: int, top: list[Any], names: dict[str, str]) -> None:
        """A period ended on this owner: archive and pay it in the background."""
        if start in b.finishing:
            return
        b.finishing.add(start)
        if len(b.finishing) > 16:
            b.finishing.discard(min(b.finishing))
        rows = [(r.owner_id, names.get(r.owner_id, ""), r.score) for r in top]
        task = asyncio.get_running_loop().create_task(self._settle(b, start, rows))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _settle(self, b: Board, start: int, rows: list[tuple[str, str, int]] | None) -> None:
        zc = self.config.casino.zones.get(b.zone)
        if self.stores is None:
            final = rank_rows(rows or [], b.cfg.tie_break, b.cfg.prizes)
            b.results[start] = final
            self._notify(b, start, final, None)
            return
        if rows is not None:
            await self.flush()  # the period's last scores are stored before its archive
        account = {}
        for owner in [r[0] for r in rows] if rows else []:
            account[owner] = self._account(b.zone, owner)
        delay = 0.5
        for attempt in range(8):
            try:
                if rows is None:  # catch-up: winners come from the store
                    assert self.store is not None
                    stored = await self.store.final(b.zone, b.name, start)
                    standing = await self.store.standings(b.zone, b.name, start, self._archive_size(b))
                    for owner in [f.user_id for f in stored] + [r[0] for r in standing]:
                        account[owner] = self._account(b.zone, owner)
                final, did = await settle(
                    self.stores,
                    zone=b.zone,
                    board=b.name,
                    period=start,
                    tie_break=b.cfg.tie_break,
                    prizes=b.cfg.prizes,
                    archive=self._archive_size(b),
                    rows=rows,
                    account=account,
                    house=zc.house(b.zone) if zc is not None else "",
                    currency=zc.currency if zc is not None else "",
                )
                break
            except Exception as exc:
                logger.warning(
                    "settling %s/%s period %s failed (attempt %d): %s", b.zone, b.name, start, attempt, exc
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        else:
            logger.error("settling %s/%s period %s gave up: the next start-up retries", b.zone, b.name, start)
            return
        b.results[start] = final
        for old in sorted(b.results)[:-4]:
            del b.results[old]
        if not did:
            return
        self.stats.settlements += 1
        if self.durable_dedupe and self.store is not None:
            with contextlib.suppress(Exception):
                await self.store.drop_markers(b.zone, b.name, start)
        self._notify(b, start, final, zc.currency if zc is not None else None)

    def _account(self, zone: str, owner: str) -> str:
        uid = int(owner)
        casino = self.hub.casino
        run = casino.run_id if casino is not None and uid >= GUEST_ID_BASE else None
        return account_id(zone, uid, run)

    def _notify(self, b: Board, start: int, final: list[FinalRow], currency: str | None) -> None:
        window = [start, b.board.period.window(start)[1]]
        casino = self.hub.casino
        for row in final:
            uid = int(row.user_id)
            self.ownership.to_user(
                b.zone,
                uid,
                OutEvent(
                    lm.RESULT_EVENT,
                    {
                        "board_id": b.name,
                        "period": start,
                        "window": window,
                        "position": row.position,
                        "rank": row.rank,
                        "score": row.score,
                        "prize": row.prize,
                        "currency": currency,
                    },
                ),
            )
            if row.prize > 0 and currency is not None:
                self.ownership.to_user(
                    b.zone,
                    uid,
                    OutEvent(
                        lm.REWARD_EVENT,
                        {
                            "source": "tournament",
                            "board_id": b.name,
                            "period": start,
                            "amount": row.prize,
                            "currency": currency,
                            "key": prize_key(b.zone, b.name, start, row.position),
                        },
                    ),
                )
                if casino is not None:  # the cached balance is stale now: reload it
                    wallet = casino.wallets.get((b.zone, uid))
                    if wallet is not None and not wallet.lock.locked():
                        wallet.balance = None

    # -- fan-out -----------------------------------------------------------------------

    def _send(self, zone: str, event: OutEvent, uids: list[int], board: Board | None = None) -> None:
        """Queue pushes; `board`: a delta of that board (it skips ticks until it is sent)."""
        if board is not None:
            board.sending += 1
        self._fanout.append((zone, event, uids, 0, board))
        if not self._fanout_scheduled:
            self._fanout_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        """Push at most `fanout_slice` events, then yield to the loop if more are queued."""
        budget = self.section.fanout_slice
        queue = self._fanout
        to_user = self.ownership.to_user
        pushed = 0
        while queue and budget > 0:
            zone, event, uids, i, board = queue[0]
            end = min(len(uids), i + budget)
            for uid in uids[i:end]:
                to_user(zone, uid, event)
            pushed += end - i
            budget -= end - i
            if end >= len(uids):
                queue.popleft()
                if board is not None:
                    board.sending -= 1
            else:
                queue[0] = (zone, event, uids, end, board)
        self.stats.pushes += pushed
        self.hub.counters.events += pushed
        if queue:
            asyncio.get_running_loop().call_soon(self._pump)
        else:
            self._fanout_scheduled = False

    # -- requests ----------------------------------------------------------------------

    def handle(self, player: Player, req: Any) -> None:
        if isinstance(req, lm.LeaderboardList):
            zc = self.config.casino.zones.get(player.zone)
            currency = zc.currency if zc is not None else None
            owner = str(player.user_id)
            boards = [b.describe(owner, currency) for b in self.by_zone.get(player.zone, [])]
            mine = self.subs.get((player.zone, player.user_id), set())
            for d in boards:
                d["subscribed"] = d["board"] in mine
            self.hub.reply_to(player, req.id, {"boards": boards})
            return
        b = self._board(player, req.board)
        if isinstance(req, lm.LeaderboardSubscribe):
            self.hub.reply_to(player, req.id, self.subscribe(player, b))
        elif isinstance(req, lm.LeaderboardUnsubscribe):
            self.unsubscribe(player, b)
            self.hub.reply_to(player, req.id, {"board": b.name, "subscribed": False})
        elif isinstance(req, lm.LeaderboardSnapshot):
            deltas = None
            if req.epoch is not None and req.seq is not None:
                deltas = b.stream.recover(req.epoch, req.seq)
            if deltas is not None:
                self.hub.reply_to(player, req.id, {"board": b.name, "deltas": deltas, "snapshot": None})
            else:
                snap = b.stream.snapshot(str(player.user_id))
                self.hub.reply_to(player, req.id, {"board": b.name, "deltas": None, "snapshot": snap})
        elif isinstance(req, lm.LeaderboardJoin):
            self._join(player, req.id, b)
        elif isinstance(req, lm.LeaderboardResults):
            self._spawn(self._results(player, req, b))

    def _board(self, player: Player, name: str) -> Board:
        b = self.boards.get((player.zone, name))
        if b is None:
            raise RequestError(ErrorCode.BOARD_NOT_FOUND, f"no leaderboard {name!r} in this zone")
        if not self.ownership.owns_board(b.zone, b.name):
            raise RequestError(ErrorCode.NOT_SUPPORTED, "this board is owned by another worker")
        return b

    def subscribe(self, player: Player, b: Board) -> Snapshot:
        key = (player.zone, player.user_id)
        mine = self.subs.setdefault(key, set())
        if b.name not in mine and len(mine) >= self.section.max_subscriptions:
            raise RequestError(
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                f"at most {self.section.max_subscriptions} boards per session",
            )
        owner = str(player.user_id)
        snap = b.stream.subscribe(owner)
        b.subscribers[owner] = player.user_id
        mine.add(b.name)
        return snap

    def unsubscribe(self, player: Player, b: Board) -> None:
        owner = str(player.user_id)
        if b.subscribers.pop(owner, None) is not None:
            b.stream.unsubscribe(owner)
        mine = self.subs.get((player.zone, player.user_id))
        if mine is not None:
            mine.discard(b.name)

    def _join(self, player: Player, rid: int, b: Board) -> None:
        if b.cfg.join != "required":
            raise RequestError(ErrorCode.JOIN_NOT_REQUIRED, f"{b.name!r} counts every eligible player")
        now = self.hub.clock.wall()
        if b.ended or not b.counts(now):
            raise RequestError(ErrorCode.TOURNAMENT_CLOSED, f"{b.name!r} is not running now")
        board = b.board
        if now >= board.end:
            board.roll(now)
        if b.joined_period != board.start:
            b.joined, b.joined_period = set(), board.start
        owner = str(player.user_id)
        reply = {"board": b.name, "period": board.start, "joined": True}
        if owner in b.joined or self.store is None:
            b.joined.add(owner)
            self.hub.reply_to(player, rid, reply)
            return
        store = self.store

        async def durable() -> None:
            error = None
            try:
                await store.save([marker(b.zone, b.name, "joined", board.start, owner)])
                if b.joined_period == reply["period"]:
                    b.joined.add(owner)
            except Exception as exc:
                logger.warning("join %s/%s failed: %s", b.zone, b.name, exc)
                error = RequestError(ErrorCode.UNAVAILABLE, "the store is unavailable: retry")
            self.hub.reply_to(player, rid, None if error else reply, error)

        self._spawn(durable())

    async def _results(self, player: Player, req: lm.LeaderboardResults, b: Board) -> None:
        period = req.period
        if period is None:
            period = b.board.period.window(b.board.start - 1)[0] if b.board.start > 0 else 0
            if b.ended:
                period = b.board.start
        rows = b.results.get(period)
        if rows is None and self.store is not None:
            try:
                rows = await self.store.final(b.zone, b.name, period) or None
            except Exception:
                self.hub.reply_to(
                    player,
                    req.id,
                    None,
                    RequestError(ErrorCode.UNAVAILABLE, "the store is unavailable: retry"),
                )
                return
        if not rows:
            error = RequestError(ErrorCode.RESULTS_NOT_FOUND, f"no results of {b.name!r} for period {period}")
            self.hub.reply_to(player, req.id, None, error)
            return
        owner = str(player.user_id)
        me = next((r for r in rows if r.user_id == owner), None)
        zc = self.config.casino.zones.get(b.zone)
        data = {
            "board": b.name,
            "period": period,
            "window": [period, b.board.period.window(period)[1]],
            "standings": rows[: req.limit],
            "me": me,
            "currency": zc.currency if zc is not None and b.cfg.prizes else None,
        }
        self.hub.reply_to(player, req.id, data)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- metrics -----------------------------------------------------------------------

    def metric_families(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """Prometheus families, read at scrape time (gameserver/metrics.py)."""
        st = self.stats
        rounds = CounterMetricFamily(
            "croupier_leaderboard_rounds", "Settled rounds seen by the boards, by outcome", labels=["outcome"]
        )
        for name in ("applied", "unchanged", "duplicates", "ineligible", "late", "not_joined"):
            rounds.add_metric([name], getattr(st, name))
        yield rounds
        yield CounterMetricFamily("croupier_leaderboard_ticks", "Leaderboard ticks", value=st.ticks)
        yield CounterMetricFamily(
            "croupier_leaderboard_skipped_ticks",
            "Board ticks skipped while the previous delta was still being sent (overload)",
            value=st.skipped_ticks,
        )
        yield CounterMetricFamily("croupier_leaderboard_deltas", "Top-N deltas emitted", value=st.deltas)
        yield CounterMetricFamily(
            "croupier_leaderboard_pushes", "Leaderboard events pushed to sessions", value=st.pushes
        )
        yield CounterMetricFamily(
            "croupier_leaderboard_checkpoint_failures",
            "Score checkpoints that failed",
            value=st.checkpoint_failures,
        )
        yield CounterMetricFamily(
            "croupier_leaderboard_settlements", "Finished periods archived and paid", value=st.settlements
        )
        yield GaugeMetricFamily(
            "croupier_leaderboard_tick_max_seconds",
            "Longest leaderboard tick so far",
            value=st.tick_seconds_max,
        )
        yield GaugeMetricFamily(
            "croupier_leaderboard_fanout_queue",
            "Fan-out jobs waiting for a loop iteration",
            value=len(self._fanout),
        )
        subs = GaugeMetricFamily(
            "croupier_leaderboard_subscribers", "Local subscribers per board", labels=["zone", "board"]
        )
        for (zone, name), b in sorted(self.boards.items()):
            subs.add_metric([zone, name], len(b.subscribers))
        yield subs

    # -- sessions ----------------------------------------------------------------------

    def player_joined(self, player: Player) -> None:
        pass

    def player_left(self, player: Player) -> None:
        names = self.subs.pop((player.zone, player.user_id), None)
        owner = str(player.user_id)
        for name in names or ():
            b = self.boards.get((player.zone, name))
            if b is not None and b.subscribers.pop(owner, None) is not None:
                b.stream.unsubscribe(owner)
