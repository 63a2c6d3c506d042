"""A VM's disks and boot files come from SRs (docs/storage.md).

- A VM with a qcow2 data disk on a VBD boots, and its QEMU has the VDI's
  file open (read from /proc/<pid>/fd; the test guest has no virtio_blk
  module to show the disk on its console yet).
- While it runs, the VDI is in use: no destroy, snapshot or resize, and
  the VBD cannot be destroyed.
- PV_kernel and PV_ramdisk name files of the boot SR, never paths:
  VM.create and VM.set_PV_kernel refuse '/', '..' and absolute paths with
  INVALID_VALUE; a VDI uuid of the boot SR works too.
- CD drives: insert and eject on a halted VM change the record.
- Hot-plug on a running VM (src/qemu/disk.c): once the guest has booted
  (an unplug asks the guest, over ACPI), VBD.unplug lets QEMU close the
  VDI, and VBD.plug opens it again although QEMU runs as [qemu] user,
  which may not open the SR's files: ternd opens the image and hands QEMU
  the descriptor (add-fd)."""

import json

import pytest

from conftest import (BOOT_KERNEL, XapiFailure, guest_vm_record, pid_alive,
                      wait_for)
from storage_helpers import boot_sr, local_sr, make_vdi, qemu_fds, vdi_file

def disk_vbd(api, vm, vdi, userdevice="1", bootable=False, mode="RW"):
    return api.call("VBD.create", {"VM": vm, "VDI": vdi,
                                   "userdevice": userdevice,
                                   "bootable": bootable, "mode": mode,
                                   "type": "Disk", "empty": False,
                                   "other_config": {}})


@pytest.fixture
def running(ternd, guest):
    """A guest with a 16 MiB data disk, started: (api, vm, vdi, vbd, pid)."""
    api = ternd.xapi()
    vdi = make_vdi(api, local_sr(api), 16, name="data")
    vm = api.call("VM.create", guest_vm_record(guest, name="withdisk"))
    vbd = disk_vbd(api, vm, vdi)
    api.call("VM.start", vm, False, False)
    pid = int(api.call("VM.get_domid", vm))
    yield api, vm, vdi, vbd, pid
    if api.call("VM.get_power_state", vm) != "Halted":
        api.call("VM.hard_shutdown", vm)


def test_boots_with_a_data_disk(running):
    api, vm, vdi, vbd, pid = running
    path = str(vdi_file(api, vdi))
    assert path in qemu_fds(pid)
    cmd = open(f"/proc/{pid}/cmdline").read().split("\0")
    blockdevs = [json.loads(cmd[i + 1]) for i, a in enumerate(cmd)
                 if a == "-blockdev"]
    [bd] = [b for b in blockdevs if b["file"]["filename"] == path]
    assert bd["driver"] == "qcow2" and bd["node-name"] == "vbd1"
    assert bd["file"]["cache"]["direct"] is False   # a local SR
    assert api.call("VBD.get_currently_attached", vbd) is True
    # The console shows the guest running (memcheck) with the disk there.
    wait_for(lambda: "MEMCHECK seq=" in api.call("VM.get_console_log", vm,
                                                 4000),
             40, "memcheck on the console")


def test_in_use_while_running(running):
    api, vm, vdi, vbd, pid = running
    for method, args in (("VDI.destroy", ()), ("VDI.snapshot", ({},)),
                         ("VDI.clone", ({},)),
                         ("VDI.resize", (str(64 << 20),))):
        with pytest.raises(XapiFailure) as e:
            api.call(method, vdi, *args)
        assert e.value.code == "VDI_IN_USE", (method, e.value.desc)
    with pytest.raises(XapiFailure) as e:
        api.call("VBD.destroy", vbd)
    assert e.value.code == "DEVICE_ALREADY_ATTACHED"
    with pytest.raises(XapiFailure) as e:
        api.call("VBD.plug", vbd)
    assert e.value.code == "DEVICE_ALREADY_ATTACHED"
    api.call("VM.hard_shutdown", vm)
    wait_for(lambda: not pid_alive(pid), 10, "QEMU to exit")
    assert api.call("VBD.get_currently_attached", vbd) is False
    snap = api.call("VDI.snapshot", vdi, {})
    assert api.call("VDI.get_snapshot_of", snap) == vdi


