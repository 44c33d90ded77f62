"""Locust users that speak Croupier's native WebSocket protocol, for teams that use Locust.

locust-plugins 5 has no raw WebSocket user any more, so this file has a small one: a
websocket-client socket per user (gevent-friendly), a receiver greenlet that matches
replies to requests by id, and one Locust request event per reply (`WS <type>`), with
the round trip as its response time. A reply `unknown_message` / `not_supported` is a
failure named "not supported by server", never a success. Server pushes are counted as
`WSEVENT <name>` with a response time of 0.

How to run (servers on loopback only; `python -m gameserver run` listens on 8800):

    python -m gameserver run &
    locust -f bench/locustfile.py --headless -u 2000 -r 100 -t 2m \\
        --host ws://127.0.0.1:8800/ws --ping-every 20 --spin-every 5 --spinners 0.01

    # the web UI instead of --headless: open http://127.0.0.1:8089
    # more than one core: add --processes 2 (each worker process stays under ~18k users:
    # the open-file limit is 20,000)

Options: --codec msgpack|json, --zone demo, --ping-every S, --spin-every S (0 = off),
--spinners FRACTION (share of users that spin), --chatters FRACTION (join the Lobby and
chat every --chat-every S), --game fruit_slot. Locust exits 1 when any request failed.

One gevent process is one core; above about 2,000 messages/s its latencies stop being
trustworthy (the process is saturated). For large counts and exact reports use the
harness instead: `python -m bench.loadgen` (docs/bench.md).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import time
from typing import Any
from urllib.parse import urlsplit

import gevent  # type: ignore[import-untyped, unused-ignore]
import msgspec
import websocket
from gevent.event import AsyncResult  # type: ignore[import-untyped, unused-ignore]
from locust import User, events, task
from locust.env import Environment

UNSUPPORTED = {2: "unknown_message", 10: "not_supported"}


class NotSupportedByServer(Exception):
    """The server does not know this message (error code 2 or 10)."""


class RequestFailed(Exception):
    pass


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator, misc, unused-ignore]
def _options(parser: Any) -> None:
    parser.add_argument("--codec", choices=["msgpack", "json"], default="msgpack")
    parser.add_argument("--zone", default="demo")
    parser.add_argument("--ping-every", type=float, default=20.0, help="heartbeat period, seconds")
    parser.add_argument("--spin-every", type=float, default=5.0, help="spin period of spinners; 0 = no spins")
    parser.add_argument("--spinners", type=float, default=0.01, help="share of users that spin")
    parser.add_argument("--chatters", type=float, default=0.0, help="share of users that chat in the Lobby")
    parser.add_argument("--chat-every", type=float, default=30.0)
    parser.add_argument("--game", default="fruit_slot")
    parser.add_argument("--request-timeout", type=float, default=10.0)


def _check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if not (host == "localhost" or host.startswith("127.")):
        raise ValueError(f"{url}: this locustfile only targets loopback servers (127.0.0.0/8)")


class CroupierWsUser(User):
    """A guest session: log in, heartbeat, and (for some users) spin or chat."""

    abstract = False
    host = "ws://127.0.0.1:8800/ws"
    _numbers = itertools.count(1)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        opts = environment.parsed_options
        self.codec = getattr(opts, "codec", "msgpack")
        self.binary = self.codec == "msgpack"
        self.zone = getattr(opts, "zone", "demo")
        self.ping_every = float(getattr(opts, "ping_every", 20.0))
        self.spin_every = float(getattr(opts, "spin_every", 5.0))
        self.chat_every = float(getattr(opts, "chat_every", 30.0))
        self.game = getattr(opts, "game", "fruit_slot")
        self.timeout = float(getattr(opts, "request_timeout", 10.0))
        r = random.random()
        spinners = float(getattr(opts, "spinners", 0.01))
        chatters = float(getattr(opts, "chatters", 0.0))
        self.spins = self.spin_every > 0 and r < spinners
        self.chats = not self.spins and r < spinners + chatters
        self.ws: websocket.WebSocket | None = None
        self.pending: dict[int, tuple[str, float, AsyncResult]] = {}
        self.ids = itertools.count(1)
        self.room: int | None = None
        self.name = f"locust{next(self._numbers)}"
        self.receiver: gevent.Greenlet | None = None
        self.heart: gevent.Greenlet | None = None

    # -- connection -----------------------------------------------------------------------

    def _decode(self, raw: bytes | str) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.msgpack.decode(raw) if isinstance(raw, bytes) else json.loads(raw)
        return data

    def on_start(self) -> None:
        url = self.host or CroupierWsUser.host
        _check_loopback(url)
        t0 = time.perf_counter()
        try:
            self.ws = websocket.create_connection(
                url, subprotocols=[f"croupier.v1.{self.codec}"], timeout=self.timeout
            )
        except Exception as exc:
            self._fire("WS", "connect", t0, exc)
            raise
        self._fire("WS", "connect", t0, None)
        self.receiver = gevent.spawn(self._receive)
        self.request("login", guest=True, zone=self.zone, name=self.name)
        if self.chats:
            data = self.request("join_room", room="Lobby")
            room = data.get("room") if isinstance(data, dict) else None
            self.room = room.get("id") if isinstance(room, dict) else None
        self.heart = gevent.spawn(self._heartbeat)

    def on_stop(self) -> None:
        if self.heart is not None:
            self.heart.kill(block=True, timeout=1)  # no heartbeat cut off by our own close
        ws, self.ws = self.ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()
        if self.receiver is not None:
            self.receiver.kill(block=False)

    def _receive(self) -> None:
        for _ in range(100_000_000):  # bounded; ends when the connection does
            if self.ws is None:
                break
            try:
                raw = self.ws.recv()
            except Exception:
                break
            if not raw:
                break
            msg = self._decode(raw)
            kind = msg.get("type")
            if kind == "event":
                self.environment.events.request.fire(
                    request_type="WSEVENT",
                    name=str(msg.get("event")),
                    response_time=0,
                    response_length=len(raw),
                    exception=None,
                    context={},
                )
                continue
            rid = msg.get("id")
            p = self.pending.pop(rid, None) if kind in ("ok", "error") and isinstance(rid, int) else None
            if p is not None:
                p[2].set(msg)
        for _name, _t0, result in list(self.pending.values()):
            result.set_exception(ConnectionError("connection closed"))
        self.pending.clear()

    def _heartbeat(self) -> None:
        for _ in range(1_000_000):  # bounded; ends with the connection (or the Locust run)
            if self.ws is None:
                break
            gevent.sleep(self.ping_every * random.uniform(0.9, 1.1))
            if self.ws is None:
                break
            with contextlib.suppress(Exception):  # a failure is reported by request()
                self.request("ping", t=int(time.time() * 1000))

    # -- requests -------------------------------------------------------------------------

    def _fire(self, kind: str, name: str, t0: float, exc: BaseException | None, length: int = 0) -> None:
        self.environment.events.request.fire(
            request_type=kind,
            name=name,
            response_time=(time.perf_counter() - t0) * 1000,
            response_length=length,
            exception=exc,
            context={},
        )

    def request(self, type_: str, **fields: Any) -> Any:
        """Send one request and wait for its reply; reported as `WS <type>`."""
        ws = self.ws
        if ws is None:
            raise ConnectionError("not connected")
        rid = next(self.ids)
        result: AsyncResult = AsyncResult()
        t0 = time.perf_counter()
        self.pending[rid] = (type_, t0, result)
        msg = {"type": type_, "id": rid, **fields}
        try:
            if self.binary:
                ws.send_binary(msgspec.msgpack.encode(msg))
            else:
                ws.send(json.dumps(msg))
            reply = result.get(timeout=self.timeout)
        except gevent.Timeout as exc:
            self.pending.pop(rid, None)
            self._fire("WS", type_, t0, TimeoutError(f"no reply within {self.timeout} s"))
            raise TimeoutError(type_) from exc
        except Exception as exc:
            self.pending.pop(rid, None)
            self._fire("WS", type_, t0, exc)
            raise
        if reply.get("type") == "ok":
            self._fire("WS", type_, t0, None)
            return reply.get("data")
        code = int(reply.get("code", 0))
        err: Exception
        if code in UNSUPPORTED:
            err = NotSupportedByServer(f"not supported by server ({UNSUPPORTED[code]})")
        else:
            err = RequestFailed(f"{reply.get('name')} ({code}): {reply.get('message')}")
        self._fire("WS", type_, t0, err)
        raise err

    # -- what a user does -----------------------------------------------------------------

    def wait_time(self) -> float:
        if self.spins:
            return self.spin_every * random.uniform(0.8, 1.2)
        if self.chats:
            return self.chat_every * random.uniform(0.8, 1.2)
        return self.ping_every

    @task
    def play(self) -> None:
        try:
            if self.spins:
                self.request("spin", game=self.game)
            elif self.chats and self.room is not None:
                self.request("public_message", room=self.room, text=f"good luck from {self.name}")
        except (NotSupportedByServer, RequestFailed, TimeoutError, ConnectionError):
            return  # reported through the request event
