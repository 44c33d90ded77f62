"""One client connection: a transport `Link`, a sans-I/O protocol `Session`, its player.

Outgoing messages are not written one by one: the hub flushes every connection that has
pending output once per event-loop tick, so a client gets one write call per tick
however many events it received (research: one write per client per message is the
fan-out ceiling; coalescing delivered about 9x more messages/s).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from protocol.codec import Codec
from protocol.codes import CloseCode
from protocol.session import Session

from .link import Link

if TYPE_CHECKING:
    from protocol.sfs2x.session import SfsSession

    from .hub import Hub
    from .player import Player

logger = logging.getLogger("croupier.connection")


class Connection:
    __slots__ = ("hub", "link", "session", "player", "dirty", "closed", "last_rx", "__weakref__")

    def __init__(
        self, hub: Hub, link: Link, codec: Codec, session: Session | SfsSession | None = None
    ) -> None:
        """`session`: a prebuilt session (e.g. an SFS2X one); by default a native one for `codec`."""
        self.hub = hub
        self.link = link
        self.session: Session | SfsSession = session or Session(
            codec, hub.session_limits, hub.default_flood, hub.clock.monotonic(), hub.counters.errors
        )
        self.player: Player | None = None
        #: 0: nothing queued for a flush; EVENTS: on the hub's send tick; NOW: end of this tick
        self.dirty = 0
        self.closed = False
        #: monotonic time of the last message received (the hub's idle sweep reads it)
        self.last_rx = 0.0

    def message_received(self, data: bytes, binary: bool) -> None:
        """A whole message arrived from the transport."""
        session = self.session
        hub = self.hub
        now = hub.clock.monotonic()
        hub.heard_from(self, now)
        session.receive_message(data, binary, now)
        requests = session.requests_received()
        if requests:
            self.hub.handle(self, requests)
        if session.has_data() or session.close_expected():
            self.hub.schedule_flush(self)

    def close(self, code: CloseCode, reason: str = "") -> None:
        """Ask for a close once pending output is written."""
        self.session.close(code, reason)
        self.hub.schedule_flush(self)

    def flush(self) -> None:
        """Write pending output in one call; carry out a pending close. Called by the hub."""
        self.dirty = 0
        if self.closed:
            return
        session = self.session
        payloads = session.data_to_send()
        link = self.link
        if payloads:
            link.write(payloads)
            if link.buffered() > self.hub.max_outgoing_bytes:
                # Anything we send now would queue behind what the client is not reading,
                # so drop the connection (logged and counted as 4007, docs/protocol.md).
                session.close(CloseCode.TOO_SLOW, "client does not read fast enough")
                self.closed = True
                logger.info("closing %r: too slow (%d bytes unsent)", self, link.buffered())
                link.abort()
                return
        if session.close_expected():
            code = session.close_code or CloseCode.NORMAL
            self.closed = True
            link.close(int(code), session.close_reason)

    def connection_lost(self, peer_code: int | None = None) -> None:
        """The transport is gone (either side closed, or the network failed).

        `peer_code` is the close code the client sent, if it sent one: 1000 means the
        client ended the session on purpose, anything else keeps it for `resume`.
        """
        self.closed = True
        self.session.connection_lost(self.hub.clock.monotonic())
        self.hub.connection_lost(self, peer_code)

    def __repr__(self) -> str:
        who = self.player.user_id if self.player else "-"
        return f"Connection({self.link.kind} {self.link.peer} user={who})"
