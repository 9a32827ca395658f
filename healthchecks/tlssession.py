"""TLS sessions kept for resumption, handed to and taken from OpenSSL without copies.

CPython 3.11's ``SSLObject.session`` getter and ``wrap_bio(session=...)`` each copy the
session through DER (a workaround for an OpenSSL 1.1.0 bug), and with OpenSSL 3.0 that
decode costs 0.5-1.3 ms, more than the resumed handshake saves. This module calls
libssl's ``SSL_get1_session`` / ``SSL_set_session`` directly, as CPython does underneath,
holding a reference to the ``SSL_SESSION`` instead of a copy. It finds the ``SSL *`` and
``SSL_CTX *`` in CPython's objects at fixed offsets, checks them against each other once,
and falls back to the ``ssl`` module's API where the check fails (another interpreter or
layout). tests/integration/test_hc_https_resume.py counts resumptions at the server.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ssl
import sys
from typing import Any

# In CPython's Modules/_ssl.c: PySSLContext {PyObject_HEAD; SSL_CTX *ctx; ...} and
# PySSLSocket {PyObject_HEAD; PyObject *Socket; SSL *ssl; ...}; PyObject_HEAD is two words.
_WORD = ctypes.sizeof(ctypes.c_void_p)
_CTX_OFFSET = 2 * _WORD
_SSL_OFFSET = 3 * _WORD

Session = Any  # an SSL_SESSION address (int) natively, else an ssl.SSLSession
_SENT_AND_RECEIVED_SHUTDOWN = 1 | 2  # SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN


class _Native:
    def __init__(self) -> None:
        name = ctypes.util.find_library("ssl") or "libssl.so.3"
        lib = ctypes.CDLL(name)
        lib.SSL_get1_session.argtypes = [ctypes.c_void_p]
        lib.SSL_get1_session.restype = ctypes.c_void_p
        lib.SSL_set_session.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.SSL_set_session.restype = ctypes.c_int
        lib.SSL_SESSION_free.argtypes = [ctypes.c_void_p]
        lib.SSL_SESSION_free.restype = None
        lib.SSL_SESSION_is_resumable.argtypes = [ctypes.c_void_p]
        lib.SSL_SESSION_is_resumable.restype = ctypes.c_int
        lib.SSL_get_SSL_CTX.argtypes = [ctypes.c_void_p]
        lib.SSL_get_SSL_CTX.restype = ctypes.c_void_p
        lib.SSL_set_shutdown.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.SSL_set_shutdown.restype = None
        lib.OpenSSL_version_num.argtypes = []
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        self.lib = lib

    def verify(self) -> bool:
        """The library is the one the ssl module uses and the offsets find what they should."""
        if self.lib.OpenSSL_version_num() != ssl.OPENSSL_VERSION_NUMBER:
            return False
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        obj = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())
        ssl_ptr = _address(obj._sslobj, _SSL_OFFSET)  # type: ignore[attr-defined]
        ctx_ptr = _address(ctx, _CTX_OFFSET)
        return bool(ssl_ptr and ctx_ptr) and self.lib.SSL_get_SSL_CTX(ssl_ptr) == ctx_ptr


def _address(obj: object, offset: int) -> int:
    return ctypes.c_void_p.from_address(id(obj) + offset).value or 0


def _load() -> _Native | None:
    if sys.implementation.name != "cpython" or hasattr(sys, "gettotalrefcount"):
        return None  # another object layout (or a debug build's longer header)
    try:
        native = _Native()
        return native if native.verify() else None
    except (OSError, AttributeError):
        return None


_NATIVE: _Native | None = _load()


def native() -> bool:
    """Whether sessions are handled through libssl directly (else through the ssl module)."""
    return _NATIVE is not None


def wrap(
    context: ssl.SSLContext, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO,
    server_hostname: str | None, session: Session | None,
) -> ssl.SSLObject:
    """A client SSLObject that offers ``session`` (if any) in its handshake."""
    if _NATIVE is None:
        try:
            return context.wrap_bio(incoming, outgoing, server_hostname=server_hostname,
                                    session=session)
        except (ssl.SSLError, ValueError):
            return context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    obj = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    if session:
        ssl_ptr = _address(obj._sslobj, _SSL_OFFSET)  # type: ignore[attr-defined]
        _NATIVE.lib.SSL_set_session(ssl_ptr, session)
    return obj


def done(obj: ssl.SSLObject) -> None:
    """The connection is over: keep its session resumable.

    OpenSSL marks a session not resumable when a connection using it is freed without a
    TLS shutdown (which a check that resets its connection never has); CPython's copies
    hid that. Flagging the shutdown as done (no I/O) keeps the shared session usable.
    """
    if _NATIVE is not None:
        ssl_ptr = _address(obj._sslobj, _SSL_OFFSET)  # type: ignore[attr-defined]
        _NATIVE.lib.SSL_set_shutdown(ssl_ptr, _SENT_AND_RECEIVED_SHUTDOWN)


def take(obj: ssl.SSLObject, old: Session | None) -> Session | None:
    """The session to offer next time, from a finished handshake; ``old`` is released."""
    if _NATIVE is None:
        return obj.session
    lib = _NATIVE.lib
    new = lib.SSL_get1_session(_address(obj._sslobj, _SSL_OFFSET))  # type: ignore[attr-defined]
    if new and not lib.SSL_SESSION_is_resumable(new):
        lib.SSL_SESSION_free(new)
        new = None
    if old:
        # Ours whether or not it is the same session: get1 took a reference of its own.
        lib.SSL_SESSION_free(old)
    return new or None


def release(session: Session | None) -> None:
    """Let go of a session no longer wanted."""
    if session and _NATIVE is not None:
        _NATIVE.lib.SSL_SESSION_free(session)
