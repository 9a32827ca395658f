"""Alert mail and notify FIFOs of `hacluster run`, end to end in namespaces (prefix hpa).

A director (VRRP instance, one virtual server with a TCP_CHECK, dataplane none) and a
real server on one bridge; a real SMTP server (aiosmtpd, tests/integration/smtp_sink.py)
in the director's namespace; FIFO readers are real processes.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from hacluster.lab.capture import Capture
from hacluster.lab.netns import Lab, LabProcess, Netns, sweep

PREFIX = "hpa"
HACLUSTER = str(Path(sys.executable).with_name("hacluster"))
SINK = str(Path(__file__).with_name("smtp_sink.py"))
VIP = "10.81.0.100"
RS_IP = "10.81.0.11"
SMTP_PORT = 2525

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and ip"
)
pytestmark = [pytest.mark.netns, needs_root]


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 10.0,
             detail: Callable[[], str] = lambda: "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{detail()}")
        time.sleep(0.05)


@dataclass
class Rig:
    lab: Lab
    director: Netns
    real: Netns
    realserver: LabProcess
    daemon: LabProcess | None = None

    @property
    def work(self) -> Path:
        return self.lab.workdir

    def config(self, **global_defs: Any) -> Path:
        doc = {
            "global_defs": {
                "router_id": "hpa-dir", "dataplane": "none",
                "control_socket": str(self.work / "ctl.sock"),
                "notification_email": ["ops@example.net", "NOC <noc@example.net>"],
                "notification_email_from": "lb-a@example.net",
                "smtp_helo_name": "lb-a.example.net",
                "smtp_alert": True,
                **global_defs,
            },
            "vrrp_instances": {"VI_1": {
                "interface": "eth0", "state": "MASTER", "virtual_router_id": 81,
                "priority": 150, "advert_int": 0.2, "version": 3, "garp_master_delay": 0,
                "virtual_ipaddress": [f"{VIP}/24"],
            }},
            "virtual_servers": [{
                "ip": VIP, "port": 80, "protocol": "TCP", "lb_algo": "rr", "delay_loop": 0.3,
                "real_servers": [{"ip": RS_IP, "port": 80, "TCP_CHECK": {
                    "connect_timeout": 1, "retry": 0, "delay_before_retry": 0.2}}],
            }],
        }
        path = self.work / "hacluster.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def start_daemon(self, config: Path) -> LabProcess:
        self.daemon = self.lab.start(
            self.director, [HACLUSTER, "run", "-f", str(config)], log_name="daemon"
        )
        return self.daemon

    def log(self) -> str:
        return self.daemon.output() if self.daemon is not None else ""

    def wait_log(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        found: re.Match[str] = wait_for(
            f"{pattern!r} in the daemon log", lambda: re.search(pattern, self.log()),
            timeout, self.log,
        )
        return found

    def start_sink(self, out: Path, *, closed: bool = False) -> LabProcess:
        """The SMTP server, listening; `closed`: started but refusing until `open_sink`."""
        proc = self.lab.start(self.director, [sys.executable, SINK, "127.0.0.1",
                                              str(SMTP_PORT), str(out),
                                              *(["closed"] if closed else [])],
                              log_name="smtp")
        wait_for("the SMTP server", lambda: ("ready" if closed else "listening")
                 in proc.output(), 30, proc.output)
        return proc

    @staticmethod
    def open_sink(proc: LabProcess) -> None:
        proc.signal(signal.SIGUSR1)
        wait_for("the SMTP server to listen", lambda: "listening" in proc.output(), 10,
                 proc.output)

    def stop_daemon(self) -> int:
        assert self.daemon is not None
        self.daemon.signal(signal.SIGTERM)
        return self.daemon.popen.wait(15)


def _log_time(stamp: str) -> float:
    """A log line's time (ISO 8601, as the daemon writes it) as a Unix timestamp."""
    return datetime.fromisoformat(stamp).timestamp()


