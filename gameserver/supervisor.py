"""The supervisor: N worker processes on one node, the acceptor, and the admin HTTP.

- Spawns `cluster.workers` workers (gameserver/worker.py), each with a Unix socket pair
  (gameserver/handoff.py) for control messages and socket hand-off; restarts a worker
  that dies, with exponential backoff.
- Routes every accepted client (gameserver/acceptor.py) to its owner on the ring of all
  workers of all nodes; a client that belongs to another node is redirected (4010).
- Renews each worker's lease with a heartbeat; a worker that stops answering is
  superseded: cut off, killed, and replaced by a process with a higher generation.
- Rolling restart (SIGHUP, or `POST /admin/rolling-restart`): one worker at a time, the
  replacement is started and ready before the old one drains (docs/cluster.md).
- Serves `/healthz`, `/readyz`, `/metrics` and `/stats` aggregated over the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from protocol.codes import CloseCode

from .acceptor import Acceptor, Route, redirect_tcp, redirect_ws
from .config import Config, NodeAddress
from .handoff import Channel, channel_pair, close_quietly
from .ring import HashRing, user_key
from .worker import all_members, member_id, node_of, worker_of

logger = logging.getLogger("croupier.supervisor")

#: Seconds a worker gets to start (open its store, migrate) before it counts as failed.
BOOT_TIMEOUT = 60.0
#: Restart backoff: first delay, cap, and the uptime after which it resets.
BACKOFF_MIN, BACKOFF_MAX, BACKOFF_RESET = 0.2, 10.0, 30.0
#: Clients waiting for a worker that is (re)starting, per worker.
MAX_WAITING = 5000
#: Seconds a request to a worker (metrics, stats) may take.
REQUEST_TIMEOUT = 2.0
#: a back-office operation may wait for a commit (a retry with the same key is safe)
OFFICE_TIMEOUT = 10.0
#: A silent worker that still uses CPU is overloaded, not stalled: its lease is renewed
#: for up to this many `lease_timeout`s of silence before it is replaced.
BUSY_GRACE = 6


def lease_verdict(silent: float, busy: bool, heartbeat: float, lease_timeout: float) -> str:
    """What a heartbeat does for a worker silent for `silent` seconds.

    "extend": it answers, or it is silent but running (`busy`: its CPU time advances and
    it is not stopped: an overloaded loop; killing it would only move its load), for up
    to BUSY_GRACE lease timeouts. "keep": the lease keeps its end (it runs out by itself).
    "supersede": silent (and not running) for longer than `lease_timeout`.
    """
    if silent <= 2 * heartbeat or (busy and silent <= BUSY_GRACE * lease_timeout):
        return "extend"
    return "supersede" if silent > lease_timeout else "keep"


def _cpu(pid: int) -> tuple[str, int] | None:
    """(state, user + system CPU ticks) of a process, from /proc (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return fields[0].decode(), int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


@dataclass(eq=False)
class WorkerProc:
    """One process serving one slot (a slot may briefly have two during a rolling restart)."""

    slot: Slot
    generation: int
    proc: asyncio.subprocess.Process
    channel: Channel
    started: float
    ready: asyncio.Future[None]
    exited: asyncio.Future[int]
    last_seen: float = 0.0
    granted_until: float = 0.0
    connections: int = 0
    players: int = 0
    handed: int = 0  # sockets handed since the last heartbeat (a load estimate between beats)
    cpu_ticks: int = -1  # CPU time at the last heartbeat: is a silent worker busy or stalled?
    draining: bool = False
    superseded: bool = False
    last_metrics: list[Any] = field(default_factory=list)
    pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def load(self) -> int:
        return self.connections + self.handed


@dataclass(eq=False)
class Slot:
    index: int
    member: str
    current: WorkerProc | None = None
    restarts: int = 0
    backoff: float = BACKOFF_MIN
    waiting: deque[tuple[str, socket.socket, bytes, float]] = field(default_factory=deque)


class Supervisor:
    def __init__(self, config: Config, log_level: str = "INFO", log_format: str = "text") -> None:
        self.config = config
        cl = config.cluster
        self.workers = cl.workers or os.cpu_count() or 1
        self.nodes: list[NodeAddress] = list(cl.nodes)
        self.node_index = cl.node_index
        self.members = all_members(max(1, len(self.nodes)), self.workers)
        self.ring = HashRing(self.members)
        #: joining a running cluster: route by the ring of the nodes before this one until
        #: `set_nodes` (docs/cluster.md, "Adding and removing nodes")
        self.joining = cl.joining
        self._joining_ring = HashRing(all_members(self.node_index, self.workers)) if cl.joining else self.ring
        #: node index -> address of nodes removed at run time (their moved sessions' resume
        #: tokens still name them), until the resume grace has passed
        self.departed: dict[int, tuple[NodeAddress, float]] = {}
        self.slots = [Slot(i, member_id(self.node_index, i)) for i in range(self.workers)]
        self.log_level = log_level
        self.log_format = log_format
        self.run_dir = cl.run_dir
        self._own_run_dir = False
        self.acceptor: Acceptor | None = None
        self.ports: dict[str, int] = {}
        self.admin_port: int | None = None
        self._admin: Any = None
        self._admin_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._rolling: asyncio.Task[None] | None = None
        self._resizing: asyncio.Task[dict[str, Any]] | None = None
        #: resume token -> (worker, until): sessions a ring change moved (their tokens
        #: still name the old worker); kept for the resume grace
        self.relocated: dict[str, tuple[str, float]] = {}
        self._last_generation = 0
        self._rr = itertools.count()
        self._request_ids = itertools.count(1)
        self.processes: list[WorkerProc] = []  # every live process (current and draining)
        #: counters of processes that exited, so aggregated counters never go down
        self.retired: dict[tuple[str, str, tuple[tuple[str, str], ...]], float] = {}
        self.counters = {"handoffs": 0, "redirects": 0, "restarts": 0, "superseded": 0, "refused": 0}

    # -- start and stop ----------------------------------------------------------------

    async def start(self) -> None:
        if not self.run_dir:
            self.run_dir = tempfile.mkdtemp(prefix="croupier-")
            self._own_run_dir = True
        os.makedirs(self.run_dir, exist_ok=True)
        cfg = self.config.server
        # Leases from the start: a worker that is ready must not run out of its lease
        # while the others are still starting (it would fence itself).
        self._spawn_task(self._heartbeat())
        # The first worker opens (and migrates) the store alone, then the others start.
        await self._spawn(self.slots[0])
        await asyncio.gather(*(self._spawn(s) for s in self.slots[1:]))
        acceptor = Acceptor(
            self.config.auth.secret,
            self.config.limits.auth_timeout,
            self.config.limits.max_message_bytes,
            self.dispatch,
        )
        self.acceptor = acceptor
        self.ports["ws"] = acceptor.listen("ws", cfg.host, cfg.ws_port, cfg.backlog)
        if cfg.tcp_port >= 0:
            self.ports["tcp"] = acceptor.listen("tcp", cfg.host, cfg.tcp_port, cfg.backlog)
        if cfg.sfs_tcp_port >= 0:
            self.ports["sfs"] = acceptor.listen("sfs", cfg.host, cfg.sfs_tcp_port, cfg.backlog)
        loop = asyncio.get_running_loop()
        if cfg.admin_port >= 0:
            from .admin import cluster_admin_server

            self._admin = cluster_admin_server(self, cfg.host, cfg.admin_port)
            self._admin_task = loop.create_task(self._admin.serve(), name="admin")
            while not self._admin.started:
                if self._admin_task.done():
                    await self._admin_task
                    raise OSError(f"admin HTTP did not start on port {cfg.admin_port}")
                await asyncio.sleep(0.01)
            self.admin_port = self._admin.servers[0].sockets[0].getsockname()[1]

    @property
    def urls(self) -> list[str]:
        host, cfg = self.config.server.host, self.config.server
        urls = [f"ws://{host}:{self.ports['ws']}{cfg.ws_path}"]
        if "tcp" in self.ports:
            urls.append(f"tcp://{host}:{self.ports['tcp']}")
        if "sfs" in self.ports:
            urls.append(f"sfs2x tcp://{host}:{self.ports['sfs']}")
        if self.admin_port is not None:
            urls.append(f"http://{host}:{self.admin_port}/metrics (admin: /healthz /readyz /stats)")
        return urls

    async def stop(self) -> None:
        """Stop accepting; every worker drains (1001) and exits."""
        self._stopping = True
        if self.acceptor is not None:
            self.acceptor.close()
        if self._rolling is not None:
            self._rolling.cancel()
        for slot in self.slots:
            while slot.waiting:
                close_quietly(slot.waiting.popleft()[1])
        procs = list(self.processes)
        for wp in procs:
            wp.channel.send({"t": "stop"})
        timeout = self.config.cluster.drain_timeout + self.config.limits.close_timeout + 5
        await self._wait_exit(procs, timeout)
        if self._admin is not None:
            self._admin.should_exit = True
            if self._admin_task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._admin_task, 3.0)
        for task in list(self._tasks):
            task.cancel()
        if self._own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    async def _wait_exit(self, procs: list[WorkerProc], timeout: float) -> None:
        if not procs:
            return
        done, pending = await asyncio.wait([wp.exited for wp in procs], timeout=timeout)
        for wp in procs:
            if not wp.exited.done():
                logger.warning("worker %s pid %d did not exit: SIGKILL", wp.slot.member, wp.pid)
                with contextlib.suppress(ProcessLookupError):
                    wp.proc.kill()
        if pending:
            await asyncio.wait(pending, timeout=5.0)

    # -- workers -----------------------------------------------------------------------

    def _generation(self) -> int:
        """Strictly increasing, also across supervisor restarts (milliseconds since the epoch)."""
        self._last_generation = max(self._last_generation + 1, time.time_ns() // 1_000_000)
        return self._last_generation

    async def _spawn(self, slot: Slot, *, make_current: bool = True) -> WorkerProc:
        """Start a process for `slot` and wait until it is ready."""
        loop = asyncio.get_running_loop()
        parent, child = channel_pair()
        generation = self._generation()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gameserver.worker",
                "--channel-fd",
                str(child.fileno()),
                pass_fds=(child.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            child.close()
        now = time.monotonic()
        wp: WorkerProc
        ready: asyncio.Future[None] = loop.create_future()
        exited: asyncio.Future[int] = loop.create_future()

        def on_message(msg: dict[str, Any], socks: list[socket.socket]) -> None:
            for s in socks:
                close_quietly(s)
            self._worker_message(wp, msg)

        channel = Channel(parent, on_message, lambda: None)
        wp = WorkerProc(slot, generation, proc, channel, now, ready, exited, last_seen=now)
        self.processes.append(wp)
        # The boot lease: until the worker is ready (it takes no client before that).
        wp.granted_until = now + self.config.cluster.lease_timeout + BOOT_TIMEOUT
        channel.send(
            {
                "t": "hello",
                "config": msgspec.json.encode(self.config),
                "member": slot.member,
                "index": slot.index,
                "node_index": self.node_index,
                "generation": generation,
                "members": list(self.members),
                "run_dir": self.run_dir,
                "lease_until": wp.granted_until,
                "takeover": not make_current,  # a rolling restart: adopt the old one's sessions
                "log_level": self.log_level,
                "log_format": self.log_format,
            }
        )
        self._spawn_task(self._watch(wp))
        try:
            waiters: list[asyncio.Future[Any]] = [ready, exited]
            await asyncio.wait(waiters, timeout=BOOT_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        if not ready.done():
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise RuntimeError(f"worker {slot.member} did not start (exit code {proc.returncode})")
        logger.info("worker %s pid %d generation %d ready", slot.member, proc.pid, generation)
        if make_current:
            self._make_current(slot, wp)
        return wp

    def _make_current(self, slot: Slot, wp: WorkerProc) -> None:
        slot.current = wp
        now = time.monotonic()
        while slot.waiting:
            kind, sock, pre, since = slot.waiting.popleft()
            if now - since > self.config.limits.auth_timeout:
                close_quietly(sock)
            else:
                self._hand(wp, kind, sock, pre)

    def _worker_message(self, wp: WorkerProc, msg: dict[str, Any]) -> None:
        wp.last_seen = time.monotonic()
        t = msg.get("t")
        if t == "beat":
            wp.connections = int(msg.get("connections", 0))
            wp.players = int(msg.get("players", 0))
            wp.handed = 0
        elif t == "reply":
            fut = wp.pending.pop(int(msg.get("id", 0)), None)
            if fut is not None and not fut.done():
                fut.set_result(msg.get("data"))
        elif t == "ready":  # the worker cut its lease to now + lease_timeout
            wp.granted_until = time.monotonic() + self.config.cluster.lease_timeout
            if not wp.ready.done():
                wp.ready.set_result(None)
        elif t == "drained":
            wp.last_metrics = msg.get("metrics") or wp.last_metrics
        elif t == "moved_in":  # sessions a ring change gave this worker: route their resumes here
            self._relocate((token, wp.slot.member) for token in msg.get("tokens") or ())
        elif t == "moved_out":  # sessions a ring change moves away, before their 4009
            self._relocate(msg.get("moved") or ())

    def _relocate(self, moves: Iterable[Any]) -> None:
        """Route the resumes of moved sessions ((token, member) pairs) to their new
        owners for the resume grace."""
        until = time.monotonic() + self.config.limits.resume_grace
        for token, member in moves:
            self.relocated[str(token)] = (str(member), until)

    async def _watch(self, wp: WorkerProc) -> None:
        code = await wp.proc.wait()
        wp.channel.close()
        if not wp.exited.done():
            wp.exited.set_result(code)
        for fut in wp.pending.values():
            if not fut.done():
                fut.set_result(None)
        self._retire(wp)
        slot = wp.slot
        if slot.current is not wp:
            return  # a drained or superseded process: its replacement is already there
        slot.current = None
        if self._stopping:
            return
        logger.error("worker %s pid %d exited (code %s): restarting", slot.member, wp.pid, code)
        await self._restart(slot, wp)

    async def _restart(self, slot: Slot, old: WorkerProc) -> None:
        if time.monotonic() - old.started > BACKOFF_RESET:
            slot.backoff = BACKOFF_MIN
        delay = slot.backoff
        slot.backoff = min(BACKOFF_MAX, slot.backoff * 2)
        if not old.exited.done():
            # Fencing: a process that may still run (stopped, not killed) must have lost
            # its lease before another one serves the slot's users.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.shield(old.exited), max(0.0, old.granted_until - time.monotonic())
                )
        while not self._stopping:
            await asyncio.sleep(delay)
            try:
                await self._spawn(slot)
            except Exception as exc:
                logger.error("worker %s failed to start: %s", slot.member, exc)
                delay = slot.backoff
                slot.backoff = min(BACKOFF_MAX, slot.backoff * 2)
                continue
            slot.restarts += 1
            self.counters["restarts"] += 1
            return

    def _retire(self, wp: WorkerProc) -> None:
        if wp in self.processes:
            self.processes.remove(wp)
        for name, kind, _, samples in wp.last_metrics:
            if kind in ("counter", "histogram", "summary"):
                for sname, labels, value in samples:
                    key = (name, sname, tuple(sorted(labels.items())))
                    self.retired[key] = self.retired.get(key, 0.0) + float(value)

    async def _heartbeat(self) -> None:
        cl = self.config.cluster
        while not self._stopping:
            await asyncio.sleep(cl.heartbeat_interval)
            now = time.monotonic()
            for slot in self.slots:  # clients waiting for a worker that is not back in time
                while slot.waiting and now - slot.waiting[0][3] > self.config.limits.auth_timeout:
                    close_quietly(slot.waiting.popleft()[1])
                    self.counters["refused"] += 1
            for wp in list(self.processes):
                if wp.superseded or wp.exited.done() or not wp.ready.done():
                    continue
                stat = _cpu(wp.pid)
                busy = stat is not None and stat[0] not in "TtZX" and stat[1] > wp.cpu_ticks
                if stat is not None:
                    wp.cpu_ticks = stat[1]
                verdict = lease_verdict(now - wp.last_seen, busy, cl.heartbeat_interval, cl.lease_timeout)
                if verdict == "extend":
                    wp.granted_until = now + cl.lease_timeout
                elif verdict == "supersede":
                    self._supersede(wp)
                    continue
                wp.channel.send({"t": "lease", "until": wp.granted_until, "gen": wp.generation})

    def _supersede(self, wp: WorkerProc) -> None:
        """A worker stopped answering: cut it off and replace it (docs/cluster.md, "Fencing")."""
        logger.error(
            "worker %s pid %d unresponsive for %.1f s: superseded",
            wp.slot.member,
            wp.pid,
            time.monotonic() - wp.last_seen,
        )
        wp.superseded = True
        self.counters["superseded"] += 1
        wp.channel.close()  # no more sockets, no more lease renewals
        if self.config.cluster.kill_superseded:
            with contextlib.suppress(ProcessLookupError):
                wp.proc.kill()
        slot = wp.slot
        if slot.current is wp and not self._stopping:
            slot.current = None
            self._spawn_task(self._restart(slot, wp))

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- routing -----------------------------------------------------------------------

    def owner(self, route: Route) -> str | None:
        if route.token is not None and self.relocated:
            moved = self.relocated.get(route.token)
            if moved is not None:
                return moved[0]
        if route.user is not None:
            ring = self._joining_ring if self.joining else self.ring
            return ring.owner(user_key(*route.user))
        if route.resume is not None:
            if route.resume in self.members:
                return route.resume
            with contextlib.suppress(ValueError):
                if node_of(route.resume) in self.departed:  # its node redirects it on
                    return route.resume
        if self.joining:  # a guest: a worker of the nodes before us
            return self._joining_ring.owner(f"guest:{next(self._rr)}")
        if self.nodes and self.node_index >= len(self.nodes):  # this node left the cluster
            return self.ring.owner(f"guest:{next(self._rr)}")
        return None

    def dispatch(self, kind: str, sock: socket.socket, pre: bytes, route: Route) -> None:
        """Send an accepted client to its owner (or the least-loaded worker)."""
        if self._stopping:
            close_quietly(sock)
            return
        member = self.owner(route)
        if member is not None and node_of(member) != self.node_index:
            self._redirect(kind, sock, pre, member)
            return
        slot = self.slots[worker_of(member)] if member is not None else self._least_loaded()
        if slot is None:  # nobody is up: wait for the first worker back
            slot = self.slots[next(self._rr) % len(self.slots)]
        wp = slot.current
        if wp is None or wp.draining:
            if len(slot.waiting) >= MAX_WAITING:
                self.counters["refused"] += 1
                close_quietly(sock)
            else:
                slot.waiting.append((kind, sock, pre, time.monotonic()))
            return
        self._hand(wp, kind, sock, pre)

    def _hand(self, wp: WorkerProc, kind: str, sock: socket.socket, pre: bytes) -> None:
        if wp.channel.send({"t": "adopt", "kind": kind, "pre": pre}, [sock]):
            wp.handed += 1
            self.counters["handoffs"] += 1
        else:
            self.counters["refused"] += 1
            close_quietly(sock)

    def _least_loaded(self) -> Slot | None:
        up = [s for s in self.slots if s.current is not None and not s.current.draining]
        if not up:
            return None
        start = next(self._rr) % len(up)
        rotated = up[start:] + up[:start]  # ties: round-robin
        return min(rotated, key=lambda s: s.current.load if s.current is not None else 0)

    def _address(self, index: int) -> NodeAddress:
        if index < len(self.nodes):
            return self.nodes[index]
        return self.departed[index][0]

    def _redirect(self, kind: str, sock: socket.socket, pre: bytes, member: str) -> None:
        node = self._address(node_of(member))
        self.counters["redirects"] += 1
        code = int(CloseCode.WRONG_NODE)
        if kind == "ws":
            redirect_ws(sock, pre, code, f"ws://{node.host}:{node.ws_port}{self.config.server.ws_path}")
        elif kind == "tcp" and node.tcp_port >= 0:
            redirect_tcp(sock, code, f"tcp://{node.host}:{node.tcp_port}")
        else:
            close_quietly(sock)

    # -- rolling restart ---------------------------------------------------------------

    def rolling_restart(self) -> bool:
        """Start a rolling restart; False if one (or a resize) is already running."""
        if self._rolling is not None and not self._rolling.done() or self.resizing:
            return False
        self._rolling = asyncio.get_running_loop().create_task(self._roll())
        return True

    @property
    def rolling(self) -> bool:
        return self._rolling is not None and not self._rolling.done()

    async def _roll(self) -> None:
        cl = self.config.cluster
        for slot in self.slots:
            if self._stopping:
                return
            old = slot.current
            try:
                new = await self._spawn(slot, make_current=False)
            except Exception as exc:
                logger.error("rolling restart: worker %s did not start: %s; stopping here", slot.member, exc)
                return
            if slot.current is not old:  # the old one died meanwhile and was restarted
                new.channel.send({"t": "stop"})
                continue
            self._make_current(slot, new)  # new clients of this slot go to the new process now
            slot.restarts += 1
            if old is not None and not old.exited.done():
                old.draining = True
                old.channel.send({"t": "drain"})
                await self._wait_exit([old], cl.drain_timeout + self.config.limits.close_timeout + 10)
        logger.info("rolling restart done")

    # -- adding and removing workers (docs/sharding.md, "Moving sessions and rooms") ----

    def resize(self, count: int) -> bool:
        """Grow or shrink this node to `count` workers; False if a resize or rolling restart
        is running (or the cluster has several nodes: not supported yet)."""
        if self.rolling or (self._resizing is not None and not self._resizing.done()):
            return False
        if len(self.nodes) > 1 or count < 1 or count == len(self.slots):
            return False
        self._resizing = asyncio.get_running_loop().create_task(self._resize(count))
        return True

    @property
    def resizing(self) -> bool:
        return self._resizing is not None and not self._resizing.done()

    def set_nodes(self, nodes: list[NodeAddress]) -> str | None:
        """Adopt the cluster's new node list (nodes added at the end, or the last ones
        removed): this node's workers hand what now hashes to other workers to them.
        Returns why not, or None when started. Call it on every node: first on those that
        give sessions away (the old nodes when adding, the leaving ones when removing),
        then on the others (docs/cluster.md, "Adding and removing nodes")."""
        if self.rolling or self.resizing:
            return "busy: a resize or a rolling restart is running"
        old = self.nodes or [self._own_address()]
        common = min(len(old), len(nodes))
        if not nodes:
            return "give the cluster's nodes"
        if self.nodes and list(nodes[:common]) != list(old[:common]):  # (alone: any address for us)
            return "the nodes already in the cluster must keep their positions and addresses"
        if len(nodes) == len(old) and not self.joining:
            return "the node list is unchanged"
        self._resizing = asyncio.get_running_loop().create_task(self._set_nodes(list(nodes)))
        return None

    def _own_address(self) -> NodeAddress:
        s = self.config.server
        return NodeAddress(
            host=s.host,
            ws_port=self.ports.get("ws", s.ws_port),
            tcp_port=self.ports.get("tcp", s.tcp_port),
            sfs_tcp_port=self.ports.get("sfs", s.sfs_tcp_port),
        )

    async def _set_nodes(self, nodes: list[NodeAddress]) -> dict[str, Any]:
        old = self.nodes or [self._own_address()]
        until = time.monotonic() + self.config.limits.resume_grace
        for i in range(len(nodes), len(old)):
            self.departed[i] = (old[i], until)
        self.nodes = nodes
        members = all_members(len(nodes), self.workers)
        self.members, self.ring = members, HashRing(members)
        moved, errors = await self._change_ring(members)
        self.joining = False
        now = time.monotonic()
        self.relocated = {t: v for t, v in self.relocated.items() if v[1] > now}
        self.departed = {i: v for i, v in self.departed.items() if v[1] > now}
        logger.info(
            "the cluster is now %d nodes: %d sessions moved from here%s",
            len(nodes),
            moved,
            f", errors: {errors}" if errors else "",
        )
        return {"nodes": len(nodes), "moved": moved, "errors": errors}

    async def _resize(self, count: int) -> dict[str, Any]:
        old = len(self.slots)
        members = all_members(1, count)
        self.members, self.ring, self.workers = members, HashRing(members), count
        if count > old:  # new workers first: they receive their share once they are up
            new_slots = [Slot(i, member_id(self.node_index, i)) for i in range(old, count)]
            self.slots.extend(new_slots)
            await asyncio.gather(*(self._spawn(s) for s in new_slots))
        moved, errors = await self._change_ring(members)
        if count < old:  # the leavers gave everything away: stop them
            leaving = self.slots[count:]
            del self.slots[count:]
            for slot in leaving:
                wp = slot.current
                slot.current = None
                if wp is not None and not wp.exited.done():
                    wp.draining = True
                    wp.channel.send({"t": "stop"})
            await self._wait_exit(
                [s_wp for s in leaving for s_wp in self.processes if s_wp.slot is s],
                self.config.cluster.drain_timeout + self.config.limits.close_timeout + 10,
            )
        now = time.monotonic()
        self.relocated = {t: v for t, v in self.relocated.items() if v[1] > now}
        logger.info(
            "ring is now %d workers: %d sessions moved%s",
            count,
            moved,
            f", errors: {errors}" if errors else "",
        )
        return {"workers": count, "moved": moved, "errors": errors}

    async def _change_ring(self, members: tuple[str, ...]) -> tuple[int, list[str]]:
        """Every live worker adopts the ring `members` (each reports the sessions it moves,
        `moved_out`, before it closes them). Returns (sessions moved, errors)."""
        procs = [s.current for s in self.slots if s.current is not None and not s.current.exited.done()]
        answers = await asyncio.gather(*(self._ask_ring(wp, list(members)) for wp in procs))
        moved, errors = 0, []
        for answer in answers:
            if not answer:
                errors.append("no answer")
                continue
            if answer.get("error"):
                errors.append(answer["error"])
            moved += int(answer.get("moved") or 0)
        return moved, errors

    async def _ask_ring(self, wp: WorkerProc, members: list[str]) -> Any:
        loop = asyncio.get_running_loop()
        rid = next(self._request_ids)
        fut: asyncio.Future[Any] = loop.create_future()
        wp.pending[rid] = fut
        if not wp.channel.send({"t": "ring", "id": rid, "members": members}):
            wp.pending.pop(rid, None)
            return None
        try:
            return await asyncio.wait_for(fut, self.config.cluster.drain_timeout + 30)
        except TimeoutError:
            wp.pending.pop(rid, None)
            return None

    # -- requests to workers -----------------------------------------------------------

    async def ask(self, wp: WorkerProc, what: str, body: Any = None, timeout: float = REQUEST_TIMEOUT) -> Any:
        """A worker's answer to `metrics`, `stats` or `office` (None if it does not answer in time)."""
        loop = asyncio.get_running_loop()
        rid = next(self._request_ids)
        fut: asyncio.Future[Any] = loop.create_future()
        wp.pending[rid] = fut
        msg = {"t": what, "id": rid} if body is None else {"t": what, "id": rid, "body": body}
        if not wp.channel.send(msg):
            wp.pending.pop(rid, None)
            return None
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            wp.pending.pop(rid, None)
            return None

    async def office(self, op: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A back-office operation (gameserver/backoffice.py), run by the player's home worker
        (the audit log by this node's first worker: it is the store's)."""
        if op in ("rooms", "message", "close_room"):  # every worker has its part
            return await self._office_everywhere(op, args)
        if op == "audit":
            member = self.slots[0].member
        else:
            try:
                member = self.ring.owner(user_key(str(args["zone"]), int(args["user"])))
            except (KeyError, ValueError):
                return 400, {"error": "bad_request", "message": "zone and user"}
        if node_of(member) != self.node_index:
            node = self._address(node_of(member))
            message = f"the player lives on node {node_of(member)} ({node.host}): ask its admin port"
            return 421, {
                "error": "wrong_node",
                "message": message,
                "node": node_of(member),
                "host": node.host,
            }
        wp = self.slots[worker_of(member)].current
        if wp is None or wp.draining or not wp.ready.done():
            return 503, {
                "error": "unavailable",
                "message": f"the player's worker {member} is restarting: retry",
            }
        got = await self.ask(wp, "office", {"op": op, "args": args}, OFFICE_TIMEOUT)
        if got is None:
            return 504, {
                "error": "timeout",
                "message": f"worker {member} did not answer: retry with the same key",
            }
        status, body = got
        return int(status), body

    async def _office_everywhere(self, op: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A zone operation on every worker of this node (its hosted rooms, or the message
        to its sessions), merged."""
        live = self.live()
        asks = (self.ask(wp, "office", {"op": op, "args": args}, OFFICE_TIMEOUT) for wp in live)
        answers = await asyncio.gather(*asks)
        merged: dict[str, Any] = {"rooms": [], "players": 0} if op == "rooms" else {}
        missing = []
        for wp, got in zip(live, answers, strict=True):
            if got is None:
                missing.append(wp.slot.member)
                continue
            status, body = got
            if status != 200:
                return int(status), body
            for key, value in body.items():
                merged[key] = merged[key] + value if key in merged else value
        if op == "rooms":
            merged["rooms"].sort(key=lambda r: r["id"])
        if missing:
            merged["missing_workers"] = missing  # they did not answer in time
        return 200, merged

    def live(self) -> list[WorkerProc]:
        return [wp for wp in self.processes if wp.ready.done() and not wp.superseded]

    def workers_view(self) -> list[dict[str, Any]]:
        out = []
        for slot in self.slots:
            for wp in self.processes:
                if wp.slot is slot:
                    out.append(
                        {
                            "worker": slot.member,
                            "pid": wp.pid,
                            "generation": wp.generation,
                            "ready": wp.ready.done(),
                            "current": slot.current is wp,
                            "draining": wp.draining,
                            "superseded": wp.superseded,
                            "connections": wp.connections,
                            "players": wp.players,
                            "restarts": slot.restarts,
                        }
                    )
        return out

    @property
    def ready(self) -> bool:
        return not self._stopping and all(
            s.current is not None and s.current.ready.done() and not s.current.draining for s in self.slots
        )


async def run(config: Config, log_level: str = "INFO", log_format: str = "text") -> None:
    """`croupier run` with more than one worker (or several nodes): until SIGINT/SIGTERM."""
    sup = Supervisor(config, log_level, log_format)
    try:
        await sup.start()
    except (OSError, RuntimeError) as exc:  # a port in use, a worker that cannot start
        print(f"croupier: {exc}", file=sys.stderr, flush=True)
        await sup.stop()
        raise SystemExit(2) from None
    print("Croupier is serving:", flush=True)
    for url in sup.urls:
        print(f"  {url}", flush=True)
    pids = ", ".join(str(s.current.pid) for s in sup.slots if s.current is not None)
    print(f"  workers: {sup.workers} on node {sup.node_index} (pids {pids})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, sup.rolling_restart)
    await stop.wait()
    print("shutting down", flush=True)
    await sup.stop()
