"""A TCP proxy that injects network faults between a client and a real server.

Modelled on asyncpg's ``TCPFuzzingProxy`` and a few toxiproxy toxics. It runs on
its own thread with its own event loop, so it keeps working across the
``asyncio.run`` calls of the tests, and it is controlled with plain method calls::

    with FaultProxy("127.0.0.1", 3306) as proxy:
        url = f"mysql://root@127.0.0.1:{proxy.port}/db"
        proxy.cut()        # drop every connection and refuse new ones (server "down")
        proxy.hang()       # keep connections open but pass no bytes (server "hung")
        proxy.latency(50)  # add 50 ms to each forwarded chunk
        proxy.restore()    # back to normal

Nothing here is specific to a database; it forwards bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["FaultProxy"]

T = TypeVar("T")


class Mode(enum.Enum):
    PASS = "pass"
    CUT = "cut"
    HANG = "hang"


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.port = 0
        self.mode = Mode.PASS
        self.latency_s = 0.0
        self.accepted = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._flowing = asyncio.Event()

    # -- lifecycle (called from the test thread) --------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults -----------------------------------------------------------------------

    def cut(self) -> None:
        """Close every connection (reset) and close new ones at once: the server looks down."""
        self._call(self._set(Mode.CUT))

    def hang(self) -> None:
        """Keep connections and accept new ones, but forward nothing: the server looks hung."""
        self._call(self._set(Mode.HANG))

    def restore(self) -> None:
        """Forward normally again (connections cut earlier stay closed)."""
        self._call(self._set(Mode.PASS))

    def latency(self, ms: float) -> None:
        """Delay every forwarded chunk by ``ms`` milliseconds."""
        self.latency_s = ms / 1000.0

    def close_all_connections(self) -> None:
        """Drop the current connections but keep accepting new ones."""
        self._call(self._close_all())

    @property
    def connections(self) -> int:
        return len(self._conns)

    # -- internals (proxy thread) -----------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._handle, self.listen_host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._close_all()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _set(self, mode: Mode) -> None:
        self.mode = mode
        if mode is Mode.PASS:
            self._flowing.set()
        else:
            self._flowing.clear()
        if mode is Mode.CUT:
            await self._close_all()

    async def _close_all(self) -> None:
        for client, upstream in list(self._conns):
            _abort(client)
            if upstream is not None:
                _abort(upstream)
        self._conns.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode is Mode.CUT:
            _abort(writer)
            return
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (writer, None)
        self._conns.add(pair)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self._conns.discard(pair)
            _abort(writer)
            return
        self._conns.discard(pair)
        pair = (writer, up_writer)
        self._conns.add(pair)
        task = asyncio.current_task()
        assert task is not None
        back = asyncio.ensure_future(self._pump(up_reader, writer))
        self._tasks.add(back)
        try:
            await self._pump(reader, up_writer)
            await back
        finally:
            self._tasks.discard(back)
            self._conns.discard(pair)
            _abort(writer)
            _abort(up_writer)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError, RuntimeError):
            while True:
                data = await src.read(65536)
                if not data:
                    break
                await self._flowing.wait()
                if self.latency_s:
                    await asyncio.sleep(self.latency_s)
                if dst.is_closing():
                    break
                dst.write(data)
                await dst.drain()
        _abort(dst)


def _abort(w: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        w.transport.abort()