def mails(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session", autouse=True)
def _sweep() -> None:
    sweep(PREFIX)


@pytest.fixture
def rig() -> Iterator[Rig]:
    with Lab(PREFIX) as lab:
        sw = lab.namespace("sw")
        lab.bridge(sw)
        director = lab.namespace("dir")
        lab.attach(director, "eth0", sw, "br0", ["10.81.0.2/24"])
        real = lab.namespace("rs")
        lab.attach(real, "eth0", sw, "br0", [f"{RS_IP}/24"])
        rs = lab.start(real, [sys.executable, "-m", "hacluster.lab.realserver", "--name", "rs1",
                              "--listen", "80=dir"], log_name="rs1")
        r = Rig(lab, director, real, rs)
        try:
            yield r
        finally:
            if r.daemon is not None and r.daemon.running():
                r.daemon.signal(signal.SIGTERM)
                try:
                    r.daemon.popen.wait(10)
                except Exception:
                    r.daemon.kill()


def _fifo_lines(rig: Rig, fifo: Path, name: str) -> Path:
    """Once the daemon writes `fifo` (notify_fifo), a reader copies it into a file of the
    work directory called `name`: that file."""
    rig.wait_log(r"notify_fifo: writing events to")
    lines = rig.work / name
    rig.lab.start(rig.director, ["sh", "-c", f"cat {fifo} > {lines}"], log_name="reader")
    return lines


def test_transition_and_real_server_down_send_mail_and_fifo_lines(rig: Rig) -> None:
    inbox = rig.work / "inbox.jsonl"
    rig.start_sink(inbox)
    fifo = rig.work / "events.fifo"
    lvs_fifo = rig.work / "lvs.fifo"
    seen = rig.work / "seen.txt"
    reader = rig.work / "reader.sh"
    # keepalived's notify_fifo_script contract: the FIFO's path is the last argument.
    reader.write_text(f'#!/bin/sh\nwhile read -r line; do echo "$line" >> {seen}; done < "$1"\n')
    reader.chmod(0o755)
    rig.start_daemon(rig.config(
        smtp_server=f"127.0.0.1:{SMTP_PORT}", notify_fifo=str(fifo),
        notify_fifo_script=str(reader), lvs_notify_fifo=str(lvs_fifo),
    ))
    rig.wait_log(r"mail sent: \[hpa-dir\] VRRP Instance VI_1 - Entering MASTER state")
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    lvs_lines = rig.work / "lvs.txt"
    lvs_reader = rig.lab.start(rig.director, ["sh", "-c", f"cat {lvs_fifo} > {lvs_lines}"],
                               log_name="lvs-reader")

    master = [m for m in mails(inbox) if "Entering MASTER" in m["headers"]["Subject"]]
    assert len(master) == 1, mails(inbox)
    mail = master[0]
    assert mail["headers"]["Subject"] == "[hpa-dir] VRRP Instance VI_1 - Entering MASTER state"
    assert mail["body"].strip() == "=> VRRP Instance is now owning VRRP VIPs <="
    assert mail["headers"]["From"] == "lb-a@example.net"
    assert mail["headers"]["To"] == "ops@example.net, NOC <noc@example.net>"
    assert mail["headers"]["X-Mailer"] == "hacluster"
    assert "Date" in mail["headers"]
    assert mail["mail_from"] == "lb-a@example.net"
    assert mail["rcpt_tos"] == ["ops@example.net", "noc@example.net"]
    assert mail["helo"] == "lb-a.example.net"
    wait_for("the MASTER line in the FIFO", lambda: seen.exists() and
             'INSTANCE "VI_1" MASTER 150' in seen.read_text(), 5, rig.log)

    # The real server goes away: TCP_CHECK fails, the server and the quorum go down.
    rig.realserver.signal(signal.SIGTERM)
    rs_subject = (f"[hpa-dir] Realserver [{RS_IP}]:tcp:80 of virtual server "
                  f"[{VIP}]:tcp:80 - DOWN")
    wait_for("the real server mail", lambda: any(
        m["headers"]["Subject"] == rs_subject for m in mails(inbox)), 15, rig.log)
    (rs_mail,) = [m for m in mails(inbox) if m["headers"]["Subject"] == rs_subject]
    assert rs_mail["body"].strip() == "=> TCP CHECK failed on service <="
    vs_subject = f"[hpa-dir] Virtualserver [{VIP}]:tcp:80 - DOWN"
    wait_for("the quorum mail", lambda: any(
        m["headers"]["Subject"] == vs_subject for m in mails(inbox)), 10, rig.log)
    (vs_mail,) = [m for m in mails(inbox) if m["headers"]["Subject"] == vs_subject]
    assert vs_mail["body"].strip() == "=> Lost quorum 1+0=1 <= 0 <="

    rs_line = f"RS [{RS_IP}]:tcp:80 [{VIP}]:tcp:80 DOWN"
    vs_line = f"VS [{VIP}]:tcp:80 DOWN"
    wait_for("RS and VS lines in both FIFOs", lambda: (
        rs_line in seen.read_text() and vs_line in seen.read_text()
        and lvs_lines.exists() and rs_line in lvs_lines.read_text()
        and vs_line in lvs_lines.read_text()), 5, rig.log)
    assert "INSTANCE" not in lvs_lines.read_text()  # the LVS FIFO has LVS lines only

    assert rig.stop_daemon() == 0
    # At stop the FIFOs it created are removed and their readers see end of file.
    assert not fifo.exists() and not lvs_fifo.exists()
    wait_for("the lvs reader to end", lambda: not lvs_reader.running(), 5)
    stop_subject = "[hpa-dir] VRRP Instance VI_1 - Stopping"
    assert any(m["headers"]["Subject"] == stop_subject for m in mails(inbox)), mails(inbox)
    assert 'INSTANCE "VI_1" STOP' in seen.read_text()


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _scrape(rig: Rig) -> str:
    import asyncio

    import aiohttp

    # The VRRP process starts (and mails) before the supervisor's control socket is up.
    wait_for("the control socket", (rig.work / "ctl.sock").exists, 15, rig.log)

    async def get() -> str:
        connector = aiohttp.UnixConnector(path=str(rig.work / "ctl.sock"))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get("http://hacluster/metrics") as resp,
        ):
            return await resp.text()
    return asyncio.run(get())


