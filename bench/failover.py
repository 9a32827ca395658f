"""Failover benchmark: keepalived and hacluster pairs on one namespace lab; prints figures.

For each advert setting (v2 at 1 s, v3 at 0.1 s and 0.01 s), a keepalived pair and a
hacluster pair run side by side on the same namespaces (own VRIDs; trials alternate
between the pairs so both meet the same machine load). An observer namespace on the
lab bridge captures every advert and gratuitous ARP with kernel timestamps, and:

- takeover excess: SIGKILL of the master; (first advert of the new master - last advert
  of the dead master) - master-down interval of the backup;
- graceful hand-over: SIGTERM of the master; (new master's first advert - the old
  master's priority-0 advert), compared with the backup's skew time;
- GARP delay: first gratuitous ARP for the VIP from the new master - its first advert.

The backup is the one measured. Nothing is asserted; run as root:

    .venv/bin/python bench/failover.py [--quick] [--only keepalived|hacluster]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hacluster.lab.capture import Capture, Frame
from hacluster.lab.keepalived import KeepalivedInstance
from hacluster.lab.netns import Lab, LabError, Netns
from hacluster.lab.speaker import Speaker, make_speaker
from vrrp.timing import master_down_interval, skew_time

MASTER_PRIO = 200
BACKUP_PRIO = 100
ADDR = {"a": "10.79.0.1", "b": "10.79.0.2", "obs": "10.79.0.9"}


@dataclass(frozen=True, slots=True)
class Setting:
    label: str
    version: int
    advert_int: float
    kills: int
    graceful: int


@dataclass(slots=True)
class Result:
    impl: str
    setting: Setting
    excess: list[float] = field(default_factory=list)
    graceful: list[float] = field(default_factory=list)
    garp: list[float] = field(default_factory=list)
    # Hand-overs where the backup's master-down timer ran out before the priority-0
    # advert arrived (the stopping master was too slow to resign): not a hand-over.
    early: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)


class Pair:
    """Master (ns a, priority 200) and backup (ns b, priority 100) of one implementation."""

    def __init__(self, lab: Lab, ns: dict[str, Netns], cap: Capture, impl: str,
                 setting: Setting, vrid: int) -> None:
        self.cap = cap
        self.setting = setting
        self.vrid = vrid
        self.vip = f"10.79.1.{vrid}"

        def inst(prio: int) -> tuple[KeepalivedInstance, ...]:
            return (KeepalivedInstance(
                virtual_router_id=vrid, priority=prio, version=setting.version,
                advert_int=setting.advert_int, virtual_ipaddress=(f"{self.vip}/24",)),)

        self.a: Speaker = make_speaker(impl, lab, ns["a"], inst(MASTER_PRIO), f"{impl}-a-{vrid}")
        self.b: Speaker = make_speaker(impl, lab, ns["b"], inst(BACKUP_PRIO), f"{impl}-b-{vrid}")
        self.b_mac = lab.mac(ns["b"], "eth0")
        self.mdi = master_down_interval(BACKUP_PRIO, setting.advert_int, setting.version)
        self.skew = skew_time(BACKUP_PRIO, setting.advert_int, setting.version)
        # Long enough for a start-up and an election, even on a loaded machine.
        self.patience = 15.0 + 4 * self.mdi

    def advert_of(self, src: str, priority: int | None = None) -> Callable[[Frame], bool]:
        def match(f: Frame) -> bool:
            return (f.kind == "vrrp" and f.vrid == self.vrid and f.src == src
                    and (priority is None or f.priority == priority))
        return match

    def a_in_charge(self) -> None:
        """Wait until a is master and b backup, and a's adverts flow steadily."""
        self.a.wait_state("MASTER", timeout=self.patience)
        mark = self.cap.mark()
        self.cap.wait_for(self.advert_of(ADDR["a"], MASTER_PRIO), self.patience, since=mark)
        deadline = time.monotonic() + self.patience
        while not self.a.has_vips() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(max(0.3, 2 * self.setting.advert_int))
        if self.b.state() == "MASTER":
            self.b.wait_state("BACKUP", timeout=self.patience)

    def start(self) -> None:
        self.b.start()
        self.a.start()
        self.a_in_charge()

    def kill_once(self, result: Result) -> None:
        mark = self.cap.mark()
        self.a.crash()
        first_b = self.cap.wait_for(self.advert_of(ADDR["b"]), self.patience, since=mark)
        frames = self.cap.frames()
        last_a = [f for f in frames[:frames.index(first_b)]
                  if f.kind == "vrrp" and f.vrid == self.vrid and f.src == ADDR["a"]][-1]
        result.excess.append(first_b.time - last_a.time - self.mdi)
        try:
            garp = self.cap.wait_for(
                lambda f: f.kind == "arp" and f.gratuitous and f.target == self.vip
                and f.src_mac == self.b_mac, 3.0, since=mark)
            result.garp.append(garp.time - first_b.time)
        except LabError as exc:
            result.errors.append(f"no GARP after takeover: {exc}")
        self.b.wait_state("MASTER", timeout=self.patience)
        self.a.start()
        self.a_in_charge()

    def handover_once(self, result: Result) -> None:
        mark = self.cap.mark()
        self.a.terminate()
        zero = self.cap.wait_for(self.advert_of(ADDR["a"], 0), self.patience, since=mark)
        first_b = self.cap.wait_for(self.advert_of(ADDR["b"]), self.patience, since=mark)
        if first_b.time < zero.time:
            result.early += 1
        else:
            result.graceful.append(first_b.time - zero.time)
        if self.a.process is not None:
            self.a.process.popen.wait(10.0)
        self.b.wait_state("MASTER", timeout=self.patience)
        self.a.start()
        self.a_in_charge()

    def stop(self) -> None:
        for s in (self.a, self.b):
            if s.process is not None and s.process.running():
                s.stop()


