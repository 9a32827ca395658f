"""The balancer role: policy, reconcile, the dataplane and the health checks in a process.

The supervisor forks it (after `gc.freeze()`, so the config it loaded stays shared)
once the file is accepted; the process runs a `hacluster.balancer.Balancer`, whose
check workers report to it directly over their socketpairs, and answers the
supervisor over a `roles.channel` socketpair: `ready`, `ping`, `reconfigure` (the new
config), `drain`, `ipvs`, `recent_ipvs`, `summary`, `status` (as a dict),
`snapshot` (the load balancer's part of `GET /v1/status` as bytes, built in slices
here and relayed as it is), `virtual_server`, `metrics` (its exposition text, bytes),
`stop`. It tells the supervisor, unasked, each real server's checks' states as they
change (`health`) and each real server and quorum notification (`notify_rs`,
`notify_quorum`: the supervisor runs the scripts, FIFOs and mail, in order).

A balancer that dies (or stops answering its heartbeat: it is killed) is started
again with backoff, logged and counted in `hacluster_role_restarts_total{role=
"balancer"}`, and is handed the checks' states its predecessor reported, so a server
that was down stays out and one with `alpha` that had come up stays in. It reads the
dataplane back and reconciles: a table that matches is not touched. PR_SET_PDEATHSIG
(SIGTERM): a killed supervisor makes it stop gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hacluster.apitypes import UnknownRealServer, UnknownVirtualServer
from hacluster.config.model import Config, RealServer, VirtualServer
from hacluster.roles.channel import RoleError, RoleGone, send_blob, send_event, serve
from hacluster.roles.interface import Outcome, RoleFailed
from hacluster.roles.process import RoleProcess, begin_child
from hacluster.startuptrace import mark

if TYPE_CHECKING:
    from hacluster.balancer import Handed
    from hacluster.notify import Notifier

log = logging.getLogger("hacluster.roles")

#: Seconds between two heartbeats, and how long one may go unanswered before the
#: balancer counts as hung and is replaced. A late answer is progress, not a hang: a
#: ping is waited for up to `HUNG_AFTER` (a reconcile of a large table, or a loaded or
#: emulated machine, where Python runs tens of times slower, keeps the loop busy a
#: while), so only a balancer that answers nothing at all for that long is replaced.
#: Restarts back off as `roles.process.BACKOFF` says.
HEARTBEAT = 1.0
HUNG_AFTER = 30.0
#: A status part handed over longer ago than this is not shown: one is asked for (as
#: `StatusSnapshots` does with its own, `wait_after`; a busy balancer builds slower).
STATUS_WAIT_AFTER = 10.0
#: How long the latest part is kept to be shown, marked stale with its age, while the
#: balancer does not answer in time (busy: a loaded or emulated machine) or restarts.
STATUS_KEEP = 300.0
#: How long a status request waits for the balancer's part when it has none handed over
#: recently: within the 10 s a client such as `hacluster status` waits by default. A part
#: that takes longer to build is handed over when built, for the next request.
STATUS_TIMEOUT = 8.0
#: How often a status request tells the balancer that somebody still asks.
STATUS_WARM_EVERY = 5.0

Journal = dict[tuple[str, str], "Handed"]
#: The checks' states of the journal's entries, each combination kept once.
_UPS: dict[tuple[bool, ...], tuple[bool, ...]] = {}


class BalancerFailed(RoleFailed):
    """The balancer could not start its configuration (the message says why)."""


# --------------------------------------------------------------------------- child side


class _NotifyRelay:
    """Real server and quorum notifications, sent to the supervisor as names."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    def real_server(self, vs: Any, rs: Any, up: bool, reason: str = "",
                    check: str | None = None) -> None:
        send_event(self._writer, "notify_rs", str(vs), str(rs), up, reason, check)

    def quorum(self, vs: Any, up: bool, reason: str = "", *, weight_sum: int = 0,
               threshold: int = 0) -> None:
        send_event(self._writer, "notify_quorum", str(vs), up, reason, weight_sum, threshold)


