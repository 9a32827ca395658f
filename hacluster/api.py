"""The control API (aiohttp): status, IPVS table, drain/maintenance/reload, and Prometheus metrics.

The daemon implements `Controller`; `ApiServer` serves it on the control socket (a
unix socket, mode 0600: whoever can open it may change state), optionally on TCP
(`api_listen`, where every change needs `Authorization: Bearer <api_token>` and, with
no token configured, nothing can be changed), and serves /metrics on its own TCP
listener when `metrics_listen` is set.

Endpoints (JSON in and out; an error is `{"error": message}` with its status code):

    GET  /v1/status                          Status, plus "ipvs": the table as rows (the
                                             daemon answers from a snapshot at most ~1 s
                                             old, "status_age_seconds"; "ipvs" is the
                                             table as reconcile last read it back,
                                             "ipvs_age_seconds" ago, and wrote it since:
                                             connection counters are in /v1/ipvs;
                                             a role that is busy or restarting: its
                                             part as it last was, and "missing" says
                                             which part, how old and why)
    GET  /v1/summary                         instances' states, each virtual server's
                                             quorum and real servers up (small; with
                                             "missing" too)
    GET  /v1/virtual_servers/{vs}            one virtual server's status and table rows
    GET  /v1/ipvs                            the table as `hacluster ipvs list --json` prints it
    POST /v1/servers/{vs}/{rs}/drain         weight 0, connections stay (undrain: back)
    POST /v1/servers/{vs}/{rs}/undrain
    POST /v1/instances/{name}/maintenance    body {"on": true|false} or ?on=1|0
    POST /v1/reload                          like SIGHUP; 422 when the new file is refused
    GET  /metrics                            Prometheus text (OpenMetrics on request)

A virtual server is named as the config names it: `10.99.0.100:80/TCP`,
`[2001:db8::1]:443/TCP`, `FWM 1/TCP` (in a URL the `/` is written `%2F`; `IP:PORT` alone
means TCP and `fwmark:N` means `FWM N/TCP`). A real server is `IP:PORT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import hmac
import json
import logging
import os
import socket
import stat
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from hacluster.api_badrequests import BadRequestFilter, LogBudget, server_logger
from hacluster.apitypes import (  # noqa: F401  (re-exported: the API's names)
    ActionRefused,
    CheckStatus,
    Controller,
    ControllerError,
    InstanceStatus,
    IpvsRow,
    RealServerStatus,
    Status,
    Transition,
    UnknownInstance,
    UnknownRealServer,
    UnknownVirtualServer,
    VirtualServerStatus,
    _host_port,
    ipvs_rows,
    normalize_real_server,
    normalize_virtual_server,
)
from hacluster.config.model import GlobalDefs, HostPort
from hacluster.sockbuf import grow_send_buffer

if TYPE_CHECKING:  # prometheus_client is imported only by whoever creates the Metrics
    from hacluster.metrics import Metrics

log = logging.getLogger("hacluster.api")

MAX_BODY = 64 * 1024
UNIX_PATH_MAX = 107  # sun_path holds 108 bytes including the terminating NUL


# --------------------------------------------------------------------------- the seam


# --------------------------------------------------------------------------- the app


class Access(enum.Enum):
    """Who may change state through one listener."""

    LOCAL = "local"  # the unix socket: its file mode is the gate
    TOKEN = "token"  # TCP with api_token: changes need the bearer token
    READ_ONLY = "read-only"  # TCP without a token: no changes at all


@dataclass(slots=True)
class _Gate:
    access: Access
    token: bytes | None = None


_GATE = web.AppKey("gate", _Gate)
_CONTROLLER = web.AppKey("controller", Controller)
_METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
_LISTENER = web.AppKey("listener", str)
_BAD_REQUESTS = web.AppKey("bad_requests", BadRequestFilter)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _BadRequest(Exception):
    """The request itself is malformed (400)."""


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


_SERVING: contextvars.ContextVar[bool] = contextvars.ContextVar("hacluster_api_serving",
                                                               default=False)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    serving = _SERVING.set(True)  # see ApiServer.reconfigure
    try:
        return await _handle(request, handler)
    finally:
        _SERVING.reset(serving)


async def _handle(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ControllerError as exc:
        return _error(exc.http_status, str(exc))
    except HttpProcessingError as exc:  # a body found malformed as it was read
        bad = request.app.get(_BAD_REQUESTS)
        if bad is not None:
            bad.report(exc, request.remote or "")
        return _error(400, f"malformed request: {exc.message}")
    except ConnectionError as exc:  # the client went away mid-request: no one to answer
        log.debug("[api] %s %s: client gone: %s", request.method, request.path, exc)
        return _error(400, "connection lost")
    except _BadRequest as exc:
        return _error(400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.reason
        if exc.status == 404:
            message = f"no such endpoint: {request.method} {request.path}"
        elif exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        return _error(exc.status, message, headers={
            k: v for k, v in exc.headers.items() if k.lower() == "allow"
        })
    except Exception as exc:  # a controller bug must not take the API down
        log.exception("[api] %s %s failed", request.method, request.path)
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return await handler(request)
    gate = request.app[_GATE]
    if gate.access is Access.READ_ONLY:
        return _error(403, "this listener is read-only: set global_defs.api_token to allow changes")
    if gate.access is Access.TOKEN:
        challenge = {"WWW-Authenticate": 'Bearer realm="hacluster"'}
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            return _error(401, "changes need an Authorization: Bearer token", challenge)
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "Authorization must be: Bearer <token>", challenge)
        assert gate.token is not None
        # Header values arrive as text decoded with surrogateescape: encode them back the
        # same way, so that any bytes compare (a non-UTF-8 token is just a wrong one).
        if not hmac.compare_digest(token.strip().encode("utf-8", "surrogateescape"), gate.token):
            return _error(403, "wrong token")
    return await handler(request)


@web.middleware
async def _body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every body is read, and its size checked, before any endpoint runs: one that never
    reads its body (POST /v1/reload) would otherwise answer whatever was sent (413)."""
    length = request.content_length
    if length is not None and length > MAX_BODY:
        return _error(413, f"the body is {length} bytes; at most {MAX_BODY} are accepted")
    if request.body_exists:
        await request.read()  # kept for the handler; over client_max_size: 413
    return await handler(request)


