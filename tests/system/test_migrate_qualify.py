"""A destination that cannot run the VM refuses it before anything stops.

Each host boots VMs from the files of its own boot SR ([storage] boot_dir,
docs/storage.md).  Here host B's boot SR lacks the guest's kernel and
initrd that A's has (they are removed from B's after it starts).  B's
qualification must then refuse the VM with a clear error naming both
missing files (all failed checks reported together), before any memory
moves; the VM keeps running on A in the same QEMU, and B has no record
and no QEMU.

A second case removes the files on both hosts after QEMU has loaded them:
the source does not have them either, and the migration must still fail
without harm.
"""

import os

import pytest

from conftest import BOOT_INITRD, BOOT_KERNEL, XapiFailure
from migration_helpers import (assert_no_vm, assert_running, boot_guest,
                               make_hosts, p2p_dest, start_migration, token,
                               vm_pid, wait_task)


def remove_boot_files(host):
    for name in (BOOT_KERNEL, BOOT_INITRD):
        os.unlink(host.t.boot_dir / name)


@pytest.fixture
def hosts_b_lacks_boot_files(request):
    for a, b in make_hosts(request):
        remove_boot_files(b)
        yield a, b


@pytest.fixture
def hosts(request):
    yield from make_hosts(request)


def err_text(err):
    return " ".join(map(str, err))


def migrate_refused(a, vm, dest, opts):
    """Runs migrate_send, expects a failure; returns (error_info, phases,
    task record or None)."""
    phases = []
    try:
        task = start_migration(a, vm, dest, True, opts)
    except XapiFailure as e:
        return e.desc, phases, None
    rec = wait_task(a.api, task, timeout=30,
                    on_poll=lambda r: phases.append(
                        r["other_config"].get("phase")))
    assert rec["status"] == "failure", (rec["status"], rec["other_config"])
    return rec["error_info"], phases, rec


def still_running_nothing_moved(a, b, vm, uuid, pid, con):
    assert_running(a, vm, pid)
    n = len(con.status())
    st = con.wait_status(n + 2, 10, "memcheck to go on at the source")
    assert all(s["errors"] == "0" for s in st)
    seqs = [int(s["seq"]) for s in st]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert_no_vm(b, uuid)
    assert b.vms() == {}


@pytest.mark.parametrize("control", ["managed", "p2p"])
def test_destination_lacks_kernel(hosts_b_lacks_boot_files, guest, control):
    a, b = hosts_b_lacks_boot_files
    kernel, initrd = BOOT_KERNEL, BOOT_INITRD
    vm, uuid, con = boot_guest(a, guest, lines=2)
    pid = vm_pid(a, vm)

    if control == "managed":
        dest, opts = token(b, uuid), {}
        # The check alone (VM.assert_can_migrate) finds the same, and does
        # not consume the token.
        t = a.api.call("Async.VM.assert_can_migrate", vm, dest, True, {}, {},
                       opts)
        rec = wait_task(a.api, t, timeout=30)
        assert rec["status"] == "failure", rec
        print("assert_can_migrate:", rec["error_info"])
        text = err_text(rec["error_info"])
        assert kernel in text and initrd in text, rec["error_info"]
    else:
        dest, opts = p2p_dest(b), {"control": "p2p"}

    err, phases, rec = migrate_refused(a, vm, dest, opts)
    print("migrate_send:", err, "phases:", phases)
    text = err_text(err)
    # Clear: names both missing files, reported together.
    assert kernel in text, err
    assert initrd in text, err
    assert "missing" in text.lower(), err
    # Refused by qualification: no QEMU was started, no byte moved.
    assert "DOMAIN_BUILDER_ERROR" not in text, err
    assert not {"transfer", "switchover"} & set(phases), phases
    if rec is not None:
        assert int(rec["other_config"].get("transferred_bytes", "0")) == 0
    still_running_nothing_moved(a, b, vm, uuid, pid, con)


def test_kernel_gone_on_both_hosts(hosts, guest):
    """The kernel vanished after QEMU loaded it, on the source too: the
    migration fails, naming the kernel, and the VM runs on at the source."""
    a, b = hosts
    kernel = BOOT_KERNEL
    vm, uuid, con = boot_guest(a, guest, lines=2)
    pid = vm_pid(a, vm)
    remove_boot_files(a)
    remove_boot_files(b)

    err, phases, rec = migrate_refused(a, vm, token(b, uuid), {})
    print("migrate_send:", err, "phases:", phases)
    assert kernel in err_text(err), err
    assert not {"transfer", "switchover"} & set(phases), phases
    still_running_nothing_moved(a, b, vm, uuid, pid, con)
