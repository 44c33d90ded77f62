"""Zone configuration: each white-label partner is a zone with its own rooms and policies."""

from __future__ import annotations

from typing import Literal

from msgspec import Struct, field

from protocol.limits import FloodLimits
from protocol.messages import Variable


class RoomConfig(Struct, frozen=True, forbid_unknown_fields=True):
    """A room that exists from start-up (never removed when empty)."""

    name: str
    group: str = "default"
    game: bool = False
    max_users: int = 100
    max_spectators: int = 0
    password: str = ""
    hidden: bool = False
    variables: list[Variable] = []


class ZoneConfig(Struct, frozen=True, forbid_unknown_fields=True):
    """One zone. Users of one zone never see another zone's users, rooms or messages."""

    name: str
    guests: bool = False  # may guests log in?
    max_users: int = 100_000
    #: Who may create rooms: nobody, registered users (and above), or everyone.
    room_creation: Literal["none", "users", "everyone"] = "users"
    max_rooms_per_user: int = 3
    max_rooms: int = 10_000
    groups: list[str] = field(default_factory=lambda: ["default"])
    #: Groups every user is subscribed to at login.
    default_groups: list[str] = field(default_factory=lambda: ["default"])
    #: May users create rooms in groups that are not listed in `groups`?
    open_groups: bool = False
    rooms: list[RoomConfig] = []
    max_user_variables: int = 16
    max_room_variables: int = 32
    max_variable_bytes: int = 1024  # the encoded size of one variable's value
    max_text_length: int = 1024
    flood: FloodLimits = field(default_factory=FloodLimits)
    #: Partner branding (name, logo URL, colours...): opaque to the server, sent at login.
    branding: dict[str, str] = {}
