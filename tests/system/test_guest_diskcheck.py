"""The test guest on disks: it boots from rootfs.qcow2 (tern.root=/dev/vda),
its disk checker keeps writing and verifying a data disk with no errors, and
the checker fails when the disk changes behind the guest's back: a block
overwritten through QEMU (qemu-io) is reported as corrupt, and a disk rolled
back to an older copy (on the host) as lost writes.  Other tests rely on these
console lines (guest/README.md), so this file pins them.

Plain QEMU, no ternd.  Run with:
/usr/bin/python3 -m pytest tests/system/test_guest_diskcheck.py
"""

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tools" / "guest" / "build.sh"

STATUS_RE = re.compile(
    r"^DISKCHECK seq=(?P<seq>\d+) uptime_ms=(?P<uptime_ms>\d+) "
    r"blocks=(?P<blocks>\d+) written=(?P<written>\d+) "
    r"verified=(?P<verified>\d+) errors=(?P<errors>\d+)$")
START_RE = re.compile(
    r"^DISKCHECK-START dev=(?P<dev>\S+) mib=(?P<mib>\d+) rate=(?P<rate>\d+) "
    r"verify_rate=(?P<verify_rate>\d+) interval_ms=(?P<interval_ms>\d+)$")
ERROR_RE = re.compile(
    r"^DISKCHECK-ERROR block=(?P<block>\d+) gen=(?P<gen>\d+) "
    r"found_gen=(?P<found_gen>-?\d+) kind=(?P<kind>lost-write|corrupt) "
    r"word=(?P<word>\d+) expected=0x(?P<expected>[0-9a-f]{16}) "
    r"actual=0x(?P<actual>[0-9a-f]{16})$")
MEMCHECK_RE = re.compile(r"^MEMCHECK seq=(\d+) .* errors=(\d+) ")
DEADLINE_S = 30


@pytest.fixture(scope="module")
def guest_image():
    """Builds (or reuses the cached) guest; returns its paths."""
    out = subprocess.run([str(BUILD)], check=True, capture_output=True,
                         text=True, timeout=600).stdout
    paths = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    for key in ("TERN_GUEST_KERNEL", "TERN_GUEST_INITRD", "TERN_GUEST_ROOTFS"):
        assert os.path.isfile(paths[key]), key
    return paths


class Qmp:
    """A minimal blocking QMP client (this test drives plain QEMU)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rw")
        json.loads(self.file.readline())
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.file.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "event" in reply:
                continue
            if "error" in reply:
                raise RuntimeError(f"{name}: {reply['error']['desc']}")
            return reply["return"]

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def close(self):
        self.file.close()
        self.sock.close()


class Guest:
    """QEMU with the guest booted from an overlay of rootfs.qcow2 and a
    data disk (vbd1, /dev/vdb); the console goes to a file."""

    def __init__(self, image, tmp, append):
        self.log = tmp / "console.log"
        overlay, data = tmp / "root.qcow2", tmp / "data.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b",
                        image["TERN_GUEST_ROOTFS"], "-F", "qcow2",
                        str(overlay)], check=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(data),
                        "32M"], check=True)
        qmp_path = tmp / "qmp.sock"

        def blockdev(node, path):
            return json.dumps({"driver": "qcow2", "node-name": node,
                               "file": {"driver": "file", "filename": str(path)}})

        self.proc = subprocess.Popen([
            "qemu-system-x86_64", "-accel", "tcg", "-m", "256",
            "-nodefaults", "-no-reboot", "-display", "none",
            "-kernel", image["TERN_GUEST_KERNEL"],
            "-initrd", image["TERN_GUEST_INITRD"],
            "-append", "console=ttyS0 quiet tern.root=/dev/vda " + append,
            "-blockdev", blockdev("vbd0", overlay),
            "-device", "virtio-blk-pci,drive=vbd0,id=dev-vbd0",
            "-blockdev", blockdev("vbd1", data),
            # share-rw lets the test's qemu-io write under the guest.
            "-device", "virtio-blk-pci,drive=vbd1,id=dev-vbd1,share-rw=on",
            "-serial", f"file:{self.log}",
            "-qmp", f"unix:{qmp_path},server=on,wait=off",
        ], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        wait_for(lambda: qmp_path.exists() or self.proc.poll() is not None,
                 10, "QMP socket")
        self.qmp = Qmp(qmp_path)

    def lines(self):
        try:
            data = self.log.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        return [l.rstrip("\r") for l in data.split("\n")[:-1]]

    def wait(self, pred, what, timeout=DEADLINE_S):
        """Polls the console until pred(lines) is truthy; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            got = pred(self.lines())
            if got:
                return got
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no {what} (QEMU rc={self.proc.poll()}); "
                            "console:\n" + "\n".join(self.lines()[-25:]))
            time.sleep(0.05)

    def status(self, lines=None):
        return [m.groupdict() for m in
                map(STATUS_RE.match, lines if lines is not None else self.lines())
                if m]

    def errors(self):
        return [m.groupdict() for m in map(ERROR_RE.match, self.lines()) if m]

    def kill(self):
        self.qmp.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stderr.close()