def notify(notifier: Notifier, config: Config, kind: str, args: tuple[Any, ...]) -> None:
    """Carry out a notification the balancer sent (`_NotifyRelay`) with `notifier`, the
    servers named looked up in `config` (one that a reload removed meanwhile: dropped)."""
    match kind, args:
        case "notify_rs", (str() as vs_name, str() as rs_name, bool() as up,
                           str() as reason, check):
            found = _find(config, vs_name, rs_name)
            if found is not None and found[1] is not None:
                notifier.real_server(found[0], found[1], up, reason,
                                     None if check is None else str(check))
        case "notify_quorum", (str() as vs_name, bool() as up, str() as reason,
                               int() as weight_sum, int() as threshold):
            found = _find(config, vs_name, None)
            if found is not None:
                notifier.quorum(found[0], up, reason, weight_sum=weight_sum,
                                threshold=threshold)


def _find(config: Config, vs_name: str,
          rs_name: str | None) -> tuple[VirtualServer, RealServer | None] | None:
    for vs in config.virtual_servers:
        if str(vs) == vs_name:
            if rs_name is None:
                return vs, None
            for rs in vs.real_servers:
                if str(rs) == rs_name:
                    return vs, rs
            return None
    return None


def _child(sock: socket.socket, parent: int, config: Config, handed: Journal) -> int:
    """The role's process, from fork to exit (never returns into the parent's code)."""
    begin_child(parent, "hc-balancer")
    mark("balancer: forked")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    try:
        return asyncio.run(_serve(sock, config, handed))
    except KeyboardInterrupt:
        return 0
    except Exception:
        log.exception("the balancer failed")
        return 1


async def _serve(sock: socket.socket, config: Config, handed: Journal) -> int:
    from hacluster import __version__
    from hacluster.balancer import Balancer, BalancerError
    from hacluster.metrics import Metrics

    mark("balancer: imported")
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    metrics = Metrics(version=__version__, process=False, vrrp=False, base=False)
    stop = asyncio.Event()
    flush: list[bool | None] = [None]

    def on_health(vs: str, rs: str, state: Handed | None) -> None:
        send_event(writer, "health", vs, rs,
                   None if state is None else (list(state.ups), state.reason))

    balancer = Balancer(config, metrics=metrics, notifier=_NotifyRelay(writer),  # type: ignore[arg-type]
                        handed=handed, on_health=on_health)
    # Each status part built goes to the supervisor as soon as it is (only while
    # somebody asks: see StatusSnapshots.keep_warm), so a request there is answered
    # from its copy without waiting for this loop.
    balancer.on_status = lambda data: send_blob(writer, "status", data)
    ready: asyncio.Future[tuple[str, Any]] = loop.create_future()

    async def handle(method: str, args: tuple[Any, ...]) -> Any:
        match method:
            case "ready":
                return await asyncio.shield(ready)
            case "ping":
                return "pong"
            case "reconfigure":
                (new,) = args
                if not isinstance(new, Config):
                    raise TypeError("reconfigure takes a Config")
                ok, why = await balancer.reconfigure(new)
                return ("ok", "") if ok else ("refused", why)
            case "drain":
                vs, rs, on = args
                try:
                    await balancer.drain(str(vs), str(rs), bool(on))
                except UnknownRealServer as exc:
                    return ("unknown_rs", exc.virtual_server, exc.name)
                except UnknownVirtualServer as exc:
                    return ("unknown_vs", exc.name)
                return ("ok",)
            case "virtual_server":
                try:
                    return ("ok", await balancer.virtual_server(str(args[0])))
                except UnknownVirtualServer as exc:
                    return ("unknown_vs", exc.name)
            case "ipvs":
                return await balancer.ipvs()
            case "recent_ipvs":
                return await balancer.recent_ipvs()
            case "summary":
                return {"virtual_servers": balancer.summary(),
                        "dataplane_error": balancer.dataplane_error}
            case "status":
                return await balancer.status(table=bool(args[0]))
            case "snapshot":
                return await balancer.snapshot()
            case "prepare_status":
                balancer.prepare_status()
                return None
            case "keep_status_warm":
                balancer.keep_status_warm()
                return None
            case "metrics":
                text, _ = await metrics.render_async(str(args[0]) if args[0] else None)
                return text.removesuffix(b"# EOF\n")
            case "stop":
                flush[0] = None if args[0] is None else bool(args[0])
                stop.set()
                return None
        raise ValueError(f"unknown request {method!r}")

    server = loop.create_task(serve(reader, writer, handle))
    server.add_done_callback(lambda _: stop.set())  # the supervisor is gone
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    started = False
    try:
        await balancer.prepare()
        mark("balancer: prepared")
        await balancer.start()
        mark("balancer: started")
        started = True
        # Ready once the check workers run too: the supervisor's READY waits for every
        # role (the first reconcile, from the starting states, did not wait for them).
        await balancer.checks_running()
        from healthchecks.gcsettle import settle

        settle()
        ready.set_result(("ok", os.getpid()))
    except BalancerError as exc:
        ready.set_result(("error", str(exc)))
    await stop.wait()
    if started:
        await balancer.stop(flush[0])
    else:
        await balancer.close()
    with contextlib.suppress(Exception):
        await writer.drain()
    server.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await server
    writer.close()
    return 0


