"""The pure packages stay pure: no asyncio, sockets or drivers in protocol/, rooms/, games/."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "asyncio",
    "socket",
    "uvloop",
    "websockets",
    "picows",
    "aiomysql",
    "redis",
    "aiosqlite",
    "sqlite3",
}
#: Which of our packages each layer may import (imports point down only).
ALLOWED = {
    "protocol": {"protocol"},
    "rooms": {"rooms", "protocol"},
    "games": {"games"},
    "persistence": {"persistence"},
}
OURS = {"protocol", "rooms", "games", "persistence", "gameserver", "bench"}


def imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["protocol", "rooms", "games"])
def test_pure_packages_do_no_io(package: str):
    for path in (ROOT / package).rglob("*.py"):
        bad = imports(path) & FORBIDDEN
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_down(package: str):
    for path in (ROOT / package).rglob("*.py"):
        ours = imports(path) & OURS
        assert ours <= ALLOWED[package], f"{path.relative_to(ROOT)} imports {sorted(ours - ALLOWED[package])}"
