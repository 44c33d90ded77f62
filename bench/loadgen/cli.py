"""Command line of the load generator.

    python -m bench.loadgen --scenario bench/scenarios/idle.toml --connections 2000 \\
        --duration 30 --servers 1 --out bench/out/idle

Exit code: 0 if every pass criterion held, 1 if one failed (errors, sessions not held,
a latency limit, a step the server does not support), 2 for bad arguments or a run that
could not start.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlsplit

from . import scenario as scenario_mod
from .runner import Options, describe_plan, run


def _target(url: str) -> tuple[str, int, str]:
    u = urlsplit(url)
    if u.scheme != "ws" or not u.hostname or not u.port:
        raise argparse.ArgumentTypeError(f"expected ws://HOST:PORT/PATH, got {url!r}")
    return u.hostname, u.port, u.path or "/ws"


def _env(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {item!r}")
    return key, value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description="Croupier load generator: scenarios of many WebSocket sessions on loopback.",
    )
    p.add_argument("--scenario", required=True, help="scenario file (.toml or .json), see bench/scenarios/")
    p.add_argument("--connections", "-c", type=int, help="sessions (default: the scenario's)")
    p.add_argument(
        "--duration", "-d", type=float, help="seconds to hold after the ramp (default: the scenario's)"
    )
    p.add_argument(
        "--servers", type=int, default=0, help="server processes to start (default: one per 18,000 sessions)"
    )
    p.add_argument("--base-port", type=int, default=8800, help="port of the first server (others follow)")
    p.add_argument(
        "--target",
        action="append",
        type=_target,
        default=[],
        metavar="URL",
        help="use a running server instead of starting any (repeatable; loopback only)",
    )
    p.add_argument(
        "--admin-base-port",
        type=int,
        help="admin HTTP port of the first started server, for its /stats (default: base port + 100; 0 = none)",
    )
    p.add_argument(
        "--stats-url",
        action="append",
        default=[],
        metavar="URL",
        help="with --target: a server's admin /stats URL, to check the report against (repeatable)",
    )
    p.add_argument(
        "--workers", type=int, default=0, help="generator processes (default: one per 16,000 sessions)"
    )
    p.add_argument(
        "--source-base", default="127.0.0.2", help="source address of the first generator (others +1)"
    )
    p.add_argument("--rate", type=float, help="ramp: new connections/s over all generators (0 = unpaced)")
    p.add_argument("--concurrency", type=int, help="ramp: connections being opened at once per generator")
    p.add_argument("--codec", choices=["msgpack", "json"], help="override the scenario's codec")
    p.add_argument(
        "--store",
        help="money store of each started server: sqlite (a file per process), memory, config, or a URL"
        " (default: the scenario's, else sqlite)",
    )
    p.add_argument("--server-config", help="config file for the started servers (default: the scenario's)")
    p.add_argument(
        "--server-nice",
        type=int,
        choices=range(20),
        metavar="0-19",
        help="niceness of the started servers: the generators run first on a full machine (default: the scenario's)",
    )
    p.add_argument(
        "--server-env",
        action="append",
        type=_env,
        default=[],
        metavar="KEY=VALUE",
        help="extra server environment",
    )
    p.add_argument(
        "--allow-unsupported",
        action="store_true",
        help="do not fail the run for steps the server answers unknown_message (still reported)",
    )
    p.add_argument(
        "--out", default="bench/out/run", help="output directory (report.json, summary.md, plot.png)"
    )
    p.add_argument("--no-progress", action="store_true", help="no live progress line")
    p.add_argument(
        "--protocol",
        choices=["croupier", "colyseus"],
        default="croupier",
        help="the targets' protocol: colyseus drives a Colyseus room server (the peer; needs --target)",
    )
    p.add_argument("--plan", action="store_true", help="print what would be started, start nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        sc = scenario_mod.load(args.scenario)
    except (OSError, ValueError) as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    import msgspec

    if args.codec:
        sc = msgspec.structs.replace(sc, codec=args.codec)
    if args.server_config:
        sc = msgspec.structs.replace(sc, server=msgspec.structs.replace(sc.server, config=args.server_config))
    if args.store:
        sc = msgspec.structs.replace(sc, server=msgspec.structs.replace(sc.server, store=args.store))
    if args.server_nice is not None:
        sc = msgspec.structs.replace(sc, server=msgspec.structs.replace(sc.server, nice=args.server_nice))
    opts = Options(
        scenario=sc,
        connections=args.connections or sc.connections,
        duration=args.duration if args.duration is not None else sc.duration,
        out=Path(args.out),
        servers=args.servers,
        base_port=args.base_port,
        targets=list(args.target),
        workers=args.workers,
        source_base=args.source_base,
        ramp_rate=args.rate,
        concurrency=args.concurrency,
        allow_unsupported=args.allow_unsupported,
        progress=not args.no_progress,
        server_env=dict(args.server_env),
        admin_base_port=args.admin_base_port,
        stats_urls=list(args.stats_url),
        protocol=args.protocol,
    )
    if args.protocol != "croupier" and not args.target:
        print(
            "loadgen: --protocol colyseus needs --target ws://127.0.0.1:PORT (a running peer)",
            file=sys.stderr,
        )
        return 2
    if args.plan:
        import json

        try:
            print(json.dumps(describe_plan(opts), indent=1))
        except ValueError as exc:
            print(f"loadgen: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        report = run(opts)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    print((out / "summary.md").read_text())
    print(f"report: {out / 'report.json'}  summary: {out / 'summary.md'}", end="")
    print(
        f"  plot: {out / 'plot.png'}"
        if (out / "plot.png").exists()
        else "  (no plot: matplotlib is not installed)"
    )
    return 0 if report["pass"] else 1
