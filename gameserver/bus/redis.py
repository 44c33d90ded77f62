"""The Redis bus: members on several nodes, over Redis pub/sub.

Each member subscribes to the channel ``{prefix}{member}``. One writer task publishes
the queued batches in order (a pipeline per round); a batch is the tick's frames to one
member, length-prefixed, in one PUBLISH. A PUBLISH that reaches no subscriber fails the
calls in flight to that member at once (`BusUnreachable`). Pub/sub is at most once: a
cast to a member that is restarting is lost; calls are answered or fail by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis

from protocol.errors import FramingError, MessageTooBig
from protocol.framing import StreamFramer, frame_many

from .base import Bus
from .local import MAX_FRAME

logger = logging.getLogger("croupier.bus")


class RedisBus(Bus):
    def __init__(
        self,
        me: str,
        url: str,
        *,
        prefix: str = "croupier:bus:",
        max_queued_bytes: int = 8 << 20,
        default_timeout: float = 2.0,
    ) -> None:
        super().__init__(me, max_queued_bytes=max_queued_bytes, default_timeout=default_timeout)
        self.url = url
        self.prefix = prefix
        self._redis: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._outbox: list[tuple[str, bytes]] = []
        self._wake = asyncio.Event()

    def channel(self, member: str) -> str:
        return f"{self.prefix}{member}"

    async def start(self) -> None:
        await super().start()
        self._redis = aioredis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel(self.me))
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read(), name=f"bus-read-{self.me}")
        self._writer = loop.create_task(self._write(), name=f"bus-write-{self.me}")

    async def close(self) -> None:
        await super().close()
        for task in (self._reader, self._writer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()

    def _transmit(self, dst: str, frames: list[bytes]) -> None:
        self._outbox.append((dst, frame_many(frames)))
        self._wake.set()

    async def _write(self) -> None:
        assert self._redis is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._outbox = self._outbox, []
            if not batch:
                continue
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for dst, payload in batch:
                        pipe.publish(self.channel(dst), payload)
                    receivers = await pipe.execute()
            except Exception as exc:
                logger.warning("bus publish failed: %s", exc)
                for dst, _ in batch:
                    self._unreachable(dst, f"redis: {exc}")
                self.stats.dropped += len(batch)
                continue
            for (dst, _), n in zip(batch, receivers, strict=True):
                if not n:
                    self.stats.dropped += 1
                    self._unreachable(dst, "no such member (not subscribed)")

    async def _read(self) -> None:
        framer = StreamFramer(MAX_FRAME)
        while True:
            try:
                msg = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("bus subscription failed, resubscribing: %s", exc)
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    await self._pubsub.subscribe(self.channel(self.me))
                continue
            if msg is None or msg.get("type") != "message":
                continue
            try:
                framer.receive_data(msg["data"])
            except (FramingError, MessageTooBig) as exc:
                logger.warning("bad bus payload dropped: %s", exc)
                framer = StreamFramer(MAX_FRAME)
                continue
            for frame in framer.messages_received():
                self._received(frame)
