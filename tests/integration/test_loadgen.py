"""The load generator is itself tested: a small run whose report must agree with the server.

A real server runs in this process (its own uvloop thread, port 0); the generator runs
as it does for a benchmark, in generator subprocesses. The server side is counted by
wrapping its connection and transport methods here (the server has no message
counters of its own): every message it received, and every reply and event it actually
wrote. The report's counts must equal those exactly, and the sessions it says it held
must equal the players the hub had.
"""

from __future__ import annotations

import asyncio
import collections
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bench.loadgen import cli, scenario
from bench.loadgen.runner import Options, run
from bench.loadgen.stats import Histogram, bucket_of, bucket_value
from gameserver.config import CasinoSection, CasinoZone, Config, StoreSection
from gameserver.connection import Connection
from gameserver.transports.picows_ws import PicowsLink

from .conftest import Running, running_server, server_config

SMALL = """
name = "ci"
description = "200 sessions: ping every 0.5 s; 10% also join the Lobby and chat every second"
connections = 200
duration = 3

[ramp]
rate = 400
concurrency = 100

[[profiles]]
name = "idle"
weight = 9
steps = [{ op = "login" }, { op = "ping", every = 0.5 }]

[[profiles]]
name = "chatter"
weight = 1
steps = [
  { op = "login" },
  { op = "join_room", fields = { room = "Lobby" } },
  { op = "ping", every = 0.5 },
  { op = "chat", every = 1.0, fields = { text = "hello from $name @t$sent_us" } },
]

[[profiles]]
name = "spinner"
weight = 1
steps = [{ op = "login" }, { op = "balance" }, { op = "spin", every = 0.5 }]

[[criteria]]
metric = "steps.ping.hold_latency.p99_ms"
max = 1000

[[criteria]]
metric = "steps.spin.hold_latency.p99_ms"
max = 1000
"""

UNSUPPORTED = """
name = "spins"
connections = 20
duration = 1.5

[ramp]
rate = 200

[[profiles]]
name = "spinner"
steps = [
  { op = "login" },
  { op = "ping", every = 0.5 },
  { op = "spin", every = 0.2 },
  { op = "request", type = "teleport", label = "teleport", every = 0.2 },
]

[[criteria]]
metric = "steps.spin.hold_latency.p99_ms"
max = 100
"""


class ServerCounts:
    """What the server received and wrote, by message type (wrapped methods)."""

    def __init__(self) -> None:
        self.received: collections.Counter[str] = collections.Counter()
        self.written: collections.Counter[str] = collections.Counter()

    def install(self, mp: pytest.MonkeyPatch) -> None:
        received, written = self.received, self.written
        orig_received = Connection.message_received
        orig_write = PicowsLink.write

        def message_received(conn: Connection, data: bytes, binary: bool) -> None:
            received[msgspec.msgpack.decode(data).get("type", "?")] += 1
            orig_received(conn, data, binary)

        def write(link: PicowsLink, payloads: list[bytes]) -> None:
            if link.transport is not None and not link._closed:  # what write() really sends
                for p in payloads:
                    written[msgspec.msgpack.decode(p)["type"]] += 1
            orig_write(link, payloads)

        mp.setattr(Connection, "message_received", message_received)
        mp.setattr(PicowsLink, "write", write)


def casino_config(casino: bool) -> Config:
    """The integration servers' config, with or without a demo casino (money in memory)."""
    config = server_config("picows")
    # the admin HTTP app on a free port: its /stats are the server's own counts
    config = msgspec.structs.replace(config, server=msgspec.structs.replace(config.server, admin_port=0))
    if not casino:
        return msgspec.structs.replace(config, casino=CasinoSection())
    demo = CasinoZone(games={"fruit_slot": "96.5"}, starting_balance=100_000)
    return msgspec.structs.replace(
        config, store=StoreSection(url="memory://"), casino=CasinoSection(zones={"demo": demo})
    )


@pytest.fixture(params=[True], ids=["casino"])
def counted_server(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Running, ServerCounts]]:
    counts = ServerCounts()
    counts.install(monkeypatch)
    with running_server(casino_config(request.param)) as srv:
        yield srv, counts


def hub_stats(srv: Running) -> dict[str, int]:
    async def stats() -> dict[str, int]:
        return srv.server.hub.stats()

    return asyncio.run_coroutine_threadsafe(stats(), srv.loop).result(5)


class StatsPoller(threading.Thread):
    """The most players / connections the hub had at once, sampled every 50 ms."""

    def __init__(self, srv: Running) -> None:
        super().__init__(daemon=True)
        self.srv = srv
        self.max_players = 0
        self.max_connections = 0
        self.done = threading.Event()

    def run(self) -> None:
        for _ in range(2000):  # bounded: 100 s at most
            if self.done.wait(0.05):
                return
            s = hub_stats(self.srv)
            self.max_players = max(self.max_players, s["players"])
            self.max_connections = max(self.max_connections, s["connections"])


