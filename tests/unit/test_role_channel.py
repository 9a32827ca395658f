"""roles.channel over a real socketpair: answers, errors, events, and bytes sent raw."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from hacluster.roles.channel import Channel, RoleError, RoleGone, send_blob, send_event, serve


async def _pair(handler: Any) -> tuple[Channel, list[tuple[str, tuple[Any, ...]]],
                                       asyncio.StreamWriter, asyncio.Task[None]]:
    ours, theirs = socket.socketpair()
    events: list[tuple[str, tuple[Any, ...]]] = []
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    channel = Channel(reader, writer, lambda kind, args: events.append((kind, args)))
    their_reader, their_writer = await asyncio.open_unix_connection(sock=theirs)
    server = asyncio.get_running_loop().create_task(
        serve(their_reader, their_writer, handler))
    return channel, events, their_writer, server


async def test_answers_errors_bytes_and_events() -> None:
    big = bytes(range(256)) * 40_000  # 10 MB: more than any socket buffer

    async def handler(method: str, args: tuple[Any, ...]) -> Any:
        match method:
            case "echo":
                return {"args": list(args)}
            case "blob":
                return big
            case "fail":
                raise ValueError("no such thing")
        raise AssertionError(method)

    channel, events, their_writer, server = await _pair(handler)
    assert await channel.call("echo", 1, "two") == {"args": [1, "two"]}
    # Bytes come back as they were sent (raw after a header, not encoded in JSON), and
    # requests after them still line up.
    got, echoed = await asyncio.gather(channel.call("blob"), channel.call("echo", 3))
    assert got == big and echoed == {"args": [3]}
    with pytest.raises(RoleError, match="ValueError: no such thing"):
        await channel.call("fail")
    send_event(their_writer, "state", "VI_1", "MASTER")
    send_blob(their_writer, "status", b'{"a": 1}\n"x": []')
    send_event(their_writer, "health", "vs", "rs", None)
    await asyncio.sleep(0.05)
    assert events == [("state", ("VI_1", "MASTER")), ("status", (b'{"a": 1}\n"x": []',)),
                      ("health", ("vs", "rs", None))]
    their_writer.close()
    await asyncio.wait_for(channel.closed.wait(), 2)
    with pytest.raises(RoleGone):
        await channel.call("echo")
    server.cancel()
    await channel.close()
