"""VRRP integration test helpers: a bridge lab of `hacluster run` directors (prefix hcw)."""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hacluster.lab.capture import Capture
from hacluster.lab.netns import Lab, LabProcess, Netns

PREFIX = "hcw"
HACLUSTER = str(Path(sys.executable).with_name("hacluster"))
VIP4 = "10.9.0.100"
VIP6 = "fd00:9::100"

_LINE = re.compile(r"^(\S+) +(\w+) +\[(\w+)\] (\w+) -> (\w+) \((.*)\) priority \d+$")


def instance_yaml(
    name: str = "VI_1",
    *,
    priority: int = 100,
    vrid: int = 51,
    version: int = 3,
    advert_int: float = 0.1,
    vips: tuple[str, ...] = (f"{VIP4}/24",),
    interface: str = "eth0",
    extra: str = "",
) -> str:
    """One entry of `vrrp_instances` (indented for the section)."""
    lines = [
        f"  {name}:",
        f"    interface: {interface}",
        f"    virtual_router_id: {vrid}",
        f"    priority: {priority}",
        f"    advert_int: {advert_int}",
        f"    version: {version}",
        "    virtual_ipaddress: [" + ", ".join(f'"{v}"' for v in vips) + "]",
        # No second GARP burst: keeps captures of one takeover easy to read.
        "    garp_master_delay: 0",
        "    garp_master_repeat: 2",
    ]
    lines += [f"    {line}" for line in extra.strip().splitlines() if line.strip()]
    return "\n".join(lines) + "\n"


def config_yaml(*instances: str) -> str:
    return "vrrp_instances:\n" + "".join(instances)


@dataclass
class Director:
    """One `hacluster run` in a namespace, with its status file."""

    lab: Lab
    ns: Netns
    name: str
    config: Path
    status_path: Path
    process: LabProcess | None = None

    @property
    def state_dir(self) -> Path:
        return self.status_path.with_name(f"{self.name}.state")

    def start(self, *extra: str) -> Director:
        if self.status_path.exists():
            self.status_path.unlink()
        self.process = self.lab.start(
            self.ns,
            [HACLUSTER, "run", "-f", str(self.config), "--status-file", str(self.status_path),
             # Each director its own control socket: never the host's default path.
             "--control-socket", str(self.status_path.with_name(f"{self.name}.sock")),
             # ... and its own VIP state directory, never the host's /run/hacluster.
             "--state-dir", str(self.state_dir),
             *extra],
            log_name=f"{self.name}-{time.monotonic_ns()}",
        )
        return self

    @property
    def proc(self) -> LabProcess:
        assert self.process is not None, "director not started"
        return self.process

    def output(self) -> str:
        return self.proc.output()

    def status(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}
        return data

    def fresh_status(self, timeout: float = 5.0) -> dict[str, Any]:
        """Ask for a status dump (SIGUSR1) and return it once written."""
        before = self.status().get("generation", -1)
        self.proc.signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status.get("generation", -1) > before:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no status dump\n{self.output()}")
            time.sleep(0.02)

    def state(self, instance: str = "VI_1") -> str | None:
        inst = self.status().get("instances", {}).get(instance)
        return None if inst is None else str(inst["state"])

    def wait_state(self, state: str, instance: str = "VI_1", timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.state(instance) != state:
            if not self.proc.running():
                raise AssertionError(f"{self.name} exited:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}/{instance}: {self.state(instance)}, not {state} after "
                    f"{timeout}s\n{self.output()}"
                )
            time.sleep(0.02)

    def wait_log(self, text: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {text!r} in the log\n{self.output()}")
            time.sleep(0.02)

    def transitions(self, instance: str = "VI_1") -> list[tuple[str, str, str, str]]:
        """(time, old, new, reason) of every logged transition of `instance`."""
        found = []
        for line in self.output().splitlines():
            m = _LINE.match(line)
            if m and m.group(3) == instance:
                found.append((m.group(1), m.group(4), m.group(5), m.group(6)))
        return found

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float = 5.0,
                   show: Callable[[], str] = lambda: "") -> None:
        """Wait until `check()`; AssertionError naming `what`, with the log and `show()`,
        when it is not so within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {what} not so after {timeout}s\n"
                                     f"{self.output()}\n{show()}")
            time.sleep(0.05)

    def has_vip(self, address: str = VIP4) -> bool:
        return self.lab.has_address(self.ns, "eth0", address)

    def wait_vip(self, address: str = VIP4, present: bool = True, timeout: float = 5.0) -> None:
        """Wait for the VIP to appear (or go): netlink work follows the state change."""
        deadline = time.monotonic() + timeout
        while self.has_vip(address) != present:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: VIP {address} present={not present} "
                                     f"after {timeout}s\n{self.output()}")
            time.sleep(0.02)


@dataclass
class PairLab:
    """Directors a and b and an observer on one bridge."""

    lab: Lab
    a_ns: Netns
    b_ns: Netns
    obs: Netns

    def director(self, which: str, yaml_text: str) -> Director:
        ns = self.a_ns if which == "a" else self.b_ns
        path = self.lab.workdir / f"{which}-{time.monotonic_ns()}.yaml"
        path.write_text(yaml_text)
        return Director(self.lab, ns, which, path, self.lab.workdir / f"{which}.status.json")

    def capture(self, bpf: str | None = None) -> Capture:
        cap = (Capture(self.lab, self.obs, "eth0") if bpf is None
               else Capture(self.lab, self.obs, "eth0", bpf=bpf, name="cap2"))
        cap.start()
        return cap

    def mac(self, which: str) -> str:
        return self.lab.mac(self.a_ns if which == "a" else self.b_ns, "eth0")
