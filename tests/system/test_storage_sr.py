"""SRs and PBDs (docs/storage.md): the two SRs of the first start, create,
scan, forget, introduce and destroy of a file SR, and who may do them.

Each SR is a directory that describes itself (.tern-sr.json, .meta/), so
forget + introduce + PBD.create + PBD.plug rebuild the same VDI records,
and SR.scan follows files dropped in or taken away by hand."""

import json
import shutil
import subprocess

import pytest

from conftest import BOOT_INITRD, BOOT_KERNEL, XapiFailure
from storage_helpers import (MIB, boot_sr, local_sr, make_sr, make_vdi,
                             sr_dir, vdi_file)


@pytest.fixture
def rt(ternd_factory):
    return ternd_factory(users=(("admin", "adminpw", "pool-admin"),
                                ("ro", "ropw", "read-only"),
                                ("va", "vapw", "vm-admin")))


def test_first_start_makes_local_and_boot_srs(rt):
    api = rt.xapi()
    local = local_sr(api)
    rec = api.call("SR.get_record", local)
    assert rec["name_label"] == "Local storage"
    assert rec["type"] == "file" and rec["content_type"] == "user"
    assert sr_dir(api, local) == rt.state_dir / "sr" / "local"
    assert int(rec["physical_size"]) > 0
    [pbd] = rec["PBDs"]
    assert api.call("PBD.get_currently_attached", pbd) is True
    boot = boot_sr(api)
    assert sr_dir(api, boot) == rt.boot_dir
    vdis = {api.call("VDI.get_location", v): api.call("VDI.get_record", v)
            for v in api.call("SR.get_VDIs", boot)}
    # The guest's files the test harness put there, found by the scan.
    assert {BOOT_KERNEL, BOOT_INITRD} <= set(vdis), vdis
    k = vdis[BOOT_KERNEL]
    assert k["type"] == "system" and k["sm_config"]["image-format"] == "raw"
    assert int(k["virtual_size"]) == (rt.boot_dir / BOOT_KERNEL).stat().st_size
    ident = json.loads((rt.boot_dir / ".tern-sr.json").read_text())
    assert ident["sr_uuid"] == api.call("SR.get_uuid", boot)
    # Made once: a restart keeps the same SRs.
    rt.restart()
    api = rt.xapi()
    assert local_sr(api) == local and boot_sr(api) == boot


def test_create_destroy_has_pbd(rt, tmp_path):
    api = rt.xapi()
    d = tmp_path / "sr1"
    sr = make_sr(api, d, "one")
    ident = json.loads((d / ".tern-sr.json").read_text())
    assert ident == {"sr_uuid": api.call("SR.get_uuid", sr),
                     "format_version": 1}
    vdi = make_vdi(api, sr, 8)
    assert vdi_file(api, vdi).exists()
    with pytest.raises(XapiFailure) as e:
        api.call("SR.destroy", sr)
    assert e.value.desc == ["SR_HAS_PBD", sr]
    [pbd] = api.call("SR.get_PBDs", sr)
    api.call("PBD.unplug", pbd)
    api.call("SR.destroy", sr)
    assert not d.exists()
    with pytest.raises(XapiFailure) as e:
        api.call("VDI.get_record", vdi)
    assert e.value.code == "HANDLE_INVALID"
    assert sr not in api.call("SR.get_all")
    # A directory holding another SR is not taken.
    other = make_sr(api, tmp_path / "sr2", "two")
    [p2] = api.call("SR.get_PBDs", other)
    api.call("PBD.unplug", p2)
    api.call("SR.forget", other)
    with pytest.raises(XapiFailure) as e:
        make_sr(api, tmp_path / "sr2", "three")
    assert e.value.code == "SR_DEVICE_IN_USE", e.value.desc
    # So is a directory with files of its own (a destroy would take them).
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    with pytest.raises(XapiFailure) as e:
        make_sr(api, tmp_path / "home", "four")
    assert e.value.code == "SR_DEVICE_IN_USE", e.value.desc
    assert not (tmp_path / "home" / ".tern-sr.json").exists()


def test_scan_follows_the_directory(rt, tmp_path):
    api = rt.xapi()
    sr = make_sr(api, tmp_path / "sr", "scan")
    d = sr_dir(api, sr)
    # A qcow2 dropped in by hand becomes a VDI; its uuid is its name.
    uuid = "0b7e2f7c-54e4-4a53-9d57-1b1e0f6c2a11"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2",
                    str(d / f"{uuid}.qcow2"), "3M"], check=True)
    api.call("SR.scan", sr)
    vdi = api.call("VDI.get_by_uuid", uuid)
    assert api.call("VDI.get_virtual_size", vdi) == str(3 * MIB)
    assert api.call("VDI.get_SR", vdi) == sr
    assert (d / ".meta" / f"{uuid}.json").exists()
    # Taken away: the record goes at the next scan.
    (d / f"{uuid}.qcow2").unlink()
    api.call("SR.scan", sr)
    with pytest.raises(XapiFailure) as e:
        api.call("VDI.get_by_uuid", uuid)
    assert e.value.code == "UUID_INVALID"


