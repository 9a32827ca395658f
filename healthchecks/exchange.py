"""One HTTP(S) GET over its own connection, on callbacks: connect, send, parse, judge.

An ``Exchange`` runs the urls of one check in turn, a fresh connection each (as keepalived
does), and calls ``on_done`` once with the first failure or the last success. The response
is parsed by httptools (llhttp); the body is read only as far as a digest or regex needs.
TLS runs over ``ssl.MemoryBIO`` rather than an asyncio transport so that the session of the
previous check of the same real server can be offered again (asyncio's transports cannot
resume one); a resumed handshake costs a fraction of a full one.
"""

from __future__ import annotations

import _socket
import errno
import hashlib
import os
import re
import socket
import ssl
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

import httptools

from healthchecks import tlssession
from healthchecks.reactor import Reactor
from healthchecks.result import CheckResult, describe_error

if TYPE_CHECKING:
    from healthchecks.http import HttpCheck, Target

_READ = 65536
# Closing with SO_LINGER 0 sends RST instead of FIN: no TIME_WAIT socket per check (and
# a body we chose not to read is not drained).
_LINGER_RST = struct.pack("ii", 1, 0)
_STREAM_NONBLOCK = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
_EPOLLERR = 0x008
_EPOLLHUP = 0x010
_EPOLLIN = 0x001
_READABLE = 0x001 | 0x008 | 0x010 | 0x2000  # IN, ERR, HUP, RDHUP
_TROUBLE = _EPOLLERR | _EPOLLHUP
_HANGUP = 0x010 | 0x2000  # HUP, RDHUP

# One shared result per passing status: a frozen dataclass and its text would otherwise
# be built for every check.
_UP_BY_STATUS: dict[int, CheckResult] = {}
DISCONNECTED = CheckResult.down("server disconnected")


def up(status: int) -> CheckResult:
    result = _UP_BY_STATUS.get(status)
    if result is None:
        result = _UP_BY_STATUS[status] = CheckResult.up(f"status {status}")
    return result


def _ignore(result: CheckResult) -> None:
    return None


_NO_PARSER = httptools.HttpResponseParser(object())


