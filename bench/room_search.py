"""Room search in a zone of many rooms (no I/O): find_rooms and quick join's candidates
against list_rooms, the plain listing the clients had before, side by side.

A lobby group of game tables, a third of them hosted by "another worker" (listed views,
as a sharded zone has them), each with a `stake` variable and some players. Each case runs
one request's zone work (the reply data; no encoding): `list_rooms` of the group,
`find_rooms` with a two-condition expression (a variable and a property), `find_rooms`
matching nothing, and `quick_join_candidates`. Reports microseconds per call and the ratio
to list_rooms of the same zone, best of several repeats.

Run: ``python -m bench.room_search`` (``--rooms 1000,10000``)
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from functools import partial

from protocol.messages import Condition, Variable
from rooms.config import ZoneConfig
from rooms.roles import Role
from rooms.user import User
from rooms.views import RoomView
from rooms.zone import Zone

REPEATS = 5
ME = 1


def build(rooms: int) -> Zone:
    """A zone with `rooms` game tables in group "tables" (every third listed from elsewhere)."""
    zone = Zone(ZoneConfig(name="bench", guests=True, groups=["tables"], max_rooms=rooms + 10))
    zone.add_user(User(ME, "me", Role.USER))
    for i in range(rooms):
        stake = (5, 25, 100, 500)[i % 4]
        seated = i % 4  # 0-3 of 4 seats taken
        if i % 3 == 2:
            view = RoomView(
                id=100_000 + i, name=f"far-{i}", group="tables", game=True, hidden=False, locked=False,
                users=seated, max_users=4, variables=[Variable("stake", stake)],
            )  # fmt: skip
            zone.remote_rooms[view.id] = view
            continue
        room = zone._new_room(f"table-{i}", "tables", game=True, max_users=4)
        room.variables["stake"] = Variable("stake", stake)
        for seat in range(seated):
            room.players[10_000 + i * 4 + seat] = seat + 1
    return zone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", default="1000,10000", help="zone sizes, comma-separated")
    args = parser.parse_args()
    where = [
        Condition(op="==", value=100, var="stake"),
        Condition(op="==", value=True, prop="free_slots"),
    ]
    nothing = [Condition(op="<", value=0, var="stake")]
    for n in (int(x) for x in args.rooms.split(",")):
        zone = build(n)
        cases: dict[str, Callable[[], object]] = {
            "list_rooms": partial(zone.list_rooms, ME, "tables"),
            "find_rooms (2 conditions)": partial(zone.find_rooms, ME, "tables", where, 100),
            "find_rooms (no match)": partial(zone.find_rooms, ME, "tables", nothing, 100),
            "quick_join_candidates": partial(zone.quick_join_candidates, ME, ["tables"], where, False, 5),
        }
        number = max(1, 200_000 // n)
        base = 0.0
        print(
            f"{n:,} rooms ({n - n // 3:,} hosted, {n // 3:,} listed from elsewhere), {number} calls per repeat"
        )
        for label, call in cases.items():
            best = min(timeit.repeat(call, number=number, repeat=REPEATS)) / number
            base = base or best
            print(f"  {label:<28} {best * 1e6:>10,.1f} µs   x{best / base:.2f} of list_rooms")


if __name__ == "__main__":
    main()
