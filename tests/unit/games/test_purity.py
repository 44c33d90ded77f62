"""The games package stays pure: no I/O, event loop, drivers, wall clock or hidden randomness."""

from __future__ import annotations

import ast
from pathlib import Path

GAMES_DIR = Path(__file__).resolve().parents[3] / "games"
FORBIDDEN_MODULES = {
    "asyncio",
    "socket",
    "selectors",
    "ssl",
    "sqlite3",
    "aiosqlite",
    "aiomysql",
    "pymysql",
    "redis",
    "uvloop",
    "websockets",
    "picows",
    "starlette",
    "time",
    "random",
    "threading",
    "subprocess",
}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time_ns", "monotonic", "urandom"}
# The production RNG is the one place allowed to read OS entropy.
ENTROPY_ALLOWED = {"rng.py"}


def _modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_io_or_clock_imports() -> None:
    """No module under games/ imports an I/O, concurrency, clock or random module."""
    offenders = {
        path.relative_to(GAMES_DIR).as_posix(): sorted(
            _modules(ast.parse(path.read_text())) & FORBIDDEN_MODULES
        )
        for path in GAMES_DIR.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_wall_clock_or_entropy_calls() -> None:
    """Time is always passed in (``now``); only the RNG module reads OS entropy."""
    offenders = []
    for path in GAMES_DIR.rglob("*.py"):
        rel = path.relative_to(GAMES_DIR).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_CALLS:
                if node.attr == "urandom" and rel in ENTROPY_ALLOWED:
                    continue
                offenders.append(f"{rel}:{node.lineno} {node.attr}")
    assert offenders == []


def test_only_msgspec_and_stdlib_are_imported() -> None:
    """Third-party imports in games/ are limited to msgspec."""
    import sys

    third_party = set()
    for path in GAMES_DIR.rglob("*.py"):
        for name in _modules(ast.parse(path.read_text())):
            if name not in sys.stdlib_module_names and name not in {"games", "msgspec", "__future__"}:
                third_party.add(name)
    assert third_party == set()
