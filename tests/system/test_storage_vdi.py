"""VDIs of a file SR (docs/storage.md): qcow2 files made by qemu-img,
resize, snapshot and clone chains whose original keeps its location,
SR_FULL and VDI_IN_USE, and everything still there after a restart."""

import os
import stat

import pytest

from conftest import XapiFailure, wait_for
from storage_helpers import (MIB, img_info, local_sr, make_vdi, sr_dir,
                             vdi_file)


def test_create_resize(ternd):
    api = ternd.xapi()
    sr = local_sr(api)
    vdi = make_vdi(api, sr, 16, name="data")
    rec = api.call("VDI.get_record", vdi)
    assert rec["location"] == rec["uuid"]
    assert rec["sm_config"] == {"image-format": "qcow2"}
    assert rec["SR"] == sr and vdi in api.call("SR.get_VDIs", sr)
    path = vdi_file(api, vdi)
    info = img_info(path)
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == 16 * MIB
    assert info["cluster-size"] == 65536
    assert info["format-specific"]["data"]["compat"] == "1.1"
    assert (sr_dir(api, sr) / ".meta" / f"{rec['uuid']}.json").exists()
    # A VM's disk is root's alone.
    assert path.stat().st_mode & 0o077 == 0, oct(path.stat().st_mode)
    # Thin: a few hundred KiB allocated.
    assert int(rec["physical_utilisation"]) < MIB

    api.call("VDI.resize", vdi, str(32 * MIB))
    assert api.call("VDI.get_virtual_size", vdi) == str(32 * MIB)
    assert img_info(path)["virtual-size"] == 32 * MIB
    with pytest.raises(XapiFailure) as e:
        api.call("VDI.resize", vdi, str(8 * MIB))
    assert e.value.code == "VDI_TOO_SMALL"
    assert img_info(path)["virtual-size"] == 32 * MIB

    api.call("VDI.destroy", vdi)
    assert not path.exists()
    assert vdi not in api.call("SR.get_VDIs", sr)


def test_sr_full(ternd):
    api = ternd.xapi()
    sr = local_sr(api)
    st = os.statvfs(sr_dir(api, sr))
    free = st.f_bavail * st.f_frsize
    before = set(os.listdir(sr_dir(api, sr)))
    with pytest.raises(XapiFailure) as e:
        api.call("VDI.create", {"SR": sr, "virtual_size": str(free * 2),
                                "type": "user", "name_label": "huge"})
    assert e.value.code == "SR_FULL", e.value.desc
    assert int(e.value.params[0]) == free * 2
    assert abs(int(e.value.params[1]) - free) < 64 * MIB
    assert set(os.listdir(sr_dir(api, sr))) == before
    vdi = make_vdi(api, sr, 1)
    with pytest.raises(XapiFailure) as e:
        api.call("VDI.resize", vdi, str(free * 2))
    assert e.value.code == "SR_FULL"


