"""Running real scripts: exit codes, timeouts that kill the whole group, run-as user, security."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hacluster import scripts

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (setuid, chown)")


def write_script(path: Path, body: str, mode: int = 0o755) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (its parent has not reaped it yet).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A root-owned 0755 directory outside pytest's 0700 tree, so `nobody` can reach it."""
    d = Path(tempfile.mkdtemp(prefix="hct-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------- running


async def test_exit_code_and_arguments_are_passed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    s = write_script(tmp_path / "s.sh", f'echo "$@" > {out}\nexit 3\n')
    prepared = scripts.prepare([str(s), "a b", "c"], what="t")
    result = await scripts.run(prepared, timeout=5, extra_args=["d"])
    assert result.exit_code == 3 and not result.ok
    assert result.describe() == "exit 3"
    assert out.read_text() == "a b c d\n"


async def test_no_shell_is_involved(tmp_path: Path) -> None:
    out = tmp_path / "out"
    s = write_script(tmp_path / "s.sh", f'printf "%s|" "$@" > {out}\n')
    result = await scripts.run(scripts.prepare([str(s), "$HOME", ";", "*"]), timeout=5)
    assert result.ok
    assert out.read_text() == "$HOME|;|*|"


async def test_timeout_kills_the_script_and_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    s = write_script(
        tmp_path / "s.sh",
        f"sleep 60 &\necho $! >> {pids}\n"
        f"sh -c 'trap \"\" TERM; sleep 60' &\necho $! >> {pids}\n"
        f"echo $$ >> {pids}\nwait\n",
    )
    started = time.monotonic()
    result = await scripts.run(scripts.prepare([str(s)]), timeout=0.5, kill_grace=0.3)
    elapsed = time.monotonic() - started
    assert result.timed_out and not result.ok
    assert "timed out" in result.describe()
    assert elapsed < 5.0  # generous: 0.5 s timeout + 0.3 s grace
    recorded = [int(p) for p in pids.read_text().split()]
    assert len(recorded) == 3
    deadline = time.monotonic() + 2.0
    while any(alive(p) for p in recorded) and time.monotonic() < deadline:
        time.sleep(0.02)
    # Including the child that ignores SIGTERM: SIGKILL to the group after the grace.
    assert not [p for p in recorded if alive(p)]


async def test_killed_by_signal_is_reported(tmp_path: Path) -> None:
    s = write_script(tmp_path / "s.sh", "kill -9 $$\n")
    result = await scripts.run(scripts.prepare([str(s)]), timeout=5)
    assert result.signal == 9 and result.describe() == "killed by signal SIGKILL"


async def test_a_program_that_vanished_is_a_result_not_an_exception(tmp_path: Path) -> None:
    s = write_script(tmp_path / "s.sh", "exit 0\n")
    prepared = scripts.prepare([str(s)])
    s.unlink()
    result = await scripts.run(prepared, timeout=5)
    assert not result.ok and result.error is not None and "s.sh" in result.error


def test_bare_names_are_found_in_path() -> None:
    prepared = scripts.prepare(["true"], env_path="/nonexistent:/usr/bin:/bin")
    assert prepared.path in ("/usr/bin/true", "/bin/true")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "empty command"),
        (["no-such-program-hct"], "not found in PATH"),
        (["/nonexistent/hct"], "No such file"),
        (["/etc"], "not a regular file"),
        (["{tmp}/plain.txt"], "plain.txt is not executable by"),
    ],
)
def test_unusable_scripts_are_refused_with_a_clear_message(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    write_script(tmp_path / "plain.txt", "exit 0\n", mode=0o644)
    argv = [a.format(tmp=tmp_path) for a in argv]
    with pytest.raises(scripts.ScriptError, match=f"^vrrp_scripts.chk: .*{message}"):
        scripts.prepare(argv, what="vrrp_scripts.chk")


def test_unknown_user_is_refused() -> None:
    with pytest.raises(scripts.ScriptError, match=r"^chk: no such user 'hct-nobody-here'$"):
        scripts.prepare(["/bin/true"], user="hct-nobody-here", what="chk")
    with pytest.raises(scripts.ScriptError, match=r"^chk: no such group 'hct-no-group'$"):
        scripts.prepare(["/bin/true"], user="nobody", group="hct-no-group", what="chk")


# --------------------------------------------------------------------------- run as


@needs_root
async def test_script_user_nobody_really_runs_as_nobody(public_dir: Path) -> None:
    outdir = public_dir / "out"
    outdir.mkdir()
    outdir.chmod(0o777)
    s = write_script(public_dir / "whoami.sh", f"id -u > {outdir}/uid\nid -g >> {outdir}/uid\n"
                     f"id -G >> {outdir}/uid\n")
    prepared = scripts.prepare([str(s)], user="nobody", security=True)
    assert prepared.run_as is not None and prepared.run_as.user == "nobody"
    result = await scripts.run(prepared, timeout=5)
    assert result.ok, result.describe()
    uid, gid, groups = (outdir / "uid").read_text().split("\n")[:3]
    nobody = scripts.resolve_user("nobody")
    assert (int(uid), int(gid)) == (nobody.uid, nobody.gid) != (0, 0)
    assert groups.split() == [str(nobody.gid)]  # root's supplementary groups are dropped
    assert (outdir / "uid").stat().st_uid == nobody.uid


# --------------------------------------------------------------------------- security


@needs_root
def test_safe_script_is_accepted_with_security(tmp_path: Path) -> None:
    s = write_script(tmp_path / "ok.sh", "exit 0\n")
    assert scripts.security_problem(str(s), None) is None
    assert scripts.prepare([str(s)], security=True).path == str(s)


@needs_root
@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        ("file_world_writable", "ok.sh is writable by everyone (mode 0757)"),
        ("file_group_writable", "ok.sh is writable by group 65534"),
        ("file_owned_by_nobody", "ok.sh is owned by uid 65534, not root"),
        ("dir_world_writable", "/bin is writable by everyone (mode 0777)"),
        ("dir_owned_by_nobody", "/bin is owned by uid 65534, not root"),
    ],
)
def test_enable_script_security_refuses_scripts_a_non_root_user_could_change(
    public_dir: Path, setup: str, problem: str
) -> None:
    nobody = scripts.resolve_user("nobody")
    d = public_dir / "bin"
    d.mkdir(mode=0o755)
    s = write_script(d / "ok.sh", "exit 0\n")
    match setup:
        case "file_world_writable":
            s.chmod(0o757)
        case "file_group_writable":
            os.chown(s, 0, nobody.gid)
            s.chmod(0o775)
        case "file_owned_by_nobody":
            os.chown(s, nobody.uid, 0)
        case "dir_world_writable":
            d.chmod(0o777)
        case "dir_owned_by_nobody":
            os.chown(d, nobody.uid, 0)
    with pytest.raises(scripts.ScriptSecurityError) as info:
        scripts.prepare([str(s), "arg"], security=True, what="vrrp_scripts.chk_proxy")
    message = str(info.value)
    assert message.startswith(f"vrrp_scripts.chk_proxy: refusing to run {s} as root: ")
    assert problem in message
    # Without enable_script_security it is only a warning, as keepalived does.
    assert scripts.prepare([str(s)], security=False).path == str(s)
    # A script that runs as an unprivileged user needs no such protection.
    assert scripts.prepare([str(s)], user="nobody", security=True).run_as is not None


