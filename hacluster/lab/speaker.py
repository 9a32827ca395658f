"""A VRRP speaker in a lab namespace: keepalived or `hacluster run`, driven the same way.

Both kinds take the same instance description (`KeepalivedInstance`, keepalived
vocabulary, which is also hacluster's YAML vocabulary), start, report their state from
their log, crash (SIGKILL) or stop gracefully (SIGTERM).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any, Protocol

import yaml

from hacluster.lab.keepalived import KeepalivedInstance, KeepalivedPeer, LabSpeaker, vip_dev
from hacluster.lab.netns import Lab, LabError, LabProcess, Netns

# `[VI_1] BACKUP -> MASTER (master down timer) priority 100`; the JSON log carries the same.
_HC_STATE_RE = re.compile(
    r"\[(?P<name>[^\]\s]+)\]\s+(?P<old>[A-Z]+)\s*->\s*(?P<state>MASTER|BACKUP|FAULT|INIT)\b"
)


class Speaker(Protocol):
    """What a lab test or benchmark needs from a VRRP speaker under test."""

    name: str
    netns: Netns
    instances: tuple[KeepalivedInstance, ...]
    process: LabProcess | None

    def start(self) -> LabProcess: ...
    def crash(self) -> None: ...
    def stop(self, timeout: float = 5.0) -> int: ...
    def terminate(self) -> None: ...
    def log(self) -> str: ...
    def states(self, instance: str | None = None) -> list[str]: ...
    def state(self, instance: str | None = None) -> str | None: ...
    def wait_state(self, state: str, instance: str | None = None, timeout: float = 10.0,
                   *, after: int = 0) -> None: ...
    def has_vips(self, instance: KeepalivedInstance | None = None) -> bool: ...


def render_hacluster_config(
    instances: tuple[KeepalivedInstance, ...], *, router_id: str, control_socket: Path,
    garp_delay: int = 5,
) -> str:
    """hacluster YAML (CONFIG.md) for the same instances, VRRP only (dataplane none)."""
    vrrp_instances: dict[str, Any] = {}
    for inst in instances:
        body: dict[str, Any] = {
            "interface": inst.interface,
            "state": inst.state,
            "virtual_router_id": inst.virtual_router_id,
            "priority": inst.priority,
            "advert_int": inst.advert_int,
            "version": inst.version,
            "virtual_ipaddress": list(inst.virtual_ipaddress),
        }
        if inst.nopreempt:
            body["nopreempt"] = True
        if inst.preempt_delay:
            body["preempt_delay"] = inst.preempt_delay
        if inst.garp_master_delay is not None:
            body["garp_master_delay"] = inst.garp_master_delay
        if inst.garp_master_repeat is not None:
            body["garp_master_repeat"] = inst.garp_master_repeat
        if inst.unicast_src_ip is not None:
            body["unicast_src_ip"] = inst.unicast_src_ip
        if inst.unicast_peers:
            if inst.unicast_min_ttl is not None:
                body["unicast_peers"] = [{"ip": p, "min_ttl": inst.unicast_min_ttl}
                                         for p in inst.unicast_peers]
            else:
                body["unicast_peers"] = list(inst.unicast_peers)
        if inst.auth_pass is not None:
            body["authentication"] = {"auth_type": "PASS", "auth_pass": inst.auth_pass}
        vrrp_instances[inst.name] = body
    doc = {
        "global_defs": {
            "router_id": router_id,
            "dataplane": "none",
            "control_socket": str(control_socket),
            "vrrp_garp_master_delay": garp_delay,
        },
        "vrrp_instances": vrrp_instances,
    }
    return yaml.safe_dump(doc, sort_keys=False)


class HaclusterPeer(LabSpeaker):
    """`hacluster run -f FILE` in a lab namespace (this interpreter, this source tree)."""

    PROGRAM = "hacluster"
    LOG_TAIL = 3000

    def __init__(self, lab: Lab, netns: Netns, instances: tuple[KeepalivedInstance, ...],
                 name: str = "hc", *, extra_args: tuple[str, ...] = ()) -> None:
        self.lab = lab
        self.netns = netns
        self.instances = instances
        self.name = name
        self.process: LabProcess | None = None
        self.extra_args = extra_args
        self.directory = lab.workdir / f"hacluster-{name}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._runs = 0

    @property
    def config_path(self) -> Path:
        return self.directory / "hacluster.yaml"

    def write_config(self) -> Path:
        self.config_path.write_text(render_hacluster_config(
            self.instances, router_id=self.name, control_socket=self.directory / "ctl.sock"))
        return self.config_path

    def start(self) -> LabProcess:
        if self.process is not None and self.process.running():
            raise LabError(f"hacluster {self.name} already running (pid {self.process.pid})")
        self.write_config()
        self._runs += 1
        self.status_path.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "hacluster.cli", "run", "-f", str(self.config_path),
                "--status-file", str(self.status_path), *self.extra_args]
        self.process = self.lab.start(self.netns, argv,
                                      log_name=f"hacluster-{self.name}-{self._runs}")
        return self.process

    @property
    def status_path(self) -> Path:
        return self.directory / "status.json"

    def _read_status(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        """A fresh status dump (SIGUSR1 makes the daemon rewrite its status file)."""
        proc = self._require()
        before = self._read_status()
        generation = before.get("generation", 0) if before else 0
        proc.signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while True:
            now = self._read_status()
            if now is not None and now.get("generation", 0) > generation:
                return now
            if time.monotonic() > deadline or not proc.running():
                raise LabError(f"hacluster {self.name}: no fresh status in {self.status_path}")
            time.sleep(0.02)

    def states(self, instance: str | None = None) -> list[str]:
        found: list[str] = []
        for line in self.log().splitlines():
            text = line
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    text = str(json.loads(line).get("message", line))
            m = _HC_STATE_RE.search(text)
            if m and (instance is None or m.group("name") == instance):
                found.append(m.group("state"))
        return found

    def _exited(self) -> str:
        return (f"hacluster {self.name} exited "
                f"{self._require().popen.returncode}\n{self.log()[-self.LOG_TAIL:]}")

    def has_vips(self, instance: KeepalivedInstance | None = None) -> bool:
        inst = instance or self.instances[0]
        return all(
            self.lab.has_address(self.netns, vip_dev(vip, inst.interface),
                                 str(ipaddress.ip_interface(vip.split()[0]).ip))
            for vip in inst.virtual_ipaddress
        )

    def crash(self) -> None:
        """A crash: the whole process group frozen, then SIGKILLed (the VRRP process must
        not hear of the supervisor's death and resign, as it does after a lone kill -9)."""
        self._require().kill()


def make_speaker(kind: str, lab: Lab, netns: Netns, instances: tuple[KeepalivedInstance, ...],
                 name: str) -> Speaker:
    """A keepalived (`kind="keepalived"`) or hacluster (`kind="hacluster"`) speaker."""
    if kind == "keepalived":
        return KeepalivedPeer(lab, netns, instances, name=name)
    if kind == "hacluster":
        return HaclusterPeer(lab, netns, instances, name=name)
    raise ValueError(f"unknown speaker kind {kind!r} (keepalived or hacluster)")
