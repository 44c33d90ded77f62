"""The sans-I/O connection session: messages in -> requests; commands -> payloads out.

Modelled on the websockets `Protocol`: it reads no clock (callers pass `now`), opens no
socket and never raises on bad input. The transport feeds it each received message with
`receive_message`, then:

1. sends `data_to_send()` (encoded payloads; the transport adds WebSocket or TCP framing),
2. hands `requests_received()` to the application,
3. closes the connection with `close_code` once `close_expected()` is true.

State machine (docs/protocol.md, "Session states"):

    OPEN --authenticate--> AUTHENTICATED --logout--> OPEN
      |                          |
      +------- close ------------+--> CLOSING --connection_lost--> CLOSED
"""

from __future__ import annotations

import logging
from collections import Counter
from enum import IntEnum
from typing import Any

from .codec import BadRequest, Codec
from .codes import CloseCode, ErrorCode
from .errors import InvalidState
from .events import OutEvent
from .flood import DISCONNECT, WARN, FloodFilter
from .limits import FloodLimits, SessionLimits
from .messages import ClientMessage, Error, Event, Login, Ok, Ping, Resume

logger = logging.getLogger("croupier.session")


class State(IntEnum):
    OPEN = 0  # connected, not logged in
    AUTHENTICATED = 1
    CLOSING = 2  # the transport must close the connection now
    CLOSED = 3


OPEN, AUTHENTICATED, CLOSING, CLOSED = State.OPEN, State.AUTHENTICATED, State.CLOSING, State.CLOSED

#: Requests allowed before login.
_ANONYMOUS = (Login, Resume, Ping)


class Session:
    """One client connection's protocol state: decoding, limits, flood filter, output."""

    __slots__ = (
        "codec",
        "limits",
        "state",
        "close_code",
        "close_reason",
        "_flood",
        "_requests",
        "_out",
        "_opened_at",
        "_last_rx",
        "error_counter",
    )

    def __init__(
        self,
        codec: Codec,
        limits: SessionLimits,
        flood: FloodLimits,
        now: float,
        error_counter: Counter[str] | None = None,
    ) -> None:
        self.codec = codec
        #: shared by the worker's sessions: error replies sent, by code name (metrics)
        self.error_counter = error_counter
        self.limits = limits
        self.state = OPEN
        self.close_code: CloseCode | None = None
        self.close_reason = ""
        self._flood = FloodFilter(flood, now)
        self._requests: list[ClientMessage] = []
        self._out: list[bytes] = []
        self._opened_at = now
        self._last_rx = now

    # -- input -------------------------------------------------------------------------

    def receive_message(self, data: bytes, binary: bool, now: float) -> None:
        """Feed one whole message (a WebSocket message or a TCP frame's payload).

        After calling this, send `data_to_send()`, handle `requests_received()` and check
        `close_expected()`.
        """
        if self.state >= CLOSING:
            return
        self._last_rx = now
        if len(data) > self.limits.max_message_bytes:
            self.close(CloseCode.MESSAGE_TOO_BIG, f"message above {self.limits.max_message_bytes} bytes")
            return
        if binary is not self.codec.binary:
            expected = "binary" if self.codec.binary else "text"
            self.close(CloseCode.UNSUPPORTED_DATA, f"this session expects {expected} frames")
            return
        verdict = self._flood.check(now)
        if verdict:
            if verdict is DISCONNECT:
                self.close(CloseCode.RATE_LIMITED, "too many messages")
                return
            if verdict is WARN:
                self.fail(None, ErrorCode.RATE_LIMITED, "too many messages; this one was dropped")
                return
        try:
            request = self.codec.decode(data)
        except BadRequest as exc:
            self.fail(exc.request_id, exc.code, exc.message)
            return
        if self.state is not AUTHENTICATED and not isinstance(request, _ANONYMOUS):
            self.fail(request.id, ErrorCode.NOT_LOGGED_IN, "log in first")
            return
        if type(request) is Ping:  # answered here: the heartbeat path, kept short
            self._queue(self.codec.encode(Ok(request.id, {"t": request.t, "now": int(now * 1000)})))
            return
        self._requests.append(request)

    def requests_received(self) -> list[ClientMessage]:
        """Decoded, admissible requests since the last call (pings are answered here)."""
        requests, self._requests = self._requests, []
        return requests

    # -- commands ----------------------------------------------------------------------

    def authenticate(self, flood: FloodLimits | None = None) -> None:
        """Mark the session logged in, optionally switching to the zone's flood limits."""
        if self.state is not OPEN:
            raise InvalidState(f"session is {self.state.name.lower()}")
        self.state = AUTHENTICATED
        if flood is not None and flood != self._flood.limits:
            self._flood.limits = flood

    def deauthenticate(self) -> None:
        """Back to OPEN after a logout; the auth timeout starts again."""
        if self.state is AUTHENTICATED:
            self.state = OPEN

    def reply(self, request_id: int, data: Any = None) -> None:
        """Queue an `ok` reply to `request_id`."""
        self._queue(self.codec.encode(Ok(request_id, data)))

    def fail(self, request_id: int | None, code: ErrorCode, message: str) -> None:
        """Queue an `error` reply."""
        name = code.name.lower()
        if self.error_counter is not None:
            self.error_counter[name] += 1
        self._queue(self.codec.encode(Error(request_id, int(code), name, message)))

    def send_event(self, seq: int, event: OutEvent) -> None:
        """Queue an `event` push with sequence number `seq`."""
        self._queue(self.codec.encode(Event(seq, event.name, event.body(self.codec))))

    def send_raw(self, payload: bytes) -> None:
        """Queue an already encoded message (encoded with this session's codec)."""
        self._queue(payload)

    def close(self, code: CloseCode, reason: str = "") -> None:
        """Ask the transport to close with `code`; further input is ignored."""
        if self.state >= CLOSING:
            return
        self.state = CLOSING
        self.close_code = code
        self.close_reason = reason
        logger.debug("= session closing: %s %s", code.name, reason)

    def connection_lost(self, now: float = 0.0) -> None:
        """The transport is gone (`now`: monotonic time)."""
        self.state = CLOSED

    def check_timeouts(self, now: float) -> None:
        """Close the session if it missed the auth or idle deadline; call periodically."""
        state = self.state
        if state is AUTHENTICATED:  # the common case first: one comparison per sweep
            if now - self._last_rx > self.limits.idle_timeout:
                self.close(CloseCode.IDLE_TIMEOUT, "no message in time")
        elif state is OPEN:
            if now - self._opened_at > self.limits.auth_timeout:
                self.close(CloseCode.AUTH_TIMEOUT, "no login in time")
            elif now - self._last_rx > self.limits.idle_timeout:
                self.close(CloseCode.IDLE_TIMEOUT, "no message in time")

    def restart_auth_clock(self, now: float) -> None:
        """Give a logged-out session a fresh auth timeout."""
        self._opened_at = now
        self._last_rx = now

    # -- output ------------------------------------------------------------------------

    def _queue(self, payload: bytes) -> None:
        if self.state >= CLOSING:
            return
        out = self._out
        out.append(payload)
        if len(out) > self.limits.max_pending_messages:
            out.clear()
            self.close(CloseCode.TOO_SLOW, "outgoing queue full")

    def has_data(self) -> bool:
        """True if there are payloads waiting for `data_to_send`."""
        return bool(self._out)

    def data_to_send(self) -> list[bytes]:
        """Encoded payloads to frame and write, in order; empties the queue."""
        out, self._out = self._out, []
        return out

    def close_expected(self) -> bool:
        """True once the transport should close the connection (see `close_code`)."""
        return self.state is CLOSING
