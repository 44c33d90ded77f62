"""Sessions on the hub: login, second login, resume and replay, logout, kick, timeouts."""

from __future__ import annotations

from gameserver import auth
from protocol.codes import CloseCode, ErrorCode
from protocol.events import OutEvent
from rooms.roles import Role
from rooms.user import User

from .fakes import SECRET, Client, make_hub


def token(clock, user=42, zone="demo", role="user", ttl=3600, name="alice"):
    return auth.mint(SECRET, user, zone, name=name, role=role, expires=int(clock.wall()) + ttl)


def guest(hub, name="g"):
    c = Client(hub)
    reply = c.send({"type": "login", "guest": True, "zone": "demo", "name": name})
    assert reply["type"] == "ok", reply
    return c, reply["data"]


def test_token_login_gives_user_rooms_and_resume_token():
    hub, clock = make_hub()
    c = Client(hub)
    reply = c.send({"type": "login", "token": token(clock)})
    data = reply["data"]
    assert data["user"] == {"id": 42, "name": "alice", "role": 1}
    assert data["zone"] == "demo"
    assert [r["name"] for r in data["rooms"]] == ["Lobby"]
    assert data["resume_token"] and data["heartbeat"] == 20.0


def test_login_errors():
    hub, clock = make_hub()
    c = Client(hub)
    assert c.send({"type": "login", "token": "junk"})["code"] == ErrorCode.BAD_TOKEN
    expired = token(clock, ttl=-1)
    assert c.send({"type": "login", "token": expired})["code"] == ErrorCode.TOKEN_EXPIRED
    forged = auth.mint("other", 42, "demo", expires=int(clock.wall()) + 60)
    assert c.send({"type": "login", "token": forged})["code"] == ErrorCode.BAD_TOKEN
    assert c.send({"type": "login", "guest": True, "zone": "closed"})["code"] == ErrorCode.GUESTS_NOT_ALLOWED
    assert c.send({"type": "login", "guest": True, "zone": "nope"})["code"] == ErrorCode.ZONE_NOT_FOUND
    assert c.send({"type": "login", "guest": True})["code"] == ErrorCode.BAD_REQUEST
    assert (
        c.send({"type": "login", "guest": True, "zone": "demo", "name": "<script>"})["code"]
        == ErrorCode.BAD_NAME
    )
    guest_range = c.send({"type": "login", "token": token(clock, user=1_500_000_001)})
    assert guest_range["code"] == ErrorCode.BAD_TOKEN  # ids from the guest range would collide
    bad_zone = c.send({"type": "login", "token": token(clock), "zone": "closed"})
    assert bad_zone["code"] == ErrorCode.BAD_TOKEN
    assert c.link.closed is None  # failed logins keep the connection


def test_guest_ids_are_distinct_and_names_default():
    hub, _ = make_hub()
    _, a = guest(hub, "a")
    c = Client(hub)
    b = c.send({"type": "login", "guest": True, "zone": "demo"})["data"]
    assert a["user"]["id"] != b["user"]["id"]
    assert b["user"]["name"].startswith("Guest#")


def test_double_login_on_one_connection_is_refused():
    hub, _ = make_hub()
    c, _ = guest(hub)
    again = c.send({"type": "login", "guest": True, "zone": "demo"})
    assert again["code"] == ErrorCode.ALREADY_LOGGED_IN


def test_second_login_of_same_user_closes_the_older_session():
    hub, clock = make_hub()
    old, new = Client(hub), Client(hub)
    old.send({"type": "login", "token": token(clock)})
    old.send({"type": "join_room", "room": "Lobby"})
    new.send({"type": "login", "token": token(clock)})
    hub.flush()
    assert old.link.closed[0] == CloseCode.SESSION_REPLACED
    old.drop()
    assert len(hub.players) == 1
    reply = new.send({"type": "join_room", "room": "Lobby"})
    assert reply["type"] == "ok"  # the old membership was cleared