FAILED_ATTEMPT = r"mail to \S+ failed \(attempt \d+\)"


def _counts_match_log(rig: Rig, sent: int | None = None) -> bool:
    """Whether the metrics count every failed attempt the log shows (and `sent` mails).
    (A process counts an attempt a moment before it logs it: both are read until they
    agree, which they do once the attempts in flight are over.)"""
    text = _scrape(rig)
    failed = len(re.findall(FAILED_ATTEMPT, rig.log()))
    return failed >= 1 and (
        _metric(text, "hacluster_alert_mails_total", result="failed") == failed
        and (sent is None
             or _metric(text, "hacluster_alert_mails_total", result="sent") == sent))


def test_smtp_server_down_is_retried_logged_and_counted(rig: Rig) -> None:
    inbox = rig.work / "inbox.jsonl"
    sink = rig.start_sink(inbox, closed=True)  # up, but refusing connections for now
    rig.start_daemon(rig.config(smtp_server=f"127.0.0.1:{SMTP_PORT}"))
    rig.wait_log(r"mail to 127\.0\.0\.1:2525 failed \(attempt 1\): .*retrying in 5s")
    # (the VRRP process may be that fast: the supervisor's API comes a moment later)
    rig.wait_log(r"\[api\] control API on")
    # The VRRP process and the balancer each send their own alerts: every failed
    # attempt logged is counted once, and nothing is counted as sent.
    wait_for("the failed attempts counted", lambda: _counts_match_log(rig, sent=0), 15,
             rig.log)
    rig.wait_log(r"\[VI_1\] .*-> MASTER")  # VRRP goes on meanwhile

    # The server comes up: the queued mail goes out on the next attempt, which the log
    # announced (5 s after the first failure; 30 s after the second, should this
    # process have been kept from opening the server that long).
    rig.open_sink(sink)
    patience = 15 + max(float(d) for d in re.findall(r"retrying in ([\d.]+)s", rig.log()))
    expected = ["[hpa-dir] VRRP Instance VI_1 - Entering BACKUP state",
                "[hpa-dir] VRRP Instance VI_1 - Entering MASTER state",
                f"[hpa-dir] Virtualserver [{VIP}]:tcp:80 - UP"]

    def subjects() -> list[str]:
        return [m["headers"]["Subject"] for m in mails(inbox)]

    wait_for("the queued mails", lambda: set(subjects()) >= set(expected), patience,
             lambda: f"{subjects()}\n{rig.log()}")
    wait_for("every mail and attempt counted",
             lambda: _counts_match_log(rig, sent=len(mails(inbox))), 15, rig.log)
    # Every mail queued meanwhile went out once, a process's own in their order.
    assert sorted(subjects()) == sorted(expected), subjects()
    assert subjects().index(expected[0]) < subjects().index(expected[1])
    assert rig.stop_daemon() == 0


