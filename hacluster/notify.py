"""Notify scripts (VRRP state, real server up/down, quorum), run in order, and the JSON event log.

keepalived's vocabulary and arguments:

- a VRRP instance entering MASTER, BACKUP or FAULT, or stopping, runs its
  ``notify_master`` / ``notify_backup`` / ``notify_fault`` / ``notify_stop`` command as
  written, then the generic ``notify`` command with four more arguments:
  ``INSTANCE NAME STATE PRIORITY`` (STATE is MASTER, BACKUP, FAULT or STOP);
- a sync group does the same with ``GROUP NAME STATE 0``;
- a real server going up or down runs its ``notify_up`` / ``notify_down`` command; a
  virtual server gaining or losing quorum runs ``quorum_up`` / ``quorum_down``.

Delivery: every event goes into the queue of its subject (one queue per VRRP instance,
per sync group, per virtual server with its real servers) and each queue runs one
script at a time, in the order the events happened; queues run independently of each
other. Nothing is dropped: a failing or timed-out script (killed with its process group,
see `hacluster.scripts`) is logged and the next one runs. The commands an event runs are
fixed when it is queued, so a reload does not change what an earlier event does.

Each command runs as its own ``user`` (and ``group``) when the configuration gives one
(keepalived's ``notify_master SCRIPT [username [groupname]]``), else as
``global_defs.script_user``; ``enable_script_security`` judges the user it runs as.

With ``global_defs.event_log`` every event is also appended to that file as one JSON
object per line, when it happens, with a monotonic and a wall-clock timestamp.

Every event is also handed, as an `hacluster.alerts` event, to the observers added
with `add_observer` (alert mail and notify FIFOs: `hacluster.alert_outputs`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeAlias

from hacluster import scripts, vrrp_extras
from hacluster.alerts import AlertEvent, GroupEvent, InstanceEvent, QuorumEvent, RealServerEvent
from hacluster.config.model import (
    Command,
    Config,
    NotifyCommand,
    RealServer,
    VirtualServer,
    VrrpInstance,
)
from vrrp.machine import State

log = logging.getLogger("hacluster.notify")

NotifyKind: TypeAlias = Literal["vrrp_instance", "vrrp_sync_group", "real_server", "quorum"]

#: A prepared notify script's key: its argv and the user and group it runs as, so one
#: command configured for two users is two scripts.
PreparedKey: TypeAlias = tuple[tuple[str, ...], str | None, str | None]

#: VRRP states as notify scripts name them (keepalived): INITIALIZE is reported as STOP.
VRRP_NOTIFY_STATES: dict[State, str] = {
    State.MASTER: "MASTER",
    State.BACKUP: "BACKUP",
    State.FAULT: "FAULT",
    State.INITIALIZE: "STOP",
}


@dataclass(frozen=True, slots=True)
class Job:
    """One script run an event asks for: the prepared script and its extra arguments."""

    script: scripts.Script
    extra_args: tuple[str, ...] = ()

    @property
    def argv(self) -> tuple[str, ...]:
        return (*self.script.argv, *self.extra_args)


@dataclass(frozen=True, slots=True)
class NotifyEvent:
    """Something notify scripts are told about, with the runs it asks for."""

    kind: NotifyKind
    name: str  # instance, group, "VS" (quorum) or "RS of VS" (real server)
    state: str  # MASTER BACKUP FAULT STOP (VRRP), UP DOWN (real server, quorum)
    queue: str  # the subject whose queue orders it
    priority: int | None = None
    reason: str = ""
    jobs: tuple[Job, ...] = ()
    monotonic: float = 0.0
    wall: float = 0.0
    seq: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "monotonic": round(self.monotonic, 6),
            "time": datetime.fromtimestamp(self.wall, UTC).isoformat(timespec="microseconds"),
            "kind": self.kind,
            "name": self.name,
            "state": self.state,
            "priority": self.priority,
            "reason": self.reason,
            "commands": [list(j.argv) for j in self.jobs],
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one script run of an event ended (handed to ``on_result``)."""

    event: NotifyEvent
    job: Job
    result: scripts.ScriptResult


ResultCallback: TypeAlias = Callable[[Delivery], None]


