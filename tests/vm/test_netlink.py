"""The netlink backend against a real IPVS kernel (QEMU guest): services and destinations,
every scheduler and forwarding method, persistence, statistics after real traffic,
reconcile after hand edits with ipvsadm, the sync daemon (connections carried to a
backup director), and `hacluster ipvs list` compared line by line with the real `ipvsadm -L -n`."""

from __future__ import annotations

import time
from collections import Counter
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from hacluster.ipvs.backend import (
    AddDest,
    AddService,
    ApplyResult,
    BackendError,
    DelDest,
    DelService,
    EditDest,
    EditService,
    Op,
)
from hacluster.ipvs.model import (
    Destination,
    Forward,
    Protocol,
    Service,
    ServiceFlag,
    Stats,
    Table,
    TableStats,
    Timeouts,
)
from hacluster.ipvs.netlink import SyncDaemon, SyncState
from hacluster.lab.vm import VmError
from tests.vm.conftest import GuestLab

pytestmark = pytest.mark.vm

V6 = IPv6Address("fd00:77::1")


def tcp(lab: GuestLab, port: int, scheduler: str = "wrr", **kw: object) -> Service:
    return Service(Protocol.TCP, lab.vip, port, scheduler=scheduler, **kw)  # type: ignore[arg-type]


def dest(address: str | IPv4Address | IPv6Address, port: int = 80, **kw: object) -> Destination:
    return Destination(ip_address(address), port, **kw)  # type: ignore[arg-type]


def listing(lab: GuestLab, *flags: str) -> tuple[list[str], list[str]]:
    """(`hacluster ipvs list FLAGS`, `ipvsadm -L -n FLAGS`) as lines, read in the guest."""
    code, out, err = lab.call("cli", ["ipvs", "list", *flags])
    assert code == 0, err
    real = lab.guest.run(["ipvsadm", "-L", "-n", *flags]).stdout
    return out.splitlines(), real.splitlines()


def apply(lab: GuestLab, ops: list[Op]) -> ApplyResult:
    result: ApplyResult = lab.call("apply", ops)
    return result


def dump(lab: GuestLab) -> Table:
    table: Table = lab.call("dump")
    return table