YIELD_BYTES = 64 * 1024
"""JSON encoded between two yields to the event loop (a millisecond or so of work)."""


async def encode_json(data: Any) -> str:
    """`json.dumps(data)`, the same text, encoded list item by list item one level down,
    yielding to the event loop every `YIELD_BYTES`: the status of a daemon with 10,000
    real servers (~2 MB) must not hold up VRRP timers. (A worker thread would not help:
    the encoder holds the GIL for a whole call.)"""
    if not isinstance(data, dict):
        return json.dumps(data)
    parts: list[str] = []
    since = 0
    for index, (key, value) in enumerate(data.items()):
        parts.append(("{" if index == 0 else ", ") + json.dumps(str(key)) + ": ")
        items = value if isinstance(value, list) else None
        if items is None:
            parts.append(json.dumps(value))
            continue
        parts.append("[")
        for position, item in enumerate(items):
            text = json.dumps(item)
            parts.append(text if position == 0 else ", " + text)
            since += len(text)
            if since >= YIELD_BYTES:
                since = 0
                await asyncio.sleep(0)
        parts.append("]")
    parts.append("}" if parts else "{}")
    return "".join(parts)


async def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=await encode_json(data), status=status,
                        content_type="application/json")


async def _status(request: web.Request) -> web.Response:
    controller = request.app[_CONTROLLER]
    document = getattr(controller, "status_document", None)  # kept encoded: answers at once
    if document is not None:
        body = await document()  # bytes, relayed as the balancer built them
        if isinstance(body, str):
            body = body.encode()
        _send_buffer(request, len(body))
        return web.Response(body=body, content_type="application/json")
    status = await controller.status()
    result: dict[str, Any] = dict(status)
    # A controller that keeps a recent listing answers from it (the status page need
    # not wait for the whole table to be read back).
    listing = getattr(controller, "recent_ipvs", controller.ipvs)
    try:
        result["ipvs"] = ipvs_rows(await listing())
    except Exception as exc:  # the rest of the status is still worth showing
        log.warning("[api] IPVS table unavailable for status: %s", exc)
        result["ipvs"] = []
        result["ipvs_error"] = str(exc)
    return await _json(result)