@dataclass(slots=True)
class _Queue:
    """One subject's events, oldest first; `worker` runs them while any are pending."""

    pending: collections.deque[NotifyEvent] = field(default_factory=collections.deque)
    worker: asyncio.Task[None] | None = None
    idle: asyncio.Event = field(default_factory=asyncio.Event)


def vs_label(vs: VirtualServer) -> str:
    """How notify names a virtual server (``10.0.0.1:80/TCP``, ``FWM 1/TCP``)."""
    return str(vs)


def rs_label(vs: VirtualServer, rs: RealServer) -> str:
    """How notify names a real server: ``10.0.0.11:80 of 10.0.0.1:80/TCP``."""
    return f"{rs} of {vs}"


def priority_notified(inst: VrrpInstance) -> bool:
    """Whether an instance's priority changes are notified too (keepalived's
    notify_priority_changes: its notify and notify_fifo hear `... PRIORITY` lines)."""
    return inst.notify_priority_changes


def notify_commands(config: Config) -> list[tuple[str, Command]]:
    """Every notify command in `config`, with where it is configured."""
    out: list[tuple[str, Command]] = []
    hooks = vrrp_extras.NOTIFY_HOOKS
    for inst in config.vrrp_instances.values():
        for key in hooks:
            cmd = getattr(inst, key)
            if cmd is not None:
                out.append((f"vrrp_instances.{inst.name}.{key}", cmd))
    for group in config.vrrp_sync_groups.values():
        for key in hooks:
            cmd = getattr(group, key)
            if cmd is not None:
                out.append((f"vrrp_sync_groups.{group.name}.{key}", cmd))
    for i, vs in enumerate(config.virtual_servers):
        for key in ("quorum_up", "quorum_down"):
            cmd = getattr(vs, key)
            if cmd is not None:
                out.append((f"virtual_servers[{i}].{key}", cmd))
        for j, rs in enumerate(vs.real_servers):
            for key in ("notify_up", "notify_down"):
                cmd = getattr(rs, key)
                if cmd is not None:
                    out.append((f"virtual_servers[{i}].real_servers[{j}].{key}", cmd))
    return out


def run_as(cmd: Command, script_user: str | None) -> tuple[str | None, str | None]:
    """The (user, group) `cmd` runs as: its own, else global_defs.script_user's."""
    if isinstance(cmd, NotifyCommand):
        return cmd.run_as(script_user)
    return script_user, None


def prepared_key(cmd: Command, script_user: str | None) -> PreparedKey:
    return (cmd.argv, *run_as(cmd, script_user))


def prepare_command(cmd: Command, config: Config, where: str) -> scripts.Script:
    """Prepare one notify command as its user; a ScriptError names the key at fault."""
    g = config.global_defs
    user, group = run_as(cmd, g.script_user)
    own = isinstance(cmd, NotifyCommand) and cmd.user is not None
    if user is not None:
        user_key = f"{where}.user" if own else f"{where}: global_defs.script_user"
        scripts.resolve_named(user, group, user_key, f"{where}.group")
    return scripts.prepare(
        cmd.argv, user=user, group=group, security=g.enable_script_security, what=where
    )


def prepare_commands(config: Config) -> dict[PreparedKey, scripts.Script]:
    """Prepare every notify command of `config`; one ScriptError lists every problem.

    The error is a ScriptSecurityError when script security refused any of them.
    """
    script_user = config.global_defs.script_user
    prepared: dict[PreparedKey, scripts.Script] = {}
    failed: set[PreparedKey] = set()
    problems = scripts.ScriptProblems()
    for where, cmd in notify_commands(config):
        key = prepared_key(cmd, script_user)
        if key in prepared or key in failed:
            continue
        try:
            prepared[key] = prepare_command(cmd, config, where)
        except scripts.ScriptError as exc:
            failed.add(key)
            problems.add(exc)
    problems.raise_any()
    return prepared


