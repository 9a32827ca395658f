"""Agent inside the QEMU guest: runs commands and Python calls sent by `hacluster.lab.vm`.

It talks over a virtio-serial port (named `PORT_NAME`) in frames of a 4-byte big-endian
length and a pickled payload. Requests are tuples:

- `("run", argv, input, timeout, env)` runs a command -> `(returncode, stdout, stderr)`
- `("call", "module:attr.path", args, kwargs)` calls a function; an awaitable result is
  run to completion on the agent's one event loop, so async objects (a netlink backend)
  can live across calls
- `("ping",)` -> `"pong"`, `("exit",)` ends the agent (and the guest powers off)

Replies are `("ok", value)` or `("error", exception-or-None, traceback text)`. Both ends are
this repository's code on one machine, which is why pickle is an acceptable encoding here.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import pickle
import platform
import struct
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any, BinaryIO

PORT_NAME = "org.hacluster.agent"
HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024


def find_port(name: str = PORT_NAME, sysfs: Path = Path("/sys/class/virtio-ports")) -> Path:
    """The /dev node of the virtio-serial port called `name`."""
    for entry in sorted(sysfs.glob("*")):
        try:
            if (entry / "name").read_text().strip() == name:
                return Path("/dev") / entry.name
        except OSError:
            continue
    raise FileNotFoundError(f"no virtio-serial port named {name} under {sysfs}")


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame's payload, or None at end of stream."""
    header = _read_exact(stream, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes is larger than {MAX_FRAME}")
    payload = _read_exact(stream, length)
    if payload is None:
        raise EOFError("stream ended inside a frame")
    return payload


def _read_exact(stream: BinaryIO, size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            if remaining == size:
                return None
            raise EOFError("stream ended inside a frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def write_frame(stream: BinaryIO, payload: bytes) -> None:
    data = memoryview(HEADER.pack(len(payload)) + payload)
    while data:
        written = stream.write(data)
        data = data[written or 0 :]
    stream.flush()


def resolve(target: str) -> Any:
    """`package.module:attr.path` -> the object it names."""
    module_name, _, attr_path = target.partition(":")
    if not module_name or not attr_path:
        raise ValueError(f"call target {target!r} is not 'module:attribute'")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    return obj


class Agent:
    """Serves requests from one stream until `exit` or end of stream."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._loop = asyncio.new_event_loop()

    def handle(self, request: tuple[Any, ...]) -> Any:
        match request:
            case ("ping",):
                return "pong"
            case ("run", argv, stdin, timeout, env):
                merged = {**os.environ, **env} if env else None
                proc = subprocess.run(
                    list(argv),
                    input=stdin,
                    capture_output=True,
                    timeout=timeout,
                    env=merged,
                    check=False,
                )
                return (proc.returncode, proc.stdout, proc.stderr)
            case ("call", target, args, kwargs):
                result = resolve(target)(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = self._loop.run_until_complete(_await(result))
                return result
            case _:
                raise ValueError(f"unknown request {request[:1]!r}")

    def serve(self) -> None:
        hello = {"kernel": platform.release(), "python": sys.version.split()[0]}
        write_frame(self._stream, pickle.dumps(("hello", hello)))
        while True:
            payload = read_frame(self._stream)
            if payload is None:
                return
            request = pickle.loads(payload)
            if request == ("exit",):
                write_frame(self._stream, pickle.dumps(("ok", None)))
                return
            try:
                reply: tuple[Any, ...] = ("ok", self.handle(request))
                data = pickle.dumps(reply)
            except BaseException as exc:  # every failure goes back to the caller
                text = traceback.format_exc()
                try:
                    data = pickle.dumps(("error", exc, text))
                    pickle.loads(data)
                except Exception:
                    data = pickle.dumps(("error", None, text))
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    write_frame(self._stream, data)
                    raise
            write_frame(self._stream, data)

    def close(self) -> None:
        self._loop.close()


async def _await(awaitable: Any) -> Any:
    return await awaitable


def cache_bytecode(prefix: Path) -> None:
    """Write and read compiled bytecode under `prefix` (this process and what it runs).

    The guest mounts the source tree read-only and its init sets PYTHONDONTWRITEBYTECODE,
    so every Python process there compiled every module it imported, each time: seconds
    of each `hacluster run` under TCG, which an installed package (compiled when built)
    never spends. The work directory is writable: the first process compiles, the rest
    read what it wrote."""
    try:
        prefix.mkdir(exist_ok=True)
    except OSError:
        return  # not writable here: compiled each time, as before
    sys.pycache_prefix = str(prefix)
    sys.dont_write_bytecode = False
    os.environ["PYTHONPYCACHEPREFIX"] = str(prefix)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def main() -> int:
    cache_bytecode(Path.cwd() / ".pycache")
    port = find_port()
    with open(port, "r+b", buffering=0) as stream:
        agent = Agent(stream)
        try:
            agent.serve()
        finally:
            agent.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
