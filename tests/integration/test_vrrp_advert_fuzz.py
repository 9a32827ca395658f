"""100,000 malformed protocol-112 frames at a running daemon: no transition, every frame counted.

A sender in the observer namespace builds adverts with our codec, spoils each one in a
seeded way (HACLUSTER_FUZZ_SEED) and writes them as raw Ethernet frames. It paces itself
on the daemon's socket: the next batch goes once the kernel's receive queue for the
daemon's protocol-112 socket is empty (read from /proc/PID/net/raw, which shows the
daemon's namespace), so that no frame is lost before the daemon sees it, and the
kernel's drop counter for that socket is checked to stay where it was.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.integration.vrrp_director import PairLab, config_yaml, instance_yaml

pytestmark = pytest.mark.netns

SEED = int(os.environ.get("HACLUSTER_FUZZ_SEED", "20261207"))
FRAMES = int(os.environ.get("HACLUSTER_ADVERT_FUZZ_FRAMES", "100000"))
V3, V2 = 51, 52  # VI_1: VRRPv3; VI_2: VRRPv2 with PASS authentication s3cret

SENDER = r'''
import json, os, random, socket, struct, sys, time
from vrrp import packet

seed, count, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
SRC, DST = "10.9.0.3", "224.0.0.18"
MAC_SRC = bytes.fromhex(open("/sys/class/net/eth0/address").read().strip().replace(":", ""))
ETH = bytes.fromhex("01005e000012") + MAC_SRC + b"\x08\x00"


def csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo(length):
    return socket.inet_aton(SRC) + socket.inet_aton(DST) + struct.pack("!BBH", 0, 112, length)


def v3_sum(msg):  # checksum of a v3 message with the IPv4 pseudo-header
    msg = bytearray(msg)
    msg[6:8] = b"\0\0"
    msg[6:8] = struct.pack("!H", csum(pseudo(len(msg)) + bytes(msg)))
    return bytes(msg)


def ip(payload, ttl=255):
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), rng.randrange(65536), 0,
                       ttl, 112, 0, socket.inet_aton(SRC), socket.inet_aton(DST))
    head = head[:10] + struct.pack("!H", csum(head)) + head[12:]
    return ETH + head + payload


def advert(vrid=51, version=3, interval=0.1, auth=None, prio=254):
    a = packet.Advert(version=version, vrid=vrid, priority=prio, max_advert_int=interval,
                      addresses=("10.9.0.100",), auth_type=1 if auth else 0,
                      auth_data=packet.auth_pass_data(auth) if auth else b"")
    return bytes(packet.encode(a, SRC, DST))


def make(kind):
    """One spoiled frame of `kind`; the reason the daemon must count it under."""
    if kind == "ttl":
        return ip(advert(), ttl=rng.randint(1, 254))
    if kind == "bad_checksum":
        msg = bytearray(advert())
        good = {struct.unpack("!H", msg[6:8])[0]}
        plain = bytearray(msg)
        plain[6:8] = b"\0\0"
        good.add(csum(bytes(plain)))  # the no-pseudo-header variant is accepted too
        value = rng.randrange(65536)
        while value in good:
            value = rng.randrange(65536)
        msg[6:8] = struct.pack("!H", value)
        return ip(bytes(msg))
    if kind == "unknown_vrid":
        return ip(advert(vrid=rng.randint(53, 255)))
    if kind == "truncated":
        return ip(bytes(rng.randrange(256) for _ in range(rng.randint(0, 7))))
    if kind == "bad_version":
        msg = bytearray(advert())
        msg[0] = (rng.choice([0, 1, *range(4, 16)]) << 4) | 1
        return ip(bytes(msg))
    if kind == "bad_type":
        msg = bytearray(advert())
        msg[0] = (3 << 4) | rng.choice([0, *range(2, 16)])
        return ip(v3_sum(msg))
    if kind == "count_mismatch":
        msg = bytearray(advert())
        msg[3] = rng.choice([0, *range(2, 256)])
        return ip(v3_sum(msg))
    if kind == "bad_vrid":
        msg = bytearray(advert())
        msg[1] = 0
        return ip(v3_sum(msg))
    if kind == "bad_interval":
        msg = bytearray(advert())
        msg[4] &= 0xF0
        msg[5] = 0
        return ip(v3_sum(msg))
    if kind == "version_mismatch":
        return ip(advert(version=2, interval=1))
    if kind == "auth":
        word = "".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 8)))
        return ip(advert(vrid=52, version=2, interval=1, auth=word if word != "s3cret" else "x"))
    if kind == "interval_mismatch":
        return ip(advert(vrid=52, version=2, interval=rng.randint(2, 255), auth="s3cret"))
    if kind == "garbage":  # random bytes, or one bit of a valid advert flipped
        if rng.random() < 0.5:
            return ip(bytes(rng.randrange(256) for _ in range(rng.randint(8, 80))))
        msg = bytearray(advert())
        bit = rng.randrange(len(msg) * 8)
        msg[bit // 8] ^= 1 << (bit % 8)
        return ip(bytes(msg))
    raise ValueError(kind)


KINDS = ["ttl", "bad_checksum", "unknown_vrid", "truncated", "bad_version", "bad_type",
         "count_mismatch", "bad_vrid", "bad_interval", "version_mismatch", "auth",
         "interval_mismatch", "garbage"]
sent = {k: 0 for k in KINDS}
frames = []
for _ in range(count):
    kind = rng.choice(KINDS)
    sent[kind] += 1
    frames.append(make(kind))


def raw_socket_line():
    with open(f"/proc/{pid}/net/raw") as f:
        for line in f.read().splitlines()[1:]:
            cols = line.split()
            if cols[1].endswith(":0070"):  # bound to protocol 112
                return int(cols[4].split(":")[1], 16), int(cols[-1])
    raise SystemExit("the daemon has no protocol-112 socket")


_, drops_before = raw_socket_line()
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind(("eth0", 0))
started = time.monotonic()
BATCH = 64
waits = 0
for i in range(0, len(frames), BATCH):
    for frame in frames[i:i + BATCH]:
        sock.send(frame)
    while raw_socket_line()[0] > 0:  # the daemon still has frames queued: let it read
        waits += 1
        time.sleep(0.0005)
elapsed = time.monotonic() - started
_, drops_after = raw_socket_line()
print(json.dumps({"sent": sent, "seconds": elapsed, "kernel_drops": drops_after - drops_before,
                  "waits": waits}))
'''


def test_a_flood_of_malformed_adverts_is_counted_frame_by_frame(pair: PairLab) -> None:
    auth = "authentication: {auth_type: PASS, auth_pass: s3cret}"
    a = pair.director("a", config_yaml(
        instance_yaml("VI_1", vrid=V3, priority=100, advert_int=1),
        instance_yaml("VI_2", vrid=V2, priority=100, version=2, advert_int=1,
                      vips=("10.9.0.102/24",), extra=auth),
    )).start()
    a.wait_state("MASTER", "VI_1", timeout=10)
    a.wait_state("MASTER", "VI_2", timeout=10)
    before = a.fresh_status()

    script = pair.lab.workdir / "advert_fuzz.py"
    script.write_text(SENDER)
    res = pair.lab.run(
        pair.obs, [sys.executable, str(script), str(SEED), str(FRAMES), str(a.proc.pid)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}, timeout=600,
    )
    report = json.loads(res.stdout.strip().splitlines()[-1])
    after = a.fresh_status()

    sent: dict[str, int] = report["sent"]
    assert sum(sent.values()) == FRAMES
    assert report["kernel_drops"] == 0  # paced: every frame reached the daemon's socket
    delta = {reason: after["dropped"].get(reason, 0) - before["dropped"].get(reason, 0)
             for reason in after["dropped"]}
    garbage = sent.pop("garbage")
    for reason, count in sent.items():
        assert delta.get(reason, 0) >= count, f"{reason}: counted {delta.get(reason)}, sent {count}"
    crafted_total = sum(sent.values())
    # Every frame counted once under some reason: the crafted ones under theirs, the
    # garbage under whatever its first fault is.
    assert sum(delta.values()) == FRAMES, (delta, sent, garbage)
    assert sum(delta.values()) - crafted_total == garbage
    for name in ("VI_1", "VI_2"):
        inst = after["instances"][name]
        assert inst["state"] == "MASTER"
        assert inst["transitions"] == before["instances"][name]["transitions"]
        assert inst["adverts_accepted"] == before["instances"][name]["adverts_accepted"]
    assert a.proc.running()
    log_lines = sum(1 for line in a.output().splitlines() if "dropped advert" in line)
    load = os.getloadavg()[0]
    print(f"\nadvert fuzz (seed {SEED}): {FRAMES} frames in {report['seconds']:.1f}s "
          f"({FRAMES / report['seconds']:.0f}/s), {len(delta)} reasons, 0 transitions, "
          f"{log_lines} log lines, load {load:.2f}; by reason {dict(sorted(delta.items()))}")