class Exchange:
    """A check in flight: one url after another over plain TCP (``TlsExchange`` for SSL_GET).

    Also the httptools parser's callback object. A status-only url gets a parser that
    calls back once per response (headers complete); a url with a digest or regex gets
    the body callbacks too (``_BODY_CALLBACKS``).
    """

    __slots__ = (
        "buf", "check", "connected", "deadline", "digest", "done", "fd", "framed",
        "got", "head", "in_launch", "index", "on_done", "out", "parser", "reactor", "sock",
        "target", "verdict",
    )

    def __init__(
        self, check: HttpCheck, reactor: Reactor, on_done: Callable[[CheckResult], None]
    ) -> None:
        self.check = check
        self.reactor = reactor
        self.on_done = on_done
        self.index = 0
        self.done = False
        self.in_launch = True
        self.deadline = 0.0
        self.sock: _socket.socket | None = None
        self.fd = -1
        self.target: Target = check.targets[0]
        self._reset()

    def _reset(self) -> None:
        self.connected = False
        self.out = b""
        self.head = 0  # response bytes seen before the headers completed; -1 once they did
        self.verdict: CheckResult | None = None
        self.framed = False  # Content-Length or Transfer-Encoding seen
        self.got = 0
        self.buf: bytearray | None = None
        self.digest: hashlib._Hash | None = None
        target = self.target
        if target.needs_body:
            self.parser = httptools.HttpResponseParser(_BodyCallbacks(self))
            if target.spec.digest is not None:
                self.digest = hashlib.md5(usedforsecurity=False)
            if target.pattern is not None:
                self.buf = bytearray()
        else:
            self.parser = httptools.HttpResponseParser(self)

    # -- connection ------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Open the connection to the current url's server; failures end the exchange."""
        check = self.check
        sock: _socket.socket | None = None
        try:
            source = check.source
            if source is None:
                # The C socket type: socket.socket adds Python-level bookkeeping.
                sock = _socket.socket(check.family, _STREAM_NONBLOCK)
            else:
                sock = source.open(check.family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            err = sock.connect_ex(check.address)
            if err != errno.EINPROGRESS and err != 0:
                sock.close()
                self._finish(CheckResult.down(describe_error(OSError(err, os.strerror(err)))))
                return
            self.sock = sock
            self.fd = sock.fileno()
            # Edge-triggered: the connect completing shows as writable.
            self.reactor.watch(self.fd, self, check.io_timeout, now)
        except OSError as exc:
            if sock is not None:
                sock.close()
            self._finish(CheckResult.down(describe_error(exc)))

    def on_event(self, mask: int) -> None:
        if self.done:
            return
        if not self.connected:
            if mask & _TROUBLE:
                assert self.sock is not None
                try:
                    err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                except OSError as exc:
                    err = exc.errno or errno.EIO
                if err:
                    self._finish(CheckResult.down(describe_error(OSError(err, os.strerror(err)))))
                    return
            sock = self.sock
            self.connected = True
            self.connection_made()
            if self.sock is not sock:
                return
        elif self.out:
            sock = self.sock
            self._send(b"")
            if self.sock is not sock:
                return
        if mask & _READABLE:
            self._read(mask & _HANGUP)

    def connection_made(self) -> None:
        self._send(self.target.request)

    def _send(self, data: bytes) -> None:
        sock = self.sock
        assert sock is not None
        data = self.out + data if self.out else data
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._fail_io(exc)
            return
        # The rest goes when the socket is writable again (an edge-triggered event).
        self.out = data[sent:]

    def _read(self, hangup: int) -> None:
        sock = self.sock
        assert sock is not None
        while True:
            try:
                data = sock.recv(_READ)
            except BlockingIOError:
                return
            except OSError as exc:
                self._fail_io(exc)
                return
            if not data:
                self.eof()
                return
            self.received(data)
            if self.sock is not sock or (len(data) < _READ and not hangup):
                # Finished, or on to the next url's connection.
                # A short read emptied the queue: what arrives later raises a new edge;
                # a hang-up that came with this edge raises none: read on to the end.
                return

    def received(self, data: bytes) -> None:
        self.feed(data)

    def _fail_io(self, exc: OSError) -> None:
        if self.verdict is not None:
            self._url_done()
        elif isinstance(exc, ConnectionResetError | BrokenPipeError):
            self._finish(CheckResult.down(
                "connection reset" if self.head == 0 else self._cut_short("connection reset")
            ))
        else:
            self._finish(CheckResult.down(describe_error(exc)))

    def expired(self) -> None:
        if not self.done:
            self._finish(CheckResult.down(self.check.timeout_reason))

    def cancel(self) -> None:
        """Abandon the exchange: ``on_done`` is not called."""
        if not self.done:
            self.on_done = _ignore
            self._finish(DISCONNECTED)

    # -- response ----------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self.head >= 0:
            self.head += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # 101 Switching Protocols ends HTTP on this connection: judged by its status.
            if self.verdict is None and self.head == -1:
                self.verdict = up(self.parser.get_status_code())
        except httptools.HttpParserError as exc:
            if self.verdict is None:
                text = str(exc) or type(exc).__name__
                self._finish(CheckResult.down(f"{self.target.spec.path}: bad response: {text}"))
                return
        if self.verdict is not None:
            self._url_done()

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return  # an interim response (RFC 9110 section 15.2): the final one follows
        self.head = -1
        spec = self.target.spec
        if not spec.status_ok(status):
            self.verdict = CheckResult.down(f"{spec.path}: status {status}")
        elif not self.target.needs_body:
            self.verdict = up(status)

    def eof(self) -> None:
        if self.verdict is not None:
            self._url_done()
        elif self.head == -1 and not self.framed:
            # A body without Content-Length or chunking ends with the connection
            # (HTTP/1.0 style, RFC 9112 section 6.3): that is its complete end.
            self.body_complete()
            self._url_done()
        elif self.head == 0:
            self._finish(DISCONNECTED)
        else:
            self._finish(CheckResult.down(self._cut_short("server disconnected")))

    def _cut_short(self, what: str) -> str:
        where = "mid-headers" if self.head > 0 else "mid-body"
        return f"{self.target.spec.path}: {what} {where}"

    def body_complete(self) -> None:
        """The whole body has been seen: judge the digest and the regex."""
        if self.verdict is not None:
            return
        target = self.target
        spec = target.spec
        status = self.parser.get_status_code()
        if self.digest is not None:
            digest = self.digest.hexdigest()
            if digest != spec.digest:
                self.verdict = CheckResult.down(f"{spec.path}: digest mismatch ({digest})")
                return
        if self.buf is not None:
            assert target.pattern is not None
            found = target.pattern.search(self.buf, 0, spec.max_body) is not None
            self.verdict = self._regex_verdict(found, status)
        else:
            self.verdict = up(status)

    def _regex_verdict(self, found: bool, status: int) -> CheckResult:
        spec = self.target.spec
        if found == spec.regex_no_match:
            what = "regex matched" if spec.regex_no_match else "regex not matched"
            return CheckResult.down(f"{spec.path}: {what}")
        return up(status)

    def body(self, data: bytes) -> None:
        if self.verdict is not None:
            return
        self.got += len(data)
        if self.digest is not None:
            self.digest.update(data)
        buf = self.buf
        if buf is not None and len(buf) < self.target.spec.max_body:
            buf += data
            if self.digest is None:
                # Without a digest the body is read only until the regex decides.
                pattern = self.target.pattern
                assert pattern is not None
                max_body = self.target.spec.max_body
                if pattern.search(buf, 0, max_body) is not None:
                    self.verdict = self._regex_verdict(True, self.parser.get_status_code())
                elif len(buf) >= max_body:
                    self.verdict = self._regex_verdict(False, self.parser.get_status_code())

    # -- ending ------------------------------------------------------------------------

    def _url_done(self) -> None:
        verdict = self.verdict
        assert verdict is not None
        if not verdict.ok or self.index + 1 >= len(self.check.targets):
            self._finish(verdict)
            return
        self._close()
        self.index += 1
        self.target = self.check.targets[self.index]
        self._reset()
        loop = self.reactor.loop()
        if loop is not None:
            self.start(loop.time())

    def _close(self) -> None:
        sock = self.sock
        if sock is not None:
            self.reactor.forget(self.fd)
            sock.close()
            self.sock = None

    def _finish(self, result: CheckResult) -> None:
        self.done = True
        self.connection_lost(result)
        self._close()
        self.parser = _NO_PARSER  # it holds this exchange: no cycle left for the collector
        self.buf = None
        on_done, self.on_done = self.on_done, _ignore
        if self.in_launch:
            # The launch contract: on_done is never called from within launch().
            loop = self.reactor.loop()
            if loop is not None:
                loop.call_soon(on_done, result)
        else:
            on_done(result)

    def connection_lost(self, result: CheckResult) -> None:
        return None


class _BodyCallbacks:
    """The parser callbacks of a url whose body is read (digest or regex)."""

    __slots__ = ("ex",)

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) in (14, 17) and name.lower() in (b"content-length", b"transfer-encoding"):
            self.ex.framed = True

    def on_headers_complete(self) -> None:
        self.ex.on_headers_complete()

    def on_body(self, data: bytes) -> None:
        self.ex.body(data)

    def on_message_complete(self) -> None:
        ex = self.ex
        if ex.head == -1:  # not an interim response's end
            ex.body_complete()


