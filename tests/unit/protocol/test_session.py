"""The sans-I/O session, driven with bytes and a fake clock value, no sockets."""

from __future__ import annotations

import json

import msgspec
import pytest

from protocol.codec import JSON, MSGPACK
from protocol.codes import CloseCode, ErrorCode
from protocol.events import OutEvent
from protocol.limits import FloodLimits, SessionLimits
from protocol.messages import JoinRoom, Login
from protocol.session import AUTHENTICATED, CLOSING, OPEN, Session


def make(codec=JSON, **limits) -> Session:
    return Session(codec, SessionLimits(**limits), FloodLimits(rate=1000, burst=1000), now=0.0)


def sent(session: Session) -> list[dict]:
    return [json.loads(p) for p in session.data_to_send()]


def feed(session: Session, obj: object, now: float = 1.0) -> None:
    session.receive_message(json.dumps(obj).encode(), False, now)


def test_login_request_is_admitted_before_authentication():
    """A login request comes out of requests_received while the session is OPEN."""
    s = make()
    feed(s, {"type": "login", "id": 1, "guest": True, "zone": "demo"})
    assert s.requests_received() == [Login(id=1, guest=True, zone="demo")]
    assert s.state is OPEN


def test_room_request_before_login_is_refused():
    """Anything but login/resume/ping before login gets NOT_LOGGED_IN, naming the request id."""
    s = make()
    feed(s, {"type": "join_room", "id": 7, "room": 1})
    assert s.requests_received() == []
    [err] = sent(s)
    assert err == {
        "type": "error",
        "id": 7,
        "code": ErrorCode.NOT_LOGGED_IN,
        "name": "not_logged_in",
        "message": "log in first",
    }


def test_authenticated_session_admits_room_requests():
    """After authenticate(), requests are passed on to the application."""
    s = make()
    s.authenticate()
    feed(s, {"type": "join_room", "id": 2, "room": "Lobby"})
    assert s.requests_received() == [JoinRoom(id=2, room="Lobby")]
    assert s.state is AUTHENTICATED


def test_ping_is_answered_by_the_session_itself():
    """A ping gets an ok with the echoed client time and the server time in ms."""
    s = make()
    feed(s, {"type": "ping", "id": 3, "t": 42}, now=2.5)
    assert s.requests_received() == []
    assert sent(s) == [{"type": "ok", "id": 3, "data": {"t": 42, "now": 2500}}]


@pytest.mark.parametrize(
    ("raw", "code", "rid"),
    [
        (b"{not json", ErrorCode.MALFORMED, None),
        (b"[1,2,3]", ErrorCode.MALFORMED, None),
        (b'{"type":"teleport","id":5}', ErrorCode.UNKNOWN_MESSAGE, 5),
        (b'{"id":5}', ErrorCode.BAD_REQUEST, 5),
        (b'{"type":"join_room","id":6}', ErrorCode.BAD_REQUEST, 6),
        (b'{"type":"join_room","id":6,"room":true}', ErrorCode.BAD_REQUEST, 6),
        (b'{"type":"join_room","id":-1,"room":1}', ErrorCode.BAD_REQUEST, -1),
        (b'{"type":"ping","id":"x"}', ErrorCode.BAD_REQUEST, None),
    ],
)
def test_bad_requests_get_their_error_code_and_keep_the_session(raw, code, rid):
    """Malformed, unknown or mistyped requests are answered with an error; nothing closes."""
    s = make()
    s.authenticate()
    s.receive_message(raw, False, 1.0)
    [err] = sent(s)
    assert err["type"] == "error"
    assert err["code"] == code
    assert err["id"] == rid
    assert not s.close_expected()


def test_wrong_type_error_names_the_field():
    """The msgspec path tells the client developer which field was wrong."""
    s = make()
    s.authenticate()
    feed(s, {"type": "join_room", "id": 1, "room": 1, "spectator": "yes"})
    [err] = sent(s)
    assert "$.spectator" in err["message"]


def test_text_frame_on_msgpack_session_closes_with_1003():
    """A MessagePack session only accepts binary messages."""
    s = make(MSGPACK)
    s.receive_message(b'{"type":"ping","id":1}', False, 1.0)
    assert s.close_expected()
    assert s.close_code is CloseCode.UNSUPPORTED_DATA


