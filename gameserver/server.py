"""Start and stop one worker: the hub, its listeners and the periodic sweep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from persistence import Stores, open_stores

from .casino import Casino
from .clock import Clock
from .config import Config
from .hub import Hub
from .transports.picows_ws import serve_picows
from .transports.sfs2x_tcp import serve_sfs_tcp
from .transports.tcp import serve_tcp
from .transports.websockets_ws import serve_websockets

logger = logging.getLogger("croupier.server")


@dataclass
class Server:
    """A running worker. `ws_port` / `tcp_port` are the bound ports (useful with port 0)."""

    hub: Hub
    ws_port: int
    tcp_port: int | None
    servers: list[asyncio.Server] = field(default_factory=list)
    sweeper: asyncio.Task[None] | None = None
    sfs_tcp_port: int | None = None  # the SFS2X TCP listener's port, if enabled
    stores: Stores | None = None

    @property
    def urls(self) -> list[str]:
        cfg = self.hub.config.server
        urls = [f"ws://{cfg.host}:{self.ws_port}{cfg.ws_path}"]
        if self.tcp_port is not None:
            urls.append(f"tcp://{cfg.host}:{self.tcp_port}")
        return urls

    async def stop(self, drain_seconds: float = 1.0) -> None:
        """Stop listening, ask clients to go (1001), wait up to `drain_seconds`, then stop."""
        for s in self.servers:
            s.close()
        self.hub.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_seconds
        while self.hub.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.hub.connections):  # clients that did not close in time
            conn.link.abort()
        await asyncio.sleep(0)  # let the transports report connection_lost
        if self.sweeper is not None:
            self.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sweeper
        for s in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.wait_closed(), 1.0)
        if self.hub.casino is not None:
            await self.hub.casino.drain()  # commits in flight finish (retries get them)
        if self.stores is not None:
            await self.stores.close()  # drains the writer, flushes write-behind
            self.stores = None


async def _sweep(hub: Hub, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            hub.sweep()
        except Exception:
            logger.exception("sweep failed")


async def start(config: Config, clock: Clock | None = None) -> Server:
    """Open the store (when a zone has a casino), bind the configured listeners, serve."""
    hub = Hub(config, clock)
    stores: Stores | None = None
    if config.casino.zones:
        stores = await open_stores(config.store.url, config.store.cache_url)
        try:
            casino = Casino(hub, stores, config)
            await casino.start()
        except BaseException:
            await stores.close()
            raise
        hub.casino = casino
    cfg = config.server
    serve = serve_picows if cfg.transport == "picows" else serve_websockets
    try:
        ws = await serve(hub, cfg.host, cfg.ws_port, cfg.ws_path, cfg.echo_path, cfg.backlog)
    except BaseException:
        if stores is not None:
            await stores.close()
        raise
    server = Server(hub, ws.sockets[0].getsockname()[1], None, [ws], stores=stores)
    if cfg.tcp_port >= 0:
        tcp = await serve_tcp(hub, cfg.host, cfg.tcp_port, cfg.backlog)
        server.servers.append(tcp)
        server.tcp_port = tcp.sockets[0].getsockname()[1]
    if cfg.sfs_tcp_port >= 0:
        sfs = await serve_sfs_tcp(hub, cfg.host, cfg.sfs_tcp_port, cfg.backlog)
        server.servers.append(sfs)
        server.sfs_tcp_port = sfs.sockets[0].getsockname()[1]
    server.sweeper = asyncio.get_running_loop().create_task(_sweep(hub, cfg.sweep_interval))
    return server