def test_two_clients_see_each_others_events():
    hub, _ = make_hub()
    a, _ = guest(hub, "a")
    b, bdata = guest(hub, "b")
    a.send({"type": "join_room", "room": "Lobby"})
    a.link.take()
    b.send({"type": "join_room", "room": "Lobby"})
    entered = a.link.events("user_entered")
    assert entered[0]["data"]["user"]["id"] == bdata["user"]["id"]
    b.send({"type": "public_message", "room": 1, "text": "hello"})
    [msg] = a.link.events("public_message")
    assert msg["data"]["text"] == "hello"
    b.send({"type": "set_user_variables", "variables": [{"name": "chips", "value": 10}]})
    [uv] = a.link.events("user_variables")
    assert uv["data"]["variables"] == [{"name": "chips", "value": 10}]


def test_event_seq_increases_per_session():
    hub, _ = make_hub()
    a, _ = guest(hub, "a")
    a.send({"type": "join_room", "room": "Lobby"})
    for i in range(3):
        a.send({"type": "public_message", "room": 1, "text": str(i)})
    seqs = [e["seq"] for e in a.link.events()]
    assert seqs == list(range(1, len(seqs) + 1))


def test_resume_replays_missed_events_and_keeps_rooms():
    hub, clock = make_hub(resume_grace=30)
    a, adata = guest(hub, "a")
    b, _ = guest(hub, "b")
    a.send({"type": "join_room", "room": "Lobby"})
    b.send({"type": "join_room", "room": "Lobby"})
    last = max(e["seq"] for e in a.link.events())
    a.drop()  # unexpected: no close code from the client
    b.send({"type": "public_message", "room": 1, "text": "while you were away"})
    clock.advance(10)
    hub.sweep()
    a2 = Client(hub)
    reply = a2.send({"type": "resume", "token": adata["resume_token"], "last_seq": last})
    assert reply["type"] == "ok"
    hub.flush()
    replayed = a2.link.events("public_message")
    assert [e["data"]["text"] for e in replayed] == ["while you were away"]
    assert replayed[0]["seq"] == last + 1
    assert a2.send({"type": "public_message", "room": 1, "text": "back"})["type"] == "ok"


def test_a_session_restored_after_a_crash_resumes_once_with_a_gap():
    """A session from a crashed worker's checkpoint (gameserver/checkpoint.py) has no
    events: its first resume is accepted whatever seq the client saw, says `gap`, and
    numbers the events pushed since the restore after the client's seq; the next resume
    is an ordinary one."""
    from gameserver.handover import SessionState, import_sessions

    hub, clock = make_hub(resume_grace=30)
    import_sessions(hub, [SessionState("demo", 42, "alice", 1, "rt-42", "sid", 0, [])], restored=True)
    hub.zones["demo"].add_user(User(42, "alice", Role.USER))
    player = hub.players[("demo", 42)]
    player.push(OutEvent("notice", {"n": 1}))  # sent after the restore, before the resume
    c = Client(hub)
    reply = c.send({"type": "resume", "token": "rt-42", "last_seq": 57})
    assert reply["data"] == {"user": 42, "last_seq": 58, "gap": True}
    hub.flush()
    assert [(e["seq"], e["data"]) for e in c.link.events("notice")] == [(58, {"n": 1})]
    c.drop()
    again = Client(hub)
    assert again.send({"type": "resume", "token": "rt-42", "last_seq": 99})["code"] == ErrorCode.RESUME_FAILED
    reply = again.send({"type": "resume", "token": "rt-42", "last_seq": 58})
    assert reply["data"] == {"user": 42, "last_seq": 58}


def test_resume_fails_after_grace_window():
    hub, clock = make_hub(resume_grace=5)
    a, adata = guest(hub, "a")
    a.send({"type": "join_room", "room": "Lobby"})
    a.drop()
    clock.advance(6)
    hub.sweep()
    assert not hub.players
    r = Client(hub).send({"type": "resume", "token": adata["resume_token"], "last_seq": 0})
    assert r["code"] == ErrorCode.RESUME_FAILED
    assert hub.zones["demo"].room("Lobby").members == []


def test_resume_fails_when_replay_buffer_overflowed():
    hub, _ = make_hub(replay_buffer=2)
    a, adata = guest(hub, "a")
    b, _ = guest(hub, "b")
    a.send({"type": "join_room", "room": "Lobby"})
    b.send({"type": "join_room", "room": "Lobby"})
    a.drop()
    for i in range(5):
        b.send({"type": "public_message", "room": 1, "text": str(i)})
    r = Client(hub).send({"type": "resume", "token": adata["resume_token"], "last_seq": 1})
    assert r["code"] == ErrorCode.RESUME_FAILED