# --------------------------------------------------------------------------- supervisor side


class BalancerRole(RoleProcess):
    """The supervisor's handle on the balancer: fork, ask, heartbeat, restart.

    Offers what `hacluster.balancer.Balancer` does (the roots and the API use either:
    the role interface of `hacluster.roles.interface`, and what the API reads), each
    call a request to the process."""

    label = "the balancer"

    def __init__(self, config: Config, *,
                 on_restart: Callable[[], None] | None = None,
                 on_event: Callable[[str, tuple[Any, ...]], None] | None = None) -> None:
        super().__init__(on_restart, on_event)
        self.config = config
        #: Each real server's checks' states as the balancer last said (handed over).
        self.journal: Journal = {}
        self._status: tuple[float, bytes] | None = None  # (when it came, the part)
        self._last_part: tuple[float, bytes] | None = None  # the same, kept to show stale
        self._warmed = -1e9

    # -- lifecycle -------------------------------------------------------------------

    def fork(self) -> None:
        """Start the process with the current config and journal (it starts at once);
        the one `prefork` started for this same config is taken instead, if any."""
        global _preforked
        early, _preforked = _preforked, None
        if early is not None and early.config is self.config and not self.journal:
            self.pid, self._sock, self._started_at = early.pid, early._sock, early._started_at
            return
        if early is not None:
            early.abandon()
        config, journal = self.config, dict(self.journal)
        self._fork(lambda sock, parent: _child(sock, parent, config, journal))

    def abandon(self) -> None:
        """A process forked but never started: killed and reaped."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._kill()
        self._reap(block=True)

    async def start(self) -> None:
        """Fork (unless forked already) and wait until the checks run and the dataplane
        is reconciled; BalancerFailed with the reason when it cannot run the config."""
        if self.pid is None:
            self.fork()
        await self._connect()
        await self._wait_ready()
        self._supervise_from_now()

    async def prepare(self) -> None:
        """Nothing to prepare here: the process does it (see `start`)."""

    async def _wait_ready(self) -> None:
        assert self._channel is not None
        try:
            answer = await self._channel.call("ready", timeout=None)
        except (RoleGone, RoleError) as exc:
            self._reap(block=True)
            raise BalancerFailed(f"the balancer exited while starting ({exc})") from None
        match answer:
            case ("error", str() as message):
                await self.stop()
                raise BalancerFailed(message)
        self._last_answer = time.monotonic()
        self._ready.set()

    def _event(self, kind: str, args: tuple[Any, ...]) -> None:
        if kind == "status" and args and isinstance(args[0], bytes):
            self._status = self._last_part = (time.monotonic(), args[0])
            return
        if kind == "health":
            vs, rs, state = args
            if state is None:
                self.journal.pop((str(vs), str(rs)), None)
            else:
                from hacluster.balancer import Handed

                ups, reason = state
                # 10,000 entries whose virtual server, states and reason are mostly the
                # same few: one object each, not one per entry as decoded.
                flags = tuple(bool(u) for u in ups)
                self.journal[(sys.intern(str(vs)), str(rs))] = Handed(
                    _UPS.setdefault(flags, flags), sys.intern(str(reason)))
            return
        super()._event(kind, args)

    async def stop(self, flush: bool | None = None, timeout: float = 30.0) -> None:
        """Ask the balancer to stop (flushing as `lvs_flush_on_stop` or `flush` says)
        and wait for it to exit."""
        await self._stop(flush, timeout=timeout)

    async def close(self) -> None:
        """The process owns the dataplane: nothing to close here."""

    # -- supervision -------------------------------------------------------------------

    async def _restarted(self) -> bool:
        self.fork()
        await self._connect()
        try:
            await self._wait_ready()
        except BalancerFailed as exc:
            log.error("the balancer could not start again: %s", exc)
            return False
        log.info("the balancer runs again (pid %s), handed %d real server state(s)",
                 self.pid, len(self.journal))
        return True

    def _heartbeat_period(self) -> float:
        return HEARTBEAT

    async def _beat(self) -> None:
        status, last = self._status, self._last_part
        if status is not None and time.monotonic() - status[0] > STATUS_WAIT_AFTER:
            self._status = None  # not shown as current any more
        if last is not None and time.monotonic() - last[0] > STATUS_KEEP:
            self._last_part = None  # not shown at all any more: its megabytes need not stay
        channel = self._channel
        if channel is None or not self._ready.is_set():
            self._last_answer = time.monotonic()
            return
        with contextlib.suppress(Exception):
            # Waited for until it is overdue: an answer however late shows progress.
            left = self._last_answer + HUNG_AFTER - time.monotonic()
            await channel.call("ping", timeout=max(left, HEARTBEAT))
            self._last_answer = time.monotonic()
        silent = time.monotonic() - self._last_answer
        if silent > HUNG_AFTER and self.pid is not None and self._ready.is_set():
            log.error("the balancer (pid %d) has not answered for %.1f s: replacing it",
                      self.pid, silent)
            self._kill()
            self._last_answer = time.monotonic()

    # -- requests ------------------------------------------------------------------------

    async def _call(self, method: str, *args: Any, timeout: float | None = 10.0) -> Any:
        if self._channel is None or not self._ready.is_set():
            raise RoleGone(method)
        return await self._channel.call(method, *args, timeout=timeout)

    async def reconfigure(self, config: Config) -> Outcome:
        """Have the balancer switch to `config`; (False, why) keeps the running one."""
        try:
            answer = await self._call("reconfigure", config, timeout=120)
        except (RoleGone, RoleError, TimeoutError) as exc:
            return False, f"the balancer did not take the reload: {exc}"
        if answer[0] != "ok":
            return False, str(answer[1])
        self.config = config
        self.changed()
        return True, ""

    async def drain(self, virtual_server: str, real_server: str, on: bool) -> None:
        answer = await self._call("drain", virtual_server, real_server, on)
        self.changed()
        _raise_unknown(answer)

    async def virtual_server(self, name: str) -> dict[str, Any]:
        answer = await self._call("virtual_server", name)
        _raise_unknown(answer)
        return dict(answer[1])

    async def ipvs(self) -> dict[str, Any]:
        return dict(await self._call("ipvs", timeout=60))

    async def recent_ipvs(self) -> dict[str, Any]:
        return dict(await self._call("recent_ipvs", timeout=60))

    async def summary_of(self) -> dict[str, Any]:
        """Each virtual server's quorum and real servers up, and the dataplane's error
        (or, when the balancer does not answer, `missing`: why)."""
        try:
            return dict(await self._call("summary"))
        except (RoleGone, RoleError, TimeoutError) as exc:
            return {"virtual_servers": [], "dataplane_error": None,
                    "missing": {"reason": self._why_missing(exc), "age_seconds": None}}

    async def status(self, *, table: bool = True) -> dict[str, Any] | None:
        try:
            value = await self._call("status", table, timeout=30)
        except (RoleGone, RoleError, TimeoutError):
            return None
        return value if isinstance(value, dict) else None

    async def snapshot(self) -> bytes:
        """The balancer's part of the status (`Balancer.encode_part`): the latest it
        handed over, at once, unless that is older than `STATUS_WAIT_AFTER` or a change
        made since (then asked for, and waited for)."""
        now = time.monotonic()
        latest = self._status
        if now - self._warmed >= STATUS_WARM_EVERY:
            # Keep it building (and handing over) while somebody asks.
            self._warmed = now
            self._tell("keep_status_warm")
        if latest is not None and now - latest[0] <= STATUS_WAIT_AFTER:
            return latest[1]
        try:
            value = await self._call("snapshot", timeout=STATUS_TIMEOUT)
        except (RoleGone, RoleError, TimeoutError) as exc:
            value = self._why_missing(exc)
        if isinstance(value, bytes):
            self._last_part = (time.monotonic(), value)
            return value
        reason = value if isinstance(value, str) else "the balancer gave no status"
        kept = self._last_part
        if kept is None:
            head = {"built_at": None, "table_read_at": None, "dataplane_error": None,
                    "counters": {}, "missing": {"reason": reason, "age_seconds": None}}
            return json.dumps(head).encode() + b'\n"virtual_servers": [], "ipvs": []'
        return stale_part(kept[1], reason, time.monotonic() - kept[0])

    def _why_missing(self, exc: Exception) -> str:
        """Why the balancer's part could not be had now, as `hacluster status` says it."""
        if isinstance(exc, TimeoutError):
            return f"the balancer did not answer within {STATUS_TIMEOUT:g} s (busy)"
        if isinstance(exc, RoleError):
            return f"the balancer could not build its status: {exc}"
        if self.restarts:
            return f"the balancer is restarting (restart {self.restarts})"
        return "the balancer is starting"

    def prepare_status(self) -> None:
        """Have the first status part built (the API is up): one, not more."""
        self._tell("prepare_status")

    def _tell(self, method: str) -> None:
        """Ask the balancer for `method`, not waiting for its answer."""
        channel = self._channel
        if channel is not None and self._ready.is_set():
            task = asyncio.get_running_loop().create_task(self._ask_quietly(method))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _ask_quietly(self, method: str) -> None:
        with contextlib.suppress(Exception):
            await self._call(method)

    def changed(self) -> None:
        """A change through the API or a reload: the next status is asked for (the
        balancer itself builds it after the change)."""
        self._status = None

    async def metrics_text(self, accept: str | None) -> bytes:
        """The balancer's metric families as exposition text ("" while it restarts)."""
        try:
            value = await self._call("metrics", accept or "", timeout=10)
        except (RoleGone, RoleError, TimeoutError):
            return b""
        return value if isinstance(value, bytes) else b""