def test_chains_survive_a_restart(ternd):
    api = ternd.xapi()
    sr = local_sr(api)
    d = sr_dir(api, sr)
    vdi = make_vdi(api, sr, 8, name="orig")
    loc = api.call("VDI.get_location", vdi)
    path = vdi_file(api, vdi)

    snap = api.call("VDI.snapshot", vdi, {})
    clone = api.call("VDI.clone", vdi, {})
    recs = {r: api.call("VDI.get_record", r) for r in (vdi, snap, clone)}
    # The original keeps its location and file name.
    assert recs[vdi]["location"] == loc and path.exists()
    base2 = recs[vdi]["sm_config"]["vhd-parent"]
    assert recs[clone]["sm_config"]["vhd-parent"] == base2
    base1 = recs[snap]["sm_config"]["vhd-parent"]
    assert base1 != base2
    assert recs[snap]["is_a_snapshot"] is True
    assert recs[snap]["snapshot_of"] == vdi
    assert recs[vdi]["snapshots"] == [snap]
    assert recs[clone]["is_a_snapshot"] is False
    # The bases are hidden (no records) and read-only files.
    for b in (base1, base2):
        with pytest.raises(XapiFailure):
            api.call("VDI.get_by_uuid", b)
        mode = (d / f"{b}.qcow2").stat().st_mode
        assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        assert mode & 0o077 == 0
    for r in (vdi, snap, clone):
        assert vdi_file(api, r).stat().st_mode & 0o077 == 0
    # orig -> base2 -> base1; snap -> base1; clone -> base2.
    assert img_info(path)["backing-filename"] == f"{base2}.qcow2"
    assert img_info(d / f"{base2}.qcow2")["backing-filename"] == \
        f"{base1}.qcow2"
    assert img_info(vdi_file(api, snap))["backing-filename"] == \
        f"{base1}.qcow2"
    assert img_info(vdi_file(api, clone))["virtual-size"] == 8 * MIB

    ternd.restart()
    api = ternd.xapi()
    for r, rec in recs.items():
        now = api.call("VDI.get_record", r)
        for k in ("uuid", "location", "sm_config", "is_a_snapshot",
                  "snapshot_of", "snapshots", "virtual_size"):
            assert now[k] == rec[k], (k, now[k], rec[k])
    assert sorted(api.call("SR.get_VDIs", sr)) == \
        sorted(set(api.call("SR.get_VDIs", sr)))

    # Destroying every VDI of the chain takes the bases with the last.
    for r in (snap, clone, vdi):
        api.call("VDI.destroy", r)
    left = [n for n in os.listdir(d) if n.endswith(".qcow2")]
    assert not {f"{base1}.qcow2", f"{base2}.qcow2", f"{loc}.qcow2"} & \
        set(left), left


def test_in_use(ternd):
    api = ternd.xapi()
    vdi = make_vdi(api, local_sr(api), 4)
    vm = api.call("VM.create", {"name_label": "holder"})
    vbd = api.call("VBD.create", {"VM": vm, "VDI": vdi, "userdevice": "0",
                                  "bootable": False, "mode": "RW",
                                  "type": "Disk", "empty": False,
                                  "other_config": {}})
    assert api.call("VM.get_VBDs", vm) == [vbd]
    assert api.call("VDI.get_VBDs", vdi) == [vbd]
    with pytest.raises(XapiFailure) as e:
        api.call("VDI.destroy", vdi)
    assert e.value.desc == ["VDI_IN_USE", vdi, "destroy"]
    with pytest.raises(XapiFailure) as e:
        api.call("VBD.create", {"VM": vm, "VDI": vdi, "userdevice": "0",
                                "mode": "RW", "type": "Disk"})
    assert e.value.code == "DEVICE_ALREADY_EXISTS"
    with pytest.raises(XapiFailure) as e:
        api.call("VBD.plug", vbd)
    assert e.value.code == "VM_BAD_POWER_STATE"
    # VM.destroy takes its VBDs, not its VDIs.
    api.call("VM.destroy", vm)
    assert api.call("VDI.get_VBDs", vdi) == []
    with pytest.raises(XapiFailure):
        api.call("VBD.get_record", vbd)
    api.call("VDI.destroy", vdi)


def test_one_operation_at_a_time(ternd):
    """Two snapshots of one VDI at once: the second is refused while the
    first runs (they would rename the same file), and the chain is whole."""
    api = ternd.xapi()
    vdi = make_vdi(api, local_sr(api), 4)
    t1 = api.call("Async.VDI.snapshot", vdi, {})
    t2 = api.call("Async.VDI.snapshot", vdi, {})
    recs = []
    for t in (t1, t2):
        wait_for(lambda: api.call("task.get_status", t) != "pending", 30,
                 "the snapshot task to end")
        recs.append(api.call("task.get_record", t))
    statuses = sorted(r["status"] for r in recs)
    assert statuses == ["failure", "success"], recs
    [failed] = [r for r in recs if r["status"] == "failure"]
    assert failed["error_info"][0] == "OTHER_OPERATION_IN_PROGRESS"
    assert len(api.call("VDI.get_snapshots", vdi)) == 1
    snap = api.call("VDI.snapshot", vdi, {})
    assert len(api.call("VDI.get_snapshots", vdi)) == 2
    assert img_info(vdi_file(api, snap))["virtual-size"] == 4 * MIB