def wait_for_conns(
    lab: GuestLab, service: Service, conns: int, timeout: float = 15.0
) -> TableStats:
    """Statistics once the service counted `conns` connections (IPVS updates its
    counters about every 2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        stats: TableStats = lab.call("stats")
        if stats.services.get(service.key, Stats()).conns >= conns:
            return stats
        assert time.monotonic() < deadline, f"counters never reached {conns}: {stats}"
        time.sleep(0.5)


def test_guest_runs_a_real_ipvs_kernel(ipvs: GuestLab) -> None:
    info = ipvs.call("info")
    assert info.version.count(".") == 2 and info.size > 0
    modules = ipvs.guest.run(["cat", "/proc/modules"]).stdout
    assert "ip_vs " in modules
    assert ipvs.guest.info["kernel"] != "" and dump(ipvs) == Table()
    # The agent carries failures back: a failed command, an exception raised in the guest.
    with pytest.raises(VmError, match="exited 1"):
        ipvs.guest.run(["false"])
    with pytest.raises(ValueError, match="module:attribute"):
        ipvs.guest.call("no-colon")
    assert ipvs.guest.running


def test_add_edit_delete_services_and_destinations(ipvs: GuestLab) -> None:
    rs1, rs2, _ = ipvs.real_servers
    web = tcp(ipvs, 80, "wlc")
    d1, d2 = dest(rs1, weight=1), dest(rs2, weight=2)
    assert apply(ipvs, [AddService(web), AddDest(web.key, d1), AddDest(web.key, d2)]).ok
    assert dump(ipvs) == Table.of([(web, [d1, d2])])

    edited = tcp(ipvs, 80, "rr", timeout=120, netmask=24)
    d1b = dest(rs1, weight=5, forward=Forward.DR, u_threshold=100, l_threshold=10)
    assert apply(ipvs, [EditService(edited), EditDest(web.key, d1b)]).ok
    assert dump(ipvs) == Table.of([(edited, [d1b, d2])])
    lines, real = listing(ipvs)
    assert lines == real
    assert f"TCP  {ipvs.vip}:80 rr persistent 120 mask 255.255.255.0" in lines

    assert apply(ipvs, [DelDest(web.key, d2.key)]).ok
    assert dump(ipvs) == Table.of([(edited, [d1b])])
    assert apply(ipvs, [DelService(web.key)]).ok
    assert dump(ipvs) == Table()


def kernel_schedulers(lab: GuestLab) -> list[str]:
    """Schedulers the guest kernel ships (its ip_vs_* modules, less helpers)."""
    ipvs_dir = "/run/hacluster-vm/kernel/lib/modules/$(uname -r)/kernel/net/netfilter/ipvs"
    out = lab.guest.run(["sh", "-c", f"ls {ipvs_dir}"]).stdout
    names = [n[len("ip_vs_") :].split(".ko")[0] for n in out.split() if n.startswith("ip_vs_")]
    return sorted(n for n in names if n != "ftp" and not n.startswith("pe_"))


def test_every_scheduler_the_kernel_offers(ipvs: GuestLab) -> None:
    schedulers = kernel_schedulers(ipvs)
    # Debian 6.1 builds all of these; keepalived's list also has twos (not built here).
    assert set(schedulers) >= {"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh"}
    assert set(schedulers) >= {"sed", "nq", "mh", "fo", "ovf"}
    rs1, rs2, _ = ipvs.real_servers
    entries = []
    for i, name in enumerate(schedulers):
        flags = ServiceFlag.NONE
        if name in ("sh", "mh"):
            flags = ServiceFlag.SCHED1 | ServiceFlag.SCHED2
        service = tcp(ipvs, 1000 + i, name, flags=flags)
        entries.append((service, [dest(rs1, weight=2), dest(rs2, weight=1)]))
    desired = Table.of(entries)
    ops, result, after = ipvs.call("reconcile_to", desired)
    assert result.ok, result.failed
    assert len(ops) == 3 * len(schedulers)
    assert after == desired
    lines, real = listing(ipvs)
    assert lines == real
    assert f"TCP  {ipvs.vip}:{1000 + schedulers.index('sh')} sh (sh-fallback,sh-port)" in lines


def test_every_forwarding_method_family_and_protocol(ipvs: GuestLab) -> None:
    rs1, rs2, rs3 = ipvs.real_servers
    desired = Table.of(
        [
            (tcp(ipvs, 80), [dest(rs1, weight=3), dest(rs2, weight=1)]),
            (tcp(ipvs, 81, "rr"), [dest(rs1, forward=Forward.DR), dest(rs3, forward=Forward.DR)]),
            (tcp(ipvs, 82, "lc"), [dest(rs2, 0, forward=Forward.TUN, u_threshold=50)]),
            (Service(Protocol.UDP, ipvs.vip, 53, scheduler="rr", flags=ServiceFlag.ONEPACKET),
             [dest(rs1, 53), dest(rs2, 5353, weight=0)]),
            (Service(Protocol.SCTP, ipvs.vip, 3868, scheduler="sh"), [dest(rs3, 3868)]),
            (Service(Protocol.TCP, V6, 443, scheduler="wlc", timeout=600, netmask=64),
             [dest("fd00:77::11", 443, forward=Forward.DR), dest("fd00:78::11", 443,
                                                                 forward=Forward.TUN)]),
            (Service(fwmark=7, family=4, scheduler="rr", timeout=60, netmask=24),
             [dest(rs1, 0, forward=Forward.DR), dest(rs2, 0, forward=Forward.TUN)]),
            (Service(fwmark=8, family=6, scheduler="wrr"), [dest("fd00:77::12", 0,
                                                                forward=Forward.DR)]),
        ]
    )  # fmt: skip
    ops, result, after = ipvs.call("reconcile_to", desired)
    assert result.ok, result.failed
    assert after == desired
    lines, real = listing(ipvs)
    assert lines == real
    forwards = {line.split()[2] for line in lines if line.startswith("  -> ") and ":" in line}
    assert {"Masq", "Route", "Tunnel"} <= forwards
    # Read back again: nothing to do.
    ops, result, after = ipvs.call("reconcile_to", desired)
    assert ops == [] and after == desired


def test_weights_follow_traffic_and_an_edit_keeps_connections(ipvs: GuestLab) -> None:
    rs1, rs2, _ = ipvs.real_servers
    web = tcp(ipvs, 80, "wrr")
    first = Table.of([(web, [dest(rs1, weight=1), dest(rs2, weight=1)])])
    assert ipvs.call("reconcile_to", first)[1].ok
    assert ipvs.call("connect_many", str(ipvs.vip), 80, 12) == Counter({"rs1": 6, "rs2": 6})
    before = wait_for_conns(ipvs, web, 12)

    second = Table.of([(web, [dest(rs1, weight=3), dest(rs2, weight=1)])])
    ops, result, after = ipvs.call("reconcile_to", second)
    assert ops == [EditDest(web.key, dest(rs1, weight=3))] and result.ok and after == second
    assert ipvs.call("connect_many", str(ipvs.vip), 80, 8) == Counter({"rs1": 6, "rs2": 2})
    stats = wait_for_conns(ipvs, web, 20)
    # The edited destination kept its counters: it was changed in place, not re-added.
    for rs, conns in ((rs1, 12), (rs2, 8)):
        key = (web.key, dest(rs).key)
        assert before.destinations[key].conns == 6
        assert stats.destinations[key].conns == conns

    drained = Table.of([(web, [dest(rs1, weight=0), dest(rs2, weight=1)])])
    assert ipvs.call("reconcile_to", drained)[1].ok
    assert ipvs.call("connect_many", str(ipvs.vip), 80, 4) == Counter({"rs2": 4})


def test_persistence_keeps_a_client_on_one_server(ipvs: GuestLab) -> None:
    servers = [dest(rs) for rs in ipvs.real_servers]
    plain, sticky = tcp(ipvs, 80, "rr"), tcp(ipvs, 81, "rr", timeout=300)
    assert ipvs.call("reconcile_to", Table.of([(plain, servers), (sticky, servers)]))[1].ok
    spread = ipvs.call("connect_many", str(ipvs.vip), 80, 9)
    assert spread == Counter({"rs1": 3, "rs2": 3, "rs3": 3})
    stuck = ipvs.call("connect_many", str(ipvs.vip), 81, 9)
    assert len(stuck) == 1 and sum(stuck.values()) == 9
    stats = wait_for_conns(ipvs, sticky, 9)
    persisted = sum(s.persistconns for (k, _), s in stats.destinations.items() if k == sticky.key)
    assert persisted == 1  # one persistence template for the one client


def test_statistics_and_listings_after_real_traffic(ipvs: GuestLab) -> None:
    rs1, rs2, rs3 = ipvs.real_servers
    web = tcp(ipvs, 80, "wrr")
    desired = Table.of([(web, [dest(rs1, weight=2), dest(rs2, weight=1), dest(rs3, weight=1)])])
    assert ipvs.call("reconcile_to", desired)[1].ok
    answers = ipvs.call("connect_many", str(ipvs.vip), 80, 40)
    assert answers == Counter({"rs1": 20, "rs2": 10, "rs3": 10})
    stats = wait_for_conns(ipvs, web, 40)
    svc = stats.services[web.key]
    assert svc.conns == 40 and svc.inpkts >= 40 * 3 and svc.outbytes > svc.outpkts * 40
    for rs, name in ((rs1, "rs1"), (rs2, "rs2"), (rs3, "rs3")):
        assert stats.destinations[(web.key, dest(rs).key)].conns == answers[name]
    time.sleep(2.5)  # let the counters settle past the last estimator tick

    lines, real = listing(ipvs)
    assert lines == real
    lines, real = listing(ipvs, "--stats", "--exact")
    assert lines == real
    assert any(line.split()[:2] == ["TCP", f"{ipvs.vip}:80"] for line in lines)
    # Rates move every 2 s; both readings must agree when they fall in one interval.
    for _ in range(5):
        lines, real = listing(ipvs, "--rate")
        if lines == real:
            break
    assert lines == real


def test_reconcile_puts_right_what_was_changed_by_hand(ipvs: GuestLab) -> None:
    rs1, rs2, rs3 = ipvs.real_servers
    web, api = tcp(ipvs, 80, "wrr"), tcp(ipvs, 81, "rr")
    desired = Table.of(
        [(web, [dest(rs1, weight=2), dest(rs2, weight=1)]), (api, [dest(rs3, 8080)])]
    )
    assert ipvs.call("reconcile_to", desired)[1].ok
    vip = str(ipvs.vip)
    for argv in (
        ["-E", "-t", f"{vip}:80", "-s", "lc"],
        ["-e", "-t", f"{vip}:80", "-r", f"{rs1}:80", "-m", "-w", "9"],
        ["-a", "-t", f"{vip}:80", "-r", f"{rs3}:80", "-m", "-w", "1"],
        ["-D", "-t", f"{vip}:81"],
        ["-A", "-t", f"{vip}:9999", "-s", "rr"],  # someone else's service
    ):
        ipvs.guest.run(["ipvsadm", *argv])
    ops, result, after = ipvs.call("reconcile_to", desired, [web.key, api.key])
    assert result.ok, result.failed
    assert Counter(type(op).__name__ for op in ops) == Counter(
        {"EditService": 1, "EditDest": 1, "DelDest": 1, "AddService": 1, "AddDest": 1}
    )
    foreign = tcp(ipvs, 9999, "rr")
    assert after.entries[foreign.key].service == foreign  # not ours: left alone
    assert Table({k: e for k, e in after.entries.items() if k != foreign.key}) == desired


def test_kernel_refusals_name_the_service_and_the_rest_still_applies(ipvs: GuestLab) -> None:
    rs1 = ipvs.real_servers[0]
    good, bad, missing = tcp(ipvs, 80), tcp(ipvs, 90, "nosuch"), tcp(ipvs, 91)
    result = apply(
        ipvs,
        [
            AddService(bad),
            AddDest(missing.key, dest(rs1)),
            DelService(missing.key),
            AddService(good),
            AddDest(good.key, dest(rs1)),
            AddDest(good.key, dest(rs1)),
            EditDest(good.key, dest("192.168.99.1")),
        ],
    )
    assert result.applied == 2
    messages = [f.message for f in result.failed]
    assert f"TCP {ipvs.vip}:90" in messages[0] and "scheduler 'nosuch'" in messages[0]
    assert f"TCP {ipvs.vip}:91" in messages[1] and "no such service" in messages[1]
    assert f"TCP {ipvs.vip}:91" in messages[2] and "no such service" in messages[2]
    assert f"{rs1}:80" in messages[3] and "already exists" in messages[3]
    assert "192.168.99.1:80" in messages[4] and "no such destination" in messages[4]
    assert dump(ipvs) == Table.of([(good, [dest(rs1)])])


def test_sync_daemon_follows_the_vrrp_role(ipvs: GuestLab) -> None:
    ipvs.guest.run(
        ["sh", "-c", "ip link show hcv-s0 >/dev/null 2>&1 || "
         "{ ip link add hcv-s0 type veth peer name hcv-s1 && ip link set hcv-s0 up && "
         "ip link set hcv-s1 up; }"]
    )  # fmt: skip
    try:
        master = SyncDaemon(SyncState.MASTER, "hcv-s0", syncid=7)
        running = ipvs.call("follow_sync", master)
        assert [(d.state, d.interface, d.syncid) for d in running] == [
            (SyncState.MASTER, "hcv-s0", 7)
        ]
        shown = ipvs.guest.run(["ipvsadm", "-L", "--daemon"]).stdout
        assert "master sync daemon (mcast=hcv-s0, syncid=7" in shown
        backup = SyncDaemon(SyncState.BACKUP, "hcv-s0", syncid=7, port=8849)
        running = ipvs.call("follow_sync", backup)
        assert [(d.state, d.interface, d.syncid, d.port) for d in running] == [
            (SyncState.BACKUP, "hcv-s0", 7, 8849)
        ]
        assert ipvs.call("follow_sync", backup) == running  # already right: no change
        with pytest.raises(BackendError, match="hcv-nosuch"):
            ipvs.call("start_sync", SyncDaemon(SyncState.MASTER, "hcv-nosuch"))
        assert ipvs.call("stop_sync", SyncState.BACKUP) is True
        assert ipvs.call("stop_sync", SyncState.BACKUP) is False
        assert ipvs.call("sync_daemons") == []
    finally:
        for state in SyncState:
            ipvs.call("stop_sync", state)


PEER_SETUP = """
set -e
ip netns add hcv-bk
ip link add hcv-m0 type veth peer name eth0 netns hcv-bk
ip addr add 192.168.80.1/24 dev hcv-m0
ip link set hcv-m0 up
ip -n hcv-bk addr add 192.168.80.2/24 dev eth0
ip -n hcv-bk link set eth0 up
ip -n hcv-bk link set lo up
ip netns exec hcv-bk ipvsadm --start-daemon backup --mcast-interface eth0 --syncid 9
"""
PEER_TEARDOWN = """
ip netns exec hcv-bk ipvsadm --stop-daemon backup
ip netns del hcv-bk
ip link del hcv-m0
true
"""


def connections(lab: GuestLab, virtual: str, *netns: str) -> set[tuple[str, str]]:
    """(client, destination) of the entries `ipvsadm -L -n -c` lists for `virtual`, in
    the guest's own namespace or the one named (earlier tests' connections linger)."""
    prefix = ["ip", "netns", "exec", *netns] if netns else []
    out = lab.guest.run([*prefix, "ipvsadm", "-L", "-n", "-c"]).stdout
    entries = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 6 and fields[0] == "TCP" and fields[4] == virtual:
            entries.add((fields[3], fields[5]))
    return entries


def test_sync_daemon_carries_connections_to_the_backup_director(ipvs: GuestLab) -> None:
    # The other director is a namespace of the guest with its own IPVS table and a backup
    # sync daemon on the far end of a veth; ours is the master: the connections made
    # through our table must appear in its table.
    ipvs.guest.run(["sh", "-c", PEER_SETUP])
    try:
        web = tcp(ipvs, 8088, "rr")  # a port of its own: no earlier test's connections
        virtual = f"{ipvs.vip}:8088"
        desired = Table.of([(web, [dest(rs) for rs in ipvs.real_servers])])
        assert ipvs.call("reconcile_to", desired)[1].ok
        running = ipvs.call("follow_sync", SyncDaemon(SyncState.MASTER, "hcv-m0", syncid=9))
        assert [(d.state, d.interface) for d in running] == [(SyncState.MASTER, "hcv-m0")]
        assert connections(ipvs, virtual, "hcv-bk") == set()
        answers = ipvs.call("connect_many", str(ipvs.vip), 8088, 6)
        assert answers == Counter({"rs1": 2, "rs2": 2, "rs3": 2})
        ours = connections(ipvs, virtual)
        assert len(ours) == 6 and {d for _, d in ours} == {
            f"{rs}:80" for rs in ipvs.real_servers
        }
        # The master sends its buffer at least every 2 s.
        deadline = time.monotonic() + 30
        while (theirs := connections(ipvs, virtual, "hcv-bk")) != ours:
            assert time.monotonic() < deadline, f"synced {theirs}, expected {ours}"
            time.sleep(0.5)
    finally:
        ipvs.call("stop_sync", SyncState.MASTER)
        ipvs.guest.run(["sh", "-c", PEER_TEARDOWN], check=False)


def test_lvs_timeouts_are_set_and_read_back(ipvs: GuestLab) -> None:
    """global_defs.lvs_timeouts through IPVS_CMD_SET_CONFIG: what ipvsadm then shows."""
    before = ipvs.call("get_timeouts")
    try:
        ipvs.call("set_timeouts", Timeouts(7200, 30, 60))
        assert ipvs.call("get_timeouts") == Timeouts(7200, 30, 60)
        shown = ipvs.guest.run(["ipvsadm", "-L", "--timeout"]).stdout
        assert "Timeout (tcp tcpfin udp): 7200 30 60" in shown, shown
        # A 0 leaves that timeout as it is (the request does not carry it).
        ipvs.call("set_timeouts", Timeouts(tcp=900))
        assert ipvs.call("get_timeouts") == Timeouts(900, 30, 60)
    finally:
        ipvs.call("set_timeouts", before)
    assert ipvs.call("get_timeouts") == before


FOLLOWER_CONFIG = """
global_defs:
  lvs_sync_daemon: {interface: hcv-s0, instance: VI_1, port: 8849}
