"""Workers of one ring in one process: a Hub and a Server per member on one uvloop thread,
talking over a real bus (Unix sockets in a temporary directory, or Redis)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import shutil
import tempfile
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

import uvloop

from gameserver.config import Config
from gameserver.hub import Hub
from gameserver.server import Server, start
from gameserver.sharding import ShardedRouter, join_ring


def unix_bus_url(prefix: str = "croupier-bus-") -> str:
    """A fresh directory for a Unix bus (``unix://...``), removed when the tests end."""
    directory = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, directory, True)
    return f"unix://{directory}"


class Ring:
    def __init__(
        self, servers: dict[str, Server], routers: dict[str, ShardedRouter], loop: Any, bus_url: str
    ) -> None:
        self.servers = servers
        self.routers = routers
        self.loop = loop  # the servers' loop (another thread)
        self.bus_url = bus_url

    async def on_servers(self, coro: Any) -> Any:
        """Run `coro` on the servers' loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def url(self, worker: str) -> str:
        return f"ws://127.0.0.1:{self.servers[worker].ws_port}/ws"


R = TypeVar("R", bound=Ring)


@contextlib.contextmanager
def running_ring(
    config: Config,
    members: list[str],
    bus_url: str,
    ring_cls: type[R],
    *,
    prefix: str = "croupier:bus:",
    late: tuple[str, ...] = (),
) -> Iterator[R]:
    """Start every member: it joins the ring, then its server starts; a member in `late`
    the other way round, as gameserver/worker.py does (services `join_cluster` after)."""
    loop = uvloop.new_event_loop()
    box: dict[str, Any] = {}
    ready = threading.Event()

    async def boot() -> None:
        try:
            servers: dict[str, Server] = {}
            routers: dict[str, ShardedRouter] = {}
            for me in members:
                hub = Hub(config)
                if me in late:
                    servers[me] = await start(config, hub=hub)
                    routers[me] = await join_ring(hub, me, members, bus_url, prefix=prefix)
                    for service in hub.service_list:
                        join = getattr(service, "join_cluster", None)
                        if join is not None:
                            join(routers[me])
                else:
                    routers[me] = await join_ring(hub, me, members, bus_url, prefix=prefix)
                    servers[me] = await start(config, hub=hub)
            box["ring"] = ring_cls(servers, routers, loop, bus_url)
        except BaseException as exc:
            box["error"] = exc
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(boot())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(15)
    if "error" in box:
        raise box["error"]
    r: R = box["ring"]

    async def stop() -> None:
        for me in r.servers:
            await r.servers[me].stop(drain_seconds=0.3)
            await r.routers[me].close()

    try:
        yield r
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
