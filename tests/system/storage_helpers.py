"""Helpers for the storage system tests (test_storage_*.py): find the
default SRs, a VDI's file, and what qemu-img says of it."""

import json
import os
import subprocess
from pathlib import Path

MIB = 1024 * 1024


def sr_by_content(api, content_type):
    return [r for r, s in api.call("SR.get_all_records").items()
            if s["content_type"] == content_type]


def local_sr(api):
    pool = list(api.call("pool.get_all_records").values())[0]
    return pool["default_SR"]


def boot_sr(api):
    [sr] = sr_by_content(api, "kernel")
    return sr


def sr_dir(api, sr):
    """The SR's directory on this host (its PBD's location)."""
    [pbd] = api.call("SR.get_PBDs", sr)
    return Path(api.call("PBD.get_device_config", pbd)["location"])


def vdi_file(api, vdi):
    rec = api.call("VDI.get_record", vdi)
    d = sr_dir(api, rec["SR"])
    if rec["sm_config"].get("image-format") == "raw":
        return d / rec["location"]
    return d / (rec["location"] + ".qcow2")


def img_info(path):
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json",
                          str(path)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def make_vdi(api, sr, size_mib, name="disk"):
    return api.call("VDI.create", {"SR": sr, "virtual_size": str(size_mib * MIB),
                                   "type": "user", "name_label": name,
                                   "sharable": False, "read_only": False,
                                   "other_config": {}})


def make_sr(api, location, name="sr", shared=False):
    host = api.call("session.get_this_host", api.session)
    return api.call("SR.create", host, {"location": str(location)}, "0",
                    name, "", "file", "user", shared, {})


def qemu_fds(pid):
    """The paths QEMU process PID has open."""
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out