def _send_buffer(request: web.Request, size: int) -> None:
    """Let the kernel take a large answer whole (megabytes at 10,000 real servers): with
    the default buffer (~200 KB) it leaves in slices, one per turn of a busy event loop,
    and a client waits for all of them. Root may exceed net.core.wmem_max."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or size <= 256 * 1024:
        return
    grow_send_buffer(sock, size + 64 * 1024)


def summarize(status: Status) -> dict[str, Any]:
    """The status in a few lines: each instance's state and priority, each virtual
    server's quorum and how many of its real servers are up (no checks, no table)."""
    return {
        "router_id": status["router_id"],
        "uptime_seconds": status["uptime_seconds"],
        "instances": [
            {"name": i["name"], "state": i["state"], "priority": i["effective_priority"],
             "master": i["master"], "maintenance": i["maintenance"]}
            for i in status["instances"]
        ],
        "virtual_servers": [
            {"name": v["name"], "quorum_up": v["quorum_up"],
             "sorry_server_active": v["sorry_server_active"],
             "real_servers_up": sum(1 for r in v["real_servers"] if r["up"]),
             "real_servers": len(v["real_servers"])}
            for v in status["virtual_servers"]
        ],
        "dataplane_error": status.get("dataplane_error"),
    }


async def _summary(request: web.Request) -> web.Response:
    controller = request.app[_CONTROLLER]
    cheap = getattr(controller, "summary", None)  # a controller that can do it cheaper
    if cheap is not None:
        return await _json(await cheap())
    return await _json(summarize(await controller.status()))


async def _virtual_server(request: web.Request) -> web.Response:
    """One virtual server as the status shows it, with its rows of the table."""
    name = normalize_virtual_server(request.match_info["vs"])
    controller = request.app[_CONTROLLER]
    one = getattr(controller, "virtual_server", None)  # without building all the status
    if one is not None:
        return await _json(await one(name))
    status = await controller.status()
    for row in status["virtual_servers"]:
        if row["name"] == name:
            result: dict[str, Any] = dict(row)
            try:
                rows = ipvs_rows(await controller.ipvs())
                result["ipvs"] = [r for r in rows if r["service"] == name]
            except Exception as exc:
                result["ipvs"] = []
                result["ipvs_error"] = str(exc)
            return await _json(result)
    raise UnknownVirtualServer(name)


async def _ipvs(request: web.Request) -> web.Response:
    return await _json(await request.app[_CONTROLLER].ipvs())


async def _server_action(request: web.Request) -> web.Response:
    vs = normalize_virtual_server(request.match_info["vs"])
    rs = normalize_real_server(request.match_info["rs"])
    action = request.match_info["action"]
    controller = request.app[_CONTROLLER]
    if action == "drain":
        await controller.drain(vs, rs)
    else:
        await controller.undrain(vs, rs)
    # The load balancer logs the change itself: this says only where it came from.
    log.debug("[%s] %s %s (via %s)", vs, action, rs, request.app[_LISTENER])
    return web.json_response(
        {"ok": True, "virtual_server": vs, "real_server": rs, "drained": action == "drain"}
    )


_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no"}


async def _on_flag(request: web.Request) -> bool:
    if "on" in request.query:
        text = request.query["on"].strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise _BadRequest(f"on must be one of on/off/true/false/1/0, not {text!r}")
    body = await request.read()
    try:
        data = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        data = None
        problem = "the body is not JSON"
    else:
        problem = 'the body must be {"on": true} or {"on": false}'
    if isinstance(data, dict) and isinstance(data.get("on"), bool):
        return bool(data["on"])
    raise _BadRequest(f"{problem} (or use ?on=1 / ?on=0)")


