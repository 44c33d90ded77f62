"""Start and stop a `croupier run` server process for benchmarks (loopback only)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH_CONFIG = ROOT / "bench" / "configs" / "bench.toml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """One server process; `cpu_seconds()` reads its user+system CPU time."""

    def __init__(self, transport: str, config: Path = BENCH_CONFIG, **env: str) -> None:
        self.port = free_port()
        full_env = dict(os.environ)
        full_env.update(
            CROUPIER_SERVER_TRANSPORT=transport,
            CROUPIER_SERVER_WS_PORT=str(self.port),
            CROUPIER_SERVER_TCP_PORT="-1",
            **env,
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gameserver", "run", "--config", str(config), "--log-level", "WARNING"],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 15
        for line in self.proc.stdout:
            if "ws://" in line:
                break
            if time.monotonic() > deadline:
                break
        self.ps = psutil.Process(self.proc.pid)

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
