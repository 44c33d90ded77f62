"""The leaderboard service: settled rounds in, snapshots and batched deltas out, prizes paid.

* **Scores** come from `RoundSettled` domain events (the casino publishes one after each
  commit), and for boards of metric `mission_points` from `MissionCompleted` events (the
  rewards service publishes one per rewarded mission instance). The consumer applies each
  to the boards of the event's zone that this member owns (`Ownership`), idempotently per round id (`rooms.leaderboards.board`). With a store,
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
* **Across workers** (`join_cluster`): only a board's owner holds it; the others cast it
  their rounds (`lb.score`), call it for their sessions' requests (`lb.req`, `lb.list`)
  and get its events back once per member (`lb.push`); session ends (`lb.gone`), restarts
  (`lb.hello`) and ring changes (`lb.handoff`) keep the subscribers and standings right
  (docs/leaderboards.md, "Across workers").
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from persistence import LeaderboardRecord, Stores
from protocol import leaderboard_messages as lm
from protocol.codes import ErrorCode
from protocol.errors import RequestError
from protocol.events import OutEvent
from rooms.leaderboards.board import Leaderboard, LeaderboardConfig, Metric, Outcome, RoundSettled as Round
from rooms.leaderboards.periods import ALL_TIME
from rooms.leaderboards.stream import LeaderboardStream, Snapshot

from ..bus import BusError, RemoteError
from ..casino import account_id
from ..config import Config, LeaderboardBoard
from ..domain import DomainEvent, MissionCompleted, RedisStreamEvents, RoundSettled
from ..hub import GUEST_ID_BASE
from ..services import stop_task
from .owner import PUSH, Ownership
from .store import BoardStore, FinalRow, marker, score_record
from .tournament import prize_key, rank_rows, settle

if TYPE_CHECKING:
    from ..hub import Hub
    from ..player import Player
    from ..sharding import ShardedRouter

logger = logging.getLogger("croupier.leaderboards")

#: Rows restored per board at start-up, and archived at a period's end (at least top N and
#: every prize position).
RESTORE_LIMIT = 100_000
#: Finished periods checked for unpaid prizes at start-up (the server may have been down).
CATCH_UP_PERIODS = 3

#: Bus messages between members (docs/leaderboards.md, "Across workers"): a settled round
#: for the boards a member owns (cast, the encoded event); a request for one of its boards
#: (call: `[zone, user, encoded request]`); its boards described for `leaderboard_list`
#: (call: `[zone, user]`); a session's subscriptions that ended (cast: `[zone, user,
#: [boards]]`); a member (re)started (cast). `lb.push` (owner.py) carries the events.
SCORE, REQUEST, LIST, GONE, HELLO = "lb.score", "lb.req", "lb.list", "lb.gone", "lb.hello"
#: A board's standings, joined players and subscribers, from its previous owner after a
#: ring change (cast: `[zone, board, period, rows, subscribers, joined]`).
HANDOFF = "lb.handoff"
#: Seconds a new owner logs the rounds it applies (a hand-off may come meanwhile), and
#: at most how many.
HANDOFF_WINDOW = 30.0
HANDOFF_LOG = 100_000

_event_enc = msgspec.msgpack.Encoder()
#: what scores a board: rounds, or (boards of metric `mission_points`) rewarded missions
Scored = RoundSettled | MissionCompleted
_score_dec = msgspec.msgpack.Decoder(Scored)
_req_enc = msgspec.msgpack.Encoder()
_req_dec = msgspec.msgpack.Decoder(
    lm.LeaderboardSubscribe
    | lm.LeaderboardUnsubscribe
    | lm.LeaderboardSnapshot
    | lm.LeaderboardJoin
    | lm.LeaderboardResults
)


def _initial_ownership(hub: Hub) -> Ownership:
    """The router's ring when the hub has one; a cluster worker's ring before its router is
    attached (so that it restores and settles only its own boards); else alone."""
    from ..sharding import ShardedRouter

    router = hub.router
    if isinstance(router, ShardedRouter):
        return Ownership(hub, router.shards.ring, router.me)
    info = getattr(hub, "info", None)  # gameserver/worker.py: ClusterInfo
    if info is not None:
        return Ownership(hub, info.ring, info.member)
    return Ownership(hub)


@dataclass
class Board:
    """One board of a zone on its owner: the core board, its stream and local subscribers."""

    zone: str
    name: str
    cfg: LeaderboardBoard
    board: Leaderboard
    stream: LeaderboardStream
    #: owner id -> user id of the subscribed sessions (here, or on the member in `homes`)
    subscribers: dict[str, int] = field(default_factory=dict)
    #: owner id -> the member whose session subscribed (only for sessions elsewhere)
    homes: dict[str, str] = field(default_factory=dict)
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
    #: rounds applied since this member came to own the board (until `log_until`, wall
    #: time): replayed over the previous owner's standings when its hand-off arrives
    log: list[Scored] | None = None
    log_until: float = 0.0

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
    handoffs: int = 0  # boards received from their previous owner after a ring change
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
        self.ownership = ownership or _initial_ownership(hub)
        self.instance = instance or secrets.token_hex(3)
        self.store = BoardStore(stores) if stores is not None else None
        self.stats = Stats()
        self.boards: dict[tuple[str, str], Board] = {}
        self.by_zone: dict[str, list[Board]] = {}
        #: the boards each local session subscribed to
        self.subs: dict[tuple[str, int], set[str]] = {}
        #: this process took over its predecessor's sessions (and their subscriptions)
        self._adopted = False
        self.tasks: set[asyncio.Task[Any]] = set()
        self.boot_ms = int(hub.clock.wall() * 1000)
        #: the Redis bus redelivers across restarts: keep round ids with the scores
        self.durable_dedupe = isinstance(hub.events, RedisStreamEvents) and stores is not None
        #: with the Redis bus every member reads every round itself: no `lb.score` casts
        self.shared_events = isinstance(hub.events, RedisStreamEvents)
        self._pending: dict[tuple[str, str, str], LeaderboardRecord] = {}
        self._flushing: asyncio.Task[None] | None = None
        self._checkpointed_at = float("-inf")  # perf_counter() of the last tick's checkpoint
        self._flushed: asyncio.Future[None] | None = None  # resolved by the next checkpoint
        self._fanout: deque[tuple[str, OutEvent, list[int], int, Board | None]] = deque()
        self._fanout_scheduled = False
        self._ticker: asyncio.Task[None] | None = None
        self._announcing: asyncio.Task[None] | None = None
        #: the ring the boards were last distributed by, and the boards owned then
        self._ring = self.ownership.ring
        self._owned: set[tuple[str, str]] = set()
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
        from ..sharding import ShardedRouter

        if isinstance(self.hub.router, ShardedRouter):
            self.join_cluster(self.hub.router)

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
        await stop_task(self._ticker)
        self._ticker = None
        if self._announcing is not None:
            self._announcing.cancel()
        if self.ownership.ring is not self._ring:  # a leaver hands its boards off first
            self._ring_changed()
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
        if not isinstance(event, RoundSettled | MissionCompleted):
            return None
        boards = self.by_zone.get(event.zone)
        if not boards:
            return None
        if not self.shared_events and not self.ownership.alone:
            self._cast_scores(event, boards)  # to the owners of the zone's other boards
        if self.durable_dedupe and (
            event.at_ms < self.boot_ms or any(event.at_ms / 1000 <= b.board.forgotten_until for b in boards)
        ):
            return self._apply_checked(event, boards)  # perhaps counted before a restart (or forgotten)
        self._apply(event, boards, ())
        return self._durable()

    async def _apply_checked(self, event: Scored, boards: list[Board]) -> None:
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

    def _apply(self, event: Scored, boards: list[Board], skip: set[str] | tuple[()]) -> None:
        at = event.at_ms / 1000
        owner = str(event.user_id)
        if isinstance(event, MissionCompleted):  # `game` is the mission: a board's `games` can name missions
            mission, rnd = (
                True,
                Round(event.event_id, owner, event.name, event.mission, 0, 0, at, event.points),
            )
        else:
            mission, rnd = (
                False,
                Round(event.event_id, owner, event.name, event.game, event.stake, event.win, at),
            )
        st = self.stats
        for b in boards:
            if (b.cfg.metric is Metric.MISSION_POINTS) is not mission:
                continue  # rounds score the other metrics, missions only mission points
            if b.name in skip:
                st.duplicates += 1
                continue
            if not self.ownership.owns_board(b.zone, b.name):
                self.ownership.foreign_scores += 1
                continue
            if b.log is not None:
                self._log(b, event)
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
        if self.ownership.ring is not self._ring:
            self._ring_changed()
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
                    house=self._house(b.zone, zc),
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
        if casino is not None and uid >= GUEST_ID_BASE:  # a guest's wallet names its session
            wallet = casino.wallets.get((zone, uid))
            return wallet.account if wallet is not None else account_id(zone, uid, casino.run_id)
        return account_id(zone, uid)

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
        zone, uid = player.zone, player.user_id
        if isinstance(req, lm.LeaderboardList):
            self._list(player, req)
            return
        b = self.boards.get((zone, req.board))
        if b is None:
            raise RequestError(ErrorCode.BOARD_NOT_FOUND, f"no leaderboard {req.board!r} in this zone")
        if isinstance(req, lm.LeaderboardSubscribe):
            mine = self.subs.get((zone, uid), set())
            if b.name not in mine and len(mine) >= self.section.max_subscriptions:
                raise RequestError(
                    ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                    f"at most {self.section.max_subscriptions} boards per session",
                )
        if not self.ownership.owns_board(zone, b.name):
            self._spawn(self._remote(player, req, b))
            return
        result = self._serve(zone, uid, req, b, None)
        if inspect.isawaitable(result):
            self._spawn(self._reply_later(player, req.id, result))
            return
        self._subscribed(player, req, b)
        self.hub.reply_to(player, req.id, result)

    def _serve(self, zone: str, uid: int, req: Any, b: Board, home: str | None) -> Any:
        """A board request on its owner, for the user `uid` of member `home` (None: here).

        Returns the reply data, or an awaitable of it; raises `RequestError`."""
        if isinstance(req, lm.LeaderboardSubscribe):
            return self._add_subscriber(b, uid, home)
        if isinstance(req, lm.LeaderboardUnsubscribe):
            self._drop_subscriber(b, str(uid))
            return {"board": b.name, "subscribed": False}
        if isinstance(req, lm.LeaderboardSnapshot):
            deltas = None
            if req.epoch is not None and req.seq is not None:
                deltas = b.stream.recover(req.epoch, req.seq)
            if deltas is not None:
                return {"board": b.name, "deltas": deltas, "snapshot": None}
            return {"board": b.name, "deltas": None, "snapshot": b.stream.snapshot(str(uid))}
        if isinstance(req, lm.LeaderboardJoin):
            return self._join(uid, b)
        if isinstance(req, lm.LeaderboardResults):
            return self._results(uid, req, b)
        raise RequestError(ErrorCode.NOT_SUPPORTED, f"unknown leaderboard request {type(req).__name__}")

    async def _reply_later(self, player: Player, rid: int, result: Awaitable[Any]) -> None:
        try:
            data = await result
        except RequestError as exc:
            self.hub.reply_to(player, rid, None, exc)
            return
        self.hub.reply_to(player, rid, data)

    def _subscribed(self, player: Player, req: Any, b: Board) -> None:
        """The home's own record of a session's boards (limits, `list`, the session's end)."""
        key = (player.zone, player.user_id)
        if isinstance(req, lm.LeaderboardSubscribe):
            self.subs.setdefault(key, set()).add(b.name)
        elif isinstance(req, lm.LeaderboardUnsubscribe):
            mine = self.subs.get(key)
            if mine is not None:
                mine.discard(b.name)
                if not mine:
                    del self.subs[key]

    async def _remote(self, player: Player, req: Any, b: Board) -> None:
        """A request for a board owned elsewhere: a bus call to its owner."""
        owner = self.ownership.board_owner(b.zone, b.name)
        try:
            data = await self._call(owner, REQUEST, [b.zone, player.user_id, _req_enc.encode(req)])
        except RequestError as exc:
            self.hub.reply_to(player, req.id, None, exc)
            return
        key = (player.zone, player.user_id)
        if isinstance(req, lm.LeaderboardSubscribe) and self.hub.players.get(key) is not player:
            self._cast(owner, GONE, [b.zone, player.user_id, [b.name]])  # the session ended meanwhile
            return
        self._subscribed(player, req, b)
        self.hub.reply_to(player, req.id, data)

    async def _call(self, member: str, kind: str, body: Any) -> Any:
        """`bus.call` with the owner's errors as `RequestError`s (their wire codes kept)."""
        bus = self.ownership.bus
        if bus is None:
            raise RequestError(ErrorCode.UNAVAILABLE, "the board's worker is not reachable: retry")
        try:
            return await bus.call(member, kind, body, self._timeout())
        except RemoteError as exc:
            code = None
            with contextlib.suppress(ValueError, TypeError):
                code = ErrorCode(exc.code) if exc.code is not None else None
            if code is None:
                logger.warning("leaderboard %s on %s failed: %s", kind, member, exc)
                raise RequestError(ErrorCode.INTERNAL, "internal error") from exc
            raise RequestError(code, exc.message) from exc
        except BusError as exc:
            logger.info("leaderboard %s to %s failed: %s", kind, member, exc)
            raise RequestError(
                ErrorCode.UNAVAILABLE, f"the board's worker did not answer ({exc.name}): retry"
            ) from exc

    def _cast(self, member: str, kind: str, body: Any) -> None:
        bus = self.ownership.bus
        if bus is not None:
            bus.cast(member, kind, body)

    def _timeout(self) -> float:
        router = self.ownership.router
        return router.timeout if router is not None else self.config.cluster.bus_timeout

    def _list(self, player: Player, req: lm.LeaderboardList) -> None:
        zone = player.zone
        boards = self.by_zone.get(zone, [])
        remote = sorted(
            {o for b in boards if (o := self.ownership.board_owner(zone, b.name)) != self.ownership.me}
        )
        if self.ownership.alone or not remote:
            self._reply_list(player, req.id, self._describe(zone, player.user_id))
            return

        async def gather() -> None:
            rows = {d["board"]: d for d in self._describe(zone, player.user_id)}
            try:
                for got in await asyncio.gather(
                    *(self._call(member, LIST, [zone, player.user_id]) for member in remote)
                ):
                    rows.update((d["board"], d) for d in got)
            except RequestError as exc:
                self.hub.reply_to(player, req.id, None, exc)
                return
            self._reply_list(player, req.id, [rows[b.name] for b in boards if b.name in rows])

        self._spawn(gather())

    def _describe(self, zone: str, uid: int) -> list[dict[str, Any]]:
        """The zone's boards owned here, described for user `uid`."""
        zc = self.config.casino.zones.get(zone)
        currency = zc.currency if zc is not None else None
        owner = str(uid)
        return [
            b.describe(owner, currency)
            for b in self.by_zone.get(zone, [])
            if self.ownership.owns_board(zone, b.name)
        ]

    def _reply_list(self, player: Player, rid: int, boards: list[dict[str, Any]]) -> None:
        mine = self.subs.get((player.zone, player.user_id), set())
        for d in boards:
            d["subscribed"] = d["board"] in mine
        self.hub.reply_to(player, rid, {"boards": boards})

    def _add_subscriber(self, b: Board, uid: int, home: str | None) -> Snapshot:
        owner = str(uid)
        snap = b.stream.subscribe(owner)
        b.subscribers[owner] = uid
        if home is None:
            b.homes.pop(owner, None)
        else:
            b.homes[owner] = home
        return snap

    def _drop_subscriber(self, b: Board, owner: str) -> None:
        b.homes.pop(owner, None)
        if b.subscribers.pop(owner, None) is not None:
            b.stream.unsubscribe(owner)

    def subscribe(self, player: Player, b: Board) -> Snapshot:
        """Subscribe a local session to a board owned here (checks the session's limit)."""
        key = (player.zone, player.user_id)
        mine = self.subs.setdefault(key, set())
        if b.name not in mine and len(mine) >= self.section.max_subscriptions:
            raise RequestError(
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                f"at most {self.section.max_subscriptions} boards per session",
            )
        snap = self._add_subscriber(b, player.user_id, None)
        mine.add(b.name)
        return snap

    def unsubscribe(self, player: Player, b: Board) -> None:
        self._drop_subscriber(b, str(player.user_id))
        mine = self.subs.get((player.zone, player.user_id))
        if mine is not None:
            mine.discard(b.name)

    def _join(self, uid: int, b: Board) -> dict[str, Any] | Awaitable[dict[str, Any]]:
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
        owner = str(uid)
        reply = {"board": b.name, "period": board.start, "joined": True}
        if owner in b.joined or self.store is None:
            b.joined.add(owner)
            return reply
        store = self.store

        async def durable() -> dict[str, Any]:
            try:
                await store.save([marker(b.zone, b.name, "joined", board.start, owner)])
            except Exception as exc:
                logger.warning("join %s/%s failed: %s", b.zone, b.name, exc)
                raise RequestError(ErrorCode.UNAVAILABLE, "the store is unavailable: retry") from exc
            if b.joined_period == reply["period"]:
                b.joined.add(owner)
            return reply

        return durable()

    async def _results(self, uid: int, req: lm.LeaderboardResults, b: Board) -> dict[str, Any]:
        period = req.period
        if period is None:
            period = b.board.period.window(b.board.start - 1)[0] if b.board.start > 0 else 0
            if b.ended:
                period = b.board.start
        rows = b.results.get(period)
        if rows is None and self.store is not None:
            try:
                rows = await self.store.final(b.zone, b.name, period) or None
            except Exception as exc:
                raise RequestError(ErrorCode.UNAVAILABLE, "the store is unavailable: retry") from exc
        if not rows:
            raise RequestError(ErrorCode.RESULTS_NOT_FOUND, f"no results of {b.name!r} for period {period}")
        owner = str(uid)
        me = next((r for r in rows if r.user_id == owner), None)
        zc = self.config.casino.zones.get(b.zone)
        return {
            "board": b.name,
            "period": period,
            "window": [period, b.board.period.window(period)[1]],
            "standings": rows[: req.limit],
            "me": me,
            "currency": zc.currency if zc is not None and b.cfg.prizes else None,
        }

    # -- the cluster (docs/leaderboards.md, "Across workers") ----------------------------

    def _house(self, zone: str, zc: Any) -> str:
        """The house account prizes come from: the casino's (a worker's own in a cluster)."""
        casino = self.hub.casino
        mine = casino.zones.get(zone) if casino is not None else None
        if mine is not None:
            return mine.house
        return zc.house(zone) if zc is not None else ""

    def join_cluster(self, router: ShardedRouter) -> None:
        """Take part in the ring of `router`: boards owned elsewhere are reached by bus.

        Call it once the router is attached (gameserver/worker.py; `start` does it when the
        hub already has one). Registers the `lb.*` handlers and casts `lb.hello`: the other
        members drop the subscribers they kept for this member's (previous) sessions and
        subscribe their sessions again to the boards owned here."""
        if self.ownership.router is router:
            return
        before = self.ownership.me
        self.ownership.connect(router)
        if before != router.me:  # started as another member: forget what is not ours
            for (zone, name), b in list(self.boards.items()):
                if not self.ownership.owns_board(zone, name):
                    self._reset(b)
        self._ring = self.ownership.ring
        self._owned = {k for k in self.boards if self.ownership.owns_board(*k)}
        until = self.hub.clock.wall() + HANDOFF_WINDOW  # a grown ring's hand-offs may come
        for k in self._owned:
            self.boards[k].log, self.boards[k].log_until = [], until
        bus = router.bus
        for kind, fn in (
            (HANDOFF, self._on_handoff),
            (SCORE, self._on_score),
            (REQUEST, self._on_request),
            (LIST, self._on_list),
            (PUSH, self._on_push),
            (GONE, self._on_gone),
            (HELLO, self._on_hello),
        ):
            bus.on(kind, fn)
        if router.serving.is_set() and not self._adopted:
            self._hello(router)
        else:  # a takeover (the predecessor still serves the member until it hands over)
            # or a restore from a checkpoint: the sessions keep their subscriptions
            self._announcing = asyncio.get_running_loop().create_task(self._hello_when_serving(router))

    def _hello(self, router: ShardedRouter, takeover: bool = False) -> None:
        body = {"takeover": True} if takeover else None
        for member in self.ownership.ring.members:
            if member != router.me:
                router.bus.cast(member, HELLO, body)

    # -- rolling restart: the sessions' subscriptions move with them (gameserver/handover.py)

    def handover_state(self) -> Any:
        """The local sessions' subscriptions, for this worker's successor."""
        return [[zone, uid, sorted(names)] for (zone, uid), names in self.subs.items()]

    def adopt_handover(self, state: Any) -> None:
        """The predecessor's sessions' subscriptions (they continue here)."""
        self._adopted = True
        for zone, uid, names in state or ():
            self.subs.setdefault((zone, int(uid)), set()).update(names)

    async def _hello_when_serving(self, router: ShardedRouter) -> None:
        """A takeover: once the predecessor handed over (it checkpointed when it drained),
        read its boards' standings again, then say hello."""
        await router.serving.wait()
        if self.store is not None:
            for k in sorted(self._owned):
                await self._adopt_stored(self.boards[k])
        if self._adopted:  # handed-over sessions keep their subscriptions
            for (zone, uid), names in self.subs.items():
                for name in names:
                    b = self.boards.get((zone, name))
                    if b is not None and (zone, name) in self._owned and (zone, uid) in self.hub.players:
                        self._add_subscriber(b, uid, None)
            self._hello(router, takeover=True)
            return
        self._hello(router)

    def _reset(self, b: Board) -> Board:
        boards = self.by_zone[b.zone]
        i = boards.index(b)
        self._add(b.zone, b.name, b.cfg, self.hub.clock.wall())
        boards.pop()  # `_add` appended the fresh board: keep the configured order
        fresh = boards[i] = self.boards[(b.zone, b.name)]
        return fresh

    # -- ring changes: boards move with their standings and subscribers -----------------

    def _ring_changed(self) -> None:
        """The router adopted a new ring: hand off the boards now owned elsewhere; start
        the boards owned here now from the store (until their hand-off arrives)."""
        own = self.ownership
        self._ring = own.ring
        owned = {k for k in self.boards if own.owns_board(*k)}
        for k in self._owned - owned:
            self._spawn(self._hand_off(self.boards[k], own.board_owner(*k)))
        until = self.hub.clock.wall() + HANDOFF_WINDOW
        for k in owned - self._owned:
            b = self.boards[k]
            b.log, b.log_until = [], until
            if self.store is not None:
                self._spawn(self._adopt_stored(b))
        self._owned = owned

    async def _hand_off(self, b: Board, member: str) -> None:
        """Give `b` to its new owner: checkpoint, then its whole state in one cast."""
        await self.flush()
        board = b.board
        rows = [[r.owner_id, board.names.get(r.owner_id, ""), r.score, r.subscore] for r in board.index]
        subs = [[owner, uid, b.homes.get(owner, self.ownership.me)] for owner, uid in b.subscribers.items()]
        logger.info(
            "board %s/%s handed to %s: %d rows, %d subscribers", b.zone, b.name, member, len(rows), len(subs)
        )
        self._cast(member, HANDOFF, [b.zone, b.name, board.start, rows, subs, sorted(b.joined)])
        self._reset(b)

    async def _adopt_stored(self, b: Board) -> None:
        """A board this member owns now: its standings from the store (a hand-off that
        comes later replaces them with the previous owner's)."""
        assert self.store is not None
        start = b.board.start
        try:
            rows = await self.store.standings(b.zone, b.name, start, RESTORE_LIMIT)
            joined = await self.store.owners(b.zone, b.name, "joined", start, RESTORE_LIMIT)
        except Exception as exc:
            logger.warning("restoring %s/%s after a ring change failed: %s", b.zone, b.name, exc)
            return
        current = self.boards.get((b.zone, b.name))
        if current is not None and self.ownership.owns_board(b.zone, b.name):
            self._rebuild(current, start, rows, joined, [])

    def _on_handoff(self, src: str, body: list[Any]) -> None:
        zone, name, start, rows, subs, joined = body
        b = self.boards.get((zone, name))
        if b is None or not self.ownership.owns_board(zone, name):
            logger.warning("hand-off of %s/%s from %s ignored: not owned here", zone, name, src)
            return
        self.stats.handoffs += 1
        me = self.ownership.me
        self._rebuild(
            b,
            start,
            [tuple(r) for r in rows],
            set(joined),
            [(o, u, None if h == me else h) for o, u, h in subs],
        )

    def _rebuild(
        self,
        b: Board,
        start: int,
        rows: list[tuple[str, str, int, int]],
        joined: set[str],
        subs: list[tuple[str, int, str | None]],
    ) -> None:
        """A fresh board (a new epoch: clients take a snapshot) holding `rows` of period
        `start`, then every round this member applied since it owns the board."""
        log = b.log or []
        fresh = self._reset(b)
        fresh.log, fresh.log_until = ([] if b.log is not None else None), b.log_until
        if start == fresh.board.start:
            if rows:
                fresh.board.restore(rows)
            fresh.joined = b.joined | joined
            fresh.joined_period = start
        for ev in log:
            self._apply(ev, [fresh], ())  # logs them again
        fresh.stream.tick(self.hub.clock.wall())  # the rebuilt top is the stream's base
        for owner, uid in b.subscribers.items():
            self._add_subscriber(fresh, uid, b.homes.get(owner))
        for _owner, uid, home in subs:
            self._add_subscriber(fresh, uid, home)

    def _log(self, b: Board, event: Scored) -> None:
        assert b.log is not None
        if self.hub.clock.wall() >= b.log_until or len(b.log) >= HANDOFF_LOG:
            b.log = None
            return
        b.log.append(event)

    def _cast_scores(self, event: Scored, boards: list[Board]) -> None:
        own = self.ownership
        members = {own.board_owner(b.zone, b.name) for b in boards}
        members.discard(own.me)
        if members:
            raw = _event_enc.encode(event)
            for member in sorted(members):
                self._cast(member, SCORE, raw)

    def _on_score(self, src: str, body: bytes) -> None:
        event = _score_dec.decode(body)
        boards = self.by_zone.get(event.zone)
        if boards:
            self._apply(event, boards, ())

    def _on_request(self, src: str, body: list[Any]) -> Any:
        zone, uid, raw = body
        req = _req_dec.decode(raw)
        b = self.boards.get((zone, req.board))
        if b is None:
            raise RequestError(ErrorCode.BOARD_NOT_FOUND, f"no leaderboard {req.board!r} in this zone")
        if not self.ownership.owns_board(zone, b.name):
            raise RequestError(ErrorCode.UNAVAILABLE, "the board is moving to another worker: retry")
        return self._serve(zone, uid, req, b, src)

    def _on_list(self, src: str, body: list[Any]) -> list[dict[str, Any]]:
        zone, uid = body
        return self._describe(zone, uid)

    def _on_push(self, src: str, items: list[Any]) -> None:
        """Events from a board's owner for sessions here: each pushed as one `OutEvent`."""
        players = self.hub.players
        casino = self.hub.casino
        pushed = 0
        for zone, name, data, uids in items:
            event = OutEvent(name, data)
            for uid in uids:
                player = players.get((zone, uid))
                if player is not None:
                    player.push(event)
                    pushed += 1
                if name == lm.REWARD_EVENT and casino is not None:  # the prize changed the balance
                    wallet = casino.wallets.get((zone, uid))
                    if wallet is not None and not wallet.lock.locked():
                        wallet.balance = None
        self.stats.pushes += pushed
        self.hub.counters.events += pushed

    def _on_gone(self, src: str, body: list[Any]) -> None:
        zone, uid, names = body
        owner = str(uid)
        for name in names:
            b = self.boards.get((zone, name))
            if b is not None and b.homes.get(owner) == src:
                self._drop_subscriber(b, owner)

    def _on_hello(self, src: str, body: Any) -> None:
        """`src` (re)started: its sessions are gone (unless it took them over from its
        predecessor: `takeover`), and the boards it owns start over."""
        takeover = isinstance(body, dict) and body.get("takeover")
        for b in self.boards.values():
            if takeover:
                break
            for owner in [o for o, home in b.homes.items() if home == src]:
                self._drop_subscriber(b, owner)
        own = self.ownership
        for (zone, uid), names in list(self.subs.items()):
            player = self.hub.players.get((zone, uid))
            if player is None:
                continue
            for name in names:
                if (zone, name) in self.boards and own.board_owner(zone, name) == src:
                    self._spawn(self._resubscribe(src, player, name))

    async def _resubscribe(self, member: str, player: Player, name: str) -> None:
        """Subscribe a session again on a restarted owner; its client sees the new epoch
        in the next delta and takes a fresh snapshot (docs/leaderboards.md)."""
        req = lm.LeaderboardSubscribe(id=0, board=name)
        try:
            await self._call(member, REQUEST, [player.zone, player.user_id, _req_enc.encode(req)])
        except RequestError as exc:
            logger.info("subscribing %s again to %s on %s failed: %s", player.user_id, name, member, exc)
            mine = self.subs.get((player.zone, player.user_id))
            if mine is not None:
                mine.discard(name)
            return
        if self.hub.players.get((player.zone, player.user_id)) is not player:
            self._cast(member, GONE, [player.zone, player.user_id, [name]])

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
        own = self.ownership
        yield CounterMetricFamily(
            "croupier_leaderboard_push_casts",
            "lb.push casts to other workers (one per member per loop iteration)",
            value=own.casts,
        )
        yield CounterMetricFamily(
            "croupier_leaderboard_push_casts_dropped",
            "lb.push casts the bus refused (queue full or closed)",
            value=own.dropped_casts,
        )
        yield CounterMetricFamily(
            "croupier_leaderboard_handoffs",
            "Boards received from their previous owner after a ring change",
            value=st.handoffs,
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
        zone, uid = player.zone, player.user_id
        names = self.subs.pop((zone, uid), None)
        owner = str(uid)
        elsewhere: dict[str, list[str]] = {}
        for name in names or ():
            b = self.boards.get((zone, name))
            if b is None:
                continue
            if self.ownership.owns_board(zone, name):
                if b.homes.get(owner) is None:
                    self._drop_subscriber(b, owner)
            else:
                elsewhere.setdefault(self.ownership.board_owner(zone, name), []).append(name)
        for member, boards in elsewhere.items():  # the owners drop this session's subscriptions
            self._cast(member, GONE, [zone, uid, boards])
