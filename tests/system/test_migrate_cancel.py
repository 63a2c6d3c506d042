"""task.cancel mid-transfer aborts the migration: the VM goes on running on
the source, in the same QEMU, memcheck still counting without errors, and
the destination has neither a record nor a QEMU for it.  After the
switchover, cancel is gone from allowed_operations.
"""

import pytest

from conftest import XapiFailure, pid_alive
from migration_helpers import (assert_no_vm, assert_running, boot_guest,
                               hosts, start_migration, token, transferred,
                               vm_pid, wait_phase, wait_task)

__all__ = ["hosts"]

MIB = 1024 * 1024


@pytest.mark.parametrize("mode", ["tunnelled", "direct"])
def test_cancel_mid_transfer(hosts, guest, mode):
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, lines=2)
    pid = vm_pid(a, vm)

    # 4 MiB/s: the ~100 MiB to send would take half a minute.
    task = start_migration(a, vm, token(b, uuid), True,
                           {"bandwidth": "4", "mode": mode})
    rec = wait_phase(a.api, task, lambda r: transferred(r) > 2 * MIB,
                     timeout=30, what="2 MiB transferred")
    assert "cancel" in rec["allowed_operations"], rec
    # The destination is receiving: a record and a paused QEMU exist there.
    assert b.vm_by_uuid(uuid) is not None
    b_pids = b.qemu_pids()
    assert uuid in b_pids, "no destination QEMU while transferring"
    b_pid = b_pids[uuid]

    a.api.call("task.cancel", task)
    rec = wait_task(a.api, task, timeout=30)
    assert rec["status"] == "cancelled", (rec["status"], rec["error_info"])
    assert rec["error_info"][:1] == ["TASK_CANCELLED"], rec["error_info"]

    # Still running on the source, in the very same QEMU.
    assert_running(a, vm, pid)
    seq_before = con.seqs()[-1]
    st = con.wait_status(len(con.status()) + 3, 15,
                         "memcheck to go on at the source")
    seqs = [int(s["seq"]) for s in st]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    assert seqs[-1] >= seq_before + 3
    assert all(s["errors"] == "0" for s in st), st[-3:]

    # Nothing on the destination.
    assert_no_vm(b, uuid)
    assert not pid_alive(b_pid)
    assert b.vms() == {}

    # The VM can migrate again afterwards (nothing left locked).
    rec = wait_task(a.api, start_migration(a, vm, token(b, uuid), True,
                                           {"mode": mode}), timeout=60)
    assert rec["status"] == "success", rec["error_info"]


def test_cancel_refused_after_switchover(hosts, guest):
    a, b = hosts
    vm, uuid, _ = boot_guest(a, guest, lines=1)
    task = start_migration(a, vm, token(b, uuid), True, {})
    rec = wait_phase(a.api, task,
                     lambda r: r["other_config"].get("phase")
                     in ("switchover", "confirm", "done")
                     or r["status"] == "success",
                     timeout=60, what="the switchover")
    if rec["status"] == "pending":
        assert "cancel" not in rec["allowed_operations"], rec
        try:
            a.api.call("task.cancel", task)
        except XapiFailure as e:
            assert e.code == "OPERATION_NOT_ALLOWED", e.desc
        else:
            # The task may have finished between the read and the call;
            # only then may the call pass.
            assert a.api.call("task.get_status", task) == "success"
    rec = wait_task(a.api, task)
    assert rec["status"] == "success", rec["error_info"]
    assert rec["allowed_operations"] == []
    with pytest.raises(XapiFailure) as exc:
        a.api.call("task.cancel", task)
    assert exc.value.code == "OPERATION_NOT_ALLOWED", exc.value.desc
