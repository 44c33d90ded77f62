"""User roles (SmartFox privilege ids: 0 guest, 1 standard, 2 moderator, 3 admin)."""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    GUEST = 0
    USER = 1
    MODERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        """`"moderator"` -> Role.MODERATOR; raises ValueError for an unknown name."""
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unknown role {name!r}") from None
