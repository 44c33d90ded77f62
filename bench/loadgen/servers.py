"""Server processes the harness starts (`gameserver run`, one port each) and the sampler.

Every process the harness starts is remembered by its PID and ended by that PID only:
SIGTERM first (the server drains: 1001 to every client), SIGKILL if it does not exit.
The sampler reads RSS, CPU and open file descriptors of the servers and the generator
processes with psutil, their run-queue wait (time runnable but waiting for a CPU, from
/proc/PID/schedstat), plus the whole machine's CPU (other work shows up there).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from .scenario import ServerSettings

REPO = Path(__file__).resolve().parents[2]


def other_listeners_off() -> dict[str, str]:
    """Environment that disables every listener but the WebSocket one (`*_port = -1`).

    Several server processes run side by side, each on its own WebSocket port; any other
    port in the config (raw TCP, SFS2X, ...) would collide between them.
    """
    from msgspec import Struct

    from gameserver import config as server_config

    env: dict[str, str] = {}
    for name, cls in vars(server_config).items():
        if isinstance(cls, type) and issubclass(cls, Struct) and name.endswith("Section"):
            section = name[: -len("Section")].upper()
            for f in cls.__struct_fields__:
                if f.endswith("_port") and not (section == "SERVER" and f == "ws_port"):
                    env[f"CROUPIER_{section}_{f.upper()}"] = "-1"
    return env


def check_loopback(host: str) -> str:
    """`host` as an IPv4 address, if it is in 127.0.0.0/8; ValueError otherwise."""
    try:
        addr = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot resolve {host!r}: {exc}") from None
    if not addr.is_loopback or addr.version != 4:
        raise ValueError(f"{host} is not a loopback address: this harness only targets 127.0.0.0/8")
    return str(addr)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) != 0


def listening(host: str, port: int) -> bool:
    return not port_is_free(host, port)


@dataclass
class ServerProc:
    index: int
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    ps: psutil.Process | None = None
    started: float = 0.0
    restarts: list[dict[str, float]] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Fleet:
    """N `gameserver run` processes on ports base_port .. base_port + N - 1."""

    def __init__(
        self,
        count: int,
        base_port: int,
        settings: ServerSettings,
        out_dir: Path,
        host: str = "127.0.0.1",
        extra_env: Mapping[str, str] | None = None,
        path: str = "/ws",
        admin_base_port: int = 0,
    ) -> None:
        self.host = check_loopback(host)
        self.path = path
        self.settings = settings
        self.extra_env = dict(extra_env or {})
        self.servers = [ServerProc(i, base_port + i, out_dir / f"server-{i}.log") for i in range(count)]
        #: each server's admin HTTP port (GET /stats: the server's own counts); 0 = none
        self.admin_base_port = admin_base_port

    @property
    def stats_urls(self) -> list[str]:
        if not self.admin_base_port:
            return []
        return [f"http://{self.host}:{self.admin_base_port + s.index}/stats" for s in self.servers]

    @property
    def targets(self) -> list[tuple[str, int, str]]:
        return [(self.host, s.port, self.path) for s in self.servers]

    def config_path(self) -> Path:
        """The config file, relative to the working directory or else to the repository."""
        p = Path(self.settings.config)
        if not p.is_absolute() and not p.exists():
            p = REPO / p
        if not p.exists():
            raise RuntimeError(f"no server config {self.settings.config!r}")
        return p.resolve()

    def store_url(self, s: ServerProc) -> str | None:
        store = self.settings.store
        if store == "sqlite":
            return f"sqlite:///{s.log.parent.resolve() / f'server-{s.index}.db'}"
        if store == "memory":
            return "memory://"
        if store == "config":
            return None
        return store

    def _env(self, s: ServerProc) -> dict[str, str]:
        env = dict(os.environ)
        env.update(other_listeners_off())
        url = self.store_url(s)
        if url is not None:
            env["CROUPIER_STORE_URL"] = url
        env.update(self.settings.env)
        env.update(self.extra_env)
        port = s.port
        env["CROUPIER_SERVER_HOST"] = self.host
        env["CROUPIER_SERVER_WS_PORT"] = str(port)
        env["CROUPIER_SERVER_WS_PATH"] = self.path
        if self.admin_base_port:
            env["CROUPIER_SERVER_ADMIN_PORT"] = str(self.admin_base_port + s.index)
        # asyncio's debug mode is on for ANY non-empty value, "0" included: keep it off
        env.pop("PYTHONASYNCIODEBUG", None)
        return env

    def _spawn(self, s: ServerProc) -> None:
        cmd = [sys.executable, "-m", "gameserver", "run", "--log-level", "WARNING"]
        if self.settings.config:
            cmd += ["--config", str(self.config_path())]
        with open(s.log, "ab") as log:
            s.proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                env=self._env(s),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        s.ps = psutil.Process(s.proc.pid)
        if self.settings.nice:
            lower_priority(s.proc.pid, self.settings.nice)
        s.started = time.monotonic()

    def _wait_listening(self, s: ServerProc, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not s.alive():
                raise RuntimeError(
                    f"server {s.index} (port {s.port}) exited at start-up:\n{self.log_tail(s)}"
                )
            if listening(self.host, s.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"server {s.index} did not listen on port {s.port} within {timeout:.0f} s")

    def log_tail(self, s: ServerProc, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(s.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def start(self, timeout: float = 60.0) -> None:
        ports = [s.port for s in self.servers]
        if self.admin_base_port:
            ports += [self.admin_base_port + s.index for s in self.servers]
        busy = [p for p in ports if not port_is_free(self.host, p)]
        if busy:
            raise RuntimeError(f"ports already in use: {busy} (pick others with --base-port)")
        for s in self.servers:
            if self.settings.store == "sqlite":  # a fresh store per run: remove our old files
                for old in s.log.parent.glob(f"server-{s.index}.db*"):
                    old.unlink()
            self._spawn(s)
        for s in self.servers:
            self._wait_listening(s, timeout)

    def _terminate(self, s: ServerProc, timeout: float) -> float:
        """SIGTERM by PID, SIGKILL after `timeout`; returns the seconds it took."""
        t0 = time.monotonic()
        proc = s.proc
        if proc is None or proc.poll() is not None:
            return 0.0
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)
        return time.monotonic() - t0

    def restart(self, index: int, timeout: float = 30.0) -> dict[str, float]:
        """Stop one server (it drains) and start it again on its port (blocking)."""
        s = self.servers[index]
        t0 = time.monotonic()
        stop_s = self._terminate(s, 15.0)
        self._spawn(s)
        self._wait_listening(s, timeout)
        rec = {"stop_s": round(stop_s, 3), "down_s": round(time.monotonic() - t0, 3)}
        s.restarts.append(rec)
        return rec

    def stop(self) -> None:
        for s in self.servers:
            if s.alive() and s.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    s.proc.send_signal(signal.SIGTERM)
        for s in self.servers:
            self._terminate(s, 10.0)


def lower_priority(pid: int, nice: int) -> None:
    """Run process `pid` at niceness `nice`, its scheduling autogroup too.

    Each server starts in a session of its own (`start_new_session`), and where the
    kernel groups processes by session (autogroup, `/proc/sys/kernel/sched_autogroup_enabled`,
    on by default in Debian's kernels) a process's own niceness only ranks it within its
    group: the groups share the CPUs by the group's niceness. So both are set. Best
    effort: a process that already exited is left to the start-up check.
    """
    with contextlib.suppress(psutil.Error):
        psutil.Process(pid).nice(nice)
    with contextlib.suppress(OSError), open(f"/proc/{pid}/autogroup", "w") as f:
        f.write(str(nice))


def fetch_stats(urls: list[str], timeout: float = 5.0) -> list[dict[str, Any] | None]:
    """GET each server's /stats (its own counts); None where it did not answer."""
    import urllib.request

    out: list[dict[str, Any] | None] = []
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # loopback only (checked)
                data = json.loads(resp.read())
            out.append(data if isinstance(data, dict) else None)
        except (OSError, ValueError):
            out.append(None)
    return out


class _RateMeter:
    """The rate of a per-process counter, each renewed only over `min_interval` seconds or more.

    The counters move in steps (CPU time in 10 ms clock ticks): two samples a few ms apart
    (a sampler that was itself starved, then caught up) could read one step as a huge
    rate. A process's figure is kept until `min_interval` has passed since its last one.
    """

    def __init__(self, min_interval: float = 0.5) -> None:
        self.min_interval = min_interval
        self._last: dict[int, tuple[float, float, float]] = {}  # pid -> (wall, counter, per second)

    def _rate(self, pid: int, counter: float) -> float:
        """Counter units per second for `pid` (0.0 at its first reading)."""
        now = time.monotonic()
        last = self._last.get(pid)
        if last is None:
            self._last[pid] = (now, counter, 0.0)
            return 0.0
        wall, before, rate = last
        if now - wall >= self.min_interval:
            rate = max(0.0, (counter - before) / (now - wall))
            self._last[pid] = (now, counter, rate)
        return rate


class _CpuMeter(_RateMeter):
    """CPU % of processes (psutil's `cpu_percent(None)` divides by whatever time passed)."""

    def read(self, ps: psutil.Process) -> float:
        t = ps.cpu_times()
        return 100.0 * self._rate(ps.pid, t.user + t.system)


def run_delay_ns(pid: int) -> int | None:
    """Nanoseconds process `pid`'s main thread has spent runnable but waiting for a CPU
    (the second field of /proc/PID/schedstat), or None where the kernel does not say."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None


class _WaitMeter(_RateMeter):
    """Run-queue wait of processes, in ms per second.

    A process that is ready to run but finds both CPUs taken waits in the run queue; for
    an event loop that wait is added to every message it handles. On a full machine it
    tells the two kinds of latency apart: the servers' (a reply late because its server
    waited) and the harness's own (a reply read late because its generator waited).
    """

    def read(self, pid: int) -> float | None:
        delay = run_delay_ns(pid)
        return None if delay is None else self._rate(pid, delay / 1e6)


def _proc_sample(
    ps: psutil.Process | None, meter: _CpuMeter, waits: _WaitMeter, fds: bool = True
) -> dict[str, float] | None:
    if ps is None:
        return None
    try:
        with ps.oneshot():
            out = {"rss": float(ps.memory_info().rss), "cpu": meter.read(ps)}
            wait = waits.read(ps.pid)
            if wait is not None:
                out["wait"] = wait
            if fds:  # lists /proc/PID/fd: ~18k entries per loaded server
                out["fds"] = float(ps.num_fds())
            return out
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


class Sampler:
    """Samples server and generator processes once per call (CPU % since the last call)."""

    def __init__(self, fleet: Fleet | None, worker_pids: list[int]) -> None:
        self.fleet = fleet
        self.workers: list[psutil.Process | None] = []
        for pid in worker_pids:
            try:
                self.workers.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                self.workers.append(None)
        self._n = 0
        self._meter = _CpuMeter()
        self._waits = _WaitMeter()
        self._fds: dict[int, float] = {}
        #: count server descriptors on every n-th sample (1 for small runs)
        self.fds_every = 1
        psutil.cpu_percent(None)
        psutil.cpu_times_percent(None)
        self.sample()  # prime the CPU counters

    def sample(self) -> dict[str, Any]:
        """One sample; descriptors are counted every `fds_every`-th time (and kept between)."""
        self._n += 1
        fds = self._n % self.fds_every == 1 or self.fds_every == 1
        servers = []
        if self.fleet is not None:
            for i, s in enumerate(self.fleet.servers):
                x = _proc_sample(s.ps, self._meter, self._waits, fds) if s.alive() else None
                if x is not None:
                    if fds:
                        self._fds[i] = x["fds"]
                    x["fds"] = self._fds.get(i, 0.0)
                servers.append(x)
        workers = [_proc_sample(p, self._meter, self._waits, False) for p in self.workers]
        vm = psutil.virtual_memory()
        kinds = psutil.cpu_times_percent(None)
        return {
            "servers": servers,
            "workers": workers,
            "machine_cpu": psutil.cpu_percent(None),
            # time no process is charged for (% of all CPUs): interrupts and softirqs (the
            # kernel's loopback network processing, mostly), and time the hypervisor took
            "machine_irq": getattr(kinds, "irq", 0.0) + getattr(kinds, "softirq", 0.0),
            "machine_steal": getattr(kinds, "steal", 0.0),
            "mem_available": float(vm.available),
        }
