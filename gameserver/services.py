"""Services: request handlers beside the zone model (casino, rewards, leaderboards...).

A service claims request types; the hub sends each such request to `handle` on the
user's owner worker, and tells every service when a session starts and ends. Replies go
through `Hub.reply_to(player, request_id, data, error)`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .player import Player


class Service(Protocol):
    #: the request classes this service handles
    request_types: frozenset[type]

    def handle(self, player: Player, req: Any) -> None:
        """Handle one request; raise `RequestError` for an immediate error reply."""

    def player_joined(self, player: Player) -> None:
        """A session started on this worker (login)."""

    def player_left(self, player: Player) -> None:
        """A session ended on this worker."""

    async def drain(self) -> None:
        """Finish work in flight (graceful stop)."""


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel a service's background task (its ticker) and wait until it has stopped."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
