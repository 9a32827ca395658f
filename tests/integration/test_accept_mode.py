"""accept / no_accept at run time: a non-accepting master drops traffic to its VIPs (an
nftables table of its own), an accepting one answers, the drop follows a failover and a
reload, and the table goes at stop. Two `hacluster run` in namespaces, a client pinging
and connecting from a third."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.integration.vrrp_director import VIP4, Director, PairLab, config_yaml, instance_yaml
from vrrp import vipstate

pytestmark = pytest.mark.netns

PORT = 8099
LISTENER = (
    "import socket, sys\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    f"s.bind(('0.0.0.0', {PORT})); s.listen(64)\n"
    "while True:\n"
    "    c, _ = s.accept(); c.sendall(b'hi'); c.close()\n"
)
CONNECT = (
    "import socket, sys\n"
    "try:\n"
    f"    c = socket.create_connection((sys.argv[1], {PORT}), timeout=0.5)\n"
    "    print(c.recv(2).decode())\n"
    "except OSError as exc:\n"
    "    print('failed', exc)\n"
)


# One ICMP echo over a raw socket (no ping binary needed): prints "ok" on a reply.
PING = (
    "import os, select, socket, struct, sys\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n"
    "ident = os.getpid() & 0xFFFF\n"
    "def csum(b):\n"
    "    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))\n"
    "    t = (t >> 16) + (t & 0xFFFF); t += t >> 16\n"
    "    return ~t & 0xFFFF\n"
    "body = struct.pack('!BBHHH', 8, 0, 0, ident, 1) + b'hacluster-ping!!'\n"
    "pkt = body[:2] + struct.pack('!H', csum(body)) + body[4:]\n"
    "s.sendto(pkt, (sys.argv[1], 0))\n"
    "while select.select([s], [], [], 0.5)[0]:\n"
    "    data, src = s.recvfrom(2048)\n"
    "    icmp = data[(data[0] & 15) * 4:]\n"
    "    if src[0] == sys.argv[1] and icmp[0] == 0 and icmp[4:6] == pkt[4:6]:\n"
    "        print('ok'); break\n"
)


def ping(pair: PairLab, address: str = VIP4) -> bool:
    out = pair.lab.run(pair.obs, [sys.executable, "-c", PING, address]).stdout
    return out.strip() == "ok"


def connects(pair: PairLab, address: str = VIP4) -> bool:
    out = pair.lab.run(pair.obs, [sys.executable, "-c", CONNECT, address]).stdout
    return out.strip() == "hi"


def nft_table(d: Director, name: str = "hacluster_vrrp") -> str:
    res = subprocess.run(["ip", "netns", "exec", d.ns.name, "nft", "list", "table", "inet",
                          name], capture_output=True, text=True)
    return res.stdout if res.returncode == 0 else ""


def drops_vip(d: Director) -> bool:
    return f"elements = {{ {VIP4} }}" in nft_table(d)


def wait(check: Callable[[], bool], what: str, d: Director, timeout: float = 5.0) -> None:
    d.wait_until(check, what, timeout, lambda: nft_table(d))


def director(pair: PairLab, which: str, priority: int, extra: str) -> Director:
    d = pair.director(which, "global_defs: {nftables_counters: true}\n" + config_yaml(
        instance_yaml(priority=priority, extra=extra)))
    pair.lab.start(d.ns, [sys.executable, "-c", LISTENER], log_name=f"listen-{which}")
    return d


def test_no_accept_master_drops_vip_traffic_and_follows_failover(pair: PairLab) -> None:
    a = director(pair, "a", 150, "accept: false")
    b = director(pair, "b", 100, "accept: false")
    b.start()
    b.wait_state("MASTER")
    b.wait_vip()
    wait(lambda: drops_vip(b), "VIP in the drop set", b)
    assert ping(pair, "10.9.0.2") and connects(pair, "10.9.0.2")  # its own address answers
    assert not ping(pair) and not connects(pair)  # the VIP is dropped
    assert "counter packets 0 " not in nft_table(b).split("ip daddr @vips4")[1].split("\n")[0]

    a.start()
    a.wait_state("MASTER")  # preempts b
    b.wait_state("BACKUP")
    wait(lambda: drops_vip(a), "VIP in the drop set", a)
    wait(lambda: not drops_vip(b) and "hacluster_vrrp" in nft_table(b), "empty set", b)
    assert not ping(pair) and not connects(pair)

    # A reload to accept mode: a keeps mastership and now answers on its VIP.
    a.config.write_text(a.config.read_text().replace("accept: false", "accept: true"))
    a.proc.signal(signal.SIGHUP)
    wait(lambda: not drops_vip(a), "VIP out of the drop set after reload", a)
    assert a.state() == "MASTER"
    assert ping(pair) and connects(pair)

    a.proc.signal(signal.SIGTERM)  # graceful: b takes over and drops again
    b.wait_state("MASTER")
    wait(lambda: drops_vip(b), "VIP in the drop set", b)
    wait(lambda: not a.proc.running(), "a stopped", a)
    assert nft_table(a) == ""  # the table is deleted at stop
    assert not ping(pair) and not connects(pair)


def test_accept_master_answers_and_owner_never_drops(pair: PairLab) -> None:
    a = director(pair, "a", 100, "accept: true")
    a.start()
    a.wait_state("MASTER")
    a.wait_vip()
    assert ping(pair) and connects(pair)
    assert nft_table(a) == ""  # nothing to drop: no table at all
    a.proc.signal(signal.SIGTERM)
    wait(lambda: not a.proc.running(), "a stopped", a)

    # vrrp_strict implies no_accept below priority 255; the owner accepts.
    b = director(pair, "b", 100, "strict_mode: true")
    b.start()
    b.wait_state("MASTER")
    b.wait_vip()
    wait(lambda: drops_vip(b), "VIP in the drop set (strict implies no_accept)", b)
    assert not ping(pair)


@pytest.mark.parametrize("ifindex", [False, True])
def test_a_takeover_fills_the_set_in_its_own_callback(pair: PairLab, ifindex: bool) -> None:
    """The elements are in the kernel when on_state returns (nfnetlink, no nft run)."""
    text = (f"global_defs: {{nftables_ifindex: {str(ifindex).lower()}}}\n"
            + config_yaml(instance_yaml(
                version=3, vips=("fd00:9::100/64",),
                extra='accept: false\nvirtual_ipaddress_excluded: ["10.9.0.100/24", '
                      '"fe80::100/64"]')))
    res = pair.lab.run(pair.a_ns, [sys.executable, "-m",
                                   "tests.integration.accept_netlink_probe"], input=text)
    listed = res.stdout
    assert "elements = { 10.9.0.100 }" in listed, res.stdout + res.stderr
    assert "elements = { fd00:9::100 }" in listed, listed
    link = 'fe80::100 . "eth0"' if not ifindex else "fe80::100 . "
    assert link in listed.split("set vips6_ll")[1], listed
    assert "refused" not in res.stderr, res.stderr


def _killed_no_accept_master(pair: PairLab, mode: tuple[str, ...]) -> Director:
    """Director a as a no_accept MASTER, then crashed: its table and VIP stay behind."""
    a = director(pair, "a", 150, "accept: false")
    a.start(*mode)
    a.wait_state("MASTER")
    a.wait_vip()
    wait(lambda: drops_vip(a), "VIP in the drop set", a)
    files = list(a.state_dir.glob("vips-*.json"))
    assert len(files) == 1 and vipstate.read_tables(files[0]) == [
        vipstate.RecordedTable("inet", "hacluster_vrrp")]
    a.proc.kill()  # the whole group frozen, then SIGKILL: nothing cleans up
    assert drops_vip(a) and a.has_vip()
    return a


@pytest.mark.parametrize(("then", "mode"), [
    ("accept", ()), ("renamed", ()), ("accept", ("--single-process",))])
def test_a_crashed_runs_table_goes_at_the_next_start(pair: PairLab, then: str,
                                                     mode: tuple[str, ...]) -> None:
    # Restarted with accept (no table wanted), or still no_accept under another table
    # name: either way the old table must not keep dropping traffic to the VIP.
    a = _killed_no_accept_master(pair, mode)
    text = a.config.read_text()
    if then == "accept":
        a.config.write_text(text.replace("accept: false", "accept: true"))
    else:
        a.config.write_text(text.replace("nftables_counters: true",
                                         "nftables_counters: true, nftables: hc_other"))
    a.start(*mode)
    a.wait_state("MASTER")
    a.wait_log("removed the no_accept nftables table a crashed run left behind")
    out = a.output()
    assert out.index("removed the no_accept nftables table") < out.index("INITIALIZE -> BACKUP")
    line = out.split("removed the no_accept")[1].splitlines()[0]
    assert "table inet hacluster_vrrp" in line
    print(f"\nleftover table deleted: {line.split('(')[1].split(')')[0]}; "
          f"load {os.getloadavg()[0]:.2f}")
    assert nft_table(a) == ""
    files = list(a.state_dir.glob("vips-*.json"))
    if then == "accept":
        wait(lambda: ping(pair) and connects(pair), "the VIP answers", a)
        assert all(vipstate.read_tables(f) == [] for f in files)
    else:
        wait(lambda: f"elements = {{ {VIP4} }}" in nft_table(a, "hc_other"),
             "VIP in the new table's drop set", a)
        assert not ping(pair) and not connects(pair)
        assert [vipstate.read_tables(f) for f in files] == [
            [vipstate.RecordedTable("inet", "hc_other")]]
    a.proc.signal(signal.SIGTERM)
    wait(lambda: not a.proc.running(), "a stopped", a)
    assert nft_table(a, "hc_other") == ""
    assert all(vipstate.read_tables(f) == [] for f in files)  # deleted at stop: forgotten
