"""die_with_parent: a child started with it gets SIGTERM when its parent is SIGKILLed.

As keepalived's: the notify scripts (`hacluster.scripts.run`, which runs every notify,
track and FIFO reader script) and the MISC_CHECK programs (`healthchecks.script`) are
such children, each in a session of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (reaped by init later) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_child_dies_with_its_killed_parent() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import functools, os, subprocess, time\n"
         "from healthchecks.pdeath import die_with_parent\n"
         "p = subprocess.Popen(['sleep', '60'], "
         "preexec_fn=functools.partial(die_with_parent, os.getpid()))\n"
         "print(p.pid, flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert _alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child)


#: A program that writes its pid where it is told, then sleeps (its pid stays: exec).
_SLEEPER = "echo $$ > {pidfile}; exec sleep 60"

_PARENTS = {
    "notify script": (
        "import asyncio, sys\n"
        "from hacluster.scripts import Script, run\n"
        "asyncio.run(run(Script(('/bin/sh', '-c', sys.argv[1])), timeout=60))\n"
    ),
    "MISC_CHECK": (
        "import asyncio, shlex, sys\n"
        "from healthchecks.params import MiscCheckParams\n"
        "from healthchecks.script import MiscCheck\n"
        "path = shlex.join(('/bin/sh', '-c', sys.argv[1]))\n"
        "asyncio.run(MiscCheck(MiscCheckParams(path, misc_timeout=60)).check())\n"
    ),
}


@pytest.mark.parametrize("kind", sorted(_PARENTS))
def test_scripts_die_with_their_killed_daemon(kind: str, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENTS[kind], _SLEEPER.format(pidfile=pidfile)])
    try:
        deadline = time.monotonic() + 30
        while not pidfile.exists() or not pidfile.read_text().strip():
            assert parent.poll() is None, f"the parent exited with {parent.returncode}"
            assert time.monotonic() < deadline, "the script never started"
            time.sleep(0.02)
        child = int(pidfile.read_text())
        assert _alive(child)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child), f"the {kind} outlived the process that started it"
