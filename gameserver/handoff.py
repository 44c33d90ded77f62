"""Messages and sockets between the supervisor and a worker: one Unix socket pair each.

The pair is `SOCK_SEQPACKET`, so every `send` is one message on the other side (no
framing of our own). A message is a MessagePack map with a `t` (type) field; a message
may carry sockets as file descriptors (SCM_RIGHTS, `socket.send_fds`): the acceptor
hands an accepted client socket plus the bytes it already read to the worker that owns
the client. Sends never block: when the peer's queue is full the message waits in a
bounded outbox and goes out when the socket is writable again.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import logging
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

logger = logging.getLogger("croupier.handoff")

#: Largest message (the biggest is a worker's metrics snapshot).
MAX_MESSAGE = 1024 * 1024
#: Most sockets in one message.
MAX_FDS = 4
_ANCILLARY = socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize)
#: Messages one read callback takes before yielding to the loop.
_READ_BATCH = 128

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(dict[str, Any]).decode

OnMessage = Callable[[dict[str, Any], list[socket.socket]], None]


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of message sockets (supervisor end, worker end)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for s in (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_MESSAGE + 64 * 1024)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MAX_MESSAGE + 64 * 1024)
    return a, b


def close_quietly(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


class Channel:
    """One end of a supervisor-worker pair, on the running event loop."""

    def __init__(
        self,
        sock: socket.socket,
        on_message: OnMessage,
        on_close: Callable[[], None],
        max_queue: int = 2048,  # queued sockets are descriptors held here (limit 20,000)
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.on_message = on_message
        self.on_close = on_close
        self.max_queue = max_queue
        self.closed = False
        self._outbox: deque[tuple[bytes, list[socket.socket]]] = deque()
        self._retry_scheduled = False
        self._view = memoryview(bytearray(MAX_MESSAGE))  # one receive buffer, reused
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    # -- sending -----------------------------------------------------------------------

    def send(self, msg: dict[str, Any], socks: list[socket.socket] | None = None) -> bool:
        """Queue `msg` (with `socks`, closed here once sent). False: closed or queue full,
        and the caller still owns `socks`."""
        if self.closed or len(self._outbox) >= self.max_queue:
            return False
        data = _encode(msg)
        if len(data) > MAX_MESSAGE:
            raise ValueError(f"message of {len(data)} bytes is above {MAX_MESSAGE}")
        was_empty = not self._outbox
        self._outbox.append((data, socks or []))
        if was_empty:
            self._write()
        return True

    @property
    def queued(self) -> int:
        return len(self._outbox)

    def _write(self) -> None:
        sock, outbox = self.sock, self._outbox
        while outbox:
            data, socks = outbox[0]
            try:
                if socks:
                    socket.send_fds(sock, [data], [s.fileno() for s in socks])
                else:
                    sock.send(data)
            except BlockingIOError:
                self._loop.add_writer(sock.fileno(), self._writable)
                return
            except OSError as exc:
                if exc.errno in (errno.ETOOMANYREFS, errno.ENOBUFS):
                    # too many descriptors in flight (the peer is not reading): try again soon
                    if not self._retry_scheduled:
                        self._retry_scheduled = True
                        self._loop.call_later(0.01, self._retry)
                    return
                logger.debug("channel send failed: %s", exc)
                self.close()
                return
            outbox.popleft()
            for s in socks:  # the peer has its own descriptor now
                close_quietly(s)

    def _retry(self) -> None:
        self._retry_scheduled = False
        if not self.closed:
            self._write()

    def _writable(self) -> None:
        self._loop.remove_writer(self.sock.fileno())
        if not self.closed:
            self._write()

    # -- receiving ---------------------------------------------------------------------

    def poll(self) -> None:
        """Take the messages waiting now (e.g. a lease renewal behind a busy loop's work)."""
        self._readable()

    def _readable(self) -> None:
        for _ in range(_READ_BATCH):
            if self.closed:
                return
            try:
                nbytes, ancdata, flags, _ = self.sock.recvmsg_into([self._view], _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.debug("channel receive failed: %s", exc)
                self.close()
                return
            fds = array.array("i")
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(cdata[: len(cdata) - len(cdata) % fds.itemsize])
            socks = [socket.socket(fileno=fd) for fd in fds]
            data = bytes(self._view[:nbytes])
            if not data and not socks:  # the peer closed its end
                self.close()
                return
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                logger.error("dropped a truncated channel message (flags %#x)", flags)
                for s in socks:
                    close_quietly(s)
                continue
            try:
                msg = _decode(data)
            except msgspec.DecodeError:
                logger.error("dropped an undecodable channel message")
                for s in socks:
                    close_quietly(s)
                continue
            try:
                self.on_message(msg, socks)
            except Exception:
                logger.exception("channel message %r failed", msg.get("t"))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        fd = self.sock.fileno()
        if fd >= 0:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)
        close_quietly(self.sock)
        for _, socks in self._outbox:
            for s in socks:
                close_quietly(s)
        self._outbox.clear()
        self.on_close()


def recv_blocking(sock: socket.socket, timeout: float) -> dict[str, Any]:
    """One message, before the event loop runs (the worker's `hello`)."""
    sock.settimeout(timeout)
    data = sock.recv(MAX_MESSAGE)
    if not data:
        raise ConnectionError("the supervisor closed the channel")
    return _decode(data)
