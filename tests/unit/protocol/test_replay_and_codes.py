"""Event log replay bounds, codec negotiation and the code table."""

from __future__ import annotations

from protocol.codec import JSON, MSGPACK, choose_subprotocol
from protocol.codes import CloseCode, ErrorCode
from protocol.events import OutEvent
from protocol.replay import EventLog


def test_event_log_replays_what_was_missed():
    log = EventLog(capacity=3)
    evs = [OutEvent(f"e{i}") for i in range(5)]
    for e in evs:
        log.append(e)
    assert log.last_seq == 5
    assert [s for s, _ in log.since(3)] == [4, 5]
    assert log.since(5) == []


def test_event_log_refuses_when_events_were_dropped():
    """A client too far behind must log in again: since() returns None."""
    log = EventLog(capacity=2)
    for i in range(5):
        log.append(OutEvent(str(i)))
    assert log.since(2) is None
    assert log.since(3) is not None
    assert log.since(9) is None
    assert log.since(-1) is None


def test_subprotocol_negotiation():
    assert choose_subprotocol([]) == (None, JSON)
    assert choose_subprotocol(["x", "croupier.v1.msgpack"]) == ("croupier.v1.msgpack", MSGPACK)
    assert choose_subprotocol([" croupier.v1.json"]) == ("croupier.v1.json", JSON)


def test_code_tables_do_not_collide():
    assert len({c.value for c in ErrorCode}) == len(ErrorCode)
    assert len({c.value for c in CloseCode}) == len(CloseCode)
    assert all(1000 <= c < 5000 for c in CloseCode)
