"""The live progress line: a bar while ramping, then the run's vital signs.

On a terminal it redraws one line; elsewhere (CI logs) it prints a line every few seconds.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def _fmt(n: float) -> str:
    return f"{n:,.0f}"


class Progress:
    def __init__(
        self, target: int, enabled: bool = True, stream: TextIO | None = None, every: float = 5.0
    ) -> None:
        self.target = max(1, target)
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.every = every
        self._last = 0.0
        self._width = 0

    def update(self, row: dict[str, Any], label: str = "ping") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not self.tty and now - self._last < self.every:
            return
        self._last = now
        sessions = int(row.get("sessions", 0))
        frac = min(1.0, sessions / self.target)
        bar = "#" * int(frac * 24)
        lat = row.get("latency", {}).get(label)
        lat_s = f"{label} p99 {lat['p99_ms']:.1f} ms" if lat else f"{label} p99 -"
        srv = row.get("server_rss", 0.0)
        line = (
            f"[{row.get('phase', ''):>7}] [{bar:<24}] {_fmt(sessions)}/{_fmt(self.target)} sessions"
            f" | {_fmt(row.get('out_per_s', 0))} out/s {_fmt(row.get('in_per_s', 0))} in/s | {lat_s}"
            f" | err {int(row.get('errors', 0))} | srv {srv / 2**20:,.0f} MiB {row.get('server_cpu', 0):.0f}%"
            f" | gen {row.get('worker_cpu', 0):.0f}% | {row.get('t', 0):.0f}s"
        )
        if self.tty:
            pad = max(0, self._width - len(line))
            self._width = len(line)
            self.stream.write("\r" + line + " " * pad)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        if not self.enabled:
            return
        if self.tty and self._width:
            self.stream.write("\n")
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
