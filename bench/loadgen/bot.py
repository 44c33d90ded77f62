"""One simulated session: connect, log in, run its profile's steps, reconnect when dropped.

One-shot steps run in order in the bot's coroutine, each waiting for its reply;
periodic steps run from the process's one timer wheel (bench/loadgen/wheel.py: no task
and no loop timer per session), so a session that only holds and pings costs a socket,
two small objects and a wheel entry.
"""

from __future__ import annotations

import asyncio
import errno
import random
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .scenario import Step, message_for
from .stats import SENT_US, StepStats
from .wire import Incoming, WsConn, decode_data, upgrade_request

if TYPE_CHECKING:
    from .worker import Worker

IP_BIND_ADDRESS_NO_PORT = 24  # Linux >= 4.2: choose the source port at connect(), not bind()
RESUME_FAILED = 106
GOING_AWAY_CODES = frozenset({1001, 4009})  # going away, resume elsewhere
#: reconnect attempts one session may make over a whole run
MAX_RECONNECTS = 10_000


class CompiledStep:
    """A step with its message template resolved once per generator process."""

    __slots__ = ("step", "op", "label", "type", "template", "save", "accept", "st", "periodic")

    def __init__(self, step: Step, st: StepStats) -> None:
        self.step = step
        self.op = step.op
        self.label = step.name
        self.st = st
        self.periodic = step.periodic
        self.type = ""
        self.template: list[tuple[str, int, Any]] = []
        self.save: dict[str, list[str]] = {}
        self.accept: frozenset[int] = frozenset()
        if step.op in ("idle", "close"):
            return
        save: dict[str, str]
        if step.op == "login":
            mtype, fields, save, accept = "login", dict(step.fields), {}, frozenset(step.accept)
        else:
            mtype, fields, save, accept = message_for(step)
        self.type = mtype
        self.accept = accept
        self.save = {var: path.split(".") for var, path in save.items()}
        for key, value in fields.items():
            if isinstance(value, str) and value.startswith("$") and value[1:].isidentifier():
                self.template.append((key, 1, value[1:]))  # a whole variable
            elif isinstance(value, str) and "$" in value:
                self.template.append((key, 2, value))  # $name / $index / $sent_us inside text
            else:
                self.template.append((key, 0, value))

    def build(self, bot: Bot) -> dict[str, Any]:
        msg: dict[str, Any] = {"type": self.type}
        for key, kind, value in self.template:
            if kind == 0:
                msg[key] = value
            elif kind == 1:
                msg[key] = bot.var(value)
            else:
                text = value.replace("$name", bot.name).replace("$index", str(bot.index))
                if SENT_US in text:
                    text = text.replace(SENT_US, str(int(time.monotonic() * 1e6)))
                msg[key] = text
        return msg


def _set_result(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)


