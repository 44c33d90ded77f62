"""Room and user search: match expressions over properties and variables.

An expression is a chain of conditions read left to right, each joined to the result so
far by its `logic` ("and" or "or"), without precedence, as SmartFoxServer 2X evaluates
its MatchExpression chains. A condition names either a property (`prop`) or a variable
(`var`). A value of another type than the operator needs (a number for `>`, a string for
`contains`, a bool for `==` on a bool) does not match, and neither does a variable that is
not there: a search never fails on what it looks at.

A chain is compiled once per search (`rooms_predicate`, `user_predicate`): each condition
becomes a value getter and a test specialised for its operator and value type, and a link
whose outcome cannot change the result is not evaluated (bench/room_search.py).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from protocol.messages import Condition, UserCondition

from .room import Room
from .user import User
from .views import RoomView

Test = Callable[[Any], bool]
_NUMBERS = (int, float)  # by exact type: a bool is not a number here
_COMPARE = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def check(where: Iterable[Condition | UserCondition]) -> str | None:
    """Why an expression is malformed (a message naming the condition), or None."""
    for i, c in enumerate(where):
        if (c.prop is None) == (c.var is None):
            return f"where[{i}]: give exactly one of `prop` and `var`"
    return None


def _never(have: Any) -> bool:
    return False


def compile_test(op: str, want: Any) -> Test:
    """`have <op> want`, false for a `have` of another type than `want` (bools compare
    only with bools, numbers with numbers, strings with strings)."""
    if type(want) is bool:
        if op == "==":
            return lambda have: have is want
        if op == "!=":
            other = not want
            return lambda have: have is other
        return _never
    if type(want) in _NUMBERS:
        compare = _COMPARE.get(op)
        if compare is None:
            return _never
        return lambda have: type(have) in _NUMBERS and bool(compare(have, want))
    if op == "==":
        return lambda have: have == want and type(have) is str
    if op == "!=":
        return lambda have: type(have) is str and have != want
    if op == "contains":
        return lambda have: type(have) is str and want in have
    if op == "starts_with":
        return lambda have: type(have) is str and have.startswith(want)
    if op == "ends_with":
        return lambda have: type(have) is str and have.endswith(want)
    return _never


def _chain(parts: Sequence[tuple[bool, Callable[[Any], Any], Test]]) -> Callable[[Any], bool]:
    """The left-to-right fold of `(is_or, value getter, test)` links."""
    if not parts:
        return lambda item: True
    (_, get0, test0), rest = parts[0], parts[1:]
    if not rest:
        return lambda item: test0(get0(item))

    def pred(item: Any) -> bool:
        result = test0(get0(item))
        for is_or, get, test in rest:
            if result is is_or:  # True OR x, False AND x: settled, x is not looked at
                continue
            result = test(get(item))
        return result

    return pred


def _room_getter(c: Condition) -> Callable[[Room], Any]:
    prop, name = c.prop, c.var or ""
    if prop is None:

        def var(room: Room) -> Any:
            v = room.variables.get(name)
            return None if v is None else v.value

        return var
    if prop == "users":
        return lambda room: len(room.players)
    if prop == "spectators":
        return lambda room: len(room.spectators)
    if prop == "locked":
        return lambda room: bool(room.password)
    if prop == "free_slots":
        return lambda room: len(room.players) < room.max_users
    return operator.attrgetter(prop)


def _view_getter(c: Condition) -> Callable[[RoomView], Any]:
    prop, name = c.prop, c.var or ""
    if prop is None:

        def var(view: RoomView) -> Any:
            for v in view.variables:
                if v.name == name:
                    return v.value
            return None

        return var
    if prop == "free_slots":
        return lambda view: view.users < view.max_users
    return operator.attrgetter(prop)


def rooms_predicate(where: Sequence[Condition]) -> tuple[Callable[[Room], bool], Callable[[RoomView], bool]]:
    """The chain as two predicates: one for rooms hosted here, one for listed views."""
    tests = [compile_test(c.op, c.value) for c in where]
    ors = [c.logic == "or" for c in where]
    hosted = _chain([(o, _room_getter(c), t) for o, c, t in zip(ors, where, tests, strict=True)])
    listed = _chain([(o, _view_getter(c), t) for o, c, t in zip(ors, where, tests, strict=True)])
    return hosted, listed


def matches(room: Room | RoomView, where: Sequence[Condition]) -> bool:
    """True if `room` satisfies the chain (an empty chain matches every room)."""
    hosted, listed = rooms_predicate(where)
    if isinstance(room, Room):
        return hosted(room)
    return listed(room)


def _user_getter(c: UserCondition) -> Callable[[tuple[User, int | None]], Any]:
    prop, name = c.prop, c.var or ""
    if prop is None:

        def var(item: tuple[User, int | None]) -> Any:
            v = item[0].variables.get(name)
            return None if v is None or v.private else v.value

        return var
    if prop == "name":
        return lambda item: item[0].name
    if prop == "role":
        return lambda item: int(item[0].role)
    if prop == "in_room":
        return lambda item: item[1] is not None
    if prop == "player":
        return lambda item: item[1] is not None and item[1] > 0
    return lambda item: item[1] == -1  # spectator


def user_predicate(where: Sequence[UserCondition]) -> Callable[[User, int | None], bool]:
    """The chain over a user in a room where its player id is the second argument (1..N a
    player, -1 a spectator, 0 neither), or in no room (None). Only public variables are seen."""
    pred = _chain([(c.logic == "or", _user_getter(c), compile_test(c.op, c.value)) for c in where])
    return lambda user, player_id: pred((user, player_id))


def user_matches(user: User, player_id: int | None, where: Sequence[UserCondition]) -> bool:
    """`user_predicate(where)(user, player_id)`."""
    return user_predicate(where)(user, player_id)
