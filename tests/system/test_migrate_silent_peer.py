"""A silent peer cannot hold a migration, a check or the VM's operation slot.

Every wait on the migration channel has a deadline (CHAN_DEADLINE_S, 30 s
of silence; docs/migration.md, "Failure rules"):

- a fake destination that accepts the channel, reads the first line and
  then says nothing: VM.assert_can_migrate, VM.migrate_check and
  VM.migrate_send each fail with VM_MIGRATE_FAILED naming the silence
  within the bound, and the VM's operation slot is free again (pause and
  unpause are accepted, the VM runs where it was);
- a real destination ternd frozen (SIGSTOP) in the middle of the stream:
  the source decides within the bound that it lost the destination,
  aborts (the point of no return was not passed) and the VM goes on
  running at the source; once the destination is resumed it rolls back,
  leaving neither record nor QEMU.
"""

import os
import signal
import socket
import threading
import time

import pytest

from conftest import XapiFailure, pid_alive
from migration_helpers import (assert_no_vm, assert_running, boot_guest,
                               hosts, start_migration, token, transferred,
                               vm_pid, wait_phase, wait_task)

__all__ = ["hosts"]

MIB = 1024 * 1024
DEADLINE_S = 30        # CHAN_DEADLINE_S in src/migrate/channel.h
SLACK_S = 15           # the 1 Hz tick, a loaded machine


class SilentPeer:
    """Listens like a destination's API port; reads each connection's
    first line and then never answers (keeps the socket open)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.first_lines = []
        self.conns = []
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._read_line, args=(c,),
                             daemon=True).start()

    def _read_line(self, c):
        buf = b""
        while b"\n" not in buf:
            try:
                b = c.recv(65536)
            except OSError:
                return
            if not b:
                return
            buf += b
        self.first_lines.append(buf.split(b" ", 1)[0].decode())
        # ... and silence, until the test ends.

    def dest(self):
        return {"url": f"http://127.0.0.1:{self.port}", "token": "t" * 64,
                "psk": "0" * 64, "fingerprint": ""}

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def silent():
    p = SilentPeer()
    yield p
    p.close()


def assert_slot_free(host, vm):
    """The VM's one operation slot is free: pause and unpause pass."""
    host.api.call("VM.pause", vm)
    host.api.call("VM.unpause", vm)
    assert host.api.call("VM.get_power_state", vm) == "Running"


def timed_failure(fn):
    t0 = time.monotonic()
    with pytest.raises(XapiFailure) as exc:
        fn()
    return exc.value, time.monotonic() - t0


def test_silent_destination_checks_fail_within_bound(hosts, guest, silent):
    a, _ = hosts
    vm, _, _ = boot_guest(a, guest, lines=1)
    pid = vm_pid(a, vm)

    err, took = timed_failure(lambda: a.api.call(
        "VM.assert_can_migrate", vm, silent.dest(), True, {}, {}, {}))
    print(f"assert_can_migrate against a silent peer: {took:.1f} s: "
          f"{err.desc}")
    assert err.code == "VM_MIGRATE_FAILED", err.desc
    assert "stopped answering" in err.desc[-1], err.desc
    assert DEADLINE_S - 2 <= took <= DEADLINE_S + SLACK_S, took
    assert silent.first_lines == ["TERN-MIGRATE/1"], silent.first_lines
    assert_slot_free(a, vm)

    err, took = timed_failure(lambda: a.api.call(
        "VM.migrate_check", vm, silent.dest(), {}))
    print(f"migrate_check against a silent peer: {took:.1f} s: {err.desc}")
    assert err.code == "VM_MIGRATE_FAILED", err.desc
    assert took <= DEADLINE_S + SLACK_S, took
    assert_slot_free(a, vm)
    assert_running(a, vm, pid)


def test_silent_destination_send_fails_within_bound(hosts, guest, silent):
    a, _ = hosts
    vm, _, con = boot_guest(a, guest, lines=1)
    pid = vm_pid(a, vm)

    t0 = time.monotonic()
    task = start_migration(a, vm, silent.dest(), True, {})
    rec = wait_task(a.api, task, timeout=DEADLINE_S + SLACK_S + 5)
    took = time.monotonic() - t0
    print(f"migrate_send to a silent peer ended after {took:.1f} s: "
          f"{rec['status']} {rec['error_info']}")
    assert rec["status"] == "failure", rec
    assert rec["error_info"][0] == "VM_MIGRATE_FAILED", rec["error_info"]
    assert "stopped answering" in rec["error_info"][-1], rec["error_info"]
    assert took <= DEADLINE_S + SLACK_S, took
    assert_running(a, vm, pid)
    assert_slot_free(a, vm)
    n = len(con.status())
    con.wait_status(n + 2, 15, "memcheck to go on at the source")


def test_frozen_destination_ternd_mid_transfer(hosts, guest):
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, lines=2)
    pid = vm_pid(a, vm)

    # 1 MiB/s: the stream lasts far longer than the deadline, so the
    # point of no return is not reached while B is frozen.
    task = start_migration(a, vm, token(b, uuid), True, {"bandwidth": "1"})
    wait_phase(a.api, task, lambda r: transferred(r) > 2 * MIB, 30,
               "2 MiB transferred")
    b_pid = b.qemu_pids().get(uuid)
    assert b_pid, "no destination QEMU mid-transfer"
    os.kill(b.t.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        rec = wait_task(a.api, task, timeout=DEADLINE_S + SLACK_S + 5)
        took = time.monotonic() - t0
        print(f"source decided {took:.1f} s after the destination froze: "
              f"{rec['status']} {rec['error_info']} "
              f"phase={rec['other_config'].get('phase')}")
        assert rec["status"] == "failure", rec
        assert "stopped answering" in rec["error_info"][-1], rec
        assert took <= DEADLINE_S + SLACK_S, took
        assert_running(a, vm, pid)
        n = len(con.status())
        st = con.wait_status(n + 2, 15, "memcheck to go on at the source")
        assert all(s["errors"] == "0" for s in st), st[-3:]
    finally:
        os.kill(b.t.proc.pid, signal.SIGCONT)
    # Thawed, the destination learns the source is gone and rolls back.
    assert_no_vm(b, uuid)
    assert not pid_alive(b_pid)
    assert_slot_free(a, vm)