class TlsExchange(Exchange):
    """SSL_GET: the same exchange with TLS in memory BIOs between the socket and the parser."""

    __slots__ = ("incoming", "outgoing", "tls", "tls_done")

    def _reset(self) -> None:
        Exchange._reset(self)
        self.tls: ssl.SSLObject | None = None
        self.tls_done = False

    def connection_made(self) -> None:
        check = self.check
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        context = check.tls_context
        assert context is not None
        self.tls = tlssession.wrap(context, self.incoming, self.outgoing,
                                   self.target.server_hostname, check.tls_session)
        self._handshake()

    def _handshake(self) -> None:
        tls = self.tls
        assert tls is not None
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except ssl.SSLCertVerificationError as exc:
            self._tls_failed(f"TLS certificate: {exc.verify_message}")
            return
        except ssl.SSLError as exc:
            self._tls_failed(f"TLS error: {exc.reason or exc}")
            return
        self.tls_done = True
        tls.write(self.target.request)
        self._flush()

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self._send(data)

    def _tls_failed(self, reason: str) -> None:
        tlssession.release(self.check.tls_session)
        self.check.tls_session = None
        self._finish(CheckResult.down(reason))

    def received(self, data: bytes) -> None:
        self.incoming.write(data)
        self._plaintext()

    def _plaintext(self) -> None:
        if not self.tls_done:
            self._handshake()
            if not self.tls_done or self.done:
                return
        tls = self.tls
        assert tls is not None
        while not self.done:
            try:
                chunk = tls.read(_READ)
            except ssl.SSLWantReadError:
                self._flush()  # a key update or alert may want an answer
                return
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                Exchange.eof(self)
                return
            except ssl.SSLError as exc:
                self._tls_failed(f"TLS error: {exc.reason or exc}")
                return
            if not chunk:
                Exchange.eof(self)
                return
            self.feed(chunk)

    def eof(self) -> None:
        if self.done:
            return
        if not self.tls_done:
            self._tls_failed(DISCONNECTED.reason)
            return
        self.incoming.write_eof()
        self._plaintext()
        if not self.done:
            Exchange.eof(self)

    def connection_lost(self, result: CheckResult) -> None:
        tls = self.tls
        if tls is not None and self.tls_done:
            if result.ok:
                # The session to offer next time: in TLS 1.3 it comes in a ticket after
                # the handshake, read along with the response.
                self.check.tls_session = tlssession.take(tls, self.check.tls_session)
            tlssession.done(tls)
        self.tls = None


def compile_pattern(regex: str | None) -> re.Pattern[bytes] | None:
    return None if regex is None else re.compile(regex.encode())
