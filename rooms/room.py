"""A room: members (players and spectators), settings and variables."""

from __future__ import annotations

from protocol.messages import Variable

from .views import RoomView


class Room:
    """One room of a zone. Membership changes go through `Zone`, which emits events."""

    __slots__ = (
        "id",
        "name",
        "group",
        "game",
        "max_users",
        "max_spectators",
        "password",
        "hidden",
        "owner",
        "static",
        "players",
        "spectators",
        "variables",
        "var_setters",
    )

    def __init__(
        self,
        room_id: int,
        name: str,
        group: str,
        *,
        game: bool = False,
        max_users: int = 10,
        max_spectators: int = 0,
        password: str = "",
        hidden: bool = False,
        owner: int | None = None,
        static: bool = False,
    ) -> None:
        self.id = room_id
        self.name = name
        self.group = group
        self.game = game
        self.max_users = max_users
        self.max_spectators = max_spectators if game else 0
        self.password = password
        self.hidden = hidden
        self.owner = owner  # user id of the creator; None for configured rooms
        self.static = static  # configured rooms are never removed when empty
        #: user id -> player id (1..N in game rooms, 0 otherwise), in join order
        self.players: dict[int, int] = {}
        self.spectators: set[int] = set()
        self.variables: dict[str, Variable] = {}
        self.var_setters: dict[str, int] = {}  # variable name -> user id that set it

    @property
    def members(self) -> list[int]:
        """Every user in the room, players first."""
        return [*self.players, *self.spectators]

    def is_member(self, user_id: int) -> bool:
        return user_id in self.players or user_id in self.spectators

    def is_empty(self) -> bool:
        return not self.players and not self.spectators

    def player_id(self, user_id: int) -> int:
        """1..N for players of a game room, -1 for spectators, 0 otherwise."""
        if user_id in self.spectators:
            return -1
        return self.players.get(user_id, 0)

    def free_player_id(self) -> int:
        """The lowest player id not taken (0 in non-game rooms)."""
        if not self.game:
            return 0
        taken = set(self.players.values())
        pid = 1
        while pid in taken:
            pid += 1
        return pid

    def view(self) -> RoomView:
        return RoomView(
            id=self.id,
            name=self.name,
            group=self.group,
            game=self.game,
            hidden=self.hidden,
            locked=bool(self.password),
            users=len(self.players),
            max_users=self.max_users,
            spectators=len(self.spectators),
            max_spectators=self.max_spectators,
            variables=list(self.variables.values()),
        )

    def __repr__(self) -> str:
        return f"Room({self.id}, {self.name!r}, {len(self.players)}+{len(self.spectators)})"
