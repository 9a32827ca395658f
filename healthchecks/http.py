"""HTTP_GET and SSL_GET with aiohttp: status code, MD5 digest and regex of the body."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import ssl
from collections.abc import Callable

import aiohttp
from aiohappyeyeballs import AddrInfoType
from aiohttp import HttpVersion
from yarl import URL

from healthchecks.base import Source
from healthchecks.params import HttpGetParams, UrlSpec
from healthchecks.result import CheckResult, describe_error

_CHUNK = 64 * 1024
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None)
# One shared result per passing status (a handful of values at most): a frozen
# dataclass and its text would otherwise be built for every check.
_UP_BY_STATUS: dict[int, CheckResult] = {}


def _up(status: int) -> CheckResult:
    result = _UP_BY_STATUS.get(status)
    if result is None:
        result = _UP_BY_STATUS[status] = CheckResult.up(f"status {status}")
    return result


class HttpSessions:
    """aiohttp client sessions shared by many checks (one per source address).

    Connections are never reused (a health check must open its own, as keepalived's
    does), so sharing costs nothing in isolation and saves a session per check.
    """

    def __init__(self) -> None:
        self._sessions: dict[tuple[Source, HttpVersion], aiohttp.ClientSession] = {}

    def get(self, source: Source, version: HttpVersion) -> aiohttp.ClientSession:
        session = self._sessions.get((source, version))
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=0,
                force_close=True,
                use_dns_cache=False,
                socket_factory=None if source == Source() else _factory(source),
            )
            session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
                headers={"User-Agent": "hacluster-healthcheck"},
                version=version,
            )
            self._sessions[(source, version)] = session
        return session

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()


def _factory(source: Source) -> Callable[[AddrInfoType], socket.socket]:
    def make(addr_info: AddrInfoType) -> socket.socket:
        return source.open(socket.AddressFamily(addr_info[0]), socket.SOCK_STREAM)

    return make


def _tls_context(params: HttpGetParams) -> ssl.SSLContext | bool:
    if not params.tls:
        return True  # aiohttp's default; unused for http:// URLs
    if not params.verify:
        return False  # no verification, as keepalived
    try:
        return ssl.create_default_context(cafile=params.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"ca_file: {params.ca_file}: {exc}") from None


def _host_for_url(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


class HttpCheck:
    """Fetches every ``url`` in turn; up only when each passes."""

    __slots__ = (
        "_owned", "_sessions", "_source", "_ssl", "_timeout", "_urls", "_version", "params",
    )

    def __init__(self, params: HttpGetParams, sessions: HttpSessions | None = None) -> None:
        self.params = params
        self._owned = sessions is None
        self._sessions = sessions if sessions is not None else HttpSessions()
        self._ssl = _tls_context(params)
        self._source = params.source
        self._version = (
            aiohttp.HttpVersion11 if params.http_protocol == "1.1" else aiohttp.HttpVersion10
        )
        scheme = "https" if params.tls else "http"
        base = f"{scheme}://{_host_for_url(params.connect_ip)}:{params.connect_port}"
        self._urls = [
            (URL(base + u.path, encoded=True), u, self._headers_for(u)) for u in params.urls
        ]
        # The one deadline is check()'s own: aiohttp's per-request timers would only
        # repeat it at a cost per request.
        self._timeout = _NO_TIMEOUT

    def _headers_for(self, spec: UrlSpec) -> dict[str, str]:
        p = self.params
        headers = {"Connection": "close"} if p.http_protocol != "1.0" else {}
        vhost = spec.virtualhost or p.virtualhost
        if vhost:
            headers["Host"] = vhost
        return headers

    @property
    def kind(self) -> str:
        return self.params.kind

    @property
    def timeout(self) -> float:
        return self.params.connect_timeout

    async def check(self) -> CheckResult:
        p = self.params
        session = self._sessions.get(self._source, self._version)
        result = CheckResult.down("no url")
        try:
            async with asyncio.timeout(p.connect_timeout):
                for url, spec, headers in self._urls:
                    result = await self._fetch(session, url, spec, headers)
                    if not result.ok:
                        return result
        except (OSError, TimeoutError, aiohttp.ClientError, ssl.SSLError) as exc:
            return CheckResult.down(_reason(exc, p.connect_timeout))
        return result

    async def _fetch(
        self, session: aiohttp.ClientSession, url: URL, spec: UrlSpec, headers: dict[str, str]
    ) -> CheckResult:
        p = self.params
        vhost = spec.virtualhost or p.virtualhost
        server_hostname = vhost if (p.tls and p.enable_sni and vhost) else None
        async with session.get(
            url,
            headers=headers,
            ssl=self._ssl,
            server_hostname=server_hostname,
            allow_redirects=False,
            timeout=self._timeout,
        ) as resp:
            status = resp.status
            if not spec.status_ok(status):
                return CheckResult.down(f"{url.path}: status {status}")
            if spec.digest is not None:
                # The digest needs the whole body; a regex then searches what was read.
                md5 = hashlib.md5(usedforsecurity=False)
                head = bytearray()
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    md5.update(chunk)
                    if spec.regex is not None and len(head) < spec.max_body:
                        head += chunk
                digest = md5.hexdigest()
                if digest != spec.digest:
                    return CheckResult.down(f"{url.path}: digest mismatch ({digest})")
                found = _match(spec, head) if spec.regex is not None else None
            elif spec.regex is not None:
                found = await _search(resp, spec)
            else:
                found = None
            if found is not None and found == spec.regex_no_match:
                what = "regex matched" if spec.regex_no_match else "regex not matched"
                return CheckResult.down(f"{url.path}: {what}")
            # Anything not needed is left unread: leaving the block closes the connection.
            return _up(status)

    async def close(self) -> None:
        if self._owned:
            await self._sessions.close()


def _match(spec: UrlSpec, body: bytes | bytearray) -> bool:
    assert spec.regex is not None
    return re.search(spec.regex.encode(), body[: spec.max_body]) is not None


async def _search(resp: aiohttp.ClientResponse, spec: UrlSpec) -> bool:
    """Read the body chunk by chunk until the regex matches or max_body is reached."""
    assert spec.regex is not None
    pattern = re.compile(spec.regex.encode())
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        buf += chunk
        if pattern.search(buf) is not None:
            return True
        if len(buf) >= spec.max_body:
            break
    return pattern.search(buf[: spec.max_body]) is not None


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return f"TLS error: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return describe_error(exc.os_error, timeout)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"bad body: {exc}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"bad response: {exc.message}"
    return describe_error(exc, timeout)
