"""The dispatcher under random request sequences: no crash, and only documented replies."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from protocol.codes import ErrorCode
from tests.unit.gameserver.fakes import Client, make_hub

ERROR_CODES = {int(c) for c in ErrorCode}

small_ints = st.integers(-2, 3) | st.sampled_from([1_500_000_000, 1_500_000_001, 2**31])
refs = small_ints | st.sampled_from(["Lobby", "Table", "Nope", ""])
requests = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("login"), "guest": st.booleans(), "zone": st.sampled_from(["demo", "closed", "x"])}
    ),
    st.fixed_dictionaries({"type": st.just("join_room"), "room": refs, "spectator": st.booleans()}),
    st.fixed_dictionaries({"type": st.just("leave_room"), "room": small_ints}),
    st.fixed_dictionaries(
        {"type": st.just("create_room"), "name": st.sampled_from(["A", "B", "Lobby"]), "game": st.booleans()}
    ),
    st.fixed_dictionaries(
        {"type": st.just("public_message"), "room": small_ints, "text": st.text(max_size=20)}
    ),
    st.fixed_dictionaries({"type": st.just("private_message"), "to": small_ints, "text": st.just("x")}),
    st.fixed_dictionaries(
        {
            "type": st.just("set_room_variables"),
            "room": small_ints,
            "variables": st.lists(
                st.fixed_dictionaries(
                    {"name": st.sampled_from(["a", "b"]), "value": st.none() | st.integers()}
                ),
                min_size=1,
                max_size=3,
            ),
        }
    ),
    st.fixed_dictionaries({"type": st.just("switch_role"), "room": small_ints, "spectator": st.booleans()}),
    st.fixed_dictionaries({"type": st.sampled_from(["kick", "ban"]), "user": small_ints}),
    st.fixed_dictionaries({"type": st.sampled_from(["logout", "list_rooms", "ping", "warp"])}),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), requests), max_size=30))
def test_random_sessions_never_crash_the_hub(steps):
    hub, clock = make_hub()
    clients = [Client(hub) for _ in range(3)]
    for who, req in steps:
        reply = clients[who].send(dict(req))
        if reply is not None and reply["type"] == "error":
            assert reply["code"] in ERROR_CODES
            assert reply["code"] != ErrorCode.INTERNAL, reply
        clock.advance(0.01)
    hub.sweep()
    hub.flush()
    # Invariants of the zone after any sequence
    zone = hub.zones["demo"]
    for room in zone.rooms.values():
        for uid in room.members:
            assert room.id in zone.users[uid].rooms
        assert len(room.players) <= room.max_users
    for user in zone.users.values():
        for rid in user.rooms:
            assert zone.rooms[rid].is_member(user.id)
    assert set(zone.users) == {uid for (z, uid) in hub.players if z == "demo"}
