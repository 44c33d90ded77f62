"""Room search: match expressions over a room's properties and variables.

An expression is a chain of conditions read left to right, each joined to the result so
far by its `logic` ("and" or "or"), without precedence, as SmartFoxServer 2X evaluates
its MatchExpression chains. A condition names either a room property (`prop`) or a room
variable (`var`). A value of another type than the operator needs (a number for `>`, a
string for `contains`, a bool for `==` on a bool) does not match, and neither does a
variable the room does not have: a search never fails on the rooms it looks at.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from protocol.messages import Condition

from .room import Room
from .views import RoomView


def check(where: Iterable[Condition]) -> str | None:
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


def matches(room: Room | RoomView, where: Iterable[Condition]) -> bool:
    """True if `room` satisfies the chain (an empty chain matches every room)."""
    result: bool | None = None
    for c in where:
        have = _prop(room, c.prop) if c.prop is not None else _var(room, c.var or "")
        ok = _test(have, c.op, c.value)
        if result is None:
            result = ok
        elif c.logic == "or":
            result = result or ok
        else:
            result = result and ok
    return True if result is None else result
