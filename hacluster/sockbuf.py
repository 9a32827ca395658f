"""A socket's send buffer grown to take a large answer whole (SO_SNDBUFFORCE, else SO_SNDBUF)."""

from __future__ import annotations

import socket
from typing import Any

SO_SNDBUFFORCE = 32  # linux/asm-generic/socket.h (not in the socket module)
MAX_SEND_BUFFER = 16 << 20


def grow_send_buffer(sock: Any, want: int) -> None:
    """Ask for `want` bytes of send buffer (at most `MAX_SEND_BUFFER`): root may exceed
    net.core.wmem_max (SO_SNDBUFFORCE), others get what SO_SNDBUF allows; a refusal
    leaves the buffer as it was. `sock`: a socket or an asyncio transport's."""
    want = min(want, MAX_SEND_BUFFER)
    for option in (SO_SNDBUFFORCE, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, want)
            return
        except OSError:
            continue
