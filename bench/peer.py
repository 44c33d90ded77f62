"""Croupier and a Colyseus room server side by side, driven by the same load generator.

    python -m bench.peer                       # 2,000 sessions, 30 s hold each, 1 round
    python -m bench.peer -c 2000 -d 30 --rounds 2 --out bench/out/peer

Each round starts both servers, each pinned to ONE core (`taskset -c`; the same core
for both, the generator processes and this one on the others), runs the scenario
(bench/scenarios/peer.toml) against one and then the other (the order alternates per
round) with the same sessions, rate and hold, samples the server's CPU time and RSS with
psutil twice a second, and stops both. Croupier runs one worker with its money in memory
(`memory://`); the Colyseus peer (bench/peers/colyseus/server.mjs) keeps balances in
memory too. Per server it reports, over the hold (after the ramp and its settle time):

- messages per server CPU-second ("per core"): requests sent + replies and events
  received by the generators, over the server process's user + system CPU time;
- messages/s, the server's mean CPU (% of a core) and the p50/p99 of ping, chat, spin;
- server RSS per session: RSS at the end of the hold minus RSS before the run, over
  the sessions held;

and the ratios Croupier / Colyseus. Outputs: `peer.json`, `peer.md` and each run's
loadgen report under `--out`. The Colyseus packages must be installed first
(`make bench-peer` does: `npm ci` in bench/peers/colyseus/). Loopback only; every
process started here is ended by its PID.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import psutil

from bench.loadgen import scenario as scenario_mod
from bench.loadgen.runner import Options, run
from bench.loadgen.servers import other_listeners_off, port_is_free
from bench.loadgen.stats import DELIVERY

REPO = Path(__file__).resolve().parents[1]
PEER_DIR = REPO / "bench" / "peers" / "colyseus"
HOST = "127.0.0.1"
#: steps compared between the two servers (join_room is part of login on Colyseus);
#: chat_delivery: a chat's trip from its sender to each member (the scenario stamps it)
COMPARED_STEPS = ("ping", "chat", "spin", DELIVERY)


@dataclass
class Sampler:
    """CPU time and RSS of one process, every `interval` seconds, in a thread."""

    pid: int
    interval: float = 0.5
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _take(self, ps: psutil.Process) -> None:
        with ps.oneshot():
            t = ps.cpu_times()
            self.samples.append((time.time(), t.user + t.system, float(ps.memory_info().rss)))

    def _loop(self) -> None:
        try:
            ps = psutil.Process(self.pid)
            for _ in range(100_000):  # bounded: ~14 hours at 0.5 s
                self._take(ps)
                if self._stop.wait(self.interval):
                    break
            self._take(ps)
        except psutil.Error:
            return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"sampler-{self.pid}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def at(self, wall: float) -> tuple[float, float, float]:
        """The sample nearest to `wall`."""
        return min(self.samples, key=lambda s: abs(s[0] - wall))


@dataclass
class Server:
    name: str
    protocol: str
    port: int
    cmd: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    admin_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> tuple[str, int, str]:
        return (HOST, self.port, "/ws" if self.protocol == "croupier" else "/")

    def start(self, timeout: float = 60.0) -> None:
        for port in [self.port] + ([self.admin_port] if self.admin_port else []):
            if not port_is_free(HOST, port):
                raise RuntimeError(
                    f"port {port} is in use (pick others with --croupier-port/--colyseus-port)"
                )
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited at start-up:\n{tail}")
            if not port_is_free(HOST, self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL after 10 s."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait(5)


def pin_prefix(cpu: int | None) -> list[str]:
    if cpu is None:
        return []
    exe = shutil.which("taskset")
    return [exe, "-c", str(cpu)] if exe else []


def croupier_server(
    port: int, cpu: int | None, out: Path, store: str, config: str = "", event_tick_ms: float = 0.0
) -> Server:
    env = dict(os.environ)
    env.update(other_listeners_off())
    env.update(
        {
            "CROUPIER_SERVER_HOST": HOST,
            "CROUPIER_SERVER_WS_PORT": str(port),
            "CROUPIER_SERVER_WS_PATH": "/ws",
            "CROUPIER_SERVER_ADMIN_PORT": str(port + 100),
            "CROUPIER_CLUSTER_WORKERS": "1",
            "CROUPIER_SERVER_EVENT_TICK_MS": str(event_tick_ms),
            "CROUPIER_STORE_URL": "memory://"
            if store == "memory"
            else f"sqlite:///{(out / 'croupier.db').resolve()}",
        }
    )
    env.pop("PYTHONASYNCIODEBUG", None)  # any non-empty value turns asyncio's debug mode on
    cmd = [*pin_prefix(cpu), sys.executable, "-m", "gameserver", "run", "--log-level", "WARNING"]
    if config:
        path = Path(config) if Path(config).is_absolute() or Path(config).exists() else REPO / config
        cmd += ["--config", str(path.resolve())]
    return Server("croupier", "croupier", port, cmd, env, REPO, out / "croupier.log", admin_port=port + 100)


def colyseus_server(port: int, cpu: int | None, out: Path, ping_ms: int) -> Server:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: the Colyseus peer needs Node.js 20+")
    if not (PEER_DIR / "node_modules" / "@colyseus" / "core").is_dir():
        raise RuntimeError("the Colyseus packages are not installed: run `make bench-peer-install`")
    env = dict(os.environ)
    env["PEER_PING_INTERVAL_MS"] = str(ping_ms)
    env["NODE_ENV"] = "production"
    cmd = [*pin_prefix(cpu), node, "server.mjs", "--port", str(port), "--host", HOST]
    return Server("colyseus", "colyseus", port, cmd, env, PEER_DIR, out / "colyseus.log")


def measure(srv: Server, sc: scenario_mod.Scenario, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One loadgen run against `srv`, with its CPU and RSS sampled; the figures of its hold."""
    assert srv.proc is not None
    sampler = Sampler(srv.proc.pid)
    sampler.start()
    time.sleep(1.0)
    opts = Options(
        scenario=sc,
        connections=args.connections,
        duration=args.duration,
        out=out,
        targets=[srv.target],
        ramp_rate=args.rate,
        workers=args.workers,
        allow_unsupported=False,
        progress=not args.no_progress,
        stats_urls=[f"http://{HOST}:{srv.admin_port}/stats"] if srv.admin_port else [],
        protocol=srv.protocol,
    )
    try:
        report = run(opts)
    finally:
        sampler.stop()
    return figures(srv.name, report, sampler)


