"""Room and user search: match expressions over properties and variables.

An expression is a chain of conditions read left to right, each joined to the result so
far by its `logic` ("and" or "or"), without precedence, as SmartFoxServer 2X evaluates
its MatchExpression chains. A condition names either a room property (`prop`) or a room
variable (`var`). A value of another type than the operator needs (a number for `>`, a
string for `contains`, a bool for `==` on a bool) does not match, and neither does a
variable the room does not have: a search never fails on the rooms it looks at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from protocol.messages import Condition, UserCondition

from .room import Room
from .user import User
from .views import RoomView


def check(where: Iterable[Condition | UserCondition]) -> str | None:
    """Why an expression is malformed (a message naming the condition), or None."""
    for i, c in enumerate(where):
        if (c.prop is None) == (c.var is None):
            return f"where[{i}]: give exactly one of `prop` and `var`"
    return None


def _prop(room: Room | RoomView, prop: str) -> Any:
    if isinstance(room, Room):
        if prop == "users":
            return len(room.players)
        if prop == "spectators":
            return len(room.spectators)
        if prop == "locked":
            return bool(room.password)
        if prop == "free_slots":
            return len(room.players) < room.max_users
    else:
        if prop == "free_slots":
            return room.users < room.max_users
    return getattr(room, prop)


def _var(room: Room | RoomView, name: str) -> Any:
    if isinstance(room, Room):
        v = room.variables.get(name)
        return None if v is None else v.value
    for v in room.variables:
        if v.name == name:
            return v.value
    return None


def _test(have: Any, op: str, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(have, bool):  # bools compare only with bools
        if not (isinstance(want, bool) and isinstance(have, bool)):
            return False
        if op == "==":
            return have is want
        if op == "!=":
            return have is not want
        return False
    if isinstance(want, int | float):
        if not isinstance(have, int | float):
            return False
        if op == "==":
            return bool(have == want)
        if op == "!=":
            return bool(have != want)
        if op == ">":
            return bool(have > want)
        if op == ">=":
            return bool(have >= want)
        if op == "<":
            return bool(have < want)
        if op == "<=":
            return bool(have <= want)
        return False
    if not isinstance(have, str) or not isinstance(want, str):
        return False
    if op == "==":
        return have == want
    if op == "!=":
        return have != want
    if op == "contains":
        return want in have
    if op == "starts_with":
        return have.startswith(want)
    if op == "ends_with":
        return have.endswith(want)
    return False


def _chain(
    where: Iterable[Condition | UserCondition], value_of: Callable[[Condition | UserCondition], Any]
) -> bool:
    result: bool | None = None
    for c in where:
        ok = _test(value_of(c), c.op, c.value)
        if result is None:
            result = ok
        elif c.logic == "or":
            result = result or ok
        else:
            result = result and ok
    return True if result is None else result


def matches(room: Room | RoomView, where: Iterable[Condition]) -> bool:
    """True if `room` satisfies the chain (an empty chain matches every room)."""
    return _chain(where, lambda c: _prop(room, c.prop) if c.prop is not None else _var(room, c.var or ""))


def user_matches(user: User, player_id: int | None, where: Iterable[UserCondition]) -> bool:
    """True if `user` satisfies the chain in a room where its player id is `player_id`
    (1..N a player, -1 a spectator, 0 neither), or in no room (None). Only public
    variables are seen."""

    def value_of(c: Condition | UserCondition) -> Any:
        prop = c.prop
        if prop is None:
            var = user.variables.get(c.var or "")
            return None if var is None or var.private else var.value
        if prop == "name":
            return user.name
        if prop == "role":
            return int(user.role)
        if prop == "in_room":
            return player_id is not None
        if prop == "player":
            return player_id is not None and player_id > 0
        return player_id == -1  # spectator

    return _chain(where, value_of)