def test_forget_introduce_plug_rebuilds(rt, tmp_path):
    api = rt.xapi()
    sr = make_sr(api, tmp_path / "sr", "again")
    uuid = api.call("SR.get_uuid", sr)
    vdi = make_vdi(api, sr, 4, name="keepme")
    vdi_uuid = api.call("VDI.get_uuid", vdi)
    [pbd] = api.call("SR.get_PBDs", sr)
    api.call("PBD.unplug", pbd)
    api.call("SR.forget", sr)
    assert (tmp_path / "sr" / f"{vdi_uuid}.qcow2").exists()
    with pytest.raises(XapiFailure):
        api.call("VDI.get_by_uuid", vdi_uuid)

    host = api.call("session.get_this_host", api.session)
    sr2 = api.call("SR.introduce", uuid, "again", "", "file", "user", False,
                   {})
    pbd2 = api.call("PBD.create", {"host": host, "SR": sr2,
                                   "device_config": {
                                       "location": str(tmp_path / "sr")}})
    assert api.call("SR.get_VDIs", sr2) == []
    api.call("PBD.plug", pbd2)
    v = api.call("VDI.get_by_uuid", vdi_uuid)
    assert api.call("VDI.get_name_label", v) == "keepme"
    assert api.call("VDI.get_virtual_size", v) == str(4 * MIB)

    # A PBD whose directory is another SR's does not plug.
    other = api.call("SR.introduce", "6a3c0d0e-1111-4a4a-9b9b-123456789abc",
                     "wrong", "", "file", "user", False, {})
    p3 = api.call("PBD.create", {"host": host, "SR": other,
                                 "device_config": {
                                     "location": str(tmp_path / "sr")}})
    with pytest.raises(XapiFailure) as e:
        api.call("PBD.plug", p3)
    assert e.value.code == "SR_BACKEND_FAILURE", e.value.desc
    assert api.call("PBD.get_currently_attached", p3) is False


def test_rbac(rt, tmp_path):
    api, ro, va = rt.xapi(), rt.xapi("ro", "ropw"), rt.xapi("va", "vapw")
    local = local_sr(api)
    host = api.call("session.get_this_host", api.session)
    for who in (ro, va):
        with pytest.raises(XapiFailure) as e:
            who.call("SR.create", host, {"location": str(tmp_path / "x")},
                     "0", "x", "", "file", "user", False, {})
        assert e.value.code == "RBAC_PERMISSION_DENIED"
    with pytest.raises(XapiFailure) as e:
        make_vdi(ro, local, 1)
    assert e.value.code == "RBAC_PERMISSION_DENIED"
    assert not (tmp_path / "x").exists()
    # Reading is for everyone; a vm-admin makes VDIs.
    assert ro.call("SR.get_record", local)["name_label"] == "Local storage"
    vdi = make_vdi(va, local, 1)
    with pytest.raises(XapiFailure) as e:
        ro.call("VDI.destroy", vdi)
    assert e.value.code == "RBAC_PERMISSION_DENIED"
    va.call("VDI.destroy", vdi)


def test_bad_arguments(rt, tmp_path):
    api = rt.xapi()
    host = api.call("session.get_this_host", api.session)
    for loc in ("relative/dir", "/a/../b", ""):
        with pytest.raises(XapiFailure) as e:
            api.call("SR.create", host, {"location": loc}, "0", "x", "",
                     "file", "user", False, {})
        assert e.value.code == "INVALID_VALUE", (loc, e.value.desc)
    with pytest.raises(XapiFailure) as e:
        api.call("SR.create", host, {"location": str(tmp_path / "n")}, "0",
                 "x", "", "nfs", "user", False, {})
    assert e.value.code == "SR_UNKNOWN_DRIVER"
    with pytest.raises(XapiFailure) as e:
        api.call("SR.destroy", boot_sr(api))
    assert e.value.code == "OPERATION_NOT_ALLOWED"


def test_events(rt, tmp_path):
    """The storage classes have events like every class: a VDI.create is
    an add of the VDI (its snapshot the record) and a mod of its SR."""
    api = rt.xapi()
    first = api.call("event.from", ["SR", "PBD", "VDI", "VBD"], "", 0.0)
    classes = {e["class"] for e in first["events"]}
    assert {"sr", "pbd", "vdi"} <= classes, classes
    sr = local_sr(api)
    vdi = make_vdi(api, sr, 1, name="evented")
    res = api.call("event.from", ["VDI", "SR"], first["token"], 5.0)
    ops = {(e["class"], e["operation"], e["ref"]) for e in res["events"]}
    assert ("vdi", "add", vdi) in ops and ("sr", "mod", sr) in ops, ops
    [add] = [e for e in res["events"] if e["ref"] == vdi and
             e["operation"] == "add"]
    assert add["snapshot"]["name_label"] == "evented"
    api.call("VDI.destroy", vdi)
    res = api.call("event.from", ["VDI"], res["token"], 5.0)
    assert ("vdi", "del", vdi) in {(e["class"], e["operation"], e["ref"])
                                   for e in res["events"]}
