"""Run operator scripts without a shell: path lookup, run-as user, script security, timeouts.

Shared by the trackers (``vrrp_scripts``) and notify. A script is *prepared* once, when
the configuration is built: its program is found (a bare name is looked up in PATH, as
keepalived does), the user it runs as is resolved, and with ``enable_script_security``
a script that root would run but a non-root user could modify or replace is refused
(keepalived's rule, below). It is then *run* as often as needed: in a new session (so
it leads its own process group), as its user (setgid/setgroups/setuid in the child),
with stdin/stdout/stderr on /dev/null, and killed with everything it started when it
overruns its timeout (SIGTERM to the group, then SIGKILL after a short grace).

keepalived's security rule, for a script run as root (or set-uid/set-gid root): each
component of its path, from ``/`` down to the file itself, must be owned by root and
must not be writable by a non-root group or by everyone; a directory with the sticky
bit set (like ``/tmp``) may be group- or world-writable.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import grp
import logging
import os
import pwd
import signal
import stat
import subprocess
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from healthchecks.pdeath import die_with_parent

log = logging.getLogger("hacluster.scripts")

#: How long a timed-out script's group gets between SIGTERM and SIGKILL.
KILL_GRACE = 0.5

K = TypeVar("K", bound=Hashable)


class ScriptError(ValueError):
    """A script cannot be used: not found, not executable, unknown user, or refused."""


class ScriptSecurityError(ScriptError):
    """``enable_script_security`` refuses a script that a non-root user could change."""


@dataclass(frozen=True, slots=True)
class RunAs:
    """The user and group a script runs as (set in the child before exec)."""

    user: str
    uid: int
    gid: int

    def __str__(self) -> str:
        return f"{self.user} ({self.uid}:{self.gid})"


def resolve_user(user: str, group: str | None = None) -> RunAs:
    """Look up ``user`` (and optionally ``group``, else the user's own group)."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise ScriptError(f"no such user {user!r}") from None
    gid = pw.pw_gid
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ScriptError(f"no such group {group!r}") from None
    return RunAs(user, pw.pw_uid, gid)


def resolve_named(user: str, group: str | None, user_key: str, group_key: str) -> RunAs:
    """`resolve_user`, an unknown name reported against the config key that gave it."""
    try:
        resolve_user(user)
    except ScriptError:
        raise ScriptError(f"{user_key}: no such user {user!r}") from None
    try:
        return resolve_user(user, group)
    except ScriptError:
        raise ScriptError(f"{group_key}: no such group {group!r}") from None


@dataclass(frozen=True, slots=True)
class Script:
    """A prepared script: its argv (argv[0] an absolute path) and who runs it."""

    argv: tuple[str, ...]
    run_as: RunAs | None = None  # None: the daemon's own user
    what: str = "script"  # where it comes from, for messages (e.g. "vrrp_scripts.chk")

    @property
    def path(self) -> str:
        return self.argv[0]

    def __str__(self) -> str:
        return " ".join(self.argv)


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """How one run ended: an exit code, a signal, a timeout, or a failure to start."""

    exit_code: int | None
    signal: int | None = None
    timed_out: bool = False
    error: str | None = None  # could not be started
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        if self.error is not None:
            return f"cannot run: {self.error}"
        if self.timed_out:
            return f"timed out after {self.duration:.3g}s (killed)"
        if self.signal is not None:
            return f"killed by signal {signal.Signals(self.signal).name}"
        return f"exit {self.exit_code}"


# --------------------------------------------------------------------------- preparing


def _find_program(name: str, run_as: RunAs | None, env_path: str | None) -> str:
    if "/" in name:
        return os.path.abspath(name)
    for directory in (env_path or os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and _executable(st, run_as):
            log.warning("script %r found in PATH as %s: give the full path", name, candidate)
            return os.path.abspath(candidate)
    raise ScriptError(f"{name}: not found in PATH")


def _executable(st: os.stat_result, run_as: RunAs | None) -> bool:
    uid = os.geteuid() if run_as is None else run_as.uid
    gid = os.getegid() if run_as is None else run_as.gid
    mode = st.st_mode
    if uid == 0:
        return bool(mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    if st.st_uid == uid:
        return bool(mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(mode & stat.S_IXGRP)
    return bool(mode & stat.S_IXOTH)


def _components(path: str) -> list[str]:
    """``/a/b/c`` -> ``["/", "/a", "/a/b", "/a/b/c"]``."""
    parts = [p for p in path.split("/") if p]
    out = ["/"]
    for i in range(len(parts)):
        out.append("/" + "/".join(parts[: i + 1]))
    return out


def _unsafe(st: os.stat_result) -> str | None:
    """Why a path component lets a non-root user change what runs, or None when safe."""
    mode = st.st_mode
    if st.st_uid != 0:
        return f"owned by uid {st.st_uid}, not root"
    sticky_dir = stat.S_ISDIR(mode) and bool(mode & stat.S_ISVTX)
    if sticky_dir:
        return None
    if mode & stat.S_IWOTH:
        return f"writable by everyone (mode {stat.S_IMODE(mode):04o})"
    if st.st_gid != 0 and mode & stat.S_IWGRP:
        return f"writable by group {st.st_gid} (mode {stat.S_IMODE(mode):04o})"
    return None


def security_problem(path: str, run_as: RunAs | None) -> str | None:
    """keepalived's script-security check: why ``path`` is unsafe to run, or None.

    Only scripts that run as root (uid or gid 0) or are set-uid/set-gid root need the
    protection; each path component is checked with stat (symlinks followed).
    """
    file_st = os.stat(path)
    uid = os.geteuid() if run_as is None else run_as.uid
    gid = os.getegid() if run_as is None else run_as.gid
    mode = file_st.st_mode
    setuid_root = file_st.st_uid == 0 and mode & stat.S_ISUID and mode & stat.S_IXUSR
    setgid_root = file_st.st_gid == 0 and mode & stat.S_ISGID and mode & stat.S_IXGRP
    if uid != 0 and gid != 0 and not setuid_root and not setgid_root:
        return None
    for component in _components(path):
        why = _unsafe(os.stat(component))
        if why is not None:
            return f"{component} is {why}"
    return None


def prepare(
    argv: Sequence[str],
    *,
    user: str | None = None,
    group: str | None = None,
    security: bool = False,
    what: str = "script",
    env_path: str | None = None,
) -> Script:
    """Check a script once, before it is ever run; raise ScriptError with a clear message.

    ``user`` None runs the script as the daemon's own user. With ``security`` False an
    unsafe script is only warned about (keepalived's behaviour without
    ``enable_script_security``).
    """
    if not argv or not argv[0]:
        raise ScriptError(f"{what}: empty command")
    try:
        run_as = resolve_user(user, group) if user is not None else None
    except ScriptError as exc:
        raise ScriptError(f"{what}: {exc}") from None
    if run_as is not None and os.geteuid() != 0 and run_as.uid != os.geteuid():
        raise ScriptError(f"{what}: running as {run_as.user} needs root")
    try:
        path = _find_program(argv[0], run_as, env_path or os.environ.get("PATH"))
    except ScriptError as exc:
        raise ScriptError(f"{what}: {exc}") from None
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ScriptError(f"{what}: {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ScriptError(f"{what}: {path} is not a regular file")
    if not _executable(st, run_as):
        who = run_as.user if run_as is not None else "the daemon's user"
        raise ScriptError(f"{what}: {path} is not executable by {who}")
    if run_as is not None and run_as.uid != 0:
        for directory in _components(os.path.dirname(path)):
            if not _executable(os.stat(directory), run_as):
                raise ScriptError(
                    f"{what}: {run_as.user} cannot reach {path}: {directory} is not "
                    "searchable by that user"
                )
    problem = security_problem(path, run_as)
    if problem is not None:
        who = run_as.user if run_as is not None else "root"
        message = (
            f"{what}: refusing to run {path} as {who}: {problem}; "
            "a non-root user could change what runs (make every part of the path "
            "owned by root and not writable by others, or set script_user)"
        )
        if security:
            raise ScriptSecurityError(message)
        log.warning("%s (allowed because enable_script_security is off)", message)
    return Script((path, *argv[1:]), run_as, what)


class ScriptProblems:
    """ScriptErrors gathered while preparing several scripts, to be raised as one."""

    __slots__ = ("messages", "refused")

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.refused = False  # script security refused one

    def add(self, exc: ScriptError) -> None:
        self.refused = self.refused or isinstance(exc, ScriptSecurityError)
        self.messages.append(str(exc))

    def raise_any(self) -> None:
        """One ScriptError that lists every problem (a ScriptSecurityError when script
        security refused any); nothing when there was none."""
        if self.messages:
            cls = ScriptSecurityError if self.refused else ScriptError
            raise cls("; ".join(self.messages))


def prepare_all(
    wanted: Iterable[tuple[K, Sequence[str], str | None, str]], *, security: bool
) -> dict[K, Script]:
    """Prepare (key, argv, user, what) entries, once per key; one ScriptError lists every problem.

    The error is a ScriptSecurityError when script security refused any of them.
    """
    prepared: dict[K, Script] = {}
    problems = ScriptProblems()
    for key, argv, user, what in wanted:
        if key in prepared:
            continue
        try:
            prepared[key] = prepare(argv, user=user, security=security, what=what)
        except ScriptError as exc:
            problems.add(exc)
    problems.raise_any()
    return prepared


# --------------------------------------------------------------------------- running


def _signal_group(pgid: int, signum: int) -> bool:
    """Signal a process group; False once nothing is left in it."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a member changed credentials; nothing more we may do
    return True


async def _kill_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the whole group, give it `grace`, then SIGKILL whatever is left."""
    pgid = proc.pid
    if _signal_group(pgid, signal.SIGTERM):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await proc.wait()
        # The leader may have gone on SIGTERM while children it started linger.
        _signal_group(pgid, signal.SIGKILL)
    await proc.wait()


async def run(
    script: Script,
    *,
    timeout: float,
    extra_args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    kill_grace: float = KILL_GRACE,
) -> ScriptResult:
    """Run `script` once and wait for it; never raises for the script's own failures."""
    argv = (*script.argv, *extra_args)
    creds: dict[str, object] = {}
    if script.run_as is not None and script.run_as.uid != os.geteuid():
        creds = {"user": script.run_as.uid, "group": script.run_as.gid, "extra_groups": []}
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so a timeout kills it all
            close_fds=True,
            cwd="/",
            env=dict(env) if env is not None else None,
            # A daemon killed outright takes its scripts with it, as keepalived's do.
            preexec_fn=functools.partial(die_with_parent, os.getpid()),
            **creds,  # type: ignore[arg-type]
        )
    except (OSError, subprocess.SubprocessError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return ScriptResult(None, error=f"{argv[0]}: {reason}")
    try:
        async with asyncio.timeout(timeout):
            code = await proc.wait()
    except TimeoutError:
        await _kill_group(proc, kill_grace)
        return ScriptResult(None, timed_out=True, duration=time.monotonic() - started)
    except asyncio.CancelledError:
        await asyncio.shield(_kill_group(proc, 0.0))
        raise
    duration = time.monotonic() - started
    if code < 0:
        return ScriptResult(None, signal=-code, duration=duration)
    return ScriptResult(code, duration=duration)

