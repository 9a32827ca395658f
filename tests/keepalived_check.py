"""Run `keepalived -t -f FILE` on configuration files inside a lab namespace (needs root).

keepalived's config test refuses interfaces that do not exist, so the namespace gets
veth ends named like the interfaces real configurations use (eth0, ens192, bond0...).
Also a command: `python -m tests.keepalived_check FILE...` prints keepalived's verdict.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hacluster.lab.netns import Lab

# The interface names the corpus uses: each is one end of a veth pair in the namespace.
INTERFACES = ("eth0", "eth1", "eth2", "ens3", "ens160", "ens192", "ens224", "bond0",
              "enp1s0", "eno1")


@dataclass(frozen=True, slots=True)
class Verdict:
    """keepalived -t on one file: its exit status and what it printed."""

    path: Path
    returncode: int
    output: str


def keepalived_check(paths: Iterable[Path], prefix: str = "kct") -> list[Verdict]:
    """keepalived -t -f on each of `paths`, in one namespace built for the purpose."""
    verdicts = []
    with Lab(prefix) as lab:
        ns = lab.namespace("kc")
        for i, name in enumerate(INTERFACES):
            lab.veth(ns, name, ns, f"peer{i}")
        for path in paths:
            # each file is checked from its own directory, so relative includes resolve
            res = lab.run(ns, ["sh", "-c", 'cd "$1" && exec keepalived -t -l -f "$2"', "sh",
                               str(path.parent.resolve()), path.name], check=False)
            verdicts.append(Verdict(path, res.returncode, res.stdout + res.stderr))
    return verdicts


if __name__ == "__main__":
    for verdict in keepalived_check(Path(p) for p in sys.argv[1:]):
        print(f"== {verdict.path}: exit {verdict.returncode}")
        print(verdict.output, end="")
