"""systemd's notify protocol (READY, STATUS, RELOADING, STOPPING, WATCHDOG) over $NOTIFY_SOCKET.

Without NOTIFY_SOCKET (not started by systemd with Type=notify) every call is a no-op.
A failed send is logged and never raised: the daemon must not stop because systemd
went away. See sd_notify(3) and systemd.service(5) for the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, MutableMapping

log = logging.getLogger("hacluster.sdnotify")

_ENV_KEYS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class SdNotifyError(ValueError):
    """$NOTIFY_SOCKET or $WATCHDOG_USEC holds something this module cannot use."""


def socket_address(value: str) -> str | bytes:
    """The address to send to: a path, or an abstract name (`@name` -> b"\\0name")."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    raise SdNotifyError(
        f"NOTIFY_SOCKET={value!r} is neither an absolute path nor an abstract name (@...)"
    )


def watchdog_interval(env: Mapping[str, str], pid: int | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of $WATCHDOG_USEC), or None when not asked for.

    When $WATCHDOG_PID is set and is not this process, the watchdog is someone else's.
    """
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    wpid = env.get("WATCHDOG_PID")
    if wpid and wpid.strip() != str(os.getpid() if pid is None else pid):
        return None
    try:
        value = int(usec)
    except ValueError:
        raise SdNotifyError(f"WATCHDOG_USEC={usec!r} is not a whole number") from None
    if value <= 0:
        raise SdNotifyError(f"WATCHDOG_USEC={usec!r} must be positive")
    return value / 2_000_000


class Notifier:
    """Sends state changes to systemd; does nothing when no notify socket was given."""

    def __init__(self, address: str | bytes | None, watchdog: float | None = None) -> None:
        self.address = address
        self.watchdog_interval = watchdog if address is not None else None
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_env(
        cls, env: MutableMapping[str, str] | None = None, *, unset: bool = True
    ) -> Notifier:
        """The notifier systemd asked for; `unset` removes the variables so children don't
        inherit them (scripts the daemon runs must not talk to systemd in its name).
        A bad value is logged and gives a no-op notifier."""
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET") or None
        address: str | bytes | None = None
        interval: float | None = None
        try:
            if raw is not None:
                address = socket_address(raw)
                interval = watchdog_interval(env)
        except SdNotifyError as exc:
            log.warning("systemd notification disabled: %s", exc)
            address, interval = None, None
        if unset:
            for key in _ENV_KEYS:
                env.pop(key, None)
        return cls(address, interval)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str | int) -> bool:
        """Send `KEY=value` lines (keys upper-cased); True when systemd got the datagram."""
        if self.address is None:
            return False
        lines = []
        for key, value in fields.items():
            text = " ".join(str(value).splitlines())  # one field per line
            lines.append(f"{key.upper()}={text}")
        payload = "\n".join(lines).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(payload, self.address)
        except OSError as exc:
            log.warning("systemd notification %s failed: %s", " ".join(lines), exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Startup finished (also sent after a reload is done)."""
        if status is None:
            return self.send(ready=1)
        return self.send(ready=1, status=status)

    def status(self, text: str) -> bool:
        """A one-line status that `systemctl status` shows."""
        return self.send(status=text)

    def reloading(self) -> bool:
        """A reload started; send `ready()` when it is done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send(reloading=1, monotonic_usec=usec)

    def stopping(self) -> bool:
        return self.send(stopping=1)

    def watchdog(self) -> bool:
        """One keep-alive ping."""
        return self.send(watchdog=1)

    def start_watchdog(self, alive: Callable[[], bool] | None = None) -> None:
        """Ping every half of $WATCHDOG_USEC from the running event loop until `close()`,
        skipping the pings while `alive()` (when given) says no.

        Pinging from the loop itself is the point: a loop stuck for the whole watchdog
        period stops the pings and systemd restarts the daemon.
        """
        if self.watchdog_interval is None or self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(
            self._watchdog_loop(self.watchdog_interval, alive), name="sd-watchdog"
        )

    async def _watchdog_loop(self, interval: float, alive: Callable[[], bool] | None) -> None:
        while True:
            if alive is None or alive():
                self.watchdog()
            await asyncio.sleep(interval)

    async def close(self) -> None:
        """Stop the watchdog pings and close the socket."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sock is not None:
            self._sock.close()
            self._sock = None
