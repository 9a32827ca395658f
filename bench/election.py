"""Election benchmark: two directors started at one instant, who becomes MASTER; prints figures.

Both directors are BACKUP at start, on one bridge with the same VRID, advert_int 1
(VRRPv3): one of priority 150 with `nopreempt`, the other of priority 100. Neither hears
the other until one's master-down timer runs out, so the first to time out becomes
MASTER; the 150 node, being `nopreempt`, then accepts a master of priority 100 for good.
RFC 5798 §6.1 (advert_int 1):

    Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time
    Skew_Time = (256 - Priority) * Advertisement_Interval / 256
    priority 150: 3.414 s, priority 100: 3.609 s

so the 150 node wins only if its timer starts less than 195 ms after the 100 node's:
the difference between the two start-up times decides.

Pairings, interleaved run by run so that all meet the same machine load:
  kk  keepalived 150 nopreempt vs keepalived 100
  hk  hacluster 150 nopreempt vs keepalived 100
  hh  hacluster 150 nopreempt vs hacluster 100
Each run spawns the two (order alternating) back to back; an observer captures every
advert with kernel timestamps. Printed: who ended up MASTER and how often, runs where both
advertised (a contested start), the time from each director's exec to its first advert,
that time less its master-down interval (start-up plus timer lateness), and for
hacluster the exec to "instances running" (hacluster.startuptrace); where both sides are
hacluster, how far the 150 node's instance started behind the 100 node's in the runs each
won (the rule above says 150 wins below 195 ms). The bytecode is compiled first, as an
installed package has it (`hacluster.lab.bytecode`). Nothing is asserted;
run as root:

    .venv/bin/python bench/election.py [--runs 10] [--pairs kk,hk,hh]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hacluster.lab.bytecode import compile_tree
from hacluster.lab.capture import Capture, Frame
from hacluster.lab.keepalived import KeepalivedInstance
from hacluster.lab.netns import Lab, LabError, Netns
from hacluster.lab.speaker import HaclusterPeer, Speaker, make_speaker
from vrrp.timing import master_down_interval

HIGH, LOW = 150, 100
ADVERT_INT = 1.0
VERSION = 3
ADDR = {"high": "10.86.0.1", "low": "10.86.0.2", "obs": "10.86.0.9"}
PAIRS = {
    "kk": ("keepalived", "keepalived"),
    "hk": ("hacluster", "keepalived"),
    "hh": ("hacluster", "hacluster"),
}
# After the first advert, long enough for a loser that also timed out to hear the winner
# and step down (its adverts would show as a contested start).
SETTLE = 2.5 * ADVERT_INT
TRACE_VAR = "HACLUSTER_STARTUP_TRACE"


def mdi(priority: int) -> float:
    return master_down_interval(priority, ADVERT_INT, VERSION)


@dataclass(slots=True)
class Side:
    """One director of a run: when it was exec'd and what it did."""

    prio: int
    started: float = 0.0  # wall clock just before the spawn (the capture's clock)
    first_advert: float | None = None  # seconds after `started`
    final: str | None = None
    running_after: float | None = None  # hacluster: exec -> "role: instances running"


@dataclass(slots=True)
class Run:
    pair: str
    high: Side = field(default_factory=lambda: Side(HIGH))
    low: Side = field(default_factory=lambda: Side(LOW))
    error: str | None = None

    @property
    def winner(self) -> str:
        masters = [s.prio for s in (self.high, self.low) if s.final == "MASTER"]
        return "none" if not masters else "both" if len(masters) == 2 else str(masters[0])

    @property
    def contested(self) -> bool:
        return self.high.first_advert is not None and self.low.first_advert is not None


