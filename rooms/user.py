"""A user logged into a zone."""

from __future__ import annotations

from protocol.messages import Variable

from .roles import Role
from .views import UserView


class User:
    """Zone-level state of one logged-in user (the session lives in the gameserver)."""

    __slots__ = ("id", "name", "role", "variables", "rooms", "groups", "rooms_created")

    def __init__(self, user_id: int, name: str, role: Role) -> None:
        self.id = user_id
        self.name = name
        self.role = role
        self.variables: dict[str, Variable] = {}
        self.rooms: set[int] = set()  # ids of joined rooms
        self.groups: set[str] = set()  # subscribed room groups
        self.rooms_created: set[int] = set()

    def view(self, player_id: int = 0) -> UserView:
        """The user as others see it (private variables left out)."""
        public = [v for v in self.variables.values() if not v.private]
        return UserView(self.id, self.name, int(self.role), public, player_id)

    def __repr__(self) -> str:
        return f"User({self.id}, {self.name!r}, {self.role.name})"
