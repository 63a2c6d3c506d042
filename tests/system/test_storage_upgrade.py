"""A database from before the storage classes (docs/storage.md,
"Upgrading"): a VM whose PV_kernel and PV_ramdisk are absolute host paths
and whose disks are other_config:disks raw files.  The record is written
into SQLite by hand while ternd is stopped, as an old ternd left it; at
the next start the kernel is copied into the boot SR (the initrd, already
there, keeps its file), the fields become boot-SR names, each raw disk
becomes a qcow2 VDI of the local SR with a VBD, and the key goes.  This
happens once per database: a path written into a record afterwards is
never read into an SR."""

import json
import os
import shutil
import sqlite3
import subprocess

from conftest import BOOT_INITRD, guest_vm_record, wait_for
from storage_helpers import MIB, img_info, local_sr, vdi_file


def test_old_records_are_moved_into_srs(ternd, guest, tmp_path):
    api = ternd.xapi()
    vm = api.call("VM.create", guest_vm_record(guest, name="old"))
    old = tmp_path / "old"
    old.mkdir()
    kernel = shutil.copy(guest[0], old / "oldkernel")
    disk = old / "disk.raw"
    pattern = b"tern" * (MIB // 4)
    disk.write_bytes(pattern + b"\0" * MIB)
    ternd.stop()

    db = sqlite3.connect(ternd.state_dir / "tern.db")
    [(text,)] = db.execute("SELECT record FROM objects WHERE ref = ?",
                           (vm,)).fetchall()
    rec = json.loads(text)
    rec["PV_kernel"] = str(kernel)
    rec["PV_ramdisk"] = str(ternd.boot_dir / BOOT_INITRD)
    rec["other_config"]["disks"] = str(disk)
    db.execute("UPDATE objects SET record = ? WHERE ref = ?",
               (json.dumps(rec), vm))
    # What a database from before the storage classes lacks: SR records
    # and the marks of this version's first start.
    db.execute("DELETE FROM objects WHERE class IN ('SR', 'PBD', 'VDI', "
               "'VBD')")
    db.execute("DELETE FROM meta WHERE key IN ('storage_upgraded', "
               "'local_sr_uuid', 'boot_sr_uuid')")
    rec["VBDs"] = []
    db.execute("UPDATE objects SET record = ? WHERE ref = ?",
               (json.dumps(rec), vm))
    db.commit()
    db.close()

    ternd.start()
    api = ternd.xapi()
    rec = api.call("VM.get_record", vm)
    assert rec["PV_kernel"] == "oldkernel"
    assert rec["PV_ramdisk"] == BOOT_INITRD
    assert "disks" not in rec["other_config"]
    assert (ternd.boot_dir / "oldkernel").read_bytes() == \
        open(guest[0], "rb").read()
    [vbd] = rec["VBDs"]
    vdi = api.call("VBD.get_VDI", vbd)
    assert api.call("VDI.get_SR", vdi) == local_sr(api)
    assert api.call("VBD.get_bootable", vbd) is True
    path = vdi_file(api, vdi)
    assert img_info(path)["format"] == "qcow2"
    out = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(path),
                    str(out)], check=True)
    assert out.read_bytes() == disk.read_bytes()
    # The old files stay where they were; the VM boots from the new ones.
    assert os.path.exists(kernel) and disk.exists()
    api.call("VM.start", vm, False, False)
    wait_for(lambda: "MEMCHECK seq=" in api.call("VM.get_console_log", vm,
                                                 4000),
             40, "the upgraded VM to boot")
    api.call("VM.hard_shutdown", vm)
    # Once per database: a second start changes nothing, and a path a
    # client writes into other_config later is never read into an SR.
    api.call("VM.add_to_other_config", vm, "disks", str(disk))
    ternd.restart()
    api = ternd.xapi()
    assert api.call("VM.get_VBDs", vm) == [vbd]
    assert api.call("VM.get_other_config", vm)["disks"] == str(disk)
    assert len(api.call("SR.get_VDIs", local_sr(api))) == 1
