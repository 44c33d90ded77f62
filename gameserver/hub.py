"""The hub: one worker's sessions, zones and request dispatch.

It owns login, resume and logout (session concerns), sends room and user operations
through the `Router`, delivers the resulting events to players, flushes connections
once per loop tick, and sweeps timeouts and expired resume windows.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from itertools import count
from time import perf_counter
from typing import TYPE_CHECKING, Any

import msgspec

from protocol import messages as m
from protocol.codes import CloseCode, ErrorCode
from protocol.errors import RequestError
from protocol.events import OutEvent
from protocol.limits import FloodLimits
from protocol.replay import EventLog
from protocol.sfs2x.reconnect import Reconnections
from rooms.outputs import Disconnect, Output, Send
from rooms.roles import Role
from rooms.user import User
from rooms.zone import Zone

from . import auth
from .clock import Clock, SystemClock
from .config import Config
from .connection import Connection
from .domain import EventBus, LocalEvents
from .handlers import ZONE_HANDLERS
from .metrics import Counters
from .player import Player
from .router import LocalRouter, ReplyFn, Router

if TYPE_CHECKING:
    from .casino import Casino
    from .services import Service
    from .zonestate import ZoneState

logger = logging.getLogger("croupier.hub")

_GUEST_NAME = re.compile(r"^[\w .\-]{1,32}$")
#: Guests get ids from this range; token users are expected below it.
GUEST_ID_BASE = 1_500_000_000
#: Close codes after which the session ends at once (no resume window).
#: rooms a quick join tries before it creates one (or gives up)
QUICK_JOIN_TRIES = 5
#: a quick join's refusals that send it to the next candidate (the listing was stale)
_QUICK_RETRY = frozenset(
    {
        ErrorCode.ROOM_FULL,
        ErrorCode.SPECTATORS_FULL,
        ErrorCode.ROOM_NOT_FOUND,
        ErrorCode.WRONG_PASSWORD,
        ErrorCode.ALREADY_IN_ROOM,
    }
)
#: `Connection.dirty`: events wait for the send tick; output is written at the end of this tick
FLUSH_EVENTS, FLUSH_NOW = 1, 2
_FINAL_CLOSES = {CloseCode.KICKED, CloseCode.BANNED, CloseCode.SESSION_REPLACED, CloseCode.NORMAL}


class Hub:
    """All sessions and zones of one worker process. Runs on one event loop."""

    def __init__(
        self,
        config: Config,
        clock: Clock | None = None,
        router: Router | None = None,
        call_soon: Callable[[Callable[[], None]], object] | None = None,
        call_later: Callable[[float, Callable[[], None]], object] | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.session_limits = config.limits.session_limits()
        self.default_flood = FloodLimits()
        self.max_outgoing_bytes = config.limits.max_outgoing_bytes
        self.close_timeout = config.limits.close_timeout
        self.zones: dict[str, Zone] = {z.name: Zone(z) for z in config.zones}
        self.router: Router = router or LocalRouter(self)
        self.connections: set[Connection] = set()
        #: (monotonic time, connection) of connections that must log in soon (new, or
        #: logged out): swept every time for their auth timeout; the rest less often
        self._awaiting_login: deque[tuple[float, Connection]] = deque()
        #: every open connection, the one heard from longest ago first (moved to the end by
        #: each message): a sweep visits only those that may be past their idle deadline
        self._by_activity: OrderedDict[Connection, None] = OrderedDict()
        #: dropped sessions waiting for `resume`, in the order they dropped (so in the order
        #: their resume windows end): a sweep visits only those whose window is over
        self._detached: dict[Player, float] = {}
        self.players: dict[tuple[str, int], Player] = {}
        self.by_resume_token: dict[str, Player] = {}
        #: SFS2X sessions a reconnecting C#/Unity client can take back (HRC), for as long
        #: as the hub keeps a dropped session (`limits.resume_grace`)
        self.sfs_reconnections = Reconnections(config.limits.resume_grace)
        self._guest_ids = count(GUEST_ID_BASE)
        #: zone -> a new guest id; a cluster worker replaces it with one that allocates only
        #: ids the ring gives to that worker, so guest ids never collide across workers
        self.new_guest_id: Callable[[str], int] = lambda zone: next(self._guest_ids)
        self._dirty: list[Connection] = []
        self._flush_scheduled = False
        #: connections with events waiting for the send tick (`server.event_tick_ms`)
        self._events_dirty: list[Connection] = []
        self._event_tick = config.server.event_tick_ms / 1000
        self._event_flush_scheduled = False
        #: schedules the send tick; the running loop's call_later by default
        self._call_later = call_later
        #: schedules the end-of-tick flush; the running loop's call_soon by default
        self._call_soon = call_soon
        self.accepting = True
        #: set while this worker hands its sessions over: requests are not executed (the
        #: connection closes with 4009 next; the client resends what got no reply)
        self.frozen = False
        #: sessions being moved to another worker (ring change): their requests are not
        #: executed here (the connection closes with 4009; the client resends after resume)
        self.moving: set[tuple[str, int]] = set()
        self.counters = Counters()  # read by the metrics collector (gameserver/metrics.py)
        self.zone_state: ZoneState | None = None  # bans and persistent variables, if a store is open
        #: casino requests (spin, balance...); None = not offered (no store)
        self.casino: Casino | None = None
        #: services by the request types they handle (gameserver/services.py)
        self.services: dict[type, Service] = {}
        self.service_list: list[Service] = []
        #: domain events (round settled...) for leaderboards, missions, notifications
        self.events: EventBus = LocalEvents()

    def register(self, service: Service) -> None:
        """Route `service.request_types` to `service` and tell it about sessions."""
        for t in service.request_types:
            if t in self.services:
                raise ValueError(f"{t.__name__} is already handled by {self.services[t]!r}")
            self.services[t] = service
        self.service_list.append(service)

    def reply_to(self, player: Player, rid: int, data: Any, error: RequestError | None = None) -> bool:
        """Reply to request `rid` on the player's current connection (False: nowhere to send)."""
        if self.players.get((player.zone, player.user_id)) is not player:
            return False  # the session ended; a retry gets the stored result
        conn = player.conn
        if conn is None or conn.closed:
            return False
        if error is None:
            conn.session.reply(rid, data)
        else:
            conn.session.fail(rid, error.code, error.message)
        self.schedule_flush(conn)
        return True

    # -- connections -------------------------------------------------------------------

    def connection_made(self, conn: Connection) -> None:
        self.connections.add(conn)
        now = self.clock.monotonic()
        conn.last_rx = now
        self._by_activity[conn] = None
        self._awaiting_login.append((now, conn))
        if not self.accepting:
            conn.close(CloseCode.GOING_AWAY, "server shutting down")

    def connection_lost(self, conn: Connection, peer_code: int | None = None) -> None:
        self.connections.discard(conn)
        self._by_activity.pop(conn, None)
        code = conn.session.close_code
        self.counters.closes[code.name.lower() if code is not None else "by_client"] += 1
        player = conn.player
        if player is None or player.conn is not conn:
            return
        player.conn = None
        conn.player = None
        code = conn.session.close_code
        if code in _FINAL_CLOSES or peer_code == 1000 or self.config.limits.resume_grace <= 0:
            self._end_player(player)
        else:
            self.detach(player, self.clock.monotonic())

    def heard_from(self, conn: Connection, now: float) -> None:
        """`conn` got a message at `now` (monotonic): its idle deadline moves on."""
        conn.last_rx = now
        try:  # noqa: SIM105 (per message: cheaper than contextlib.suppress)
            self._by_activity.move_to_end(conn)
        except KeyError:
            pass  # not made through connection_made (or lost already): no idle deadline

    def detach(self, player: Player, now: float) -> None:
        """Keep `player`, who has no connection now, for `resume` until its window ends."""
        player.detached_at = now
        self._detached.pop(player, None)  # (re)inserted last: the latest window to end
        self._detached[player] = now

    def schedule_flush(self, conn: Connection) -> None:
        """Write `conn`'s pending output at the end of this loop tick."""
        if conn.dirty == FLUSH_NOW:
            return
        conn.dirty = FLUSH_NOW
        self._dirty.append(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            if self._call_soon is None:
                self._call_soon = asyncio.get_running_loop().call_soon
            self._call_soon(self.flush)

    def schedule_event_flush(self, conn: Connection) -> None:
        """Write `conn`'s pending events on the send tick (at the end of this loop tick
        if there is none), unless a flush is already due."""
        if conn.dirty:
            return
        if self._event_tick <= 0:
            self.schedule_flush(conn)
            return
        conn.dirty = FLUSH_EVENTS
        self._events_dirty.append(conn)
        if not self._event_flush_scheduled:
            self._event_flush_scheduled = True
            if self._call_later is None:
                self._call_later = asyncio.get_running_loop().call_later
            self._call_later(self._event_tick, self.flush_events)

    def flush_events(self) -> None:
        """The send tick: flush the connections whose events have waited for it."""
        self._event_flush_scheduled = False
        dirty, self._events_dirty = self._events_dirty, []
        # the others were flushed since (a reply took their events) or are due at the end of the tick
        self._flush_each(c for c in dirty if c.dirty == FLUSH_EVENTS)

    def flush(self) -> None:
        """Flush every connection with pending output (once per tick)."""
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        self._flush_each(dirty)

    @staticmethod
    def _flush_each(conns: Iterable[Connection]) -> None:
        for conn in conns:
            try:
                conn.flush()
            except Exception:  # a broken transport must not stop the others' flush
                logger.exception("flush failed for %r", conn)

    # -- requests ----------------------------------------------------------------------

    def handle(self, conn: Connection, requests: Iterable[Any]) -> None:
        """Dispatch decoded requests from one connection, in order."""
        counters = self.counters
        player = conn.player
        if self.frozen or (player is not None and (player.zone, player.user_id) in self.moving):
            self.counters.errors["moving"] += sum(1 for _ in requests)
            return  # not executed: the client resends after its resume (close 4009)
        for req in requests:
            counters.requests[type(req).__name__] += 1
            started = perf_counter()
            try:
                self._handle_one(conn, req)
            except RequestError as exc:
                conn.session.fail(req.id, exc.code, exc.message)
            except Exception:
                player = conn.player
                context = {
                    "request": type(req).__name__,
                    "request_id": req.id,
                    "conn": conn.link.peer,
                    "user": player.user_id if player is not None else None,
                    "zone": player.zone if player is not None else None,
                }
                logger.exception("request %s failed", type(req).__name__, extra=context)
                conn.session.fail(req.id, ErrorCode.INTERNAL, "internal error")
            counters.observe(perf_counter() - started)

    def _handle_one(self, conn: Connection, req: Any) -> None:
        if isinstance(req, m.Login):
            self._login(conn, req)
        elif isinstance(req, m.Resume):
            self._resume(conn, req)
        elif isinstance(req, m.Logout):
            self._logout(conn, req)
        else:
            player = conn.player
            assert player is not None  # the session admits only login/resume/ping before login
            service = self.services.get(type(req))
            if service is not None:
                service.handle(player, req)
                return
            quick = isinstance(req, m.QuickJoin)
            if not quick and type(req) not in ZONE_HANDLERS:
                tag = type(req).__struct_config__.tag
                raise RequestError(ErrorCode.NOT_SUPPORTED, f"this server does not offer `{tag}`")
            session = conn.session
            rid = req.id

            def reply(data: Any, error: RequestError | None) -> None:
                if error is None:
                    session.reply(rid, data)
                else:
                    session.fail(rid, error.code, error.message)
                self.schedule_flush(conn)

            if quick:
                self._quick_join(player, req, reply)
            else:
                self.router.submit(player.zone, player.user_id, req, reply)

    def _quick_join(self, player: Player, req: m.QuickJoin, reply: ReplyFn) -> None:
        """Try the best candidates in turn (a listing may be stale: a room filled or went
        away meanwhile), then create `req.create`; each step goes through the router, so
        rooms hosted by other workers are joined where they live."""
        zone, uid = player.zone, player.user_id
        candidates = self.zones[zone].quick_join_candidates(
            uid, req.groups, req.where, req.spectator, QUICK_JOIN_TRIES
        )
        retry = _QUICK_RETRY

        def attempt(i: int) -> None:
            if i < len(candidates):
                join = m.JoinRoom(id=req.id, room=candidates[i], spectator=req.spectator, leave=req.leave)

                def joined(data: Any, error: RequestError | None) -> None:
                    if error is not None and error.code in retry:
                        attempt(i + 1)
                    else:
                        reply(data, error)

                self.router.submit(zone, uid, join, joined)
            elif req.create is not None:
                settings = msgspec.structs.asdict(req.create)
                create = m.CreateRoom(id=req.id, **settings, spectator=req.spectator)

                def created(data: Any, error: RequestError | None) -> None:
                    reply(data, error)
                    if error is None and req.leave is not None:
                        self.router.submit(
                            zone, uid, m.LeaveRoom(id=req.id, room=req.leave), lambda d, e: None
                        )

                self.router.submit(zone, uid, create, created)
            else:
                reply(None, RequestError(ErrorCode.ROOM_NOT_FOUND, "no open room matches"))

        attempt(0)

    def _login(self, conn: Connection, req: m.Login) -> None:
        if conn.player is not None:
            raise RequestError(ErrorCode.ALREADY_LOGGED_IN, "already logged in")
        now = self.clock.wall()
        if req.token:
            claims = auth.verify(self.config.auth.secret, req.token, now)
            if req.zone is not None and req.zone != claims.z:
                raise RequestError(ErrorCode.BAD_TOKEN, "token is for another zone")
            zone_name, user_id, role = claims.z, claims.u, Role.parse(claims.r)
            if user_id >= GUEST_ID_BASE:
                raise RequestError(
                    ErrorCode.BAD_TOKEN, f"token user ids must be below {GUEST_ID_BASE} (guest range)"
                )
            name = claims.n or f"user{user_id}"
        elif req.guest:
            if req.zone is None:
                raise RequestError(ErrorCode.BAD_REQUEST, "a guest login needs `zone`")
            zone_name, user_id, role = req.zone, 0, Role.GUEST
            name = req.name or ""
            if name and not _GUEST_NAME.match(name):
                raise RequestError(ErrorCode.BAD_NAME, "names are 1-32 letters, digits, spaces, . _ -")
        else:
            raise RequestError(ErrorCode.BAD_REQUEST, "login needs `token`, or `guest: true` and `zone`")
        zone = self.zones.get(zone_name)
        if zone is None:
            raise RequestError(ErrorCode.ZONE_NOT_FOUND, f"no zone {zone_name!r}")
        if role is Role.GUEST:
            if not zone.config.guests:
                raise RequestError(ErrorCode.GUESTS_NOT_ALLOWED, f"zone {zone_name!r} does not allow guests")
            user_id = user_id or self.new_guest_id(zone_name)
            name = name or f"Guest#{user_id}"
        old = self.players.get((zone_name, user_id))
        if old is not None:
            self._end_player(old, CloseCode.SESSION_REPLACED, "logged in elsewhere")
        zone.check_login(user_id, now)
        data, outputs = zone.add_user(User(user_id, name, role))
        player = Player(user_id, zone_name, name, role, self.config.limits.replay_buffer, auth.resume_token())
        self.players[(zone_name, user_id)] = player
        self.by_resume_token[player.resume_token] = player
        self._attach(conn, player)
        for service in self.service_list:
            service.player_joined(player)
        conn.session.authenticate(zone.config.flood)
        data["resume_token"] = player.resume_token
        data["heartbeat"] = self.config.limits.heartbeat_interval
        data["resume_grace"] = self.config.limits.resume_grace
        conn.session.reply(req.id, data)
        if outputs:
            self.deliver(zone_name, outputs)

    def _resume(self, conn: Connection, req: m.Resume) -> None:
        if conn.player is not None:
            raise RequestError(ErrorCode.ALREADY_LOGGED_IN, "already logged in")
        player = self.by_resume_token.get(req.token)
        if player is None:
            raise RequestError(ErrorCode.RESUME_FAILED, "no such session (expired?): log in again")
        gap = player.gap
        if gap:  # restored after a worker crash: number on from what the client saw
            since_restore = [event for _, event in player.log.buffered()]
            player.log = EventLog.restore(self.config.limits.replay_buffer, max(0, req.last_seq), [])
            missed: list[tuple[int, OutEvent]] | None = [(player.log.append(e), e) for e in since_restore]
        else:
            missed = player.log.since(req.last_seq)
        if missed is None:
            raise RequestError(ErrorCode.RESUME_FAILED, "missed events are gone: log in again")
        player.gap = False
        previous = player.conn
        if previous is not None:  # a half-open old socket: the new one wins
            previous.player = None
            previous.close(CloseCode.SESSION_REPLACED, "resumed elsewhere")
        self._attach(conn, player)
        conn.session.authenticate(self.zones[player.zone].config.flood)
        data: dict[str, Any] = {"user": player.user_id, "last_seq": player.log.last_seq}
        if gap:
            data["gap"] = True
        conn.session.reply(req.id, data)
        for seq, event in missed:
            conn.session.send_event(seq, event)

    def _logout(self, conn: Connection, req: m.Logout) -> None:
        player = conn.player
        if player is None:
            raise RequestError(ErrorCode.NOT_LOGGED_IN, "not logged in")
        conn.player = None
        player.conn = None
        self._end_player(player)
        conn.session.deauthenticate()
        now = self.clock.monotonic()
        conn.session.restart_auth_clock(now)
        self._awaiting_login.append((now, conn))
        conn.session.reply(req.id, {"zone": player.zone})

    def _attach(self, conn: Connection, player: Player) -> None:
        conn.player = player
        player.conn = conn
        player.detached_at = None
        self._detached.pop(player, None)

    def _end_player(self, player: Player, code: CloseCode | None = None, reason: str = "") -> None:
        """End a player session: leave its rooms; close its connection with `code` if any."""
        if self.players.get((player.zone, player.user_id)) is not player:
            return
        del self.players[(player.zone, player.user_id)]
        self.by_resume_token.pop(player.resume_token, None)
        self._detached.pop(player, None)
        for service in self.service_list:
            service.player_left(player)
        conn = player.conn
        if conn is not None:
            player.conn = None
            conn.player = None
            if code is not None:
                conn.close(code, reason)
        outputs = self.zones[player.zone].remove_user(player.user_id)
        if outputs:
            self.router.deliver(player.zone, outputs)
        self.router.session_ended(player.zone, player.user_id)

    # -- delivery ----------------------------------------------------------------------

    def deliver(self, zone: str, outputs: list[Output]) -> None:
        """Carry out a zone operation's outputs for the players on this worker."""
        players = self.players
        pushed = 0
        for out in outputs:
            if isinstance(out, Send):
                event = out.event
                for uid in out.recipients:
                    player = players.get((zone, uid))
                    if player is not None:
                        player.push(event)
                        pushed += 1
            elif isinstance(out, Disconnect):
                player = players.get((zone, out.user_id))
                if player is not None:
                    self._end_player(player, out.code, out.reason)
        self.counters.events += pushed

    # -- periodic work -----------------------------------------------------------------

    def sweep(self) -> None:
        """Close connections past their deadlines, end sessions past the resume window,
        and announce the room counts that changed since the last sweep.

        The work is what is due, not one step per session: connections waiting for a
        login (auth timeout), the connections not heard from for an idle timeout (oldest
        first, until one was heard from since), the dropped sessions whose resume window
        ended (in the order they dropped). A sweep over every session was a burst of
        CPU every few seconds, in every worker at once."""
        now = self.clock.monotonic()
        limits = self.config.limits
        awaiting = self._awaiting_login
        horizon = now - limits.auth_timeout - 1.0  # past it they were closed, or logged in
        while awaiting and awaiting[0][0] < horizon:
            awaiting.popleft()
        for _, conn in awaiting:
            if conn in self.connections:
                self._check(conn, now)
        quiet_since = now - limits.idle_timeout
        by_activity = self._by_activity
        while by_activity:
            conn = next(iter(by_activity))
            if conn.last_rx > quiet_since:
                break
            by_activity.move_to_end(conn)  # looked at: again after one more idle timeout
            conn.last_rx = now
            self._check(conn, now)
        window_ended = now - limits.resume_grace
        detached = self._detached
        while detached:
            player = next(iter(detached))
            if detached[player] > window_ended:
                break
            del detached[player]
            if player.detached_at is not None and player.conn is None:
                self._end_player(player)
        self.router.sweep()

    def _check(self, conn: Connection, now: float) -> None:
        session = conn.session
        session.check_timeouts(now)
        if session.close_expected():
            self.schedule_flush(conn)

    def shutdown(self, code: CloseCode = CloseCode.GOING_AWAY, reason: str = "server shutting down") -> None:
        """Stop accepting and ask every client to go (and resume elsewhere)."""
        self.accepting = False
        for conn in list(self.connections):
            conn.close(code, reason)

    def stats(self) -> dict[str, int]:
        return {
            "connections": len(self.connections),
            "players": len(self.players),
            "detached": sum(1 for p in self._detached if self.players.get((p.zone, p.user_id)) is p),
        }
