"""Run inside a namespace by test_accept_mode: the drop set filled by nfnetlink alone.

The table is created with `nft`, then `nft` is made unusable, so only the set elements
sent in `on_state`'s own call can reach the kernel; prints what `nft` lists afterwards.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

from hacluster.accept_mode import AcceptFirewall
from hacluster.config.loader import parse_config


async def main(text: str) -> None:
    config = parse_config(text, "probe.yaml")
    fw = AcceptFirewall(config)
    await fw.start()
    fw._nft = "/bin/false"  # every rewrite fails from here on: netlink only
    fw.on_state("VI_1", True)
    listed = subprocess.run(["nft", "list", "table", "inet", "hacluster_vrrp"],
                            capture_output=True, text=True).stdout
    await asyncio.sleep(0.2)  # the acknowledgements: a refusal would be logged
    print(listed)
    fw._nft = "nft"
    await fw.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.stdin.read()))
