"""Start and stop one worker: the hub, its listeners and the periodic sweep."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field

from persistence import Stores, open_stores
from persistence.factory import default_writer_config

from . import gcwatch
from .admin import AdminServer, admin_server
from .casino import Casino
from .clock import Clock
from .config import Config
from .domain import RedisStreamEvents, open_events
from .hub import Hub
from .invitations import InvitationService
from .leaderboards import Leaderboards
from .metrics import watch_loop_lag
from .rewards import Rewards
from .transports.picows_ws import serve_picows
from .transports.sfs2x_tcp import serve_sfs_tcp
from .transports.tcp import serve_tcp
from .transports.websockets_ws import serve_websockets
from .zonestate import ZoneState

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
    admin_port: int | None = None  # the admin HTTP port, if enabled
    background: list[asyncio.Task[None]] = field(default_factory=list)
    admin: AdminServer | None = None

    @property
    def urls(self) -> list[str]:
        cfg = self.hub.config.server
        urls = [
            f"ws://{cfg.host}:{self.ws_port}{cfg.ws_path}",
            f"ws://{cfg.host}:{self.ws_port}/BlueBox/websocket (SmartFox 2X clients)",
        ]
        if self.tcp_port is not None:
            urls.append(f"tcp://{cfg.host}:{self.tcp_port}")
        if self.sfs_tcp_port is not None:
            urls.append(f"sfs2x tcp://{cfg.host}:{self.sfs_tcp_port}")
        if self.admin_port is not None:
            urls.append(f"http://{cfg.host}:{self.admin_port}/metrics (admin: /healthz /readyz /stats)")
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
        if self.admin is not None:
            self.admin.should_exit = True
        for task in self.background:
            if task.get_name() == "admin":
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 2.0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.sweeper is not None:
            self.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sweeper
        for s in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.wait_closed(), 1.0)
        for service in self.hub.service_list:
            await service.drain()  # commits in flight finish (retries get them)
        if isinstance(self.hub.events, RedisStreamEvents):
            await self.hub.events.close()  # after the consumers' last acknowledgements
        if self.hub.zone_state is not None:
            await self.hub.zone_state.close()
        if self.stores is not None:
            await self.stores.close()  # drains the writer, flushes write-behind
            self.stores = None


def manage_gc(server: Server, config: Config) -> None:
    """Apply the process's garbage-collector policy (`server.gc_freeze`, gameserver/gcwatch.py).

    Called by the programs that own the process (`croupier run`, a cluster worker), not by
    `start`: tests and embedding programs run several servers in one process."""
    if config.server.gc_freeze:
        task = asyncio.get_running_loop().create_task(
            gcwatch.keep_full_collections_short(config.server.gc_thaw_every), name="gc"
        )
        server.background.append(task)


async def _sweep(hub: Hub, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            hub.sweep()
        except Exception:
            logger.exception("sweep failed")


async def start(
    config: Config, clock: Clock | None = None, *, hub: Hub | None = None, listen: bool = True
) -> Server:
    """Open the store (when a zone has a casino), bind the configured listeners, serve.

    A cluster worker (gameserver/worker.py) passes its own `hub` and `listen=False`: it
    binds no port (the acceptor hands it sockets) and serves no admin HTTP (the
    supervisor aggregates every worker's).
    """
    hub = hub if hub is not None else Hub(config, clock)
    gcwatch.install()  # time the collector's pauses (croupier_gc_pause_seconds)
    ev = config.events
    if ev.url is not None:  # domain events across nodes (docs/leaderboards.md, "Event bus")
        hub.events = open_events(
            ev.url, stream=ev.stream, node=ev.node, claim_idle=ev.claim_idle, maxlen=ev.maxlen
        )
    stores: Stores | None = None
    if config.casino.zones or config.store.zone_state:
        writer = dataclasses.replace(  # the configured commit timeout and delay govern the writer
            default_writer_config(config.store.url),
            commit_timeout_s=config.store.commit_timeout,
            max_delay_ms=config.store.commit_delay * 1000.0,
        )
        wall = hub.clock.wall
        stores = await open_stores(  # the ledger's timestamps on the hub's clock
            config.store.url, config.store.cache_url, writer=writer, clock=lambda: int(wall() * 1000)
        )
        try:
            if config.casino.zones:
                casino = Casino(hub, stores, config)
                await casino.start()
                hub.casino = casino
                hub.register(casino)
                rewards = Rewards(hub, stores, casino)
                await rewards.start()
                hub.register(rewards)
            if config.leaderboards.zones:
                leaderboards = Leaderboards(hub, stores, config)
                await leaderboards.start()
                hub.register(leaderboards)
            if config.store.zone_state:
                zone_state = ZoneState(hub, stores)
                await zone_state.load()
                hub.zone_state = zone_state
                hub.register(zone_state)  # restores users' persistent variables at login
        except BaseException:
            await stores.close()
            raise
    invitations = InvitationService(hub)
    invitations.start()
    hub.register(invitations)
    if isinstance(hub.events, RedisStreamEvents):
        await hub.events.start()  # after every consumer subscribed
    cfg = config.server
    if not listen:
        server = Server(hub, 0, None, [], stores=stores)
        loop = asyncio.get_running_loop()
        server.sweeper = loop.create_task(_sweep(hub, cfg.sweep_interval))
        server.background.append(loop.create_task(watch_loop_lag(hub.counters), name="loop-lag"))
        return server
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
    loop = asyncio.get_running_loop()
    server.sweeper = loop.create_task(_sweep(hub, cfg.sweep_interval))
    server.background.append(loop.create_task(watch_loop_lag(hub.counters), name="loop-lag"))
    if cfg.admin_port >= 0:
        admin = admin_server(hub, cfg.host, cfg.admin_port)
        server.admin = admin
        server.background.append(loop.create_task(admin.serve(), name="admin"))
        while not admin.started:
            if server.background[-1].done():  # failed to bind: surface the error
                await server.background[-1]
                raise OSError(f"admin HTTP did not start on port {cfg.admin_port}")
            await asyncio.sleep(0.01)
        server.admin_port = admin.servers[0].sockets[0].getsockname()[1]
    return server
