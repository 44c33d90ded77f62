"""One cluster worker process: its own uvloop, Hub and store connections; no listening port.

Started by the supervisor (`python -m gameserver.worker --channel-fd N`), it gets its
identity and configuration in the first channel message (`hello`), then adopts the
client sockets the acceptor hands it (`adopt`, with the bytes already read), answers
heartbeats, metrics and stats requests, and drains on request.

Fencing: every heartbeat carries a lease end (CLOCK_MONOTONIC, shared by the processes
of one machine). A worker whose lease ran out (it was stopped or stalled for longer than
`cluster.lease_timeout`, so the supervisor has replaced it) handles no request any more:
it drops its connections and exits. See docs/cluster.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from protocol import messages as m
from protocol.codes import CloseCode, ErrorCode

from . import auth, logs
from .admin import worker_stats
from .backoffice import BackOffice
from .bus import Bus, HybridBus, UnixBus
from .checkpoint import Checkpointer, CheckpointFiles, load as load_checkpoint
from .config import Config
from .connection import Connection
from .handoff import Channel, close_quietly, recv_blocking
from .hub import GUEST_ID_BASE, Hub
from .metrics import registry_for
from .ring import HashRing, user_key
from .server import Server, manage_gc, start
from .sharding import ShardedRouter, attach_router
from .transports.picows_ws import adopted_protocol
from .transports.sfs2x_tcp import SfsTcpLink
from .transports.tcp import TcpLink
from .transports.websockets_ws import WebsocketsLink

logger = logging.getLogger("croupier.worker")

#: Exit code of a worker that found itself superseded (lease expired).
EXIT_FENCED = 3
#: Resume tokens per `moved_in` / `moved_out` message: a token and a member name take
#: under 64 bytes, so a message stays far below the channel's limit (handoff.MAX_MESSAGE)
#: even when a leaving worker gives away every session it has.
TOKENS_PER_MESSAGE = 5000
_GUEST_ID_MAX = 2**31 - 1


@dataclass(frozen=True)
class ClusterInfo:
    """Who this worker is and who its peers are: the same ring in every process.

    `member` ("<node index>.<worker index>") is the ring member id; `generation` grows
    every time a process takes over this member (a fencing token for cross-worker
    messages); `bus_path(member)` is where a sibling worker on this node listens for
    bus connections (the bus itself: gameserver/bus/).
    """

    member: str
    index: int
    node_index: int
    generation: int
    members: tuple[str, ...]
    run_dir: str
    ring: HashRing

    @property
    def peers(self) -> tuple[str, ...]:
        """The other workers of this node."""
        prefix = f"{self.node_index}."
        return tuple(x for x in self.members if x.startswith(prefix) and x != self.member)

    def bus_path(self, member: str) -> str:
        return os.path.join(self.run_dir, "bus", f"{member}.sock")  # = bus.local.socket_path

    def owner(self, key: str) -> str:
        return self.ring.owner(key)

    def owns_user(self, zone: str, user_id: int) -> bool:
        return self.ring.owner(user_key(zone, user_id)) == self.member


def member_id(node_index: int, worker_index: int) -> str:
    return f"{node_index}.{worker_index}"


def node_of(member: str) -> int:
    return int(member.split(".", 1)[0])


def worker_of(member: str) -> int:
    return int(member.split(".", 1)[1])


def routing_messages(t: str, key: str, items: list[Any]) -> Iterator[dict[str, Any]]:
    """`items` (resume tokens, or [token, owner] pairs) as `t` messages of at most
    TOKENS_PER_MESSAGE each, in order."""
    for i in range(0, len(items), TOKENS_PER_MESSAGE):
        yield {"t": t, key: items[i : i + TOKENS_PER_MESSAGE]}


def all_members(nodes: int, workers: int) -> tuple[str, ...]:
    return tuple(member_id(n, w) for n in range(nodes) for w in range(workers))


class GuestIds:
    """Guest ids the ring gives to one worker, per zone: unique across workers and nodes."""

    def __init__(self, ring: HashRing, member: str, start: int = GUEST_ID_BASE) -> None:
        self.ring = ring
        self.member = member
        self.start = start
        self._next: dict[str, int] = {}

    def __call__(self, zone: str) -> int:
        candidate = self._next.get(zone, self.start)
        ring, member = self.ring, self.member
        while ring.owner(user_key(zone, candidate)) != member:
            candidate += 1
        if candidate > _GUEST_ID_MAX:
            raise RuntimeError("guest ids exhausted")
        self._next[zone] = candidate + 1
        return candidate


class Lease:
    """The time until which this worker may act (granted by the supervisor's heartbeats)."""

    def __init__(self, until: float) -> None:
        self.until = until
        self.fenced = False

    def valid(self) -> bool:
        return not self.fenced and time.monotonic() < self.until


class WorkerHub(Hub):
    """A Hub that checks its lease before acting and refuses logins it does not own."""

    info: ClusterInfo
    lease: Lease
    on_fenced: Any = None
    #: reads the supervisor's messages waiting in the channel (a renewal may be there)
    poll_channel: Any = None

    def handle(self, conn: Connection, requests: Iterable[Any]) -> None:
        if not self.lease.valid() and self.poll_channel is not None:
            self.poll_channel()  # a busy loop may not have read its renewal yet
        if not self.lease.valid():
            conn.link.abort()  # superseded: act for nobody (docs/cluster.md, "Fencing")
            if self.on_fenced is not None:
                self.on_fenced()
            return
        super().handle(conn, self._screen(conn, requests))

    def _screen(self, conn: Connection, requests: Iterable[Any]) -> Iterator[Any]:
        for req in requests:
            if type(req) is m.Login and req.token:
                owner = self._token_owner(req.token)
                if owner is not None and owner != self.info.member:
                    conn.session.fail(
                        req.id,
                        ErrorCode.WRONG_WORKER,
                        f"this user is served by worker {owner}: reconnect with ?token=<your token> "
                        "in the WebSocket URL (TCP: send login as the first frame)",
                    )
                    self.counters.errors["wrong_worker"] += 1
                    continue
            yield req

    def _token_owner(self, token: str) -> str | None:
        try:
            claims = auth.verify(self.config.auth.secret, token, self.clock.wall())
        except Exception:
            return None  # the login itself reports the bad token
        return self.info.owner(user_key(claims.z, claims.u))


# -- adoption ------------------------------------------------------------------------------


def _feed(protocol: asyncio.Protocol, data: bytes) -> None:
    if data:
        protocol.data_received(data)


class _AdoptedTcp(TcpLink):
    def __init__(self, hub: Hub, preread: bytes) -> None:
        super().__init__(hub)
        self._preread = preread

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        data, self._preread = self._preread, b""
        _feed(self, data)


class _AdoptedSfs(SfsTcpLink):
    def __init__(self, hub: Hub, preread: bytes) -> None:
        super().__init__(hub)
        self._preread = preread

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        data, self._preread = self._preread, b""
        _feed(self, data)


class _AdoptedWebsockets(WebsocketsLink):
    def __init__(self, hub: Hub, path: str, echo_path: str, preread: bytes) -> None:
        super().__init__(hub, path, echo_path)
        self._preread = preread

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        data, self._preread = self._preread, b""
        _feed(self, data)


def protocol_for(hub: Hub, kind: str, preread: bytes) -> asyncio.BaseProtocol:
    """The transport protocol for an adopted socket of `kind` ("ws", "tcp", "sfs")."""
    cfg = hub.config.server
    if kind == "tcp":
        return _AdoptedTcp(hub, preread)
    if kind == "sfs":
        return _AdoptedSfs(hub, preread)
    if cfg.transport == "picows":
        return adopted_protocol(hub, cfg.ws_path, cfg.echo_path, preread)
    return _AdoptedWebsockets(hub, cfg.ws_path, cfg.echo_path, preread)


# -- the worker ----------------------------------------------------------------------------


class Worker:
    def __init__(self, channel_sock: socket.socket, hello: dict[str, Any]) -> None:
        self.config = msgspec.json.decode(hello["config"], type=Config)
        members = tuple(hello["members"])
        self.info = ClusterInfo(
            member=hello["member"],
            index=hello["index"],
            node_index=hello["node_index"],
            generation=hello["generation"],
            members=members,
            run_dir=hello["run_dir"],
            ring=HashRing(members),
        )
        self.lease = Lease(hello["lease_until"])
        #: this process replaces a draining one (rolling restart): it adopts its sessions
        self.takeover = bool(hello.get("takeover"))
        self.channel_sock = channel_sock
        self.channel: Channel | None = None
        self.server: Server | None = None
        self.done = asyncio.Event()
        self.exit_code = 0
        self._stopping = False
        self.router: ShardedRouter | None = None
        self.checkpointer: Checkpointer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self) -> int:
        info = self.info
        auth.set_issuer(info.member)
        hub = WorkerHub(self.config)
        hub.info = info
        hub.lease = self.lease
        hub.on_fenced = self._fenced
        hub.new_guest_id = GuestIds(info.ring, info.member)
        self.server = await start(self.config, hub=hub, listen=False)
        manage_gc(self.server, self.config)
        await self._start_bus()
        loop = asyncio.get_running_loop()
        self.channel = Channel(self.channel_sock, self._message, self._channel_closed)
        hub.poll_channel = self.channel.poll
        loop.add_signal_handler(signal.SIGTERM, lambda: self._spawn(self._stop(CloseCode.GOING_AWAY)))
        self._spawn(self._watch_lease())
        self.lease.until = time.monotonic() + self.config.cluster.lease_timeout  # the boot lease ends
        self.channel.send({"t": "ready", "gen": info.generation, "pid": os.getpid()})
        logger.info("worker %s (generation %d) ready", info.member, info.generation)
        await self.done.wait()
        return self.exit_code

    async def _start_bus(self) -> None:
        """Join the ring's bus (gameserver/bus/, gameserver/sharding.py) before `ready`:
        rooms live on the worker their name hashes to, members anywhere."""
        info, cl = self.info, self.config.cluster
        directory = os.path.join(info.run_dir, "bus")
        nodes = {node_of(m) for m in info.members}
        if len(nodes) > 1 and not cl.bus_url:
            logger.warning("several nodes but no cluster.bus_url: other nodes' rooms are unreachable")
        listen_as = f"{info.member}.next" if self.takeover else None  # until handed over
        bus: Bus = (  # with a Redis bus even alone: nodes can join at run time
            HybridBus(
                info.member,
                directory,
                cl.bus_url,
                prefix=cl.bus_prefix,
                default_timeout=cl.bus_timeout,
                listen_as=listen_as,
            )
            if cl.bus_url
            else UnixBus(info.member, directory, default_timeout=cl.bus_timeout, listen_as=listen_as)
        )
        wait = cl.drain_timeout + self.config.limits.close_timeout + 10 if self.takeover else 0.0
        files = CheckpointFiles(os.path.join(info.run_dir, "checkpoints"), info.member, info.generation)
        restored = None
        if not self.takeover and cl.checkpoint_interval > 0:  # a restart after a crash?
            restored = load_checkpoint(
                files, list(info.members), self.config.limits.resume_grace, time.time()
            )
        self.router = await attach_router(
            self._hub(), info.member, list(info.members), bus, cl.bus_timeout, wait, restored
        )
        if cl.checkpoint_interval > 0:
            self.checkpointer = Checkpointer(
                self.router, files, cl.checkpoint_interval, lambda: self.lease.valid() and not self._stopping
            )
            self.checkpointer.start()
        self.router.on_moved_in = lambda tokens: self._send_all(
            routing_messages("moved_in", "tokens", tokens)
        )
        self.router.on_moved_out = lambda moved: self._send_all(
            routing_messages("moved_out", "moved", [[t, owner] for t, owner in moved.items()])
        )
        for service in self._hub().service_list:  # services spanning the ring (leaderboards)
            getattr(service, "join_cluster", lambda router: None)(self.router)

    async def _office(self, rid: int, body: dict[str, Any]) -> None:
        """A back-office operation forwarded by the supervisor (this is the player's home)."""
        try:
            status, data = await BackOffice.of(self._hub()).run(str(body["op"]), dict(body["args"]))
        except Exception:
            logger.exception("back-office operation %s failed", body.get("op"))
            status, data = 500, {"error": "internal", "message": "internal error"}
        self._send({"t": "reply", "id": rid, "data": [status, data]})

    # -- channel messages ------------------------------------------------------------------

    def _message(self, msg: dict[str, Any], socks: list[socket.socket]) -> None:
        t = msg.get("t")
        if t == "adopt":
            for sock in socks:
                self._adopt(msg.get("kind", "ws"), sock, msg.get("pre", b""))
        elif t == "lease":
            self.lease.until = max(self.lease.until, float(msg["until"]))
            hub = self._hub()
            self._send({"t": "beat", "connections": len(hub.connections), "players": len(hub.players)})
        elif t == "metrics":
            self._send({"t": "reply", "id": msg["id"], "data": self._metrics()})
        elif t == "stats":
            self._send({"t": "reply", "id": msg["id"], "data": worker_stats(self._hub())})
        elif t == "office":
            self._spawn(self._office(int(msg["id"]), msg["body"]))
        elif t == "ring":
            self._spawn(self._change_ring(int(msg["id"]), list(msg["members"])))
        elif t == "drain":
            self._spawn(self._stop(CloseCode.RESUME_ELSEWHERE))
        elif t == "stop":
            self._spawn(self._stop(CloseCode.GOING_AWAY))
        for sock in socks if t != "adopt" else ():
            close_quietly(sock)

    async def _change_ring(self, rid: int, members: list[str]) -> None:
        """A worker was added or removed: move what now hashes elsewhere (docs/sharding.md)."""
        moved: dict[str, str] = {}
        error = None
        try:
            if self.router is not None:
                moved = await self.router.change_ring(members)
        except Exception as exc:  # the supervisor reports it; the sessions stay here
            logger.exception("ring change of %s failed", self.info.member)
            error = str(exc)
        self.info = dataclasses.replace(self.info, members=tuple(members), ring=HashRing(members))
        self._hub().info = self.info
        # the tokens went to the supervisor before their 4009 (`moved_out`): here the count
        self._send({"t": "reply", "id": rid, "data": {"moved": len(moved), "error": error}})

    def _hub(self) -> WorkerHub:
        assert self.server is not None
        hub = self.server.hub
        assert isinstance(hub, WorkerHub)
        return hub

    def _send(self, msg: dict[str, Any]) -> None:
        if self.channel is not None:
            self.channel.send(msg)

    def _send_all(self, msgs: Iterable[dict[str, Any]]) -> None:
        for msg in msgs:
            self._send(msg)

    def _metrics(self) -> list[Any]:
        families = []
        for fam in registry_for(self._hub()).collect():
            samples = [[s.name, s.labels, s.value] for s in fam.samples if not s.name.endswith("_created")]
            families.append([fam.name, fam.type, fam.documentation, samples])
        return families

    def _adopt(self, kind: str, sock: socket.socket, preread: bytes) -> None:
        hub = self._hub()
        if not self.lease.valid():
            close_quietly(sock)
            return
        loop = asyncio.get_running_loop()

        async def adopt() -> None:
            try:
                if self.router is not None and not self.router.serving.is_set():
                    await self.router.serving.wait()  # a successor serves after the handover
                await loop.connect_accepted_socket(lambda: protocol_for(hub, kind, preread), sock)
            except Exception:
                logger.exception("could not adopt a %s socket", kind)
                close_quietly(sock)

        self._spawn(adopt())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- lease, drain, exit ------------------------------------------------------------

    async def _watch_lease(self) -> None:
        interval = self.config.cluster.heartbeat_interval
        while not self._stopping:
            await asyncio.sleep(interval)
            if not self.lease.valid() and self.channel is not None:
                self.channel.poll()
            if not self.lease.valid():
                self._fenced()
                return

    def _fenced(self) -> None:
        """Our lease ran out: another process may serve our users now. Act for nobody."""
        if self.lease.fenced:
            return
        self.lease.fenced = True
        logger.error("worker %s: lease expired (stalled?): superseded, exiting", self.info.member)
        hub = self._hub()
        hub.accepting = False
        for conn in list(hub.connections):
            conn.link.abort()
        self.exit_code = EXIT_FENCED
        self._stopping = True
        self.done.set()

    def _channel_closed(self) -> None:
        if not self._stopping:  # the supervisor is gone (or gave up on us): stop at once
            logger.error("worker %s: supervisor channel closed, exiting", self.info.member)
            self._fenced()

    async def _stop(self, code: CloseCode) -> None:
        """Drain: take no new session, finish rounds in flight, move clients, flush, exit."""
        if self._stopping:
            return
        self._stopping = True  # no checkpoint from here on (the sessions end or move)
        server = self.server
        assert server is not None
        hub = server.hub
        hub.accepting = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.cluster.drain_timeout):
                for service in hub.service_list:
                    await service.drain()
        if code is CloseCode.RESUME_ELSEWHERE and self.router is not None:
            try:  # a rolling restart: the successor takes the sessions and rooms
                moved = await self.router.hand_over(os.path.join(self.info.run_dir, "bus"))
                logger.info("handed %d sessions to the successor of %s", moved, self.info.member)
            except Exception as exc:  # the clients log in again; money is in the store
                logger.warning("handover of %s failed: %s", self.info.member, exc)
        reason = "worker restarting: reconnect and resume" if code is CloseCode.RESUME_ELSEWHERE else ""
        hub.shutdown(code, reason or "server shutting down")
        await server.stop(drain_seconds=self.config.limits.close_timeout)
        if self.router is not None:
            await self.router.close()
        if self.checkpointer is not None:
            await self.checkpointer.stop(remove=True)
        self._send({"t": "drained", "metrics": self._metrics()})
        await asyncio.sleep(0.05)  # let the channel write
        self.done.set()


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the supervisor dies (no orphaned workers)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="croupier-worker")
    parser.add_argument("--channel-fd", type=int, required=True)
    args = parser.parse_args(argv)
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the supervisor stops us
    sock = socket.socket(fileno=args.channel_fd)
    hello = recv_blocking(sock, 30.0)
    logs.configure(hello.get("log_level", "INFO"), hello.get("log_format", "text"))
    if os.getppid() == 1:  # the supervisor died before we set the death signal
        return 1

    async def run() -> int:
        worker = Worker(sock, hello)
        return await worker.run()

    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(run())
    return uvloop.run(run())


if __name__ == "__main__":
    sys.exit(main())
