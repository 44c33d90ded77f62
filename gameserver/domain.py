"""Domain events and the in-process event bus.

Domain events (a round settled, a bonus granted, a mission completed, a lottery drawn,
a referral qualified) are published after the change they describe is durable.
Consumers (leaderboards, missions, referrals, notifications) subscribe by name and must
be idempotent: delivery is at least once, so the same event may arrive twice.

`LocalEvents` delivers within this process on the next loop tick; a consumer that
raises is logged and does not stop the others. A cross-node implementation (Redis
Streams consumer groups) implements the same `EventBus` protocol.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

import msgspec

logger = logging.getLogger("croupier.domain")


class DomainEvent(msgspec.Struct, tag_field="kind", frozen=True, kw_only=True):
    """Base of domain events. `event_id` is unique per fact (consumers dedupe on it)."""

    event_id: str
    zone: str
    at_ms: int


class RoundSettled(DomainEvent, tag="round_settled", frozen=True, kw_only=True):
    """A casino round was committed (settled, or opened with its whole outcome drawn).

    `event_id` is the round id. `stake` and `win` are in the zone's currency units;
    `complete` is false for a multi-step round whose steps are still being revealed
    (its money is already posted).
    """

    user_id: int
    name: str
    game: str
    currency: str
    stake: int
    win: int
    complete: bool = True


Consumer = Callable[[DomainEvent], None]


class EventBus(Protocol):
    def publish(self, event: DomainEvent) -> None:
        """Hand `event` to every subscribed consumer (at least once)."""

    def subscribe(self, name: str, consumer: Consumer) -> None:
        """Register a named consumer (a name identifies one consumer group)."""


class LocalEvents:
    """In-process delivery on the next loop tick, in publish order."""

    def __init__(self) -> None:
        self.consumers: dict[str, Consumer] = {}
        self.published = 0

    def subscribe(self, name: str, consumer: Consumer) -> None:
        if name in self.consumers:
            raise ValueError(f"consumer {name!r} already subscribed")
        self.consumers[name] = consumer

    def publish(self, event: DomainEvent) -> None:
        self.published += 1
        if not self.consumers:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (unit tests): deliver now
            self._deliver(event)
            return
        loop.call_soon(self._deliver, event)

    def _deliver(self, event: DomainEvent) -> None:
        for name, consumer in list(self.consumers.items()):
            try:
                consumer(event)
            except Exception:
                logger.exception("consumer %s failed on %s", name, event.event_id)
