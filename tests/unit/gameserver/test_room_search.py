"""Room search and quick join on the hub (no sockets): find_rooms, quick_join's candidates
tried in turn, its room creation, and its errors."""

from __future__ import annotations

from protocol.codes import ErrorCode
from protocol.messages import Variable
from rooms.views import RoomView

from .fakes import Client, make_hub


def guest(hub, name):
    c = Client(hub)
    reply = c.send({"type": "login", "guest": True, "zone": "demo", "name": name})
    assert reply["type"] == "ok", reply
    return c, reply["data"]["user"]["id"]


def tables(hub):
    """Three game tables in group `slots` with a stake each (the fake zone has one more)."""
    owner, _ = guest(hub, "owner")
    for name, stake, seats in [("T5", 5, 2), ("T50", 50, 3), ("T500", 500, 3)]:
        r = owner.send(
            {
                "type": "create_room",
                "name": name,
                "group": "slots",
                "game": True,
                "max_users": seats,
                "variables": [{"name": "stake", "value": stake, "persistent": True}],
                "join": False,
            }
        )
        assert r["type"] == "ok", r
    return owner


def test_find_rooms_filters_by_variable_and_property():
    hub, _ = make_hub()
    c = tables(hub)
    r = c.send({"type": "find_rooms", "group": "slots", "where": [{"var": "stake", "op": ">=", "value": 50}]})
    assert [room["name"] for room in r["data"]["rooms"]] == ["T50", "T500"]
    r = c.send(
        {
            "type": "find_rooms",
            "where": [
                {"var": "stake", "op": "<", "value": 10},
                {"prop": "name", "op": "==", "value": "Lobby", "logic": "or"},
            ],
        }
    )
    assert [room["name"] for room in r["data"]["rooms"]] == ["Lobby", "T5"]
    bad = c.send({"type": "find_rooms", "where": [{"op": "==", "value": 1}]})
    assert (bad["code"], "where[0]" in bad["message"]) == (ErrorCode.BAD_REQUEST, True)
    assert c.send({"type": "find_rooms", "group": "nope"})["code"] == ErrorCode.GROUP_NOT_FOUND
    malformed = c.send({"type": "find_rooms", "where": [{"var": "stake", "op": "like", "value": 1}]})
    assert malformed["code"] == ErrorCode.BAD_REQUEST


def test_quick_join_seats_players_together_then_creates_a_table():
    hub, _ = make_hub()
    tables(hub)
    where = [{"var": "stake", "op": "==", "value": 50}]
    a, aid = guest(hub, "a")
    b, bid = guest(hub, "b")
    ra = a.send(
        {"type": "quick_join", "groups": ["slots"], "where": [{"var": "stake", "op": ">=", "value": 50}]}
    )
    assert ra["data"]["room"]["name"] == "T50"  # equally empty: the oldest first
    b.link.take()
    rb = b.send(
        {"type": "quick_join", "groups": ["slots"], "where": [{"var": "stake", "op": ">=", "value": 50}]}
    )
    assert rb["data"]["room"]["name"] == "T50"  # the fuller table: players gather
    assert [u["id"] for u in rb["data"]["users"]] == [aid, bid]
    assert a.link.events("user_entered")[0]["data"]["user"]["id"] == bid
    # T50 is now 2 of 3; a third fills it, a fourth gets a new table
    c, _ = guest(hub, "c")
    assert c.send({"type": "quick_join", "where": where})["data"]["room"]["name"] == "T50"
    d, _ = guest(hub, "d")
    assert d.send({"type": "quick_join", "where": where})["code"] == ErrorCode.ROOM_NOT_FOUND
    create = {"name": "T50 #2", "group": "slots", "game": True, "max_users": 3,
              "variables": [{"name": "stake", "value": 50}]}  # fmt: skip
    lobby = d.send({"type": "join_room", "room": "Lobby"})["data"]["room"]["id"]
    r = d.send({"type": "quick_join", "where": where, "create": create, "leave": lobby})
    assert r["type"] == "ok" and r["data"]["room"]["name"] == "T50 #2"
    room = hub.zones["demo"].rooms_by_name["T50 #2"]
    assert room.owner is not None and room.variables["stake"] == Variable("stake", 50)
    assert hub.zones["demo"].user(room.owner).rooms == {room.id}  # left the Lobby
    e, _ = guest(hub, "e")
    assert (
        e.send({"type": "quick_join", "where": where, "create": create})["data"]["room"]["name"] == "T50 #2"
    )
    f, _ = guest(hub, "f")  # a create that cannot be done is the reply
    taken = f.send(
        {"type": "quick_join", "where": [{"var": "stake", "op": "==", "value": 7}], "create": create}
    )
    assert taken["code"] == ErrorCode.ROOM_NAME_TAKEN


def test_quick_join_skips_a_stale_listing_and_locked_rooms():
    """A listed room that is gone (or full) when the join reaches it sends the quick join
    to the next candidate; password protected rooms are never candidates."""
    hub, _ = make_hub()
    tables(hub)
    zone = hub.zones["demo"]
    ghost = RoomView(
        id=999, name="Ghost", group="slots", game=True, hidden=False, locked=False, users=2, max_users=3
    )
    ghost.variables = [Variable("stake", 50)]
    zone.remote_rooms[999] = ghost  # listed, fuller than T50, but not hosted anywhere
    locked = RoomView(
        id=998, name="Vault", group="slots", game=True, hidden=False, locked=True, users=2, max_users=3
    )
    locked.variables = [Variable("stake", 50)]
    zone.remote_rooms[998] = locked
    a, _ = guest(hub, "a")
    r = a.send({"type": "quick_join", "where": [{"var": "stake", "op": "==", "value": 50}]})
    assert r["type"] == "ok" and r["data"]["room"]["name"] == "T50"
    assert a.send({"type": "quick_join", "groups": ["nope"]})["code"] == ErrorCode.GROUP_NOT_FOUND
    spectator = a.send(
        {"type": "quick_join", "where": [{"var": "stake", "op": "==", "value": 5}], "spectator": True}
    )
    assert spectator["code"] == ErrorCode.ROOM_NOT_FOUND  # T5 has no spectator seats


def test_invitation_requests_refuse_bad_input():
    """Malformed or pointless invitations get error replies; nothing is recorded."""
    from gameserver.invitations import InvitationService

    hub, _ = make_hub()
    svc = InvitationService(hub)  # no ticker: requests only
    hub.register(svc)
    a, aid = guest(hub, "a")
    assert a.send({"type": "invite", "users": [aid]})["code"] == ErrorCode.BAD_REQUEST  # only herself
    assert a.send({"type": "invite", "users": []})["code"] == ErrorCode.BAD_REQUEST
    assert a.send({"type": "invite", "users": list(range(1, 10))})["code"] == ErrorCode.BAD_REQUEST  # 9 > 8
    assert a.send({"type": "invite", "users": [5], "seconds": 4})["code"] == ErrorCode.BAD_REQUEST
    assert a.send({"type": "invite", "users": [5], "seconds": 301})["code"] == ErrorCode.BAD_REQUEST
    assert a.send({"type": "invite", "users": ["x"]})["code"] == ErrorCode.BAD_REQUEST
    unknown = a.send({"type": "invitation_reply", "invitation": 12345, "accept": True})
    assert unknown["code"] == ErrorCode.INVITATION_NOT_FOUND
    assert (
        a.send({"type": "invitation_reply", "invitation": 0, "accept": True})["code"] == ErrorCode.BAD_REQUEST
    )
    assert all(not inv.sent and not inv.received for inv in svc.zones.values())
