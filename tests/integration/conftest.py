"""Real servers on 127.0.0.1 (port 0), run on uvloop, for socket-level tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvloop

from gameserver.config import AuthSection, Config, LimitsSection, ServerSection
from gameserver.server import Server, start
from protocol.limits import FloodLimits
from rooms.config import RoomConfig, ZoneConfig

SECRET = "integration-secret"


def server_config(transport: str = "picows", flood: FloodLimits | None = None, **limits: Any) -> Config:
    return Config(
        server=ServerSection(
            host="127.0.0.1",
            ws_port=0,
            tcp_port=0,
            transport=transport,
            echo_path="/echo",
            sweep_interval=0.1,
            admin_port=0,
        ),
        limits=LimitsSection(**limits),
        auth=AuthSection(secret=SECRET),
        zones=[
            ZoneConfig(
                name="demo",
                guests=True,
                room_creation="everyone",
                rooms=[RoomConfig("Lobby", max_users=1000)],
                flood=flood or FloodLimits(),
            ),
            ZoneConfig(name="other", guests=True, rooms=[RoomConfig("Lobby")]),
        ],
    )


@dataclass
class Running:
    server: Server
    loop: asyncio.AbstractEventLoop

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.server.ws_port}/ws"

    @property
    def echo_url(self) -> str:
        return f"ws://127.0.0.1:{self.server.ws_port}/echo"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.server.admin_port}"

    @property
    def tcp_port(self) -> int:
        assert self.server.tcp_port is not None
        return self.server.tcp_port


@contextlib.contextmanager
def running_server(config: Config) -> Iterator[Running]:
    """A server on its own uvloop thread, so test clients can run on their own loop."""
    loop = uvloop.new_event_loop()
    started: dict[str, Any] = {}
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            try:
                started["server"] = await start(config)
            except BaseException as exc:  # surfaced to the test thread below
                started["error"] = exc
            ready.set()

        loop.run_until_complete(boot())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    if "error" in started:
        raise started["error"]
    server: Server = started["server"]
    try:
        yield Running(server, loop)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(drain_seconds=0.5), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(params=["picows", "websockets"])
def server(request: pytest.FixtureRequest) -> Iterator[Running]:
    with running_server(server_config(request.param)) as r:
        yield r
