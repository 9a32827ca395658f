"""How many VIPs one advert carries, and moving the rest to the excluded list (keepalived's rule).

keepalived (vrrp_complete_instance): an advert must fit the interface's MTU with its
Ethernet, IP and VRRP headers (and VRRPv2's 8 authentication bytes), and its address
count is one byte, so at most 255. VIPs beyond that are moved to the excluded VIPs,
"Number of VIPs (N) exceeds maximum/space available in packet (max M addresses) -
excess moved to eVIPs": still added and removed with mastership, not advertised.
"""

from __future__ import annotations

from pathlib import Path

VRRP_MAX_ADDR = 255  # the advert's count field is 8 bits (RFC 5798 §5.2.5)
ETHER_HEADER = 14
VRRP_HEADER = 8
AUTH_V2 = 8  # VRRPv2's authentication data
DEFAULT_MTU = 1500
#: Fewer VIPs than this always fit (IPv6 at its minimum MTU, 1280: (1280 - 62) / 16).
ALWAYS_FIT = 76


def capacity(family: int, version: int, mtu: int) -> int:
    """The most VIPs one advert of this family and version carries at `mtu`."""
    if family == 4:
        header = ETHER_HEADER + 20 + VRRP_HEADER + (AUTH_V2 if version == 2 else 0)
        size = 4
    else:
        header, size = ETHER_HEADER + 40 + VRRP_HEADER, 16
    return max(0, min(VRRP_MAX_ADDR, (mtu - header) // size))


def interface_mtu(name: str, sysfs: Path = Path("/sys/class/net")) -> int | None:
    """The MTU this machine gives interface `name`, or None when it has no such one."""
    try:
        return int((sysfs / name / "mtu").read_text())
    except (OSError, ValueError):
        return None


def message(count: int, most: int, interface: str, mtu: int | None) -> str:
    where = f"MTU {mtu} of {interface}" if mtu is not None else (
        f"MTU {DEFAULT_MTU}: {interface} is not on this machine")
    return (f"{count} VIPs do not fit one advert (at most {most}, {where}): the last "
            f"{count - most} are moved to virtual_ipaddress_excluded (added, not "
            "advertised), as keepalived does")