def small_run(srv: Running, text: str, out: Path, **kw: Any) -> dict[str, Any]:
    sc = scenario.parse(text.encode(), "toml")
    opts = Options(
        scenario=sc,
        connections=sc.connections,
        duration=sc.duration,
        out=out,
        targets=[("127.0.0.1", srv.server.ws_port, "/ws")],
        stats_urls=[f"http://127.0.0.1:{srv.server.admin_port}/stats"],
        workers=2,
        progress=False,
        settle=1.0,
        **kw,
    )
    return run(opts)


def test_report_agrees_with_what_the_server_counted(
    counted_server: tuple[Running, ServerCounts], tmp_path: Path
) -> None:
    srv, counts = counted_server
    poller = StatsPoller(srv)
    poller.start()
    try:
        report = small_run(srv, SMALL, tmp_path / "run")
    finally:
        poller.done.set()
        poller.join(5)

    assert report["errors"] == {"total": 0, "by_kind": {}}, report["errors"]
    assert report["pass"], report["criteria"]
    conns = report["connections"]
    # sessions: what the generator held is what the hub had
    assert conns["held_at_end"] == conns["peak_sessions"] == 200
    assert poller.max_players == poller.max_connections == 200
    assert hub_stats(srv) == {"connections": 0, "players": 0, "detached": 0}  # all closed with 1000
    # ... and the report's own check against the server's /stats agrees
    sc = report["server_counts"]
    assert sc["players_at_hold_end"] == sc["held_by_generators"] == 200
    assert sc["players_diff"] == sc["login_diff"] == sc["players_after"] == sc["connections_after"] == 0
    # (spins go on until the stop, after /stats was read)
    assert sc["requests"]["Login"] == 200 and 0 < sc["requests"]["Spin"] <= counts.received["spin"]
    # each spin the server settled by then is one commit in its /stats histogram
    assert 0 < sc["spin_commits"]["count"] <= sc["requests"]["Spin"]
    assert {"server_counts.players_diff", "server_counts.login_diff"} <= {
        c["metric"] for c in report["criteria"]
    }

    steps = report["steps"]
    msgs = report["messages"]
    # every request the generator sent reached the server, by type
    assert counts.received["login"] == steps["login"]["sent"] == steps["login"]["ok"] == 200
    assert counts.received["ping"] == steps["ping"]["sent"] > 400
    assert counts.received["join_room"] == steps["join_room"]["sent"] == steps["join_room"]["ok"] > 0
    assert counts.received["public_message"] == steps["chat"]["sent"] > 0
    assert counts.received["spin"] == steps["spin"]["sent"] == steps["spin"]["ok"] + steps["spin"]["lost"] > 0
    assert counts.received["balance"] == steps["balance"]["ok"] == steps["balance"]["sent"] > 0
    assert sum(counts.received.values()) == msgs["requests_sent"]
    # every reply and event the server wrote was received and counted
    assert counts.written["ok"] == msgs["ok_received"]
    assert counts.written["error"] == msgs["errors_received"] == 0
    assert counts.written["event"] == msgs["events_received"] > 0
    assert msgs["events"]["public_message"] > 0
    # every chat was stamped by its sender: each member's copy has a delivery time
    delivery = steps["chat_delivery"]
    assert delivery["ok"] == delivery["latency"]["count"] == msgs["events"]["public_message"]
    assert delivery["sent"] == 0 and delivery["type"].startswith("(public_message")
    assert 0 < delivery["latency"]["p50_ms"] <= delivery["latency"]["max_ms"] < 5000
    assert msgs["replies_without_request"] == 0
    # replies matched to their requests: every ping answered (or in flight at the stop)
    ping = steps["ping"]
    assert ping["ok"] + ping["lost"] == ping["sent"]
    assert ping["latency"]["count"] == ping["ok"]
    assert 0 < ping["latency"]["p50_ms"] <= ping["latency"]["p99_ms"] <= ping["latency"]["max_ms"]
    # the outputs a person reads
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "PASS" in summary and "| ping | `ping` |" in summary
    assert (tmp_path / "run" / "report.json").stat().st_size > 0
    assert [r["phase"] for r in report["timeline"]].count("hold") >= 2
    if os.path.exists("/proc/self/schedstat"):  # the generators' wait for a CPU (the server is not ours)
        wait = report["generator"]["runqueue_wait_ms_per_s"]
        assert wait is not None and 0.0 <= wait <= 1000.0, wait
        assert summary.count("waiting for a CPU") == 1