_preforked: BalancerRole | None = None


def prefork(config: Config) -> None:
    """Fork the balancer of `config` now (nothing without virtual servers): `hacluster
    run` does so the moment the file is accepted and the VRRP role released, so that the
    balancer imports, opens its dataplane and plans its checks while this process goes
    on importing and building the rest (seconds on a slow machine: the VIPs came that
    much before the IPVS table). The supervisor's `BalancerRole(config).fork()` takes
    it over; it is killed if that never comes (the supervisor exits: it is its parent)."""
    global _preforked
    if config.virtual_servers and _preforked is None:
        role = BalancerRole(config)
        role.fork()
        _preforked = role


def stale_part(part: bytes, reason: str, age: float) -> bytes:
    """A status part (`Balancer.encode_part`) shown although it is `age` seconds old,
    marked so in its head (`missing`: why a fresh one is not there)."""
    newline = part.index(b"\n")
    head = json.loads(part[:newline])
    head["missing"] = {"reason": reason, "age_seconds": round(age, 3)}
    return json.dumps(head).encode() + memoryview(part)[newline:].tobytes()


def _raise_unknown(answer: Any) -> None:
    match answer:
        case ("unknown_vs", str() as name):
            raise UnknownVirtualServer(name)
        case ("unknown_rs", str() as vs, str() as rs):
            raise UnknownRealServer(vs, rs)


__all__ = ["BalancerFailed", "BalancerRole", "prefork"]
