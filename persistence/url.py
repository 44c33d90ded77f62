"""Store URLs.

======================================================  ==========================
``memory://``                                           dicts, nothing persisted
``sqlite:///./var/croupier.db``                         file relative to the cwd
``sqlite:////srv/croupier/croupier.db``                 absolute path
``mysql://user:password@127.0.0.1:3306/croupier``       MySQL / MariaDB
``redis://127.0.0.1:6379/0?prefix=croupier:``           cache only
======================================================  ==========================

Options go in the query string, e.g. ``mysql://root@db/croupier?pool_size=16&timeout=3``
(see ``docs/persistence.md`` for the list).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["StoreURL", "parse_url"]

N = TypeVar("N", int, float)

_SCHEMES = {"memory", "sqlite", "mysql", "mariadb", "redis", "rediss"}


@dataclass(frozen=True, slots=True)
class StoreURL:
    scheme: str
    host: str = ""
    port: int | None = None
    user: str = ""
    password: str = field(default="", repr=False)
    database: str = ""
    path: str = ""
    options: dict[str, str] = field(default_factory=dict)

    def option(self, name: str, default: float) -> float:
        return self._number(name, default, float, "a number")

    def int_option(self, name: str, default: int) -> int:
        return self._number(name, default, int, "a whole number")

    def _number(self, name: str, default: N, kind: Callable[[str], N], what: str) -> N:
        """The option's value; ValueError naming the option when it is not `what`."""
        if name not in self.options:
            return default
        try:
            return kind(self.options[name])
        except ValueError:
            raise ValueError(f"store URL option {name}={self.options[name]!r} is not {what}") from None


def parse_url(url: str) -> StoreURL:
    """Split a store URL. Raises ValueError for an unknown scheme or a missing database name."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"unknown store URL scheme {parts.scheme!r} in {url!r}")
    options = dict(parse_qsl(parts.query))
    if scheme == "memory":
        return StoreURL("memory", options=options)
    if scheme == "sqlite":
        raw = url.split("://", 1)[1].split("?", 1)[0]
        path = raw[1:] if raw.startswith("/") else raw
        if not path:
            raise ValueError(f"sqlite URL needs a path: {url!r}")
        return StoreURL("sqlite", path=unquote(path), options=options)
    database = unquote(parts.path.lstrip("/"))
    if scheme in ("mysql", "mariadb") and not database:
        raise ValueError(f"mysql URL needs a database name: {url!r}")
    return StoreURL(
        "mysql" if scheme == "mariadb" else scheme,
        host=parts.hostname or "127.0.0.1",
        port=parts.port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=database,
        options=options,
    )
