"""Session fixtures for the VM tests: one QEMU guest with a real IPVS kernel per pytest
session, real servers in namespaces inside it, and a clean IPVS table for every test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from typing import Any

import pytest

from hacluster.lab.vm import Guest, GuestImage, VmUnavailable

OPS = "tests.vm.guest_ops:"

# Inside the guest (nothing here touches the host's network): a VIP on the guest's lo,
# and real servers each in its own namespace behind a veth, answering their own name.
VIP = IPv4Address("10.77.0.1")
REAL_SERVERS = 3
GUEST_SETUP = """
set -e
ip addr add {vip}/32 dev lo
sysctl -qw net.ipv4.ip_forward=1
for i in $(seq 1 {count}); do
    ip netns add hcv-rs$i
    ip link add hcv-h$i type veth peer name eth0 netns hcv-rs$i
    ip addr add 192.168.7$i.1/24 dev hcv-h$i
    ip link set hcv-h$i up
    ip -n hcv-rs$i addr add 192.168.7$i.11/24 dev eth0
    ip -n hcv-rs$i link set eth0 up
    ip -n hcv-rs$i link set lo up
    ip -n hcv-rs$i route add default via 192.168.7$i.1
done
"""


@dataclass(frozen=True, slots=True)
class GuestLab:
    """The guest and what the session set up in it."""

    guest: Guest
    vip: IPv4Address
    real_servers: tuple[IPv4Address, ...]  # each answers its name, "rs1", "rs2", ...

    def call(self, name: str, *args: Any, timeout: float = 300.0) -> Any:
        """Call `tests.vm.guest_ops.NAME(*args)` in the guest."""
        return self.guest.call(OPS + name, *args, timeout=timeout)


@pytest.fixture(scope="session")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guest]:
    try:
        image = GuestImage.find()
    except VmUnavailable as exc:
        pytest.fail(f"the IPVS guest is not prepared: {exc}", pytrace=False)
    vm = Guest(image, workdir=tmp_path_factory.mktemp("vm"))
    vm.start()
    try:
        started = time.monotonic()
        # The first call imports pyroute2 in the guest (slow under TCG), once.
        vm.call(OPS + "info")
        print(
            f"\nIPVS guest: kernel {vm.info.get('kernel')} booted in {vm.boot_seconds:.1f} s, "
            f"first netlink call {time.monotonic() - started:.1f} s, "
            f"agent round trip {vm.ping() * 1000:.1f} ms"
        )
        yield vm
    finally:
        vm.close()


@pytest.fixture(scope="session")
def lab(guest: Guest) -> Iterator[GuestLab]:
    guest.run(["sh", "-c", GUEST_SETUP.format(vip=VIP, count=REAL_SERVERS)])
    addresses = tuple(ip_address(f"192.168.7{i}.11") for i in range(1, REAL_SERVERS + 1))
    pids = []
    for i in range(1, REAL_SERVERS + 1):
        argv = ["ip", "netns", "exec", f"hcv-rs{i}", "busybox", "nc", "-ll", "-p", "80"]
        argv += ["-e", "/bin/busybox", "echo", f"rs{i}"]
        pids.append(guest.call(OPS + "spawn", argv))
    lab = GuestLab(guest, VIP, tuple(a for a in addresses if isinstance(a, IPv4Address)))
    try:
        for address in lab.real_servers:
            lab.call("wait_listening", str(address), 80)
        yield lab
    finally:
        for pid in pids:
            if guest.running:
                guest.call(OPS + "stop", pid)


@pytest.fixture
def ipvs(lab: GuestLab) -> Iterator[GuestLab]:
    """The lab with an empty IPVS table before and after the test."""
    lab.call("flush")
    yield lab
    if lab.guest.running:
        lab.call("flush")
