"""Both carriers at once: Unix sockets to the workers of this node, Redis to the others.

Members are named ``"<node>.<worker>"`` (gameserver/worker.py); a destination on this
node goes over the Unix bus, anything else through Redis. Handlers, calls in flight and
batching are this object's; the two carriers only move frames.
"""

from __future__ import annotations

import os

from .base import Bus
from .local import UnixBus
from .redis import RedisBus


class HybridBus(Bus):
    def __init__(
        self,
        me: str,
        directory: str | os.PathLike[str],
        redis_url: str,
        *,
        prefix: str = "croupier:bus:",
        max_queued_bytes: int = 8 << 20,
        default_timeout: float = 2.0,
        listen_as: str | None = None,
    ) -> None:
        super().__init__(me, max_queued_bytes=max_queued_bytes, default_timeout=default_timeout)
        self.node = me.split(".", 1)[0]
        self.unix = UnixBus(me, directory, listen_as=listen_as)
        self.redis = RedisBus(me, redis_url, prefix=prefix)
        for carrier in (self.unix, self.redis):  # frames and failures come to us
            carrier._received = self._received  # type: ignore[method-assign]
            carrier._unreachable = self._unreachable  # type: ignore[method-assign]
            carrier.stats = self.stats

    async def start(self) -> None:
        await super().start()
        await self.unix.start()
        await self.redis.start()

    async def close(self) -> None:
        await super().close()
        await self.unix.close()
        await self.redis.close()

    async def rebind(self) -> None:
        await self.unix.rebind()

    def _transmit(self, dst: str, frames: list[bytes]) -> None:
        if dst.split(".", 1)[0] == self.node:
            self.unix._transmit(dst, frames)
        else:
            self.redis._transmit(dst, frames)
