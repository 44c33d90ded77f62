"""The transport interface: what the session pump needs from a WebSocket or TCP connection.

Each transport (transports/picows_ws.py, transports/websockets_ws.py, transports/tcp.py)
implements `Link` and calls `Connection.message_received` / `Connection.connection_lost`.
"""

from __future__ import annotations

from typing import Protocol


class Link(Protocol):
    #: "picows", "websockets" or "tcp", for metrics and logs.
    kind: str
    peer: str

    def write(self, payloads: list[bytes]) -> None:
        """Frame and send `payloads` (encoded messages) with one write call."""

    def close(self, code: int, reason: str) -> None:
        """Close with `code` (a WebSocket close frame, or a TCP `closing` message), then disconnect."""

    def abort(self) -> None:
        """Drop the connection now, discarding unsent data (for clients that stopped reading)."""

    def buffered(self) -> int:
        """Bytes accepted by `write` but not yet handed to the kernel."""
        ...
