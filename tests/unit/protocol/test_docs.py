"""docs/protocol.md lists every message and every code (the brief's promise, kept by a test)."""

from __future__ import annotations

import pathlib
import re

from protocol import messages as m
from protocol.codes import CloseCode, ErrorCode

DOC = (pathlib.Path(__file__).resolve().parents[3] / "docs" / "protocol.md").read_text()


def test_every_client_message_type_is_documented() -> None:
    missing = [tag for tag in m.CLIENT_TYPES if f"`{tag}`" not in DOC]
    assert missing == [], f"not in docs/protocol.md: {missing}"


def test_every_error_and_close_code_is_documented() -> None:
    rows = set(re.findall(r"^\|\s*(\d+)\s*\|\s*`(\w+)`", DOC, re.M))
    missing = [
        (int(c), c.name.lower())
        for c in (*ErrorCode, *CloseCode)
        if (str(int(c)), c.name.lower()) not in rows
    ]
    assert missing == [], f"codes without a row in docs/protocol.md: {missing}"


def test_every_event_the_server_pushes_is_documented() -> None:
    root = pathlib.Path(__file__).resolve().parents[3]
    names: set[str] = set()
    for package in ("gameserver", "rooms", "protocol"):
        for path in (root / package).rglob("*.py"):
            text = path.read_text()
            names |= set(re.findall(r'OutEvent\(\s*"([a-z_]+)"', text))
            names |= set(re.findall(r'_EVENT = "([a-z_]+)"', text))
    assert len(names) > 15  # the scan found the events
    missing = sorted(n for n in names if f"`{n}`" not in DOC)
    assert missing == [], f"events not in docs/protocol.md: {missing}"
