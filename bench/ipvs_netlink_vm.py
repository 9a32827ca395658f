"""Benchmark: the netlink backend's reconcile figures on a real IPVS kernel (the QEMU guest).

Boots the guest (deploy/vm/prepare.sh must have run), runs `bench/ipvs_reconcile.py
--backend netlink` inside it (1,000 services x 10 destinations from empty, then 1% of
weights changed), and measures how much slower Python runs in the guest than on this
host, since the guest is emulated (TCG) and its figures are that much slower than a
real director's. Nothing is asserted; run as root:

    .venv/bin/python bench/ipvs_netlink_vm.py [--services 1000] [--dests 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hacluster.lab.vm import REPO, Guest, GuestImage

# A fixed pure-Python workload, timed on the host and in the guest.
SPIN = (
    "import time\n"
    "t = time.perf_counter()\n"
    "sum(i * i for i in range(1_000_000))\n"
    "print(time.perf_counter() - t)\n"
)


def spin_seconds(argv: list[str]) -> float:
    return float(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--dests", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hcvm-bench-") as workdir:
        guest = Guest(GuestImage.find(), workdir=Path(workdir))
        guest.start()
        try:
            print(f"guest kernel {guest.info['kernel']}: booted in {guest.boot_seconds:.1f} s")
            host = min(spin_seconds([sys.executable, "-c", SPIN]) for _ in range(3))
            inside = min(
                float(guest.run([str(guest.python), "-c", SPIN]).stdout) for _ in range(3)
            )
            print(
                f"pure-Python slowdown in the guest: {inside / host:.0f}x "
                f"({inside:.2f} s vs {host:.3f} s on the host)"
            )
            started = time.monotonic()
            result = guest.run(
                [
                    str(guest.python),
                    str(REPO / "bench" / "ipvs_reconcile.py"),
                    "--backend", "netlink",
                    "--services", str(args.services),
                    "--dests", str(args.dests),
                ],
                timeout=3600,
                check=False,
            )  # fmt: skip
            sys.stdout.write(result.stdout)
            sys.stderr.write(result.stderr)
            print(f"(whole run in the guest, Python start and imports included: "
                  f"{time.monotonic() - started:.0f} s)")  # fmt: skip
            return result.returncode
        finally:
            guest.close()


if __name__ == "__main__":
    sys.exit(main())
