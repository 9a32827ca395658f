"""The fault drills (5-8): partition and heal, starvation, crash loop, reload under traffic.

They run on the same lab and client as the failover drills and report the same lines
(requests, gap, who served before and after), plus what each fault is about, read from
the kernel as it happens (`hacluster.lab.watch`): which directors held the VIP when, and
which director's MAC the client's neighbour entry for the VIP named. Their checks hold
hacluster to keepalived's behaviour: a master answers a lower-priority advert with
gratuitous ARPs (so a healed split brain moves the clients back at once), a restarted
director removes the VIPs its crashed predecessor left before anything slow, and a reload
of an unchanged config disturbs nothing.
"""

from __future__ import annotations

import contextlib
import re
import signal
import time
from collections.abc import Callable, Iterator

from hacluster.lab.capture import Capture, Frame
from hacluster.lab.drill import DrillResult, Drills, between, first_ok
from hacluster.lab.netns import LabError
from hacluster.lab.watch import AddressWatch, NeighbourWatch

CRASH_CYCLES = 10
CRASH_EVERY = 1.0  # seconds between crashes, as a supervisor restarting at once would see
RELOADS = 30
RELOAD_EVERY = 0.1  # seconds between SIGHUPs
STARVE_FACTOR = 3  # the master is frozen for this many master-down intervals
_RELOAD_DONE = re.compile(r"reload done in")


def _fmt_line(points: list[tuple[float, str | None]], origin: float) -> str:
    return ", ".join(f"{who or 'none'} at {t - origin:+.2f} s" for t, who in points)


