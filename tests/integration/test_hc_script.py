"""MISC_CHECK: real programs, exit codes, misc_dynamic, timeouts that kill the whole group."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import pytest

from healthchecks import MiscCheckParams, make_checker

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="script_user needs root")


def script(tmp_path: Path, body: str, name: str = "probe.sh") -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def alive(pid: int) -> bool:
    """Running or stopped, but not gone and not a zombie (a zombie is dead, just unreaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize(
    ("exit_code", "dynamic", "ok", "reason", "weight"),
    [
        (0, False, True, "exit 0", None),
        (1, False, False, "exit 1", None),
        (7, False, False, "exit 7", None),
        (0, True, True, "exit 0", None),  # success, weight unchanged
        (1, True, False, "exit 1", None),
        (2, True, True, "exit 2", 0),
        (12, True, True, "exit 12", 10),
        (255, True, True, "exit 255", 253),
    ],
)
async def test_exit_codes(
    tmp_path: Path, exit_code: int, dynamic: bool, ok: bool, reason: str, weight: int | None
) -> None:
    path = script(tmp_path, f"exit {exit_code}")
    checker = make_checker(MiscCheckParams(path, misc_timeout=10, misc_dynamic=dynamic))
    result = await checker.check()
    assert (result.ok, result.reason, result.weight) == (ok, reason, weight)


async def test_arguments_are_passed_without_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "args"
    path = script(tmp_path, f'printf "%s|" "$@" > {out}; exit 0')
    result = await make_checker(
        MiscCheckParams(f"{path} 10.0.0.1 'two words' $HOME ';' 'x;touch {tmp_path}/pwned'",
                        misc_timeout=10)
    ).check()
    assert result.ok
    assert out.read_text() == f"10.0.0.1|two words|$HOME|;|x;touch {tmp_path}/pwned|"
    assert not (tmp_path / "pwned").exists()


async def test_a_hanging_script_and_its_child_are_killed(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    path = script(
        tmp_path,
        f"sleep 60 &\necho $$ $! > {pids}\nwait",
    )
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await make_checker(MiscCheckParams(path, misc_timeout=0.3)).check()
    elapsed = loop.time() - start
    assert (result.ok, result.reason) == (False, "timeout after 0.3s (killed)")
    assert elapsed < 5
    shell_pid, child_pid = map(int, pids.read_text().split())
    deadline = time.monotonic() + 2
    while (alive(shell_pid) or alive(child_pid)) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert not alive(shell_pid) and not alive(child_pid)


async def test_a_cancelled_check_kills_the_script(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    path = script(tmp_path, f"echo $$ > {pids}\nexec sleep 60")
    task = asyncio.create_task(make_checker(MiscCheckParams(path, misc_timeout=30)).check())
    while not pids.exists() or not pids.read_text().strip():
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int(pids.read_text())
    deadline = time.monotonic() + 2
    while alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert not alive(pid)


async def test_a_missing_program_is_down_with_a_reason(tmp_path: Path) -> None:
    result = await make_checker(MiscCheckParams(str(tmp_path / "nope"), misc_timeout=10)).check()
    assert not result.ok and result.reason.startswith("cannot run ")
    assert "No such file" in result.reason


async def test_a_script_killed_by_a_signal_is_down(tmp_path: Path) -> None:
    path = script(tmp_path, "kill -TERM $$")
    result = await make_checker(MiscCheckParams(path, misc_timeout=10)).check()
    assert (result.ok, result.reason) == (False, "killed by signal 15")


@needs_root
async def test_script_user_runs_the_program_as_that_user() -> None:
    # nobody cannot read root's temp dirs; an inline program needs no file.
    params = MiscCheckParams(
        "/bin/sh -c 'test \"$(id -u)\" = 65534 && test \"$(id -g)\" = 65534'",
        misc_timeout=10, script_user="nobody",
    )
    assert (await make_checker(params).check()).ok
    as_root = MiscCheckParams("/bin/sh -c 'test \"$(id -u)\" = 65534'", misc_timeout=10)
    assert (await make_checker(as_root).check()).reason == "exit 1"


def test_unknown_script_user_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no such user 'no-such-user-hc'"):
        make_checker(MiscCheckParams("/bin/true", script_user="no-such-user-hc"))
    with pytest.raises(ValueError, match="no such group"):
        make_checker(MiscCheckParams("/bin/true", script_user="nobody",
                                     script_group="no-such-group-hc"))
