"""deploy/systemd/hacluster.service under a real systemd: the QEMU guest boots with systemd
as PID 1 (hacluster.init=systemd) and runs the unit: READY, watchdog pings, reload, stop.

The unit is the repository's, hardening included; a runtime drop-in points it at this
checkout's command and a configuration in the guest's work directory, and gives the start
300 s, since Python under TCG needs about a minute to import what the daemon uses.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hacluster.lab.vm import REPO, Guest, GuestImage, VmUnavailable

pytestmark = pytest.mark.vm

HACLUSTER = Path(REPO) / ".venv" / "bin" / "hacluster"
CONFIG = """\
global_defs:
  router_id: vm
  dataplane: ipvs
vrrp_instances:
  VI_1:
    interface: hcs0
    state: MASTER
    virtual_router_id: 51
    priority: {priority}
    virtual_ipaddress: [10.78.0.100/24]
    # A notify script that sets a sysctl and writes under /run: the hardening allows both.
    notify_master: ["/bin/sh", "-c",
                    "sysctl -qw net.ipv4.ip_forward=1 && echo master >> /run/hc-notify"]
virtual_servers:
  - ip: 10.78.0.100
    port: 80
    lb_algo: rr
    real_servers:
      - {{ip: 10.78.0.11, port: 80}}
"""
DROP_IN = """\
[Unit]
ConditionFileNotEmpty=
ConditionFileNotEmpty={config}
[Service]
TimeoutStartSec=300
ExecStartPre=
ExecStartPre={hacluster} check-config -q -f {config}
ExecStart=
ExecStart={hacluster} run -f {config}
"""
SETUP = """\
set -e
ip link add hcs0 type veth peer name hcs1
ip addr add 10.78.0.1/24 dev hcs0
ip link set hcs0 up
ip link set hcs1 up
mkdir -p /run/systemd/system/hacluster.service.d
cp {unit} /run/systemd/system/hacluster.service
cp {drop_in} /run/systemd/system/hacluster.service.d/vm.conf
systemctl daemon-reload
"""


class Systemd:
    """The guest, as a systemd host."""

    def __init__(self, guest: Guest, workdir: Path) -> None:
        self.guest = guest
        self.workdir = workdir
        self.config = workdir / "hacluster.yaml"

    def sh(self, script: str, timeout: float = 60.0, check: bool = True) -> str:
        res = self.guest.run(["sh", "-c", script], timeout=timeout, check=check)
        return res.stdout + res.stderr

    def wait_for(self, script: str, text: str, timeout: float = 90.0) -> str:
        """The output of `script` once it holds `text` (TCG is slow; this is no timing test)."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.sh(script, check=False)
            if text in out or time.monotonic() > deadline:
                return out
            time.sleep(2)

    def journal(self) -> str:
        return self.sh("journalctl -u hacluster --no-pager -o short-monotonic", check=False)

    def show(self, *props: str) -> dict[str, str]:
        out = self.sh(f"systemctl show hacluster -p {','.join(props)}")
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def systemd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Systemd]:
    try:
        image = GuestImage.find()
    except VmUnavailable as exc:
        pytest.fail(f"the IPVS guest is not prepared: {exc}", pytrace=False)
    workdir = tmp_path_factory.mktemp("vm-systemd")
    guest = Guest(image, workdir=workdir, kernel_args=["hacluster.init=systemd"],
                  boot_timeout=300)
    guest.start()
    try:
        host = Systemd(guest, workdir)
        host.config.write_text(CONFIG.format(priority=150))
        drop_in = workdir / "vm.conf"
        drop_in.write_text(DROP_IN.format(config=host.config, hacluster=HACLUSTER))
        unit = REPO / "deploy" / "systemd" / "hacluster.service"
        assert host.sh("cat /proc/1/comm").strip() == "systemd"
        print(f"\nguest with systemd as PID 1 booted in {guest.boot_seconds:.1f} s")
        host.sh(SETUP.format(unit=unit, drop_in=drop_in))
        yield host
    finally:
        guest.close()


def test_unit_under_systemd_ready_watchdog_reload_stop(systemd: Systemd) -> None:
    started = time.monotonic()
    systemd.sh("systemctl start hacluster", timeout=320)  # returns once READY=1 arrived
    print(f"systemctl start returned after {time.monotonic() - started:.1f} s (TCG)")
    state = systemd.show("ActiveState", "SubState", "MainPID", "StatusText", "WatchdogUSec",
                         "WatchdogTimestampMonotonic", "NRestarts")
    print(state)
    assert (state["ActiveState"], state["SubState"]) == ("active", "running")
    assert state["WatchdogUSec"] == "10s"
    assert state["StatusText"], "the daemon sends a STATUS= line"
    pid = state["MainPID"]

    # Watchdog: past WatchdogSec the service is still the same process, and pinging.
    time.sleep(12)
    later = systemd.show("ActiveState", "MainPID", "WatchdogTimestampMonotonic", "NRestarts")
    assert later["ActiveState"] == "active" and later["MainPID"] == pid
    assert later["NRestarts"] == "0"
    assert int(later["WatchdogTimestampMonotonic"]) > int(state["WatchdogTimestampMonotonic"])

    # The instance took over; its notify script could set a sysctl and write under /run.
    addresses = systemd.wait_for("ip -br addr show hcs0", "10.78.0.100/24")
    assert "10.78.0.100/24" in addresses, systemd.journal()
    assert systemd.sh("cat /run/hc-notify").split() == ["master"]
    assert systemd.sh("sysctl -n net.ipv4.ip_forward").strip() == "1"
    assert "10.78.0.11:80" in systemd.sh("ipvsadm -L -n")

    # Reload: a good file is taken in the same process; a bad one is refused, nothing lost.
    # (ExecReload's kill may return before the daemon has read the file, Type=notify-reload
    # needs systemd 253: the good file is seen taken before the bad one is written)
    systemd.config.write_text(CONFIG.format(priority=140))
    systemd.sh("systemctl reload hacluster")
    assert "reload done" in systemd.wait_for("journalctl -u hacluster --no-pager",
                                             "reload done"), systemd.journal()
    systemd.config.write_text(CONFIG.format(priority=300))
    systemd.sh("systemctl reload hacluster")
    assert "reload refused" in systemd.wait_for("journalctl -u hacluster --no-pager",
                                                "reload refused"), systemd.journal()
    time.sleep(3)
    after = systemd.show("ActiveState", "MainPID", "NRestarts")
    assert after == {"ActiveState": "active", "MainPID": pid, "NRestarts": "0"}, \
        systemd.journal()
    assert "10.78.0.100/24" in systemd.sh("ip -br addr show hcs0")

    # Stop: SIGTERM, the master resigns and releases its VIP, the unit ends cleanly.
    systemd.sh("systemctl stop hacluster", timeout=60)
    stopped = systemd.show("ActiveState", "Result", "ExecMainStatus")
    assert stopped == {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0"}
    assert "10.78.0.100" not in systemd.sh("ip -br addr show hcs0")

    journal = systemd.journal()
    print(journal)
    assert "Started hacluster.service" in journal
    assert journal.count("Reloaded hacluster.service") == 2
    assert "priority: must be 1..255, got 300" in journal
    assert "Deactivated successfully" in journal
    # The daemon's levels reach journald (sd-daemon <N> prefixes on a journal stream).
    errors = systemd.sh("journalctl -u hacluster --no-pager -p err -o cat")
    print(errors)
    assert "reload refused" in errors
    assert "SIGTERM received" not in errors