def test_a_hanging_smtp_server_does_not_slow_vrrp(rig: Rig) -> None:
    # A server that accepts connections and never answers: the attempt waits for
    # smtp_connect_timeout, and meanwhile the master keeps sending adverts on time.
    hang = rig.lab.start(rig.director, [sys.executable, "-c", (
        "import socket, time\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 2526)); s.listen(16)\n"
        "print('listening', flush=True); time.sleep(600)\n")], log_name="hang")
    wait_for("the hanging server", lambda: "listening" in hang.output(), 10, hang.output)
    cap = Capture(rig.lab, rig.real, "eth0", name="adverts")
    cap.start()
    rig.start_daemon(rig.config(smtp_server="127.0.0.1:2526", smtp_connect_timeout=3))
    # The VRRP process's first mail (BACKUP) hangs from before it became master until
    # the attempt times out: the adverts of that window, by the log's clock and the
    # capture's (both wall-clock).
    master = rig.wait_log(r"(\S+) \w+ +\[VI_1\] .*-> MASTER")
    failed = rig.wait_log(r"(\S+) \w+ +mail to 127\.0\.0\.1:2526 failed \(attempt 1\): "
                          r".*[Tt]imeout")
    since, until = _log_time(master[1]), _log_time(failed[1])
    times = [f.time for f in cap.adverts(vrid=81) if since <= f.time <= until]
    gaps = [b - a for a, b in itertools.pairwise([since, *times, until])]
    print(f"adverts while the SMTP server hangs: {len(times)} in {until - since:.2f} s, "
          f"largest gap {max(gaps) * 1000:.1f} ms (advert_int 200 ms)")
    # The protocol's bound: a backup takes over after 3 x advert_int of silence.
    assert len(times) >= 5 and max(gaps) < 0.6, gaps
    wait_for("the failed attempts counted", lambda: _counts_match_log(rig, sent=0), 15,
             rig.log)
    assert rig.stop_daemon() == 0




def test_a_reload_adds_a_fifo(rig: Rig) -> None:
    config = rig.config()  # no mail server, no FIFO: no alert outputs at start
    rig.start_daemon(config)
    rig.wait_log(r"load balancer started")
    fifo = rig.work / "all.fifo"
    rig.config(notify_fifo=str(fifo))
    assert rig.daemon is not None
    rig.daemon.signal(signal.SIGHUP)
    lines = _fifo_lines(rig, fifo, "lines.txt")
    # (lines written before the reader opens it wait in the pipe: the daemon holds it open)
    rig.realserver.signal(signal.SIGTERM)
    rs_line = f"RS [{RS_IP}]:tcp:80 [{VIP}]:tcp:80 DOWN"
    wait_for("the RS line", lambda: lines.exists() and rs_line in lines.read_text(), 10,
             rig.log)
    assert rig.stop_daemon() == 0
    assert 'INSTANCE "VI_1" STOP' in lines.read_text()


KEEPALIVED_SAMPLE = Path("/usr/share/doc/keepalived/samples/sample_notify_fifo.sh.gz")


