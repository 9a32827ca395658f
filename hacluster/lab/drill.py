"""Failover drills over the director-pair lab, measured from the client's side, with a report.

The drills run in catalogue order on one lab: (1) a real server dies and comes back, (2)
the master director is killed with SIGKILL, (3) it comes back and preempts, (4) it hands
over gracefully on SIGTERM; the fault drills 5-8 (partition, starvation, crash loop,
reload under traffic) are in `hacluster.lab.faults`. An operator picks drills by name or
number (`select`). Each drill marks the moment of its event, waits until the client's
traffic has settled (every request of the last `settle` seconds answered, and by the
expected director and real servers) or a bound has passed, then judges the client's
records: failover time is the gap in successful answers, and which director and real
server answered each request comes from the answer itself (see `hacluster.lab.topology`).
"""

from __future__ import annotations

import itertools
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from hacluster.lab.client import Record, RecordReader
from hacluster.lab.topology import RunningLab

POLL = 0.05
#: Seconds without one answer, once the master's balancer runs and it has no table, after
#: which waiting for the lab to serve is given up.
NO_TABLE_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class DrillSpec:
    """One drill as an operator picks it: its number, its name and what it does."""

    number: int
    name: str
    title: str


CATALOGUE = (
    DrillSpec(1, "real-server", "a real server dies and comes back"),
    DrillSpec(2, "kill", "the master director is killed (SIGKILL)"),
    DrillSpec(3, "preempt", "the master comes back and preempts"),
    DrillSpec(4, "handover", "graceful hand-over (SIGTERM)"),
    DrillSpec(5, "partition", "the directors are cut apart (split brain), then healed"),
    DrillSpec(6, "starvation", "the master is frozen (SIGSTOP) for 3x the master-down interval"),
    DrillSpec(7, "crash-loop", "the master crashes and restarts 10 times, 1 s apart"),
    DrillSpec(8, "reload", "30 reloads (SIGHUP) of the master under traffic"),
)


