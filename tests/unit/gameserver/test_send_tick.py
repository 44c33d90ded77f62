"""The send tick (`server.event_tick_ms`): events wait for it, replies do not, and a
reply takes the client's waiting events with it; order and closes are kept."""

from __future__ import annotations

from typing import Any

from gameserver.clock import ManualClock
from gameserver.config import Config, ServerSection
from gameserver.hub import Hub
from protocol.codes import CloseCode

from .fakes import SECRET, Client, make_hub


class Timers:
    """A fake `call_later`: records (delay, callback); `run()` fires the due ones."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, Any]] = []

    def __call__(self, delay: float, fn: Any) -> None:
        self.pending.append((delay, fn))

    def run(self) -> int:
        due, self.pending = self.pending, []
        for _, fn in due:
            fn()
        return len(due)


def tick_hub(ms: float) -> tuple[Hub, Timers]:
    base, _ = make_hub()
    config = Config(
        server=ServerSection(event_tick_ms=ms),
        limits=base.config.limits,
        zones=base.config.zones,
        auth=base.config.auth,
    )
    assert config.auth.secret == SECRET
    timers = Timers()
    return Hub(config, ManualClock(), call_soon=lambda fn: None, call_later=timers), timers


def lobby_pair(hub: Hub) -> tuple[Client, Client]:
    a, b = Client(hub), Client(hub)
    for c, name in ((a, "a"), (b, "b")):
        assert c.send({"type": "login", "guest": True, "zone": "demo", "name": name})["type"] == "ok"
        assert c.send({"type": "join_room", "room": "Lobby"})["type"] == "ok"
    a.link.take(), b.link.take()
    return a, b


def test_events_wait_for_the_tick_and_go_out_in_one_write():
    hub, timers = tick_hub(50)
    a, b = lobby_pair(hub)
    timers.run()  # the joins' user_entered
    a.link.take(), a.link.writes.clear()
    for i in range(3):
        assert b.send({"type": "public_message", "room": 1, "text": f"m{i}"})["type"] == "ok"
    assert a.link.written == []  # the end of the loop tick wrote nothing to a
    assert [d for d, _ in timers.pending] == [0.05]  # one tick for all of them
    assert timers.run() == 1
    got = a.link.take()
    assert [m["data"]["text"] for m in got] == ["m0", "m1", "m2"]
    assert [m["seq"] for m in got] == sorted(m["seq"] for m in got)
    assert a.link.writes == [3]
    assert timers.run() == 0  # nothing waits: no tick is scheduled


def test_a_reply_takes_the_waiting_events_in_order():
    hub, timers = tick_hub(50)
    a, b = lobby_pair(hub)
    timers.run()
    a.link.take(), a.link.writes.clear()
    b.send({"type": "public_message", "room": 1, "text": "before"})
    assert a.link.written == []
    a.send({"type": "ping"})  # the reply is written at the end of this tick ...
    assert a.link.writes == [2]  # ... with the event that waited, in one write
    assert [m.get("event", m["type"]) for m in a.link.take()] == ["public_message"]  # the ok was popped
    timers.run()
    assert a.link.written == [] and a.link.writes == [2]  # the tick found nothing left for a


def test_the_sender_gets_its_echo_with_its_reply():
    hub, timers = tick_hub(50)
    _, b = lobby_pair(hub)
    timers.run()
    b.link.take(), b.link.writes.clear()
    assert b.send({"type": "public_message", "room": 1, "text": "hi"})["type"] == "ok"
    assert [m["event"] for m in b.link.take()] == ["public_message"]
    assert b.link.writes == [2]


def test_a_close_writes_the_waiting_events_first():
    hub, timers = tick_hub(50)
    a, b = lobby_pair(hub)
    timers.run()
    a.link.take()
    b.send({"type": "public_message", "room": 1, "text": "last words"})
    a.conn.close(CloseCode.GOING_AWAY, "bye")
    hub.flush()
    assert [m["data"]["text"] for m in a.link.take()] == ["last words"]
    assert a.link.closed == (int(CloseCode.GOING_AWAY), "bye")
    timers.run()
    assert a.link.written == []


def test_tick_zero_writes_events_at_the_end_of_the_loop_tick():
    hub, timers = tick_hub(0)
    a, b = lobby_pair(hub)
    b.send({"type": "public_message", "room": 1, "text": "now"})
    assert [m["data"]["text"] for m in a.link.take()] == ["now"]
    assert timers.pending == []
