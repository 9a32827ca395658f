"""Run the real keepalived (VRRP only) as a peer in a lab namespace: config, start, state, crash.

keepalived is started as ``keepalived -P -n -l -D -f CONF -p PIDFILE -r VRRP_PIDFILE``:
``-n`` keeps the parent in the foreground (its pid is the one the lab started), the
VRRP child's pid comes from its own pid file, and each peer gets its own pid files in a
private directory so several keepalived processes coexist on one machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from hacluster.lab.netns import Lab, LabError, LabProcess, Netns

KEEPALIVED = "keepalived"

_STATE_RE = re.compile(r"\((?P<name>[^)]+)\) Entering (?P<state>MASTER|BACKUP|FAULT) STATE")


@dataclass(frozen=True, slots=True)
class KeepalivedInstance:
    """One `vrrp_instance` block (keepalived vocabulary)."""

    name: str = "VI_1"
    interface: str = "eth0"
    virtual_router_id: int = 51
    priority: int = 100
    state: str = "BACKUP"
    version: int = 3
    advert_int: float = 1.0
    virtual_ipaddress: tuple[str, ...] = ()
    nopreempt: bool = False
    preempt_delay: float = 0.0
    unicast_src_ip: str | None = None
    unicast_peers: tuple[str, ...] = ()
    # Hop limit window accepted from unicast peers; keepalived itself sends unicast
    # IPv6 adverts with hop limit 64, so a lab may have to widen this for peers.
    unicast_min_ttl: int | None = None
    auth_pass: str | None = None
    garp_master_delay: int | None = None
    garp_master_repeat: int | None = None

    def __post_init__(self) -> None:
        if self.version not in (2, 3):
            raise ValueError(f"{self.name}: version must be 2 or 3")
        if not 1 <= self.virtual_router_id <= 255:
            raise ValueError(f"{self.name}: virtual_router_id must be 1..255")
        if not 1 <= self.priority <= 255:
            raise ValueError(f"{self.name}: priority must be 1..255")
        if self.auth_pass is not None and self.version != 2:
            raise ValueError(f"{self.name}: authentication is VRRPv2 only")
        if self.state not in ("MASTER", "BACKUP"):
            raise ValueError(f"{self.name}: state must be MASTER or BACKUP")

    @property
    def family(self) -> int:
        """4 or 6, from the virtual addresses (keepalived decides the same way)."""
        if self.virtual_ipaddress:
            return ipaddress.ip_interface(self.virtual_ipaddress[0].split()[0]).version
        return 4

    def render(self) -> str:
        """The `vrrp_instance` block as keepalived.conf text."""
        lines = [
            f"vrrp_instance {self.name} {{",
            f"    state {self.state}",
            f"    interface {self.interface}",
            f"    virtual_router_id {self.virtual_router_id}",
            f"    priority {self.priority}",
            f"    version {self.version}",
            f"    advert_int {self.advert_int:g}",
        ]
        if self.nopreempt:
            lines.append("    nopreempt")
        if self.preempt_delay:
            lines.append(f"    preempt_delay {self.preempt_delay:g}")
        if self.garp_master_delay is not None:
            lines.append(f"    garp_master_delay {self.garp_master_delay}")
        if self.garp_master_repeat is not None:
            lines.append(f"    garp_master_repeat {self.garp_master_repeat}")
        if self.unicast_src_ip is not None:
            lines.append(f"    unicast_src_ip {self.unicast_src_ip}")
        if self.unicast_peers:
            lines.append("    unicast_peer {")
            for peer in self.unicast_peers:
                ttl = f" min_ttl {self.unicast_min_ttl}" if self.unicast_min_ttl is not None else ""
                lines.append(f"        {peer}{ttl}")
            lines.append("    }")
        if self.auth_pass is not None:
            lines += [
                "    authentication {",
                "        auth_type PASS",
                f"        auth_pass {self.auth_pass}",
                "    }",
            ]
        if self.virtual_ipaddress:
            lines.append("    virtual_ipaddress {")
            lines += [f"        {vip}" for vip in self.virtual_ipaddress]
            lines.append("    }")
        lines.append("}")
        return "\n".join(lines) + "\n"


def render_config(
    instances: Sequence[KeepalivedInstance], *, router_id: str = "lab", garp_delay: int = 5
) -> str:
    """A complete VRRP-only keepalived.conf for `instances`."""
    head = (
        "global_defs {\n"
        f"    router_id {router_id}\n"
        f"    vrrp_garp_master_delay {garp_delay}\n"
        # Follow the RFCs: a master hearing a lower priority answers nothing.
        "    vrrp_lower_prio_no_advert\n"
        "    enable_script_security\n"
        "    script_user root\n"
        "}\n\n"
    )
    return head + "\n".join(inst.render() for inst in instances)


class LabSpeaker:
    """What the lab's VRRP speakers share: a process whose log says which state it entered."""

    __slots__ = ()

    PROGRAM: ClassVar[str]  # names the speaker in errors
    LOG_TAIL: ClassVar[int]  # how much of the log an error shows

    name: str
    process: LabProcess | None

    def _require(self) -> LabProcess:
        if self.process is None:
            raise LabError(f"{self.PROGRAM} {self.name} was not started")
        return self.process

    def _exited(self) -> str:
        """The error when the process is gone while its state is awaited."""
        return f"{self.PROGRAM} {self.name} exited\n{self.log()[-self.LOG_TAIL:]}"

    def log(self) -> str:
        return self._require().output()

    def states(self, instance: str | None = None) -> list[str]:
        """Every state the instance(s) entered, in order, from the log."""
        raise NotImplementedError

    def state(self, instance: str | None = None) -> str | None:
        seen = self.states(instance)
        return seen[-1] if seen else None

    def wait_state(self, state: str, instance: str | None = None, timeout: float = 10.0,
                   *, after: int = 0) -> None:
        """Wait until the log says `state` was entered (counting from entry `after`)."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.states(instance)[after:]
            if seen and seen[-1] == state:
                return
            if not self._require().running():
                raise LabError(self._exited())
            if time.monotonic() > deadline:
                raise LabError(f"{self.PROGRAM} {self.name}: not {state} after {timeout}s "
                               f"(states {seen})\n{self.log()[-self.LOG_TAIL:]}")
            time.sleep(0.01)

    def stop(self, timeout: float = 5.0) -> int:
        """Graceful stop (SIGTERM): a master sends priority 0 and releases its VIPs."""
        return self._require().stop(timeout)

    def terminate(self) -> None:
        """Send SIGTERM without waiting (the caller watches the wire)."""
        self._require().signal(signal.SIGTERM)


@dataclass(slots=True)
class KeepalivedPeer(LabSpeaker):
    """A keepalived process in a lab namespace, with its files in a private directory."""

    PROGRAM: ClassVar[str] = "keepalived"
    LOG_TAIL: ClassVar[int] = 2000

    lab: Lab
    netns: Netns
    instances: tuple[KeepalivedInstance, ...]
    name: str = "ka"
    process: LabProcess | None = None
    directory: Path = field(init=False)
    _runs: int = 0

    def __post_init__(self) -> None:
        self.directory = self.lab.workdir / f"keepalived-{self.name}"
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def config_path(self) -> Path:
        return self.directory / "keepalived.conf"

    def _pid_paths(self) -> tuple[Path, Path]:
        # A fresh pair of pid files per start: a stopping keepalived deletes its pid
        # files on exit, which must not remove the files of the next run.
        return (self.directory / f"main-{self._runs}.pid",
                self.directory / f"vrrp-{self._runs}.pid")

    def write_config(self) -> Path:
        self.config_path.write_text(render_config(self.instances, router_id=self.name))
        return self.config_path

    def check_config(self) -> None:
        """`keepalived -t`: raise LabError with keepalived's words when the config is bad."""
        self.write_config()
        res = subprocess.run([KEEPALIVED, "-t", "-f", str(self.config_path)],
                             capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            raise LabError(f"keepalived -t: {(res.stderr or res.stdout).strip()}")

    def start(self) -> LabProcess:
        """Write the config and start keepalived (VRRP only, foreground, logs to console)."""
        if self.process is not None and self.process.running():
            raise LabError(f"keepalived {self.name} already running (pid {self.process.pid})")
        self.write_config()
        self._runs += 1
        main_pid, vrrp_pid = self._pid_paths()
        argv = [KEEPALIVED, "-P", "-n", "-l", "-D", "-f", str(self.config_path),
                "-p", str(main_pid), "-r", str(vrrp_pid)]
        self.process = self.lab.start(self.netns, argv, log_name=f"keepalived-{self.name}-"
                                      f"{self._runs}")
        return self.process

    def vrrp_pid(self, timeout: float = 5.0) -> int:
        """The VRRP child's pid (from its pid file), waiting for it to appear."""
        _main, path = self._pid_paths()
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(FileNotFoundError, ValueError):
                return int(path.read_text().strip())
            if time.monotonic() > deadline or not self._require().running():
                raise LabError(f"keepalived {self.name}: no VRRP child pid in {path}\n"
                               + self.log()[-2000:])
            time.sleep(0.01)

    def states(self, instance: str | None = None) -> list[str]:
        """Every state the instance(s) entered, in order, from keepalived's log."""
        found: list[str] = []
        for m in _STATE_RE.finditer(self.log()):
            if instance is None or m.group("name") == instance:
                found.append(m.group("state"))
        return found

    def has_vips(self, instance: KeepalivedInstance | None = None) -> bool:
        """True when every VIP of the instance is on its interface."""
        inst = instance or self.instances[0]
        return all(
            self.lab.has_address(self.netns, vip_dev(vip, inst.interface), vip.split()[0])
            for vip in inst.virtual_ipaddress
        )

    def crash(self) -> None:
        """SIGKILL the VRRP child and the parent (the parent would restart the child)."""
        proc = self._require()
        child: int | None = None
        with contextlib.suppress(LabError):
            child = self.vrrp_pid(timeout=0.5)
        # Freeze the parent so it cannot restart the child, kill the child (SIGKILL: no
        # priority-0 advert, VIPs left behind, like a real crash), then the parent.
        proc.signal(signal.SIGSTOP)
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        proc.signal(signal.SIGKILL)
        proc.popen.wait(5.0)

    def kill_vrrp_child(self) -> int:
        """SIGKILL only the VRRP child (a crash of the worker); returns its pid."""
        pid = self.vrrp_pid()
        os.kill(pid, signal.SIGKILL)
        return pid


def vip_dev(vip: str, default: str) -> str:
    parts = vip.split()
    if "dev" in parts and parts.index("dev") + 1 < len(parts):
        return parts[parts.index("dev") + 1]
    return default