class Notifier:
    """Queues notify events per subject and runs their scripts one at a time, in order.

    Call the event methods from the event loop's thread; they never block. `drain()`
    waits until everything queued so far has run; `close()` drains and stops.
    """

    def __init__(
        self,
        config: Config,
        *,
        on_result: ResultCallback | None = None,
        kill_grace: float = scripts.KILL_GRACE,
    ) -> None:
        self._config = config
        self._prepared = prepare_commands(config)
        self._on_result = on_result
        self._kill_grace = kill_grace
        self._queues: dict[str, _Queue] = {}
        self._seq = 0
        self._closed = False
        self._log_warned = False
        self._observers: list[Callable[[AlertEvent], None]] = []

    def add_observer(self, observer: Callable[[AlertEvent], None]) -> None:
        """Hand every event to `observer` too (called at once; it must not block)."""
        self._observers.append(observer)

    def _observe(self, event: AlertEvent) -> None:
        for observer in self._observers:
            try:
                observer(event)
            except Exception:
                log.exception("notify: an observer failed on %s", event)

    @property
    def timeout(self) -> float:
        return self._config.global_defs.notify_timeout

    @property
    def event_log(self) -> Path | None:
        return self._config.global_defs.event_log

    def reconfigure(self, config: Config) -> None:
        """Use `config` for events from now on; raises ScriptError and keeps the old one."""
        prepared = prepare_commands(config)
        self._config = config
        self._prepared = prepared

    # ------------------------------------------------------------------ events

    def vrrp_state(
        self, instance: str, state: State | str, priority: int, reason: str = ""
    ) -> NotifyEvent:
        """A VRRP instance entered `state` (INITIALIZE or "STOP" when it stops)."""
        name = _state_name(state)
        inst = self._config.vrrp_instances.get(instance)
        jobs: list[Job] = []
        if inst is not None:
            jobs += self._jobs([_specific(inst, name)])
            jobs += self._jobs([inst.notify], ("INSTANCE", instance, name, str(priority)))
        self._observe(InstanceEvent(instance, name, priority))
        return self._submit(
            "vrrp_instance", instance, name, f"vrrp_instance {instance}", jobs, priority, reason
        )

    def vrrp_priority(self, instance: str, master: bool, priority: int) -> None:
        """notify_priority_changes: the effective priority changed; keepalived writes
        `INSTANCE "NAME" MASTER_PRIORITY|BACKUP_PRIORITY N` to the notify FIFOs, no more."""
        state = "MASTER_PRIORITY" if master else "BACKUP_PRIORITY"
        self._observe(InstanceEvent(instance, state, priority))

    def sync_group_state(self, group: str, state: State | str, reason: str = "") -> NotifyEvent:
        """A sync group entered `state`; the generic notify gets priority 0 (keepalived)."""
        name = _state_name(state)
        grp = self._config.vrrp_sync_groups.get(group)
        jobs: list[Job] = []
        if grp is not None:
            jobs += self._jobs([_specific(grp, name)])
            jobs += self._jobs([grp.notify], ("GROUP", group, name, "0"))
        self._observe(GroupEvent(group, name))
        return self._submit(
            "vrrp_sync_group", group, name, f"vrrp_sync_group {group}", jobs, 0, reason
        )

    def real_server(
        self, vs: VirtualServer, rs: RealServer, up: bool, reason: str = "",
        check: str | None = None,
    ) -> NotifyEvent:
        """A real server went up or down: its notify_up / notify_down. `check` is the
        kind of checker that decided (for the alert mail's text)."""
        cmd = rs.notify_up if up else rs.notify_down
        self._observe(RealServerEvent(vs, rs, up, check, reason))
        return self._submit(
            "real_server", rs_label(vs, rs), "UP" if up else "DOWN",
            f"virtual_server {vs_label(vs)}", self._jobs([cmd]), None, reason,
        )

    def quorum(
        self, vs: VirtualServer, up: bool, reason: str = "", *, weight_sum: int = 0,
        threshold: int = 0,
    ) -> NotifyEvent:
        """A virtual server gained or lost quorum: its quorum_up / quorum_down."""
        cmd = vs.quorum_up if up else vs.quorum_down
        self._observe(QuorumEvent(vs, up, weight_sum, threshold))
        return self._submit(
            "quorum", vs_label(vs), "UP" if up else "DOWN",
            f"virtual_server {vs_label(vs)}", self._jobs([cmd]), None, reason,
        )

    # ------------------------------------------------------------------ waiting

    async def drain(self) -> None:
        """Wait until every event queued so far has had its scripts run."""
        while True:
            busy = [q for q in self._queues.values() if q.pending or q.worker is not None]
            if not busy:
                return
            await asyncio.gather(*(q.idle.wait() for q in busy))

    async def close(self, timeout: float | None = None) -> None:
        """Run what is queued (for at most `timeout`, then kill the rest) and stop."""
        self._closed = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.drain()
        workers = [q.worker for q in self._queues.values() if q.worker is not None]
        for w in workers:
            w.cancel()
        for w in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await w
        for q in self._queues.values():
            if q.pending:
                log.warning("notify: %d event(s) of %s not run at stop", len(q.pending),
                            next(iter(q.pending)).queue)

    def pending(self) -> int:
        """Events queued and not yet finished."""
        return sum(len(q.pending) for q in self._queues.values())

    # ------------------------------------------------------------------ internals

    def _jobs(self, cmds: Iterable[Command | None], extra: Sequence[str] = ()) -> list[Job]:
        jobs: list[Job] = []
        for cmd in cmds:
            if cmd is None:
                continue
            key = prepared_key(cmd, self._config.global_defs.script_user)
            script = self._prepared.get(key)
            if script is None:  # not in the config it was prepared from
                try:
                    script = prepare_command(cmd, self._config, "notify")
                except scripts.ScriptError as exc:
                    log.error("notify: %s", exc)
                    continue
                self._prepared[key] = script
            jobs.append(Job(script, tuple(extra)))
        return jobs

    def _submit(
        self,
        kind: NotifyKind,
        name: str,
        state: str,
        queue: str,
        jobs: list[Job],
        priority: int | None,
        reason: str,
    ) -> NotifyEvent:
        self._seq += 1
        event = NotifyEvent(
            kind, name, state, queue, priority, reason, tuple(jobs),
            monotonic=time.monotonic(), wall=time.time(), seq=self._seq,
        )
        self._write_event_log(event)
        if not event.jobs:  # no script for this event: nothing to say
            return event
        log.info("[%s] notify %s%s: %s", name, state, f" ({reason})" if reason else "",
                 ", ".join(job.script.path for job in event.jobs))
        if self._closed:
            log.warning("[%s] notify %s after stop: not run", name, state)
            return event
        q = self._queues.get(queue)
        if q is None:
            q = self._queues[queue] = _Queue()
        q.pending.append(event)
        q.idle.clear()
        if q.worker is None:
            q.worker = asyncio.get_running_loop().create_task(
                self._work(q), name=f"notify-{queue}"
            )
        return event

    async def _work(self, q: _Queue) -> None:
        try:
            while q.pending:
                event = q.pending[0]
                for job in event.jobs:
                    try:
                        result = await scripts.run(
                            job.script, timeout=self.timeout, extra_args=job.extra_args,
                            kill_grace=self._kill_grace,
                        )
                    except Exception as exc:  # one bad run must not stall the queue
                        log.exception("[%s] notify %s: %s", event.name, event.state, job.argv)
                        result = scripts.ScriptResult(None, error=str(exc))
                    if not result.ok:
                        log.warning("[%s] notify %s: %s: %s", event.name, event.state,
                                    " ".join(job.argv), result.describe())
                    if self._on_result is not None:
                        try:
                            self._on_result(Delivery(event, job, result))
                        except Exception:
                            log.exception("notify: on_result failed")
                q.pending.popleft()
        finally:
            q.worker = None
            q.idle.set()

    def _write_event_log(self, event: NotifyEvent) -> None:
        path = self.event_log
        if path is None:
            return
        line = json.dumps(event.as_json(), separators=(",", ":")) + "\n"
        try:
            with path.open("a", encoding="utf-8") as f:
                f.write(line)
            self._log_warned = False
        except OSError as exc:
            if not self._log_warned:  # once per outage, not once per event
                log.error("event_log %s: %s", path, exc.strerror or exc)
                self._log_warned = True


def _state_name(state: State | str) -> str:
    if isinstance(state, State):
        return VRRP_NOTIFY_STATES[state]
    name = state.upper()
    if name == "INITIALIZE":
        return "STOP"
    if name not in ("MASTER", "BACKUP", "FAULT", "STOP"):
        raise ValueError(f"not a VRRP notify state: {state!r}")
    return name


def _specific(holder: object, state: str) -> Command | None:
    cmd = getattr(holder, f"notify_{state.lower()}", None)
    return cmd if isinstance(cmd, Command) else None
