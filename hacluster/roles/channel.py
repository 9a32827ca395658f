"""Request/answer over a socketpair between the supervisor and a role, in plain data.

Each request is `("req", id, method, args)` and gets `("ans", id, ok, value)`, or, for
a `bytes` answer, `("blob", id, size)` followed by the bytes themselves (a status
document of megabytes is relayed as it is, never decoded on the way); the
answering side may also send `("evt", kind, args)` at any time (a state change), or
`("evtblob", kind, size)` and bytes (a status document as soon as it is built); the
messages are `healthchecks.wire` frames, so neither side ever builds anything but
plain values and the config's own types from what the other sends. `Channel` is the
asking side; `serve()` the answering side, which calls a handler per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from hacluster.roles.codec import CODEC
from hacluster.sockbuf import MAX_SEND_BUFFER, grow_send_buffer
from healthchecks.wire import MAX_FRAME, WireError

log = logging.getLogger("hacluster.roles")


class RoleGone(ConnectionError):
    """The role's end of the channel closed (it exited, or was killed)."""


class RoleError(RuntimeError):
    """The role answered a request with an error (the message names it)."""


class Channel:
    """The asking side: `await call(method, *args)`; one reader task matches answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_event: Callable[[str, tuple[Any, ...]], None] | None = None) -> None:
        self._reader = reader
        self._on_event = on_event
        self._writer = writer
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._task = asyncio.get_running_loop().create_task(self._listen(), name="role-channel")
        self.closed = asyncio.Event()

    async def call(self, method: str, *args: Any, timeout: float | None = 10.0) -> Any:
        if self.closed.is_set():
            raise RoleGone(method)
        number = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[number] = fut
        try:
            self._writer.write(CODEC.frame(("req", number, method, args)))
            async with asyncio.timeout(timeout):
                return await fut
        finally:
            self._waiting.pop(number, None)

    async def _listen(self) -> None:
        try:
            while True:
                message = await CODEC.read(self._reader)
                match message:
                    case ("ans", int() as number, bool() as ok, value):
                        fut = self._waiting.get(number)
                        if fut is not None and not fut.done():
                            if ok:
                                fut.set_result(value)
                            else:
                                fut.set_exception(RoleError(str(value)))
                    case ("blob", int() as number, int() as size) if 0 <= size <= MAX_FRAME:
                        data = await self._reader.readexactly(size)
                        fut = self._waiting.get(number)
                        if fut is not None and not fut.done():
                            fut.set_result(data)
                    case ("evtblob", str() as kind, int() as size) if 0 <= size <= MAX_FRAME:
                        data = await self._reader.readexactly(size)
                        if self._on_event is not None:
                            try:
                                self._on_event(kind, (data,))
                            except Exception:
                                log.exception("handling a role's %s event failed", kind)
                    case ("evt", str() as kind, tuple() as args):
                        if self._on_event is not None:
                            try:
                                self._on_event(kind, args)
                            except Exception:
                                log.exception("handling a role's %s event failed", kind)
                    case _:
                        log.warning("a role sent an unexpected message; ignored")
        except (asyncio.IncompleteReadError, ConnectionError, WireError) as exc:
            if isinstance(exc, WireError):
                log.error("a role sent a bad message (%s): closing its channel", exc)
        finally:
            self.closed.set()
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(RoleGone("the role's channel closed"))

    async def close(self) -> None:
        self._writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


Handler = Callable[[str, tuple[Any, ...]], Awaitable[Any]]


def _room_for(writer: asyncio.StreamWriter, size: int) -> None:
    """Let the kernel take a large answer whole: with the default send buffer (~200 KB)
    megabytes leave a slice per turn of the answering side's loop, and a busy loop
    (checks' results, reconcile) makes the asking side wait for all of them. Root may
    exceed net.core.wmem_max."""
    sock = writer.get_extra_info("socket")
    if sock is None or size <= 256 * 1024:
        return
    want = min(2 * size + 64 * 1024, MAX_SEND_BUFFER)  # the kernel counts overhead too
    with contextlib.suppress(OSError):
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) >= want:
            return
    grow_send_buffer(sock, want)


def send_event(writer: asyncio.StreamWriter, kind: str, *args: Any) -> None:
    """Tell the asking side something unasked (the answering side's use)."""
    writer.write(CODEC.frame(("evt", kind, args)))


def send_blob(writer: asyncio.StreamWriter, kind: str, data: bytes) -> None:
    """Tell the asking side something unasked that is bytes, sent raw (not decoded)."""
    _room_for(writer, len(data))
    writer.write(CODEC.frame(("evtblob", kind, len(data))))
    writer.write(data)


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                handler: Handler) -> None:
    """Answer requests until the other end closes; a failing request answers its error."""

    async def answer(number: int, method: str, args: tuple[Any, ...]) -> None:
        reply: tuple[Any, ...]
        try:
            value = await handler(method, args)
        except Exception as exc:
            reply = ("ans", number, False, f"{type(exc).__name__}: {exc}")
        else:
            if isinstance(value, bytes | bytearray) and len(value) <= MAX_FRAME:
                _room_for(writer, len(value))
                writer.write(CODEC.frame(("blob", number, len(value))))
                writer.write(value)
                return
            reply = ("ans", number, True, value)
        try:
            writer.write(CODEC.frame(reply))
        except Exception as exc:  # a value that is not plain data: a bug, said as such
            writer.write(CODEC.frame(("ans", number, False, f"cannot send the answer: {exc}")))

    tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            try:
                message = await CODEC.read(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            except WireError as exc:
                log.error("the supervisor sent a bad message (%s); ignored", exc)
                continue
            match message:
                case ("req", int() as number, str() as method, tuple() as args):
                    task = asyncio.get_running_loop().create_task(answer(number, method, args))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                case _:
                    log.warning("unexpected message from the supervisor; ignored")
    finally:
        for task in list(tasks):
            task.cancel()
