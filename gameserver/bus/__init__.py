"""The bus between workers (Unix sockets) and nodes (Redis): docs/cluster.md."""

from __future__ import annotations

from .base import Bus, BusBusy, BusError, BusStats, BusTimeout, BusUnreachable, Handler, RemoteError
from .hybrid import HybridBus
from .local import UnixBus, socket_path
from .redis import RedisBus


def open_bus(me: str, url: str, prefix: str = "croupier:bus:") -> Bus:
    """A bus for member `me`: ``unix:///a/directory`` or ``redis://host:port/db``
    (`prefix` names the cluster's channels on a shared Redis)."""
    if url.startswith("unix://"):
        return UnixBus(me, url.removeprefix("unix://"))
    if url.startswith(("redis://", "rediss://", "unix+redis://")):
        return RedisBus(me, url.replace("unix+redis://", "unix://", 1), prefix=prefix)
    raise ValueError(f"unknown bus URL {url!r} (unix:///dir or redis://host:port)")


__all__ = [
    "Bus",
    "BusBusy",
    "BusError",
    "BusStats",
    "BusTimeout",
    "BusUnreachable",
    "Handler",
    "HybridBus",
    "RedisBus",
    "RemoteError",
    "UnixBus",
    "open_bus",
    "socket_path",
]
