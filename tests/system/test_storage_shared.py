"""A shared SR (docs/storage.md): one directory, two ternds.  The SR is
created on A with shared=true; B introduces the same SR uuid and plugs a
PBD to the same directory (the stand-in for NFS), and sees A's VDIs with
their uuids and locations; a VDI B makes, A finds at its next scan.  A VM
on a shared SR opens its disk with cache.direct."""

import json

import pytest

from conftest import close_all, guest_vm_record
from migration_helpers import short_dir
from storage_helpers import make_sr, make_vdi, vdi_file
from conftest import Ternd


@pytest.fixture
def two(request):
    base = short_dir()
    ts = [Ternd(base / n) for n in ("a", "b")]
    try:
        for t in ts:
            t.start()
        yield ts[0], ts[1], base
    finally:
        close_all(ts)


def test_shared_sr_on_two_hosts(two, guest):
    a, b, base = two
    A, B = a.xapi(), b.xapi()
    d = base / "shared"
    sr = make_sr(A, d, "shared", shared=True)
    uuid = A.call("SR.get_uuid", sr)
    v1 = make_vdi(A, sr, 8, name="one")
    v1_uuid = A.call("VDI.get_uuid", v1)

    srb = B.call("SR.introduce", uuid, "shared", "", "file", "user", True, {})
    hb = B.call("session.get_this_host", B.session)
    pbd = B.call("PBD.create", {"host": hb, "SR": srb,
                                "device_config": {"location": str(d)}})
    B.call("PBD.plug", pbd)
    assert B.call("SR.get_shared", srb) is True
    vb = B.call("VDI.get_by_uuid", v1_uuid)
    assert B.call("VDI.get_location", vb) == A.call("VDI.get_location", v1)
    assert B.call("VDI.get_name_label", vb) == "one"
    assert B.call("VDI.get_virtual_size", vb) == str(8 << 20)
    assert vdi_file(B, vb) == vdi_file(A, v1)

    v2 = make_vdi(B, srb, 2, name="two")
    A.call("SR.scan", sr)
    va = A.call("VDI.get_by_uuid", B.call("VDI.get_uuid", v2))
    assert A.call("VDI.get_name_label", va) == "two"

    # A VM on B with the shared disk opens it with O_DIRECT.
    vm = B.call("VM.create", guest_vm_record(guest, name="onshared"))
    B.call("VBD.create", {"VM": vm, "VDI": vb, "userdevice": "1",
                          "bootable": False, "mode": "RW", "type": "Disk",
                          "empty": False})
    B.call("VM.start", vm, False, False)
    pid = int(B.call("VM.get_domid", vm))
    cmd = open(f"/proc/{pid}/cmdline").read().split("\0")
    [bd] = [json.loads(cmd[i + 1]) for i, x in enumerate(cmd)
            if x == "-blockdev" and str(vdi_file(B, vb)) in cmd[i + 1]]
    assert bd["file"]["cache"]["direct"] is True
    B.call("VM.hard_shutdown", vm)