def test_keepalived_s_own_fifo_reader_understands_the_lines(rig: Rig) -> None:
    """keepalived's sample_notify_fifo.sh as notify_fifo_script: it parses each line by
    its type and logs what it read to /tmp/FIFONAME.log."""
    import gzip

    assert KEEPALIVED_SAMPLE.exists(), "keepalived's samples are installed with it"
    script = rig.work / "sample_notify_fifo.sh"
    script.write_bytes(gzip.decompress(KEEPALIVED_SAMPLE.read_bytes()))
    script.chmod(0o755)
    fifo = rig.work / f"{rig.lab.tag}.fifo"
    log = Path("/tmp") / f"{fifo.name}.log"
    pid_file = Path("/run") / f"{fifo.name}.pid"
    try:
        rig.start_daemon(rig.config(notify_fifo=str(fifo), notify_fifo_script=str(script)))
        wait_for("the reader's MASTER line", lambda: log.exists()
                 and "INSTANCE VI_1 MASTER 150" in log.read_text(), 15, rig.log)
        rig.realserver.signal(signal.SIGTERM)
        wait_for("the reader's RS and VS lines", lambda: (
            f"RS [{RS_IP}]:tcp:80 [{VIP}]:tcp:80 DOWN" in log.read_text()
            and f"VS [{VIP}]:tcp:80 DOWN" in log.read_text()), 15, rig.log)
        assert "unknown" not in log.read_text()
        assert rig.stop_daemon() == 0
        text = log.read_text()
        assert "INSTANCE VI_1 STOP" in text, text
    finally:
        log.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)


def test_priority_changes_go_to_the_fifo_when_asked(rig: Rig) -> None:
    """notify_priority_changes: a track_file moving the priority writes keepalived's
    MASTER_PRIORITY line to the FIFO (and no mail)."""
    inbox = rig.work / "inbox.jsonl"
    rig.start_sink(inbox)
    fifo = rig.work / "prio.fifo"
    prio = rig.work / "prio"
    prio.write_text("0\n")
    config = rig.config(smtp_server=f"127.0.0.1:{SMTP_PORT}", notify_fifo=str(fifo),
                        vrrp_notify_priority_changes=True)
    doc = yaml.safe_load(config.read_text())
    doc["vrrp_track_files"] = {"tf": {"file": str(prio), "weight": 1}}
    doc["vrrp_instances"]["VI_1"]["track_file"] = ["tf"]
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    rig.start_daemon(config)
    lines = _fifo_lines(rig, fifo, "prio.txt")
    wait_for("the MASTER line", lambda: lines.exists()
             and 'INSTANCE "VI_1" MASTER 150' in lines.read_text(), 10, rig.log)
    prio.write_text("7\n")
    wait_for("the priority line", lambda: 'INSTANCE "VI_1" MASTER_PRIORITY 157'
             in lines.read_text(), 10, rig.log)
    time.sleep(0.5)
    assert not [m for m in mails(inbox) if "PRIORITY" in m["headers"]["Subject"]]


