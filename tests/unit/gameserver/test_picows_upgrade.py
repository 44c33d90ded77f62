"""The prepared 101 response writes exactly the bytes picows' own response writes."""

from __future__ import annotations

import picows
import pytest

from gameserver.transports.picows_ws import _Prepared101
from protocol.codec import CODECS_BY_SUBPROTOCOL

ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("subprotocol", [None, *CODECS_BY_SUBPROTOCOL])
def test_prepared_response_bytes_equal_picows_response(subprotocol: str | None) -> None:
    extra = None if subprotocol is None else {"Sec-WebSocket-Protocol": subprotocol}
    theirs = picows.WSUpgradeResponse.create_101_response(extra_headers=extra)
    ours = _Prepared101(subprotocol)
    for r in (theirs, ours):  # what picows does with the response before writing it
        r.headers["Sec-WebSocket-Accept"] = ACCEPT
    assert bytes(ours.to_bytes()) == bytes(theirs.to_bytes())
    assert ours.status == 101 and ours.status == theirs.status
    assert picows.WSUpgradeResponseWithListener(ours, object()).response is ours


def test_an_unusual_header_set_falls_back_to_picows_rendering() -> None:
    ours = _Prepared101("croupier.v1.json")
    ours.headers["Sec-WebSocket-Accept"] = ACCEPT
    ours.headers["X-Extra"] = "1"
    out = bytes(ours.to_bytes())
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n") and b"X-Extra: 1\r\n" in out
    assert out.endswith(b"\r\n\r\n")
