"""VIPs beyond one advert go to the excluded list, at the same count as keepalived 2.2.7:
the same file, `keepalived -t` and `hacluster check-config` (on the import), in a
namespace whose eth0 has MTU 1500, 1400 and 9000."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from hacluster.lab.netns import Lab

pytestmark = pytest.mark.keepalived

HACLUSTER = str(Path(sys.executable).with_name("hacluster"))


def conf() -> str:
    v4 = "\n".join(f"  10.1.{i // 250}.{i % 250 + 1}/16" for i in range(400))
    v6 = "\n".join(f"  fd00::{i + 1:x}/64" for i in range(120))
    blocks = []
    for name, vrid, version, vips in (("V2_4", 5, 2, v4), ("V3_6", 6, 3, v6)):
        blocks.append(f"vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n"
                      f" version {version}\n priority 100\n"
                      f" virtual_ipaddress {{\n{vips}\n }}\n}}\n")
    return "".join(blocks)


KEEPALIVED_RE = re.compile(r"\((\w+)\) Number of VIPs \((\d+)\) exceeds .*\(max (\d+) ")
OURS_RE = re.compile(r"vrrp_instances\.(\w+)\.virtual_ipaddress: (\d+) VIPs do not fit one "
                     r"advert \(at most (\d+), MTU (\d+) of eth0\)")


def test_vips_beyond_one_advert_move_as_keepalived_moves_them(tmp_path: Path) -> None:
    kconf = tmp_path / "keepalived.conf"
    kconf.write_text(conf())
    with Lab("kfit") as lab:
        ns = lab.namespace("k")
        lab.veth(ns, "eth0", ns, "peer0")
        yaml_text = lab.run(ns, [HACLUSTER, "import-keepalived", str(kconf)]).stdout
        ours = tmp_path / "hacluster.yaml"
        ours.write_text(yaml_text)
        seen = {}
        for mtu in (1500, 1400, 9000):
            lab.run(ns, ["ip", "link", "set", "eth0", "mtu", str(mtu)])
            k = lab.run(ns, ["keepalived", "-t", "-l", "-f", str(kconf)], check=False)
            theirs = {m[1]: (int(m[2]), int(m[3])) for m in KEEPALIVED_RE.finditer(k.stdout
                                                                                    + k.stderr)}
            h = lab.run(ns, [HACLUSTER, "check-config", "-f", str(ours)])
            found = {m[1]: (int(m[2]), int(m[3])) for m in OURS_RE.finditer(h.stderr)}
            assert all(m[4] == str(mtu) for m in OURS_RE.finditer(h.stderr))
            assert found == theirs, (mtu, h.stderr, k.stdout + k.stderr)
            seen[mtu] = found
    # 255 is the count field's limit; IPv6 at 1500 fits 89, at 1400 83, at 9000 all 120
    assert seen == {1500: {"V2_4": (400, 255), "V3_6": (120, 89)},
                    1400: {"V2_4": (400, 255), "V3_6": (120, 83)},
                    9000: {"V2_4": (400, 255)}}
