"""Migration and storage today (docs/storage.md, "Migration and storage"):
a running VM with a disk (a VBD) is refused by the destination's
qualification with VDI_NOT_IN_MAP naming the VDI, before anything moves;
the VM runs on at the source.  Without the VBD it moves, booting on B from
B's own boot SR."""

import pytest

from migration_helpers import (boot_guest, make_hosts, start_migration,
                               token, vm_pid, wait_task)
from storage_helpers import local_sr, make_vdi


@pytest.fixture
def hosts(request):
    yield from make_hosts(request)


def test_vm_with_a_disk_is_not_in_the_map(hosts, guest):
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, lines=1)
    vdi = make_vdi(a.api, local_sr(a.api), 8)
    vdi_uuid = a.api.call("VDI.get_uuid", vdi)
    # A VBD made while the VM runs is in the record (the disk would be
    # hot-plugged); qualification looks at the record.
    vbd = a.api.call("VBD.create", {"VM": vm, "VDI": vdi,
                                    "userdevice": "1", "mode": "RW",
                                    "type": "Disk", "bootable": False,
                                    "empty": False})
    res = a.api.call("VM.migrate_check", vm, token(b, uuid), {})
    print(res["blockers"])
    [blk] = [x for x in res["blockers"] if x["check"] == "storage"]
    assert blk["code"] == "VDI_NOT_IN_MAP" and blk["objects"] == [vdi_uuid]
    pid = vm_pid(a, vm)
    rec = wait_task(a.api, start_migration(a, vm, token(b, uuid)),
                    timeout=30)
    assert rec["status"] == "failure"
    assert rec["error_info"][0] == "VDI_NOT_IN_MAP", rec["error_info"]
    assert a.api.call("VM.get_power_state", vm) == "Running"
    assert vm_pid(a, vm) == pid and b.vms() == {}

    # Without the disk it moves.
    a.api.call("VBD.destroy", vbd)
    rec = wait_task(a.api, start_migration(a, vm, token(b, uuid)),
                    timeout=90)
    assert rec["status"] == "success", rec["error_info"]
    assert b.vm_by_uuid(uuid) is not None
