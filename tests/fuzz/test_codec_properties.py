"""Property tests: the codecs round-trip, and hostile input yields only documented outcomes."""

from __future__ import annotations

import json

import msgspec
from hypothesis import given, settings, strategies as st

from protocol import messages as m
from protocol.codec import JSON, MSGPACK
from protocol.codes import CloseCode, ErrorCode
from protocol.limits import FloodLimits, SessionLimits
from protocol.session import Session

ERROR_CODES = {int(c) for c in ErrorCode}
CLOSE_CODES = set(CloseCode)

ids = st.integers(0, 2**53)
names = st.text(min_size=1, max_size=64)
room_ids = st.integers(0, 2**31 - 1)
texts = st.text(max_size=200)
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)  # JSON has no inf (rooms refuse it)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
variables = st.builds(m.Variable, name=names, value=values, private=st.booleans(), persistent=st.booleans())
room_refs = room_ids | names

MESSAGES = st.one_of(
    st.builds(
        m.Login, id=ids, token=st.none() | st.text(max_size=50), guest=st.booleans(), zone=st.none() | names
    ),
    st.builds(m.Resume, id=ids, token=st.text(max_size=100), last_seq=st.integers(0, 2**40)),
    st.builds(m.Logout, id=ids),
    st.builds(m.Ping, id=ids, t=st.none() | st.integers(-(2**40), 2**40)),
    st.builds(m.ListRooms, id=ids, group=st.none() | names),
    st.builds(m.SubscribeGroup, id=ids, group=names),
    st.builds(
        m.CreateRoom,
        id=ids,
        name=names,
        max_users=st.integers(1, 10_000),
        variables=st.lists(variables, max_size=3),
    ),
    st.builds(m.JoinRoom, id=ids, room=room_refs, password=st.text(max_size=20), spectator=st.booleans()),
    st.builds(m.LeaveRoom, id=ids, room=room_ids),
    st.builds(m.SwitchRole, id=ids, room=room_ids, spectator=st.booleans()),
    st.builds(
        m.PublicMessage,
        id=ids,
        room=room_ids,
        text=texts,
        data=st.none() | st.dictionaries(st.text(max_size=5), values, max_size=3),
    ),
    st.builds(m.PrivateMessage, id=ids, to=room_ids, text=texts),
    st.builds(
        m.ObjectMessage, id=ids, room=room_ids, data=st.dictionaries(st.text(max_size=5), values, max_size=3)
    ),
    st.builds(
        m.ModeratorMessage, id=ids, text=texts, scope=st.sampled_from(["user", "room", "group", "zone"])
    ),
    st.builds(
        m.SetRoomVariables, id=ids, room=room_ids, variables=st.lists(variables, min_size=1, max_size=3)
    ),
    st.builds(m.SetUserVariables, id=ids, variables=st.lists(variables, min_size=1, max_size=3)),
    st.builds(m.Kick, id=ids, user=room_ids, reason=st.text(max_size=20)),
    st.builds(m.Ban, id=ids, user=room_ids, hours=st.floats(0.01, 1000)),
)


@settings(max_examples=400)
@given(MESSAGES)
def test_every_message_round_trips_in_both_codecs(msg):
    """decode(encode(m)) == m for JSON and MessagePack."""
    assert JSON.decode(msgspec.json.encode(msg)) == msg
    assert MSGPACK.decode(msgspec.msgpack.encode(msg)) == msg


def check_outcome(session: Session) -> None:
    """Every output is a documented error reply, an ok to a ping, or a documented close."""
    for payload in session.data_to_send():
        reply = msgspec.json.decode(payload) if not session.codec.binary else msgspec.msgpack.decode(payload)
        assert reply["type"] in ("error", "ok")
        if reply["type"] == "error":
            assert reply["code"] in ERROR_CODES
            assert "Traceback" not in reply["message"]
    if session.close_expected():
        assert session.close_code in CLOSE_CODES


def fresh(codec) -> Session:
    s = Session(codec, SessionLimits(max_message_bytes=4096), FloodLimits(rate=1e6, burst=10**6), 0.0)
    s.authenticate()
    return s


@settings(max_examples=1000)
@given(st.binary(max_size=600), st.booleans())
def test_random_bytes_only_give_documented_outcomes(data, binary):
    for codec in (JSON, MSGPACK):
        s = fresh(codec)
        s.receive_message(data, binary, 1.0)
        s.requests_received()
        check_outcome(s)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=15,
)
typed_objects = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(m.CLIENT_TYPES) + ["", "nope"]), "id": json_values},
    optional={k: json_values for k in ("room", "text", "variables", "to", "group", "name", "user", "data")},
)


@settings(max_examples=1000)
@given(typed_objects | json_values)
def test_random_json_objects_decode_or_get_a_documented_error(obj):
    """Well-formed JSON with any shape: a decoded request, or an error naming its code."""
    s = fresh(JSON)
    s.receive_message(json.dumps(obj).encode(), False, 1.0)
    for req in s.requests_received():
        assert type(req) in m.CLIENT_TYPES.values()
    check_outcome(s)
