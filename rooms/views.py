"""Wire views of users and rooms, as sent in replies and events."""

from __future__ import annotations

from msgspec import Struct

from protocol.messages import Variable


class UserView(Struct, omit_defaults=True):
    id: int
    name: str
    role: int
    variables: list[Variable] = []
    player_id: int = 0  # in a game room: 1..N for players, -1 for spectators


class RoomView(Struct, omit_defaults=True):
    id: int
    name: str
    group: str
    game: bool
    hidden: bool
    locked: bool  # password protected
    users: int
    max_users: int
    spectators: int = 0
    max_spectators: int = 0
    variables: list[Variable] = []


class JoinedView(Struct):
    """The reply to join_room / create_room(join=true)."""

    room: RoomView
    users: list[UserView]
