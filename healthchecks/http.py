"""HTTP_GET and SSL_GET: keepalived's request per url, status code, MD5 digest and regex.

Each check opens one connection per url (as keepalived does) and runs on callbacks
(``exchange.py``) with no task or coroutine of its own; ``launch_on`` is the runner's fast
path and ``check()`` the awaitable form. The request is keepalived's, byte for byte:
``GET path HTTP/1.x``, ``User-Agent: KeepAliveClient``, the ``Connection``
header ``http_protocol`` asks for, and ``Host`` (the virtualhost, else ip:port).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Callable

from healthchecks import tlssession
from healthchecks.base import Source, family_of
from healthchecks.exchange import Exchange, TlsExchange, compile_pattern
from healthchecks.params import HttpGetParams, UrlSpec
from healthchecks.reactor import reactor_for
from healthchecks.result import CheckResult

# http_protocol -> (minor version, Connection header), as keepalived's check_http.c and
# genhash define them: 1.0C and 1.1 ask the server to close; 1.0K asks it to keep the
# connection (a test setting there; here the check still closes it once it has read
# what it needs).
_PROTOCOLS: dict[str, tuple[int, bytes]] = {
    "1.0": (0, b""),
    "1.0C": (0, b"Connection: close\r\n"),
    "1.0K": (0, b"Connection: keep-alive\r\n"),
    "1.1": (1, b"Connection: close\r\n"),
}


class HttpSessions:
    """What many HTTP checks share: one TLS context per verification setting.

    A single unverified client context serves every SSL_GET that does not verify (as
    keepalived); checks that verify against the same CA file share one more.
    """

    def __init__(self) -> None:
        self._contexts: dict[str | None, ssl.SSLContext] = {}

    def context(self, verify: bool, ca_file: str | None) -> ssl.SSLContext:
        if not verify:
            return unverified_context()
        ctx = self._contexts.get(ca_file)
        if ctx is None:
            try:
                ctx = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"ca_file: {ca_file}: {exc}") from None
            self._contexts[ca_file] = ctx
        return ctx

    async def close(self) -> None:
        self._contexts.clear()


_UNVERIFIED: ssl.SSLContext | None = None


def unverified_context() -> ssl.SSLContext:
    """The process's one client context that checks no certificate (keepalived's default)."""
    global _UNVERIFIED
    if _UNVERIFIED is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        _UNVERIFIED = ctx
    return _UNVERIFIED


class Target:
    """One url of a check, ready to send: its request bytes and what its answer needs."""

    __slots__ = ("needs_body", "pattern", "request", "server_hostname", "spec")

    def __init__(self, params: HttpGetParams, spec: UrlSpec) -> None:
        self.spec = spec
        vhost = spec.virtualhost or params.virtualhost
        if vhost:
            host = vhost
        elif ":" in params.connect_ip:
            host = f"[{params.connect_ip}]:{params.connect_port}"
        else:
            host = f"{params.connect_ip}:{params.connect_port}"
        minor, connection = _PROTOCOLS[params.http_protocol]
        self.request = (
            f"GET {spec.path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n".encode()
            + connection + f"Host: {host}\r\n\r\n".encode()
        )
        self.pattern: re.Pattern[bytes] | None = compile_pattern(spec.regex)
        self.needs_body = spec.digest is not None or spec.regex is not None
        # SNI only when asked for (keepalived's enable_sni); a verifying check names the
        # server so its certificate can be matched (an IP address is not sent as SNI).
        if params.enable_sni and vhost:
            self.server_hostname: str | None = vhost
        elif params.verify:
            self.server_hostname = params.connect_ip
        else:
            self.server_hostname = None


class HttpCheck:
    """Fetches every ``url`` in turn, each over its own connection; up only when each passes.

    ``connect_timeout`` bounds each url's exchange (connect, TLS handshake, request and
    the response as far as it is read), as keepalived bounds each of its steps.
    """

    __slots__ = (
        "_exchange_cls", "address", "family", "io_timeout", "params", "source", "targets",
        "timeout_reason", "tls_context", "tls_session",
    )

    def __init__(self, params: HttpGetParams, sessions: HttpSessions | None = None) -> None:
        self.params = params
        self.family = family_of(params.connect_ip)
        self.address = (params.connect_ip, params.connect_port)
        source = params.source
        self.source: Source | None = source if source != Source() else None
        self.targets = tuple(Target(params, spec) for spec in params.urls)
        self.io_timeout = params.connect_timeout
        self.timeout_reason = f"timeout after {params.connect_timeout:g}s"
        self.tls_session: tlssession.Session | None = None
        if params.tls:
            shared = sessions if sessions is not None else HttpSessions()
            self.tls_context: ssl.SSLContext | None = shared.context(params.verify, params.ca_file)
            self._exchange_cls: type[Exchange] = TlsExchange
        else:
            self.tls_context = None
            self._exchange_cls = Exchange

    @property
    def kind(self) -> str:
        return self.params.kind

    @property
    def timeout(self) -> float:
        return self.params.connect_timeout * len(self.targets)

    def launch(self, on_done: Callable[[CheckResult], None]) -> Callable[[], None]:
        """Start a check on the running loop; ``on_done`` gets the result later (never now).

        Returns a function that abandons the check (``on_done`` is then not called).
        """
        return self.launch_on(asyncio.get_running_loop(), on_done)

    def launch_on(
        self, loop: asyncio.AbstractEventLoop, on_done: Callable[[CheckResult], None]
    ) -> Callable[[], None]:
        """``launch`` on a loop the caller names: it must be the running one."""
        exchange = self._exchange_cls(self, reactor_for(loop), on_done)
        exchange.start(loop.time())
        exchange.in_launch = False
        return exchange.cancel

    async def check(self) -> CheckResult:
        fut: asyncio.Future[CheckResult] = asyncio.get_running_loop().create_future()

        def done(result: CheckResult) -> None:
            if not fut.done():
                fut.set_result(result)

        abandon = self.launch(done)
        try:
            return await fut
        finally:
            abandon()  # a no-op once finished; on cancellation it closes the socket

    async def close(self) -> None:
        return None

    def __del__(self) -> None:
        tlssession.release(getattr(self, "tls_session", None))
