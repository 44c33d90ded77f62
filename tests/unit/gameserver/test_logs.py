"""JSON log lines carry the request context."""

from __future__ import annotations

import json
import logging

from gameserver.logs import JsonFormatter


def test_json_lines_have_context_and_traceback():
    logger = logging.getLogger("croupier.test")
    record = None
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logger.makeRecord(
            "croupier.test",
            logging.ERROR,
            __file__,
            1,
            "request %s failed",
            ("JoinRoom",),
            sys.exc_info(),
            extra={"request_id": 7, "user": 42, "zone": "demo", "conn": "127.0.0.1:5"},
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "request JoinRoom failed"
    assert (line["level"], line["request_id"], line["user"], line["zone"]) == ("error", 7, 42, "demo")
    assert "ValueError: boom" in line["exc"]
    assert line["ts"].endswith("Z")
