"""The sweep does what is due, not a step per session: idle connections oldest first,
dropped sessions in the order they dropped; what was heard from, or resumed, is left alone."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.codes import CloseCode, ErrorCode
from protocol.session import Session

from .fakes import Client, make_hub


def guest(hub: Any, name: str) -> tuple[Client, dict[str, Any]]:
    c = Client(hub)
    reply = c.send({"type": "login", "guest": True, "zone": "demo", "name": name})
    assert reply["type"] == "ok", reply
    return c, reply["data"]


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[Session]:
    """Every session the sweep looked at, in order."""
    seen: list[Session] = []
    original = Session.check_timeouts

    def counted(self: Session, now: float) -> None:
        seen.append(self)
        original(self, now)

    monkeypatch.setattr(Session, "check_timeouts", counted)
    return seen


def test_only_the_connections_past_their_idle_deadline_are_looked_at(checks: list[Session]) -> None:
    hub, clock = make_hub(auth_timeout=5, idle_timeout=30, heartbeat_interval=10)
    clients = [guest(hub, f"p{i}")[0] for i in range(40)]
    clock.advance(10)
    hub.sweep()  # past the logins' auth horizon: nothing is due
    checks.clear()
    hub.sweep()
    assert checks == []
    clock.advance(15)
    for c in clients[::2]:  # half of them ping at t = 25 s
        assert c.send({"type": "ping"})["type"] == "ok"
    clock.advance(10)  # t = 35 s: the silent half is past 30 s, the others at 10 s
    hub.sweep()
    hub.flush()
    assert len(checks) == 20 and {id(s) for s in checks} == {id(c.conn.session) for c in clients[1::2]}
    assert all(c.link.closed[0] == CloseCode.IDLE_TIMEOUT for c in clients[1::2])
    assert all(c.link.closed is None for c in clients[::2])
    for c in clients[1::2]:
        c.drop()
    checks.clear()
    hub.sweep()
    assert checks == []  # the pingers are not due until t = 55 s
    clock.advance(21)
    hub.sweep()
    hub.flush()
    assert len(checks) == 20 and all(c.link.closed[0] == CloseCode.IDLE_TIMEOUT for c in clients[::2])


def test_a_connection_that_stays_open_is_looked_at_again_one_idle_timeout_later(
    checks: list[Session],
) -> None:
    hub, clock = make_hub(auth_timeout=5, idle_timeout=30, heartbeat_interval=10)
    c, _ = guest(hub, "closing")
    c.conn.close(CloseCode.GOING_AWAY, "bye")  # closing, the client never answers
    hub.flush()
    clock.advance(31)
    hub.sweep()
    assert len(checks) == 1
    hub.sweep()
    clock.advance(29)
    hub.sweep()
    assert len(checks) == 1
    clock.advance(2)
    hub.sweep()
    assert len(checks) == 2


def test_dropped_sessions_end_in_the_order_their_windows_end_and_a_resume_is_kept() -> None:
    hub, clock = make_hub(resume_grace=30)
    a, _ = guest(hub, "a")
    b, bdata = guest(hub, "b")
    c, _ = guest(hub, "c")
    a.drop()
    clock.advance(10)
    b.drop()
    clock.advance(10)
    c.drop()
    assert hub.stats()["detached"] == 3
    back = Client(hub)
    assert back.send({"type": "resume", "token": bdata["resume_token"], "last_seq": 0})["type"] == "ok"
    assert hub.stats()["detached"] == 2
    clock.advance(11)  # a's window (30 s) is over; c's is not
    hub.sweep()
    assert sorted(p.name for p in hub.players.values()) == ["b", "c"]
    clock.advance(10)  # b would be over here had it not resumed
    hub.sweep()
    assert sorted(p.name for p in hub.players.values()) == ["b", "c"]
    clock.advance(10)
    hub.sweep()
    assert [p.name for p in hub.players.values()] == ["b"] and hub.stats()["detached"] == 0
    back.drop()  # dropped again: a new window from now
    clock.advance(29)
    hub.sweep()
    assert [p.name for p in hub.players.values()] == ["b"]
    clock.advance(2)
    hub.sweep()
    assert not hub.players
    assert Client(hub).send({"type": "resume", "token": bdata["resume_token"], "last_seq": 0})["code"] == (
        ErrorCode.RESUME_FAILED
    )