@needs_root
def test_sticky_world_writable_directory_and_root_group_write_are_safe(tmp_path: Path) -> None:
    d = tmp_path / "sticky"
    d.mkdir()
    d.chmod(0o1777 | stat.S_ISVTX)
    s = write_script(d / "ok.sh", "exit 0\n", mode=0o775)  # group root may write
    assert s.stat().st_gid == 0
    assert scripts.security_problem(str(s), None) is None


@needs_root
def test_setuid_root_script_is_checked_even_when_run_as_nobody(tmp_path: Path) -> None:
    d = tmp_path / "bin"
    d.mkdir(mode=0o777)
    d.chmod(0o777)
    s = write_script(d / "suid.sh", "exit 0\n", mode=0o4755)
    nobody = scripts.resolve_user("nobody")
    assert "is writable by everyone" in (scripts.security_problem(str(s), nobody) or "")
    s.chmod(0o755)
    assert scripts.security_problem(str(s), nobody) is None


@needs_root
def test_a_script_the_run_as_user_cannot_reach_is_refused(public_dir: Path) -> None:
    hidden = public_dir / "private"
    hidden.mkdir()
    hidden.chmod(0o700)
    s = write_script(hidden / "s.sh", "exit 0\n")
    with pytest.raises(scripts.ScriptError, match=f"nobody cannot reach {s}: {hidden} is not"):
        scripts.prepare([str(s)], user="nobody", what="notify")
    assert scripts.prepare([str(s)]).run_as is None  # the daemon itself (root) can