def test_binary_frame_on_json_session_closes_with_1003():
    s = make(JSON)
    s.receive_message(msgspec.msgpack.encode({"type": "ping", "id": 1}), True, 1.0)
    assert s.close_code is CloseCode.UNSUPPORTED_DATA


def test_msgpack_session_round_trip():
    """MessagePack requests decode to the same messages and replies are MessagePack."""
    s = make(MSGPACK)
    s.receive_message(msgspec.msgpack.encode({"type": "ping", "id": 9, "t": 1}), True, 1.0)
    [reply] = s.data_to_send()
    assert msgspec.msgpack.decode(reply) == {"type": "ok", "id": 9, "data": {"t": 1, "now": 1000}}


def test_oversize_message_closes_with_1009():
    """A message above max_message_bytes closes the session, it is not decoded."""
    s = make(max_message_bytes=300)
    s.receive_message(b'{"type":"ping","id":1,"t":' + b"1" * 300 + b"}", False, 1.0)
    assert s.close_code is CloseCode.MESSAGE_TOO_BIG
    assert s.data_to_send() == []


def test_flood_warns_then_disconnects():
    """Above the rate, messages are dropped with RATE_LIMITED, then the session closes (4006)."""
    s = Session(JSON, SessionLimits(), FloodLimits(rate=1, burst=2, max_warnings=2), now=0.0)
    s.authenticate()
    for i in range(4):
        feed(s, {"type": "ping", "id": i}, now=0.0)
    codes = [m.get("code") for m in sent(s)]
    assert codes == [None, None, ErrorCode.RATE_LIMITED, ErrorCode.RATE_LIMITED]
    assert not s.close_expected()
    feed(s, {"type": "ping", "id": 9}, now=0.0)
    assert s.close_code is CloseCode.RATE_LIMITED


def test_flood_bucket_refills_with_time():
    """After a quiet second the client may send again."""
    s = Session(JSON, SessionLimits(), FloodLimits(rate=2, burst=2, max_warnings=0), now=0.0)
    feed(s, {"type": "ping", "id": 1}, now=0.0)
    feed(s, {"type": "ping", "id": 2}, now=0.0)
    feed(s, {"type": "ping", "id": 3}, now=1.0)
    assert not s.close_expected()
    assert [m["id"] for m in sent(s)] == [1, 2, 3]


def test_auth_timeout():
    """A connection that never logs in is closed with 4001 after auth_timeout."""
    s = make(auth_timeout=5)
    s.check_timeouts(4.9)
    assert not s.close_expected()
    s.check_timeouts(5.1)
    assert s.close_code is CloseCode.AUTH_TIMEOUT


def test_idle_timeout_counts_from_last_message():
    """A logged-in session closes with 4002 when nothing arrives for idle_timeout."""
    s = make(idle_timeout=10)
    s.authenticate()
    feed(s, {"type": "ping", "id": 1}, now=8.0)
    s.check_timeouts(17.0)
    assert not s.close_expected()
    s.check_timeouts(18.5)
    assert s.close_code is CloseCode.IDLE_TIMEOUT


def test_events_carry_seq_and_are_encoded_once():
    """send_event wraps the cached body; two sessions share one encoding of the payload."""
    a, b = make(), make()
    ev = OutEvent("user_left", {"room": 1, "user": 2})
    a.send_event(5, ev)
    b.send_event(9, ev)
    assert ev.body(JSON) is ev.body(JSON)
    assert sent(a) == [{"type": "event", "seq": 5, "event": "user_left", "data": {"room": 1, "user": 2}}]
    assert sent(b)[0]["seq"] == 9


def test_outgoing_queue_overflow_closes_as_too_slow():
    """More pending messages than max_pending_messages closes with 4007 and frees the queue."""
    s = make(max_pending_messages=3)
    for i in range(4):
        s.reply(i)
    assert s.close_code is CloseCode.TOO_SLOW
    assert s.data_to_send() == []


def test_input_after_close_is_ignored():
    s = make()
    s.close(CloseCode.NORMAL)
    feed(s, {"type": "ping", "id": 1})
    assert s.data_to_send() == []
    assert s.state is CLOSING


def test_logout_returns_to_open_and_restarts_auth_clock():
    s = make(auth_timeout=5)
    s.authenticate()
    s.deauthenticate()
    s.restart_auth_clock(100.0)
    s.check_timeouts(104.0)
    assert s.state is OPEN
    s.check_timeouts(105.5)
    assert s.close_code is CloseCode.AUTH_TIMEOUT