def test_hotplug(running):
    api, vm, vdi, vbd, pid = running
    path = str(vdi_file(api, vdi))
    # An unplug asks the guest (ACPI); one that has not booted yet never
    # answers.
    wait_for(lambda: "TERN-GUEST-READY" in api.call("VM.get_console_log",
                                                    vm, 8000),
             40, "the guest to boot")
    api.call("VBD.unplug", vbd)
    assert api.call("VBD.get_currently_attached", vbd) is False
    wait_for(lambda: path not in qemu_fds(pid), 10, "QEMU to close the VDI")
    api.call("VBD.plug", vbd)
    assert api.call("VBD.get_currently_attached", vbd) is True
    assert path in qemu_fds(pid)


def test_hotplug_refusals(running):
    api, vm, vdi, vbd, pid = running
    other = make_vdi(api, local_sr(api), 4, name="other")
    cd = api.call("VBD.create", {"VM": vm, "VDI": "OpaqueRef:NULL",
                                 "userdevice": "3", "type": "CD",
                                 "mode": "RO", "empty": True})
    with pytest.raises(XapiFailure) as e:
        api.call("VBD.insert", vbd, other)
    assert e.value.code == "VBD_NOT_REMOVABLE_MEDIA"
    with pytest.raises(XapiFailure) as e:
        api.call("VBD.eject", cd)
    assert e.value.code == "VBD_IS_EMPTY"
    api.call("VBD.set_unpluggable", vbd, False)
    with pytest.raises(XapiFailure) as e:
        api.call("VBD.unplug", vbd)
    assert e.value.code == "VBD_NOT_UNPLUGGABLE"


def test_cd_on_a_halted_vm(ternd):
    api = ternd.xapi()
    vm = api.call("VM.create", {"name_label": "cd"})
    iso = make_vdi(api, local_sr(api), 2, name="iso")
    cd = api.call("VBD.create", {"VM": vm, "VDI": "OpaqueRef:NULL",
                                 "userdevice": "autodetect", "type": "CD",
                                 "mode": "RO", "empty": True})
    rec = api.call("VBD.get_record", cd)
    assert rec["empty"] is True and rec["userdevice"] == "0"
    api.call("VBD.insert", cd, iso)
    assert api.call("VBD.get_VDI", cd) == iso
    assert api.call("VDI.get_VBDs", iso) == [cd]
    with pytest.raises(XapiFailure) as e:
        api.call("VBD.insert", cd, iso)
    assert e.value.code == "VBD_NOT_EMPTY"
    api.call("VBD.eject", cd)
    assert api.call("VBD.get_empty", cd) is True
    assert api.call("VDI.get_VBDs", iso) == []


def test_boot_files_are_names_in_the_boot_sr(ternd, guest):
    api = ternd.xapi()
    for bad in ("/boot/vmlinuz", guest[0], "../vmlinuz", "a/b", "..",
                ".hidden"):
        with pytest.raises(XapiFailure) as e:
            api.call("VM.create", dict(guest_vm_record(guest),
                                       PV_kernel=bad))
        assert e.value.desc == ["INVALID_VALUE", "PV_kernel", bad]
        with pytest.raises(XapiFailure) as e:
            api.call("VM.create", dict(guest_vm_record(guest),
                                       PV_ramdisk=bad))
        assert e.value.code == "INVALID_VALUE"
    vm = api.call("VM.create", guest_vm_record(guest, name="byname"))
    with pytest.raises(XapiFailure) as e:
        api.call("VM.set_PV_kernel", vm, "/etc/passwd")
    assert e.value.desc == ["INVALID_VALUE", "PV_kernel", "/etc/passwd"]
    assert api.call("VM.get_PV_kernel", vm) == BOOT_KERNEL
    # A VDI of the boot SR by uuid is a boot file too.
    [kvdi] = [v for v in api.call("SR.get_VDIs", boot_sr(api))
              if api.call("VDI.get_location", v) == BOOT_KERNEL]
    api.call("VM.set_PV_kernel", vm, api.call("VDI.get_uuid", kvdi))
    api.call("VM.start", vm, False, False)
    wait_for(lambda: "MEMCHECK seq=" in api.call("VM.get_console_log", vm,
                                                 4000),
             40, "memcheck on the console")
    api.call("VM.hard_shutdown", vm)
    # A VDI of another SR is not.
    data = make_vdi(api, local_sr(api), 1)
    api.call("VM.set_PV_kernel", vm, api.call("VDI.get_uuid", data))
    with pytest.raises(XapiFailure) as e:
        api.call("VM.start", vm, False, False)
    assert e.value.code == "BOOTLOADER_FAILED"
