"""The operator's verbs against a running director: drain, undrain, maintenance, reload,
status --watch, on the local control socket and on a remote API with a token (prefix hco)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from hacluster.lab.netns import Lab, sweep
from tests.integration.test_daemon import (
    HACLUSTER,
    RS_IPS,
    VIP,
    Rig,
    build_rig,
    instance,
    needs_root,
    virtual_server,
    wait_for,
)

PREFIX = "hco"
TOKEN = "s3cret-token"


@pytest.fixture
def rig() -> Iterator[Rig]:
    sweep(PREFIX)
    with Lab(PREFIX) as lab:
        r = build_rig(lab, reals=2, ports=(80,))
        try:
            yield r
        finally:
            if r.daemon is not None and r.daemon.running():
                r.daemon.stop(10)


def _cli(rig: Rig, *args: str, remote: bool = False) -> subprocess.CompletedProcess[str]:
    """A verb run on the director: by default on its control socket, with `remote` on
    its TCP API (from inside its namespace, where 127.0.0.1 is its own)."""
    where = ["--api", "http://127.0.0.1:9651"] if remote else [
        "--control-socket", str(rig.socket)]
    res = rig.lab.run(rig.director, [HACLUSTER, *args, *where], check=False, timeout=60)
    print(f"$ hacluster {' '.join(args)}{' (remote)' if remote else ''}\n"
          f"{res.stdout}{res.stderr}exit {res.returncode}")
    return res


def _rs(rig: Rig, address: str) -> dict[str, object]:
    (vs,) = rig.status()["virtual_servers"]
    (rs,) = [r for r in vs["real_servers"] if r["name"] == address]
    return dict(rs)


@pytest.mark.netns
@needs_root
def test_verbs_on_the_socket_and_on_a_remote_api(rig: Rig) -> None:
    rig.write_config({
        "global_defs": rig.base_globals(api_listen="127.0.0.1:9651", api_token=TOKEN),
        "vrrp_instances": {"VI_1": instance(51, [VIP])},
        "virtual_servers": [virtual_server(VIP, 80, [(RS_IPS[0], 80), (RS_IPS[1], 80)])],
    })
    rig.start_daemon()
    rig.wait_state("VI_1", "MASTER")
    rs1 = f"{RS_IPS[0]}:80"

    res = _cli(rig, "drain", f"{VIP}:80", rs1)
    assert (res.returncode, res.stdout) == (0, f"{VIP}:80/TCP {rs1}: drained (weight 0)\n")
    assert _rs(rig, rs1)["drained"] is True
    res = _cli(rig, "undrain", f"{VIP}:80/tcp", rs1)
    assert (res.returncode, res.stdout) == (0, f"{VIP}:80/TCP {rs1}: undrained "
                                               "(weight restored)\n")
    assert _rs(rig, rs1)["drained"] is False
    res = _cli(rig, "drain", f"{VIP}:81", rs1)
    assert res.returncode == 1 and "hacluster drain: " in res.stderr and "HTTP 404" in res.stderr

    res = _cli(rig, "maintenance", "VI_1", "on")
    assert (res.returncode, res.stdout) == (0, "VI_1: maintenance on (priority 1)\n")
    assert rig.instance("VI_1")["effective_priority"] == 1
    res = _cli(rig, "maintenance", "VI_1", "off")
    assert (res.returncode, res.stdout) == (0, "VI_1: maintenance off\n")
    assert rig.instance("VI_1")["effective_priority"] == 100
    res = _cli(rig, "maintenance", "VI_9", "on")
    assert res.returncode == 1 and "VI_9" in res.stderr

    # status --watch: shown again and again (here twice).
    res = _cli(rig, "status", "--watch", "0.2", "--count", "2")
    assert res.returncode == 0
    assert res.stdout.count("Every 0.2s: hacluster status") == 2
    assert res.stdout.count("VRRP instances") == 2

    # reload: what changed, or every problem and exit 1.
    res = _cli(rig, "reload")
    assert (res.returncode, res.stdout) == (0, "reloaded: no change\n")
    good = rig.config_path.read_text()
    rig.write_config(good.replace("lb_algo: rr", "lb_algo: wlc").replace(
        "priority: 100", "priority: 300"))
    res = _cli(rig, "reload")
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert lines[0] == ("hacluster reload: refused, the running configuration is kept "
                        "(1 problem):")
    assert lines[1].startswith(f"{rig.config_path}:") and "priority" in lines[1], lines
    rig.write_config(good.replace("lb_algo: rr", "lb_algo: wlc"))
    res = _cli(rig, "reload")
    assert res.returncode == 1
    assert ".lb_algo: TCP 10.77.0.100:80: scheduler 'wlc' is not available with dataplane " \
        "nftables" in res.stderr
    rig.write_config(good.replace("dataplane: nftables", "dataplane: ipvs"))
    res = _cli(rig, "reload")
    line = good.splitlines().index("  dataplane: nftables") + 1
    assert res.returncode == 1
    assert (f"{rig.config_path}:{line}: global_defs.dataplane: nftables -> ipvs needs a "
            "restart") in res.stderr.splitlines()
    rig.write_config(good)

    # The same verbs on the remote API: refused without the token, done with it.
    res = _cli(rig, "drain", f"{VIP}:80", rs1, remote=True)
    assert res.returncode == 1 and "Bearer" in res.stderr and "HTTP 401" in res.stderr
    res = _cli(rig, "drain", f"{VIP}:80", rs1, "--token", "wrong", remote=True)
    assert res.returncode == 1 and "wrong token (HTTP 403)" in res.stderr
    res = _cli(rig, "drain", f"{VIP}:80", rs1, "--token", TOKEN, remote=True)
    assert res.returncode == 0 and "drained" in res.stdout
    wait_for("drained", lambda: _rs(rig, rs1)["drained"] is True)
    res = _cli(rig, "maintenance", "VI_1", "on", "--token", TOKEN, remote=True)
    assert res.returncode == 0
    res = _cli(rig, "reload", "--token", TOKEN, remote=True)
    assert (res.returncode, res.stdout) == (0, "reloaded: no change\n")
    res = _cli(rig, "status", remote=True)  # reading needs no token
    assert res.returncode == 0 and "maintenance" in res.stdout and "drained" in res.stdout

    # Each action is logged once.
    log = rig.output()
    assert log.count(f"real server {rs1} drained") == 2  # the socket's and the remote one
    assert log.count(f"drain {rs1}") == 0
    assert log.count("maintenance on") == 2