class Bot:
    """A session of one profile, numbered `index` over the whole run."""

    __slots__ = (
        "w",
        "index",
        "name",
        "steps",
        "target",
        "conn",
        "vars",
        "token",
        "epoch",
        "active",
        "lost",
        "logged_in",
        "dropped",
        "drop_spread",
        "task",
        "refused",
        "last_seq",
        "last_id",
        "churned",
        "reconnects",
    )

    def __init__(self, w: Worker, index: int, steps: list[CompiledStep], target: int) -> None:
        self.w = w
        self.index = index
        self.name = f"{w.scenario.name_prefix}{index}"
        self.steps = steps
        self.target = target
        self.conn: WsConn | None = None
        self.vars: dict[str, Any] | None = None
        self.token: str | None = None
        #: bumped to cancel this session's periodic steps waiting in the wheel
        self.epoch = 0
        #: periodic steps started on the current session (restarted after a resume)
        self.active: list[CompiledStep] = []
        self.lost: asyncio.Future[bool] | None = None
        self.logged_in = False
        #: the harness dropped this connection on purpose (drop_all)
        self.dropped = False
        self.drop_spread = 0.0
        self.task: asyncio.Task[None] | None = None
        #: the server refused the login: do not try again
        self.refused = False
        self.last_seq = 0
        self.last_id = 0
        #: closed on purpose by a churn action
        self.churned = False
        #: connections after the first (bounded by MAX_RECONNECTS)
        self.reconnects = 0

    def var(self, name: str) -> Any:
        if name == "now_ms":
            return int(time.time() * 1000)
        if name == "index":
            return self.index
        if name == "name":
            return self.name
        v = self.vars.get(name) if self.vars is not None else None
        return v

    # -- the session's life ---------------------------------------------------------------

    async def run(self, first_done: Callable[[], None]) -> None:
        w = self.w
        rc = w.scenario.reconnect
        first = True
        attempt = 0
        down_since: float | None = None
        try:
            while not w.stopping:
                fresh = await self._establish(first)
                if first:
                    first = False
                    first_done()
                conn = self.conn
                if fresh is not None:
                    if down_since is not None:
                        w.reconnect_hist.record(time.monotonic() - down_since)
                        w.count("reconnected")
                        down_since = None
                    attempt = 0
                    await self._drive(fresh)
                if w.stopping or self.refused:
                    break
                going_away = self._account_loss(conn)
                self.conn = None
                if not rc.enabled:
                    break
                if down_since is None:
                    down_since = time.monotonic()
                attempt += 1
                self.reconnects += 1
                if attempt > rc.max_attempts or self.reconnects > MAX_RECONNECTS:
                    w.error("gave_up")
                    break
                n = len(w.targets)
                if going_away and n > 1:  # spread over the others, not all onto the next one
                    self.target = (self.target + random.randrange(1, n)) % n
                if self.dropped:
                    delay = random.uniform(0.0, self.drop_spread)
                    self.dropped = False
                else:
                    delay = min(rc.backoff_max, rc.backoff_min * 2 ** (attempt - 1)) * random.uniform(
                        0.5, 1.0
                    )
                if not await w.sleep(delay):
                    break
        finally:
            self._cancel_timers()
            if first:
                first_done()

    def _account_loss(self, conn: WsConn | None) -> bool:
        """Count how the connection ended; True if the server asked us to move."""
        w = self.w
        self.logged_in = False
        if conn is None or not conn.upgraded or conn.abandoned:
            return False
        code = conn.close_code or 1006
        if self.churned:
            self.churned = False
            w.count("churned")
            return False
        if self.dropped:
            w.count("dropped_by_harness")
            return False
        if code in GOING_AWAY_CODES:
            w.count(f"server_close_{code}")
            return True
        w.error(f"unexpected_close_{code}")
        return False

    async def _establish(self, first: bool) -> bool | None:
        """Connect, upgrade, log in (or resume). True: fresh login; False: resumed; None: failed."""
        w = self.w
        conn = await self._connect(first)
        if conn is None:
            return None
        self.conn = conn
        step0 = self.steps[0]
        if self.token is not None and w.scenario.reconnect.resume and step0.step.resume:
            msg = await self._request(
                conn,
                {"type": "resume", "token": self.token, "last_seq": self.last_seq},
                w.resume_stats,
                step0.step.timeout,
                declined=frozenset({RESUME_FAILED}),
            )
            if msg is None:
                self._abandon(conn)
                return None
            if msg.type == "ok":
                self._session_up()
                return False
            w.count("resume_failed")
            self.token = None
        login = step0.build(self)
        login.setdefault("guest", True)
        login.setdefault("zone", w.scenario.zone)
        login.setdefault("name", self.name)
        msg = await self._request(conn, login, step0.st, step0.step.timeout, accept=step0.accept)
        if msg is None:
            self._abandon(conn)
            return None
        if msg.type != "ok":
            self.refused = True
            conn.close()
            return None
        data = decode_data(msg, conn.binary)
        if isinstance(data, dict):
            token = data.get("resume_token")
            self.token = token if isinstance(token, str) else None
            user = data.get("user")
            if isinstance(user, dict):
                self._vars()["user"] = user.get("id")
        self._session_up()
        return True

    @staticmethod
    def _abandon(conn: WsConn) -> None:
        """No answer to login/resume in time (a timeout, counted): drop this connection."""
        if not conn.closed:
            conn.abandoned = True
            conn.abort()

    def _vars(self) -> dict[str, Any]:
        if self.vars is None:
            self.vars = {}
        return self.vars

    def _session_up(self) -> None:
        self.logged_in = True
        self.w.sessions += 1

    async def _connect(self, first: bool) -> WsConn | None:
        w = self.w
        host, port, path = w.targets[self.target]
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((w.source_ip, 0))
            async with asyncio.timeout(w.connect_timeout):  # no task of its own, unlike wait_for
                await loop.sock_connect(sock, (host, port))
        except (OSError, TimeoutError) as exc:
            sock.close()
            self._connect_failed(first, exc)
            return None
        req, accept = upgrade_request(host, port, path, w.subprotocol)
        hs: asyncio.Future[None] = loop.create_future()
        conn = WsConn(w.shared, w.binary, req, accept, hs, self.last_id)
        try:
            await loop.create_connection(lambda: conn, sock=sock)
        except OSError as exc:  # the transport owns the socket now
            self._connect_failed(first, exc)
            return None
        try:
            await asyncio.wait_for(hs, w.connect_timeout)  # a future: cheaper than asyncio.timeout
        except Exception as exc:  # refused upgrade, closed, timed out
            conn.abort()
            self._connect_failed(first, exc, "handshake")
            return None
        if conn.closed:  # upgraded, then gone before we looked
            self._connect_failed(first, ConnectionError("closed after the upgrade"), "handshake")
            return None
        conn.on_lost = self._on_lost  # from here on, its loss is this session's
        self.conn = conn
        w.connect_stats.record_ok(time.monotonic() - t0, w.in_hold)
        w.connect_stats.sent += 1
        w.open += 1
        w.handshakes += 1
        self.lost = loop.create_future()
        return conn

    def _connect_failed(self, first: bool, exc: BaseException, stage: str = "connect") -> None:
        w = self.w
        if isinstance(exc, TimeoutError):
            what = f"{stage}_timeout"
        elif isinstance(exc, OSError) and exc.errno is not None:
            what = f"{stage}_{errno.errorcode.get(exc.errno, exc.errno)}"
        else:
            what = f"{stage}_{type(exc).__name__}"
        w.connect_stats.sent += 1
        if first:
            w.connect_stats.errors += 1
            w.error(what)
        else:  # a retry after a drop: only giving up counts as an error
            w.connect_stats.declined += 1
            w.count(f"reconnect_{what}")

    def _on_lost(self, conn: WsConn) -> None:
        w = self.w
        w.open -= 1
        if conn is not self.conn:  # an abandoned connection, gone after its session moved on
            conn.fail_pending()
            return
        if self.logged_in:
            w.sessions -= 1
        self.last_seq = conn.last_seq
        self.last_id = conn.last_id
        conn.fail_pending()
        self._cancel_timers()
        if self.lost is not None:
            _set_result(self.lost, False)

    async def _request(
        self,
        conn: WsConn,
        msg: dict[str, Any],
        st: StepStats,
        timeout: float,
        accept: frozenset[int] = frozenset(),
        declined: frozenset[int] = frozenset(),
    ) -> Incoming | None:
        fut: asyncio.Future[Incoming] = asyncio.get_running_loop().create_future()
        try:
            conn.send(msg, st, timeout, fut, accept, declined)
            return await fut
        except (ConnectionError, TimeoutError):
            return None

    # -- steps ----------------------------------------------------------------------------

    async def _drive(self, fresh: bool) -> None:
        """Run the profile after login (or restart its periodic steps after a resume)."""
        conn = self.conn
        if conn is None:
            return
        if not fresh:
            for cs in self.active:
                self._start_periodic(cs)
        else:
            self.active = []
            for cs in self.steps[1:]:
                if conn.closed or self.w.stopping:
                    return
                if cs.periodic:
                    self.active.append(cs)
                    self._start_periodic(cs)
                elif cs.op == "idle":
                    if not await self._wait(cs.step.seconds):
                        return
                elif cs.op == "close":
                    conn.close()
                    break
                else:
                    for _ in range(cs.step.times):
                        if not await self._one_shot(conn, cs):
                            break
        lost = self.lost
        if lost is not None and not lost.done():
            await lost

    async def _one_shot(self, conn: WsConn, cs: CompiledStep) -> bool:
        if cs.st.unsupported:
            return False  # this process has heard the server does not know it
        msg = await self._request(conn, cs.build(self), cs.st, cs.step.timeout, cs.accept)
        if msg is None:
            return False
        if msg.type == "ok" and cs.save:
            data = decode_data(msg, conn.binary)
            for var, path in cs.save.items():
                v: Any = data
                for part in path:
                    v = v.get(part) if isinstance(v, dict) else None
                if v is not None:
                    self._vars()[var] = v
        return msg.type == "ok"

    async def _wait(self, seconds: float) -> bool:
        """Sleep; False if the connection went or the run is stopping."""
        lost = self.lost
        if lost is None or lost.done():
            return False
        done, _ = await asyncio.wait({lost}, timeout=seconds)
        return not done and not self.w.stopping

    def _start_periodic(self, cs: CompiledStep) -> None:
        every = cs.step.every
        first = random.uniform(0.0, every)  # spread the phase of each session
        self.w.wheel.add(first, self._fire, cs, cs.step.times, self.epoch)

    def _fire(self, cs: CompiledStep, left: int, epoch: int) -> None:
        conn = self.conn
        if epoch != self.epoch or conn is None or conn.closed or self.w.stopping or cs.st.unsupported:
            return
        try:
            conn.send(cs.build(self), cs.st, cs.step.timeout, None, cs.accept)
        except ConnectionError:
            return
        if left == 1:
            return
        step = cs.step
        j = step.jitter
        self.w.wheel.add(
            step.every * (1.0 - j + 2.0 * j * random.random()), self._fire, cs, left - 1 if left else 0, epoch
        )

    def _cancel_timers(self) -> None:
        self.epoch += 1

    # -- commands from the worker ---------------------------------------------------------

    def stop(self) -> None:
        """End the session cleanly: close 1000, the server then closes the socket."""
        self._cancel_timers()
        conn = self.conn
        if conn is not None and not conn.closed:
            conn.close(1000)
        elif self.lost is not None:
            _set_result(self.lost, False)

    def recycle(self, spread: float) -> None:
        """Close cleanly (1000: the server ends the session); log in again as a new session."""
        conn = self.conn
        if conn is None or conn.closed:
            return
        self.dropped = True  # reconnect after a random delay up to `spread`
        self.drop_spread = spread
        self.churned = True
        self.token = None  # a fresh login, not a resume
        self._cancel_timers()
        conn.close(1000)

    def drop(self, spread: float) -> bool:
        """Abort the connection without a close frame (the harness's reconnect storm)."""
        conn = self.conn
        if conn is None or conn.closed:
            return False
        self.dropped = True
        self.drop_spread = spread
        conn.abort()
        return True
