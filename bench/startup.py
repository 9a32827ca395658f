"""Start-up benchmark: exec of `hacluster run` to its first VRRP advert on the wire; prints figures.

Two namespaces joined by a veth: the director runs `hacluster run` in one with an
address owner instance (priority 255, so the first advert goes out the moment the
instance runs); a raw IP-protocol-112 socket in the other timestamps adverts in the
kernel (SO_TIMESTAMPNS, CLOCK_REALTIME), compared with the wall-clock time taken just
before the exec. Run with a VRRP-only configuration and with N real servers under
TCP_CHECK in the same file. Nothing is asserted; run as root:

    .venv/bin/python bench/startup.py [--runs 5] [--servers 5000]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import socket
import statistics
import struct
import sys
import time
from pathlib import Path

from hacluster.lab.netns import Lab, Netns

SO_TIMESTAMPNS = 35
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")
HACLUSTER = str(Path(sys.executable).with_name("hacluster"))


def config(servers: int, sock: Path) -> str:
    lines = [
        "global_defs:",
        "  dataplane: nftables",
        f"  control_socket: {sock}",
        "vrrp_instances:",
        "  VI_1:",
        "    interface: d0",
        "    virtual_router_id: 51",
        "    priority: 255",
        "    advert_int: 1",
        "    virtual_ipaddress: [10.83.0.1/32]",
    ]
    if servers:
        lines += ["virtual_servers:", "  - ip: 10.83.0.100", "    port: 80",
                  "    lb_algo: rr", "    lb_kind: NAT", "    real_servers:"]
        for i in range(servers):
            ip = f"10.84.{i // 250}.{i % 250 + 1}"
            lines.append(f"      - {{ip: {ip}, port: 80, TCP_CHECK: {{connect_timeout: 1}}}}")
    return "\n".join(lines) + "\n"


def first_advert(lab: Lab, director: Netns, conf: Path, timeout: float = 10.0) -> float:
    """Seconds from exec to the first advert's arrival on the peer side."""
    fd = os.open(f"/run/netns/{lab.namespaces[1].name}", os.O_RDONLY)
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        _setns(fd)
        rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    finally:
        _setns(own)
        os.close(fd)
        os.close(own)
    rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                  socket.inet_aton("224.0.0.18") + socket.inet_aton("10.83.0.2"))
    rx.settimeout(timeout)
    started = time.time()
    proc = lab.start(director, [HACLUSTER, "run", "-f", str(conf)])
    try:
        while True:
            packet, anc, _, _ = rx.recvmsg(2048, 64)
            ihl = (packet[0] & 0x0F) * 4
            if len(packet) < ihl + 3 or packet[ihl + 2] == 0:
                continue  # a priority-0 advert: the previous run resigning
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", data[:16])
                    if sec + nsec / 1e9 >= started:
                        return sec + nsec / 1e9 - started
    except TimeoutError:
        proc.stop(10)
        raise RuntimeError("no advert; daemon output:\n" + proc.output()) from None
    finally:
        rx.close()
        proc.stop(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--servers", type=int, default=5000)
    args = ap.parse_args()
    with Lab("hcst") as lab:
        director, peer = lab.namespace("dir"), lab.namespace("peer")
        lab.veth(director, "d0", peer, "p0")
        lab.add_address(director, "d0", "10.83.0.3/24")
        lab.add_address(peer, "p0", "10.83.0.2/24")
        for servers in (0, args.servers):
            conf = lab.workdir / f"c{servers}.yaml"
            conf.write_text(config(servers, lab.workdir / "s.sock"))
            times = [first_advert(lab, director, conf) for _ in range(args.runs)]
            ms = sorted(t * 1000 for t in times)
            print(f"{servers:5d} real servers: exec -> first advert "
                  f"median {statistics.median(ms):.0f} ms, min {ms[0]:.0f}, max {ms[-1]:.0f} "
                  f"({args.runs} runs)")
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
