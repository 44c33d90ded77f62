"""A player session: survives connection drops for the resume grace window."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from protocol.events import OutEvent
from protocol.replay import EventLog
from rooms.roles import Role

if TYPE_CHECKING:
    from .connection import Connection


class Player:
    """A logged-in user's session on this worker: its event log and current connection."""

    __slots__ = (
        "user_id",
        "zone",
        "name",
        "role",
        "log",
        "resume_token",
        "conn",
        "detached_at",
        "session_id",
        "gap",
    )

    def __init__(
        self, user_id: int, zone: str, name: str, role: Role, replay: int, resume_token: str
    ) -> None:
        self.user_id = user_id
        self.zone = zone
        self.name = name
        self.role = role
        self.log = EventLog(replay)
        self.resume_token = resume_token
        self.conn: Connection | None = None
        #: monotonic time of the drop, while no connection is attached
        self.detached_at: float | None = None
        #: names this session (kept across resumes) in idempotency keys and round records
        self.session_id = secrets.token_hex(8)
        #: restored from a crashed worker's checkpoint: events after it were lost
        self.gap = False

    def push(self, event: OutEvent) -> None:
        """Number the event, keep it for replay, and send it if connected."""
        seq = self.log.append(event)
        conn = self.conn
        if conn is not None and not conn.closed:
            conn.session.send_event(seq, event)
            if not conn.dirty:
                conn.hub.schedule_event_flush(conn)

    def __repr__(self) -> str:
        return f"Player({self.zone}/{self.user_id} {self.name!r})"
