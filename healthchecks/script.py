"""MISC_CHECK: runs a program without a shell; exit 0 = up, killed with its group on timeout."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import grp
import os
import pwd
import signal

from healthchecks.params import MiscCheckParams
from healthchecks.pdeath import die_with_parent
from healthchecks.result import CheckResult


def _resolve_user(user: str, group: str | None) -> tuple[int, int]:
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise ValueError(f"script_user: no such user {user!r}") from None
    if group is None:
        return pw.pw_uid, pw.pw_gid
    try:
        return pw.pw_uid, grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError(f"script_group: no such group {group!r}") from None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class MiscCheck:
    """Runs ``misc_path``; with ``misc_dynamic``, exit 2..255 is up with weight exit-2."""

    __slots__ = ("_ids", "_timeout", "params")

    def __init__(self, params: MiscCheckParams, default_timeout: float = 60.0) -> None:
        self.params = params
        self._timeout = params.misc_timeout if params.misc_timeout is not None else default_timeout
        self._ids = (
            _resolve_user(params.script_user, params.script_group)
            if params.script_user is not None
            else None
        )

    @property
    def kind(self) -> str:
        return "MISC_CHECK"

    @property
    def timeout(self) -> float:
        return self._timeout

    async def check(self) -> CheckResult:
        creds: dict[str, object] = {}
        if self._ids is not None:
            uid, gid = self._ids
            creds = {"user": uid, "group": gid, "extra_groups": []}
        try:
            # A new session makes the script the leader of its own process group,
            # so a timeout kills everything it started, not just the first process.
            proc = await asyncio.create_subprocess_exec(
                *self.params.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                cwd="/",
                preexec_fn=functools.partial(die_with_parent, os.getpid()),
                **creds,  # type: ignore[arg-type]
            )
        except OSError as exc:
            return CheckResult.down(f"cannot run {self.params.argv[0]}: {exc.strerror or exc}")
        try:
            async with asyncio.timeout(self._timeout):
                code = await proc.wait()
        except TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            return CheckResult.down(f"timeout after {self._timeout:g}s (killed)")
        except asyncio.CancelledError:
            _kill_group(proc.pid)
            await asyncio.shield(proc.wait())
            raise
        return self._judge(code)

    def _judge(self, code: int) -> CheckResult:
        if code < 0:
            return CheckResult.down(f"killed by signal {-code}")
        if code == 0:
            return CheckResult.up("exit 0")
        if self.params.misc_dynamic and code >= 2:
            return CheckResult.up(f"exit {code}", weight=code - 2)
        return CheckResult.down(f"exit {code}")

    async def close(self) -> None:
        return None