def test_client_close_1000_ends_the_session_at_once():
    hub, _ = make_hub()
    a, _ = guest(hub, "a")
    a.drop(peer_code=1000)
    assert not hub.players


def test_logout_leaves_rooms_and_allows_new_login_on_same_connection():
    hub, _ = make_hub()
    a, _ = guest(hub, "a")
    b, _ = guest(hub, "b")
    a.send({"type": "join_room", "room": "Lobby"})
    b.send({"type": "join_room", "room": "Lobby"})
    b.link.take()
    assert a.send({"type": "logout"})["data"] == {"zone": "demo"}
    assert b.link.events("user_left")
    assert a.send({"type": "join_room", "room": "Lobby"})["code"] == ErrorCode.NOT_LOGGED_IN
    assert a.send({"type": "login", "guest": True, "zone": "demo"})["type"] == "ok"


def test_kick_closes_target_with_4004_after_a_notice():
    hub, clock = make_hub()
    mod = Client(hub)
    mod.send({"type": "login", "token": token(clock, user=7, role="moderator", name="mod")})
    victim, vdata = guest(hub, "v")
    r = mod.send({"type": "kick", "user": vdata["user"]["id"], "reason": "spam"})
    assert r["type"] == "ok"
    hub.flush()
    assert victim.link.events("kicked")[0]["data"]["reason"] == "spam"
    assert victim.link.closed[0] == CloseCode.KICKED
    assert (("demo", vdata["user"]["id"])) not in hub.players


def test_ban_refuses_the_next_login():
    hub, clock = make_hub()
    mod = Client(hub)
    mod.send({"type": "login", "token": token(clock, user=7, role="moderator")})
    victim = Client(hub)
    victim.send({"type": "login", "token": token(clock, user=8)})
    mod.send({"type": "ban", "user": 8, "hours": 1})
    hub.flush()
    assert victim.link.closed[0] == CloseCode.BANNED
    again = Client(hub).send({"type": "login", "token": token(clock, user=8)})
    assert again["code"] == ErrorCode.USER_BANNED
    clock.advance(3601)
    assert Client(hub).send({"type": "login", "token": token(clock, user=8)})["type"] == "ok"


def test_sweep_closes_idle_and_unauthenticated_connections():
    hub, clock = make_hub(auth_timeout=5, idle_timeout=30, heartbeat_interval=10)
    lurker = Client(hub)
    active, _ = guest(hub)
    clock.advance(6)
    hub.sweep()
    hub.flush()
    assert lurker.link.closed[0] == CloseCode.AUTH_TIMEOUT
    assert active.link.closed is None
    clock.advance(25)
    hub.sweep()
    hub.flush()
    assert active.link.closed[0] == CloseCode.IDLE_TIMEOUT


def test_slow_reader_is_closed_as_too_slow():
    hub, _ = make_hub(max_outgoing_bytes=100)
    a, _ = guest(hub, "a")
    b, _ = guest(hub, "b")
    a.send({"type": "join_room", "room": "Lobby"})
    b.send({"type": "join_room", "room": "Lobby"})
    a.link.backlog = 1000  # the kernel buffer is full: a stopped reading
    b.send({"type": "public_message", "room": 1, "text": "x"})
    hub.flush()
    assert a.link.closed == (0, "aborted")
    assert a.conn.session.close_code == CloseCode.TOO_SLOW
    assert b.link.closed is None


def test_shutdown_asks_everyone_to_go_away():
    hub, _ = make_hub()
    a, _ = guest(hub)
    hub.shutdown()
    hub.flush()
    assert a.link.closed[0] == CloseCode.GOING_AWAY
    late = Client(hub)
    hub.flush()
    assert late.link.closed[0] == CloseCode.GOING_AWAY


def test_room_errors_reach_the_client_as_error_replies():
    hub, _ = make_hub()
    a, _ = guest(hub)
    r = a.send({"type": "join_room", "room": "Nowhere"})
    assert r == {
        "type": "error",
        "id": r["id"],
        "code": ErrorCode.ROOM_NOT_FOUND,
        "name": "room_not_found",
        "message": "no room 'Nowhere'",
    }