def test_fifos_are_created_for_their_owner(rig: Rig) -> None:
    """`notify_fifo FILE user [group]`: created and chowned, as keepalived does; an
    existing FIFO of that owner is used as it is."""
    import grp
    import os
    import pwd

    fifo, vrrp_fifo = rig.work / "owned.fifo", rig.work / "vrrp-owned.fifo"
    lvs_fifo = rig.work / "lvs-owned.fifo"
    os.mkfifo(lvs_fifo, 0o600)
    os.chown(lvs_fifo, pwd.getpwnam("daemon").pw_uid, -1)
    rig.start_daemon(rig.config(
        notify_fifo=str(fifo), notify_fifo_user="nobody",
        vrrp_notify_fifo=str(vrrp_fifo), vrrp_notify_fifo_user="daemon",
        vrrp_notify_fifo_group="adm",
        lvs_notify_fifo=str(lvs_fifo), lvs_notify_fifo_user="daemon"))
    rig.wait_log(r"lvs_notify_fifo: writing events to")
    nobody, daemon = pwd.getpwnam("nobody"), pwd.getpwnam("daemon")
    assert (fifo.stat().st_uid, fifo.stat().st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert (vrrp_fifo.stat().st_uid, vrrp_fifo.stat().st_gid) == (
        daemon.pw_uid, grp.getgrnam("adm").gr_gid)
    assert (lvs_fifo.stat().st_uid, lvs_fifo.stat().st_mode & 0o777) == (daemon.pw_uid, 0o600)
    # the FIFO's owner reads the lines (a reader running as nobody)
    rig.work.chmod(0o711)  # the lab's directory is 0700: let nobody reach the FIFO
    lines = rig.work / "owned.txt"
    lines.touch()
    os.chown(lines, nobody.pw_uid, -1)
    rig.lab.start(rig.director, ["setpriv", f"--reuid={nobody.pw_uid}",
                                 f"--regid={nobody.pw_gid}", "--clear-groups", "sh", "-c",
                                 f"cat {fifo} >> {lines}"], log_name="reader")
    rig.realserver.signal(signal.SIGTERM)
    rs_line = f"RS [{RS_IP}]:tcp:80 [{VIP}]:tcp:80 DOWN"
    wait_for("the RS line", lambda: rs_line in lines.read_text(), 10, rig.log)
    assert rig.stop_daemon() == 0
    assert not fifo.exists() and lvs_fifo.exists()  # only what it created is removed


def test_states_are_written_to_the_fifo_on_reload_when_asked(rig: Rig) -> None:
    fifo = rig.work / "states.fifo"
    config = rig.config(vrrp_notify_fifo=str(fifo), fifo_write_vrrp_states_on_reload=True)
    rig.start_daemon(config)
    rig.wait_log(r"vrrp_notify_fifo: writing events to")
    lines = rig.work / "states.txt"
    rig.lab.start(rig.director, ["sh", "-c", f"cat {fifo} > {lines}"], log_name="reader")
    master = 'INSTANCE "VI_1" MASTER 150\n'

    def count() -> int:
        return lines.read_text().count(master) if lines.exists() else 0

    wait_for("the MASTER line", lambda: count() == 1, 10, rig.log)
    assert rig.daemon is not None
    rig.daemon.signal(signal.SIGHUP)  # the same file: keepalived writes the states anyway
    wait_for("the states again", lambda: count() == 2, 10, rig.log)
    text = config.read_text().replace("delay_loop: 0.3", "delay_loop: 0.4")
    config.write_text(text)
    rig.daemon.signal(signal.SIGHUP)
    wait_for("the states after a change", lambda: count() == 3, 10, rig.log)
    config.write_text(text.replace("fifo_write_vrrp_states_on_reload: true",
                                   "fifo_write_vrrp_states_on_reload: false"))
    rig.daemon.signal(signal.SIGHUP)
    rig.wait_log(r"reload done.*\n(.|\n)*reload done.*\n(.|\n)*reload done")
    time.sleep(0.5)
    assert count() == 3  # not asked: no lines
    assert rig.stop_daemon() == 0
    assert lines.read_text().endswith('INSTANCE "VI_1" STOP 150\n')


def test_a_sync_group_s_notify_priority_changes_reaches_its_members(rig: Rig) -> None:
    """vrrp_sync_group { notify_priority_changes }: a member that sets none writes its
    MASTER_PRIORITY lines (keepalived's rule), with the global setting off. (A group's
    tracking is fault-only, as keepalived's; maintenance moves the priority here. A
    one-member group runs, as keepalived runs it after a warning.)"""
    fifo = rig.work / "gprio.fifo"
    config = rig.config(notify_fifo=str(fifo))
    doc = yaml.safe_load(config.read_text())
    doc["vrrp_sync_groups"] = {"G1": {"group": ["VI_1"], "notify_priority_changes": True}}
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    rig.start_daemon(config)
    lines = _fifo_lines(rig, fifo, "gprio.txt")
    wait_for("the MASTER line", lambda: lines.exists()
             and 'INSTANCE "VI_1" MASTER 150' in lines.read_text(), 10, rig.log)
    assert 'GROUP "G1" MASTER' in lines.read_text()
    rig.wait_log(r"control API on unix:")
    rig.lab.run(rig.director, [HACLUSTER, "maintenance", "VI_1", "on", "--control-socket",
                               str(rig.work / "ctl.sock")])
    wait_for("the priority line", lambda: 'INSTANCE "VI_1" MASTER_PRIORITY 1\n'
             in lines.read_text(), 10, rig.log)
