"""Migration and networks today (docs/networking.md): NICs do not move yet,
so a running VM with a VIF is refused by the destination's qualification
with VIF_NOT_IN_MAP, before anything stops; the VM runs on at the source,
untouched, and the destination has nothing.  Without the VIF it moves."""

import pytest

from migration_helpers import (boot_guest, make_hosts, start_migration,
                               token, vm_pid, wait_task)


@pytest.fixture
def hosts(request):
    yield from make_hosts(request)


def test_vm_with_a_vif_is_not_in_the_map(hosts, guest):
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, lines=1)
    net = a.api.call("network.create", {"name_label": "lan",
                                        "name_description": "",
                                        "MTU": "1500", "other_config": {}})
    # Made, not plugged: the record is what qualification reads.
    vif = a.api.call("VIF.create", {"VM": vm, "network": net, "device": "0",
                                    "MAC": "", "other_config": {}})
    res = a.api.call("VM.migrate_check", vm, token(b, uuid), {})
    [blk] = [x for x in res["blockers"] if x["check"] == "network"]
    assert blk["code"] == "VIF_NOT_IN_MAP" and blk["objects"] == ["1"]
    pid = vm_pid(a, vm)
    rec = wait_task(a.api, start_migration(a, vm, token(b, uuid)),
                    timeout=30)
    assert rec["status"] == "failure"
    assert rec["error_info"][0] == "VIF_NOT_IN_MAP", rec["error_info"]
    assert a.api.call("VM.get_power_state", vm) == "Running"
    assert vm_pid(a, vm) == pid and b.vms() == {}

    a.api.call("VIF.destroy", vif)
    rec = wait_task(a.api, start_migration(a, vm, token(b, uuid)),
                    timeout=90)
    assert rec["status"] == "success", rec["error_info"]
    assert b.vm_by_uuid(uuid) is not None
