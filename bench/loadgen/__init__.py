"""Load generator for Croupier's native WebSocket protocol (docs/bench.md).

Several generator processes (one loopback source address each, at most 18,000 sockets
each) run light raw-asyncio WebSocket clients on uvloop against one or more server
processes, following a scenario file (bench/scenarios/). The parent process ramps the
sessions up, runs the scenario's actions (reconnect storm, rolling restart), samples the
servers' RSS and CPU, and writes a JSON report, a markdown summary and a plot.

    python -m bench.loadgen --scenario bench/scenarios/idle.toml --connections 2000 --duration 30
"""

from .runner import Options, run
from .scenario import Scenario, load

__all__ = ["Options", "Scenario", "load", "run"]
