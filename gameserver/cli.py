"""Command line: `croupier run` starts a server, `croupier token` mints a login token.

python -m gameserver run [--config FILE] [--workers N]
python -m gameserver token --user 42 --zone demo [--name alice] [--role user] [--ttl 3600]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

import msgspec

from . import auth, logs
from .config import DEV_SECRET, Config, load
from .server import manage_gc, start

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "croupier.toml"


def _load(path: str | None) -> Config:
    if path is None and DEFAULT_CONFIG.exists():
        path = str(DEFAULT_CONFIG)
    return load(path)


async def _run(config: Config) -> None:
    server = await start(config)
    manage_gc(server, config)
    log = logging.getLogger("croupier")
    if config.auth.secret == DEV_SECRET:
        log.warning("using the development auth secret: set CROUPIER_AUTH_SECRET in production")
    print("Croupier is serving:", flush=True)
    for url in server.urls:
        print(f"  {url}", flush=True)
    print(f"  zones: {', '.join(server.hub.zones)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("shutting down", flush=True)
    await server.stop()


def _run_loop(config: Config, log_level: str = "INFO", log_format: str = "text") -> None:
    cl = config.cluster
    if cl.workers == 1 and not cl.nodes:
        main = _run(config)  # one process: no supervisor, no hand-off
    else:
        from .supervisor import run as run_cluster

        main = run_cluster(config, log_level, log_format)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without it
        asyncio.run(main)
        return
    uvloop.run(main)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="croupier", description="Croupier game server")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the server")
    run.add_argument("--config", help="TOML config file (default: config/croupier.toml)")
    run.add_argument("--log-level", default="INFO")
    run.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: cluster.workers, 1 = a single process; 0 = one per CPU)",
    )
    run.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=os.environ.get("CROUPIER_LOG_FORMAT", "text"),
        help="json: one JSON object per line (env CROUPIER_LOG_FORMAT)",
    )
    tok = sub.add_parser("token", help="mint a login token (development)")
    tok.add_argument("--config")
    tok.add_argument("--user", type=int, required=True)
    tok.add_argument("--zone", required=True)
    tok.add_argument("--name", default="")
    tok.add_argument("--role", default="user", choices=["guest", "user", "moderator", "admin"])
    tok.add_argument("--ttl", type=int, default=None, help="seconds (default: auth.token_ttl)")
    args = parser.parse_args(argv)
    try:
        config = _load(args.config)
    except (OSError, ValueError) as exc:
        print(f"croupier: {exc}", file=sys.stderr)
        return 2
    if args.command == "token":
        ttl = args.ttl if args.ttl is not None else config.auth.token_ttl
        print(
            auth.mint(
                config.auth.secret,
                args.user,
                args.zone,
                name=args.name,
                role=args.role,
                expires=int(time.time()) + ttl,
            )
        )
        return 0
    if args.workers is not None:
        if args.workers < 0:
            print("croupier: --workers must be 0 (one per CPU) or more", file=sys.stderr)
            return 2
        config = msgspec.structs.replace(
            config, cluster=msgspec.structs.replace(config.cluster, workers=args.workers)
        )
    logs.configure(args.log_level, args.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        _run_loop(config, args.log_level, args.log_format)
    return 0