def select(text: str) -> list[int]:
    """Drill numbers from `name,name` or `1,5` (mixed is fine), in catalogue order.

    ValueError names what is not a drill and lists the drills there are.
    """
    by_name = {d.name: d.number for d in CATALOGUE}
    chosen: set[int] = set()
    for word in (w.strip().lower() for w in text.split(",")):
        if not word:
            continue
        if word.isdigit() and 1 <= int(word) <= len(CATALOGUE):
            chosen.add(int(word))
        elif word in by_name:
            chosen.add(by_name[word])
        elif word == "all":
            chosen.update(by_name.values())
        else:
            names = ", ".join(f"{d.number} {d.name}" for d in CATALOGUE)
            raise ValueError(f"no drill {word!r} (drills: {names}; or all)")
    if not chosen:
        raise ValueError("no drill named")
    return sorted(chosen)


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation of a drill and whether it held."""

    passed: bool
    text: str


@dataclass(slots=True)
class DrillResult:
    """What one drill saw: report lines and the expectations judged."""

    number: int
    title: str
    lines: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def expect(self, passed: bool, text: str) -> bool:
        self.checks.append(Check(passed, text))
        return passed

    def add(self, label: str, text: str) -> None:
        self.lines.append(f"  {label:<14}{text}")


# -- reading the client's records --------------------------------------------------------------


def between(records: Sequence[Record], start: float, end: float) -> list[Record]:
    """Requests started in [start, end)."""
    return [r for r in records if start <= r.t0 < end]


def longest_gap(records: Sequence[Record], start: float, end: float) -> float:
    """The longest time without a successful answer within [start, end]."""
    times = sorted(r.t1 for r in records if r.ok and start <= r.t1 <= end)
    points = [start, *times, end]
    return max(b - a for a, b in itertools.pairwise(points))


def first_ok(records: Sequence[Record], after: float,
             pred: Callable[[Record], bool] = lambda r: True) -> float | None:
    """Completion time of the first successful answer started after `after` matching `pred`."""
    times = [r.t1 for r in records if r.ok and r.t0 >= after and pred(r)]
    return min(times) if times else None


def share(counter: Counter[str | None]) -> str:
    total = sum(counter.values())
    if not total:
        return "none"
    return ", ".join(f"{k or '?'} {100 * v / total:.0f}%" for k, v in counter.most_common())


def spread(records: Sequence[Record], names: Sequence[str]) -> str:
    c = Counter(r.rs for r in records if r.ok)
    return "  ".join(f"{n} {c.get(n, 0)}" for n in names)


def failures(records: Sequence[Record]) -> str:
    bad = [r for r in records if not r.ok]
    if not bad:
        return f"{len(records)} sent, 0 failed"
    kinds: Counter[str] = Counter(r.error or f"status {r.status}" for r in bad)
    detail = ", ".join(f"{k} {v}" for k, v in kinds.most_common())
    return f"{len(records)} sent, {len(bad)} failed ({detail})"


class Drills:
    """Runs the drills on a built lab whose client is sending traffic."""

    def __init__(self, run: RunningLab, out: TextIO) -> None:
        self.run = run
        self.topo = run.topo
        self.out = out
        self.reader = RecordReader(run.client_out)
        self.master, self.backup = (d.name for d in self.topo.directors)

    @property
    def records(self) -> list[Record]:
        self.reader.poll()
        return self.reader.records

    def settled(self, director: str, servers: Sequence[str], absent: Sequence[str] = ()) -> bool:
        """True when the last `settle` seconds of traffic were all answered as expected."""
        now = time.monotonic()
        recent = [r for r in self.records if r.t0 >= now - self.topo.settle]
        if len(recent) < 5 or not all(r.ok for r in recent):
            return False
        if any(r.director != director or r.rs in absent for r in recent):
            return False
        seen = {r.rs for r in recent}
        return all(s in seen for s in servers)

    def wait_settled(self, since: float, timeout: float, director: str,
                     servers: Sequence[str], absent: Sequence[str] = ()) -> float | None:
        """Wait until traffic settled (at least `settle` after `since`); the time, or None."""
        settle = self.topo.settle
        deadline = since + timeout + settle
        time.sleep(max(0.0, since + settle - time.monotonic()))
        while time.monotonic() < deadline:
            if self.settled(director, servers, absent):
                return time.monotonic()
            time.sleep(POLL)
        return None

    def report(self, result: DrillResult, event: float, end: float, before: float) -> None:
        """The lines every drill shows: requests, gap, directors and real servers."""
        names = self.topo.real_servers
        # Let requests that were waiting on a connect timeout at `end` be counted too.
        time.sleep(max(0.0, end + self.topo.client_connect_timeout + 0.05 - time.monotonic()))
        recs = self.records
        pre = between(recs, before, event)
        post = between(recs, end - self.topo.settle, end)
        during = between(recs, event, end)
        gap = longest_gap(recs, event - 0.5, end)
        result.figures["longest_gap_s"] = round(gap, 3)
        result.figures["failed"] = sum(1 for r in during if not r.ok)
        result.add("requests", failures(during))
        lat = sorted(r.t1 - r.t0 for r in during if r.ok)
        if lat:
            result.add("latency", f"median {1000 * lat[len(lat) // 2]:.1f} ms, "
                       f"slowest {1000 * lat[-1]:.0f} ms (successful requests)")
        result.add("longest gap", f"{gap:.2f} s without a successful answer")
        result.add("served by", f"before: {share(Counter(r.director for r in pre if r.ok))}; "
                   f"after: {share(Counter(r.director for r in post if r.ok))}")
        result.add("real servers", f"before: {spread(pre, names)}")
        result.add("", f"after:  {spread(post, names)}")

    def _setup(self, res: DrillResult, master_running: bool) -> bool:
        """Start or stop the master outside the measured part, as a drill needs it.

        Drills run in order, so this only acts when some were left out (`--only`).
        """
        proc = self.run.procs.get(self.master)
        servers = self.topo.real_servers
        if (proc is not None and proc.running()) == master_running:
            if not master_running or self.settled(self.master, servers):
                return True
            # Running, but traffic is not (yet) on it: an earlier drill left it recovering,
            # or left the ARP entries for the VIPs on the backup (which the traffic through
            # it keeps confirmed): forget those entries, as a reboot of those hosts would.
            t = time.monotonic()
            what = f"wait for traffic to settle on {self.master}"
            done = self.wait_settled(t, self.topo.margin, self.master, servers)
            if done is None:
                what += ", flushing the client's and real servers' ARP entries for the VIPs"
                self.run.forget_vip_neighbours()
                done = self.wait_settled(time.monotonic(), self.topo.startup, self.master,
                                         servers)
            res.add("setup", f"{what}: {'done' if done else 'FAILED'} "
                    f"({time.monotonic() - t:.1f} s)")
            return res.expect(done is not None, f"setup: {what}")
        t = time.monotonic()
        if master_running:
            what = f"start {self.master} and settle traffic on it"
            self.run.start_director(self.master)
            done = self.wait_settled(t, self.topo.startup, self.master, servers)
        else:
            what = f"stop {self.master} and settle traffic on {self.backup}"
            if proc is not None:
                proc.kill()
            d_backup = self.topo.director(self.backup)
            done = self.wait_settled(t, self.topo.master_down_interval(d_backup.priority)
                                     + 2 * self.topo.margin,
                                     self.backup, servers)
        res.add("setup", f"{what}: {'done' if done else 'FAILED'}")
        return res.expect(done is not None, f"setup: {what}")

    # -- the drills ---------------------------------------------------------------------------

    def prepare(self, timeout: float | None = None) -> str | None:
        """Wait for lvs-a MASTER and clean traffic through the VIP; None, or why not."""
        timeout = self.topo.startup if timeout is None else timeout
        t = time.monotonic()
        master_at = self.run.wait_state(self.master, "MASTER", timeout)
        if master_at is None:
            return f"{self.master} did not become MASTER within {timeout:.0f} s"
        deadline = t + timeout
        settled = None
        balancer_at: float | None = None
        while settled is None and time.monotonic() < deadline:
            settled = self.wait_settled(time.monotonic() - self.topo.settle, 1.0, self.master,
                                        self.topo.real_servers)
            # Not one answer NO_TABLE_GRACE after its load balancer started and no table
            # to answer from: waiting longer changes nothing. (The VRRP side takes the VIPs
            # without waiting for the balancer, which starts in its own process: on a slow
            # machine that is a while later, and the `startup` bound covers it.)
            if (settled is None and not any(r.ok for r in self.records)
                    and not self.run.has_table(self.master)):
                if balancer_at is None and self.run.balancer_started(self.master):
                    balancer_at = time.monotonic()
                if (balancer_at is not None
                        and time.monotonic() > max(master_at, balancer_at) + NO_TABLE_GRACE):
                    break
        if settled is None:
            recs = between(self.records, t, time.monotonic())
            return (f"traffic through the VIP {self.topo.vip}:{self.topo.port} did not settle "
                    f"in {time.monotonic() - t:.0f} s ({failures(recs)}; via "
                    f"{share(Counter(r.director for r in recs if r.ok))})")
        return None

    def real_server_dies(self) -> DrillResult:
        res = DrillResult(1, "a real server dies and comes back")
        if not self._setup(res, master_running=True):
            return res
        victim_index = 1
        victim = self.topo.real_servers[victim_index]
        others = [n for n in self.topo.real_servers if n != victim]
        margin = self.topo.margin
        bound = self.topo.check_time() + margin
        before = time.monotonic() - self.topo.settle
        t = time.monotonic()
        self.run.procs[victim].kill()
        res.add("event", f"{victim} killed (SIGKILL) at +0.00 s")
        out_at = self.wait_settled(t, bound, self.master, others, absent=[victim])
        last_fail = max((r.t0 for r in between(self.records, t, time.monotonic())
                         if not r.ok), default=None)
        if last_fail is not None:
            res.add("taken out", f"last failed request sent at +{last_fail - t:.2f} s")
            res.figures["out_of_rotation_s"] = round(last_fail - t, 3)
        down_recs = between(self.records, t, time.monotonic())
        res.add("while down", f"{failures(down_recs)}; "
                f"{spread(down_recs, self.topo.real_servers)}")
        res.expect(out_at is not None,
                   f"{victim} out of rotation and traffic clean within {bound:.1f} s "
                   f"(check interval + timeouts + {margin:g} s)")
        t_up = time.monotonic()
        self.run.start_real_server(victim_index)
        res.add("event", f"{victim} restarted at +{t_up - t:.2f} s")
        back_bound = bound + 2 * margin / 3
        back = self.wait_settled(t_up, back_bound, self.master, self.topo.real_servers)
        first = first_ok(self.records, t_up, lambda r: r.rs == victim)
        if first is not None:
            res.add("back", f"{victim} answering again at +{first - t:.2f} s "
                    f"({first - t_up:.2f} s after its restart)")
            res.figures["back_in_rotation_s"] = round(first - t_up, 3)
        res.expect(back is not None and first is not None,
                   f"{victim} back in rotation with clean traffic within {back_bound:.1f} s")
        if back is not None:
            time.sleep(self.topo.settle)  # so that "after" shows the spread with the server back
        end = time.monotonic()
        self.report(res, t, end, before)
        served = Counter(r.director for r in between(self.records, before, end) if r.ok)
        res.expect(set(served) == {self.master},
                   f"{self.master} served every answer throughout ({share(served)})")
        return res

    def master_killed(self) -> DrillResult:
        res = DrillResult(2, f"the master director ({self.master}) is killed (SIGKILL)")
        if not self._setup(res, master_running=True):
            return res
        d_backup = self.topo.director(self.backup)
        down = self.topo.master_down_interval(d_backup.priority)
        margin = self.topo.margin
        bound = down + margin
        before = time.monotonic() - self.topo.settle
        t = time.monotonic()
        self.run.procs[self.master].kill()
        res.add("event", f"{self.master} killed (SIGKILL) at +0.00 s")
        master_at = self.run.wait_state(self.backup, "MASTER", bound + 2 * margin / 3)
        if master_at is not None:
            res.add("VRRP", f"{self.backup} MASTER at +{master_at - t:.2f} s "
                    f"(master-down interval {down:.2f} s)")
        ns = self.run.ns[self.topo.director(self.master).role]
        if self.run.lab.has_address(ns, "eth0", self.topo.vip):
            kept = (f"the VIPs and its {self.run.table_name()}"
                    if self.run.has_table(self.master) else "the VIPs")
            res.add("note", f"{self.master}'s kernel kept {kept} after the crash, so it "
                    "forwarded until gratuitous ARP moved the clients")
        end = self.wait_settled(t, bound + margin, self.backup, self.topo.real_servers)
        first = first_ok(self.records, t, lambda r: r.director == self.backup)
        if first is not None:
            res.add("failover", f"first answer via {self.backup} at +{first - t:.2f} s")
            res.figures["failover_s"] = round(first - t, 3)
        res.expect(master_at is not None, f"{self.backup} became MASTER")
        res.expect(first is not None and first - t <= bound,
                   f"traffic via {self.backup} within {bound:.1f} s "
                   f"(master-down interval {down:.2f} s + {margin:g} s)")
        res.expect(end is not None,
                   f"traffic settled on {self.backup}, every request answered, all real servers")
        self.report(res, t, end or time.monotonic(), before)
        return res

    def master_returns(self) -> DrillResult:
        res = DrillResult(3, f"{self.master} comes back and preempts")
        if not self._setup(res, master_running=False):
            return res
        bound = self.topo.startup  # imports, netlink, first checks; slow on a busy machine
        before = time.monotonic() - self.topo.settle
        t = time.monotonic()
        self.run.start_director(self.master)
        res.add("event", f"{self.master} restarted at +0.00 s")
        master_at = self.run.wait_state(self.master, "MASTER", bound)
        if master_at is not None:
            res.add("VRRP", f"{self.master} MASTER at +{master_at - t:.2f} s")
        end = self.wait_settled(t, bound, self.master, self.topo.real_servers)
        first = first_ok(self.records, t, lambda r: r.director == self.master)
        if first is not None:
            res.add("preempted", f"first answer via {self.master} at +{first - t:.2f} s")
            res.figures["preempt_s"] = round(first - t, 3)
        res.expect(master_at is not None, f"{self.master} became MASTER again (preempt)")
        backup_state = self.run.vrrp_state(self.backup)
        res.expect(backup_state == "BACKUP",
                   f"{self.backup} went back to BACKUP (it reports {backup_state})")
        res.expect(end is not None,
                   f"traffic settled on {self.master} within {bound:.0f} s, every request "
                   "answered, all real servers")
        self.report(res, t, end or time.monotonic(), before)
        return res

    def graceful_handover(self) -> DrillResult:
        res = DrillResult(4, f"graceful hand-over: {self.master} stops on SIGTERM")
        if not self._setup(res, master_running=True):
            return res
        d_backup = self.topo.director(self.backup)
        skew = self.topo.skew_time(d_backup.priority)
        down = self.topo.master_down_interval(d_backup.priority)
        bound = skew + 2.0
        before = time.monotonic() - self.topo.settle
        t = time.monotonic()
        proc = self.run.procs[self.master]
        proc.signal(signal.SIGTERM)
        res.add("event", f"{self.master} sent SIGTERM at +0.00 s")
        master_at = self.run.wait_state(self.backup, "MASTER", down + 3)
        if master_at is not None:
            res.add("VRRP", f"{self.backup} MASTER at +{master_at - t:.2f} s "
                    f"(skew time {skew:.2f} s)")
        end = self.wait_settled(t, bound + 3.0, self.backup, self.topo.real_servers)
        first = first_ok(self.records, t, lambda r: r.director == self.backup)
        if first is not None:
            res.add("hand-over", f"first answer via {self.backup} at +{first - t:.2f} s")
            res.figures["handover_s"] = round(first - t, 3)
        try:
            status: int | None = proc.popen.wait(max(0.1, t + 5 - time.monotonic()))
        except Exception:
            status = None
        res.add("exit", f"{self.master} exited with status {status}")
        res.expect(status == 0, f"{self.master} stopped cleanly (exit status 0) within 5 s")
        res.expect(master_at is not None and master_at - t <= bound,
                   f"{self.backup} MASTER within {bound:.1f} s (skew time {skew:.2f} s + 2 s: "
                   "priority 0 advert, no master-down wait)")
        res.expect(first is not None and first - t <= bound + 1.0,
                   f"traffic via {self.backup} within {bound + 1:.1f} s")
        res.expect(end is not None,
                   f"traffic settled on {self.backup}, every request answered, all real servers")
        self.report(res, t, end or time.monotonic(), before)
        return res

    def by_number(self) -> dict[int, Callable[[], DrillResult]]:
        """The drills this class runs, by catalogue number."""
        return {1: self.real_server_dies, 2: self.master_killed, 3: self.master_returns,
                4: self.graceful_handover}


def title(number: int) -> str:
    return CATALOGUE[number - 1].title


def print_result(res: DrillResult, out: TextIO) -> None:
    verdict = "PASS" if res.passed else "FAIL"
    print(f"drill {res.number}/{len(CATALOGUE)}: {res.title} ... {verdict}", file=out)
    for line in res.lines:
        print(line, file=out)
    for c in res.checks:
        print(f"    {'ok  ' if c.passed else 'FAIL'}  {c.text}", file=out)
    print(file=out, flush=True)


def run_drills(drills: Drills, only: Sequence[int]) -> list[DrillResult]:
    """Prepare the lab's traffic, run the drills, print each report as it completes."""
    run, out = drills.run, drills.out
    run.start_client()
    started = time.monotonic()
    problem = drills.prepare()
    if problem is not None:
        print(f"the lab is not serving: {problem}", file=out)
        for line in run.diagnose():
            print(f"  {line}", file=out)
        print(file=out, flush=True)
        results = []
        for n in only:
            res = DrillResult(n, title(n))
            res.expect(False, "not run: the lab is not serving (see above)")
            results.append(res)
            print_result(res, out)
        return results
    recs = drills.records
    recent = [r for r in recs if r.t0 >= time.monotonic() - run.topo.settle]
    print(f"lab serving: VIP {run.topo.vip}:{run.topo.port} answered by "
          f"{spread(recent, run.topo.real_servers)} via {drills.master} "
          f"({drills.master} MASTER, {drills.backup} {run.vrrp_state(drills.backup)}; "
          f"{time.monotonic() - started:.0f} s after the client started)\n",
          file=out, flush=True)
    results = []
    available = drills.by_number()
    for n in only:
        res = available[n]()
        results.append(res)
        if not res.passed:
            for d in run.topo.directors:
                tail = run.log_tail(d.name, 8)
                if tail:
                    res.lines.append(f"  {d.name} log (last lines):")
                    res.lines += [f"    {line}" for line in tail]
        print_result(res, out)
    return results


def as_json(results: Sequence[DrillResult]) -> dict[str, Any]:
    """The drills' outcome for machines: verdicts, checks, figures and report lines."""
    return {
        "passed": bool(results) and all(r.passed for r in results),
        "drills": [
            {"number": r.number, "title": r.title, "passed": r.passed,
             "figures": dict(r.figures),
             "checks": [{"passed": c.passed, "text": c.text} for c in r.checks],
             "report": [line.strip() for line in r.lines]}
            for r in results
        ],
    }


def summary(results: Sequence[DrillResult], out: TextIO) -> None:
    print("summary", file=out)
    for res in results:
        figs = ", ".join(f"{k} {v:g}" for k, v in res.figures.items())
        print(f"  {'PASS' if res.passed else 'FAIL'}  drill {res.number}: {res.title}"
              + (f"  [{figs}]" if figs else ""), file=out)
    failed = sum(1 for r in results if not r.passed)
    print(f"{len(results) - failed} of {len(results)} drills passed", file=out, flush=True)
