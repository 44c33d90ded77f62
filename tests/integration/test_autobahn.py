"""WebSocket conformance: the Autobahn test cases (kosoku) against the real endpoint.

The echo endpoint (`server.echo_path`) uses the same transport code as the game
endpoint: frame assembly, UTF-8 checks, close handshake. Quick subset: 9.*, 12.* and
13.* are left out (performance and compression cases). Deliberate deviations, each
documented in docs/protocol.md ("WebSocket conformance"):

- websockets: 7.1.5 (a close frame in the middle of a fragmented message is answered
  with 1002, as upstream websockets documents).
- picows: 7.1.2 (a second close frame arriving in the same read as the first is
  answered by picows' parser with 1002 before our handler sees the first).
"""

from __future__ import annotations

import asyncio

import kosoku
import pytest

from .conftest import running_server, server_config

DEVIATIONS = {"picows": {"7.1.2"}, "websockets": {"7.1.5"}}
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}


@pytest.mark.parametrize("transport", ["picows", "websockets"])
def test_autobahn_quick_subset(transport: str):
    with running_server(server_config(transport, max_message_bytes=16 * 1024 * 1024)) as srv:

        async def run():
            try:
                return await kosoku.run_fuzzingclient(
                    srv.echo_url, exclude_cases=["9.*", "12.*", "13.*"], concurrency=2
                )
            except kosoku.FailureError as exc:
                return exc.results

        results = asyncio.run(run())
    assert len(results) > 200
    failed = {r.case_id for r in results if str(r.behavior).split(".")[-1].replace("_", "-") not in PASSING}
    # A deviation may pass when timing splits the frames into two reads; nothing else may fail.
    assert failed <= DEVIATIONS[transport], sorted(failed)
