"""diskcheck across a live migration, with plain QEMU (no ternd): what the
storage migration tests rely on.  With the data disk shared by both QEMUs,
the guest keeps writing through the move and the checker stays at zero
errors on the destination (its generations travel with the RAM).  With a
stale copy of the disk at the destination, as a storage migration that lost
writes would leave, the checker reports lost writes.

Run with: /usr/bin/python3 -m pytest tests/system/test_guest_diskcheck_migrate.py
"""

import shutil
import subprocess
import time

import pytest

from conftest import wait_for
from test_guest_diskcheck import ERROR_RE, STATUS_RE, Qmp, guest_image  # noqa: F401

APPEND = ("console=ttyS0 quiet memcheck.mib=16 memcheck.interval_ms=500 "
          "tern.watch=0 diskcheck.dev=/dev/vda diskcheck.mib=8 "
          "diskcheck.rate=100 diskcheck.interval_ms=300")
DEADLINE_S = 40


class Vm:
    """One QEMU of the pair: the guest from its initrd, one data disk."""

    def __init__(self, image, tmp, name, disk, incoming=None):
        self.log = tmp / f"{name}.log"
        qmp_path = tmp / f"{name}.qmp"
        argv = [
            "qemu-system-x86_64", "-machine", "pc", "-accel", "tcg",
            "-m", "256", "-nodefaults", "-no-reboot", "-display", "none",
            "-kernel", image["TERN_GUEST_KERNEL"],
            "-initrd", image["TERN_GUEST_INITRD"], "-append", APPEND,
            "-blockdev", '{"driver":"qcow2","node-name":"vbd1","file":'
                         f'{{"driver":"file","filename":"{disk}"}}}}',
            "-device", "virtio-blk-pci,drive=vbd1,id=dev-vbd1",
            "-serial", f"file:{self.log}",
            "-qmp", f"unix:{qmp_path},server=on,wait=off",
        ]
        if incoming:
            argv += ["-incoming", incoming]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        wait_for(lambda: qmp_path.exists() or self.proc.poll() is not None,
                 10, f"{name} QMP socket")
        self.qmp = Qmp(qmp_path)

    def lines(self):
        try:
            data = self.log.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        return [l.rstrip("\r") for l in data.split("\n")[:-1]]

    def status(self):
        return [m.groupdict() for m in map(STATUS_RE.match, self.lines()) if m]

    def errors(self):
        return [m.groupdict() for m in map(ERROR_RE.match, self.lines()) if m]

    def wait(self, pred, what, timeout=DEADLINE_S):
        deadline = time.monotonic() + timeout
        while True:
            got = pred()
            if got:
                return got
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no {what} (QEMU rc={self.proc.poll()}); "
                            "console:\n" + "\n".join(self.lines()[-25:]))
            time.sleep(0.05)

    def kill(self):
        self.qmp.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stderr.close()


@pytest.fixture
def vms():
    made = []
    yield made
    for vm in made:
        vm.kill()


def migrate(src, dst, sock):
    """Live-migrates SRC to DST (listening on SOCK); returns once done."""
    src.qmp.cmd("migrate", uri=f"unix:{sock}")
    src.wait(lambda: src.qmp.cmd("query-migrate").get("status")
             in ("completed", "failed"), "migration end", timeout=120)
    assert src.qmp.cmd("query-migrate")["status"] == "completed"
    dst.wait(lambda: dst.qmp.cmd("query-status")["status"] == "running",
             "destination running")


def start_pair(guest_image, tmp_path, vms, dst_disk_from_src):
    disk = tmp_path / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk),
                    "16M"], check=True)
    src = Vm(guest_image, tmp_path, "src", disk)
    vms.append(src)
    src.wait(lambda: len(src.status()) >= 3, "3 DISKCHECK lines at the source")
    dst_disk = dst_disk_from_src(disk)
    sock = tmp_path / "mig.sock"
    dst = Vm(guest_image, tmp_path, "dst", dst_disk, incoming=f"unix:{sock}")
    vms.append(dst)
    wait_for(lambda: sock.exists(), 10, "incoming socket")
    return src, dst, sock


def test_shared_disk_migration_keeps_every_write(guest_image, tmp_path, vms):
    src, dst, sock = start_pair(guest_image, tmp_path, vms, lambda d: d)
    before = src.status()[-1]
    migrate(src, dst, sock)

    # The destination's checker carries on from the source's state: its
    # seq continues, and by the end it rewrote and reread all 2048 blocks
    # at least once more, with nothing lost.
    last_src = src.status()[-1]
    st = dst.wait(lambda: (len(dst.status()) >= 8 and
                           int(dst.status()[-1]["verified"]) >=
                           int(last_src["verified"]) + 2 * 2048 and
                           dst.status()), "two passes at the destination")
    assert int(st[0]["seq"]) >= int(last_src["seq"])
    assert int(st[-1]["written"]) > int(before["written"])
    assert all(s["errors"] == "0" for s in src.status() + st)
    assert not src.errors() and not dst.errors()


def test_stale_disk_at_destination_is_caught(guest_image, tmp_path, vms):
    def stale_copy(disk):
        copy = tmp_path / "stale.qcow2"
        shutil.copyfile(disk, copy)
        return copy

    src, dst, sock = start_pair(guest_image, tmp_path, vms, stale_copy)
    # More rewrites at the source after the copy was taken.
    n = len(src.status())
    src.wait(lambda: len(src.status()) >= n + 5, "5 more lines at the source")
    migrate(src, dst, sock)

    dst.wait(lambda: any(e["kind"] == "lost-write" for e in dst.errors()),
             "a lost write at the destination")
    dst.wait(lambda: dst.status() and int(dst.status()[-1]["errors"]) > 0,
             "errors > 0")
    for e in dst.errors():
        if e["kind"] == "lost-write":
            assert 0 < int(e["found_gen"]) < int(e["gen"])
