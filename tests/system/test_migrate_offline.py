"""Offline migration (live=false) of a halted VM moves only its record, and
dest_name renames it on arrival.  The moved VM then starts at the
destination.  (A live migration with dest_name is in test_migrate_modes.)
"""

import pytest

from migration_helpers import (Console, assert_no_vm, boot_guest,
                               create_guest, hosts, p2p_dest, start_migration,
                               task_ok, token, wait_task)

__all__ = ["hosts"]

KEEP = ("memory_static_max", "VCPUs_max", "PV_kernel", "PV_ramdisk",
        "PV_args", "name_description")


@pytest.mark.parametrize("control", ["managed", "p2p"])
def test_offline_halted_vm(hosts, guest, control):
    a, b = hosts
    vm = create_guest(a, guest, name="sleeper")
    a.api.call("VM.set_name_description", vm, "moved while halted")
    before = a.api.call("VM.get_record", vm)
    assert before["power_state"] == "Halted"
    uuid = before["uuid"]

    if control == "managed":
        dest, opts = token(b, uuid), {}
    else:
        dest, opts = p2p_dest(b), {"control": "p2p"}
    rec = wait_task(a.api, start_migration(a, vm, dest, False, opts), 30)
    new_vm = task_ok(rec)

    after = b.api.call("VM.get_record", new_vm)
    assert after["uuid"] == uuid
    assert after["power_state"] == "Halted"
    assert after["name_label"] == "sleeper"
    for key in KEEP:
        assert str(after[key]) == str(before[key]), (key, before[key],
                                                     after[key])
    # No QEMU anywhere, the source record gone.
    assert uuid not in b.qemu_pids()
    assert_no_vm(a, uuid)

    # It runs at the destination.
    b.api.call("VM.start", new_vm, False, False)
    Console(b.console_path(uuid)).wait_status(2, 40, "memcheck on B")


def test_offline_rename(hosts, guest):
    a, b = hosts
    vm = create_guest(a, guest, name="old-name")
    uuid = a.api.call("VM.get_uuid", vm)
    rec = wait_task(a.api, start_migration(a, vm, token(b, uuid), False,
                                           {"dest_name": "new-name"}), 30)
    new_vm = task_ok(rec)
    after = b.api.call("VM.get_record", new_vm)
    assert after["name_label"] == "new-name"
    assert after["uuid"] == uuid
    assert b.api.call("VM.get_by_name_label", "new-name") == [new_vm]
    assert b.api.call("VM.get_by_name_label", "old-name") == []
    assert_no_vm(a, uuid)


def test_live_false_on_running_vm_is_refused(hosts, guest):
    """live=false moves a paused or halted VM; a running one is refused,
    and keeps running."""
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, lines=1)
    try:
        rec = wait_task(a.api, start_migration(a, vm, token(b, uuid), False),
                        30)
    except Exception as e:  # refused synchronously
        print("refused:", e)
    else:
        assert rec["status"] == "failure", rec
        print("refused:", rec["error_info"])
    assert a.api.call("VM.get_power_state", vm) == "Running"
    con.wait_status(len(con.status()) + 1, 10, "memcheck on A")
    assert_no_vm(b, uuid)