@pytest.fixture
def boot(guest_image, tmp_path):
    guests = []

    def start(append):
        g = Guest(guest_image, tmp_path, append)
        guests.append(g)
        return g

    yield start
    for g in guests:
        g.kill()


def test_boots_from_disk_and_diskcheck_runs_clean(boot):
    g = boot("memcheck.mib=16 memcheck.interval_ms=500 diskcheck.dev=/dev/vdb "
             "diskcheck.mib=8 diskcheck.rate=64 diskcheck.interval_ms=300")

    g.wait(lambda ls: "TERN-GUEST-ROOT dev=/dev/vda type=ext4" in ls,
           "root on /dev/vda")
    # It rewrites as it goes (so a migration has writes in flight) and
    # rereads the whole area, twice here.
    st = g.wait(lambda ls: len(g.status(ls)) >= 10 and
                int(g.status(ls)[-1]["written"]) >= 64 and
                int(g.status(ls)[-1]["verified"]) >= 2 * 2048 and
                g.status(ls), "10 DISKCHECK lines, 64 rewrites, two passes")
    start = [m.groupdict() for m in map(START_RE.match, g.lines()) if m]
    assert start == [{"dev": "/dev/vdb", "mib": "8", "rate": "64",
                      "verify_rate": "2048", "interval_ms": "300"}]
    assert [int(s["seq"]) for s in st] == list(range(len(st)))
    assert all(s["errors"] == "0" and s["blocks"] == "2048" for s in st)
    for key in ("uptime_ms", "written", "verified"):
        vals = [int(s[key]) for s in st]
        assert vals == sorted(vals), key
    assert not g.errors()
    # memcheck runs beside it, also clean.
    mem = [m for m in map(MEMCHECK_RE.match, g.lines()) if m]
    assert mem and all(m.group(2) == "0" for m in mem)


def test_block_overwritten_behind_the_guest_is_reported(boot):
    # No rewrites: the 16 overwritten blocks are each found exactly once.
    g = boot("memcheck.mib=0 tern.watch=0 diskcheck.dev=/dev/vdb "
             "diskcheck.mib=4 diskcheck.rate=0 diskcheck.interval_ms=300")
    g.wait(lambda ls: len(g.status(ls)) >= 3, "3 DISKCHECK lines")
    assert all(s["errors"] == "0" for s in g.status())

    # Blocks 10..25, through QEMU's own block layer under the device.
    out = g.qmp.hmp('qemu-io vbd1 "write -P 0x5a 40960 64k"')
    assert out == "" or out.startswith("wrote"), out

    g.wait(lambda ls: any(int(s["errors"]) >= 16 for s in g.status(ls)),
           "errors=16")
    errs = g.errors()
    assert sorted(int(e["block"]) for e in errs) == list(range(10, 26))
    for e in errs:
        assert e["kind"] == "corrupt" and e["found_gen"] == "-1"
        assert e["word"] == "0" and e["actual"] == "5a" * 8
    # Each was repaired (rewritten) and counted once.
    n = len(g.status())
    later = g.wait(lambda ls: len(g.status(ls)) >= n + 3 and
                   g.status(ls)[-3:], "3 more lines")
    assert all(s["errors"] == "16" for s in later)


def test_rolled_back_disk_is_lost_writes(tmp_path):
    """On the host: a device that returns older blocks (here, a file copied
    back over the one diskcheck writes) is reported as lost writes."""
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    exe, dev = tmp_path / "diskcheck", tmp_path / "disk.img"
    subprocess.run(["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror",
                    "-o", str(exe), str(ROOT / "guest" / "diskcheck.c")],
                   check=True)
    with open(dev, "wb") as f:
        f.truncate(4 << 20)
    log = tmp_path / "out.log"
    with open(log, "w") as out:
        p = subprocess.Popen([str(exe), "--dev", str(dev), "--mib", "2",
                              "--rate", "400", "--verify-rate", "4096",
                              "--interval-ms", "200"], stdout=out)
    try:
        def text():
            return log.read_text()
        wait_for(lambda: "DISKCHECK seq=1 " in text(), 10, "first lines")
        shutil.copyfile(dev, tmp_path / "old.img")
        wait_for(lambda: "DISKCHECK seq=4 " in text(), 10, "rewrites")
        assert "DISKCHECK-ERROR" not in text()
        # Roll the disk back; diskcheck's generations are ahead of it.
        with open(tmp_path / "old.img", "rb") as src, open(dev, "r+b") as dst:
            dst.write(src.read())
        wait_for(lambda: "kind=lost-write" in text(), 10, "a lost write")
    finally:
        p.kill()
        p.wait()
    errs = [m.groupdict() for m in map(ERROR_RE.match, text().splitlines())
            if m]
    lost = [e for e in errs if e["kind"] == "lost-write"]
    assert lost
    for e in lost:
        assert 0 < int(e["found_gen"]) < int(e["gen"])
        assert e["word"] == "1"