async def _maintenance(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    on = await _on_flag(request)
    await request.app[_CONTROLLER].maintenance(name, on)
    log.debug("[%s] maintenance %s (via %s)", name, "on" if on else "off",
             request.app[_LISTENER])
    return web.json_response({"ok": True, "instance": name, "maintenance": on})


async def _reload(request: web.Request) -> web.Response:
    log.info("[api] reload requested (via %s)", request.app[_LISTENER])
    ok, message = await request.app[_CONTROLLER].reload()
    if ok:
        return web.json_response({"ok": True, "message": message})
    return web.json_response({"ok": False, "error": message}, status=422)


async def _metrics(request: web.Request) -> web.Response:
    body, content_type = await request.app[_METRICS].render_async(request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})


def make_app(
    controller: Controller,
    metrics: Metrics,
    *,
    access: Access = Access.LOCAL,
    token: str | None = None,
    listener: str = "unix",
) -> web.Application:
    """The control API as an aiohttp application, gated as `access` says."""
    if access is Access.TOKEN and not token:
        raise ValueError("Access.TOKEN needs a non-empty token")
    app = web.Application(middlewares=[_errors, _auth, _body_limit], client_max_size=MAX_BODY)
    app[_GATE] = _Gate(access, token.encode() if token else None)
    app[_CONTROLLER] = controller
    app[_METRICS] = metrics
    app[_LISTENER] = listener
    app.router.add_get("/v1/status", _status)
    app.router.add_get("/v1/summary", _summary)
    app.router.add_get("/v1/virtual_servers/{vs}", _virtual_server)
    app.router.add_get("/v1/ipvs", _ipvs)
    app.router.add_post("/v1/servers/{vs}/{rs}/{action:drain|undrain}", _server_action)
    app.router.add_post("/v1/instances/{name}/maintenance", _maintenance)
    app.router.add_post("/v1/reload", _reload)
    app.router.add_get("/metrics", _metrics)
    return app


def make_metrics_app(metrics: Metrics) -> web.Application:
    """Only GET /metrics (for `metrics_listen`)."""
    app = web.Application(middlewares=[_errors, _body_limit], client_max_size=MAX_BODY)
    app[_METRICS] = metrics
    app.router.add_get("/metrics", _metrics)
    return app


# --------------------------------------------------------------------------- the unix socket


class ApiError(Exception):
    """A listener cannot be started (socket in use, bad path, address taken...)."""


