"""Cancelling a migration while its calls are in flight leaves nothing behind.

task.cancel right after VM.migrate_send, at delays that land in every early
phase: while the control channel is being opened, while the destination
qualifies and starts its QEMU (qemu_vm_start still pending), while QMP
calls that prepare either QEMU are on their way.  Each pending callback
then comes back to a migration that has ended; it must find it marked dead
and only let go (migrate-src.c and migrate-dst.c, "Ownership"), and a QEMU
that finishes starting after the abort is killed.  After each round: both
daemons alive, the VM running at the source in its QEMU, and at the
destination no record and no QEMU process (looked for in /proc by the VM's
uuid).  Run under AddressSanitizer (TERN_BUILD_DIR=build-asan) a callback
on freed state aborts ternd, which the round's checks see.
"""

import time

from conftest import XapiFailure, wait_for
from migration_helpers import (assert_running, boot_guest, hosts,
                               start_migration, token, vm_pid, wait_task)
from test_migrate_dst_crash import qemu_processes

__all__ = ["hosts"]

DELAYS_S = [0, 0, 0.01, 0.02, 0.05, 0.08, 0.12, 0.2, 0.3, 0.5, 0.8, 1.2]


def test_cancel_at_every_early_moment(hosts, guest):
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, lines=1)
    pid = vm_pid(a, vm)
    outcomes = []
    for delay in DELAYS_S:
        task = start_migration(a, vm, token(b, uuid), True,
                               {"bandwidth": "8"})
        # A fixed delay on purpose: the point is where the cancel lands,
        # not a condition to wait for.
        time.sleep(delay)
        try:
            a.api.call("task.cancel", task)
        except XapiFailure as e:
            assert e.code == "OPERATION_NOT_ALLOWED", e.desc
        rec = wait_task(a.api, task, timeout=60)
        outcomes.append((delay, rec["status"],
                         rec["other_config"].get("phase")))
        assert rec["status"] == "cancelled", (delay, rec["status"],
                                              rec["error_info"])
        assert a.t.alive() and b.t.alive(), (a.log_tail(), b.log_tail())
        # The destination rolled back everything, QEMU included.
        wait_for(lambda: qemu_processes(uuid) == [pid], 15,
                 f"no QEMU for {uuid} but the source's "
                 f"(after a cancel at {delay} s)")
        wait_for(lambda: b.vm_by_uuid(uuid) is None, 10,
                 "no record at the destination")
        assert b.vms() == {}
        assert_running(a, vm, pid)
        # The slot is free for the next round.
        wait_for(lambda: a.api.call("VM.get_current_operations", vm) == {},
                 10, "the VM's operation slot to be free")
    print("cancel outcomes (delay, status, phase):", outcomes)
    n = len(con.status())
    st = con.wait_status(n + 2, 15, "memcheck to go on at the source")
    assert all(s["errors"] == "0" for s in st), st[-3:]