class Election:
    """The lab: directors `high` and `low` and an observer on one bridge."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        sw = lab.namespace("sw")
        lab.bridge(sw)
        self.ns: dict[str, Netns] = {}
        for role in ("high", "low", "obs"):
            self.ns[role] = lab.namespace(role)
            lab.attach(self.ns[role], "eth0", sw, "br0", [f"{ADDR[role]}/24"])
        self.cap = Capture(lab, self.ns["obs"], "eth0", name="election")
        self.cap.start()
        self.count = 0

    def speaker(self, kind: str, role: str, prio: int, vrid: int) -> Speaker:
        inst = KeepalivedInstance(
            virtual_router_id=vrid, priority=prio, state="BACKUP", version=VERSION,
            advert_int=ADVERT_INT, nopreempt=prio == HIGH,
            virtual_ipaddress=(f"10.86.1.{vrid}/24",))
        name = f"{kind[:2]}-{role}-{vrid}"
        if kind == "hacluster":
            state = self.lab.workdir / f"state-{name}"
            return HaclusterPeer(self.lab, self.ns[role], (inst,), name,
                                 extra_args=("--state-dir", str(state)))
        return make_speaker(kind, self.lab, self.ns[role], (inst,), name)

    def run(self, pair: str, high_first: bool) -> Run:
        self.count += 1
        vrid = self.count  # a fresh VRID per run: the last run's resign adverts are not ours
        kinds = PAIRS[pair]
        result = Run(pair)
        speakers = {"high": self.speaker(kinds[0], "high", HIGH, vrid),
                    "low": self.speaker(kinds[1], "low", LOW, vrid)}
        sides = {"high": result.high, "low": result.low}
        traces = {role: self.lab.workdir / f"trace-{vrid}-{role}" for role in speakers}
        mark = self.cap.mark()
        order = ("high", "low") if high_first else ("low", "high")
        try:
            for role in order:
                # The child inherits the environment at its spawn: one trace file each.
                os.environ[TRACE_VAR] = str(traces[role])
                sides[role].started = time.time()
                speakers[role].start()
            os.environ.pop(TRACE_VAR, None)
            self.cap.wait_for(lambda f: self._ours(f, vrid), 10 + 2 * mdi(LOW), since=mark)
            time.sleep(SETTLE)
            frames = self.cap.frames()[mark:]
            for role, side in sides.items():
                side.final = speakers[role].state()
                first = next((f for f in frames if self._ours(f, vrid)
                              and f.src == ADDR[role]), None)
                if first is not None:
                    side.first_advert = first.time - side.started
                if isinstance(speakers[role], HaclusterPeer):
                    side.running_after = _instances_running(traces[role], side.started)
        except LabError as exc:
            result.error = str(exc).splitlines()[0][:200]
        finally:
            os.environ.pop(TRACE_VAR, None)
            for speaker in speakers.values():
                if speaker.process is not None:
                    speaker.stop(10.0)
        return result

    @staticmethod
    def _ours(f: Frame, vrid: int) -> bool:
        return f.kind == "vrrp" and f.vrid == vrid and bool(f.priority)


def _instances_running(trace: Path, started: float) -> float | None:
    if not trace.exists():
        return None
    for line in trace.read_text().splitlines():
        stamp, _pid, _cpu, stage = line.split(" ", 3)
        if stage == "role: instances running":
            return float(stamp) - started
    return None


def _lag(run: Run) -> float | None:
    """Seconds by which the 150 node's instance started running after the 100 node's."""
    high, low = run.high, run.low
    if high.running_after is None or low.running_after is None:
        return None
    return (high.started + high.running_after) - (low.started + low.running_after)


def _ms(values: Sequence[float]) -> str:
    if not values:
        return "-"
    ms = sorted(v * 1000 for v in values)
    return f"median {statistics.median(ms):.0f} ms (min {ms[0]:.0f}, max {ms[-1]:.0f}, n={len(ms)})"


def report(pair: str, runs: Sequence[Run]) -> None:
    kinds = PAIRS[pair]
    print(f"\n({pair}) {kinds[0]} {HIGH} nopreempt vs {kinds[1]} {LOW}: {len(runs)} runs")
    done = [r for r in runs if r.error is None]
    tally = {w: sum(1 for r in done if r.winner == w)
             for w in (str(HIGH), str(LOW), "both", "none")}
    print(f"    MASTER at the end: {HIGH} ({kinds[0]}) {tally[str(HIGH)]}/{len(done)}, "
          f"{LOW} ({kinds[1]}) {tally[str(LOW)]}/{len(done)}"
          + (f", both {tally['both']}" if tally["both"] else "")
          + (f", none {tally['none']}" if tally["none"] else "")
          + f"; both advertised (contested start) in {sum(r.contested for r in done)}")
    for prio, kind, sides in ((HIGH, kinds[0], [r.high for r in done]),
                              (LOW, kinds[1], [r.low for r in done])):
        label = str(prio)
        adverts = [s.first_advert for s in sides if s.first_advert is not None]
        print(f"    {label} {kind:<10} exec -> first advert {_ms(adverts)}")
        print(f"    {'':<14} first advert - MDI {mdi(prio):.3f} s "
              f"(start-up + timer lateness) {_ms([a - mdi(prio) for a in adverts])}")
        running = [s.running_after for s in sides if s.running_after is not None]
        if running:
            print(f"    {'':<14} exec -> instances running {_ms(running)}")
    # Where both sides traced their start (hacluster), the lag of the 150 node's timer
    # behind the 100 node's, by outcome: the rule says 150 wins below the skew difference.
    for who in (str(HIGH), str(LOW)):
        lags = [_lag(r) for r in done if r.winner == who]
        known = [lag for lag in lags if lag is not None]
        if known:
            print(f"    {HIGH}'s instance running minus {LOW}'s, in runs {who} won: {_ms(known)}")
    spawn = [abs(r.high.started - r.low.started) for r in done]
    print(f"    between the two spawns {_ms(spawn)}")
    for r in runs:
        if r.error is not None:
            print(f"    ! run failed: {r.error}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per pairing")
    parser.add_argument("--pairs", default="kk,hk,hh",
                        help="comma-separated subset of kk (keepalived vs keepalived), "
                        "hk (hacluster 150 vs keepalived 100), hh (hacluster vs hacluster)")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not compile the bytecode first (measure a bare source tree)")
    args = parser.parse_args(argv)
    if not args.no_compile:  # as an installed package has it (hacluster.lab.bytecode)
        compile_tree(Path(__file__).resolve().parent.parent)
    pairs = args.pairs.split(",")
    if unknown := [p for p in pairs if p not in PAIRS]:
        parser.error(f"unknown pairing(s) {unknown}; choose from {sorted(PAIRS)}")
    # SIGTERM unwinds like Ctrl-C, so the lab's teardown stops every daemon it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    print(f"RFC 5798 §6.1, advert_int {ADVERT_INT:g} s: master-down interval {HIGH}: "
          f"{mdi(HIGH):.3f} s, {LOW}: {mdi(LOW):.3f} s; the {HIGH} node wins if its timer "
          f"starts less than {(mdi(LOW) - mdi(HIGH)) * 1000:.0f} ms after the {LOW} node's")
    load_before = os.getloadavg()
    started = time.monotonic()
    runs: dict[str, list[Run]] = {p: [] for p in pairs}
    with Lab("hcel") as lab:
        election = Election(lab)
        for i in range(args.runs):
            for pair in pairs:
                runs[pair].append(election.run(pair, high_first=i % 2 == 0))
            print(f"[{time.monotonic() - started:6.1f}s] run {i + 1}/{args.runs}: "
                  + ", ".join(f"{p} -> {runs[p][-1].winner}" for p in pairs), flush=True)
        election.cap.stop()
    for pair in pairs:
        report(pair, runs[pair])
    load_after = os.getloadavg()
    print(f"\ntotal {time.monotonic() - started:.1f}s on {os.cpu_count()} CPUs; load average "
          f"{load_before[0]:.2f} at start, {load_after[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