def _socket_in_use(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def bind_unix(path: Path) -> socket.socket:
    """A listening unix socket at `path`, mode 0600 from the first moment it is reachable.

    A leftover socket file nobody answers on is replaced; a live one (another daemon)
    or anything that is not a socket is refused. The socket is bound in a private
    temporary directory next to `path`, then renamed over it, so there is never a
    moment with a wider mode nor a moment without a socket at `path`.
    """
    path = Path(path)
    if len(os.fsencode(path)) > UNIX_PATH_MAX:
        raise ApiError(f"{path}: a unix socket path can be at most {UNIX_PATH_MAX} bytes")
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as exc:
        raise ApiError(f"{path.parent}: cannot create the directory: {exc.strerror}") from exc
    try:
        st = path.lstat()
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise ApiError(f"{path} exists and is not a socket: refusing to replace it")
        if _socket_in_use(path):
            raise ApiError(f"{path}: another process answers on this socket (already running?)")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        try:
            tmpdir = tempfile.mkdtemp(prefix=".", dir=path.parent)  # mode 0700
        except OSError as exc:
            raise ApiError(f"{path.parent}: cannot create a socket here: {exc.strerror}") from exc
        tmp = Path(tmpdir) / "s"
        try:
            if len(os.fsencode(tmp)) <= UNIX_PATH_MAX:
                sock.bind(str(tmp))
                os.chmod(tmp, 0o600)
                os.rename(tmp, path)
            else:  # the temporary name is too long: narrow the umask around bind instead
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                old = os.umask(0o177)
                try:
                    sock.bind(str(path))
                finally:
                    os.umask(old)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
            with contextlib.suppress(OSError):
                os.rmdir(tmpdir)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ApiError(f"{path}: cannot listen: {exc.strerror or exc}") from exc
    except BaseException:
        sock.close()
        raise
    return sock


# --------------------------------------------------------------------------- the server


@dataclass(frozen=True, slots=True)
class Listeners:
    """Where the API listens: the config's `global_defs` keys."""

    control_socket: Path | None
    api_listen: HostPort | None = None
    api_token: str | None = None
    metrics_listen: HostPort | None = None

    @classmethod
    def from_global_defs(cls, defs: GlobalDefs) -> Listeners:
        return cls(defs.control_socket, defs.api_listen, defs.api_token, defs.metrics_listen)


class ApiServer:
    """Runs the control API's listeners; `start()` binds them, `stop()` removes them."""

    def __init__(self, controller: Controller, metrics: Metrics, listeners: Listeners) -> None:
        self.controller = controller
        self.metrics = metrics
        self.listeners = listeners
        self._runners: dict[str, web.AppRunner] = {}
        self._socket_id: tuple[int, int] | None = None
        self._socket_path: Path | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._bad_log = LogBudget()  # malformed requests: one line a second, all listeners
        self.tcp_address: tuple[str, int] | None = None
        self.metrics_address: tuple[str, int] | None = None

    async def start(self) -> None:
        """Bind every configured listener; on any failure none stays bound."""
        try:
            for kind in ("unix", "tcp", "metrics"):
                await self._start(kind)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, kind: str) -> None:
        cfg = self.listeners
        if kind == "unix" and cfg.control_socket is not None:
            sock = bind_unix(cfg.control_socket)
            try:
                st = os.stat(cfg.control_socket)
                self._socket_id = (st.st_dev, st.st_ino)
                self._socket_path = cfg.control_socket
                runner = await self._runner(kind, make_app(self.controller, self.metrics))
            except BaseException:
                sock.close()
                raise
            await web.SockSite(runner, sock).start()
            log.info("[api] control API on unix:%s", cfg.control_socket)
        elif kind == "tcp" and cfg.api_listen is not None:
            access = Access.TOKEN if cfg.api_token else Access.READ_ONLY
            app = make_app(self.controller, self.metrics, access=access, token=cfg.api_token,
                           listener=f"tcp:{cfg.api_listen}")
            self.tcp_address = await self._tcp(kind, app, cfg.api_listen)
            log.info("[api] control API on %s (%s)", _fmt(self.tcp_address), access.value)
        elif kind == "metrics" and cfg.metrics_listen is not None:
            app = make_metrics_app(self.metrics)
            self.metrics_address = await self._tcp(kind, app, cfg.metrics_listen)
            log.info("[api] metrics on http://%s/metrics", _fmt(self.metrics_address))

    async def _runner(self, kind: str, app: web.Application) -> web.AppRunner:
        # Unparsable requests: counted and logged once a second, never a traceback.
        bad = BadRequestFilter(kind, self.metrics, self._bad_log)
        app[_BAD_REQUESTS] = bad
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0,
                               logger=server_logger(kind, bad))
        self._runners[kind] = runner
        await runner.setup()
        return runner

    async def _tcp(self, kind: str, app: web.Application, where: HostPort) -> tuple[str, int]:
        runner = await self._runner(kind, app)
        site = web.TCPSite(runner, str(where.host), where.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise ApiError(f"{where}: cannot listen: {exc.strerror or exc}") from exc
        for addr in runner.addresses:
            if isinstance(addr, tuple):
                return str(addr[0]), int(addr[1])
        return str(where.host), where.port

    async def _stop(self, kind: str) -> None:
        runner = self._runners.pop(kind, None)
        if runner is not None:
            try:
                await runner.cleanup()
            except Exception:
                log.exception("[api] error while closing the %s listener", kind)
        if kind == "unix":
            path = self._socket_path
            if self._socket_id is not None and path is not None:
                with contextlib.suppress(OSError):
                    st = os.lstat(path)
                    if (st.st_dev, st.st_ino) == self._socket_id:  # not a newer daemon's
                        os.unlink(path)
            self._socket_id = None
            self._socket_path = None
        elif kind == "tcp":
            self.tcp_address = None
        elif kind == "metrics":
            self.metrics_address = None

    async def stop(self) -> None:
        """Close every listener and remove the control socket (if it is still ours)."""
        if self._pending:  # a rebind after a reload request: let it finish first
            await asyncio.gather(*self._pending, return_exceptions=True)
        for kind in ("metrics", "tcp", "unix"):
            await self._stop(kind)

    async def reconfigure(self, listeners: Listeners) -> None:
        """Apply new `global_defs` after a reload, rebinding only the listeners that changed.

        A new token takes effect at once without rebinding. Called while an API request
        is being served (POST /v1/reload), the rebinding runs in a task of its own after
        the answer, since a listener waits for its requests in flight before closing;
        failures are then logged. Otherwise it is done before returning (ApiError raised).
        """
        old, self.listeners = self.listeners, listeners
        changed = []
        if old.control_socket != listeners.control_socket:
            changed.append("unix")
        if old.api_listen != listeners.api_listen or bool(old.api_token) != bool(
            listeners.api_token
        ):
            changed.append("tcp")
        elif old.api_token != listeners.api_token and "tcp" in self._runners:
            gate = self._runners["tcp"].app[_GATE]
            gate.token = listeners.api_token.encode() if listeners.api_token else None
        if old.metrics_listen != listeners.metrics_listen:
            changed.append("metrics")
        if not changed:
            return
        if _SERVING.get():
            task = asyncio.get_running_loop().create_task(self._rebind(changed, log_errors=True))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return
        await self._rebind(changed, log_errors=False)

    async def _rebind(self, kinds: list[str], *, log_errors: bool) -> None:
        for kind in kinds:
            await self._stop(kind)
            try:
                await self._start(kind)
            except ApiError as exc:
                if not log_errors:
                    raise
                log.error("[api] %s", exc)

    async def __aenter__(self) -> ApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _fmt(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --------------------------------------------------------------------------- the client


class DaemonUnreachable(Exception):
    """No daemon answered on the control socket (the message says why)."""


async def call(
    control_socket: Path,
    method: str,
    path: str,
    *,
    body: Any = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """One request to the daemon over its control socket: (HTTP status, decoded JSON)."""
    import aiohttp  # the client side only; the server above needs just aiohttp.web

    where = str(control_socket)
    try:
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=where),
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as session,
            session.request(method, f"http://hacluster{path}", json=body) as response,
        ):
            text = await response.text()
            status = response.status
    except aiohttp.ClientConnectorError as exc:
        err = exc.os_error
        if isinstance(err, PermissionError):
            raise DaemonUnreachable(
                f"{where}: permission denied (the control socket is mode 0600: run as its owner)"
            ) from exc
        if isinstance(err, FileNotFoundError | ConnectionRefusedError):
            raise DaemonUnreachable(
                f"no daemon answers on {where} (is `hacluster run` running?)"
            ) from exc
        raise DaemonUnreachable(f"{where}: {err.strerror or err}") from exc
    except TimeoutError as exc:
        raise DaemonUnreachable(f"{where}: no answer within {timeout:g} s") from exc
    except aiohttp.ClientError as exc:
        raise DaemonUnreachable(f"{where}: {exc}") from exc
    try:
        return status, json.loads(text)
    except ValueError:
        raise DaemonUnreachable(
            f"{where}: the answer is not JSON (HTTP {status}): {text[:200]!r}"
        ) from None