vrrp_instances:
  VI_1: {interface: hcv-s0, virtual_router_id: 61, virtual_ipaddress: [192.168.99.1/24]}
"""


def test_lvs_sync_daemon_follows_the_instance_at_run_time(ipvs: GuestLab) -> None:
    """hacluster.lvs_sync against the kernel: backup at start, master while the instance
    is MASTER, backup again after, none at stop; ipvsadm shows the same."""
    ipvs.guest.run(
        ["sh", "-c", "ip link show hcv-s0 >/dev/null 2>&1 || "
         "{ ip link add hcv-s0 type veth peer name hcv-s1 && ip link set hcv-s0 up && "
         "ip link set hcv-s1 up; }"]
    )  # fmt: skip
    try:
        running = ipvs.call("follower_start", FOLLOWER_CONFIG)
        assert [(d.state, d.interface, d.syncid, d.port) for d in running] == [
            (SyncState.BACKUP, "hcv-s0", 61, 8849)]  # syncid: the VRID
        shown = ipvs.guest.run(["ipvsadm", "-L", "--daemon"]).stdout
        assert "backup sync daemon (mcast=hcv-s0, syncid=61" in shown, shown
        running = ipvs.call("follower_state", "VI_1", "MASTER")
        assert [(d.state, d.syncid) for d in running] == [(SyncState.MASTER, 61)]
        shown = ipvs.guest.run(["ipvsadm", "-L", "--daemon"]).stdout
        assert "master sync daemon (mcast=hcv-s0, syncid=61" in shown, shown
        assert "backup" not in shown
        running = ipvs.call("follower_state", "VI_1", "FAULT")
        assert [d.state for d in running] == [SyncState.BACKUP]
        assert ipvs.call("follower_stop") == []
    finally:
        ipvs.call("follower_stop")
        for state in SyncState:
            ipvs.call("stop_sync", state)