def build_lab(lab: Lab) -> tuple[dict[str, Netns], Capture]:
    sw = lab.namespace("sw")
    lab.bridge(sw)
    ns: dict[str, Netns] = {}
    for role in ("a", "b", "obs"):
        ns[role] = lab.namespace(role)
        lab.attach(ns[role], "eth0", sw, "br0", [f"{ADDR[role]}/24"])
    cap = Capture(lab, ns["obs"], "eth0", name="failover")
    cap.start()
    return ns, cap


def run_setting(lab: Lab, ns: dict[str, Netns], cap: Capture, impls: Sequence[str],
                setting: Setting, first_vrid: int) -> list[Result]:
    """Both implementations' pairs run side by side (own VRIDs); trials alternate."""
    results = [Result(impl, setting) for impl in impls]
    pairs = [Pair(lab, ns, cap, impl, setting, first_vrid + i) for i, impl in enumerate(impls)]
    live = list(range(len(pairs)))

    def attempt(i: int, step: str) -> None:
        pair, result = pairs[i], results[i]
        try:
            if step == "start":
                pair.start()
            elif step == "kill":
                pair.kill_once(result)
            else:
                pair.handover_once(result)
        except LabError as exc:
            result.errors.append(f"{step}: {str(exc).splitlines()[0][:300]}")
            for s in (pair.a, pair.b):
                if s.process is not None:
                    tail = s.process.output().strip().splitlines()[-4:]
                    result.errors.extend(f"  {s.name}: {line[:200]}" for line in tail)
            # Start the pair afresh and go on; give up on it after three failures.
            result.failures += 1
            try:
                pair.stop()
                if result.failures >= 3:
                    raise LabError("three failures")
                pair.start()
            except LabError as again:
                result.errors.append(f"dropped from this setting: {again}")
                live.remove(i)

    try:
        for i in list(live):
            attempt(i, "start")
        for _ in range(setting.kills):
            for i in list(live):
                attempt(i, "kill")
        for _ in range(setting.graceful):
            for i in list(live):
                attempt(i, "handover")
    finally:
        for pair in pairs:
            pair.stop()
    return results


def ms(values: Sequence[float], how: str) -> str:
    if not values:
        return "-"
    v = statistics.median(values) if how == "median" else max(values, key=abs)
    return f"{v * 1000:+.2f}"


def report(results: Sequence[Result]) -> None:
    print()
    print("figures in milliseconds; excess = gap - master-down interval; "
          "hand-over vs skew = delay - skew time")
    print(f"{'setting':<12}{'impl':<12}{'kills':>6}{'early':>6}{'excess med':>12}{'excess max':>12}"
          f"{'MDI':>9}{'handover med':>14}{'- skew':>9}{'skew':>8}{'GARP med':>10}"
          f"{'GARP max':>10}")
    for r in results:
        s = r.setting
        skew = skew_time(BACKUP_PRIO, s.advert_int, s.version)
        mdi = master_down_interval(BACKUP_PRIO, s.advert_int, s.version)
        handover = ms(r.graceful, "median")
        vs_skew = ms([g - skew for g in r.graceful], "median")
        print(f"{s.label:<12}{r.impl:<12}{len(r.excess):>6}{r.early:>6}{ms(r.excess, 'median'):>12}"
              f"{ms(r.excess, 'max'):>12}{mdi * 1000:>9.1f}{handover:>14}{vs_skew:>9}"
              f"{skew * 1000:>8.2f}{ms(r.garp, 'median'):>10}{ms(r.garp, 'max'):>10}")
    for r in results:
        for err in r.errors:
            print(f"! {r.setting.label} {r.impl}: {err}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", choices=("keepalived", "hacluster"), action="append",
                        help="run only this implementation (repeatable)")
    parser.add_argument("--settings", default="v2-1s,v3-100ms,v3-10ms",
                        help="comma-separated subset of v2-1s,v3-100ms,v3-10ms")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the lab's teardown stops every daemon it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    impls = args.only or ["keepalived", "hacluster"]
    q = args.quick
    all_settings = {
        "v2-1s": Setting("v2 1s", 2, 1.0, 2 if q else 5, 1 if q else 3),
        "v3-100ms": Setting("v3 100ms", 3, 0.1, 4 if q else 15, 2 if q else 5),
        "v3-10ms": Setting("v3 10ms", 3, 0.01, 6 if q else 30, 3 if q else 10),
    }
    wanted = [all_settings[k] for k in args.settings.split(",")]
    results: list[Result] = []
    started = time.monotonic()
    load_before = os.getloadavg()
    with Lab("hck") as lab:
        ns, cap = build_lab(lab)
        vrid = 10
        for setting in wanted:
            print(f"[{time.monotonic() - started:6.1f}s] {setting.label}: {', '.join(impls)}",
                  flush=True)
            results.extend(run_setting(lab, ns, cap, impls, setting, vrid))
            vrid += len(impls)
        cap.stop()
    report(results)
    load_after = os.getloadavg()
    print(f"\ntotal {time.monotonic() - started:.1f}s on {os.cpu_count()} CPUs; load average "
          f"{load_before[0]:.1f} at start, {load_after[0]:.1f} at end "
          "(a loaded machine delays both daemons' timers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