@pytest.mark.parametrize("counted_server", [False], ids=["no-casino"], indirect=True)
def test_a_step_the_server_does_not_know_is_reported_not_counted(
    counted_server: tuple[Running, ServerCounts], tmp_path: Path
) -> None:
    """`teleport` is answered unknown_message, `spin` not_supported (no casino here)."""
    srv, counts = counted_server
    path = tmp_path / "spins.toml"
    path.write_text(UNSUPPORTED)
    target = f"ws://127.0.0.1:{srv.server.ws_port}/ws"
    base = ["--scenario", str(path), "--target", target, "--workers", "1", "--no-progress"]
    assert cli.main([*base, "--out", str(tmp_path / "strict")]) == 1  # fails: not supported

    report = msgspec.json.decode((tmp_path / "strict" / "report.json").read_bytes())
    for label, mtype in (("spin", "spin"), ("teleport", "teleport")):
        st = report["steps"][label]
        assert st["status"] == "not supported by server"
        assert st["ok"] == 0 and st["errors"] == 0 and st["unsupported"] >= 1
        assert st["unsupported"] == counts.received[mtype]  # each one answered so
        # a generator stops sending a step once the server said it does not know it
        assert st["sent"] == st["unsupported"] < 20  # (else about 150 in this run)
    assert [u["step"] for u in report["unsupported"]] == ["spin", "teleport"]
    assert report["errors"]["total"] == 0
    assert report["steps"]["ping"]["ok"] > 0
    failed = {c["metric"] for c in report["criteria"] if not c["pass"]}
    assert failed == {"steps.spin", "steps.teleport", "steps.spin.hold_latency.p99_ms"}
    assert "Not supported by server" in (tmp_path / "strict" / "summary.md").read_text()

    assert cli.main([*base, "--out", str(tmp_path / "lenient"), "--allow-unsupported"]) == 0


def test_scenario_files_and_checks() -> None:
    for path in sorted(Path("bench/scenarios").glob("*.toml")):
        scenario.load(path)
    with pytest.raises(ValueError, match="first step must be `login`"):
        scenario.parse(b'name = "x"\n[[profiles]]\nname = "p"\nsteps = [{ op = "ping" }]\n', "toml")
    with pytest.raises(ValueError, match="unknown op"):
        scenario.parse(
            b'name = "x"\n[[profiles]]\nname = "p"\nsteps = [{ op = "login" }, { op = "warp" }]\n', "toml"
        )
    # a 1% profile gets about 1% of any run of sessions
    picks = [scenario.assign_profile(i, [99.0, 1.0]) for i in range(10_000)]
    assert 95 <= picks.count(1) <= 105


def test_histogram_percentiles_within_a_few_percent() -> None:
    h = Histogram()
    for us in range(1, 100_001):
        h.record(us / 1e6)
    for p in (50, 90, 99, 99.9):
        exact = p / 100 * 100_000 / 1e6
        assert abs(h.percentile(p) - exact) / exact < 0.035
    assert all(bucket_value(bucket_of(v)) <= v * 1.04 + 1 for v in (0, 1, 31, 32, 33, 1000, 10**9))
    other = Histogram.from_wire(h.to_wire())
    assert other.n == h.n and other.percentile(99) == h.percentile(99)


def autogroup_nice(pid: int) -> int | None:
    """The niceness of a process's scheduling autogroup (None: the kernel has none)."""
    try:
        with open(f"/proc/{pid}/autogroup") as f:
            return int(f.read().split()[-1])
    except OSError:
        return None


def test_started_servers_run_at_the_scenario_niceness(tmp_path: Path) -> None:
    """`[server] nice` (or `--server-nice`): the generators get the CPU first on a full
    machine; the niceness is applied to each `gameserver run` the harness starts and to its
    scheduling autogroup (each server runs in a session of its own), restarts included,
    and out-of-range values are refused."""
    import socket

    from bench.loadgen.servers import Fleet

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fleet = Fleet(1, port, scenario.ServerSettings(store="memory", nice=7), tmp_path)
    try:
        fleet.start(timeout=60)
        server = fleet.servers[0]
        assert server.ps is not None and server.ps.nice() == 7
        assert autogroup_nice(server.ps.pid) in (None, 7)
        fleet.restart(0)
        assert server.ps.nice() == 7
        assert autogroup_nice(server.ps.pid) in (None, 7)
    finally:
        fleet.stop()
    assert not fleet.servers[0].alive()
    bad = b'name = "x"\n[server]\nnice = 20\n[[profiles]]\nname = "p"\nsteps = [{ op = "login" }]\n'
    with pytest.raises(ValueError, match="nice"):
        scenario.parse(bad, "toml")
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["--scenario", "x.toml", "--server-nice", "20"])