class FaultDrills(Drills):
    """The failover drills and the fault drills on one lab."""

    def by_number(self) -> dict[int, Callable[[], DrillResult]]:
        return {**super().by_number(), 5: self.partition, 6: self.starvation,
                7: self.crash_loop, 8: self.reload_under_traffic}

    # -- observation helpers ----------------------------------------------------------------

    def _vip_watch(self) -> AddressWatch:
        spaces = {d.name: self.run.ns[d.role] for d in self.topo.directors}
        return AddressWatch(self.run.lab, spaces, "eth0", self.topo.vip)

    def _arp_watch(self) -> NeighbourWatch:
        lab = self.run.lab
        macs = {lab.mac(self.run.ns[d.role], "eth0"): d.name for d in self.topo.directors}
        return NeighbourWatch(lab, self.run.ns["client"], "eth0", self.topo.vip, macs)

    @contextlib.contextmanager
    def _watching(self) -> Iterator[tuple[AddressWatch, NeighbourWatch]]:
        with self._vip_watch() as vips, self._arp_watch() as arp:
            yield vips, arp

    def _reach(self, res: DrillResult, since: float, label: str, arp: NeighbourWatch,
               bound: float, wait: float) -> float | None:
        """Wait for the client's traffic to settle on the master after `since`; report when
        it reached the master, when its neighbour entry moved there, and what was lost."""
        end = self.wait_settled(since, wait, self.master, self.topo.real_servers)
        first = first_ok(self.records, since, lambda r: r.director == self.master)
        # The first answer via the master that was followed only by answers via it.
        recs = between(self.records, since, end or time.monotonic())
        strays = [r.t0 for r in recs if not (r.ok and r.director == self.master)]
        back = first_ok(recs, max(strays), lambda r: r.director == self.master) if strays \
            else first
        at_event = arp.at(since)
        moved = arp.moved_to(self.master)
        res.add("client ARP", f"the VIP's entry named {at_event or 'nothing'} at the {label}; "
                + (f"it names {self.master} since {moved - since:+.2f} s" if moved is not None
                   else f"it does not name {self.master}")
                + f" ({_fmt_line(arp.timeline()[1:], since) or 'no change'})")
        lost = [r for r in recs if not r.ok]
        elsewhere = [r for r in recs if r.ok and r.director != self.master]
        res.add(f"after {label}", f"{len(recs)} sent, {len(lost)} failed, "
                f"{len(elsewhere)} answered via {self.backup}")
        res.figures[f"lost_after_{label.lower()}"] = len(lost)
        if back is not None:
            res.add("reached", f"traffic on {self.master} for good from "
                    f"{back - since:+.2f} s after the {label}")
            res.figures["reach_master_s"] = round(back - since, 3)
        else:
            res.add("reached", f"the client did not settle on {self.master} within "
                    f"{wait:.1f} s of the {label}")
        res.expect(back is not None and back - since <= bound,
                   f"the client reached {self.master} within {bound:.1f} s of the {label} "
                   f"(2 x advert interval + {self.topo.margin / 3:g} s: {self.master} answers "
                   f"{self.backup}'s lower-priority advert with gratuitous ARPs)")
        res.expect(end is not None,
                   f"traffic settled on {self.master}, every request answered, all real servers")
        return end

    def _reach_bound(self) -> float:
        return 2 * self.topo.advert_int + self.topo.margin / 3

    # -- the drills ----------------------------------------------------------------------------

    def partition(self) -> DrillResult:
        res = DrillResult(5, f"partition: {self.master} and {self.backup} cut apart, then healed")
        if not self._setup(res, master_running=True):
            return res
        down = self.topo.master_down_interval(self.topo.director(self.backup).priority)
        margin = self.topo.margin
        before = time.monotonic() - self.topo.settle
        split_at: float | None = None
        both: set[str] = set()
        addr = {d.name: f"{self.topo.front}.{d.host}" for d in self.topo.directors}
        # The client's wire shows both directors' adverts and gratuitous ARPs.
        cap = Capture(self.run.lab, self.run.ns["client"], "eth0", name="partition")
        cap.start()
        wall = time.time() - time.monotonic()  # capture times are the kernel's wall clock
        try:
            with self._watching() as (vips, arp):
                t = time.monotonic()
                self.run.cut_directors(True)
                res.add("event", "the directors' links to each other cut at +0.00 s (client "
                        "and real servers still reach both)")
                try:
                    split_at = self.run.wait_state(self.backup, "MASTER", down + margin)
                    if split_at is not None:
                        res.add("split", f"{self.backup} MASTER at +{split_at - t:.2f} s "
                                f"(master-down interval {down:.2f} s); {self.master} "
                                f"{self.run.vrrp_state(self.master)}")
                        # Hold the cut until the client follows the backup's gratuitous
                        # ARPs (the situation a heal has to undo), within a bound.
                        deadline = split_at + margin
                        while time.monotonic() < deadline and first_ok(
                                self.records, split_at,
                                lambda r: r.director == self.backup) is None:
                            time.sleep(0.05)
                        time.sleep(2 * self.topo.advert_int)
                    both = {d.name for d in self.topo.directors
                            if self.run.vrrp_state(d.name) == "MASTER"}
                    during = between(self.records, t, time.monotonic())
                    res.add("during", f"{len(during)} sent, {sum(not r.ok for r in during)} "
                            f"failed; VIP held by "
                            f"{', '.join(sorted(vips.holders())) or 'none'}")
                    # Heal just after the master's advert: the first advert across the
                    # healed link is then the backup's lower-priority one, which the
                    # master must answer (keepalived's garp_lower_prio rule).
                    with contextlib.suppress(LabError):
                        cap.wait_for(lambda f: f.is_advert and f.src == addr[self.master],
                                     2 * self.topo.advert_int, since=cap.mark())
                finally:
                    t_heal = time.monotonic()
                    self.run.cut_directors(False)
                res.add("event", f"healed at +{t_heal - t:.2f} s, just after an advert of "
                        f"{self.master}")
                res.figures["split_s"] = round(t_heal - (split_at or t_heal), 3)
                res.expect(both == {self.master, self.backup},
                           "both directors were MASTER during the cut (the split brain "
                           "happened)")
                gone = self.run.wait_state(self.backup, "BACKUP",
                                           3 * self.topo.advert_int + margin)
                if gone is not None:
                    res.add("VRRP", f"{self.backup} BACKUP at +{gone - t_heal:.2f} s after "
                            "the heal")
                res.expect(gone is not None and self.run.vrrp_state(self.master) == "MASTER",
                           f"after the heal {self.master} MASTER and {self.backup} BACKUP")
                end = self._reach(res, t_heal, "heal", arp, self._reach_bound(),
                                  self.topo.startup / 2)
                res.expect(vips.holders() == {self.master},
                           f"the VIP held by {self.master} alone at the end "
                           f"(held by {', '.join(sorted(vips.holders())) or 'none'})")
                self._after_heal(res, cap.frames(), t_heal + wall, addr)
        finally:
            cap.stop()
        self.report(res, t, end or time.monotonic(), before)
        return res

    def _after_heal(self, res: DrillResult, frames: list[Frame], heal: float,
                    addr: dict[str, str]) -> None:
        """What crossed the client's wire after the heal: adverts, and the master's GARPs."""
        after = [f for f in frames if f.time >= heal]
        adverts = [f for f in after if f.is_advert and f.vrid == self.topo.vrid]
        who = {a: n for n, a in addr.items()}
        last = {}
        for f in frames:
            if f.is_advert and f.vrid == self.topo.vrid and f.time < heal:
                last[who.get(f.src, f.src)] = f
        res.add("before heal", "last adverts: " + ", ".join(
            f"{name} at {f.time - heal:+.2f} s" for name, f in sorted(last.items())))
        first: dict[str, Frame] = {}
        for f in adverts:
            first.setdefault(who.get(f.src, f.src), f)
        order = sorted(first.items(), key=lambda kv: kv[1].time)
        res.add("adverts", ", ".join(f"{name} (priority {f.priority}) first at "
                                     f"+{f.time - heal:.2f} s" for name, f in order)
                or "none seen after the heal")
        loser = first.get(self.backup)
        # Whichever advert crosses first, the master must hear the backup's lower-priority
        # one: first (the heal is timed for that), or as the backup's answer to the
        # master's advert (higher_prio_send_advert, set in the lab's configuration).
        res.expect(loser is not None,
                   f"{self.backup}'s lower-priority advert crossed the healed link"
                   + ("" if loser is None or self.master not in first
                      or loser.time < first[self.master].time
                      else f" (after {self.master}'s: higher_prio_send_advert)"))
        mac = self.run.lab.mac(self.run.ns[self.topo.director(self.master).role], "eth0")
        garps = [f for f in after if f.kind == "arp" and f.gratuitous
                 and f.src == self.topo.vip and f.src_mac == mac]
        res.figures["master_garps_after_heal"] = len(garps)
        res.expect(bool(garps), f"{self.master} re-announced the VIP after the heal")
        if garps and loser is not None:
            res.add("GARP", f"{self.master} sent {len(garps)} gratuitous ARPs for the VIP "
                    f"after the heal, the first {1000 * (garps[0].time - loser.time):.0f} ms "
                    f"after {self.backup}'s advert")
        else:
            res.add("GARP", f"{self.master} sent no gratuitous ARP for the VIP after the heal")

    def starvation(self) -> DrillResult:
        d_backup = self.topo.director(self.backup)
        down = self.topo.master_down_interval(d_backup.priority)
        freeze = STARVE_FACTOR * down
        res = DrillResult(6, f"starvation: {self.master} frozen (SIGSTOP) for {freeze:.2f} s "
                          f"({STARVE_FACTOR}x the master-down interval), then SIGCONT")
        if not self._setup(res, master_running=True):
            return res
        margin = self.topo.margin
        before = time.monotonic() - self.topo.settle
        with self._watching() as (_vips, arp):
            t = time.monotonic()
            self.run.signal_director(self.master, signal.SIGSTOP)
            res.add("event", f"{self.master} stopped (SIGSTOP, whole process group) at +0.00 s")
            try:
                took = self.run.wait_state(self.backup, "MASTER", freeze)
                time.sleep(max(0.0, t + freeze - time.monotonic()))
            finally:
                t_cont = time.monotonic()
                self.run.signal_director(self.master, signal.SIGCONT)
            res.add("event", f"{self.master} continued (SIGCONT) at +{t_cont - t:.2f} s")
            if took is not None:
                res.add("takeover", f"{self.backup} MASTER at +{took - t:.2f} s "
                        f"(master-down interval {down:.2f} s)")
                first = first_ok(self.records, t, lambda r: r.director == self.backup)
                if first is not None and first < t_cont:
                    res.add("", f"first answer via {self.backup} at +{first - t:.2f} s")
                    res.figures["takeover_s"] = round(first - t, 3)
            res.expect(took is not None and took - t <= down + margin,
                       f"{self.backup} took over while {self.master} was frozen, within "
                       f"{down + margin:.2f} s (master-down interval + {margin:g} s)")
            gone = self.run.wait_state(self.backup, "BACKUP", 3 * self.topo.advert_int + margin)
            if gone is not None:
                res.add("give-back", f"{self.backup} BACKUP at +{gone - t_cont:.2f} s "
                        "after SIGCONT")
            res.expect(gone is not None and self.run.vrrp_state(self.master) == "MASTER",
                       f"after SIGCONT {self.master} MASTER (preempt) and {self.backup} BACKUP")
            end = self._reach(res, t_cont, "SIGCONT", arp, self._reach_bound(),
                              self.topo.startup / 2)
        self.report(res, t, end or time.monotonic(), before)
        return res

    def crash_loop(self) -> DrillResult:
        res = DrillResult(7, f"crash loop: {self.master} crashes (SIGKILL) and restarts "
                          f"{CRASH_CYCLES} times, {CRASH_EVERY:g} s apart")
        if not self._setup(res, master_running=True):
            return res
        advert = self.topo.advert_int
        before = time.monotonic() - self.topo.settle
        names = [d.name for d in self.topo.directors]
        with self._vip_watch() as vips:
            t = time.monotonic()
            restarted = t
            for i in range(CRASH_CYCLES):
                time.sleep(max(0.0, t + i * CRASH_EVERY - time.monotonic()))
                self.run.crash_director(self.master)
                restarted = time.monotonic()
                self.run.start_director(self.master)
            res.add("event", f"{CRASH_CYCLES} crashes (SIGSTOP then SIGKILL of the process "
                    f"group) each followed at once by a restart, the last at "
                    f"+{restarted - t:.2f} s")
            master_at = self.run.wait_state(self.master, "MASTER", self.topo.startup)
            end = self.wait_settled(restarted, self.topo.startup, self.master,
                                    self.topo.real_servers)
            stop = end or time.monotonic()
            both = vips.time_held_by_all(t, stop, names)
            taken = vips.count(self.backup, True, t, stop)
            res.add("VIP", f"both directors held it for {both:.2f} s in total; {self.backup} "
                    f"took it {taken} times; holders now "
                    f"{', '.join(sorted(vips.holders())) or 'none'}")
            res.figures["both_held_s"] = round(both, 3)
            last = vips.last_change(restarted)
            if master_at is not None:
                converged = max(master_at, last or master_at) - restarted
                res.add("converged", f"{converged:.2f} s after the last restart "
                        f"({self.master} MASTER at +{master_at - restarted:.2f} s"
                        + (f", VIP holders last changed at +{last - restarted:.2f} s)"
                           if last is not None else ", VIP holders unchanged)"))
                res.figures["convergence_s"] = round(converged, 3)
            res.expect(both <= advert,
                       f"both directors held the VIP at most {advert:.2f} s in total (one "
                       "advert interval: a restarted director removes the VIPs its "
                       "predecessor left before anything slow)")
            res.expect(master_at is not None and self.run.vrrp_state(self.backup) == "BACKUP",
                       f"after the last restart {self.master} MASTER and {self.backup} BACKUP")
            res.expect(vips.holders() == {self.master},
                       f"the VIP held by {self.master} alone at the end")
            res.expect(end is not None,
                       f"traffic settled on {self.master} within {self.topo.startup:.0f} s of "
                       "the last restart, every request answered, all real servers")
        self.report(res, t, end or time.monotonic(), before)
        return res

    def _reloads_done(self) -> int:
        return len(_RELOAD_DONE.findall(self.run.procs[self.master].output()))

    def reload_under_traffic(self) -> DrillResult:
        res = DrillResult(8, f"reload under traffic: {RELOADS} SIGHUPs to {self.master}, "
                          f"{RELOAD_EVERY:g} s apart")
        if not self._setup(res, master_running=True):
            return res
        proc = self.run.procs[self.master]
        done_before = self._reloads_done()
        before = time.monotonic() - self.topo.settle
        states: set[str | None] = set()
        with self._vip_watch() as vips:
            t = time.monotonic()
            for i in range(RELOADS):
                time.sleep(max(0.0, t + i * RELOAD_EVERY - time.monotonic()))
                proc.signal(signal.SIGHUP)
                states.add(self.run.vrrp_state(self.master))
            last = time.monotonic()
            res.add("event", f"{RELOADS} SIGHUPs from +0.00 s to +{last - t:.2f} s")
            end = self.wait_settled(last, self.topo.startup, self.master,
                                    self.topo.real_servers)
            stop = end or time.monotonic()
            lost_vip = vips.count(self.master, False, t, stop)
        done = self._reloads_done() - done_before
        during = between(self.records, t, stop)
        failed = sum(1 for r in during if not r.ok)
        res.add("reloads", f"{done} completed (SIGHUPs that arrive during a reload are "
                "merged into the next)")
        res.figures["reloads_done"] = done
        res.expect(proc.running(), f"{self.master} still running")
        res.expect(done >= 1, f"{self.master} logged at least one completed reload")
        res.expect(states == {"MASTER"} and self.run.vrrp_state(self.master) == "MASTER"
                   and self.run.vrrp_state(self.backup) == "BACKUP",
                   f"{self.master} stayed MASTER and {self.backup} BACKUP "
                   f"({self.master} reported {', '.join(sorted(map(str, states)))})")
        res.expect(lost_vip == 0,
                   f"{self.master} never dropped the VIP ({lost_vip} removals seen)")
        res.expect(failed == 0 and end is not None,
                   f"every request answered during the reloads ({failed} failed)")
        self.report(res, t, stop, before)
        return res