def figures(name: str, report: dict[str, Any], sampler: Sampler) -> dict[str, Any]:
    hold = [r for r in report["timeline"] if r["phase"] == "hold"]
    out: dict[str, Any] = {"server": name, "pass": report["pass"], "errors": report["errors"]["total"]}
    if len(hold) < 2 or not sampler.samples:
        out["note"] = "no hold samples"
        return out
    first, last = hold[0], hold[-1]
    seconds = last["wall"] - first["wall"]
    msgs = (last["sent"] + last["received"]) - (first["sent"] + first["received"])
    cpu0, cpu1 = sampler.at(first["wall"])[1], sampler.at(last["wall"])[1]
    cpu_s = cpu1 - cpu0
    base_rss = sampler.samples[0][2]
    end_rss = sampler.at(last["wall"])[2]
    held = int(report["connections"]["held_at_end"])
    steps = {}
    for label in COMPARED_STEPS:
        st = report["steps"].get(label)
        if st is None:
            continue
        lat = st["hold_latency"]
        steps[label] = {
            "sent": st["sent"],
            "ok": st["ok"],
            "p50_ms": lat.get("p50_ms"),
            "p99_ms": lat.get("p99_ms"),
            "count": lat.get("count", 0),
        }
    out.update(
        {
            "hold_s": round(seconds, 2),
            "messages": int(msgs),
            "messages_per_s": round(msgs / seconds, 1) if seconds > 0 else None,
            "server_cpu_s": round(cpu_s, 3),
            "server_cpu_percent": round(100 * cpu_s / seconds, 1) if seconds > 0 else None,
            "messages_per_cpu_s": round(msgs / cpu_s, 1) if cpu_s > 0 else None,
            "rss_before_mib": round(base_rss / 2**20, 1),
            "rss_hold_end_mib": round(end_rss / 2**20, 1),
            "sessions_held": held,
            "rss_per_session_kib": round((end_rss - base_rss) / 1024 / held, 2) if held else None,
            "ramp_s": report["timing"]["ramp_s"],
            "sessions_per_s": report["connections"]["handshakes_per_s"],
            "steps": steps,
            "generator_cpu_max_percent": report.get("generator", {}).get("cpu_max_percent_one_process"),
            # CPU of everything but this server and the generators (other work skews latencies)
            "other_cpu_percent": round(
                max(0.0, sum(r["other_cpu"] for r in hold) / len(hold) - 100 * cpu_s / seconds), 1
            )
            if seconds > 0
            else None,
            "events": report["messages"]["events"],
        }
    )
    return out


