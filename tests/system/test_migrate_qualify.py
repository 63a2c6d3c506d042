"""A destination that cannot run the VM refuses it before anything stops.

Both hosts share one filesystem here, so "the destination lacks the VM's
kernel" is made by pointing the VM at a kernel (and initrd) copied into a
temporary directory and removing the copies once the VM has started (QEMU
has loaded them).  The destination's qualification then fails with a clear
error naming the missing files, reported together, and the VM keeps
running on the source, in the same QEMU; the destination has no record and
no QEMU.  Nothing moves: the transfer phase is never reached.
"""

import os
import shutil

import pytest

from conftest import XapiFailure
from migration_helpers import (assert_no_vm, assert_running, boot_guest,
                               hosts, p2p_dest, short_dir, start_migration,
                               token, vm_pid, wait_task)

__all__ = ["hosts"]


@pytest.fixture
def vanishing_guest(guest):
    """Copies of the guest's kernel and initrd in a directory of their own."""
    d = short_dir()
    kernel, initrd = (shutil.copy(p, d / name)
                      for p, name in zip(guest, ("vmlinuz", "initrd.img")))
    yield str(kernel), str(initrd)
    shutil.rmtree(d, ignore_errors=True)


def err_text(err):
    return " ".join(map(str, err))


@pytest.mark.parametrize("control", ["managed", "p2p"])
def test_missing_kernel_refused_before_anything_stops(hosts, vanishing_guest,
                                                      control):
    a, b = hosts
    kernel, initrd = vanishing_guest
    vm, uuid, con = boot_guest(a, (kernel, initrd), lines=2)
    pid = vm_pid(a, vm)
    os.unlink(kernel)
    os.unlink(initrd)

    if control == "managed":
        dest, opts = token(b, uuid), {}
        # The check alone says the same, and does not consume the token.
        t = a.api.call("Async.VM.assert_can_migrate", vm, dest, True, {}, {},
                       opts)
        rec = wait_task(a.api, t, timeout=30)
        assert rec["status"] == "failure", rec
        check_err = rec["error_info"]
        print("assert_can_migrate:", check_err)
        assert kernel in err_text(check_err), check_err
    else:
        dest, opts = p2p_dest(b), {"control": "p2p"}

    phases = []
    try:
        task = start_migration(a, vm, dest, True, opts)
    except XapiFailure as e:
        err = e.desc
    else:
        rec = wait_task(a.api, task, timeout=30, on_poll=lambda r: phases.append(
            r["other_config"].get("phase")))
        assert rec["status"] == "failure", (rec["status"], rec["other_config"])
        err = rec["error_info"]
        assert int(rec["other_config"].get("transferred_bytes", "0")) == 0
    print("migrate_send:", err, "phases:", phases)
    text = err_text(err)
    # Clear: names the missing kernel; complete: the initrd too.
    assert kernel in text, err
    assert initrd in text, err
    assert "transfer" not in phases and "switchover" not in phases, phases

    # The VM never stopped: same QEMU, memcheck counting on.
    assert_running(a, vm, pid)
    n = len(con.status())
    st = con.wait_status(n + 2, 10, "memcheck to go on at the source")
    assert all(s["errors"] == "0" for s in st)
    seqs = [int(s["seq"]) for s in st]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    # Nothing at the destination.
    assert_no_vm(b, uuid)
    assert b.vms() == {}
