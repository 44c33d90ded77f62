"""The TypeScript client's request types are generated from the message Structs: the
committed clients/ts/src/messages.ts must be what the generator prints (`make ts-types`)."""

from __future__ import annotations

from pathlib import Path

from protocol.messages import CLIENT_TYPES
from protocol.typescript import render

GENERATED = Path(__file__).resolve().parents[3] / "clients" / "ts" / "src" / "messages.ts"


def test_the_committed_types_are_up_to_date():
    assert GENERATED.read_text() == render(), "run `make ts-types` and commit clients/ts/src/messages.ts"


def test_every_request_is_declared_with_its_tag():
    text = render()
    for tag, cls in CLIENT_TYPES.items():
        assert f'  {tag}: Omit<{cls.__name__}, "type" | "id">;' in text
        assert f'  type: "{tag}";' in text