def ratios(c: dict[str, Any], y: dict[str, Any]) -> dict[str, Any]:
    """Croupier / Colyseus for each figure both have."""

    def q(a: Any, b: Any) -> float | None:
        return round(a / b, 2) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None

    out: dict[str, Any] = {
        "messages_per_cpu_s": q(c.get("messages_per_cpu_s"), y.get("messages_per_cpu_s")),
        "server_cpu_percent": q(c.get("server_cpu_percent"), y.get("server_cpu_percent")),
        "rss_per_session_kib": q(c.get("rss_per_session_kib"), y.get("rss_per_session_kib")),
    }
    for label in COMPARED_STEPS:
        a, b = c.get("steps", {}).get(label), y.get("steps", {}).get(label)
        if a and b:
            out[f"{label}_p99_ms"] = q(a["p99_ms"], b["p99_ms"])
    return out


def median(xs: list[float]) -> float | None:
    xs = sorted(x for x in xs if isinstance(x, (int, float)))
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else round((xs[n // 2 - 1] + xs[n // 2]) / 2, 2)


def markdown(result: dict[str, Any]) -> str:
    p = result["params"]
    lines = [
        "# Croupier vs Colyseus, side by side",
        "",
        f"- {p['connections']} sessions, ramp {p['rate']}/s, hold {p['duration']} s, scenario `{p['scenario']}`,"
        f" {p['rounds']} round(s); each server pinned to CPU {p['server_cpu']} (generators on {p['generator_cpus']})",
        f"- Croupier: one worker, config `{p['croupier_config']}`, store `{p['store']}`,"
        f" send tick {p['event_tick_ms']} ms; Colyseus {p['colyseus_version']} on Node {p['node']},"
        f" WebSocket ping every {p['colyseus_ping_ms']} ms",
        "",
        "| round | server | msgs/s | server CPU % | **msgs per CPU-s** | ping p99 ms | chat p99 ms | spin p99 ms"
        " | chat delivery p99 ms | RSS/session KiB | other CPU % | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, rnd in enumerate(result["rounds"], 1):
        for f in (rnd["croupier"], rnd["colyseus"]):
            st = f.get("steps", {})

            def p99(label: str, st: dict[str, Any] = st) -> str:
                v = st.get(label, {}).get("p99_ms")
                return f"{v:.2f}" if isinstance(v, (int, float)) else "-"

            lines.append(
                f"| {i} | {f['server']} | {f.get('messages_per_s', '-')} | {f.get('server_cpu_percent', '-')}"
                f" | **{f.get('messages_per_cpu_s', '-')}** | {p99('ping')} | {p99('chat')} | {p99('spin')}"
                f" | {p99(DELIVERY)}"
                f" | {f.get('rss_per_session_kib', '-')} | {f.get('other_cpu_percent', '-')} | {f.get('errors', '-')} |"
            )
    lines += [
        "",
        "Croupier / Colyseus (median over rounds; > 1 is better for msgs per CPU-s, < 1 for the rest):",
        "",
    ]
    for k, v in result["ratio_median"].items():
        lines.append(f"- `{k}`: **{v}**")
    lines.append("")
    return "\n".join(lines)


def write(out: Path, params: dict[str, Any], rounds: list[dict[str, Any]]) -> str:
    """peer.json and peer.md for the rounds so far; returns the markdown."""
    keys = rounds[0]["ratio"].keys() if rounds else []
    result = {
        "params": params,
        "rounds": rounds,
        "ratio_median": {k: median([r["ratio"].get(k) for r in rounds]) for k in keys},
    }
    (out / "peer.json").write_text(json.dumps(result, indent=1))
    md = markdown(result)
    (out / "peer.md").write_text(md)
    return md


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default=str(REPO / "bench" / "scenarios" / "peer.toml"))
    p.add_argument("-c", "--connections", type=int, default=2000)
    p.add_argument("-d", "--duration", type=float, default=30.0, help="hold seconds per server")
    p.add_argument("--rate", type=float, default=500.0, help="ramp: new sessions per second")
    p.add_argument("--rounds", type=int, default=1, choices=range(1, 4), help="interleaved rounds (1-3)")
    p.add_argument("--workers", type=int, default=1, help="generator processes")
    p.add_argument("--store", choices=["memory", "sqlite"], default="memory", help="Croupier's money store")
    p.add_argument(
        "--server-config",
        default="",
        help="Croupier's config file (default: config/croupier.toml; bench/scenarios/servers/peer.toml: no rewards)",
    )
    p.add_argument(
        "--mix",
        choices=["casino", "requests", "idle"],
        default="casino",
        help="casino: the scenario as written; requests: without its chat profiles (no fan-out);"
        " idle: only the profiles that neither chat nor spin (heartbeats: the cost of holding sessions)",
    )
    p.add_argument(
        "--event-tick-ms",
        type=float,
        default=0.0,
        help="Croupier's send tick (server.event_tick_ms): events wait up to this long to share a write",
    )
    p.add_argument("--croupier-port", type=int, default=8890)
    p.add_argument("--colyseus-port", type=int, default=2590)
    p.add_argument(
        "--colyseus-ping-ms", type=int, default=20000, help="Colyseus WebSocket ping period (0 = off)"
    )
    p.add_argument(
        "--server-cpu", type=int, help="the core both servers are pinned to (default: the last one)"
    )
    p.add_argument("--out", default="bench/out/peer")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.connections < 1 or args.connections > 18_000:
        print("peer: --connections must be 1..18000 (one server process each)", file=sys.stderr)
        return 2
    if args.duration <= 0 or args.duration > 60:
        print("peer: --duration must be in (0, 60] seconds: a run stays bounded", file=sys.stderr)
        return 2
    if not 0 <= args.event_tick_ms <= 1000:
        print("peer: --event-tick-ms must be 0..1000", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sc = scenario_mod.load(args.scenario)
    sc = msgspec.structs.replace(sc, reconnect=msgspec.structs.replace(sc.reconnect, enabled=False))
    if args.mix != "casino":
        drop = {"chat"} if args.mix == "requests" else {"chat", "spin"}
        profiles = [pr for pr in sc.profiles if not any(s.op in drop for s in pr.steps)]
        if not profiles:
            print(f"peer: the scenario has no profile for --mix {args.mix}", file=sys.stderr)
            return 2
        sc = msgspec.structs.replace(sc, name=f"{sc.name}-{args.mix}", profiles=profiles, criteria=[])
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu: int | None = args.server_cpu if args.server_cpu is not None else cpus[-1]
    generator_cpus = [c for c in cpus if c != server_cpu] or cpus
    if len(cpus) < 2 and args.server_cpu is None:
        server_cpu = None  # one CPU: nothing to pin apart
    if server_cpu is not None and len(generator_cpus) < len(cpus):
        os.sched_setaffinity(0, generator_cpus)  # this process and the generators it spawns
    node_version = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        node_version = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    colyseus_version = ""
    with contextlib.suppress(OSError, ValueError):
        pkg = json.loads((PEER_DIR / "node_modules" / "@colyseus" / "core" / "package.json").read_text())
        colyseus_version = f"@colyseus/core {pkg['version']}"
    params = {
        "scenario": sc.name,
        "connections": args.connections,
        "duration": args.duration,
        "rate": args.rate,
        "rounds": args.rounds,
        "mix": args.mix,
        "store": "memory://" if args.store == "memory" else "sqlite",
        "croupier_config": args.server_config or "config/croupier.toml",
        "event_tick_ms": args.event_tick_ms,
        "server_cpu": server_cpu,
        "generator_cpus": generator_cpus,
        "pinned_with": "taskset" if server_cpu is not None and shutil.which("taskset") else None,
        "colyseus_ping_ms": args.colyseus_ping_ms,
        "node": node_version,
        "colyseus_version": colyseus_version,
        "python": sys.version.split()[0],
        "started_at_unix": round(time.time(), 3),
    }
    rounds: list[dict[str, Any]] = []
    try:
        for i in range(args.rounds):
            rdir = out / f"round-{i + 1}"
            rdir.mkdir(parents=True, exist_ok=True)
            servers = [
                croupier_server(
                    args.croupier_port, server_cpu, rdir, args.store, args.server_config, args.event_tick_ms
                ),
                colyseus_server(args.colyseus_port, server_cpu, rdir, args.colyseus_ping_ms),
            ]
            try:
                for s in servers:
                    s.start()
                order = servers if i % 2 == 0 else servers[::-1]
                rnd: dict[str, Any] = {}
                for s in order:
                    print(f"peer: round {i + 1}: {s.name} (port {s.port})", file=sys.stderr)
                    rnd[s.name] = measure(s, sc, args, rdir / s.name)
                rnd["ratio"] = ratios(rnd["croupier"], rnd["colyseus"])
                rounds.append(rnd)
                write(out, params, rounds)  # what is done so far, if a later round fails
            finally:
                for s in servers:
                    s.stop()
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"peer: {exc}", file=sys.stderr)
        return 2
    print(write(out, params, rounds))
    print(f"report: {out / 'peer.json'}  summary: {out / 'peer.md'}")
    ok = all(r[s].get("errors") == 0 for r in rounds for s in ("croupier", "colyseus"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
