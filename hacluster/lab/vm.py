"""QEMU guest with a real IPVS kernel: boots it, and runs commands and Python calls in it.

The guest is Debian's stock kernel (prepared by `deploy/vm/prepare.sh` in a cache outside
the repo) with a busybox initramfs that mounts the host's `/` read-only over virtio-9p,
plus the repo and a writable work directory at their host paths. Its init starts
`hacluster.lab.vm_agent` with the host's Python; this module talks to that agent over a
virtio-serial port. Booting costs seconds under TCG and Python in the guest runs tens of
times slower than on the host, so boot once and keep the guest for many calls.

    with Guest(GuestImage.find(), workdir=tmp) as guest:
        print(guest.run(["ipvsadm", "-L", "-n"]).stdout)
        table = guest.call("some.module:function", arg)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from hacluster.lab.vm_agent import PORT_NAME, read_frame, write_frame

DEFAULT_CACHE = Path("/var/cache/hacluster-vm")
CACHE_ENV = "HACLUSTER_VM_CACHE"
QEMU = "qemu-system-x86_64"
REPO = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1


class VmError(Exception):
    """The guest could not be booted or did not answer as expected."""


class VmUnavailable(VmError):
    """The guest cannot run here (not prepared, or QEMU missing)."""


class RemoteError(VmError):
    """An exception raised in the guest that could not be carried back as itself."""


@dataclass(frozen=True, slots=True)
class GuestImage:
    """The kernel, initramfs and unpacked kernel package that prepare.sh left in the cache."""

    kernel: Path
    initramfs: Path
    kernel_tree: Path  # the unpacked package: lib/modules/VERSION/...
    version: str

    @classmethod
    def find(cls, cache: Path | None = None) -> GuestImage:
        """The prepared image in `cache` (default: $HACLUSTER_VM_CACHE or DEFAULT_CACHE)."""
        if cache is None:
            cache = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
        hint = "run deploy/vm/prepare.sh first"
        if not (cache / "ready").is_file():
            raise VmUnavailable(f"no prepared guest in {cache}: {hint}")
        version = (cache / "kernel-version").read_text().strip()
        image = cls(
            kernel=cache / "vmlinuz",
            initramfs=cache / "initramfs.cpio.gz",
            kernel_tree=(cache / "kernel").resolve(),
            version=version,
        )
        for path in (image.kernel, image.initramfs, image.kernel_tree / "lib/modules" / version):
            if not path.exists():
                raise VmUnavailable(f"{path} is missing: {hint}")
        if shutil.which(QEMU) is None:
            raise VmUnavailable(f"{QEMU} is not installed: run deploy/install-deps.sh")
        return image


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command run in the guest returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> CommandResult:
        """Self, or VmError naming the command and its stderr when it failed."""
        if self.returncode != 0:
            raise VmError(
                f"guest command {' '.join(self.argv)!r} exited {self.returncode}: "
                f"{self.stderr.strip() or self.stdout.strip()}"
            )
        return self


def _kernel_arg(name: str, value: Path) -> str:
    text = str(value)
    if not value.is_absolute() or any(c.isspace() for c in text) or '"' in text:
        raise VmError(f"{name} path {text!r} must be absolute and contain no spaces or quotes")
    return f"hacluster.{name}={text}"


def _fsdev_path(path: Path) -> str:
    # QEMU option values escape a comma by doubling it.
    return str(path).replace(",", ",,")


def _die_with_parent() -> None:
    # In the QEMU child before exec: if the process that booted the guest dies without
    # closing it (SIGKILL), the kernel stops QEMU too, so no guest is left running.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Guest:
    """One QEMU guest and the agent in it. Thread-safe: calls are serialised."""

    def __init__(
        self,
        image: GuestImage,
        *,
        workdir: Path,
        repo: Path = REPO,
        python: Path | None = None,
        memory_mb: int = 1024,
        cpus: int = 2,
        boot_timeout: float = 180.0,
        qemu_args: Sequence[str] = (),
        kernel_args: Sequence[str] = (),
    ) -> None:
        self.image = image
        self.workdir = workdir.resolve()
        self.repo = repo.resolve()
        # The guest sees the host's root, so the host's interpreter (the venv's) runs there.
        self.python = python if python is not None else Path(sys.executable)
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.boot_timeout = boot_timeout
        # Extra QEMU options (e.g. network devices for a lab) and kernel parameters.
        self.qemu_args = tuple(qemu_args)
        self.kernel_args = tuple(kernel_args)
        self.console_log = self.workdir / "console.log"
        self.info: dict[str, str] = {}
        self.boot_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._stream: Any = None
        self._sockdir: str | None = None
        self._lock = threading.Lock()
        self._broken: str | None = None

    # -- lifecycle -------------------------------------------------------------------

    def command(self, agent_socket: Path) -> list[str]:
        """The QEMU command line."""
        append = " ".join(
            [
                "console=ttyS0",
                "quiet",
                "panic=-1",
                _kernel_arg("repo", self.repo),
                _kernel_arg("share", self.workdir),
                _kernel_arg("python", self.python),
                *self.kernel_args,
            ]
        )
        shares = [
            ("hostroot", Path("/"), True),
            ("kernel", self.image.kernel_tree, True),
            ("repo", self.repo, True),
            ("share", self.workdir, False),
        ]
        argv = [
            QEMU,
            "-accel", "tcg",
            "-cpu", "max",
            "-smp", str(self.cpus),
            "-m", str(self.memory_mb),
            "-nographic",
            "-no-reboot",
            "-nic", "none",
            "-kernel", str(self.image.kernel),
            "-initrd", str(self.image.initramfs),
            "-append", append,
        ]  # fmt: skip
        for tag, path, readonly in shares:
            fsdev = f"local,id={tag},path={_fsdev_path(path)},security_model=none,multidevs=remap"
            if readonly:
                fsdev += ",readonly=on"
            argv += ["-fsdev", fsdev, "-device", f"virtio-9p-pci,fsdev={tag},mount_tag={tag}"]
        argv += [
            "-device", "virtio-serial-pci",
            "-chardev", f"socket,id=agent,path={_fsdev_path(agent_socket)},server=on,wait=off",
            "-device", f"virtserialport,chardev=agent,name={PORT_NAME}",
        ]  # fmt: skip
        return argv + list(self.qemu_args)

    def start(self) -> None:
        """Boot the guest and wait until its agent answers.

        QEMU is stopped by the kernel if the thread that started it ends, so start the
        guest from a thread that outlives it (the main thread, typically).
        """
        if self._proc is not None:
            raise VmError("guest already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._sockdir = tempfile.mkdtemp(prefix="hcvm-")
        agent_socket = Path(self._sockdir) / "agent.sock"
        argv = self.command(agent_socket)
        started = time.monotonic()
        with open(self.console_log, "wb") as console:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        try:
            self._connect(agent_socket, started + self.boot_timeout)
            kind, hello = self._receive(started + self.boot_timeout - time.monotonic())
            if kind != "hello":
                raise VmError(f"agent greeted with {kind!r}")
            self.info = dict(hello)
        except BaseException:
            self.close()
            raise
        self.boot_seconds = time.monotonic() - started

    def _connect(self, path: Path, deadline: float) -> None:
        while True:
            self._check_alive()
            if path.exists():
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(str(path))
                except OSError:
                    sock.close()
                else:
                    self._sock = sock
                    self._stream = sock.makefile("rwb", buffering=0)
                    return
            if time.monotonic() > deadline:
                raise VmError(f"QEMU did not open {path}{self._console_hint()}")
            time.sleep(0.05)

    def _check_alive(self) -> None:
        assert self._proc is not None
        code = self._proc.poll()
        if code is not None:
            raise VmError(f"QEMU exited with status {code}{self._console_hint()}")

    def close(self, timeout: float = 15.0) -> None:
        """Ask the agent to exit (the guest powers off), else stop QEMU by its pid."""
        proc = self._proc
        if proc is not None and proc.poll() is None and self._stream is not None:
            with contextlib.suppress(Exception), self._lock:
                if self._broken is None:
                    self._send(("exit",))
                    self._receive(5.0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._stream is not None:
            with contextlib.suppress(OSError):
                self._stream.close()
            self._stream = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._sockdir is not None:
            shutil.rmtree(self._sockdir, ignore_errors=True)
            self._sockdir = None
        self._broken = self._broken or "guest closed"

    def __enter__(self) -> Guest:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._broken is None

    # -- requests --------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float = 60.0,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run a command in the guest (no shell) and return its exit status and output."""
        data = input.encode() if input is not None else None
        code, out, err = self._request(
            ("run", list(argv), data, timeout, dict(env or {})), timeout + 10.0
        )
        result = CommandResult(
            tuple(argv), code, out.decode(errors="replace"), err.decode(errors="replace")
        )
        return result.check() if check else result

    def call(self, target: str, *args: Any, timeout: float = 300.0, **kwargs: Any) -> Any:
        """Call `module:function` in the guest's agent (awaited there if it is async).

        Arguments and result travel pickled; an exception raised in the guest is raised
        here as itself, with the guest's traceback as a note.
        """
        return self._request(("call", target, args, kwargs), timeout)

    def ping(self, timeout: float = 10.0) -> float:
        """Round-trip time to the agent, in seconds."""
        started = time.monotonic()
        self._request(("ping",), timeout)
        return time.monotonic() - started

    def _request(self, request: tuple[Any, ...], timeout: float) -> Any:
        with self._lock:
            if self._broken is not None:
                raise VmError(f"guest is unusable: {self._broken}")
            try:
                self._send(request)
                reply = self._receive(timeout)
            except VmError as exc:
                self._broken = str(exc)
                raise
        if reply[0] == "ok":
            return reply[1]
        _, error, text = reply
        if isinstance(error, BaseException):
            error.add_note(f"raised in the guest:\n{text}")
            raise error
        raise RemoteError(f"guest call failed:\n{text}")

    def _send(self, request: tuple[Any, ...]) -> None:
        try:
            write_frame(self._stream, pickle.dumps(request))
        except OSError as exc:
            raise VmError(f"cannot write to the agent: {exc}{self._console_hint()}") from exc

    def _receive(self, timeout: float) -> Any:
        assert self._sock is not None
        self._sock.settimeout(max(timeout, 0.001))
        try:
            payload = read_frame(self._stream)
        except TimeoutError as exc:
            raise VmError(f"agent gave no answer within {timeout:.0f} s") from exc
        except (OSError, EOFError, ValueError) as exc:
            raise VmError(f"agent channel failed: {exc}{self._console_hint()}") from exc
        if payload is None:
            raise VmError(f"agent closed the channel{self._console_hint()}")
        return pickle.loads(payload)

    def _console_hint(self, lines: int = 30) -> str:
        tail = self.console_tail(lines)
        return f"\n--- guest console (last {lines} lines) ---\n{tail}" if tail else ""

    def console_tail(self, lines: int = 30) -> str:
        """The end of the guest's serial console output."""
        try:
            text = self.console_log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
