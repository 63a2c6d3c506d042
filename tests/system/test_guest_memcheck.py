"""The test guest itself: it boots under plain QEMU (TCG), memcheck's
heartbeat arrives with consecutive sequence numbers and no errors, and its
corrupt test mode is caught by its own verifier.  Other system tests rely on
exactly these lines (guest/README.md), so this file pins the contract.

Run with: /usr/bin/python3 -m pytest tests/system/test_guest_memcheck.py
"""

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tools" / "guest" / "build.sh"

STATUS_RE = re.compile(
    r"^MEMCHECK seq=(?P<seq>\d+) uptime_ms=(?P<uptime_ms>\d+) "
    r"verified=(?P<verified>\d+) errors=(?P<errors>\d+) "
    r"rewritten=(?P<rewritten>\d+) mib=(?P<mib>\d+)$")
START_RE = re.compile(
    r"^MEMCHECK-START mib=(\d+) rate=(\d+) interval_ms=(\d+)$")
ERROR_RE = re.compile(
    r"^MEMCHECK-ERROR page=(?P<page>\d+) expected=0x(?P<expected>[0-9a-f]{16}) "
    r"actual=0x(?P<actual>[0-9a-f]{16}) word=(?P<word>\d+)$")
CORRUPT_RE = re.compile(r"^MEMCHECK-CORRUPT page=(?P<page>\d+) word=(?P<word>\d+)$")
READY = "TERN-GUEST-READY"

BOOT_DEADLINE_S = 20


@pytest.fixture(scope="module")
def guest_image():
    """Builds (or reuses the cached) guest; returns (kernel, initrd)."""
    out = subprocess.run([str(BUILD)], check=True, capture_output=True,
                         text=True, timeout=600).stdout
    paths = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    kernel, initrd = paths["TERN_GUEST_KERNEL"], paths["TERN_GUEST_INITRD"]
    assert os.path.isfile(kernel) and os.path.isfile(initrd)
    return kernel, initrd


class Guest:
    """One QEMU running the test guest, its serial console in a file."""

    def __init__(self, image, log, append):
        kernel, initrd = image
        self.log = log
        self.started = time.monotonic()
        self.proc = subprocess.Popen([
            "qemu-system-x86_64", "-accel", "tcg", "-m", "256",
            "-nographic", "-no-reboot", "-display", "none", "-monitor", "none",
            "-nic", "none",
            "-kernel", kernel, "-initrd", initrd,
            "-append", "console=ttyS0 quiet " + append,
            "-serial", f"file:{log}",
        ], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)

    def lines(self):
        """Complete console lines so far, without the carriage returns."""
        try:
            data = self.log.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        return [l.rstrip("\r") for l in data.split("\n")[:-1]]

    def wait_for(self, pred, what, timeout=BOOT_DEADLINE_S):
        """Polls the console until pred(lines) is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            got = pred(lines)
            if got:
                return got
            if self.proc.poll() is not None:
                pytest.fail(f"QEMU exited ({self.proc.returncode}) waiting for "
                            f"{what}: {self.proc.stderr.read().decode()}\n"
                            + "\n".join(lines[-20:]))
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} after {timeout} s; console:\n"
                            + "\n".join(lines[-20:]))
            time.sleep(0.05)

    def status(self, lines=None):
        return [m.groupdict() for m in map(STATUS_RE.match, lines or self.lines())
                if m]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stderr.close()


@pytest.fixture
def boot(guest_image, tmp_path):
    guests = []

    def start(append):
        g = Guest(guest_image, tmp_path / f"console{len(guests)}.log", append)
        guests.append(g)
        return g

    yield start
    for g in guests:
        g.kill()


def test_heartbeat_without_errors(boot):
    g = boot("memcheck.mib=32 memcheck.rate=4 memcheck.interval_ms=300")

    g.wait_for(lambda ls: any(READY in l for l in ls), READY)
    first = g.wait_for(lambda ls: g.status(ls), "first status line")
    boot_s = time.monotonic() - g.started
    print(f"QEMU start to first MEMCHECK line: {boot_s:.2f} s")

    st = g.wait_for(lambda ls: len(g.status(ls)) >= 8 and g.status(ls),
                    "8 status lines")
    assert first[0]["seq"] == "0"
    assert [int(s["seq"]) for s in st] == list(range(len(st)))
    assert all(s["errors"] == "0" and s["mib"] == "32" for s in st)
    # Counters only grow; by the end both workloads have done something.
    for key in ("uptime_ms", "verified", "rewritten"):
        vals = [int(s[key]) for s in st]
        assert vals == sorted(vals), key
    assert int(st[-1]["verified"]) >= 8192, "not even one pass over 32 MiB"
    assert int(st[-1]["rewritten"]) > 0
    # The heartbeat keeps its interval (generous bounds: TCG on a busy host).
    gaps = [int(b["uptime_ms"]) - int(a["uptime_ms"]) for a, b in zip(st, st[1:])]
    assert all(200 <= gap <= 1000 for gap in gaps), gaps

    lines = g.lines()
    assert any(START_RE.match(l) for l in lines)
    assert not any(l.startswith("MEMCHECK-ERROR") for l in lines)


def test_corruption_is_reported(boot):
    g = boot("memcheck.mib=32 memcheck.rate=4 memcheck.interval_ms=300 "
             "memcheck.corrupt=3")

    def reported(lines):
        errs = [m for m in map(ERROR_RE.match, lines) if m]
        after = [s for s in g.status(lines) if int(s["errors"]) >= 1]
        return errs and after and (errs, after)

    errs, after = g.wait_for(reported, "MEMCHECK-ERROR and errors>=1")
    corrupt = [m for m in map(CORRUPT_RE.match, g.lines()) if m]
    assert len(corrupt) == 1
    err = errs[0]
    assert err["page"] == corrupt[0]["page"]
    assert err["word"] == corrupt[0]["word"]
    # One byte flipped: the words differ, in exactly one byte.
    diff = int(err["expected"], 16) ^ int(err["actual"], 16)
    assert diff != 0 and sum(1 for i in range(8) if diff >> (8 * i) & 0xff) == 1
    # Corruption came after status line 3 (seq 2), and was repaired: counted once.
    assert int(after[0]["seq"]) >= 3
    assert all(int(s["errors"]) == 1 for s in after)
