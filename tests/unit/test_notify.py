"""Notify script preparation: keyed by argv and run-as user, errors name the key at fault."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hacluster import scripts
from hacluster.config.loader import parse_config
from hacluster.config.model import Command, Config, NotifyCommand
from hacluster.notify import prepare_commands, prepared_key, run_as

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (run scripts as nobody)")


@pytest.fixture
def script_dir() -> Iterator[Path]:
    """A directory every user can reach, with an executable script in it."""
    d = Path(tempfile.mkdtemp(prefix="hcnotify-"))
    try:
        d.chmod(0o755)
        s = d / "n.sh"
        s.write_text("#!/bin/sh\nexit 0\n")
        s.chmod(0o755)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def config(notify_keys: str, global_defs: str = "") -> Config:
    return parse_config(
        (f"global_defs:\n{global_defs}" if global_defs else "")
        + "vrrp_instances:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 1\n"
        + "    virtual_ipaddress: [10.0.0.1/24]\n"
        + "".join(f"    {line}\n" for line in notify_keys.strip().splitlines())
    )


def test_run_as_prefers_the_commands_own_user() -> None:
    plain = NotifyCommand(("/bin/n",), "/bin/n")
    own = NotifyCommand(("/bin/n",), "/bin/n", "nobody", "users")
    assert run_as(plain, "daemon") == ("daemon", None)
    assert run_as(plain, None) == (None, None)
    assert run_as(own, "daemon") == ("nobody", "users")
    assert run_as(Command(("/bin/n",), "/bin/n"), "daemon") == ("daemon", None)
    assert prepared_key(own, None) == (("/bin/n",), "nobody", "users")


@needs_root
def test_one_command_for_two_users_is_two_scripts(script_dir: Path) -> None:
    s = script_dir / "n.sh"
    cfg = config(
        f"notify_master: {{script: {s}, user: nobody}}\n"
        f"notify_backup: {{script: {s}, user: nobody, group: users}}\n"
        f"notify_fault: {s}\n"
        f"notify_stop: {{script: {s}, user: nobody}}\n"  # the same as notify_master
    )
    prepared = prepare_commands(cfg)
    argv = (str(s),)
    assert set(prepared) == {(argv, "nobody", None), (argv, "nobody", "users"), (argv, None, None)}
    nobody, users = scripts.resolve_user("nobody"), scripts.resolve_user("nobody", "users")
    assert prepared[(argv, "nobody", None)].run_as == nobody
    assert prepared[(argv, "nobody", "users")].run_as == users
    assert users.gid != nobody.gid  # else the test could not tell the group was used
    assert prepared[(argv, None, None)].run_as is None
    # Without its own user a command runs as global_defs.script_user.
    with_default = prepare_commands(config(f"notify_fault: {s}\n", "  script_user: nobody\n"))
    assert list(with_default) == [(argv, "nobody", None)]


@needs_root
def test_unknown_user_or_group_names_the_key(script_dir: Path) -> None:
    s = script_dir / "n.sh"
    cfg = config(
        f"notify_master: {{script: {s}, user: no-such-user-hc}}\n"
        f"notify_backup: {{script: {s} b, user: nobody, group: no-such-group-hc}}\n"
    )
    with pytest.raises(scripts.ScriptError) as exc:
        prepare_commands(cfg)
    assert not isinstance(exc.value, scripts.ScriptSecurityError)
    assert str(exc.value) == (
        "vrrp_instances.VI_1.notify_master.user: no such user 'no-such-user-hc'; "
        "vrrp_instances.VI_1.notify_backup.group: no such group 'no-such-group-hc'"
    )
    with pytest.raises(scripts.ScriptError, match=(
        r"^vrrp_instances\.VI_1\.notify: global_defs\.script_user: no such user 'nouser-hc'$"
    )):
        prepare_commands(config(f"notify: {s}\n", "  script_user: nouser-hc\n"))


@needs_root
def test_script_security_judges_the_user_the_command_runs_as(script_dir: Path) -> None:
    s = script_dir / "n.sh"
    s.chmod(0o777)  # anyone may change it: unsafe for root, harmless for nobody
    security = "  enable_script_security: true\n"
    as_nobody = prepare_commands(config(f"notify_master: {{script: {s}, user: nobody}}\n",
                                        security))
    assert list(as_nobody) == [((str(s),), "nobody", None)]
    with pytest.raises(scripts.ScriptSecurityError, match=(
        r"^vrrp_instances\.VI_1\.notify_master: refusing to run .*n\.sh as root"
    )):
        prepare_commands(config(f"notify_master: {s}\n", security))
    # A root group counts as root, whatever the user.
    with pytest.raises(scripts.ScriptSecurityError, match=r"refusing to run .*n\.sh as nobody"):
        prepare_commands(config(
            f"notify_master: {{script: {s}, user: nobody, group: root}}\n", security
        ))
    # global script_user root, but the command's own user is nobody: allowed.
    mixed = prepare_commands(config(
        f"notify_master: {{script: {s}, user: nobody}}\n", security + "  script_user: root\n"
    ))
    assert list(mixed) == [((str(s),), "nobody", None)]
