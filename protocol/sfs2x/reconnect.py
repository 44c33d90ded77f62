"""SFS2X reconnection (HRC): logged-in sessions by their token, kept a while after a drop.

A C#/Unity (or AS3, Java) client whose connection drops reconnects and sends a handshake
with ``rt`` = the ``tk`` of its old session (spec §6.1). The new session takes the old
one's place: its token, what the client was told (rooms, users), its request numbering and
the last event it was sent; the hub then re-attaches the player (a native ``resume``) and
sends the events queued meanwhile. The window is the login reply's ``rs`` (seconds).

Pure bookkeeping (no sockets, no clock of its own): the sessions call it. `export` and
`adopt` carry the logged-in sessions to a rolling restart's successor (`HrcState`): their
clients reconnect there, to the same worker name, and take their sessions back.
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from .session import SfsSession

__all__ = ["HrcState", "Reconnections"]


class HrcState(msgspec.Struct, frozen=True, array_like=True):
    """What a successor needs to give a session back to its reconnecting client: the
    tokens, the user, the rooms it knows (ids: the successor has their views), the request
    numbering and the last event sent; `dropped_at` if it had dropped already."""

    token: str
    resume_token: str
    zone: str
    me: dict[str, Any]
    rooms: list[int]
    created: list[int]
    ids: int
    last_seq: int
    dropped_at: float | None = None


class Reconnections:
    """The logged-in SFS2X sessions of one server by token; a dropped one is kept `window` s."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._sessions: dict[str, SfsSession] = {}
        #: (deadline, token) of dropped sessions, oldest first
        self._dropped: deque[tuple[float, str]] = deque()

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, session: SfsSession) -> None:
        """A session logged in (or took over a dropped one)."""
        self._sessions[session.token] = session

    def remove(self, session: SfsSession) -> None:
        """A session logged out or was closed for good (kick, ban, replaced)."""
        if self._sessions.get(session.token) is session:
            del self._sessions[session.token]

    def dropped(self, session: SfsSession, now: float) -> None:
        """A logged-in session's connection dropped: it can be taken back until `now + window`."""
        self._purge(now)
        if self._sessions.get(session.token) is session:
            self._dropped.append((now + self.window, session.token))

    def export(self) -> list[HrcState]:
        """The sessions a reconnecting client could take back (logged in, connected or
        dropped within the window)."""
        out = []
        for session in self._sessions.values():
            state = session.hrc_state()
            if state is not None:
                out.append(state)
        return out

    def adopt(self, session: SfsSession, now: float) -> None:
        """A dropped session rebuilt from a predecessor's `HrcState` (`SfsSession.adopt`)."""
        self._sessions[session.token] = session
        entry = (now + self.window, session.token)
        dropped = self._dropped
        if not dropped or dropped[-1] <= entry:
            dropped.append(entry)
        else:  # dropped before others already here: keep the deadlines in order
            dropped.insert(bisect.bisect(dropped, entry), entry)

    def take(self, token: str, now: float) -> SfsSession | None:
        """The session of `token`, removed (the new session adds itself), or None."""
        self._purge(now)
        return self._sessions.pop(token, None)

    def _purge(self, now: float) -> None:
        dropped, sessions = self._dropped, self._sessions
        while dropped and dropped[0][0] <= now:
            _, token = dropped.popleft()
            session = sessions.get(token)
            if (
                session is not None
                and session.dropped_at is not None
                and session.dropped_at + self.window <= now
            ):
                del sessions[token]
